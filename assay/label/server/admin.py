"""Administering the running embedded server over its REST API as its owner: status, users.

    add_user(home, "alice")          # -> {"username", "password", "api_key", ...}
    server_status(home)              # -> {"running", "url", "users", "datasets", ...}

The review client (`assay.label.argilla_rest`) is the one place that speaks to Argilla for reviews;
this module only manages the workspace's own server, with the standard library's HTTP client so that
`assay label serve|status|users` work without the label extra.
"""

from __future__ import annotations

import json
import secrets
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from assay.errors import AssayError, ConfigError, WorkspaceError
from assay.label.server.manager import _OPENER, SERVE_HINT, ServerInfo, load_secrets, require_server


def server_status(home: Path) -> dict[str, Any]:
    """What runs and what it holds: url, pids, users and datasets (read over HTTP with the owner key)."""
    home = Path(home).absolute()
    try:
        info = require_server(home)
    except WorkspaceError:
        return {"home": str(home), "running": False, "url": None, "hint": SERVE_HINT}
    status: dict[str, Any] = {
        "running": True,
        **info.to_dict(),
        "worker_running": info.worker_pid is not None,
    }
    status["database"] = "postgresql" if info.database_url.startswith("postgresql") else "sqlite"
    try:
        status["users"] = [
            {"username": u["username"], "role": u["role"]} for u in api(info, "GET", "/api/v1/users")["items"]
        ]
        status["datasets"] = [
            _dataset_summary(info, d) for d in api(info, "GET", "/api/v1/me/datasets")["items"]
        ]
    except AssayError as exc:
        status["error"] = exc.message
    return status


def _dataset_summary(info: ServerInfo, dataset: dict[str, Any]) -> dict[str, Any]:
    summary = {"name": dataset["name"], "id": dataset["id"], "status": dataset["status"]}
    if dataset["status"] == "ready":
        progress = api(info, "GET", f"/api/v1/datasets/{dataset['id']}/progress")
        summary.update(records=progress["total"], completed=progress["completed"])
    return summary


def add_user(home: Path, name: str, role: str = "annotator", password: str | None = None) -> dict[str, Any]:
    """Create an Argilla user in the workspace's default Argilla workspace; returns its credentials.

    Example: ``add_user(home, "alice")["api_key"]``; the password is generated when not given.
    """
    if role not in ("annotator", "admin", "owner"):
        raise ConfigError(f"unknown role {role!r}", hint="use one of: annotator, admin, owner")
    info = require_server(home)
    password = password or secrets.token_urlsafe(12)
    body = {"first_name": name, "username": name, "role": role, "password": password}
    user = api(info, "POST", "/api/v1/users", body)
    workspace = load_secrets(info.home)["workspace"]
    workspaces = api(info, "GET", "/api/v1/me/workspaces")["items"]
    workspace_id = next(w["id"] for w in workspaces if w["name"] == workspace)
    api(info, "POST", f"/api/v1/workspaces/{workspace_id}/users", {"user_id": user["id"]})
    return {
        "id": user["id"],
        "username": user["username"],
        "role": user["role"],
        "password": password,
        "api_key": user["api_key"],
        "workspace": workspace,
    }


def api(info: ServerInfo, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """One JSON call to the server as its owner; HTTP errors become ConfigError with the server's detail."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{info.url}{path}", data=data, method=method)
    request.add_header("X-Argilla-Api-Key", info.api_key)
    request.add_header("Content-Type", "application/json")
    try:
        with _OPENER.open(request, timeout=30) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        detail = _detail(exc)
        raise ConfigError(
            f"Argilla refused {method} {path}: {detail}",
            hint="check the values given (names: lowercase letters, digits, - and _)",
        ) from exc
    except OSError as exc:
        raise WorkspaceError(
            f"the Argilla server at {info.url} does not answer ({exc})",
            hint=f"check `assay label status`, or {SERVE_HINT}",
        ) from exc


def _detail(exc: urllib.error.HTTPError) -> str:
    try:
        payload = json.loads(exc.read())
    except (OSError, ValueError):
        return f"HTTP {exc.code}"
    detail = payload.get("detail", payload) if isinstance(payload, dict) else payload
    return f"HTTP {exc.code}: {detail}"
