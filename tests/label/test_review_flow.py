"""push → vote → pull on an in-memory review store: the label stage's rules, fast and without a server.

The real Argilla server stays the end-to-end truth (test_label_push_pull.py, test_label_browser.py);
these tests pin the logic behind the `ReviewStore` seam.
"""

from __future__ import annotations

import json

import polars as pl
import pytest
from typer.testing import CliRunner

from assay.cli import app
from assay.errors import CheckFailed, ConfigError, InputError, NotFoundError
from assay.label import client
from assay.label.links import read_links
from assay.label.pull import progress, pull
from assay.label.push import push
from tests.label.fake_store import FakeStore

runner = CliRunner()

# two annotators on p000..p006: agreeing, disagreeing, one edit, one single vote, a draft and a discard
ANSWERS = {
    "p000": ({"decision": "approve", "quality": 5}, {"decision": "approve", "quality": 4}),
    "p001": ({"decision": "approve"}, {"decision": "reject", "issues": ["factual_error"]}),
    "p002": ({"decision": "reject", "issues": ["pii"]}, {"decision": "reject", "issues": ["pii"]}),
    "p003": ({"decision": "edit", "corrected_response": "It is 9, because 3 x 3 = 9."}, {"decision": "approve"}),
    "p005": ({"decision": "approve"}, {"decision": "approve"}),
    "p004": ({"decision": "approve"}, None),
}


@pytest.fixture
def ws(tmp_path, monkeypatch):
    from assay.workspace import Workspace

    monkeypatch.delenv("ARGILLA_API_URL", raising=False)
    return Workspace.init(tmp_path / "ws")[0]


@pytest.fixture
def fake() -> FakeStore:
    return FakeStore()


@pytest.fixture
def reviewed(ws, fake, write_review_version):
    """12 rows pushed into `rv`, answered by ann and bob as in ANSWERS."""
    vid = write_review_version(ws, 12)
    push(ws, vid, dataset="rv", store=fake)
    for row, (a, b) in ANSWERS.items():
        fake.vote("rv", "ann", row, **a)
        if b:
            fake.vote("rv", "bob", row, **b)
    fake.vote("rv", "ann", "p006", status="draft", decision="approve")
    fake.vote("rv", "bob", "p006", status="discarded")
    return ws, vid


# -- push -------------------------------------------------------------------------------------------------


def test_push_sends_the_highest_priority_rows_first(ws, fake, write_review_version):
    vid = write_review_version(ws, 12)
    result = push(ws, vid, dataset="top", store=fake, sample=3)
    held = fake.datasets["top"].records
    assert (result.selected, result.added, result.created) == (3, 3, True)
    assert set(held) == {"p000", "p002", "p001"}  # on a quality threshold, flagged PII, then the next closest
    priorities = [r.metadata["review_priority"] for r in held.values()]
    assert priorities == sorted(priorities, reverse=True)
    assert held["p002"].metadata["personal_data"] == "yes"
    assert {s["question_name"] for s in held["p002"].suggestions} == {"issues", "quality"}  # no decision by default
    assert held["p000"].fields == {"record": "review.jsonl, line 1 · row p000 · split train",
                                   "prompt": "review prompt 0: what is 0 times three?", "response": "It is 0."}
    pii_only = push(ws, vid, dataset="pii", store=fake, sample=1, priority="pii")
    assert pii_only.priority == "pii" and list(fake.datasets["pii"].records) == ["p002"]


def test_repeated_push_adds_only_what_is_missing(ws, fake, write_review_version):
    vid = write_review_version(ws, 12)
    first = push(ws, vid, dataset="again", store=fake, sample=4)
    seen: list[tuple[int, int]] = []
    second = push(ws, vid, dataset="again", store=fake, batch_size=5, progress=lambda done, total: seen.append((done, total)))
    third = push(ws, vid, dataset="again", store=fake)
    assert (first.added, second.added, second.existing, third.added, third.existing) == (4, 8, 4, 0, 12)
    assert (second.created, third.created) == (False, False) and third.records_per_s is None
    assert fake.batches == [4, 5, 3] and seen == [(0, 8), (5, 8), (8, 8)]
    assert sorted(fake.datasets["again"].records) == [f"p{i:03d}" for i in range(12)]
    link = read_links(ws.root)["again"]
    assert (link["version"], link["dataset_id"], link["records"]) == (vid, first.dataset_id, 12)


def test_a_half_created_dataset_is_replaced(ws, fake, write_review_version):
    vid = write_review_version(ws, 3)
    first = push(ws, vid, dataset="half", store=fake, sample=1)
    fake.datasets["half"].draft = True  # as if a push had died while creating it
    again = push(ws, vid, dataset="half", store=fake)
    assert again.created and again.added == 3 and again.dataset_id != first.dataset_id


def test_push_refuses_another_schema_or_version_and_names_the_differences(ws, fake, write_review_version, tmp_path):
    vid = write_review_version(ws, 3)
    push(ws, vid, dataset="shape", store=fake)
    with pytest.raises(ConfigError) as raised:
        push(ws, vid, dataset="shape", store=fake, min_submitted=2)
    assert "min_submitted differs: Argilla has 1, this push needs 2" in str(raised.value)
    overlay = tmp_path / "review.toml"
    overlay.write_text("[label]\nmin_submitted = 2\n")
    with pytest.raises(ConfigError, match="min_submitted differs"):  # asked for by a --config file: refused too
        push(ws, vid, dataset="shape", store=fake, config=ws.load_config(overlay))
    chat = write_review_version(ws, 3, shape="chat")
    with pytest.raises(ConfigError) as raised:
        push(ws, chat, dataset="shape", store=fake)
    message = str(raised.value)
    assert "field `messages` is not in the Argilla dataset" in message and "field `prompt` is in the Argilla dataset" in message
    assert "--dataset NAME" in message
    other = write_review_version(ws, 3, tag="other")
    with pytest.raises(ConfigError, match=f"reviews version {vid}, not {other}"):
        push(ws, other, dataset="shape", store=fake)
    push(ws, other, dataset="overlap", store=fake, min_submitted=2)
    assert push(ws, other, dataset="overlap", store=fake).added == 0  # not asked: the dataset keeps its own overlap
    assert len(fake.datasets["shape"].records) == 3


def test_vectors_are_embedded_batch_by_batch(ws, fake, write_review_version, monkeypatch):
    calls: list[int] = []

    def embed(texts: list[str]) -> list[list[float]]:
        calls.append(len(texts))
        return [[float(len(t))] * 384 for t in texts]

    class FakeEmbedder:
        device = "cpu"

        def __init__(self, model: str) -> None:
            self.model = model

        def __call__(self, texts: list[str]) -> list[list[float]]:
            return embed(texts)

    import assay.label.embed

    monkeypatch.setattr(assay.label.embed, "Embedder", FakeEmbedder)
    vid = write_review_version(ws, 5, shape="text")
    events: list = []
    result = push(ws, vid, dataset="vec", store=fake, vectors=True, batch_size=2,
                  progress=lambda done, total: events.append((done, total)), say=events.append)
    held = fake.datasets["vec"]
    assert result.vectors and held.spec["vectors"] == {"embedding": 384} and calls == [2, 2, 1]
    # a long push is never silent: the bar appears (0 of 5) before the model loads, each stage says so
    assert events[0] == (0, 5) and events[1].startswith("loading the embedding model")
    assert events[2].startswith("embedding model ready") and events[-1] == (5, 5)
    record = held.records["t000"]
    assert record.vectors["embedding"][0] == float(len(record.fields["text"]))


# -- progress and pull ------------------------------------------------------------------------------------


def test_progress_counts_and_agreement(reviewed, fake):
    ws, vid = reviewed
    p = progress(ws, "rv", store=fake)
    assert (p["records"], p["with_votes"], p["version"], p["min_submitted"]) == (12, 6, vid, 1)
    assert p["annotators"] == {"ann": {"submitted": 6, "discarded": 0, "draft": 1},
                               "bob": {"submitted": 5, "discarded": 1, "draft": 0}}
    decision = p["agreement"]["questions"]["decision"]
    # ann: approve approve reject edit approve; bob: approve reject reject approve approve (p000 p001 p002 p003 p005)
    assert decision["cohen_kappa"] == pytest.approx(0.2857, abs=1e-4)  # po 3/5, pe 11/25
    assert decision["krippendorff_alpha"] == pytest.approx(1 / 3, abs=1e-4)  # 1 - 9 * 4 / 54
    assert p["disagreements"] == 2


def test_majority_keeps_corrects_and_rejects_with_reasons(reviewed, fake):
    ws, vid = reviewed
    result = pull(ws, "rv", store=fake, policy="majority")
    approved = ws.datasets.get(result.version)
    rows = {r["id"]: r for r in approved.data().collect().to_dicts()}
    assert sorted(rows) == ["p000", "p003", "p004", "p005"] and approved.kind == "approved"
    assert rows["p003"]["response"] == "It is 9, because 3 x 3 = 9." and rows["p003"]["review_original"] == "It is 9."
    assert rows["p003"]["review_decision"] == "edit" and rows["p003"]["review_corrected"] is True
    assert rows["p000"]["review_annotators"] == ["ann", "bob"] and rows["p000"]["review_quality"] == 4.5
    assert rows["p004"]["split"] == "val" and result.corrected == 1
    rejects = approved.rejects().collect()
    reasons = dict(zip(rejects["id"], rejects["reason"], strict=True))
    assert (reasons["p001"], reasons["p002"], reasons["p006"]) == ("no_consensus", "rejected_by_review", "not_reviewed")
    assert set(rejects["step"]) == {"review"} and rejects.height == 8
    assert result.rejected == {"no_consensus": 1, "rejected_by_review": 1, "not_reviewed": 6}
    review = approved.manifest["review"]
    assert approved.manifest["parents"] == [vid] and review["argilla"]["dataset_id"] == result.dataset_id
    assert review["responses"]["by_annotator"]["bob"]["discarded"] == 1 and len(review["responses_sha256"]) == 64
    assert {d["id"] for d in result.disagreements} == {"p001", "p003"}


def test_policies_decide_differently(reviewed, fake):
    ws, _ = reviewed
    majority = pull(ws, "rv", store=fake, policy="majority")
    assert pull(ws, "rv", store=fake, policy="majority").version == majority.version  # same reviews: same version
    strict = pull(ws, "rv", store=fake, policy="min-votes:2")
    assert ws.datasets.get(strict.version).data().collect()["id"].to_list() == ["p000", "p003", "p005"]
    assert strict.required_votes == 2 and strict.rejected["no_consensus"] == 2  # p001 tie, p004 one vote
    fake.vote("rv", "bob", "p004", decision="reject")  # now p004 is split: unanimous cannot keep it
    unanimous = pull(ws, "rv", store=fake, policy="unanimous")
    kept = ws.datasets.get(unanimous.version).data().collect()["id"].to_list()
    assert kept == ["p000", "p003", "p005"] and unanimous.rejected["no_consensus"] == 2


def test_low_agreement_is_refused_and_writes_nothing(reviewed, fake):
    ws, _ = reviewed
    before = len(ws.datasets.list())
    with pytest.raises(CheckFailed) as raised:
        pull(ws, "rv", store=fake, min_agreement=0.6)
    assert raised.value.exit_code == 1 and "0.333 < min_agreement 0.6" in str(raised.value)
    assert len(ws.datasets.list()) == before
    assert pull(ws, "rv", store=fake, min_agreement=0.3).kept == 4


def test_agreement_without_overlap_cannot_pass_a_gate(ws, fake, write_review_version):
    push(ws, write_review_version(ws, 3), dataset="solo", store=fake)
    fake.vote("solo", "ann", "p000", decision="approve")
    with pytest.raises(CheckFailed, match="cannot be measured"):
        pull(ws, "solo", store=fake, min_agreement=0.5)


def test_no_submitted_votes_yet_is_exit_2(ws, fake, write_review_version):
    push(ws, write_review_version(ws, 3), dataset="quiet", store=fake)
    fake.vote("quiet", "ann", "p000", status="draft", decision="approve")
    before = len(ws.datasets.list())
    with pytest.raises(InputError, match="no submitted responses") as raised:
        pull(ws, "quiet", store=fake)
    assert raised.value.exit_code == 2 and "1 drafts" in str(raised.value) and len(ws.datasets.list()) == before


def test_unknown_or_unlinked_datasets_are_named(ws, fake, write_review_version):
    vid = write_review_version(ws, 3)
    push(ws, vid, dataset="known", store=fake)
    with pytest.raises(NotFoundError, match="datasets: known"):
        pull(ws, "unknown", store=fake)
    fake.vote("known", "ann", "p001", decision="approve")
    fake.datasets["known"].version = None  # the server lost its metadata: the workspace's link still knows
    assert pull(ws, "known", store=fake).parent == vid
    fake.datasets["known"].id = "another-id"  # not the dataset this workspace pushed
    with pytest.raises(ConfigError, match="not linked to an assay version"):
        pull(ws, "known", store=fake)


def test_pull_name_tags_the_approved_version_and_moves_the_tag(reviewed, fake):
    ws, _ = reviewed
    first = pull(ws, "rv", store=fake, name="train-approved")
    assert first.name == "train-approved" and ws.datasets.get("train-approved").id == first.version
    second = pull(ws, "rv", store=fake, policy="min-votes:2", name="train-approved")
    assert second.version != first.version and ws.datasets.get("train-approved").id == second.version


# -- the CLI on the fake store ----------------------------------------------------------------------------


@pytest.fixture
def cli_store(fake, monkeypatch) -> FakeStore:
    """The CLI's store is the fake (the CLI opens the workspace's store through client.open_store)."""
    monkeypatch.setattr(client, "open_store", lambda root, cfg: fake)
    return fake


def test_cli_push_config_pull_name(ws, cli_store, write_review_version, tmp_path):
    vid = write_review_version(ws, 12)
    base = ["--workspace", str(ws.root), "--json"]
    overlay = tmp_path / "label.toml"
    overlay.write_text('[label]\nsample = 5\npolicy = "min-votes:2"\n')
    pushed = runner.invoke(app, ["label", "push", vid, "--dataset", "cli", "--config", str(overlay), *base])
    assert pushed.exit_code == 0, pushed.output
    assert json.loads(pushed.stdout)["added"] == 5 and len(cli_store.datasets["cli"].records) == 5
    more = runner.invoke(app, ["label", "push", vid, "--dataset", "cli", "--config", str(overlay), "--sample", "7", *base])
    assert json.loads(more.stdout)["added"] == 2  # the option wins over the file
    for row in cli_store.datasets["cli"].records:
        cli_store.vote("cli", "ann", row, decision="approve")
    cli_store.vote("cli", "bob", "p000", decision="approve")
    shown = runner.invoke(app, ["label", "progress", "cli", "--config", str(overlay), *base])
    assert json.loads(shown.stdout)["with_votes"] == 7
    pulled = runner.invoke(app, ["label", "pull", "cli", "--name", "train-approved", "--config", str(overlay), *base])
    assert pulled.exit_code == 0, pulled.output
    result = json.loads(pulled.stdout)
    assert result["name"] == "train-approved" and result["policy"] == "min-votes:2" and result["kept"] == 1
    data = runner.invoke(app, ["data", "show", "train-approved", *base])
    assert json.loads(data.stdout)["manifest"]["id"] == result["version"]
    moved = runner.invoke(app, ["label", "pull", "cli", "--name", "train-approved", "--policy", "majority", *base])
    assert moved.exit_code == 0, moved.output
    assert json.loads(moved.stdout)["kept"] == 7
    data = runner.invoke(app, ["data", "show", "train-approved", *base])
    assert json.loads(data.stdout)["manifest"]["id"] == json.loads(moved.stdout)["version"] != result["version"]


def test_cli_pull_without_votes_exits_2_and_tags_nothing(ws, cli_store, write_review_version):
    vid = write_review_version(ws, 3)
    base = ["--workspace", str(ws.root), "--json"]
    assert runner.invoke(app, ["label", "push", vid, "--dataset", "none", *base]).exit_code == 0
    pulled = runner.invoke(app, ["label", "pull", "none", "--name", "approved-none", *base])
    assert pulled.exit_code == 2 and "no submitted responses" in json.loads(pulled.stdout)["error"]
    missing = runner.invoke(app, ["data", "show", "approved-none", *base])
    assert missing.exit_code != 0


def test_approved_frames_keep_the_pushed_columns(reviewed, fake):
    ws, vid = reviewed
    approved = ws.datasets.get(pull(ws, "rv", store=fake).version).data().collect()
    pushed = ws.datasets.get(vid).data().collect()
    assert set(pushed.columns) <= set(approved.columns)
    assert approved.schema["review_votes"] == pl.List(pl.Struct({"annotator": pl.String, "decision": pl.String}))


def test_unanimous_overlap_makes_alpha_undefined_and_says_which_metric_works(ws, fake, write_review_version):
    push(ws, write_review_version(ws, 3), dataset="same", store=fake)
    for who in ("ann", "bob"):
        fake.vote("same", who, "p000", decision="approve")
        fake.vote("same", who, "p001", decision="approve")
    with pytest.raises(CheckFailed, match="is undefined: on all 2 record") as raised:
        pull(ws, "same", store=fake, min_agreement=0.5)
    assert "--agreement-metric percent_agreement" in raised.value.hint
    assert pull(ws, "same", store=fake, min_agreement=0.9, agreement_metric="percent_agreement").kept == 2
