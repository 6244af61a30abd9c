"""`assay eval human pull | progress`: the raters' votes → win rate with its interval → a signed report.

The votes are mapped back from the blind sides with the workspace's record of which side was A. The
result becomes a new report version for the model: the automatic report it refers to (its checks and
hashes), plus a `human` section and a gate that also applies the policy's `human` rule (e.g. the lower
bound of the candidate's win rate, ties split, at least 0.5: non-inferiority). Promotion reads the
newest report of a model, so once pulled, the human result counts.

    outcome = pull_comparison(ws, "compare-1a2b3c4d5e6f")
    outcome.report_id, outcome.decision.passed
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assay.errors import InputError, NotFoundError
from assay.evaluate.human import stats
from assay.evaluate.human.push import mapping_path


@dataclass
class HumanOutcome:
    report_id: str
    model: str
    dataset: str
    human: dict[str, Any]
    decision: Any
    path: Path

    def to_dict(self) -> dict[str, Any]:
        return {"report": self.report_id, "model": self.model, "dataset": self.dataset, "human": self.human,
                "gate": self.decision.to_dict(), "path": str(self.path)}


def read_mapping(ws: Any, dataset: str) -> dict[str, Any]:
    path = mapping_path(ws, dataset)
    if not path.is_file():
        raise NotFoundError(f"no blind comparison `{dataset}` was pushed from this workspace (looked for {path})",
                            hint="pull from the workspace that ran `assay eval human push`; only it knows which side was A")
    return json.loads(path.read_text())


def snapshot_votes(ws: Any, dataset: str, mapping: dict[str, Any], *, config: Any = None, store: Any = None) -> tuple[list[stats.Vote], Any]:
    """Submitted responses, mapped from A/B to candidate/baseline."""
    from assay.label.client import using_store

    cfg = (config or ws.config).label
    with using_store(ws.root, cfg, store) as review:
        ref = review.find(dataset)
        if ref is None:
            raise NotFoundError(f"no Argilla dataset `{dataset}`", hint="push it first with `assay eval human push MODEL`")
        snap = review.snapshot(ref)
    votes = [v for rid, user, r in snap.responses if r.get("status") == "submitted"
             if (v := _vote(rid, user, r, mapping["items"].get(rid))) is not None]
    return votes, snap


def _vote(rid: str, user: str, response: dict[str, Any], item: dict[str, Any] | None) -> stats.Vote | None:
    if item is None:
        return None
    values = {q: (v or {}).get("value") for q, v in (response.get("values") or {}).items()}
    chose = values.get("preference")
    if chose not in ("A", "B", "tie"):
        return None
    a = item["a"]
    side = {"A": a, "B": "baseline" if a == "candidate" else "candidate"}.get(chose)
    outcome = "tie" if chose == "tie" else ("win" if side == "candidate" else "loss")
    rating = {"A": values.get("rating_a"), "B": values.get("rating_b")}
    cand_pos = "A" if a == "candidate" else "B"
    base_pos = "B" if cand_pos == "A" else "A"
    return stats.Vote(rid, user, outcome, chose, item.get("category"), rating[cand_pos], rating[base_pos], values.get("comment"))


def progress_comparison(ws: Any, dataset: str, *, config: Any = None, store: Any = None) -> dict[str, Any]:
    mapping = read_mapping(ws, dataset)
    votes, snap = snapshot_votes(ws, dataset, mapping, config=config, store=store)
    per_record = Counter(v.record for v in votes)
    need = snap.dataset.min_submitted
    return {"dataset": dataset, "url": snap.dataset.url, "model": mapping["model"], "records": len(snap.record_ids),
            "completed": sum(1 for n in per_record.values() if n >= need), "min_submitted": need,
            "votes": dict(sorted(Counter(v.rater for v in votes).items())), "summary": stats.summarise(votes) if votes else None}


def human_section(ws: Any, dataset: str, mapping: dict[str, Any], votes: list[stats.Vote], snap: Any, cfg: Any) -> dict[str, Any]:
    """What the report's `human` section holds: rates with intervals, agreement, categories, disputed records."""
    from assay.label import agreement

    summary = stats.summarise(votes, confidence=cfg.eval.confidence, seed=cfg.eval.seed)
    raters, records = sorted({v.rater for v in votes}), sorted({v.record for v in votes})
    at = {(v.rater, v.record): v.outcome for v in votes}
    matrix = [[at.get((r, rec)) for rec in records] for r in raters]
    disputed = stats.disputed(votes)
    for d in disputed:
        item = mapping["items"][d["record"]]
        d.update(prompt=item["prompt"], candidate=item["candidate"], baseline=item["baseline"], shown_as_a=item["a"])
    return {**summary, "dataset": dataset, "session": mapping["session"], "url": snap.dataset.url,
            "agreement": agreement.nominal_summary(matrix), "per_category": stats.per_category(votes, seed=cfg.eval.seed),
            "disputed": disputed, "automatic_report": mapping.get("report")}


def pull_comparison(ws: Any, dataset: str, *, policy: Path | None = None, config: Any = None, store: Any = None,
                    name: str | None = None) -> HumanOutcome:
    """The human result as a new signed report of the model (see module doc)."""
    from assay.evaluate.attest import publish, read
    from assay.evaluate.gate import apply_policy, human_rules
    from assay.evaluate.policy import load_policy
    from assay.evaluate.results import CheckResult

    cfg = config or ws.config
    mapping = read_mapping(ws, dataset)
    votes, snap = snapshot_votes(ws, dataset, mapping, config=cfg, store=store)
    if not votes:
        raise InputError(f"no submitted comparisons yet in `{dataset}`", hint=f"raters answer in the UI: {snap.dataset.url}")
    model = ws.models.get(mapping["model"])
    human = human_section(ws, dataset, mapping, votes, snap, cfg)
    loaded = load_policy(policy or (Path(cfg.eval.policy) if cfg.eval.policy else None))
    body = _automatic_body(ws, mapping, read)
    checks = [CheckResult.from_dict(c) for c in body.get("checks", [])]
    for check in checks:
        check.status, check.reasons = ("pass", []) if check.status == "fail" else (check.status, check.reasons)
    decision = apply_policy(loaded.config, checks) if checks else None
    reasons = (decision.reasons if decision else []) + human_rules(loaded.config, human)
    gate = {"passed": not reasons, "reasons": reasons, "primary": decision.primary if decision else None, "forced": None}
    body = body | {"checks": [c.to_dict() for c in checks], "gate": gate, "human": human,
                   "references": {"automatic_report": mapping.get("report")},
                   "policy": {"path": loaded.path, "sha256": loaded.sha256, "values": loaded.config.model_dump(mode="json")}}
    report = publish(ws, model, body, baseline=mapping["baseline"].get("id"))
    if name:
        ws.reports.tag(report.id, name)
    return HumanOutcome(report.id, model.id, dataset, human, _Decision(gate), report.path)


def _automatic_body(ws: Any, mapping: dict[str, Any], read: Any) -> dict[str, Any]:
    """The automatic report the comparison refers to, or a minimal body when the model has none yet."""
    from assay.evaluate.loading import adapter_files
    from assay.evaluate.results import SCHEMA
    from assay.store.manifest import now_iso

    if mapping.get("report"):
        _, body = read(ws, mapping["report"])
        return body | {"created_at": now_iso()}
    model = ws.models.get(mapping["model"])
    m = model.manifest
    return {"schema": SCHEMA, "created_at": now_iso(),
            "model": {"id": model.id, "method": m.get("method"), "base": {k: m["base"].get(k) for k in ("name", "sha256", "source")},
                      "files": adapter_files(model), "params": m.get("params"), "datasets": {}, "review": {}},
            "baseline": mapping["baseline"] | {"label": mapping["baseline"].get("id") or "base model", "shared_base": True},
            "suite": {}, "checks": [], "runtime": {}}


@dataclass
class _Decision:
    gate: dict[str, Any]

    @property
    def passed(self) -> bool:
        return bool(self.gate["passed"])

    @property
    def reasons(self) -> list[str]:
        return list(self.gate["reasons"])

    def to_dict(self) -> dict[str, Any]:
        return dict(self.gate)
