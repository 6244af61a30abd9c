"""The workspace: a directory with assay.toml, the catalog and every version's payload.

Resolution order: an explicit path (`--workspace`), then `$ASSAY_HOME`, then `./.assay`.
"""

from __future__ import annotations

import os
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from assay.config import CONFIG_FILE, AssayConfig, load_config, render_toml
from assay.errors import WorkspaceError
from assay.layout import FAMILY_DIRS, Layout
from assay.store.atomic import STAGING_PREFIX, write_bytes_atomic
from assay.store.catalog import Catalog
from assay.store.datasets import DatasetStore
from assay.store.models import ModelStore
from assay.store.versions import entry_for, verify_dir

ENV_HOME = "ASSAY_HOME"
DEFAULT_DIR = ".assay"
CATALOG_FILE = "catalog.db"
KEY_FILE = "workspace.key"

_HEADER = """assay workspace configuration.
Every key is optional: the commented values are the defaults. Uncomment a line to change it.
`assay curate run --config FILE` overlays another file with the same layout."""


def resolve_root(path: str | os.PathLike | None = None) -> Path:
    """The workspace directory for a command: explicit path, $ASSAY_HOME, or ./.assay."""
    chosen = path or os.environ.get(ENV_HOME) or DEFAULT_DIR
    return Path(chosen).expanduser().absolute()


@dataclass
class Workspace:
    """An opened workspace. Create with `Workspace.init(path)`, open with `Workspace.open(path)`."""

    root: Path
    config: AssayConfig = field(repr=False)

    @classmethod
    def init(cls, path: str | os.PathLike | None = None) -> tuple[Workspace, bool]:
        """Create (or keep) a workspace; returns it and whether it was new. Idempotent."""
        root = resolve_root(path)
        if root.exists() and not root.is_dir():
            raise WorkspaceError(f"{root} exists and is not a directory", hint="choose another path")
        created = not (root / CATALOG_FILE).exists()
        root.mkdir(parents=True, exist_ok=True)
        for sub in (*FAMILY_DIRS.values(), "tmp"):
            (root / sub).mkdir(exist_ok=True)
        if not (root / CONFIG_FILE).exists():
            write_bytes_atomic(root / CONFIG_FILE, render_toml(AssayConfig, _HEADER).encode())
        if not (root / KEY_FILE).exists():
            write_bytes_atomic(root / KEY_FILE, secrets.token_hex(32).encode())
            os.chmod(root / KEY_FILE, 0o600)
        Catalog(root / CATALOG_FILE).create()
        return cls.open(root), created

    @classmethod
    def open(cls, path: str | os.PathLike | None = None) -> Workspace:
        """Open an initialised workspace or explain how to create one."""
        root = resolve_root(path)
        if not (root / CATALOG_FILE).exists():
            raise WorkspaceError(
                f"no assay workspace at {root}",
                hint=f"run `assay init {root}` first, or point --workspace / ${ENV_HOME} at an existing one",
            )
        return cls(root=root, config=load_config(root / CONFIG_FILE))

    @property
    def layout(self) -> Layout:
        return Layout(self.root)

    @property
    def catalog(self) -> Catalog:
        return Catalog(self.root / CATALOG_FILE)

    @property
    def datasets(self) -> DatasetStore:
        return DatasetStore(self.layout, self.catalog)

    @property
    def models(self) -> ModelStore:
        return ModelStore(self.layout, self.catalog)

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG_FILE

    def load_config(self, overlay: Path | None = None) -> AssayConfig:
        return load_config(self.config_path, overlay) if overlay else self.config

    def key(self) -> bytes:
        """The workspace's secret (signs reports; never leaves the workspace)."""
        return (self.root / KEY_FILE).read_bytes().strip()


@dataclass
class DoctorReport:
    removed: list[str] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def doctor(ws: Workspace, *, deep: bool = True, fix: bool = True) -> DoctorReport:
    """Remove staging leftovers, recover or remove uncatalogued folders, verify every version's files."""
    report, layout, catalog = DoctorReport(), ws.layout, ws.catalog
    entries = {e.id: e for e in catalog.entries()}
    for leftover in _staging_leftovers(ws.root):
        report.removed.append(str(leftover.relative_to(ws.root)))
        if fix:
            shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
    for family in FAMILY_DIRS:
        for folder in sorted(p for p in layout.family_dir(family).glob("*") if p.is_dir()):
            if folder.name in entries:
                continue
            if not verify_dir(folder):
                report.recovered.append(folder.name)
                if fix:
                    catalog.add(entry_for(layout, folder))
            else:
                report.removed.append(str(folder.relative_to(ws.root)))
                if fix:
                    shutil.rmtree(folder)
    for entry in entries.values():
        report.checked += 1
        folder = ws.root / entry.path
        report.problems += [f"{entry.id}: folder {entry.path} is missing"] if not folder.is_dir() else verify_dir(folder, deep=deep)
    return report


def _staging_leftovers(root: Path) -> list[Path]:
    found = []
    for base in [root, root / "tmp", *(root / d for d in FAMILY_DIRS.values())]:
        if base.is_dir():
            found += [p for p in base.iterdir() if p.name.startswith(STAGING_PREFIX) and not _writer_alive(p)]
    return sorted(found)


def _writer_alive(path: Path) -> bool:
    """Staging names carry the writer's pid: a live writer's folder is not a leftover."""
    pid = path.name[len(STAGING_PREFIX):].split("-", 1)[0]
    if not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
