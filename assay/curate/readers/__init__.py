"""Input readers: turn users' files into chunks of canonical rows, and bad lines into quarantine.

Readers stream (bounded memory, except JSON array files, which are one document and load whole),
keep the physical line of every row for lineage, and never lose a row: a line that cannot be
parsed, or a row whose content field is unusable, goes to a quarantine frame with its line number,
a readable message and the raw text.

The content shape (messages, prompt/response or text) is decided once per file, from the columns
of its first chunk (or from `ReadConfig.columns`); mapped user columns are replaced by the
canonical ones and every other column is carried through unchanged. A row's input split
(train/val/test from a DatasetDict, a `split` column or a file per split) goes into `split`.

    >>> files = expand_inputs(["data/"])
    >>> for chunk in read_chunks(files[0], ReadConfig(columns={"prompt": "instruction"})):
    ...     chunk.rows, chunk.quarantine

Modules: `inputs` (files, folders, globs), `folders` (walking, links, dataset folders),
`splits` (input splits), `fingerprint`, `config`, `mapping` (columns onto the canonical schema),
`rules` (when content is usable), `chat_text` (chats stored as JSON text), `chunks` (assembling
rows), `quarantine`, and one module per format: `jsonl`, `json_document`, `csv`, `arrow`
(Parquet and `save_to_disk`), dispatched by `read`.
"""

from assay.curate.readers.chunks import Chunk
from assay.curate.readers.config import CONTENT_KEYS, ReadConfig
from assay.curate.readers.fingerprint import file_fingerprint
from assay.curate.readers.formats import SUPPORTED_EXTENSIONS, InputFile
from assay.curate.readers.inputs import expand_inputs
from assay.curate.readers.mapping import RESERVED_COLUMNS, SHAREGPT_ROLES
from assay.curate.readers.read import read_chunks
from assay.curate.readers.splits import SPLIT_ALIASES, split_name

__all__ = [
    "CONTENT_KEYS",
    "RESERVED_COLUMNS",
    "SHAREGPT_ROLES",
    "SPLIT_ALIASES",
    "SUPPORTED_EXTENSIONS",
    "Chunk",
    "InputFile",
    "ReadConfig",
    "expand_inputs",
    "file_fingerprint",
    "read_chunks",
    "split_name",
]
