"""The workspace's Ed25519 signing key: created once, kept private, its public half exportable.

    key = load_or_create_signing_key(layout.root / SIGNING_KEY_FILE)
    public_key_pem(key)      # '-----BEGIN PUBLIC KEY-----\\n...' (SubjectPublicKeyInfo, for `openssl`)
    key_id(key)              # sha256 hex of the DER public key: the DSSE `keyid`

The private key lives in `signing.key` beside `workspace.key`, as an unencrypted PKCS#8 PEM
file with mode 0600 from its first byte (it is written to a 0600 temporary file, then hard-linked
into place, so a concurrent `assay` never sees half a key and never replaces an existing one).
A key that other users can read is refused, as ssh refuses one. The key id is reproducible
with standard tools from the exported public key:

    openssl pkey -pubin -in signing.pub.pem -outform DER | sha256sum
"""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

from assay.errors import MissingDependencyError, WorkspaceError
from assay.store.atomic import STAGING_PREFIX, fsync_path

try:
    from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingDependencyError(f"`cryptography` is not installed ({exc})", hint="pip install cryptography") from exc

SIGNING_KEY_FILE = "signing.key"
__all__ = ["Ed25519PrivateKey", "Ed25519PublicKey", "InvalidSignature", "SIGNING_KEY_FILE", "key_id",
           "load_or_create_signing_key", "load_public_key", "load_signing_key", "public_key_pem"]
_RAW_KEY_BYTES = 32
_REPLACE_HINT = ("restore {path} from a backup, or move it aside to create a new key "
                 "(reports signed with the old key then no longer verify)")


def load_or_create_signing_key(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 key at `path`, created (mode 0600, atomically) when the file does not exist yet."""
    if not path.exists():
        _create_exclusive(path, _private_pem(Ed25519PrivateKey.generate()))
    return load_signing_key(path)


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    """Read a private key: PKCS#8 PEM or DER, or the raw 32-byte seed. Refuses group/world-readable files."""
    try:
        data, mode = path.read_bytes(), path.stat().st_mode
    except OSError as exc:
        raise WorkspaceError(f"cannot read signing key {path}: {exc.strerror}",
                             hint="run `assay init` on the workspace to create one") from exc
    if os.name == "posix" and mode & 0o077:
        raise WorkspaceError(f"signing key {path} is readable by other users (mode {mode & 0o777:o})",
                             hint=f"chmod 600 {path}")
    return _parse_private_key(data, path)


def public_key_pem(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """The public key as a SubjectPublicKeyInfo PEM text (what `openssl pkey -pubin` reads)."""
    return _public(key).public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def load_public_key(pem: str | bytes) -> Ed25519PublicKey:
    """Parse an exported public key (PEM text), as written by `public_key_pem`."""
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise WorkspaceError(f"not a PEM public key: {exc}", hint="export it with `public_key_pem`") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise WorkspaceError(f"the public key is {type(key).__name__}, not Ed25519",
                             hint="use the key exported from the workspace that signed the report")
    return key


def key_id(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """sha256 hex of the DER SubjectPublicKeyInfo: the same for the private key and its public half."""
    der = _public(key).public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def _public(key: Ed25519PrivateKey | Ed25519PublicKey) -> Ed25519PublicKey:
    return key.public_key() if isinstance(key, Ed25519PrivateKey) else key


def _private_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _parse_private_key(data: bytes, path: Path) -> Ed25519PrivateKey:
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            key = serialization.load_pem_private_key(data, password=None)
        elif len(data) == _RAW_KEY_BYTES:
            key = Ed25519PrivateKey.from_private_bytes(data)
        else:
            key = serialization.load_der_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise WorkspaceError(f"signing key {path} is not a readable Ed25519 key ({exc})",
                             hint=_REPLACE_HINT.format(path=path)) from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise WorkspaceError(f"signing key {path} is {type(key).__name__}, not Ed25519",
                             hint=_REPLACE_HINT.format(path=path))
    return key


def _create_exclusive(path: Path, data: bytes) -> None:
    """Write a 0600 temporary file, then hard-link it to `path`; a key already there wins.

    os.replace would silently overwrite a key another process created a moment earlier, and
    reports signed with it would stop verifying; link() fails instead when the name exists.
    """
    # Named like assay.store.atomic's temporaries (pid first), so `assay doctor` spares a live writer's.
    tmp = path.with_name(f"{STAGING_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}-{path.name}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise WorkspaceError(f"cannot create signing key {path}: {exc.strerror}",
                             hint="check that the workspace exists and is writable") from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    fsync_path(path.parent)
