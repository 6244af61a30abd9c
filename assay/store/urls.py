"""Object-store URLs (s3://, gs://, az://, https://, hf://, memory://, ...) through fsspec: telling
a URL from a path, and the file system that serves one, with a clear error naming what to install."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from assay.errors import AssayError, MissingDependencyError, storage_error

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


@contextmanager
def store_errors(url: str, verb: str, error: type[AssayError]) -> Iterator[None]:
    """A store's failures while it `verb`s `url` as `error`s that name the URL and the fix.

    Besides OSError (what fsspec raises for a missing object or a refused request), a store's own
    library raises its own types: botocore's EndpointConnectionError for an unreachable endpoint,
    NoCredentialsError, aiohttp's ClientError, google-auth's errors. Those become `error` too; a
    full local disk is a StorageError; a built-in error that is not an OSError (a TypeError, say) is
    a bug and keeps its traceback.
    """
    try:
        yield
    except AssayError:
        raise
    except FileNotFoundError as exc:
        what = f"{url} does not exist" if verb == "read" else f"cannot {verb} {url}: {exc}"
        raise error(what, hint="check the URL (its bucket or container too) and your credentials for that store") from exc
    except PermissionError as exc:
        raise error(f"cannot {verb} {url}: permission denied", hint="check your credentials for that store") from exc
    except Exception as exc:
        if isinstance(exc, OSError) and (full := storage_error(exc)):
            raise full from exc  # the local disk filled (a fetched copy, a staged upload)
        if not isinstance(exc, OSError) and type(exc).__module__ == "builtins":
            raise
        raise error(
            f"cannot {verb} {url}: {type(exc).__name__}: {exc}",
            hint="check the URL, that the store is reachable (its endpoint, the network) and your credentials",
        ) from exc
