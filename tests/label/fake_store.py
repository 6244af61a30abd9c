"""An in-memory `ReviewStore` for fast push → vote → pull tests: datasets, records and responses in dicts.

It keeps the contract of the real store (store.py) without a server: the shape check is the shared
`verify_existing`, a draft is replaced, uploads are batched, and `vote` plays a named annotator
submitting (or saving, or discarding) a response the way the review UI stores it.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from assay.label.spec import Spec
from assay.label.store import DatasetRef, ReviewRecord, Snapshot, verify_existing

URL = "http://review.invalid"
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class FakeDataset:
    id: str
    name: str
    spec: Spec
    guidelines: str
    version: str | None
    draft: bool = False
    records: dict[str, ReviewRecord] = field(default_factory=dict)
    responses: dict[tuple[str, str], dict] = field(default_factory=dict)  # (row id, annotator) → response


class FakeStore:
    """A review server in memory; `batches` lists the size of every upload request."""

    record_overlap = True  # completes each record at its own `reviews_needed`, like the embedded server

    def __init__(self, annotators: list[str] | None = None) -> None:
        self.datasets: dict[str, FakeDataset] = {}
        self.users = list(annotators or [])
        self.batches: list[int] = []
        self._ids = itertools.count(1)
        self._clock = itertools.count(1)

    def __enter__(self) -> FakeStore:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    # -- the protocol --

    def find(self, name: str) -> DatasetRef | None:
        found = self.datasets.get(name)
        return self._ref(found) if found else None

    def names(self) -> list[str]:
        return sorted(self.datasets)

    def ensure_dataset(
        self, name: str, spec: Spec, *, version_id: str, guidelines: str, strict_overlap: bool = True
    ) -> tuple[DatasetRef, bool]:
        found = self.datasets.get(name)
        if found is not None and found.draft:
            del self.datasets[name]
            found = None
        if found is None:
            created = FakeDataset(f"fake-{next(self._ids)}", name, copy.deepcopy(spec), guidelines, version_id)
            self.datasets[name] = created
            return self._ref(created), True
        verify_existing(name, found.spec, spec, found.version, version_id, strict_overlap=strict_overlap)
        found.version = found.version or version_id
        return self._ref(found), False

    def annotators(self) -> list[str]:
        return sorted(self.users)

    def existing_ids(self, dataset: DatasetRef) -> set[str]:
        return set(self._dataset(dataset).records)

    def upload(self, dataset: DatasetRef, records, *, batch_size: int, sent=None) -> int:
        held, done, pending = self._dataset(dataset), 0, iter(records)
        while batch := list(itertools.islice(pending, batch_size)):
            held.records.update((r.id, r) for r in batch)
            self.batches.append(len(batch))
            done += len(batch)
            if sent:
                sent(done)
        return done

    def snapshot(self, dataset: DatasetRef) -> Snapshot:
        held = self._dataset(dataset)
        responses = [(rid, user, copy.deepcopy(r)) for (rid, user), r in held.responses.items()]
        suggested = {rid: {s["question_name"]: copy.deepcopy(s["value"]) for s in r.suggestions}
                     for rid, r in held.records.items() if r.suggestions}
        return Snapshot(dataset, list(held.records), responses, suggested)

    # -- for tests --

    def vote(self, dataset: str, annotator: str, row_id: str, status: str = "submitted", **values: Any) -> None:
        """`annotator` answers one record; questions and options are checked as the server checks them."""
        held = self.datasets[dataset]
        assert row_id in held.records, f"no record {row_id} in {dataset}"
        questions = held.spec["questions"]
        for question, value in values.items():
            assert question in questions, f"no question {question}"
            options = questions[question].get("options")
            chosen = value if isinstance(value, list) else [value]
            assert not options or all(v in options for v in chosen), f"{value} is not an option of {question}"
        when = (EPOCH + timedelta(seconds=next(self._clock))).isoformat()
        held.responses[(row_id, annotator)] = {
            "status": status, "values": {q: {"value": v} for q, v in values.items()}, "inserted_at": when, "updated_at": when,
        }

    def _dataset(self, ref: DatasetRef) -> FakeDataset:
        held = self.datasets[ref.name]
        assert held.id == ref.id, "the dataset was replaced since this reference was taken"
        return held

    def _ref(self, held: FakeDataset) -> DatasetRef:
        return DatasetRef(held.id, held.name, f"{URL}/dataset/{held.id}/annotation-mode", URL,
                          held.spec["min_submitted"] or 1, held.version, held.spec.get("overlap"))
