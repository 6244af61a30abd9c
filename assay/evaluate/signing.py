"""Signed evaluation reports: an in-toto Statement about the adapter files, in a DSSE envelope.

    statement = Statement(file_subjects(model_dir), predicate=report_json)
    envelope = sign_statement(statement, key)           # key: see assay.evaluate.signing_keys
    write_envelope(report_dir / "report.dsse.json", envelope)
    statement = verify_envelope(read_envelope(path), public_key)   # raises SignatureError (exit 1)
    problems = verify_subjects(statement, model_dir)                # [] when every file matches

The envelope is plain JSON, as standard attestation tooling (in-toto, sigstore, DSSE libraries) reads it:

    {"payloadType": "application/vnd.in-toto+json",
     "payload": "<base64 of the statement>",
     "signatures": [{"keyid": "<sha256 hex of the DER public key>", "sig": "<base64 Ed25519 signature>"}]}

and the payload decodes to an in-toto Statement v1 whose subjects are the model's adapter files
(name relative to the model version folder, sha256 digest) and whose predicate is the report:

    {"_type": "https://in-toto.io/Statement/v1",
     "subject": [{"name": "adapter_model.safetensors", "digest": {"sha256": "..."}}, ...],
     "predicateType": "https://assay.invalid/eval-report/v1",
     "predicate": {...the report JSON...}}

The predicate type is a URI under the reserved `.invalid` domain (RFC 6761): in-toto allows an
unresolvable type URI, and this one can never point at anybody's site. The statement is serialised
as canonical JSON (sorted keys, no whitespace, UTF-8, no NaN), so one report gives one payload.

The signature is Ed25519 over DSSE's pre-authentication encoding, exactly as the DSSE protocol
defines it: PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body. Anyone can check
a report without assay, from the exported public key (`signing.pub.pem`) and OpenSSL 3:

    python3 - report.dsse.json <<'EOF'
    import base64, json, sys
    env = json.load(open(sys.argv[1]))
    t, b = env["payloadType"].encode(), base64.b64decode(env["payload"])
    open("pae.bin", "wb").write(b"DSSEv1 %d %s %d %s" % (len(t), t, len(b), b))
    open("sig.bin", "wb").write(base64.b64decode(env["signatures"][0]["sig"]))
    EOF
    openssl pkeyutl -verify -pubin -inkey signing.pub.pem -rawin -in pae.bin -sigfile sig.bin
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from assay.errors import CheckFailed, InputError
from assay.evaluate.signing_keys import Ed25519PrivateKey, Ed25519PublicKey, InvalidSignature, key_id
from assay.store.atomic import sha256_file, write_bytes_atomic

PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://assay.invalid/eval-report/v1"
# What a model version's subjects cover: weights and the config that says how to load them.
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".gguf")
LOADING_CONFIGS = ("adapter_config.json", "config.json")


class EnvelopeError(InputError):
    """The envelope cannot be read at all: not JSON, a missing field, malformed base64 (exit 2)."""


class SignatureError(CheckFailed):
    """The envelope was read but does not verify (exit 1). `reason` is a short machine-readable code:
    unknown-keyid, bad-signature, payload-type, statement or predicate-type."""

    def __init__(self, message: str, *, reason: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.reason = reason


@dataclass(frozen=True, order=True)
class Subject:
    """One signed file: its path relative to the model version folder and its sha256 (hex)."""

    name: str
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "digest": {"sha256": self.sha256}}


@dataclass(frozen=True)
class Statement:
    """An in-toto Statement v1: what was judged (subjects) and the judgement (predicate)."""

    subjects: Sequence[Subject]
    predicate: Mapping[str, Any]
    predicate_type: str = PREDICATE_TYPE

    def to_dict(self) -> dict[str, Any]:
        return {"_type": STATEMENT_TYPE, "subject": [s.to_dict() for s in sorted(self.subjects)],
                "predicateType": self.predicate_type, "predicate": dict(self.predicate)}

    def to_bytes(self) -> bytes:
        """The canonical payload: the same statement always gives the same bytes."""
        return canonical_json(self.to_dict())

    @classmethod
    def from_dict(cls, obj: Any) -> Statement:
        """Parse and check the shape; ValueError names the first field that is wrong."""
        if not isinstance(obj, dict) or obj.get("_type") != STATEMENT_TYPE:
            raise ValueError(f"`_type` is not {STATEMENT_TYPE}")
        if not isinstance(obj.get("predicateType"), str) or not isinstance(obj.get("predicate"), dict):
            raise ValueError("`predicateType` must be a string and `predicate` an object")
        subjects = obj.get("subject")
        if not isinstance(subjects, list) or not subjects:
            raise ValueError("`subject` must be a non-empty list")
        return cls([_parse_subject(s, i) for i, s in enumerate(subjects)], obj["predicate"], obj["predicateType"])


def _parse_subject(item: Any, index: int) -> Subject:
    digest = item.get("digest") if isinstance(item, dict) else None
    name, sha = (item.get("name"), digest.get("sha256")) if isinstance(digest, dict) else (None, None)
    if not isinstance(name, str) or not isinstance(sha, str):
        raise ValueError(f"`subject[{index}]` needs a `name` and a `digest.sha256`")
    return Subject(name, sha)


def canonical_json(obj: Any) -> bytes:
    """UTF-8 JSON with sorted keys and no insignificant whitespace; NaN and infinities are refused."""
    try:
        return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                          allow_nan=False).encode("utf-8")
    except (ValueError, TypeError) as exc:
        where = _non_finite_path(obj) or "the report"
        raise InputError(f"cannot sign {where}: {exc}",
                         hint="write plain JSON values (null for a missing number)") from exc


def _non_finite_path(obj: Any, path: str = "$") -> str | None:
    if isinstance(obj, float) and not math.isfinite(obj):
        return path
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list | tuple) else ()
    for key, value in items:
        if found := _non_finite_path(value, f"{path}[{key!r}]"):
            return found
    return None


def pae(payload_type: str, body: bytes) -> bytes:
    """DSSE pre-authentication encoding; lengths are byte lengths of the UTF-8 type and the body."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(body), body)


def sign_payload(payload_type: str, body: bytes, key: Ed25519PrivateKey) -> dict[str, Any]:
    """A DSSE envelope with one Ed25519 signature over PAE(payload_type, body)."""
    signature = key.sign(pae(payload_type, body))
    return {"payloadType": payload_type, "payload": base64.b64encode(body).decode("ascii"),
            "signatures": [{"keyid": key_id(key), "sig": base64.b64encode(signature).decode("ascii")}]}


def sign_statement(statement: Statement, key: Ed25519PrivateKey) -> dict[str, Any]:
    """Sign a statement's canonical bytes as an in-toto DSSE envelope."""
    if not statement.subjects:
        raise InputError("a signed report needs at least one subject (the adapter files)",
                         hint="build the subjects with `file_subjects(model_folder)`")
    return sign_payload(PAYLOAD_TYPE, statement.to_bytes(), key)


def open_envelope(envelope: Any, trusted: Mapping[str, Ed25519PublicKey], *,
                  payload_types: Sequence[str] = (PAYLOAD_TYPE,)) -> bytes:
    """Verify a DSSE envelope against trusted keys (keyid -> key); returns the payload bytes.

    Follows the DSSE protocol's order: decode, narrow keys by keyid (a signature without one
    tries every trusted key), verify over the PAE, then reject an unsupported payload type.
    """
    payload_type, body, signatures = _decode_envelope(envelope)
    message, candidates = pae(payload_type, body), 0
    for keyid, sig in signatures:
        for public in [trusted[keyid]] if keyid in trusted else [] if keyid else trusted.values():
            candidates += 1
            if _verifies(public, sig, message):
                return _supported(payload_type, body, payload_types)
    seen = ", ".join(sorted({k or "(none)" for k, _ in signatures}))
    if not candidates:
        raise SignatureError(f"the report is signed by key {seen}, not by the trusted key {', '.join(trusted)}",
                             reason="unknown-keyid", hint="verify with the public key of the workspace that signed it")
    raise SignatureError(f"the signature by key {seen} does not match the signed payload: "
                         "the report or its envelope changed after signing", reason="bad-signature",
                         hint="re-run `assay eval run` to produce a fresh report")


def verify_envelope(envelope: Any, public_key: Ed25519PublicKey, *,
                    predicate_type: str | None = PREDICATE_TYPE) -> Statement:
    """Check the signature and payload type, then parse the in-toto statement (predicate type too)."""
    body = open_envelope(envelope, {key_id(public_key): public_key})
    try:
        statement = Statement.from_dict(json.loads(body.decode("utf-8")))
    except (UnicodeDecodeError, ValueError) as exc:
        raise SignatureError(f"the signed payload is not an in-toto statement: {exc}", reason="statement") from exc
    if predicate_type is not None and statement.predicate_type != predicate_type:
        raise SignatureError(f"the statement's predicateType is {statement.predicate_type!r}, "
                             f"expected {predicate_type!r}", reason="predicate-type")
    return statement


def _supported(payload_type: str, body: bytes, payload_types: Sequence[str]) -> bytes:
    if payload_type not in payload_types:
        raise SignatureError(f"payloadType {payload_type!r} is not one of {', '.join(payload_types)}",
                             reason="payload-type")
    return body


def _verifies(public: Ed25519PublicKey, sig: bytes, message: bytes) -> bool:
    try:
        public.verify(sig, message)
    except InvalidSignature:
        return False
    return True


def _decode_envelope(envelope: Any) -> tuple[str, bytes, list[tuple[str | None, bytes]]]:
    if not isinstance(envelope, Mapping):
        raise EnvelopeError("the envelope is not a JSON object", hint="pass the report's .dsse.json file")
    payload_type, payload, sigs = envelope.get("payloadType"), envelope.get("payload"), envelope.get("signatures")
    if not isinstance(payload_type, str) or not isinstance(payload, str):
        raise EnvelopeError("the envelope needs string fields `payloadType` and `payload`")
    if not isinstance(sigs, list) or not sigs or not all(isinstance(s, Mapping) for s in sigs):
        raise EnvelopeError("the envelope's `signatures` must be a non-empty list of objects")
    decoded = []
    for i, sig in enumerate(sigs):
        keyid = sig.get("keyid")
        if keyid is not None and not isinstance(keyid, str):
            raise EnvelopeError(f"`signatures[{i}].keyid` must be a string")
        decoded.append((keyid or None, _b64decode(sig.get("sig"), f"signatures[{i}].sig")))
    return payload_type, _b64decode(payload, "payload"), decoded


def _b64decode(text: Any, name: str) -> bytes:
    """Standard or URL-safe base64, padded or not: DSSE verifiers must accept either alphabet."""
    if not isinstance(text, str):
        raise EnvelopeError(f"the envelope's `{name}` must be a base64 string")
    standard = text.replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise EnvelopeError(f"the envelope's `{name}` is not valid base64 ({exc})",
                            hint="the file is damaged; re-run `assay eval run`") from exc


def write_envelope(path: Path, envelope: Mapping[str, Any]) -> None:
    """Write an envelope as indented JSON (layout does not matter: the signature covers the payload)."""
    write_bytes_atomic(path, (json.dumps(envelope, indent=2, sort_keys=True) + "\n").encode("utf-8"))


def read_envelope(path: Path) -> dict[str, Any]:
    """Read an envelope file; an unreadable or non-JSON file is an InputError (exit 2) naming it."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read signed report {path}: {exc}", hint="check the path") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise EnvelopeError(f"{path}:{exc.lineno}: not JSON ({exc.msg})",
                            hint="the file is damaged; re-run `assay eval run`") from exc


def model_files(folder: Path) -> list[str]:
    """Files of a model version folder that a signature must cover: weights and their loading config."""
    files = (p for p in folder.rglob("*") if p.is_file())
    return sorted(p.relative_to(folder).as_posix() for p in files
                  if p.name in LOADING_CONFIGS or p.name.endswith(WEIGHT_SUFFIXES))


def file_subjects(folder: Path, names: Sequence[str] | None = None) -> list[Subject]:
    """Subjects for files of `folder` (default: `model_files(folder)`), hashed now."""
    names = sorted(model_files(folder) if names is None else names)
    if not names:
        raise InputError(f"no model files to sign in {folder} (looked for {', '.join(LOADING_CONFIGS)} "
                         f"and *{', *'.join(WEIGHT_SUFFIXES)})", hint="point at a model version folder")
    return [Subject(name, sha256_file(folder / name)) for name in names]


def verify_subjects(statement: Statement, folder: Path) -> list[str]:
    """Problems, one per file: changed (sha256 differs), missing, or a model file the statement does not cover."""
    if not folder.is_dir():
        return [f"model folder {folder} does not exist"]
    problems, signed = [], {s.name for s in statement.subjects}
    for subject in statement.subjects:
        path = folder / subject.name
        if not _inside(subject.name):
            problems.append(f"{subject.name}: subject path points outside the model folder")
        elif not path.is_file():
            problems.append(f"{subject.name}: missing from {folder}")
        elif (actual := sha256_file(path)) != subject.sha256:
            problems.append(f"{subject.name}: sha256 is {actual}, the signed report says {subject.sha256}")
    problems += [f"{name}: model file not covered by the signed report" for name in model_files(folder)
                 if name not in signed]
    return problems


def _inside(name: str) -> bool:
    path = PurePosixPath(name)
    return bool(name) and not path.is_absolute() and ".." not in path.parts and "\\" not in name
