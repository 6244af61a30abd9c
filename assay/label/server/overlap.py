"""A sampled overlap for argilla-server 2.8: a record may need more submitted responses than its dataset's
`min_submitted`, so agreement is measured on a sample (say 10 % of the records reviewed twice) at a
fraction of the cost of reviewing everything twice.

argilla-server completes a record (status `completed`, out of every curator's queue) once it has
`dataset.distribution["min_submitted"]` submitted responses. assay's push gives each record of the overlap
sample the metadata value `reviews_needed` (spec.py); this module makes the status rule read it:

    completed  ⇔  submitted responses ≥ record.metadata_["reviews_needed"], else the dataset's min_submitted

Records without the value keep argilla's rule exactly. Every place that sets a record's status (the
response handlers, bulk responses, the rq worker's status job) goes through
`contexts.distribution._update_record_status_with_overlap_strategy`, which is looked up by name at call
time, so replacing that one module attribute covers them all.

Runs inside the argilla-server virtual environment (loaded by ``launcher.py``); imports only argilla_server.
"""

from __future__ import annotations

from typing import Any

from argilla_server.contexts import distribution
from argilla_server.enums import RecordStatus

METADATA_KEY = "reviews_needed"  # the same name as assay.label.spec.REVIEWS_NEEDED


def reviews_needed(record: Any) -> int:
    """The record's own requirement, else the dataset's; a malformed value falls back to the dataset's."""
    base = int(record.dataset.distribution["min_submitted"])
    own = (record.metadata_ or {}).get(METADATA_KEY)
    try:
        return max(base, int(own)) if own is not None else base
    except (TypeError, ValueError):
        return base


async def _update_record_status(db: Any, record: Any) -> Any:
    done = len(record.responses_submitted) >= reviews_needed(record)
    record.status = RecordStatus.completed if done else RecordStatus.pending
    return await record.save(db, autocommit=False)


def install() -> int:
    """Replace the overlap strategy's status rule; returns the number of names patched."""
    distribution._update_record_status_with_overlap_strategy = _update_record_status
    return 1
