"""The workspace: a directory with assay.toml, the catalog and every version's payload (DESIGN §3).

Resolution order: an explicit path (`--workspace`), then `$ASSAY_HOME`, then `./.assay`.

    ws = Workspace.open()                                   # or Workspace.init(path)
    cfg = ws.load_config(Path("train.toml"), {"train.base": "model.gguf"})
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assay.config import AssayConfig, load_config, workspace_toml
from assay.errors import WorkspaceError
from assay.layout import FAMILY_DIRS, Layout
from assay.store.atomic import STAGING_PREFIX, write_bytes_atomic
from assay.store.catalog import Catalog
from assay.store.datasets import DatasetStore
from assay.store.models import ModelStore
from assay.store.reports import ReportStore
from assay.store.versions import entry_for, verify_dir

ENV_HOME = "ASSAY_HOME"
DEFAULT_DIR = ".assay"


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
        layout = Layout(resolve_root(path))
        if layout.root.exists() and not layout.root.is_dir():
            raise WorkspaceError(f"{layout.root} exists and is not a directory", hint="choose another path")
        created = not layout.catalog.exists()
        layout.root.mkdir(parents=True, exist_ok=True)
        for folder in layout.created_dirs():
            folder.mkdir(exist_ok=True)
        if not layout.config.exists():
            write_bytes_atomic(layout.config, workspace_toml().encode())
        if not layout.key.exists():
            write_bytes_atomic(layout.key, secrets.token_hex(32).encode())
            os.chmod(layout.key, 0o600)
        Catalog(layout.catalog).create()
        return cls.open(layout.root), created

    @classmethod
    def open(cls, path: str | os.PathLike | None = None) -> Workspace:
        """Open an initialised workspace or explain how to create one."""
        layout = Layout(resolve_root(path))
        if not layout.catalog.exists():
            raise WorkspaceError(
                f"no assay workspace at {layout.root}",
                hint=f"run `assay init {layout.root}` first, or point --workspace / ${ENV_HOME} at an existing one",
            )
        Catalog(layout.catalog).create()  # adds tables newer assay versions need; a no-op otherwise
        return cls(root=layout.root, config=load_config(layout.config))

    @property
    def layout(self) -> Layout:
        return Layout(self.root)

    @property
    def catalog(self) -> Catalog:
        return Catalog(self.layout.catalog)

    @property
    def datasets(self) -> DatasetStore:
        return DatasetStore(self.layout, self.catalog)

    @property
    def models(self) -> ModelStore:
        return ModelStore(self.layout, self.catalog)

    @property
    def reports(self) -> ReportStore:
        return ReportStore(self.layout, self.catalog)

    @property
    def config_path(self) -> Path:
        return self.layout.config

    def load_config(self, overlay: Path | None = None, overrides: Mapping[str, Any] | None = None) -> AssayConfig:
        """The settings a command runs with: assay.toml, then `overlay` (--config), then dotted overrides."""
        if overlay is None:
            return self.config.with_overrides(overrides)
        return load_config(self.config_path, overlay, overrides)

    def key(self) -> bytes:
        """The workspace's secret (never leaves the workspace)."""
        return self.layout.key.read_bytes().strip()


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
    for leftover in staging_leftovers(layout):
        report.removed.append(str(leftover.relative_to(ws.root)))
        if fix:
            shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
    for family in FAMILY_DIRS:
        for folder in sorted(p for p in layout.family_dir(family).glob("*") if p.is_dir()):
            if folder.name in entries or folder.name.startswith(STAGING_PREFIX):
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


def staging_leftovers(layout: Layout) -> list[Path]:
    """Half-written files and folders of writers that are no longer running, in every staging place."""
    found = []
    for base in layout.staging_places():
        if base.is_dir():
            found += [p for p in base.iterdir() if p.name.startswith(STAGING_PREFIX) and not _writer_alive(p)]
    return sorted(set(found))


def _writer_alive(path: Path) -> bool:
    """Staging names carry the writer's pid: a live writer's folder is not a leftover."""
    pid = path.name[len(STAGING_PREFIX):].split("-", 1)[0].split(".", 1)[0]
    if not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
