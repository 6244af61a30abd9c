"""push → respond → progress → pull against the real embedded Argilla server (plus server-free unit tests)."""

from __future__ import annotations

import json
import os

import polars as pl
import pytest
from typer.testing import CliRunner

from assay.cli import app
from assay.errors import CheckFailed, ConfigError, InputError, WorkspaceError
from assay.label import signals as S
from assay.label.config import LabelConfig
from assay.label.links import read_links
from assay.label.pull import progress, pull
from assay.label.push import push, select_rows
from assay.label.server import ServerInfo, add_user, procs
from assay.label.spec import build_spec, differences

runner = CliRunner()


# -- without a server -------------------------------------------------------------------------------------


def test_spec_follows_the_shape_and_names_differences():
    cfg = LabelConfig()
    pr = build_spec({"id": pl.String, "prompt": pl.String, "response": pl.String, "q_chars": pl.Int64, "q_x": pl.Float64}, cfg, vectors=False)
    assert pr["fields"] == {"record": {"type": "text", "required": True}, "prompt": {"type": "text", "required": True},
                            "response": {"type": "text", "required": True}}
    assert "corrected_response" in pr["questions"] and pr["overlap"] is None
    assert pr["metadata"]["characters"] == "integer" and pr["metadata"]["x"] == "float" and pr["vectors"] == {}
    chat = build_spec({"id": pl.String, "messages": pl.List(pl.Struct({"role": pl.String, "content": pl.String}))}, cfg, vectors=True)
    assert list(chat["fields"]) == ["record", "request", "messages"] and chat["vectors"] == {"embedding": 384}
    assert chat["fields"]["messages"] == {"type": "chat", "required": True} and chat["fields"]["request"]["type"] == "text"
    text = build_spec({"id": pl.String, "text": pl.String}, cfg, vectors=False)
    assert "corrected_text" in text["questions"] and "corrected_response" not in text["questions"]
    diffs = differences(pr, chat)
    assert any("field `messages` is not in the Argilla dataset" in d for d in diffs)
    assert any("field `prompt` is in the Argilla dataset" in d for d in diffs)
    assert any("vector `embedding`" in d for d in diffs)


def test_signals_put_pii_borderline_and_clusters_first():
    data = pl.DataFrame({"id": ["far", "edge", "pii", "rep"], "q_chars": [1000, 41, 900, 800],
                         "pii_email": [0, 0, 1, 0], "pii_any": [False, False, True, False]})
    rejects = pl.DataFrame({"id": ["d1", "d2"], "duplicate_of": ["rep", "rep"], "step": ["x", "x"], "reason": ["y", "y"]})
    ordered = S.push_order(S.with_signals(data, rejects, {"quality": {"min_chars": 40}}, "default"), seed=0)
    assert ordered.get_column("id").to_list()[:2] == ["pii", "edge"]
    assert dict(zip(ordered["id"], ordered[S.CLUSTER], strict=True))["rep"] == 3
    assert ordered.filter(pl.col("id") == "edge")[S.QUALITY][0] == pytest.approx(0.5125, abs=1e-3)
    none = S.with_signals(data.drop("q_chars"), rejects, {}, "quality")
    assert none[S.QUALITY].null_count() == 4


def test_sample_is_deterministic_and_grows_as_a_prefix(tmp_path, write_review_version):
    from assay.workspace import Workspace

    ws, _ = Workspace.init(tmp_path / "ws")
    version = ws.datasets.get(write_review_version(ws, 30))
    small = select_rows(version, LabelConfig(sample=5, priority="none", seed=7))["id"].to_list()
    again = select_rows(version, LabelConfig(sample=5, priority="none", seed=7))["id"].to_list()
    bigger = select_rows(version, LabelConfig(sample=10, priority="none", seed=7))["id"].to_list()
    other = select_rows(version, LabelConfig(sample=5, priority="none", seed=8))["id"].to_list()
    assert small == again and bigger[:5] == small and other != small


def test_no_server_errors_name_the_serve_command(tmp_path, monkeypatch, write_review_version):
    from assay.workspace import Workspace

    monkeypatch.delenv("ARGILLA_API_URL", raising=False)
    ws, _ = Workspace.init(tmp_path / "ws")
    vid = write_review_version(ws, 3)
    with pytest.raises(WorkspaceError, match="assay label serve"):
        push(ws, vid)
    monkeypatch.setenv("ARGILLA_API_URL", f"http://127.0.0.1:{procs.free_port()}")
    monkeypatch.setenv("ARGILLA_API_KEY", "whatever")
    with pytest.raises(WorkspaceError, match="does not answer") as raised:
        push(ws, vid)
    assert "assay label serve" in str(raised.value)
    monkeypatch.delenv("ARGILLA_API_KEY")
    with pytest.raises(ConfigError, match="ARGILLA_API_KEY"):
        push(ws, vid)
    assert read_links(ws.root) == {}
    result = runner.invoke(app, ["label", "pull", "anything", "--workspace", str(ws.root), "--json"])
    assert result.exit_code == 2 and json.loads(result.stdout)["ok"] is False


# -- against the server -----------------------------------------------------------------------------------

argilla = pytest.mark.argilla


def _record_ids(info: ServerInfo, dataset_id: str) -> dict[str, str]:
    import httpx

    with httpx.Client(base_url=info.url, headers={"X-Argilla-Api-Key": info.api_key}, trust_env=False) as http:
        items = http.get(f"/api/v1/datasets/{dataset_id}/records", params={"limit": 1000}).json()["items"]
    return {item["external_id"]: item["id"] for item in items}


def _respond(info: ServerInfo, user: dict, record_id: str, values: dict, status: str = "submitted") -> None:
    """One response through the argilla SDK, as the annotator."""
    import argilla as rg
    from argilla._models._record._response import UserResponseModel

    client = rg.Argilla(api_url=info.url, api_key=user["api_key"], trust_env=False)
    body = UserResponseModel(values={q: {"value": v} for q, v in values.items()}, status=status, user_id=user["id"])
    client.api.records.create_record_response(record_id, body)


@argilla
def test_push_is_idempotent_and_completes_an_interrupted_push(argilla_server, review_workspace, write_review_version):
    ws = review_workspace
    vid = write_review_version(ws, 12)
    first = push(ws, vid, dataset="pp-resume", sample=4)  # as if the first push had died after 4 records
    assert (first.created, first.added, first.existing) == (True, 4, 0)
    second = push(ws, vid, dataset="pp-resume")
    assert (second.created, second.added, second.existing, second.selected) == (False, 8, 4, 12)
    assert second.records_per_s and second.records_per_s > 0
    third = push(ws, vid, dataset="pp-resume")
    assert third.added == 0 and third.existing == 12
    assert sorted(_record_ids(argilla_server, first.dataset_id)) == sorted(f"p{i:03d}" for i in range(12))
    link = read_links(ws.root)["pp-resume"]
    assert link["version"] == vid and link["dataset_id"] == first.dataset_id and link["records"] == 12


@argilla
def test_push_refuses_another_schema_or_version(argilla_server, review_workspace, write_review_version):
    ws = review_workspace
    vid = write_review_version(ws, 3)
    push(ws, vid, dataset="pp-schema")
    with pytest.raises(ConfigError) as raised:
        push(ws, vid, dataset="pp-schema", min_submitted=2)
    assert "min_submitted differs: Argilla has 1, this push needs 2" in str(raised.value)
    chat = write_review_version(ws, 3, shape="chat")
    with pytest.raises(ConfigError) as raised:
        push(ws, chat, dataset="pp-schema")
    assert "field `messages` is not in the Argilla dataset" in str(raised.value) and "--dataset NAME" in str(raised.value)
    other = write_review_version(ws, 3, tag="other")
    with pytest.raises(ConfigError, match=f"reviews version {vid}, not {other}"):
        push(ws, other, dataset="pp-schema")
    push(ws, other, dataset="pp-overlap", min_submitted=2)
    assert push(ws, other, dataset="pp-overlap").added == 0  # without --min-submitted the dataset's own is kept


@argilla
def test_wrong_api_key_is_a_clear_error(argilla_server, review_workspace, write_review_version, monkeypatch):
    monkeypatch.setenv("ARGILLA_API_URL", argilla_server.url)
    monkeypatch.setenv("ARGILLA_API_KEY", "not-a-key")
    with pytest.raises(ConfigError, match="rejected the API key"):
        push(review_workspace, write_review_version(review_workspace, 2), dataset="pp-key")


@argilla
def test_pull_without_responses_writes_nothing(argilla_server, review_workspace, write_review_version):
    ws = review_workspace
    vid = write_review_version(ws, 3, shape="chat")
    push(ws, vid, dataset="pp-empty")
    before = len(ws.datasets.list())
    with pytest.raises(InputError, match="no submitted responses") as raised:
        pull(ws, "pp-empty")
    assert raised.value.exit_code == 2 and len(ws.datasets.list()) == before


@pytest.fixture
def reviewed(argilla_server, review_workspace, write_review_version):
    """A pushed version answered by two annotators (agreeing, disagreeing, one edit, a draft, a discard)."""
    ws = review_workspace
    vid = write_review_version(ws, 12)
    result = push(ws, vid, dataset="pp-reviewed")
    ids = _record_ids(argilla_server, result.dataset_id)
    tag = os.urandom(3).hex()
    ann, bob = (add_user(argilla_server.home, f"{name}-{tag}") for name in ("ann", "bob"))
    answers = {
        "p000": ({"decision": "approve", "quality": 5}, {"decision": "approve", "quality": 4}),
        "p001": ({"decision": "approve"}, {"decision": "reject", "issues": ["factual_error"]}),
        "p002": ({"decision": "reject", "issues": ["pii"]}, {"decision": "reject", "issues": ["pii"]}),
        "p003": ({"decision": "edit", "corrected_response": "It is 9, because 3 x 3 = 9."}, {"decision": "approve"}),
        "p005": ({"decision": "approve"}, {"decision": "approve"}),
        "p004": ({"decision": "approve"}, None),
    }
    for row, (a, b) in answers.items():
        _respond(argilla_server, ann, ids[row], a)
        if b:
            _respond(argilla_server, bob, ids[row], b)
    _respond(argilla_server, ann, ids["p006"], {"decision": "approve"}, status="draft")
    _respond(argilla_server, bob, ids["p006"], {}, status="discarded")
    return ws, vid, ann["username"], bob["username"]


@argilla
def test_progress_and_pull_by_policy(reviewed):
    ws, vid, ann, bob = reviewed
    p = progress(ws, "pp-reviewed")
    assert p["records"] == 12 and p["with_votes"] == 6 and p["version"] == vid
    assert p["annotators"][ann] == {"submitted": 6, "discarded": 0, "draft": 1}
    assert p["annotators"][bob] == {"submitted": 5, "discarded": 1, "draft": 0}
    # suggestions read back from the server: p002's [pii] kept by both, p000's [low_quality] (on a threshold) by neither
    assert p["kept_suggestions"]["issues"] == {"answers": 4, "kept": 2, "share": 0.5}
    decision = p["agreement"]["questions"]["decision"]
    # ann: approve approve reject edit approve; bob: approve reject reject approve approve (p000 p001 p002 p003 p005)
    assert decision["cohen_kappa"] == pytest.approx(0.2857, abs=1e-4)  # po 3/5, pe 11/25
    assert decision["krippendorff_alpha"] == pytest.approx(1 / 3, abs=1e-4)  # 1 - 9 * 4 / 54

    majority = pull(ws, "pp-reviewed", policy="majority")
    approved = ws.datasets.get(majority.version)
    rows = {r["id"]: r for r in approved.data().collect().to_dicts()}
    assert sorted(rows) == ["p000", "p003", "p004", "p005"] and approved.kind == "approved"
    assert rows["p003"]["response"] == "It is 9, because 3 x 3 = 9." and rows["p003"]["review_original"] == "It is 9."
    assert rows["p003"]["review_decision"] == "edit" and rows["p003"]["review_corrected"] is True
    assert rows["p000"]["review_annotators"] == [ann, bob]  # in submission order
    assert rows["p000"]["review_quality"] == 4.5 and rows["p004"]["split"] == "val"
    assert rows["p000"]["review_submitted_at"] is not None
    rejects = approved.rejects().collect()
    reasons = dict(zip(rejects["id"], rejects["reason"], strict=True))
    assert reasons["p001"] == "no_consensus" and reasons["p002"] == "rejected_by_review" and reasons["p006"] == "not_reviewed"
    assert set(rejects["step"]) == {"review"} and rejects.height == 8
    m = approved.manifest
    assert m["parents"] == [vid] and m["review"]["argilla"]["dataset_id"] == majority.dataset_id
    assert len(m["review"]["responses_sha256"]) == 64 and m["review"]["policy"] == "majority"
    assert m["review"]["agreement"]["questions"]["decision"]["cohen_kappa"] == pytest.approx(0.2857, abs=1e-4)
    assert majority.disagreements[0]["id"] in {"p001", "p003"} and len(majority.disagreements) == 2

    assert pull(ws, "pp-reviewed", policy="majority").version == majority.version  # same reviews: same version
    strict = pull(ws, "pp-reviewed", policy="min-votes:2")
    kept = ws.datasets.get(strict.version).data().collect()["id"].to_list()
    assert kept == ["p000", "p003", "p005"] and strict.rejected["no_consensus"] == 2  # p001 tie, p004 one vote
    unanimous = pull(ws, "pp-reviewed", policy="unanimous")
    assert unanimous.kept == 4 and unanimous.version != majority.version

    with pytest.raises(CheckFailed) as raised:
        pull(ws, "pp-reviewed", min_agreement=0.6)
    assert raised.value.exit_code == 1 and "0.333 < min_agreement 0.6" in str(raised.value)


@argilla
def test_cli_round_trip(reviewed):
    ws = reviewed[0]
    base = ["--workspace", str(ws.root), "--json"]
    result = runner.invoke(app, ["label", "progress", "pp-reviewed", *base])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["records"] == 12
    low = runner.invoke(app, ["label", "pull", "pp-reviewed", "--min-agreement", "0.9", *base])
    assert low.exit_code == 1 and "agreement too low" in json.loads(low.stdout)["error"]
    ok = runner.invoke(app, ["label", "pull", "pp-reviewed", "--policy", "min-votes:2", "--name", "train-approved", *base])
    assert ok.exit_code == 0, ok.output
    version = json.loads(ok.stdout)["version"]
    shown = runner.invoke(app, ["data", "show", "train-approved", *base])
    assert json.loads(shown.stdout)["manifest"]["kind"] == "approved" and json.loads(shown.stdout)["manifest"]["id"] == version
    moved = runner.invoke(app, ["label", "pull", "pp-reviewed", "--name", "train-approved", *base])
    assert moved.exit_code == 0, moved.output
    shown = runner.invoke(app, ["data", "show", "train-approved", *base])
    assert json.loads(shown.stdout)["manifest"]["id"] == json.loads(moved.stdout)["version"] != version
    bad = runner.invoke(app, ["label", "pull", "pp-reviewed", "--policy", "most", *base])
    assert bad.exit_code == 2
    for command in (["push"], ["pull"], ["progress"], ["serve"], ["stop"], ["status"], ["users", "add"]):
        helped = runner.invoke(app, ["label", *command, "--help"])
        assert helped.exit_code == 0, command
        assert all(word in helped.output for word in ("Example", "--json", "--workspace")), command


@argilla
def test_push_with_vectors_enables_similarity_search(argilla_server, review_workspace, write_review_version):
    pytest.importorskip("transformers")
    try:
        from assay.label.embed import packaged_model_dir

        packaged_model_dir()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"no embedding model: {exc}")
    import argilla as rg

    ws = review_workspace
    result = push(ws, write_review_version(ws, 4, shape="text"), dataset="pp-vectors", vectors=True)
    assert result.added == 4 and result.vectors
    client = rg.Argilla(api_url=argilla_server.url, api_key=argilla_server.api_key, trust_env=False)
    dataset = client.datasets(name="pp-vectors", workspace="assay")
    records = list(dataset.records(with_vectors=True))
    assert len(records[0].vectors["embedding"]) == 384
    query = rg.Query(similar=rg.Similar(name="embedding", value=records[0]))
    similar = list(dataset.records(query=query, limit=2))
    assert similar and records[0].id not in {record.id for record, _ in similar}


def test_metadata_names_are_words_and_titles_round_trip():
    from assay.label.spec import column_metadata, metadata_title

    for column in ("q_chars", "q_dup_line_frac", "q_top_2gram_frac", "q_dup_10gram_frac", "q_new_signal", "source"):
        name, title = column_metadata(column)
        assert not name.startswith("q_") and metadata_title(name) == title
    assert column_metadata("q_dup_5gram_frac") == ("repeated_5grams_share", "Repeated 5-grams (share)")
    assert metadata_title("personal_data") == "Personal data found"
