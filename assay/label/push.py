"""`assay label push`: a dataset version → a review dataset that curators review (DESIGN §6).

Record ids are the row ids, and a push first asks which ids the dataset already holds, so a repeated
or interrupted push adds only what is missing and never duplicates a record. The review server is
reached only through a `ReviewStore` (store.py): Argilla by default, any other store when given.

    >>> result = push(Workspace.open(), "train-v1", sample=200)  # doctest: +SKIP
    >>> result.dataset, result.added, result.records_per_s  # doctest: +SKIP
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import polars as pl

from assay.label import signals as S
from assay.label.client import using_store
from assay.label.config import LabelConfig
from assay.label.links import write_link
from assay.label.spec import Spec, build_spec, guidelines
from assay.label.store import ReviewRecord, ReviewStore
from assay.schema import ID, MESSAGES, content_columns, content_text
from assay.settings import prefixed
from assay.store.manifest import now_iso

Progress = Callable[[int, int], None]  # (records sent, records to send)


@dataclass(frozen=True)
class PushResult:
    """What a push did; `added` is 0 when everything selected was already there."""

    dataset: str
    dataset_id: str
    url: str
    version: str
    selected: int
    existing: int
    added: int
    created: bool
    vectors: bool
    priority: str
    seconds: float
    records_per_s: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def push(
    ws: Any,
    ref: str,
    *,
    dataset: str | None = None,
    store: ReviewStore | None = None,
    config: Any = None,
    progress: Progress | None = None,
    **label_options: Any,
) -> PushResult:
    """Push a version's rows (optionally a prioritised sample) into a review dataset.

    `config` is an `AssayConfig` (default: the workspace's); `label_options` are `LabelConfig` fields
    (sample, priority, vectors, min_submitted, ...) laid over it, None keeping its value. `store`
    defaults to the workspace's Argilla server.
    """
    cfg = (config or ws.config).with_overrides(prefixed("label", label_options)).label
    version = ws.datasets.get(ref)
    rows = select_rows(version, cfg)
    spec = build_spec(version.data().collect_schema(), cfg, vectors=cfg.vectors)
    name = dataset or version.id
    text = guidelines(version.id, cfg, content_columns(rows.schema))
    with using_store(ws.root, cfg, store) as review:
        ds, created = review.ensure_dataset(name, spec, version_id=version.id, guidelines=text,
                                            strict_overlap=_asked_overlap(ws, cfg, label_options))
        have = review.existing_ids(ds)
        missing = rows.filter(~pl.col(ID).is_in(list(have)))
        began = time.perf_counter()
        if missing.height:
            sent = (lambda done: progress(done, missing.height)) if progress else None
            review.upload(ds, review_records(missing, spec, cfg), batch_size=cfg.batch_size, sent=sent)
        seconds = time.perf_counter() - began
    link = {"version": version.id, "dataset_id": ds.id, "server": ds.server, "workspace": cfg.workspace,
            "pushed_at": now_iso(), "records": len(have) + missing.height, "url": ds.url}
    write_link(ws.root, name, link)
    rate = round(missing.height / seconds, 1) if missing.height and seconds > 0 else None
    return PushResult(name, ds.id, ds.url, version.id, rows.height, rows.height - missing.height, missing.height,
                      created, cfg.vectors, cfg.priority, round(seconds, 2), rate)


def _asked_overlap(ws: Any, cfg: LabelConfig, label_options: dict[str, Any]) -> bool:
    """Whether this push asked for its own `min_submitted` (an option, or a configuration other than
    assay.toml's); if not, an existing dataset keeps the overlap it was created with."""
    return label_options.get("min_submitted") is not None or cfg.min_submitted != ws.config.label.min_submitted


def select_rows(version: Any, cfg: LabelConfig) -> pl.DataFrame:
    """The version's rows with review signals, in priority order, cut to `cfg.sample`."""
    data = version.data().collect()
    rejects = version.rejects().collect()
    curate_config = version.manifest.get("config") or {}
    ordered = S.push_order(S.with_signals(data, rejects, curate_config, cfg.priority), cfg.seed)
    return ordered.head(cfg.sample) if cfg.sample else ordered


# -- records ------------------------------------------------------------------------------------------------


def review_records(rows: pl.DataFrame, spec: Spec, cfg: LabelConfig) -> Iterator[ReviewRecord]:
    """The rows as review records, embedded `cfg.batch_size` at a time when the spec has vectors.

    A generator, so that embedding and uploading take turns and progress moves from the first batch.
    """
    if rows.height == 0:
        return
    vector_name = next(iter(spec["vectors"]), None)
    embedder = _embedder(cfg) if vector_name else None
    for start in range(0, rows.height, cfg.batch_size):
        batch = rows.slice(start, cfg.batch_size)
        texts = batch.select(content_text(content_columns(batch.schema))).to_series().to_list() if embedder else []
        vectors = embedder(texts) if embedder else [None] * batch.height
        for row, vector in zip(batch.iter_rows(named=True), vectors, strict=True):
            yield to_record(row, spec, cfg, {vector_name: vector} if vector is not None and vector_name else {})


def _embedder(cfg: LabelConfig):
    from assay.label.embed import Embedder

    return Embedder(cfg.vector_model)


def to_record(row: dict, spec: Spec, cfg: LabelConfig, vectors: dict[str, list[float]]) -> ReviewRecord:
    """One row → a review record whose id is the row id."""
    return ReviewRecord(
        id=row[ID],
        fields=record_fields(row, spec),
        metadata=record_metadata(row, spec),
        suggestions=suggestions(row, cfg),
        vectors=vectors,
    )


def record_fields(row: dict, spec: Spec) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in spec["fields"]:
        value = row.get(name)
        if name == MESSAGES and value:
            out[name] = [{"role": m["role"] or "user", "content": m["content"] or ""} for m in value]
        elif isinstance(value, str) and value:
            out[name] = value
    return out


def record_metadata(row: dict, spec: Spec) -> dict[str, Any]:
    """Metadata values by property: strings for terms, finite numbers for the rest, nulls left out."""
    derived = {"pii_any": "true" if row[S.PII_ANY] else "false", "pii_count": row[S.PII_COUNT],
               "cluster_size": row[S.CLUSTER], "quality_score": row[S.QUALITY], "priority": row[S.PRIORITY]}
    out: dict[str, Any] = {}
    for name, kind in spec["metadata"].items():
        value = derived[name] if name in derived else row.get(name)
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            continue
        out[name] = str(value) if kind == "terms" else (int(value) if kind == "integer" else float(value))
    return out


def suggestions(row: dict, cfg: LabelConfig) -> list[dict[str, Any]]:
    """Suggestions from curation signals: approve (scored by quality) and a `pii` issue when flagged.

    No quality rating is suggested: the UI pre-fills suggestions, and a pre-filled rating that curators
    leave as it is would look like agreement between them.
    """
    quality = row[S.QUALITY]
    out: list[dict[str, Any]] = [
        {"question_name": "decision", "value": "approve", "score": quality, "agent": cfg.suggestion_agent, "type": "model"}
    ]
    if row[S.PII_ANY] and "pii" in cfg.issues:
        out.append({"question_name": "issues", "value": ["pii"], "score": [1.0], "agent": cfg.suggestion_agent, "type": "model"})
    return out

