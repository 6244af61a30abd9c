"""The embedded Argilla stack: argilla-server 2.8 in its own venv, with assay's database-backed search engine.

Python API (the `assay label serve|stop|status` commands are thin wrappers)::

    from assay.label.server import start_server, stop_server, server_status, add_user
    info = start_server(home)            # home: the workspace's Argilla directory, e.g. <workspace>/argilla
    add_user(home, "alice")              # -> {"username", "password", "api_key", ...}
    stop_server(home)

`engine/`, `overlap.py`, `fastpath.py` and `launcher.py` run inside the argilla-server venv and are never imported here.
That venv is shared by every workspace of the user (`server_venv_dir()`: in the user cache, or
$ASSAY_ARGILLA_VENV).
"""

from assay.label.server.admin import add_user, list_users, remove_user, reset_password, server_status
from assay.label.server.manager import (
    DEFAULT_PORT,
    ServerInfo,
    load_secrets,
    require_server,
    start_server,
    stop_server,
)
from assay.label.server.serverenv import ensure_server_env, server_venv_dir

__all__ = [
    "DEFAULT_PORT",
    "ServerInfo",
    "add_user",
    "ensure_server_env",
    "list_users",
    "load_secrets",
    "remove_user",
    "reset_password",
    "require_server",
    "server_status",
    "server_venv_dir",
    "start_server",
    "stop_server",
]
