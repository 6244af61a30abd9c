"""Overlap made visible (sampled overlap, warnings, why agreement is empty) and the users commands.

The fake store pins the rules; the real embedded server shows that a sampled record waits for its second
review while the others complete at one, and that users can be listed, given new passwords and removed.
"""

from __future__ import annotations

import json
import os

import httpx
import pytest
from typer.testing import CliRunner

from assay.cli import app
from assay.errors import ConfigError
from assay.label.pull import progress, pull
from assay.label.push import push
from assay.label.server import ServerInfo, add_user, list_users, remove_user, reset_password
from assay.label.spec import REVIEWS_NEEDED
from tests.label.fake_store import FakeStore

runner = CliRunner()


@pytest.fixture
def ws(tmp_path, monkeypatch):
    from assay.workspace import Workspace

    monkeypatch.delenv("ARGILLA_API_URL", raising=False)
    return Workspace.init(tmp_path / "ws")[0]


# -- the rules, on the fake store -------------------------------------------------------------------------


def test_sampled_overlap_marks_about_the_fraction_and_pull_waits_for_their_second_review(ws, write_review_version):
    fake = FakeStore()
    vid = write_review_version(ws, 200)
    result = push(ws, vid, dataset="ov", store=fake, overlap_fraction=0.2, overlap_min_submitted=2)
    assert result.overlap == {"fraction": 0.2, "min_submitted": 2, "seed": ws.config.label.seed}
    records = fake.datasets["ov"].records
    sampled = {rid for rid, r in records.items() if r.metadata[REVIEWS_NEEDED] == 2}
    assert {r.metadata[REVIEWS_NEEDED] for r in records.values()} == {1, 2}
    assert 0.12 <= len(sampled) / len(records) <= 0.28  # a seeded hash: about the fraction, not exactly
    again = FakeStore()
    push(ws, vid, dataset="ov", store=again, overlap_fraction=0.2, overlap_min_submitted=2)
    assert {rid for rid, r in again.datasets["ov"].records.items() if r.metadata[REVIEWS_NEEDED] == 2} == sampled
    for rid in records:
        fake.vote("ov", "ann", rid, decision="approve")
    before = progress(ws, "ov", store=fake)
    assert before["overlap_records"] == len(sampled) and before["completed"] == len(records) - len(sampled)
    assert before["agreement_note"].startswith("not measured yet") and "20% of the records need 2 reviews" in before["agreement_note"]
    kept = set(ws.datasets.get(pull(ws, "ov", store=fake).version).data().collect()["id"])
    assert kept == set(records) - sampled  # one review of two is not a consensus yet
    for rid in sampled:
        fake.vote("ov", "bob", rid, decision="approve")
    after = progress(ws, "ov", store=fake)
    assert after["agreement_note"] is None and after["agreement"]["questions"]["decision"]["units"] == len(sampled)
    assert set(ws.datasets.get(pull(ws, "ov", store=fake).version).data().collect()["id"]) == set(records)


def test_overlap_needs_a_server_that_completes_records_on_their_own_count(ws, write_review_version):
    fake = FakeStore()
    fake.record_overlap = False
    with pytest.raises(ConfigError, match="overlap_fraction needs assay's embedded Argilla server"):
        push(ws, write_review_version(ws, 4), dataset="ov", store=fake, overlap_fraction=0.1)
    assert fake.datasets == {}


def test_overlap_settings_that_cannot_work_are_refused(ws, write_review_version):
    with pytest.raises(ConfigError, match="overlap_min_submitted"):
        push(ws, write_review_version(ws, 4), dataset="ov", store=FakeStore(), overlap_fraction=0.1,
             overlap_min_submitted=2, min_submitted=2)


def test_one_review_per_record_with_several_curators_is_warned_and_explained(ws, write_review_version):
    vid = write_review_version(ws, 6)
    alone = push(ws, vid, dataset="solo", store=FakeStore(annotators=["ann"]))
    assert alone.warnings == []
    fake = FakeStore(annotators=["ann", "bob"])
    result = push(ws, vid, dataset="duo", store=fake)
    assert len(result.warnings) == 1 and "agreement cannot be measured" in result.warnings[0]
    assert "--overlap 0.1" in result.warnings[0]
    assert push(ws, vid, dataset="duo2", store=FakeStore(annotators=["ann", "bob"]), min_submitted=2).warnings == []
    fake.vote("duo", "ann", "p000", decision="approve")
    note = progress(ws, "duo", store=fake)["agreement_note"]
    assert note.startswith("cannot be measured") and "--overlap 0.1" in note and "duo-2" in note


# -- the real embedded server -----------------------------------------------------------------------------

argilla = pytest.mark.argilla


def _records(info: ServerInfo, dataset_id: str) -> dict[str, dict]:
    with httpx.Client(base_url=info.url, headers={"X-Argilla-Api-Key": info.api_key}, trust_env=False) as http:
        items = http.get(f"/api/v1/datasets/{dataset_id}/records", params={"limit": 1000}).json()["items"]
    return {item["external_id"]: item for item in items}


def _submit(info: ServerInfo, user: dict, record_id: str) -> None:
    with httpx.Client(base_url=info.url, headers={"X-Argilla-Api-Key": user["api_key"]}, trust_env=False) as http:
        body = {"values": {"decision": {"value": "approve"}}, "status": "submitted"}
        http.post(f"/api/v1/records/{record_id}/responses", json=body).raise_for_status()


@argilla
def test_sampled_records_wait_for_their_second_review_on_the_server(argilla_server, review_workspace, write_review_version):
    ws = review_workspace
    result = push(ws, write_review_version(ws, 30), dataset="ov-real", overlap_fraction=0.3, overlap_min_submitted=2)
    records = _records(argilla_server, result.dataset_id)
    sampled = {rid for rid, r in records.items() if r["metadata"][REVIEWS_NEEDED] == 2}
    assert 0 < len(sampled) < len(records)
    tag = os.urandom(3).hex()
    ann, bob = (add_user(argilla_server.home, f"{n}-{tag}") for n in ("ann", "bob"))
    for item in records.values():
        _submit(argilla_server, ann, item["id"])
    status = {rid: r["status"] for rid, r in _records(argilla_server, result.dataset_id).items()}
    assert {rid for rid, s in status.items() if s == "pending"} == sampled  # the others completed at one review
    for rid in sampled:
        _submit(argilla_server, bob, records[rid]["id"])
    assert set(r["status"] for r in _records(argilla_server, result.dataset_id).values()) == {"completed"}
    p = progress(ws, "ov-real")
    assert p["completed"] == len(records) and p["agreement_note"] is None


@argilla
def test_users_list_reset_password_and_remove(argilla_server, review_workspace, write_review_version):
    home, tag = argilla_server.home, os.urandom(3).hex()
    name = f"cur-{tag}"
    user = add_user(home, name)
    with pytest.raises(ConfigError, match="already exists") as raised:
        add_user(home, name)
    assert "reset-password" in raised.value.hint
    listed = {u["username"]: u for u in list_users(home)}
    assert listed[name]["role"] == "annotator" and listed[name]["responses"]["submitted"] == 0
    new = reset_password(home, name)["password"]
    assert new != user["password"]
    with httpx.Client(base_url=argilla_server.url, trust_env=False) as http:
        assert http.post("/api/v1/token", data={"username": name, "password": new}).status_code == 201
        assert http.post("/api/v1/token", data={"username": name, "password": user["password"]}).status_code == 401
    ws = review_workspace
    result = push(ws, write_review_version(ws, 2), dataset="users-real")
    _submit(argilla_server, user, _records(argilla_server, result.dataset_id)["p000"]["id"])
    assert {u["username"]: u for u in list_users(home)}[name]["responses"]["submitted"] == 1
    with pytest.raises(ConfigError, match="1 submitted"):
        remove_user(home, name)
    cli = runner.invoke(app, ["label", "users", "remove", name, "--delete-responses", "--json", "--workspace", str(ws.root)])
    assert cli.exit_code == 0, cli.output
    assert json.loads(cli.stdout) == {"ok": True, "username": name, "deleted_responses": 1}
    assert name not in {u["username"] for u in list_users(home)}
    with pytest.raises(ConfigError, match=f"no user `{name}`"):
        reset_password(home, name)
