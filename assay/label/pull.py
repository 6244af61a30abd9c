"""`assay label pull` and `progress`: submitted reviews → an `approved` dataset version (DESIGN §6).

The approved version keeps the pushed version's rows and columns (the canonical ones and `split`
intact, corrections applied to the response / last assistant turn / text) plus `review_*` columns
saying who decided what and when. Rows rejected by reviewers, without consensus or not reviewed go
to its rejects with step `review`. Its manifest (`review`) holds the Argilla dataset, the policy, the
agreement numbers and a sha256 of the responses used.

    >>> result = pull(Workspace.open(), "ds-1a2b3c4d5e6f", policy="unanimous", name="train-approved")  # doctest: +SKIP
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import polars as pl

from assay.errors import CheckFailed, ConfigError, InputError, NotFoundError
from assay.label import review as R
from assay.label.client import using_store
from assay.label.config import LabelConfig, parse_policy
from assay.label.links import linked_version
from assay.label.store import DatasetRef, ReviewStore, Snapshot
from assay.label.suggest import kept_suggestions
from assay.schema import ID, MESSAGES, RESPONSE, TEXT, content_columns
from assay.settings import prefixed

SHOWN_DISAGREEMENTS = 50
VOTE = pl.Struct({"annotator": pl.String, "decision": pl.String})
REVIEW_SCHEMA = {
    ID: pl.String,
    "review_decision": pl.String,
    "review_annotators": pl.List(pl.String),
    "review_votes": pl.List(VOTE),
    "review_submitted_at": pl.String,
    "review_quality": pl.Float64,
    "review_issues": pl.List(pl.String),
    "_kept": pl.Boolean,
    "_reason": pl.String,
    "_detail": pl.String,
    "_corrected": pl.String,
}


@dataclass
class PullResult:
    """The approved version and how it was decided."""

    version: str
    created: bool
    dataset: str
    dataset_id: str
    parent: str
    policy: str
    required_votes: int
    kept: int
    rejected: dict[str, int]
    corrected: int
    agreement: dict[str, Any]
    disagreements: list[dict[str, Any]]
    responses_sha256: str
    name: str | None = None
    agreement_note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- reading the dataset ------------------------------------------------------------------------------------


def label_config(ws: Any, config: Any, label_options: dict[str, Any]) -> LabelConfig:
    """`[label]` of `config` (default: the workspace's) with `LabelConfig` fields laid over it."""
    return (config or ws.config).with_overrides(prefixed("label", label_options)).label


def find_dataset(store: ReviewStore, name: str, cfg: LabelConfig) -> DatasetRef:
    """The review dataset called `name`, or an error that says which datasets exist."""
    found = store.find(name)
    if found is None:
        names = store.names()
        raise NotFoundError(
            f"no Argilla dataset `{name}` in workspace `{cfg.workspace}` (datasets: {', '.join(names) or 'none'})",
            hint="push a version first: `assay label push VERSION --dataset NAME`",
        )
    return found


def votes_of(snap: Snapshot) -> list[R.Vote]:
    """The submitted responses of a snapshot as votes."""
    return [R.vote_from_response(rid, user, r) for rid, user, r in snap.responses if r["status"] == "submitted"]


def status_counts(snap: Snapshot) -> dict[str, dict[str, int]]:
    """username → {submitted, discarded, draft}."""
    out: dict[str, dict[str, int]] = {}
    for _, user, r in snap.responses:
        out.setdefault(user, {"submitted": 0, "discarded": 0, "draft": 0})[r["status"]] += 1
    return dict(sorted(out.items()))


def required_votes(cfg: LabelConfig, dataset: DatasetRef) -> int:
    """N of min-votes:N, else the dataset's min_submitted (the overlap curators were asked for)."""
    return parse_policy(cfg.policy).min_votes or dataset.min_submitted


def votes_needed(cfg: LabelConfig, dataset: DatasetRef) -> Callable[[str], int]:
    """Row id → the votes its outcome needs: N of min-votes:N, else what the record was pushed to need
    (`min_submitted`, or more in the dataset's sampled overlap)."""
    fixed = parse_policy(cfg.policy).min_votes
    return (lambda _: fixed) if fixed else dataset.reviews_needed


def agreement_note(report: dict[str, Any], dataset: DatasetRef) -> str | None:
    """Why agreement is empty and what to do, or None when it was measured."""
    if report["questions"]["decision"]["units"]:
        return None
    if dataset.min_submitted > 1 or dataset.overlap:
        asked = (f"{dataset.overlap['fraction']:.0%} of the records need {dataset.overlap['min_submitted']} reviews"
                 if dataset.overlap else f"every record needs {dataset.min_submitted} reviews")
        return (f"not measured yet: no record has two submitted reviews so far ({asked}); it appears as "
                "curators review the same records")
    return ("cannot be measured: every record needs one review (min_submitted 1, no sampled overlap), so no two "
            f"curators answer the same record; push to a new dataset with `assay label push VERSION --dataset "
            f"{dataset.name}-2 --overlap 0.1` (10 % reviewed twice) or `--min-submitted 2`")


# -- progress ---------------------------------------------------------------------------------------------


def progress(
    ws: Any, dataset: str, *, store: ReviewStore | None = None, config: Any = None, **label_options: Any
) -> dict[str, Any]:
    """Per-annotator counts and agreement so far, without writing anything."""
    cfg = label_config(ws, config, label_options)
    with using_store(ws.root, cfg, store) as review:
        ref = find_dataset(review, dataset, cfg)
        snap = review.snapshot(ref)
    votes = votes_of(snap)
    per_record = Counter(v.record for v in votes)
    outs = R.outcomes(sorted(per_record), votes, parse_policy(cfg.policy), votes_needed(cfg, ref))
    report = R.agreement_report(votes, cfg.issues)
    return {
        "dataset": dataset,
        "dataset_id": ref.id,
        "url": ref.url,
        "version": linked_version(ref, ws.root),
        "records": len(snap.record_ids),
        "completed": sum(1 for r, n in per_record.items() if n >= ref.reviews_needed(r)),
        "with_votes": len(per_record),
        "min_submitted": ref.min_submitted,
        "overlap": ref.overlap,
        "overlap_records": sum(ref.reviews_needed(r) > ref.min_submitted for r in snap.record_ids),
        "annotators": status_counts(snap),
        "agreement": report,
        "agreement_note": agreement_note(report, ref),
        "disagreements": len(R.disagreements(outs)),
        "kept_suggestions": kept_suggestions(snap.suggestions, votes),
    }


# -- pull -------------------------------------------------------------------------------------------------


def pull(
    ws: Any, dataset: str, *, name: str | None = None, store: ReviewStore | None = None, config: Any = None, **label_options: Any
) -> PullResult:
    """Turn the submitted reviews of a review dataset into an `approved` version of the pushed version.

    `label_options` are `LabelConfig` fields (policy, min_agreement, agreement_metric, ...) laid over
    `config` (default: the workspace's); `name` tags the approved version (moving the tag).
    """
    cfg = label_config(ws, config, label_options)
    with using_store(ws.root, cfg, store) as review:
        ref = find_dataset(review, dataset, cfg)
        parent = _parent_version(ws, ref)
        snap = review.snapshot(ref)
    votes = votes_of(snap)
    if not votes:
        raise InputError(_no_votes_message(dataset, snap), hint=f"curators submit in the UI: {ref.url}; check `assay label progress {dataset}`")
    need = required_votes(cfg, ref)
    data = parent.data().collect()
    outs = R.outcomes(data.get_column(ID).to_list(), votes, parse_policy(cfg.policy), votes_needed(cfg, ref))
    report = R.agreement_report(votes, cfg.issues)
    disagree = R.disagreements(outs)
    _gate(cfg, report, disagree)
    kept, rejects = approved_frames(data, outs)
    review_info = _review_manifest(cfg, snap, need, report, disagree, votes) | {
        "overlap": ref.overlap, "agreement_note": agreement_note(report, ref)}
    write = ws.datasets.write(
        kept,
        kind="approved",
        config={"label": {"dataset": dataset, "policy": cfg.policy, "required_votes": need,
                          "min_agreement": cfg.min_agreement, "agreement_metric": cfg.agreement_metric}
                           | ({"overlap": ref.overlap} if ref.overlap else {})},
        rejects=rejects,
        parents=[parent.id],
        counts=_counts(data.height, kept.height, rejects),
        extra={"review": review_info},
    )
    if name:
        ws.datasets.tag(write.version.id, name)
    reasons = dict(Counter(rejects.get_column("reason").to_list()))
    return PullResult(write.version.id, write.created, dataset, ref.id, parent.id, cfg.policy, need, kept.height,
                      reasons, int(kept.get_column("review_corrected").sum()), report,
                      disagree[:SHOWN_DISAGREEMENTS], review_info["responses_sha256"], name, review_info["agreement_note"])


def _parent_version(ws: Any, dataset: DatasetRef) -> Any:
    version = linked_version(dataset, ws.root)
    if version is None:
        raise ConfigError(
            f"the Argilla dataset `{dataset.name}` is not linked to an assay version (it was not pushed by assay)",
            hint="push a version with `assay label push VERSION --dataset NAME` and review that dataset",
        )
    try:
        return ws.datasets.get(version)
    except NotFoundError as exc:
        raise NotFoundError(
            f"the Argilla dataset `{dataset.name}` reviews version {version}, which is not in this workspace",
            hint="pull from the workspace that pushed it (--workspace)",
        ) from exc


def _no_votes_message(name: str, snap: Snapshot) -> str:
    statuses = Counter(r["status"] for _, _, r in snap.responses)
    return (f"no submitted responses yet in `{name}` ({len(snap.record_ids)} records; "
            f"{statuses.get('draft', 0)} drafts, {statuses.get('discarded', 0)} discarded): nothing to approve")


def _gate(cfg: LabelConfig, report: dict, disagree: list[dict]) -> None:
    """Refuse (exit 1) when agreement on `decision` is below `min_agreement` or cannot be measured."""
    if cfg.min_agreement is None:
        return
    value = report["questions"]["decision"].get(cfg.agreement_metric)
    examples = "; ".join(f"{d['id']}: " + ", ".join(f"{a}={v}" for a, v in d["votes"].items()) for d in disagree[:5])
    overlapping = report["records_with_overlap"]
    if value is None and overlapping and report["questions"]["decision"].get("percent_agreement") == 1:
        raise CheckFailed(
            f"agreement ({cfg.agreement_metric} on `decision`) is undefined: on all {overlapping} record(s) with two "
            "or more votes every curator gave the same decision, so chance agreement cannot be told apart",
            hint="pull with --agreement-metric percent_agreement (1.0 here), or review more overlapping records",
        )
    if value is None:
        raise CheckFailed(
            f"agreement ({cfg.agreement_metric} on `decision`) cannot be measured: "
            f"{overlapping} record(s) have two or more submitted votes",
            hint="push to a new dataset with --overlap 0.1 (10 % of the records reviewed twice) or --min-submitted 2 "
                 "(all of them), or pull without --min-agreement",
        )
    if value < cfg.min_agreement:
        raise CheckFailed(
            f"agreement too low to approve: {cfg.agreement_metric} on `decision` = {value:.3f} < min_agreement "
            f"{cfg.min_agreement} over {report['questions']['decision']['units']} record(s) with overlap; "
            f"{len(disagree)} disagreement(s)" + (f", e.g. {examples}" if examples else ""),
            hint="clarify the guidelines and have the disagreements re-reviewed, or lower --min-agreement",
        )


def _review_manifest(cfg: LabelConfig, snap: Snapshot, need: int, report: dict, disagree: list, votes: list) -> dict:
    return {
        "argilla": {"dataset": snap.dataset.name, "dataset_id": snap.dataset.id, "url": snap.dataset.url,
                    "workspace": cfg.workspace},
        "policy": cfg.policy,
        "required_votes": need,
        "min_agreement": cfg.min_agreement,
        "agreement_metric": cfg.agreement_metric,
        "agreement": report,
        "responses": {"submitted": len(votes), "records": len(snap.record_ids), "by_annotator": status_counts(snap)},
        "responses_sha256": R.snapshot_sha256(votes),
        "disagreements": disagree[:SHOWN_DISAGREEMENTS],
        "disagreements_total": len(disagree),
        "kept_suggestions": kept_suggestions(snap.suggestions, votes),
    }


def _counts(rows_in: int, kept: int, rejects: pl.DataFrame) -> dict[str, Any]:
    removed = dict(Counter(rejects.get_column("reason").to_list()).most_common())
    return {"input_rows": rows_in, "read": rows_in, "kept": kept, "rejected": rejects.height, "quarantined": 0,
            "steps": [{"step": "review", "in": rows_in, "out": kept, "removed": removed}]}


# -- the approved frames ----------------------------------------------------------------------------------


def approved_frames(data: pl.DataFrame, outs: list[R.Outcome]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(approved rows with review columns and corrections applied, rejected rows with step/reason/detail)."""
    review = pl.DataFrame(
        [{ID: o.id, **o.row(), "_kept": o.kept, "_reason": o.reason, "_detail": o.detail, "_corrected": o.corrected} for o in outs],
        schema=REVIEW_SCHEMA,
    )
    joined = data.join(review, on=ID, how="left", maintain_order="left")
    joined = apply_corrections(joined).with_columns(
        pl.col("review_submitted_at").str.to_datetime(time_unit="us", strict=False).dt.replace_time_zone("UTC")
    )
    kept = joined.filter(pl.col("_kept")).drop("_kept", "_reason", "_detail")
    rejects = (
        joined.filter(~pl.col("_kept"))
        .drop("_kept")
        .rename({"_reason": "reason", "_detail": "detail"})
        .with_columns(pl.lit("review").alias("step"))
    )
    return kept, rejects


def apply_corrections(frame: pl.DataFrame) -> pl.DataFrame:
    """Replace the response (or last assistant turn, or text) of rows with a corrected text; keep the original."""
    content = content_columns(frame.schema)
    fixed = [_fix(row, content) for row in frame.filter(pl.col("_corrected").is_not_null()).iter_rows(named=True)]
    fixed = [f for f in fixed if f is not None]
    out = frame.with_columns(pl.lit(None, pl.String).alias("review_original"), pl.lit(False).alias("review_corrected")).drop("_corrected")
    if not fixed:
        return out
    schema = {ID: pl.String, "review_original": pl.String, "review_corrected": pl.Boolean}
    schema |= {c: frame.schema[c] for c in (MESSAGES, RESPONSE, TEXT) if c in content}
    updates = pl.DataFrame(fixed, schema=schema)
    return out.update(updates, on=ID, how="left")


def _fix(row: dict, content: tuple[str, ...]) -> dict | None:
    """The updated content of one corrected row, or None when it has nothing a correction can replace."""
    new = row["_corrected"]
    if MESSAGES in content and row.get(MESSAGES):
        turns = [dict(t) for t in row[MESSAGES]]
        last = max((i for i, t in enumerate(turns) if t["role"] == "assistant"), default=None)
        original = turns[last]["content"] if last is not None else None
        if last is None:
            turns.append({"role": "assistant", "content": new})
        else:
            turns[last]["content"] = new
        return {ID: row[ID], MESSAGES: turns, "review_original": original, "review_corrected": True}
    for column in (RESPONSE, TEXT):
        if column in content and row.get(column) is not None:
            return {ID: row[ID], column: new, "review_original": row[column], "review_corrected": True}
    return None
