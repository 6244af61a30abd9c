"""Signed reports: keys, DSSE envelopes around in-toto statements, subject checks, tampering."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess

import pytest

from assay.errors import CheckFailed, InputError, WorkspaceError
from assay.evaluate.signing import (
    PAYLOAD_TYPE,
    PREDICATE_TYPE,
    STATEMENT_TYPE,
    EnvelopeError,
    SignatureError,
    Statement,
    Subject,
    canonical_json,
    file_subjects,
    model_files,
    open_envelope,
    pae,
    read_envelope,
    sign_payload,
    sign_statement,
    verify_envelope,
    verify_subjects,
    write_envelope,
)
from assay.evaluate.signing_keys import (
    SIGNING_KEY_FILE,
    Ed25519PrivateKey,
    _create_exclusive,
    key_id,
    load_or_create_signing_key,
    load_public_key,
    load_signing_key,
    public_key_pem,
)

REPORT = {"schema": 1, "model": "mv-0123456789ab", "gate": {"passed": True, "reasons": []},
          "checks": [{"name": "bias", "metrics": {"pct_stereotype": {"candidate": 51.5, "baseline": 50.0}}}],
          "note": "naïve café"}


@pytest.fixture
def key(tmp_path):
    return load_or_create_signing_key(tmp_path / SIGNING_KEY_FILE)


@pytest.fixture
def model_dir(tmp_path):
    folder = tmp_path / "mv-0123456789ab"
    folder.mkdir()
    (folder / "adapter_model.safetensors").write_bytes(os.urandom(4096))
    (folder / "adapter_config.json").write_text('{"r": 8, "lora_alpha": 16}')
    (folder / "tokenizer.json").write_text("{}")
    (folder / "metrics.jsonl").write_text('{"step": 1, "train_loss": 2.0}\n')
    return folder


@pytest.fixture
def envelope(model_dir, key):
    return sign_statement(Statement(file_subjects(model_dir), REPORT), key)


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1:]


def _reencode(envelope: dict, field: str, change) -> dict:
    out = json.loads(json.dumps(envelope))
    if field == "payload":
        out["payload"] = base64.b64encode(change(base64.b64decode(out["payload"]))).decode()
    else:
        sig = out["signatures"][0]
        sig["sig"] = base64.b64encode(change(base64.b64decode(sig["sig"]))).decode()
    return out


# --- keys ---------------------------------------------------------------------------------------

def test_key_is_created_private_and_reused(tmp_path):
    path = tmp_path / SIGNING_KEY_FILE
    first = load_or_create_signing_key(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert key_id(load_or_create_signing_key(path)) == key_id(first)
    assert sorted(p.name for p in tmp_path.iterdir()) == [SIGNING_KEY_FILE]  # no staging leftovers


def test_exclusive_create_never_replaces_an_existing_key(tmp_path, key):
    path = tmp_path / SIGNING_KEY_FILE
    before = path.read_bytes()
    other = Ed25519PrivateKey.generate()
    _create_exclusive(path, other.private_bytes_raw())
    assert path.read_bytes() == before
    assert key_id(load_signing_key(path)) == key_id(key) != key_id(other)


def test_key_readable_by_others_is_refused(tmp_path, key):
    path = tmp_path / SIGNING_KEY_FILE
    os.chmod(path, 0o644)
    with pytest.raises(WorkspaceError, match="chmod 600"):
        load_signing_key(path)


def test_raw_seed_key_and_garbage_key(tmp_path):
    raw = tmp_path / "raw.key"
    seed = os.urandom(32)
    raw.write_bytes(seed)
    os.chmod(raw, 0o600)
    assert key_id(load_signing_key(raw)) == key_id(Ed25519PrivateKey.from_private_bytes(seed))
    raw.write_bytes(b"not a key at all")
    with pytest.raises(WorkspaceError, match="raw.key"):
        load_signing_key(raw)


def test_public_key_export_round_trips(key):
    pem = public_key_pem(key)
    assert pem.startswith("-----BEGIN PUBLIC KEY-----")
    assert key_id(load_public_key(pem)) == key_id(key)
    with pytest.raises(WorkspaceError):
        load_public_key("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")


# --- statement and canonical payload ------------------------------------------------------------

def test_round_trip(tmp_path, model_dir, key, envelope):
    path = tmp_path / "report.dsse.json"
    write_envelope(path, envelope)
    statement = verify_envelope(read_envelope(path), key.public_key())
    assert statement.predicate == REPORT
    assert statement.predicate_type == PREDICATE_TYPE
    assert {s.name for s in statement.subjects} == {"adapter_config.json", "adapter_model.safetensors"}
    assert verify_subjects(statement, model_dir) == []


def test_envelope_is_plain_dsse_in_toto_json(model_dir, key, envelope):
    text = json.dumps(envelope)
    loaded = json.loads(text)
    assert loaded["payloadType"] == "application/vnd.in-toto+json"
    assert loaded["signatures"][0]["keyid"] == key_id(key)
    statement = json.loads(base64.b64decode(loaded["payload"]))
    assert statement["_type"] == STATEMENT_TYPE == "https://in-toto.io/Statement/v1"
    digest = hashlib.sha256((model_dir / "adapter_model.safetensors").read_bytes()).hexdigest()
    assert {"name": "adapter_model.safetensors", "digest": {"sha256": digest}} in statement["subject"]
    assert statement["predicate"] == REPORT


def test_payload_is_canonical(model_dir, key):
    subjects = file_subjects(model_dir)
    shuffled = dict(reversed(list(REPORT.items())))
    one = sign_statement(Statement(subjects, REPORT), key)
    two = sign_statement(Statement(list(reversed(subjects)), shuffled), key)
    assert one == two  # Ed25519 is deterministic: same payload, same signature
    body = base64.b64decode(one["payload"])
    assert body == canonical_json(json.loads(body))
    assert "naïve café".encode() in body and b": " not in body and b", " not in body
    assert Statement(subjects, shuffled).to_bytes() == Statement(subjects, REPORT).to_bytes()


def test_non_finite_numbers_are_refused_with_their_path():
    with pytest.raises(InputError, match=r"\$\['checks'\]\[0\]\['delta'\]"):
        canonical_json({"checks": [{"delta": float("nan")}]})


def test_model_files_are_weights_and_loading_configs(model_dir):
    (model_dir / "sub").mkdir()
    (model_dir / "sub" / "model-00001-of-00002.safetensors").write_bytes(b"w")
    (model_dir / "tokenizer_config.json").write_text("{}")
    assert model_files(model_dir) == ["adapter_config.json", "adapter_model.safetensors",
                                      "sub/model-00001-of-00002.safetensors"]


def test_empty_model_folder_cannot_be_signed(tmp_path):
    with pytest.raises(InputError, match="no model files"):
        file_subjects(tmp_path)


# --- tampering ----------------------------------------------------------------------------------

@pytest.mark.parametrize("field", ["payload", "signature"])
def test_flipped_byte_is_a_bad_signature(key, envelope, field):
    tampered = _reencode(envelope, field, lambda b: _flip(b, len(b) // 2))
    with pytest.raises(SignatureError, match=key_id(key)) as err:
        verify_envelope(tampered, key.public_key())
    assert err.value.reason == "bad-signature" and err.value.exit_code == 1
    assert isinstance(err.value, CheckFailed)


def test_changed_payload_type_is_a_bad_signature(key, envelope):
    with pytest.raises(SignatureError) as err:
        verify_envelope({**envelope, "payloadType": "application/json"}, key.public_key())
    assert err.value.reason == "bad-signature"


def test_flipped_byte_in_a_subject_file_is_named(model_dir, key, envelope):
    statement = verify_envelope(envelope, key.public_key())
    weights = model_dir / "adapter_model.safetensors"
    weights.write_bytes(_flip(weights.read_bytes(), 100))
    problems = verify_subjects(statement, model_dir)
    assert len(problems) == 1 and problems[0].startswith("adapter_model.safetensors: sha256 is ")


def test_missing_and_uncovered_files_are_named(model_dir, key, envelope):
    statement = verify_envelope(envelope, key.public_key())
    (model_dir / "adapter_config.json").unlink()
    (model_dir / "extra").mkdir()
    (model_dir / "extra" / "adapter_model.bin").write_bytes(b"x")
    (model_dir / "notes.txt").write_text("not a model file")
    problems = verify_subjects(statement, model_dir)
    assert any(p.startswith("adapter_config.json: missing") for p in problems)
    assert any(p.startswith("extra/adapter_model.bin: model file not covered") for p in problems)
    assert len(problems) == 2


def test_subject_outside_the_folder_is_a_problem(model_dir):
    statement = Statement([Subject("../secret.safetensors", "0" * 64), *file_subjects(model_dir)], REPORT)
    assert verify_subjects(statement, model_dir) == ["../secret.safetensors: subject path points outside the model folder"]


def test_another_workspace_key_names_both_key_ids(tmp_path, key, envelope):
    (tmp_path / "other").mkdir()
    other = load_or_create_signing_key(tmp_path / "other" / SIGNING_KEY_FILE)
    with pytest.raises(SignatureError) as err:
        verify_envelope(envelope, other.public_key())
    assert err.value.reason == "unknown-keyid"
    assert key_id(key) in str(err.value) and key_id(other) in str(err.value)


def test_signature_without_keyid_tries_the_trusted_key(key, envelope):
    bare = json.loads(json.dumps(envelope))
    del bare["signatures"][0]["keyid"]
    assert verify_envelope(bare, key.public_key()).predicate == REPORT
    with pytest.raises(SignatureError) as err:
        verify_envelope(bare, Ed25519PrivateKey.generate().public_key())
    assert err.value.reason == "bad-signature"


def test_signed_payload_that_is_not_a_statement(key):
    envelope = sign_payload(PAYLOAD_TYPE, b'{"_type": "something else"}', key)
    with pytest.raises(SignatureError, match="_type") as err:
        verify_envelope(envelope, key.public_key())
    assert err.value.reason == "statement"


def test_other_predicate_type_is_refused_unless_asked(model_dir, key):
    statement = Statement(file_subjects(model_dir), REPORT, predicate_type="https://example.com/other/v1")
    envelope = sign_statement(statement, key)
    with pytest.raises(SignatureError, match="predicateType") as err:
        verify_envelope(envelope, key.public_key())
    assert err.value.reason == "predicate-type"
    assert verify_envelope(envelope, key.public_key(), predicate_type=None).predicate_type.endswith("other/v1")


# --- malformed input (exit 2) -------------------------------------------------------------------

@pytest.mark.parametrize(("change", "named"), [
    ({"payload": "not base64!"}, "`payload`"),
    ({"signatures": []}, "`signatures`"),
    ({"signatures": [{"keyid": "x", "sig": "%%%"}]}, "`signatures[0].sig`"),
    ({"payloadType": None}, "`payloadType`"),
])
def test_malformed_envelope_is_input_error(key, envelope, change, named):
    with pytest.raises(EnvelopeError, match=named.replace("[", r"\[").replace("]", r"\]")) as err:
        verify_envelope({**envelope, **change}, key.public_key())
    assert err.value.exit_code == 2


def test_unreadable_and_non_json_files(tmp_path):
    with pytest.raises(InputError, match="missing.dsse.json") as err:
        read_envelope(tmp_path / "missing.dsse.json")
    assert err.value.exit_code == 2
    broken = tmp_path / "broken.dsse.json"
    broken.write_text('{\n  "payload": \n')
    with pytest.raises(EnvelopeError, match=r"broken.dsse.json:\d+: not JSON"):
        read_envelope(broken)


# --- DSSE spec conformance ----------------------------------------------------------------------

def test_pae_matches_the_protocol_example():
    assert pae("http://example.com/HelloWorld", b"hello world") == b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    assert pae("application/vnd.exämple+json", b"").startswith(b"DSSEv1 29 ")  # bytes, not characters
    assert pae(PAYLOAD_TYPE, b"") == b"DSSEv1 28 application/vnd.in-toto+json 0 "


# From the DSSE repository's testvectors/vectors.json: Ed25519 keys of RFC 8032 section 7.1 (TEST 1),
# so signatures are deterministic and must match byte for byte.
RFC8032_SEED = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
RFC8032_PUBLIC = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
VECTOR_PAYLOAD = "eyJfdHlwZSI6Imh0dHBzOi8vaW4tdG90by5pby9TdGF0ZW1lbnQvdjEifQ=="
VECTOR_PAE = ("445353457631203238206170706c69636174696f6e2f766e642e696e2d746f746f2b6a736f6e203433207b225f7479"
              "7065223a2268747470733a2f2f696e2d746f746f2e696f2f53746174656d656e742f7631227d")
VECTOR_SIG = "2WAfaHm5jluo0w+0rk8uVkluELJYWjSmU9x7EUzx+AyteDGJ4/nqyJXfmAUVFIAoQafWm7AxBZNw5M9ixNHiCA=="
URLSAFE_PAYLOAD = "-_-_Pj8="
URLSAFE_SIG = "P-_KHICeR7tI6S_YyejJTRtrXhcQyQ2LYPaL8h90KjC9qN8HU_svOQ6TuDOT1HIrsGW886DbWNWcCmX5twLrAw=="


@pytest.fixture
def rfc_key():
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(RFC8032_SEED))
    assert key.public_key().public_bytes_raw().hex() == RFC8032_PUBLIC
    return key


def test_signature_matches_the_dsse_test_vector(rfc_key):
    body = base64.b64decode(VECTOR_PAYLOAD)
    assert pae(PAYLOAD_TYPE, body).hex() == VECTOR_PAE
    envelope = sign_payload(PAYLOAD_TYPE, body, rfc_key)
    assert envelope["payload"] == VECTOR_PAYLOAD
    assert envelope["signatures"][0]["sig"] == VECTOR_SIG


@pytest.mark.parametrize(("payload_type", "payload", "sig", "expect"), [
    (PAYLOAD_TYPE, VECTOR_PAYLOAD, VECTOR_SIG, "accept"),
    (PAYLOAD_TYPE, URLSAFE_PAYLOAD, URLSAFE_SIG, "accept"),
    ("application/vnd.example.other+json", VECTOR_PAYLOAD, VECTOR_SIG, "bad-signature"),
])
def test_dsse_test_vectors(rfc_key, payload_type, payload, sig, expect):
    envelope = {"payloadType": payload_type, "payload": payload, "signatures": [{"keyid": "A", "sig": sig}]}
    trusted = {"A": rfc_key.public_key()}
    supported = (PAYLOAD_TYPE, "application/vnd.example.other+json")
    if expect == "accept":
        expected = base64.urlsafe_b64decode(payload) if "-" in payload else base64.b64decode(payload)
        assert open_envelope(envelope, trusted, payload_types=supported) == expected
    else:
        with pytest.raises(SignatureError) as err:
            open_envelope(envelope, trusted, payload_types=supported)
        assert err.value.reason == expect


def test_valid_signature_over_unsupported_type_is_rejected(rfc_key):
    envelope = sign_payload("", b"{}", rfc_key)
    with pytest.raises(SignatureError) as err:
        open_envelope(envelope, {key_id(rfc_key): rfc_key.public_key()})
    assert err.value.reason == "payload-type"


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_openssl_verifies_from_the_exported_public_key(tmp_path, key, envelope):
    (tmp_path / "signing.pub.pem").write_text(public_key_pem(key))
    der = subprocess.run(["openssl", "pkey", "-pubin", "-in", "signing.pub.pem", "-outform", "DER"],
                         cwd=tmp_path, capture_output=True, check=True).stdout
    assert hashlib.sha256(der).hexdigest() == envelope["signatures"][0]["keyid"]
    kind, body = envelope["payloadType"].encode(), base64.b64decode(envelope["payload"])
    (tmp_path / "sig.bin").write_bytes(base64.b64decode(envelope["signatures"][0]["sig"]))
    verdicts = []
    for signed in (body, _flip(body, 5)):
        (tmp_path / "pae.bin").write_bytes(b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(signed), signed))
        verdicts.append(subprocess.run(
            ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", "signing.pub.pem", "-rawin",
             "-in", "pae.bin", "-sigfile", "sig.bin"], cwd=tmp_path, capture_output=True).returncode)
    assert verdicts[0] == 0 and verdicts[1] != 0
