"""The README is true: its quick tour runs as written, and every `assay ...` line it shows parses."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from tests.conftest import run_cli, sentence

README = Path(__file__).resolve().parents[1] / "README.md"


def _blocks(text: str) -> list[tuple[str, str]]:
    """(heading, code) of every ```bash block, with the heading it sits under."""
    out, heading, code = [], "", None
    for line in text.splitlines():
        if code is None and line.startswith("#"):
            heading = line.lstrip("#").strip()
        elif code is None and line.strip() == "```bash":
            code = []
        elif code is not None and line.strip() == "```":
            out.append((heading, "\n".join(code)))
            code = None
        elif code is not None:
            code.append(line)
    return out


def _commands(code: str) -> list[str]:
    lines = [line.split(" #", 1)[0].strip() for line in code.splitlines()]
    return [line for line in lines if line.startswith("assay ")]


def _tour_data(folder: Path) -> None:
    data = folder / "data"
    data.mkdir()
    rows = [{"instruction": f"Where does library {i} stand?", "output": sentence(i)} for i in range(40)]
    rows += [rows[3], {"instruction": "Say hi", "output": ""}]
    (data / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + "{not json\n")
    more = [{"instruction": f"When does library {i} open?", "output": sentence(i + 100)} for i in range(10)]
    (data / "more.jsonl").write_text("".join(json.dumps(r) + "\n" for r in more))


def test_quick_tour_runs_as_written(tmp_path: Path) -> None:
    [(_, code)] = [b for b in _blocks(README.read_text()) if b[0] == "Quick tour"]
    _tour_data(tmp_path)
    commands = _commands(code)
    assert len(commands) >= 8
    for line in commands:
        run_cli(*shlex.split(line)[1:], cwd=tmp_path)
    assert (tmp_path / "train.jsonl").is_file() and (tmp_path / "rejects.jsonl").read_text().strip()


def _command_of(words: list[str]):
    import typer

    from assay.cli import app

    command, used = typer.main.get_command(app), 0
    while hasattr(command, "commands") and used < len(words) and words[used] in command.commands:
        command, used = command.commands[words[used]], used + 1
    return command, used


def _all_lines() -> list[str]:
    return [line for _, code in _blocks(README.read_text()) for line in _commands(code)]


@pytest.mark.parametrize("line", _all_lines())
def test_every_documented_command_exists_with_its_options(line: str) -> None:
    words = shlex.split(line)[1:]
    command, used = _command_of([w for w in words if not w.startswith("-")][: len(words)])
    assert not hasattr(command, "commands"), f"`{line}`: no such command"
    known = {opt for p in command.params for opt in (*p.opts, *p.secondary_opts)} | {"--workspace", "-w", "--json", "--help"}
    options = [w.split("=", 1)[0] for w in words if w.startswith("-") and not re.fullmatch(r"-\d.*", w)]
    unknown = [o for o in options if o not in known]
    assert not unknown, f"`{line}`: unknown option(s) {unknown}"
