"""Where everything lives: one object names every folder of a workspace, one function the user cache.

    layout = Layout(Path(".assay"))
    layout.datasets / "ds-1a2b3c4d5e6f"        # a dataset version
    layout.runs / "3f2a9c1b7d4e5f60"           # a training run in progress

A workspace (DESIGN §3) holds its configuration, catalog and signing key at the top, every
version family in its own folder, and the working areas (runs, caches, the embedded Argilla)
beside them. The user cache (`user_cache_dir`) holds what several workspaces share: the
argilla-server environment and converted base models keyed by their hash.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

CONFIG_FILE, CATALOG_FILE, KEY_FILE, SIGNING_KEY_FILE = "assay.toml", "catalog.db", "workspace.key", "signing.key"
FAMILY_DIRS = {"dataset": "datasets", "model": "models", "report": "reports"}
ENV_CACHE = "ASSAY_CACHE_DIR"


@dataclass(frozen=True)
class Layout:
    """The folders and files of one workspace (nothing is created by reading a path)."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / CONFIG_FILE

    @property
    def catalog(self) -> Path:
        return self.root / CATALOG_FILE

    @property
    def key(self) -> Path:
        return self.root / KEY_FILE

    @property
    def signing_key(self) -> Path:
        """The workspace's Ed25519 key that signs evaluation reports (0600; never leaves the workspace)."""
        return self.root / SIGNING_KEY_FILE

    @property
    def tmp(self) -> Path:
        """Staging for atomic writes of versions (same filesystem as the versions, so renames are atomic)."""
        return self.root / "tmp"

    @property
    def datasets(self) -> Path:
        return self.root / FAMILY_DIRS["dataset"]

    @property
    def models(self) -> Path:
        return self.root / FAMILY_DIRS["model"]

    @property
    def reports(self) -> Path:
        return self.root / FAMILY_DIRS["report"]

    @property
    def derived(self) -> Path:
        """Rebuildable views of versions (curation reports); never part of a version's content."""
        return self.root / "derived"

    @property
    def runs(self) -> Path:
        """Training runs in progress (checkpoints), removed once their model version is registered."""
        return self.root / "runs"

    @property
    def cache(self) -> Path:
        """Workspace-local caches (converted GGUF base models, keyed by the file's hash)."""
        return self.root / "cache"

    @property
    def model_cache(self) -> Path:
        return self.cache / "models"

    @property
    def argilla(self) -> Path:
        """The embedded Argilla server's home: secrets, logs, database."""
        return self.root / "argilla"

    @property
    def label(self) -> Path:
        """Links between Argilla datasets and the versions they review."""
        return self.root / "label"

    def family_dir(self, family: str) -> Path:
        return self.root / FAMILY_DIRS[family]

    def version_dir(self, family: str, version_id: str) -> Path:
        return self.family_dir(family) / version_id

    def created_dirs(self) -> list[Path]:
        """The folders `assay init` creates."""
        return [self.tmp, self.datasets, self.models, self.reports, self.derived, self.runs, self.cache]

    def staging_places(self) -> list[Path]:
        """Every folder an atomic write may leave a staging leftover in (what `assay doctor` scans)."""
        return [self.root, self.tmp, self.datasets, self.models, self.reports, self.derived, self.label,
                self.model_cache, *self.run_checkpoint_dirs()]

    def run_checkpoint_dirs(self) -> list[Path]:
        return sorted(p / "checkpoints" for p in self.runs.glob("*") if (p / "checkpoints").is_dir())


def user_cache_dir() -> Path:
    """What workspaces of one user share: $ASSAY_CACHE_DIR, else $XDG_CACHE_HOME/assay, else ~/.cache/assay."""
    explicit = os.environ.get(ENV_CACHE)
    if explicit:
        return Path(explicit).expanduser().absolute()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache").absolute() / "assay"
