"""The README's generated references (`make docs` rewrites them; a test checks they are current).

Two blocks, each between its markers: the configuration reference (assay.toml, rendered from the
config models) and the batch file reference (rendered from the batch models).
"""

from __future__ import annotations

from pathlib import Path

BLOCKS = {
    "config-reference": lambda: _toml_block(__import__("assay.config", fromlist=["x"]).workspace_reference()),
    "batch-reference": lambda: _toml_block(__import__("assay.batch.config", fromlist=["x"]).batch_reference()),
}


def _toml_block(text: str) -> str:
    return f"```toml\n{text}```"


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def block(name: str) -> str:
    """A generated block with its markers, as README.md carries it."""
    start, end = markers(name)
    return f"{start}\n{BLOCKS[name]()}\n{end}"


def update_readme(path: Path) -> bool:
    """Rewrite every generated block of README.md from the models; True if anything changed."""
    text = new = path.read_text(encoding="utf-8")
    for name in BLOCKS:
        start, end = markers(name)
        i, j = new.index(start), new.index(end) + len(end)
        new = new[:i] + block(name) + new[j:]
    path.write_text(new, encoding="utf-8")
    return new != text
