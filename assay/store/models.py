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
from assay.store.digest import json_digest
from assay.store.manifest import library_versions, now_iso
from assay.store.versions import Version, VersionStore, commit, file_hashes

STATUSES = ("candidate", "promoted", "superseded", "rejected")
# Files that record how a run went (timings, throughput), not what it produced: not part of the id.
_RUN_LOGS = ("metrics.jsonl", "training.json", "README.md")


@dataclass(frozen=True)
class ModelVersion(Version):
    """A registered model version; `path` loads with `PeftModel.from_pretrained(base, path)`."""


class ModelStore(VersionStore):
    """Register and read model versions of one workspace."""

    family = "model"
    version_class = ModelVersion

    def register(self, src_dir: Path, manifest: dict, parents: list[str]) -> ModelVersion:
        """Move a finished training output folder into the catalog atomically; returns the version.

        The id hashes the files, the lineage, the config and the base model's sha256 (never a path), so
        registering identical weights twice is a no-op, in this workspace or any other.
        """
        with staging_dir(self.layout.tmp) as staged:
            shutil.copytree(src_dir, staged, dirs_exist_ok=True)
            hashes = file_hashes(staged)
            config_hash = manifest.get("config_hash") or json_digest(manifest.get("config", {}))
            weights = {name: h["sha256"] for name, h in hashes.items() if not name.endswith(_RUN_LOGS)}
            base = (manifest.get("base") or {}).get("sha256")
            vid = "mv-" + json_digest({"files": weights, "parents": sorted(parents), "config": config_hash, "base": base})[:12]
            full = {
                **manifest, "id": vid, "family": "model", "kind": "model", "parents": sorted(parents),
                "config_hash": config_hash, "created_at": now_iso(), "status": "candidate",
                "library_versions": manifest.get("library_versions") or library_versions(),
            }
            entry, _ = commit(self.layout, self.catalog, staged, full)
        return self._version(entry)

    def get(self, ref: str) -> ModelVersion:
        return self._version(self.catalog.resolve(ref, family=self.family))  # type: ignore[return-value]
