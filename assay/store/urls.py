"""Object-store URLs (s3://, gs://, az://, https://, hf://, memory://, ...) through fsspec: telling
a URL from a path, and the file system that serves one, with a clear error naming what to install."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from assay.errors import MissingDependencyError

# fsspec file systems that live in their own package, by protocol
_PACKAGES = {"s3": "s3fs", "s3a": "s3fs", "gs": "gcsfs", "gcs": "gcsfs", "az": "adlfs", "abfs": "adlfs"}


def is_url(item: str | Path) -> bool:
    """Whether a location names a remote file system (`scheme://`; plain paths and file:// are local)."""
    text = str(item)
    return "://" in text and not text.startswith("file://")


def filesystem(url: str) -> tuple[Any, str]:
    """The fsspec file system for `url` and the path within it."""
    try:
        import fsspec
    except ImportError as exc:  # pragma: no cover - fsspec is a dependency
        raise MissingDependencyError("object-store URLs need fsspec", hint="pip install fsspec") from exc
    try:
        return fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as exc:
        protocol = url.split("://", 1)[0]
        package = _PACKAGES.get(protocol)
        raise MissingDependencyError(
            f"cannot open {url}: {exc}",
            hint=f"pip install {package} (fsspec's {protocol}:// file system)" if package else
            f"install the fsspec file system for {protocol}://",
        ) from exc
