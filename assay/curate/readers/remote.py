"""Inputs at object-store URLs (s3://, gs://, az://, https://, hf://, memory://, ...) through fsspec.

Each URL (a file, a folder or a glob) is streamed into the run's staging folder before reading, as
`<staging>/<k>/<parent>/<name>`, so its rows' `source` is `<parent>/<name>` exactly as for a local copy
of the file: a corpus gives the same version id from a bucket or from disk. The copies are removed
with the staging folder when the run ends; the manifest records the URLs.
"""

from __future__ import annotations

import glob as globlib
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from assay.errors import InputError, MissingDependencyError


def is_url(item: str | Path) -> bool:
    """Whether an input names a remote file system (`scheme://`; plain paths and file:// are local)."""
    text = str(item)
    return "://" in text and not text.startswith("file://")


def stage_remote(inputs: Sequence[str | Path], folder: Path) -> tuple[list[str | Path], dict[str, str]]:
    """Inputs with every URL replaced by local copies under `folder`; and each copy's URL by path."""
    out: list[str | Path] = []
    origin: dict[str, str] = {}
    for k, item in enumerate(inputs):
        if not is_url(item):
            out.append(item)
            continue
        for url, local in _copy(str(item), folder / str(k)):
            out.append(local)
            origin[str(local)] = url
    return out, origin


def _copy(url: str, into: Path) -> list[tuple[str, Path]]:
    """Copy the file(s) a URL names into `into/<parent>/<name>`; (url, local path) of each."""
    fs, path = _filesystem(url)
    try:
        matches = sorted(fs.glob(path)) if globlib.has_magic(path) else [path]
        if not matches:
            raise InputError(f"no files match {url}", hint="check the pattern and the bucket's listing")
        copied = []
        for match in matches:
            pure = PurePosixPath(match)
            local = into / (pure.parent.name or "root") / pure.name
            local.parent.mkdir(parents=True, exist_ok=True)
            fs.get(match, str(local), recursive=fs.isdir(match))
            copied.append((fs.unstrip_protocol(match), local))
        return copied
    except FileNotFoundError as exc:
        raise InputError(f"{url} does not exist", hint="check the URL and your credentials for that store") from exc
    except PermissionError as exc:
        raise InputError(f"cannot read {url}: permission denied", hint="check your credentials for that store") from exc
    except OSError as exc:
        raise InputError(f"cannot read {url}: {exc}", hint="check the URL, the network and your credentials") from exc


def _filesystem(url: str):
    try:
        import fsspec
    except ImportError as exc:  # pragma: no cover - fsspec is a dependency
        raise MissingDependencyError("reading URLs needs fsspec", hint="pip install fsspec") from exc
    try:
        return fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as exc:
        protocol = url.split("://", 1)[0]
        package = {"s3": "s3fs", "s3a": "s3fs", "gs": "gcsfs", "gcs": "gcsfs", "az": "adlfs", "abfs": "adlfs"}.get(protocol)
        raise MissingDependencyError(
            f"cannot open {url}: {exc}",
            hint=f"pip install {package} (fsspec's {protocol}:// file system)" if package else
            f"install the fsspec file system for {protocol}://",
        ) from exc
