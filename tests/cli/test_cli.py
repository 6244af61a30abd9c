"""The CLI through the real `assay` entry point, as a user runs it."""

import json

import pytest

from tests.conftest import run_cli, run_json, sentence, write_jsonl


def _commands(group=None, prefix=()):
    """Every leaf command of the real app, so a new command cannot escape these checks."""
    import typer

    from assay.cli import app

    group = group or typer.main.get_command(app)
    for name, cmd in sorted(group.commands.items()):
        if hasattr(cmd, "commands"):  # a command group
            yield from _commands(cmd, (*prefix, name))
        else:
            yield [*prefix, name]


COMMANDS = list(_commands())


def test_the_command_list_is_the_app():
    assert len(COMMANDS) >= 21 and ["train", "run"] in COMMANDS and ["label", "users", "add"] in COMMANDS


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: " ".join(c))
def test_every_command_has_help_with_an_example_and_json(cmd):
    text = run_cli(*cmd, "--help").stdout
    assert "Example" in text and "--json" in text and "--workspace" in text
    assert "<bool>" not in text, "flags take no value"


def test_help_lists_groups_and_version():
    text = run_cli("--help").stdout
    for group in ("curate", "data", "init", "doctor", "demo", "label", "train", "models", "--version"):
        assert group in text
    assert run_cli("--version").stdout.strip().startswith("assay ")


def test_global_options_before_the_command(tmp_path):
    ws = str(tmp_path / "ws")
    run_cli("init", ws)
    listed = run_cli("-w", ws, "--json", "data", "list")
    assert json.loads(listed.stdout) == {"ok": True, "versions": []}
    missing = run_cli("-w", str(tmp_path / "nope"), "--json", "data", "list", check=2)
    assert json.loads(missing.stdout)["ok"] is False


def test_error_messages_keep_their_brackets(capsys):
    from assay.cli.common import report_error
    from assay.errors import ConfigError

    report_error(ConfigError("[train.prompt_tuning] is set but method = 'lora'", hint="remove [train.full]"), False)
    text = capsys.readouterr().err
    assert "[train.prompt_tuning] is set" in text and "remove [train.full]" in text


def test_full_flow_json(tmp_path):
    ws = str(tmp_path / "ws")
    assert run_json("init", ws)["created"] is True
    rows = [{"prompt": f"Where is library {i}?", "completion": sentence(i), "lang": "en"} for i in range(10)]
    rows.append(dict(rows[1]))
    src = write_jsonl(tmp_path / "in" / "d.jsonl", rows, {3: "{oops"})
    res = run_json("curate", "run", str(src), "--workspace", ws, "--name", "v1")
    assert res["ok"] and res["counts"]["kept"] == 10 and res["counts"]["quarantined"] == 1
    vid = res["version"]
    again = run_json("curate", "run", str(src), "--workspace", ws)
    assert again["version"] == vid and again["reused"] is True
    listed = run_json("data", "list", "--workspace", ws)["versions"]
    assert [v["id"] for v in listed] == [vid] and listed[0]["tags"] == ["v1"]
    shown = run_json("data", "show", "v1", "--workspace", ws)["manifest"]
    assert next(s for s in shown["counts"]["steps"] if s["step"] == "exact_dedup")["removed"] == {"exact_duplicate": 1}
    out = tmp_path / "export.jsonl"
    exp = run_json("data", "export", vid[:8], "--out", str(out), "--workspace", ws)
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert exp["rows"] == len(lines) == 10 and {"id", "prompt", "response", "lang"} <= set(lines[0])
    q = run_json("data", "export", vid, "--part", "quarantine", "--out", str(tmp_path / "q.parquet"),
                 "--format", "parquet", "--workspace", ws)
    assert q["rows"] == 1
    assert run_json("doctor", "--workspace", ws)["ok"] is True


def test_diff_reports_added_removed_changed(tmp_path):
    ws = str(tmp_path / "ws")
    run_cli("init", ws)
    base = [{"text": sentence(i), "label": "x"} for i in range(5)]
    a = run_json("curate", "run", str(write_jsonl(tmp_path / "v" / "a.jsonl", base)), "-w", ws)["version"]
    newer = base[1:] + [{"text": sentence(99), "label": "x"}]
    newer[0] = {**newer[0], "label": "y"}
    b = run_json("curate", "run", str(write_jsonl(tmp_path / "v" / "a.jsonl", newer)), "-w", ws)["version"]
    d = run_json("data", "diff", a, b, "-w", ws)
    assert (d["added"], d["removed"], d["changed"], d["unchanged"]) == (1, 1, 1, 3)
    assert d["examples"]["changed"][0]["columns"] == ["label"]
    human = run_cli("data", "diff", a, b, "-w", ws).stdout
    assert "added 1" in human and "removed 1" in human


def test_human_output_shows_step_table(tmp_path):
    ws = str(tmp_path / "ws")
    run_cli("init", ws)
    src = write_jsonl(tmp_path / "x.jsonl", [{"text": sentence(1)}, {"text": sentence(1)}, {"text": sentence(2)}])
    text = run_cli("curate", "run", str(src), "-w", ws).stdout
    assert "exact_dedup" in text and "exact_duplicate: 1" in text and "version ds-" in text


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["curate", "run", "MISSING.jsonl"], "MISSING.jsonl"),
        (["data", "show", "ds-nope"], "ds-nope"),
        (["curate", "run", "{src}", "--map", "bogus"], "--map"),
        (["curate", "run", "{src}", "--map", "nonsense=x"], "nonsense"),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(tmp_path, args, needle):
    ws = str(tmp_path / "ws")
    run_cli("init", ws)
    src = write_jsonl(tmp_path / "ok.jsonl", [{"text": "a"}])
    args = [a.replace("{src}", str(src)) for a in args]
    proc = run_cli(*args, "-w", ws, check=2)
    assert needle in proc.stderr and "error:" in proc.stderr
    as_json = json.loads(run_cli(*args, "-w", ws, "--json", check=2).stdout)
    assert as_json["ok"] is False and needle in as_json["error"]


def test_missing_content_columns_names_file_columns_and_key(tmp_path):
    ws = str(tmp_path / "ws")
    run_cli("init", ws)
    src = write_jsonl(tmp_path / "odd.jsonl", [{"foo": "x", "bar": "y"}])
    err = run_cli("curate", "run", str(src), "-w", ws, check=2).stderr
    assert "odd.jsonl" in err and "foo" in err and "bar" in err and "columns" in err


def test_uninitialised_workspace_says_run_init(tmp_path):
    err = run_cli("data", "list", "-w", str(tmp_path / "none"), check=2).stderr
    assert "assay init" in err


def test_assay_home_env_is_used(tmp_path):
    run_cli("init", str(tmp_path / "home"))
    listed = run_json("data", "list", env={"ASSAY_HOME": str(tmp_path / "home")})
    assert listed["versions"] == []


def test_strict_flag_exits_2(tmp_path):
    ws = str(tmp_path / "ws")
    run_cli("init", ws)
    src = write_jsonl(tmp_path / "a.jsonl", [{"text": "a"}], {1: "{bad"})
    err = run_cli("curate", "run", str(src), "--strict", "-w", ws, check=2).stderr
    assert "a.jsonl:2" in err
