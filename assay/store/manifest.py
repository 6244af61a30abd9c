"""Manifest helpers shared by every kind of version."""

from __future__ import annotations

import json
import platform
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

_LIBRARIES = ("assay", "polars", "pyarrow", "numpy", "datasketch", "torch", "transformers", "peft", "argilla")


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def library_versions() -> dict[str, str]:
    """Versions of the libraries that can change results, as installed (missing ones omitted)."""
    out = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def dumps(manifest: dict) -> bytes:
    """Manifests are pretty, key-sorted JSON so that their bytes (and hashes) are reproducible."""
    return (json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n").encode()


def read_manifest(path: Path) -> dict:
    return json.loads((path / "manifest.json").read_text(encoding="utf-8"))


def python_info() -> str:
    return sys.version.split()[0]
