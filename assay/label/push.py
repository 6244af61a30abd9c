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
from dataclasses import asdict, dataclass, field
from typing import Any

import polars as pl

from assay.errors import ConfigError
from assay.label import signals as S
from assay.label.client import using_store
from assay.label.config import LabelConfig
from assay.label.links import write_link
from assay.label.spec import (
    METADATA_DIGITS,
    RECORD,
    REQUEST,
    REVIEWS_NEEDED,
    Spec,
    build_spec,
    guidelines,
    metadata_columns,
)
from assay.label.store import DatasetRef, ReviewRecord, ReviewStore
from assay.label.suggest import suggestions
from assay.schema import ID, MESSAGES, SOURCE, SOURCE_LINE, SPLIT, content_columns, content_text
from assay.settings import prefixed
from assay.store.manifest import now_iso

Progress = Callable[[int, int], None]  # (records sent, records to send)
Say = Callable[[str], None]  # a line for the person waiting (stages that have no count)


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
    min_submitted: int = 1
    overlap: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)

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
    say: Say | None = None,
    **label_options: Any,
) -> PushResult:
    """Push a version's rows (optionally a prioritised sample) into a review dataset.

    `config` is an `AssayConfig` (default: the workspace's); `label_options` are `LabelConfig` fields
    (sample, priority, vectors, min_submitted, overlap_fraction, ...) laid over it, None keeping its value.
    `store` defaults to the workspace's Argilla server; `progress` gets (sent, total) and `say` a line for
    each stage that has no count (loading the embedding model).
    """
    cfg = (config or ws.config).with_overrides(prefixed("label", label_options)).label
    version = ws.datasets.get(ref)
    rows = select_rows(version, cfg)
    spec = build_spec(version.data().collect_schema(), cfg, vectors=cfg.vectors)
    name = dataset or version.id
    text = guidelines(version.id, cfg, content_columns(rows.schema))
    with using_store(ws.root, cfg, store) as review:
        _check_overlap_support(review, cfg)
        ds, created = review.ensure_dataset(name, spec, version_id=version.id, guidelines=text,
                                            strict_overlap=_asked_overlap(ws, cfg, label_options))
        warnings = overlap_warnings(ds, review.annotators())
        have = review.existing_ids(ds)
        missing = rows.filter(~pl.col(ID).is_in(list(have)))
        began = time.perf_counter()
        if missing.height:
            if progress:
                progress(0, missing.height)
            sent = (lambda done: progress(done, missing.height)) if progress else None
            review.upload(ds, review_records(missing, spec, cfg, ds, say), batch_size=cfg.batch_size, sent=sent)
        seconds = time.perf_counter() - began
    link = {"version": version.id, "dataset_id": ds.id, "server": ds.server, "workspace": cfg.workspace,
            "pushed_at": now_iso(), "records": len(have) + missing.height, "url": ds.url}
    write_link(ws.root, name, link)
    rate = round(missing.height / seconds, 1) if missing.height and seconds > 0 else None
    return PushResult(name, ds.id, ds.url, version.id, rows.height, rows.height - missing.height, missing.height,
                      created, cfg.vectors, cfg.priority, round(seconds, 2), rate, ds.min_submitted, ds.overlap, warnings)


def _check_overlap_support(review: ReviewStore, cfg: LabelConfig) -> None:
    if cfg.overlap_fraction is not None and not review.record_overlap:
        raise ConfigError(
            "label.overlap_fraction needs assay's embedded Argilla server: another server completes every record "
            "at the dataset's min_submitted, so the sampled records would never get their extra reviews",
            hint="on this server unset overlap_fraction and set min_submitted (every record), or review on `assay label serve`",
        )


def overlap_warnings(ds: DatasetRef, annotators: list[str]) -> list[str]:
    """What a release owner must know before curators start: with one review per record and several
    curators, nobody's answers can be compared, so agreement cannot be measured."""
    if ds.min_submitted > 1 or ds.overlap or len(annotators) < 2:
        return []
    return [f"every record of `{ds.name}` needs one review and {len(annotators)} curators can review it: no record "
            "gets two reviews, so agreement cannot be measured. Push to a new dataset with --overlap 0.1 (10 % of "
            "the records reviewed twice) or --min-submitted 2 (all of them)"]


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


def review_records(rows: pl.DataFrame, spec: Spec, cfg: LabelConfig, ds: DatasetRef, say: Say | None = None) -> Iterator[ReviewRecord]:
    """The rows as review records, embedded `cfg.batch_size` at a time when the spec has vectors.

    A generator, so that embedding and uploading take turns and progress moves from the first batch.
    """
    if rows.height == 0:
        return
    vector_name = next(iter(spec["vectors"]), None)
    embedder = _embedder(cfg, say) if vector_name else None
    columns = metadata_columns(rows.schema)
    for start in range(0, rows.height, cfg.batch_size):
        batch = rows.slice(start, cfg.batch_size)
        texts = batch.select(content_text(content_columns(batch.schema))).to_series().to_list() if embedder else []
        vectors = embedder(texts) if embedder else [None] * batch.height
        for row, vector in zip(batch.iter_rows(named=True), vectors, strict=True):
            yield to_record(row, spec, cfg, ds, columns, {vector_name: vector} if vector is not None and vector_name else {})


def _embedder(cfg: LabelConfig, say: Say | None):
    if say:
        say("loading the embedding model for --vectors (about 10 s on a CPU) ...")
    began = time.perf_counter()
    from assay.label.embed import Embedder

    embedder = Embedder(cfg.vector_model)
    if say:
        say(f"embedding model ready in {time.perf_counter() - began:.1f} s on {embedder.device}; embedding and uploading")
    return embedder


def to_record(row: dict, spec: Spec, cfg: LabelConfig, ds: DatasetRef, columns: dict[str, str],
              vectors: dict[str, list[float]]) -> ReviewRecord:
    """One row → a review record whose id is the row id (`columns`: metadata name → column, see spec.py)."""
    return ReviewRecord(
        id=row[ID],
        fields=record_fields(row, spec),
        metadata=record_metadata(row, spec, columns, ds.reviews_needed(row[ID])),
        suggestions=suggestions(row, cfg, set(spec["questions"])),
        vectors=vectors,
    )


def record_fields(row: dict, spec: Spec) -> dict[str, Any]:
    """Field values: the provenance line, a chat's last user turn, then the content as it is."""
    out: dict[str, Any] = {}
    for name in spec["fields"]:
        value = provenance(row) if name == RECORD else (last_user_turn(row.get(MESSAGES)) if name == REQUEST else row.get(name))
        if name == MESSAGES and value:
            out[name] = [{"role": m["role"] or "user", "content": m["content"] or ""} for m in value]
        elif isinstance(value, str) and value:
            out[name] = value
    return out


def provenance(row: dict) -> str:
    """`train.jsonl, line 42 · row 3f2a… · split train`: where a curator finds the row, outside Argilla too."""
    where = row.get(SOURCE)
    line = row.get(SOURCE_LINE)
    parts = [f"{where}, line {line}" if where and line is not None else (where or "source unknown"), f"row {row[ID]}"]
    if row.get(SPLIT):
        parts.append(f"split {row[SPLIT]}")
    copies = row.get(S.CLUSTER) or 1
    if copies > 1:
        parts.append(f"{copies - 1} removed cop{'y' if copies == 2 else 'ies'}")
    return " · ".join(parts)


def last_user_turn(messages: list[dict] | None) -> str | None:
    turns = [m.get("content") for m in messages or [] if m.get("role") == "user" and m.get("content")]
    return turns[-1] if turns else None


def record_metadata(row: dict, spec: Spec, columns: dict[str, str], reviews_needed: int | None = None) -> dict[str, Any]:
    """Metadata values by property: strings for terms, finite numbers (floats rounded) for the rest, nulls left out."""
    derived = {"personal_data": "yes" if row[S.PII_ANY] else "no", "personal_data_hits": row[S.PII_COUNT],
               "copies": row[S.CLUSTER], "quality_score": row[S.QUALITY], "review_priority": row[S.PRIORITY],
               REVIEWS_NEEDED: reviews_needed}
    out: dict[str, Any] = {}
    for name, kind in spec["metadata"].items():
        value = derived[name] if name in derived else row.get(columns.get(name, name))
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            continue
        out[name] = str(value) if kind == "terms" else (int(value) if kind == "integer" else round(float(value), METADATA_DIGITS))
    return out

