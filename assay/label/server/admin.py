"""Administering the running embedded server over its REST API as its owner: status, users.

    add_user(home, "alice")          # -> {"username", "password", "api_key", ...}
    list_users(home)                 # -> [{"username", "role", "workspaces", "responses", ...}]
    reset_password(home, "alice")    # -> {"username", "password"}
    remove_user(home, "alice")       # refuses while alice has responses, unless delete_responses=True
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
    if _find_user(info, name) is not None:
        raise ConfigError(
            f"user `{name}` already exists on the embedded server",
            hint=f"give another name, or `assay label users reset-password {name}` for new credentials",
        )
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


def list_users(home: Path) -> list[dict[str, Any]]:
    """Every user with their role, Argilla workspaces and responses per status over all datasets."""
    info = require_server(home)
    counts = _response_counts(info)
    out = []
    for user in api(info, "GET", "/api/v1/users")["items"]:
        workspaces = api(info, "GET", f"/api/v1/users/{user['id']}/workspaces")["items"]
        out.append({"username": user["username"], "role": user["role"], "workspaces": sorted(w["name"] for w in workspaces),
                    "responses": counts.get(user["username"], {"submitted": 0, "discarded": 0, "draft": 0}),
                    "created_at": user["inserted_at"]})
    return out


def reset_password(home: Path, name: str, password: str | None = None) -> dict[str, Any]:
    """Give a user a new password (generated when not given); their API key and reviews stay as they are."""
    info = require_server(home)
    user = _require_user(info, name)
    password = password or secrets.token_urlsafe(12)
    api(info, "PATCH", f"/api/v1/users/{user['id']}", {"password": password})
    return {"username": name, "password": password}


def remove_user(home: Path, name: str, *, delete_responses: bool = False) -> dict[str, Any]:
    """Delete a user. Argilla deletes their responses with them, so a user who has responded is kept
    unless `delete_responses` says that is intended (pull first: an approved version keeps them)."""
    info = require_server(home)
    user = _require_user(info, name)
    if user["username"] == load_secrets(info.home)["username"]:
        raise ConfigError(f"`{name}` is the workspace's owner, which assay itself signs in as", hint="remove another user")
    responses = _response_counts(info).get(name, {})
    total = sum(responses.values())
    if total and not delete_responses:
        detail = ", ".join(f"{n:,} {status}" for status, n in responses.items() if n)
        raise ConfigError(
            f"`{name}` has {total:,} response(s) ({detail}); Argilla deletes them with the user",
            hint="pull the datasets they reviewed first (`assay label pull NAME`), then rerun with --delete-responses",
        )
    api(info, "DELETE", f"/api/v1/users/{user['id']}")
    return {"username": name, "deleted_responses": total}


def _find_user(info: ServerInfo, name: str) -> dict[str, Any] | None:
    return next((u for u in api(info, "GET", "/api/v1/users")["items"] if u["username"] == name), None)


def _require_user(info: ServerInfo, name: str) -> dict[str, Any]:
    user = _find_user(info, name)
    if user is None:
        names = ", ".join(sorted(u["username"] for u in api(info, "GET", "/api/v1/users")["items"]))
        raise ConfigError(f"no user `{name}` on the embedded server (users: {names})", hint="see `assay label users list`")
    return user


def _response_counts(info: ServerInfo) -> dict[str, dict[str, int]]:
    """username → responses per status (submitted, discarded, draft) over every dataset."""
    counts: dict[str, dict[str, int]] = {}
    for dataset in api(info, "GET", "/api/v1/me/datasets")["items"]:
        for user in api(info, "GET", f"/api/v1/datasets/{dataset['id']}/users/progress")["users"]:
            mine = counts.setdefault(user["username"], {"submitted": 0, "discarded": 0, "draft": 0})
            for by_status in (user.get("completed") or {}, user.get("pending") or {}):
                for status, n in by_status.items():
                    if status in mine:
                        mine[status] += n or 0
    return counts


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
