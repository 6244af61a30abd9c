"""Batches: the whole loop from one file (`assay batch run`), resumable, with a comparison of candidates."""

from assay.batch.config import Batch, load_batch
from assay.batch.run import BatchOutcome, batch_dir, run_batch
from assay.batch.status import batch_status

__all__ = ["Batch", "BatchOutcome", "batch_dir", "batch_status", "load_batch", "run_batch"]
