"""Evaluation reports as versions: immutable, content-addressed, catalogued with the model they judge.

A report folder holds `report.json` (the results, canonical JSON), `report.html` (the page people
read), `report.dsse.json` (the signed attestation) and `manifest.json`. Its id is `rp-` + 12 hex of
the sha256 of `report.json`, so an identical evaluation is the same report; its parents are the
model version it judges and, when it is one, the baseline model version.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from assay.store.atomic import staging_dir
from assay.store.catalog import Entry
from assay.store.manifest import library_versions, now_iso
from assay.store.versions import Version, VersionStore, commit

REPORT, HTML, ENVELOPE = "report.json", "report.html", "report.dsse.json"


@dataclass(frozen=True)
class ReportVersion(Version):
    """A published report."""

    def read(self) -> bytes:
        return (self.path / REPORT).read_bytes()


class ReportStore(VersionStore):
    family = "report"
    version_class = ReportVersion

    def write(self, report_json: bytes, html: str, envelope_json: bytes, *, model: str, baseline: str | None,
              passed: bool, extra: dict[str, Any] | None = None) -> ReportVersion:
        """Publish a report atomically; the same report.json gives the same id (and is kept once)."""
        vid = self.id_for(report_json)
        parents = [model] + ([baseline] if baseline else [])
        manifest = {"id": vid, "family": "report", "kind": "eval", "parents": parents, "config_hash": "",
                    "created_at": now_iso(), "status": "passed" if passed else "failed",
                    "library_versions": library_versions(), **(extra or {})}
        with staging_dir(self.layout.tmp) as staged:
            (staged / REPORT).write_bytes(report_json)
            (staged / HTML).write_text(html, encoding="utf-8")
            (staged / ENVELOPE).write_bytes(envelope_json)
            entry, _ = commit(self.layout, self.catalog, staged, manifest)
        return self._version(entry)  # type: ignore[return-value]

    @staticmethod
    def id_for(report_json: bytes) -> str:
        """rp- + 12 hex of the sha256 of report.json: the same report is the same id."""
        return "rp-" + hashlib.sha256(report_json).hexdigest()[:12]

    def get(self, ref: str) -> ReportVersion:
        return self._version(self.catalog.resolve(ref, family=self.family))  # type: ignore[return-value]

    def for_model(self, model_id: str) -> list[Entry]:
        """Reports that judged this model version, newest first."""
        return sorted((e for e in self.list() if e.parents and e.parents[0] == model_id), key=lambda e: e.created_at, reverse=True)
