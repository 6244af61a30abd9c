"""Fingerprints of inputs (size and SHA-256) for the version manifest and the rerun shortcut."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from assay.curate.readers.formats import InputFile
from assay.errors import InputError

_HASH_BLOCK = 1 << 20


def file_fingerprint(f: InputFile) -> dict[str, Any]:
    """Size and SHA-256 of an input, streamed, for the version manifest.

    A file hashes to `sha256sum`'s value. A folder (Hugging Face split) hashes every file
    under it in sorted order, each preceded by its relative path and a NUL byte.
    """
    digest, total = hashlib.sha256(), 0
    files = sorted(p for p in f.path.rglob("*") if p.is_file()) if f.path.is_dir() else [f.path]
    try:
        for path in files:
            if f.path.is_dir():
                digest.update(path.relative_to(f.path).as_posix().encode() + b"\0")
            total += _hash_into(digest, path)
    except OSError as exc:
        raise InputError(f"cannot read {f.path}: {exc.strerror or exc}") from exc
    return {
        "path": str(f.path),
        "source": f.source,
        "format": f.format,
        "bytes": total,
        "sha256": digest.hexdigest(),
    }


def _hash_into(digest: Any, path: Path) -> int:
    size = 0
    with open(path, "rb") as fh:
        while block := fh.read(_HASH_BLOCK):
            digest.update(block)
            size += len(block)
    return size
