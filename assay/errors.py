"""Error types shaped for users: each says what is wrong, where, and how to fix it.

The CLI maps them to exit codes: 2 for bad input or configuration, 1 for a failed check or gate.
"""

from __future__ import annotations

import errno
import os
import re


class AssayError(Exception):
    """Base class for every error assay raises on purpose."""

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  fix: {self.hint}" if self.hint else self.message


class InputError(AssayError):
    """Input data cannot be used: a missing file, an empty file, missing content columns."""


class ConfigError(AssayError):
    """A configuration value or a command-line option is invalid."""


class NotFoundError(AssayError):
    """A version, tag or model reference does not resolve."""


class WorkspaceError(AssayError):
    """The workspace is missing, not initialised, or damaged."""


class MissingDependencyError(AssayError):
    """An optional dependency is not installed; the hint names the pip extra."""


class CheckFailed(AssayError):
    """A check or gate ran and did not pass (exit code 1)."""

    exit_code = 1


class StorageError(AssayError):
    """The disk refused a write (full, over quota); what was being written was never published."""


_OS_ERROR_CODE = re.compile(r"\(os error (\d+)\)")


def os_errno(exc: BaseException) -> int | None:
    """The OS error code of a failed read or write: `errno`, or, for Polars (whose OSError has no errno,
    and whose Parquet writer raises ComputeError), the "(os error N)" in its message."""
    if isinstance(exc, OSError) and exc.errno is not None:
        return exc.errno
    found = _OS_ERROR_CODE.search(str(exc))
    return int(found.group(1)) if found else None


_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def disk_full(exc: BaseException) -> bool:
    return os_errno(exc) in _DISK_FULL


def storage_error(exc: OSError) -> StorageError | None:
    """A disk-full OSError as a user-facing error; None for any other OSError (those stay bugs)."""
    code = os_errno(exc)
    if code not in _DISK_FULL:
        return None
    where = f" writing {exc.filename}" if exc.filename else ""
    reason = exc.strerror or os.strerror(code)
    return StorageError(
        f"the disk is full{where}: {reason}; nothing half-written was published",
        hint="free space on the workspace's disk (`assay doctor` removes staging leftovers), then rerun: finished versions are reused",
    )


def require(module: str, extra: str):
    """Import an optional dependency or raise an error naming the extra that provides it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"`{module}` is not installed ({exc})", hint=f'pip install "assay[{extra}]"'
        ) from exc
