"""Where Argilla is: $ARGILLA_API_URL / $ARGILLA_API_KEY, `label.api_url`, or the workspace's embedded server.

`open_store` turns that into the review store push and pull talk to (`argilla_rest.ArgillaStore`);
a missing key is refused here, before anything is sent.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from assay.errors import ConfigError
from assay.label.config import LabelConfig

if TYPE_CHECKING:
    from assay.label.argilla_rest import ArgillaStore
    from assay.label.store import ReviewStore

ENV_URL, ENV_KEY = "ARGILLA_API_URL", "ARGILLA_API_KEY"
SERVE_HINT = "start the workspace's server with `assay label serve` (or set ARGILLA_API_URL and ARGILLA_API_KEY)"


def argilla_home(root: Path) -> Path:
    """Where the workspace keeps its embedded Argilla stack (secrets, logs, database)."""
    return Path(root) / "argilla"


@dataclass(frozen=True)
class Connection:
    """Where Argilla answers and with which key; `source` says where that came from (env, config, embedded)."""

    url: str
    api_key: str = field(repr=False)
    source: str


def resolve_connection(root: Path, cfg: LabelConfig) -> Connection:
    """$ARGILLA_API_URL (or label.api_url) with $ARGILLA_API_KEY, else the embedded server of the workspace."""
    url = os.environ.get(ENV_URL) or cfg.api_url
    if url:
        key = os.environ.get(ENV_KEY)
        if not key:
            raise ConfigError(
                f"an Argilla URL is set ({url}) but no API key",
                hint=f"export {ENV_KEY}=<the key shown in Argilla's user settings>",
            )
        return Connection(url.rstrip("/"), key, "env" if os.environ.get(ENV_URL) else "config")
    from assay.label.server import require_server

    info = require_server(argilla_home(root))
    return Connection(info.url, info.api_key, "embedded")


@contextmanager
def using_store(root: Path, cfg: LabelConfig, store: ReviewStore | None = None) -> Iterator[ReviewStore]:
    """`store` when given (a test's fake, a caller's own), else the workspace's Argilla store, closed afterwards."""
    if store is not None:
        yield store
        return
    with open_store(root, cfg) as argilla:
        yield argilla


def open_store(root: Path, cfg: LabelConfig) -> ArgillaStore:
    """The Argilla review store of a workspace (see `resolve_connection`), checked to answer and accept the key."""
    from assay.label.argilla_rest import ArgillaStore

    return ArgillaStore.connect(resolve_connection(root, cfg), cfg.workspace)
