"""The review store: where push puts records and pull reads responses, behind one small protocol.

push and pull speak only to `ReviewStore`; `assay.label.argilla_rest.ArgillaStore` is the real one
(argilla-server 2.x over REST), and the tests use an in-memory fake. Everything crossing the seam is
plain data: a `Spec` (spec.py) for the dataset's shape, `ReviewRecord`s going in, a `Snapshot` coming out.

    >>> store = assay.label.client.open_store(ws.root, ws.config.label)  # doctest: +SKIP
    >>> ref, created = store.ensure_dataset("review-1", spec, version_id=vid, guidelines=text)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from assay.errors import ConfigError
from assay.label.spec import Spec, differences, reviews_needed

Sent = Callable[[int], None]  # called with the number of records sent so far


@dataclass(frozen=True)
class DatasetRef:
    """A review dataset as push and pull need it; `version` is the assay version its metadata names."""

    id: str
    name: str
    url: str
    server: str
    min_submitted: int = 1
    version: str | None = None
    overlap: dict[str, Any] | None = None  # a sampled overlap (spec.overlap_spec), None: none

    def reviews_needed(self, row_id: str) -> int:
        """Submitted responses this record needs: `min_submitted`, more in a sampled overlap."""
        return reviews_needed(row_id, self.overlap, self.min_submitted)


@dataclass(frozen=True)
class ReviewRecord:
    """One row to review: its id (the row id), field values, metadata, suggestions and vectors.

    A suggestion is `{question_name, value, score, agent, type}`; vectors map a vector name to its values.
    """

    id: str
    fields: dict[str, Any]
    metadata: dict[str, Any]
    suggestions: list[dict[str, Any]] = field(default_factory=list)
    vectors: dict[str, list[float]] = field(default_factory=dict)


@dataclass
class Snapshot:
    """One read of a review dataset: its records' ids and every response with its annotator's name.

    A response is `{"status": submitted|discarded|draft, "values": {question: {"value": ...}},
    "inserted_at": ..., "updated_at": ...}` (argilla-server's REST shape, which `review.vote_from_response` reads).
    """

    dataset: DatasetRef
    record_ids: list[str] = field(default_factory=list)
    responses: list[tuple[str, str, dict]] = field(default_factory=list)  # (row id, username, response)
    suggestions: dict[str, dict[str, Any]] = field(default_factory=dict)  # row id → {question: suggested value}


class ReviewStore(Protocol):
    """What push, progress and pull need from a review server, and nothing more."""

    def find(self, name: str) -> DatasetRef | None:
        """The published dataset called `name`, or None."""
        ...

    def names(self) -> list[str]:
        """Every dataset name the key can see (for "not found" messages)."""
        ...

    def ensure_dataset(
        self, name: str, spec: Spec, *, version_id: str, guidelines: str, strict_overlap: bool = True
    ) -> tuple[DatasetRef, bool]:
        """The dataset, verified with `verify_existing` when it exists, else created whole (and published).

        A half-created one (left by a push that died) is removed first; a creation that fails removes
        what it made. Without `strict_overlap` an existing dataset keeps its own `min_submitted`.
        Returns (dataset, created).
        """
        ...

    @property
    def record_overlap(self) -> bool:
        """Whether the server completes a record at its own `reviews_needed` (a sampled overlap)."""
        ...

    def annotators(self) -> list[str]:
        """Usernames of the annotators who can review datasets of the store's workspace."""
        ...

    def existing_ids(self, dataset: DatasetRef) -> set[str]:
        """Ids of the records the dataset already holds."""
        ...

    def upload(self, dataset: DatasetRef, records: Iterable[ReviewRecord], *, batch_size: int, sent: Sent | None = None) -> int:
        """Add records in batches of `batch_size` (each batch all or nothing); returns how many were sent."""
        ...

    def snapshot(self, dataset: DatasetRef) -> Snapshot:
        """Every record id and every response (any status) with its annotator's username."""
        ...


def verify_existing(name: str, have: Spec, want: Spec, linked: str | None, version_id: str, *, strict_overlap: bool) -> None:
    """Refuse a dataset of another shape, or one that reviews another version; every store calls this."""
    diffs = differences(have, want if strict_overlap else {**want, "min_submitted": None})
    if diffs:
        raise ConfigError(
            f"the Argilla dataset `{name}` has a different schema from this push:\n  - " + "\n  - ".join(diffs),
            hint="push under another name with --dataset NAME, or use the same options (--vectors, --min-submitted) "
            "as the first push",
        )
    if linked and linked != version_id:
        raise ConfigError(
            f"the Argilla dataset `{name}` reviews version {linked}, not {version_id}",
            hint=f"push {version_id} under another name with --dataset NAME",
        )
