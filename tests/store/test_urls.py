"""How a store's failures reach the user: named with the URL and the fix, whatever library raised them."""

from __future__ import annotations

import errno

import pytest

from assay.errors import InputError, StorageError
from assay.store.urls import store_errors

URL = "s3://bucket/raw/a.jsonl"


class EndpointConnectionError(Exception):
    """Shaped like a store library's own error (botocore's is not an OSError)."""


EndpointConnectionError.__module__ = "botocore.exceptions"


@pytest.mark.parametrize(
    ("raised", "expected", "message"),
    [
        (FileNotFoundError(2, "No such key"), InputError, f"{URL} does not exist"),
        (PermissionError(13, "Access Denied"), InputError, f"cannot read {URL}: permission denied"),
        (ConnectionResetError(104, "reset by peer"), InputError, f"cannot read {URL}: ConnectionResetError"),
        (EndpointConnectionError("Could not connect"), InputError, f"cannot read {URL}: EndpointConnectionError"),
        (OSError(errno.ENOSPC, "No space left on device"), StorageError, "the disk is full"),
    ],
)
def test_store_failures_become_errors_that_name_the_url(raised: Exception, expected: type, message: str) -> None:
    with pytest.raises(expected) as caught, store_errors(URL, "read", InputError):
        raise raised
    assert message in str(caught.value)
    assert caught.value.__cause__ is raised


def test_a_write_keeps_its_own_error_type() -> None:
    with pytest.raises(StorageError, match=f"cannot write {URL}: EndpointConnectionError"), store_errors(URL, "write", StorageError):
        raise EndpointConnectionError("Could not connect")


def test_a_bug_keeps_its_traceback() -> None:
    with pytest.raises(TypeError), store_errors(URL, "read", InputError):
        raise TypeError("not a store failure")
