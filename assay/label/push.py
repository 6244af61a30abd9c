"""`assay label push`: a dataset version → an Argilla dataset that curators review (DESIGN §6).

Record ids are the row ids, and a push first asks which ids the dataset already holds, so a repeated
or interrupted push adds only what is missing and never duplicates a record.

    >>> result = push(Workspace.open(), "train-v1", sample=200)  # doctest: +SKIP
    >>> result.dataset, result.added, result.records_per_s  # doctest: +SKIP
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import polars as pl

from assay.errors import ConfigError
from assay.label import signals as S
from assay.label.client import connect, dataset_url, find_dataset, request, resolve_connection, workspace_id
from assay.label.config import LabelConfig
from assay.label.links import VERSION_KEY, write_link
from assay.label.spec import Spec, build_spec, differences, guidelines, spec_from_server, to_settings
from assay.schema import ID, MESSAGES, content_columns, content_text
from assay.settings import prefixed
from assay.store.manifest import now_iso

Progress = Callable[[int, int], None]
PAGE = 1000  # records per listing request (argilla-server's maximum)


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
    progress: Progress | None = None,
    **overrides: Any,
) -> PushResult:
    """Push a version's rows (optionally a prioritised sample) into an Argilla dataset for review.

    `overrides` are `LabelConfig` fields (sample, priority, vectors, min_submitted, ...); None keeps the
    workspace's value.
    """
    cfg = ws.config.with_overrides(prefixed("label", overrides)).label
    version = ws.datasets.get(ref)
    rows = select_rows(version, cfg)
    spec = build_spec(version.data().collect_schema(), cfg, vectors=cfg.vectors)
    client = connect(resolve_connection(ws.root, cfg))
    name = dataset or version.id
    explicit = overrides.get("min_submitted") is not None
    ds, created = ensure_dataset(client, name, spec, version.id, cfg, content_columns(rows.schema), explicit)
    have = existing_ids(client, ds["id"])
    missing = rows.filter(~pl.col(ID).is_in(list(have)))
    began = time.perf_counter()
    upload(client, name, cfg, missing, spec, progress)
    seconds = time.perf_counter() - began
    url = dataset_url(client, ds["id"])
    link = {"version": version.id, "dataset_id": ds["id"], "server": str(client.api_url), "workspace": cfg.workspace,
            "pushed_at": now_iso(), "records": len(have) + missing.height, "url": url}
    write_link(ws.root, name, link)
    rate = round(missing.height / seconds, 1) if missing.height and seconds > 0 else None
    return PushResult(name, ds["id"], url, version.id, rows.height, rows.height - missing.height, missing.height,
                      created, cfg.vectors, cfg.priority, round(seconds, 2), rate)


def select_rows(version: Any, cfg: LabelConfig) -> pl.DataFrame:
    """The version's rows with review signals, in priority order, cut to `cfg.sample`."""
    data = version.data().collect()
    rejects = version.rejects().collect()
    curate_config = version.manifest.get("config") or {}
    ordered = S.push_order(S.with_signals(data, rejects, curate_config, cfg.priority), cfg.seed)
    return ordered.head(cfg.sample) if cfg.sample else ordered


# -- the Argilla dataset ------------------------------------------------------------------------------------


def ensure_dataset(
    client: Any, name: str, spec: Spec, version_id: str, cfg: LabelConfig, content: tuple, explicit_overlap: bool = True
) -> tuple[dict, bool]:
    """The review dataset: verified when it exists (same shape, same version), else created whole.

    An existing dataset keeps its own `min_submitted` unless this push asked for one explicitly.
    """
    found = find_dataset(client, name, cfg.workspace)
    if found is not None and found["status"] == "draft":
        request(client, "DELETE", f"/api/v1/datasets/{found['id']}")  # an earlier push died while creating it
        found = None
    if found is not None:
        check_dataset(client, found, spec if explicit_overlap else {**spec, "min_submitted": None}, version_id)
        return found, False
    return create_dataset(client, name, spec, version_id, cfg, content), True


def server_spec(client: Any, dataset: dict) -> Spec:
    """The spec of an existing dataset, read over REST."""
    base = f"/api/v1/datasets/{dataset['id']}"
    return spec_from_server(
        dataset,
        request(client, "GET", f"{base}/fields")["items"],
        request(client, "GET", f"{base}/questions")["items"],
        request(client, "GET", f"/api/v1/me/datasets/{dataset['id']}/metadata-properties")["items"],
        request(client, "GET", f"{base}/vectors-settings")["items"],
    )


def check_dataset(client: Any, dataset: dict, spec: Spec, version_id: str) -> None:
    """Refuse to push into a dataset of another shape, or one that reviews another version."""
    diffs = differences(server_spec(client, dataset), spec)
    if diffs:
        raise ConfigError(
            f"the Argilla dataset `{dataset['name']}` has a different schema from this push:\n  - " + "\n  - ".join(diffs),
            hint="push under another name with --dataset NAME, or use the same options (--vectors, --min-submitted) "
            "as the first push",
        )
    linked = (dataset.get("metadata") or {}).get(VERSION_KEY)
    if linked and linked != version_id:
        raise ConfigError(
            f"the Argilla dataset `{dataset['name']}` reviews version {linked}, not {version_id}",
            hint=f"push {version_id} under another name with --dataset NAME",
        )
    if not linked:  # a matching dataset made outside assay: from now on it reviews this version
        metadata = {**(dataset.get("metadata") or {}), VERSION_KEY: version_id}
        request(client, "PATCH", f"/api/v1/datasets/{dataset['id']}", json={"metadata": metadata})


def create_dataset(client: Any, name: str, spec: Spec, version_id: str, cfg: LabelConfig, content: tuple) -> dict:
    """Create and publish the dataset; on any failure remove what was created, so nothing half-made stays."""
    import argilla as rg

    workspace_id(client, cfg.workspace, create=True)
    settings = to_settings(spec, guidelines(version_id, cfg, content))
    try:
        created = rg.Dataset(name=name, workspace=cfg.workspace, settings=settings, client=client).create()
        request(client, "PATCH", f"/api/v1/datasets/{created.id}", json={"metadata": {VERSION_KEY: version_id}})
    except BaseException:
        leftover = find_dataset(client, name, cfg.workspace)
        if leftover is not None:
            request(client, "DELETE", f"/api/v1/datasets/{leftover['id']}")
        raise
    return request(client, "GET", f"/api/v1/datasets/{created.id}")


def existing_ids(client: Any, dataset_id: str) -> set[str]:
    """External ids (= row ids) already in the dataset."""
    ids: set[str] = set()
    while True:
        page = request(client, "GET", f"/api/v1/datasets/{dataset_id}/records", params={"offset": len(ids), "limit": PAGE})
        ids.update(item["external_id"] for item in page["items"])
        if len(page["items"]) < PAGE:
            return ids


# -- records ------------------------------------------------------------------------------------------------


def upload(client: Any, name: str, cfg: LabelConfig, rows: pl.DataFrame, spec: Spec, progress: Progress | None) -> None:
    """Send rows in batches of `cfg.batch_size`; each batch is one bulk request (all or nothing)."""
    if rows.height == 0:
        return
    dataset = client.datasets(name=name, workspace=cfg.workspace)
    embedder = _embedder(cfg) if spec["vectors"] else None
    texts = rows.select(content_text(content_columns(rows.schema))).to_series().to_list() if embedder else []
    done = 0
    for start in range(0, rows.height, cfg.batch_size):
        batch = rows.slice(start, cfg.batch_size)
        vectors = embedder(texts[start : start + cfg.batch_size]) if embedder else [None] * batch.height
        models = [_model(dataset, to_record(row, spec, cfg, vec)) for row, vec in zip(batch.iter_rows(named=True), vectors, strict=True)]
        client.api.records.bulk_upsert(dataset_id=dataset.id, records=models)
        done += batch.height
        if progress:
            progress(done, rows.height)


def _embedder(cfg: LabelConfig):
    from assay.label.embed import Embedder

    return Embedder(cfg.vector_model)


def _model(dataset: Any, record: Any) -> Any:
    record.dataset = dataset
    return record.api_model()


def to_record(row: dict, spec: Spec, cfg: LabelConfig, vector: list[float] | None) -> Any:
    """One row → an argilla.Record whose id is the row id (Argilla's external_id)."""
    import argilla as rg

    return rg.Record(
        id=row[ID],
        fields=record_fields(row, spec),
        metadata=record_metadata(row, spec),
        suggestions=[rg.Suggestion(**s) for s in suggestions(row, cfg)],
        vectors={next(iter(spec["vectors"])): vector} if vector is not None else {},
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

