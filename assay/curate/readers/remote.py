"""Inputs at object-store URLs (s3://, gs://, az://, https://, hf://, memory://, ...) through fsspec.

A URL (a file, a folder or a glob) is listed on the driver; each file it names becomes an input
that is fetched by whichever process reads it, one file at a time, into a private folder that is
removed once read. With the Ray engine that is a worker on any node, so no file passes through the
driver. A folder among the matches (which may be a Hugging Face dataset whose files belong
together) is copied to the run's staging folder on the driver and read from there.

Either way a file's rows are named `<parent>/<name>`, as for a local copy of the file: a corpus
gives the same version id from a bucket or from disk, and the manifest records the URLs.
"""

from __future__ import annotations

import glob as globlib
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import Any

from assay.curate.readers.fingerprint import file_fingerprint
from assay.curate.readers.formats import InputFile, format_of, supported_list
from assay.errors import InputError
from assay.store.urls import filesystem, is_url, store_errors


def list_remote(inputs: Sequence[str | Path], folder: Path) -> tuple[list[str | Path], dict[str, str]]:
    """Inputs with every URL replaced by the URLs of the files it names (globs expanded, formats
    checked) and each folder it names by a local copy under `folder`; and each copy's URL by path."""
    out: list[str | Path] = []
    origin: dict[str, str] = {}
    for k, item in enumerate(inputs):
        if not is_url(item):
            out.append(item)
            continue
        for url, local in _list(str(item), folder / str(k)):
            out.append(local or url)
            if local is not None:
                origin[str(local)] = url
    return out, origin


def remote_input(url: str) -> InputFile:
    """The input for one file URL: named `<parent>/<name>` as a local copy would be."""
    pure = PurePosixPath(filesystem(url)[1])
    fmt = format_of(Path(pure.name))
    if fmt is None:
        raise InputError(f"unsupported file type: {url}", hint=f"supported extensions: {supported_list()}")
    return InputFile(Path(pure.as_posix()), f"{pure.parent.name or 'root'}/{pure.name}", fmt, url=url)


@contextmanager
def fetched(f: InputFile, folder: Path | None = None) -> Iterator[tuple[InputFile, dict | None]]:
    """`f` readable from local disk, and a remote input's fingerprint (None for a local one, which
    the driver fingerprints before reading). A remote input is copied into a private folder under
    `folder` (the system's temporary folder when None), which is removed afterwards."""
    if f.url is None:
        yield f, None
        return
    into = Path(tempfile.mkdtemp(prefix="fetch-", dir=folder))
    try:
        local = into / f.path.name
        fs, path = filesystem(f.url)
        with store_errors(f.url, "read", InputError):
            fs.get(path, str(local))
        copy = replace(f, path=local, url=None)
        yield copy, {**file_fingerprint(copy), "path": f.url}
    finally:
        shutil.rmtree(into, ignore_errors=True)


def _list(url: str, into: Path) -> list[tuple[str, Path | None]]:
    """(URL, None) for each file a URL names, (URL, local copy under `into`) for each folder."""
    fs, path = filesystem(url)
    with store_errors(url, "read", InputError):
        pattern = globlib.has_magic(path)
        matches = sorted(fs.glob(path)) if pattern else [path]
        if not matches:
            raise InputError(f"no files match {url}", hint="check the pattern and the bucket's listing")
        if not pattern and not fs.exists(path):
            raise FileNotFoundError(path)
        found: list[tuple[str, Path | None]] = []
        for match in matches:
            full = fs.unstrip_protocol(match)
            if fs.isdir(match):
                found.append((full, _copy_folder(fs, match, into)))
            elif not pattern or format_of(Path(match)):
                found.append((full, None))
        if not found:
            raise InputError(f"{url} matches no supported files", hint=f"supported extensions: {supported_list()}")
        return found


def _copy_folder(fs: Any, path: str, into: Path) -> Path:
    pure = PurePosixPath(path)
    local = into / (pure.parent.name or "root") / pure.name
    local.parent.mkdir(parents=True, exist_ok=True)
    fs.get(path, str(local), recursive=True)
    return local
