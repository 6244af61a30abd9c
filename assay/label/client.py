"""Connecting to Argilla: $ARGILLA_API_URL / $ARGILLA_API_KEY, `label.api_url`, or the workspace's embedded server.

Every failure becomes an assay error that says what to do: a server that does not answer names
`assay label serve`; a rejected key names the variable to fix. Nothing is sent before the connection
and the key have been checked, so a failed push or pull leaves nothing half-done.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assay.errors import AssayError, ConfigError, WorkspaceError
from assay.label.config import LabelConfig

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


def _probe(url: str) -> None:
    """Fail fast (and clearly) when nothing answers at `url`."""
    import httpx

    try:
        httpx.get(f"{url}/api/v1/version", timeout=5, trust_env=False).raise_for_status()
    except httpx.HTTPStatusError as exc:
        raise WorkspaceError(
            f"{url} answered HTTP {exc.response.status_code} to /api/v1/version: is it an Argilla 2.x server?",
            hint=SERVE_HINT,
        ) from exc
    except httpx.HTTPError as exc:
        raise WorkspaceError(f"the Argilla server at {url} does not answer ({exc.__class__.__name__}: {exc})", hint=SERVE_HINT) from exc


def connect(conn: Connection) -> Any:
    """An `argilla.Argilla` client whose server answers and accepts the key."""
    _probe(conn.url)
    import argilla as rg
    from argilla._exceptions import ArgillaCredentialsError

    try:
        return rg.Argilla(api_url=conn.url, api_key=conn.api_key, timeout=120, retries=1, trust_env=False)
    except ArgillaCredentialsError as exc:
        where = f"${ENV_KEY}" if conn.source != "embedded" else "the workspace's argilla/secrets.json"
        raise ConfigError(
            f"Argilla at {conn.url} rejected the API key (HTTP 401)",
            hint=f"check {where}; an owner or admin key is needed to push and pull",
        ) from exc


def request(client: Any, method: str, path: str, **kwargs: Any) -> Any:
    """One REST call through the SDK's HTTP client; errors become assay errors with the server's detail."""
    import httpx

    try:
        response = client.http_client.request(method, path, **kwargs)
    except httpx.HTTPError as exc:
        raise WorkspaceError(f"the Argilla server stopped answering during {method} {path} ({exc})", hint=SERVE_HINT) from exc
    if response.status_code in (401, 403):
        raise ConfigError(
            f"Argilla refused {method} {path} (HTTP {response.status_code})",
            hint="push, pull and progress need an owner or admin API key",
        )
    if response.status_code >= 400:
        raise AssayError(f"Argilla answered HTTP {response.status_code} to {method} {path}: {response.text[:500]}")
    return response.json() if response.content else None


def find_dataset(client: Any, name: str, workspace: str) -> dict | None:
    """The dataset called `name` in an Argilla workspace (REST representation), or None."""
    wid = workspace_id(client, workspace, create=False)
    if wid is None:
        return None
    found = [d for d in request(client, "GET", "/api/v1/me/datasets")["items"] if d["name"] == name and d["workspace_id"] == wid]
    return found[0] if found else None


def workspace_id(client: Any, name: str, *, create: bool) -> str | None:
    """The id of an Argilla workspace; created when asked (owner key) and missing."""
    for item in request(client, "GET", "/api/v1/me/workspaces")["items"]:
        if item["name"] == name:
            return item["id"]
    if not create:
        return None
    return request(client, "POST", "/api/v1/workspaces", json={"name": name})["id"]


def usernames(client: Any) -> dict[str, str]:
    """user id → username for every user the key can see."""
    return {u["id"]: u["username"] for u in request(client, "GET", "/api/v1/users")["items"]}


def dataset_url(client: Any, dataset_id: str) -> str:
    return f"{str(client.api_url).rstrip('/')}/dataset/{dataset_id}/annotation-mode"
