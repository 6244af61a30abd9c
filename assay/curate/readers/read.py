"""`read_chunks`: one input, read by the reader for its format, in chunks of canonical rows."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator

import pyarrow as pa

from assay.curate.readers.arrow import read_hf, read_parquet
from assay.curate.readers.chunks import Chunk
from assay.curate.readers.config import ReadConfig
from assay.curate.readers.csv import read_csv
from assay.curate.readers.formats import InputFile
from assay.curate.readers.json_document import read_json
from assay.curate.readers.jsonl import read_jsonl
from assay.errors import InputError

READERS: dict[str, Callable[[InputFile, ReadConfig], Iterator[Chunk]]] = {
    "jsonl": read_jsonl,
    "json": read_json,
    "csv": read_csv,
    "tsv": read_csv,
    "parquet": read_parquet,
    "hf": read_hf,
}


def read_chunks(f: InputFile, cfg: ReadConfig) -> Iterator[Chunk]:
    """Yield chunks of at most `cfg.chunk_rows` rows+quarantined lines from one input.

    Raises InputError for files that cannot be used at all (empty, unreadable, malformed JSON
    document, no recognisable content columns, unexpected split values); everything row-level
    goes to quarantine.
    """
    reader = READERS[f.format]
    try:
        yield from reader(f, cfg)
    except (OSError, EOFError, zlib.error, pa.ArrowException) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise InputError(
            f"cannot read {f.path}: {reason}", hint="check the file and its permissions"
        ) from exc
