"""Model versions (DESIGN §3): a trained adapter folder, registered immutably like a dataset version.

The folder holds what training wrote (peft adapter or full weights, tokenizer and chat template,
resolved config, metrics history, training manifest); assay adds `manifest.json` with lineage
(base model and its hash, every dataset version seen) and the sha256 of every file.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from assay.store.atomic import staging_dir
from assay.store.catalog import Catalog, Entry
from assay.store.digest import json_digest
from assay.store.manifest import library_versions, now_iso
from assay.store.versions import Layout, Version, commit, file_hashes

STATUSES = ("candidate", "promoted", "rejected")
# Files that record how a run went (timings, throughput), not what it produced: not part of the id.
_RUN_LOGS = ("metrics.jsonl", "training.json", "README.md")


@dataclass(frozen=True)
class ModelVersion(Version):
    """A registered model version; `path` loads with `PeftModel.from_pretrained(base, path)`."""


class ModelStore:
    """Register and read model versions of one workspace."""

    def __init__(self, layout: Layout, catalog: Catalog) -> None:
        self.layout, self.catalog = layout, catalog

    def register(self, src_dir: Path, manifest: dict, parents: list[str]) -> ModelVersion:
        """Move a finished training output folder into the catalog atomically; returns the version.

        The id hashes the files and the lineage, so registering identical weights twice is a no-op.
        """
        with staging_dir(self.layout.tmp) as staged:
            shutil.copytree(src_dir, staged, dirs_exist_ok=True)
            hashes = file_hashes(staged)
            config_hash = manifest.get("config_hash") or json_digest(manifest.get("config", {}))
            weights = {name: h["sha256"] for name, h in hashes.items() if not name.endswith(_RUN_LOGS)}
            vid = "mv-" + json_digest({"files": weights, "parents": sorted(parents), "config": config_hash})[:12]
            full = {
                **manifest, "id": vid, "family": "model", "kind": "model", "parents": sorted(parents),
                "config_hash": config_hash, "created_at": now_iso(), "status": "candidate",
                "library_versions": manifest.get("library_versions") or library_versions(),
            }
            entry, _ = commit(self.layout, self.catalog, staged, full)
        return self._version(entry)

    def get(self, ref: str) -> ModelVersion:
        return self._version(self.catalog.resolve(ref, family="model"))

    def list(self) -> list[Entry]:
        return self.catalog.entries("model")

    def _version(self, entry: Entry) -> ModelVersion:
        return ModelVersion(entry, self.layout.root / entry.path)
