"""The house rules, checked: import boundaries, no arrow running back up, and a light CLI start-up."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "assay"

# Lower parts never import higher ones; parts of equal rank never import each other.
RANKS = {
    "errors": 0, "layout": 0, "schema": 0,
    "settings": 1,
    "store": 2,
    "curate": 3,
    "label": 4, "train": 4,
    "evaluate": 5,
    "config": 6,
    "workspace": 7,
    "batch": 8,
    "demo": 9, "readme": 9,
    "cli": 10, "__main__": 11,
}
# The review stage embeds records for similarity search only when asked (`--vectors`), in one module.
TORCH_IN_LABEL = "assay/label/embed.py"


def _part(module: str) -> str:
    return module.split(".")[1] if "." in module else "assay"


def _imports() -> list[tuple[Path, str, str]]:
    """(file, importing part, imported module) for every import in the package, lazy ones included."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] if node.module != "assay" else [f"assay.{a.name}" for a in node.names]
                found += [(path, _part(module), name) for name in names]
            elif isinstance(node, ast.Import):
                found += [(path, _part(module), a.name) for a in node.names]
    return found


def test_no_arrow_runs_back_up() -> None:
    wrong = []
    for path, part, target in _imports():
        if not target.startswith("assay.") or part == "assay":
            continue
        other = _part(target)
        if other in ("assay", part) or other == "__version__":
            continue
        if part not in RANKS or other not in RANKS:
            wrong.append(f"{path.name}: unranked part {part!r} or {other!r} (add it to RANKS)")
        elif RANKS[other] >= RANKS[part]:
            wrong.append(f"{path.relative_to(PACKAGE.parent)}: {part} imports {target}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(("library", "allowed"), [
    ("torch", ("train", "evaluate")),
    ("transformers", ("train", "evaluate")),
    ("peft", ("train", "evaluate")),
    ("argilla", ("label",)),
    ("httpx", ("label",)),
])
def test_heavy_libraries_stay_in_their_part(library: str, allowed: tuple[str, ...]) -> None:
    wrong = [f"{path.relative_to(PACKAGE.parent)} ({part})" for path, part, target in _imports()
             if target.split(".")[0] == library and part not in allowed
             and str(path.relative_to(PACKAGE.parent)) != TORCH_IN_LABEL]
    assert not wrong, f"{library} imported outside {allowed}: {wrong}"


def _loaded_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", f"{code}\nimport sys; print(' '.join(sorted(sys.modules)))"],
                         capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_curation_store_and_review_import_without_torch() -> None:
    loaded = _loaded_after("import assay.workspace, assay.curate.pipeline, assay.label.push, assay.label.pull, "
                           "assay.store.export, assay.store.diff, assay.config")
    assert not {"torch", "transformers", "peft"} & loaded


def test_cli_start_up_loads_no_data_libraries() -> None:
    """`assay --help` answers fast because the command modules import the API inside each command."""
    loaded = _loaded_after("import assay.cli")
    assert not {"polars", "pyarrow", "numpy", "torch", "pydantic", "argilla", "httpx"} & loaded
