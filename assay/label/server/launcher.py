"""Entry point for the argilla-server processes that assay starts (run with the server venv's python).

    python launcher.py serve --port 6900     # migrate, ensure the owner user, then serve on 127.0.0.1
    python launcher.py worker                # the rq worker (webhooks, record-status jobs)

Before argilla_server's app starts it registers assay's search engine (the ``engine/`` package), the
per-record overlap rule (``overlap.py``) and the webhook shortcut (``fastpath.py``). All three are loaded
by path under private top-level names (``assay_argilla_engine``, ``assay_argilla_overlap``,
``assay_argilla_fastpath``): assay is not installed in this venv, and this
directory is not put on sys.path, so none of its module names can shadow a package the server imports.
Settings come from the environment the manager prepares (ARGILLA_* variables, TMPDIR, ...); the owner's
credentials come from the 0600 file named by ASSAY_ARGILLA_SECRETS, never from the command line.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
if sys.path and Path(sys.path[0] or ".").resolve() == HERE:
    sys.path.pop(0)


def _load(name: str, filename: str):
    """Import a sibling file, or a sibling package folder, as a private top-level module.

    A package's own modules then import one another relatively, as ``<name>.<module>``.
    """
    path = HERE / filename
    if path.is_dir():
        spec = importlib.util.spec_from_file_location(
            name, path / "__init__.py", submodule_search_locations=[str(path)]
        )
    else:
        spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def prepare() -> None:
    """Register the engine, install the per-record overlap rule (overlap.py) and the speed-ups of
    fastpath.py (ASSAY_ARGILLA_FASTPATH=0 turns those off)."""
    _load("assay_argilla_engine", "engine")
    import argilla_server  # noqa: F401  (imports the whole app, so every module to patch is loaded)

    _load("assay_argilla_overlap", "overlap.py").install()
    parts = os.environ.get("ASSAY_ARGILLA_FASTPATH", "all")
    if parts != "0":
        patched = _load("assay_argilla_fastpath", "fastpath.py").install(parts)
        print(f"assay: fastpath {parts} installed ({patched} names)", flush=True)


def migrate() -> None:
    """Bring the database schema to the head revision (alembic, as `argilla_server database migrate`)."""
    import alembic.config
    from argilla_server.database import ALEMBIC_CONFIG_FILE

    alembic.config.main(argv=["-c", ALEMBIC_CONFIG_FILE, "upgrade", "head"])
    _enable_loggers()


def _enable_loggers() -> None:
    """alembic's fileConfig disables every logger that existed before it; the server's errors must still log."""
    import logging

    for logger in logging.Logger.manager.loggerDict.values():
        if isinstance(logger, logging.Logger):
            logger.disabled = False


async def ensure_owner(secrets_file: Path) -> None:
    """Create the owner (and its workspace) once; afterwards keep its key and password in step with the file."""
    from argilla_server.contexts import accounts
    from argilla_server.database import AsyncSessionLocal, async_engine
    from argilla_server.enums import UserRole
    from argilla_server.models import User, Workspace, WorkspaceUser

    secrets = json.loads(secrets_file.read_text())
    async with AsyncSessionLocal() as db:
        workspace = await Workspace.get_by(db, name=secrets["workspace"])
        if workspace is None:
            workspace = await accounts.create_workspace(db, {"name": secrets["workspace"]})
        user = await accounts.get_user_by_username(db, secrets["username"])
        if user is None:
            user = await User.create(
                db,
                first_name="assay",
                username=secrets["username"],
                role=UserRole.owner,
                password_hash=accounts.hash_password(secrets["password"]),
                api_key=secrets["api_key"],
            )
        elif user.api_key != secrets["api_key"] or not accounts.verify_password(
            secrets["password"], user.password_hash
        ):
            user.api_key = secrets["api_key"]
            user.password_hash = accounts.hash_password(secrets["password"])
            await user.save(db)
        if await WorkspaceUser.get_by(db, workspace_id=workspace.id, user_id=user.id) is None:
            await WorkspaceUser.create(db, workspace_id=workspace.id, user_id=user.id)
    # Pooled connections belong to this event loop; the server runs on another one (asyncpg refuses to mix).
    await async_engine.dispose()


async def prepare_engine() -> None:
    """The engine's indexes, text index and triggers, before the first request (a backfill of existing
    records can take seconds once, after an upgrade); the engine re-checks lazily in other processes."""
    from argilla_server.database import AsyncSessionLocal, async_engine

    indexes = sys.modules["assay_argilla_engine.indexes"]
    async with AsyncSessionLocal() as db:
        await indexes.ensure(db)
    await async_engine.dispose()


def serve(port: int) -> None:
    import uvicorn

    migrate()
    asyncio.run(ensure_owner(Path(os.environ["ASSAY_ARGILLA_SECRETS"])))
    asyncio.run(prepare_engine())
    print("assay: database ready", flush=True)
    from argilla_server import app

    fastpath = sys.modules.get("assay_argilla_fastpath")
    served = fastpath.answer_switch(app) if fastpath is not None else app
    server = uvicorn.Server(
        uvicorn.Config(served, host="127.0.0.1", port=port, access_log=False, log_level="warning")
    )
    server.config.setup_event_loop()  # what uvicorn.run does before asyncio.run (uvloop when installed)
    asyncio.run(_serve_warming(server))


async def _serve_warming(server) -> None:
    """Serve, and meanwhile fill the similarity cache, so a curator's first similarity query finds it
    ready (ASSAY_VECTOR_WARM=0 leaves it to that query)."""
    warming = None
    if os.environ.get("ASSAY_VECTOR_WARM", "1") != "0":
        warming = asyncio.create_task(_warm_vectors())
    else:
        print("assay: vector cache warm-up off", flush=True)
    try:
        await server.serve()
    finally:
        if warming is not None:
            warming.cancel()


async def _warm_vectors() -> None:
    engine = sys.modules["assay_argilla_engine"]
    try:
        blocks, vectors = await engine.warm_vector_cache()
    except Exception as error:  # noqa: BLE001 (the first similarity query fills the cache instead)
        print(f"assay: vector cache not warmed: {error!r}", flush=True)
        return
    print(f"assay: vector cache warm ({blocks} blocks, {vectors} vectors)", flush=True)


def drop_ui_copy() -> None:
    """The worker never serves the web UI: remove the 14 MB copy that importing argilla_server just made."""
    import shutil
    import tempfile

    from argilla_server import app

    tmp = Path(tempfile.gettempdir()).resolve()
    for route in app.routes:
        directory = getattr(getattr(route, "app", None), "directory", None)
        if directory and Path(directory).resolve().parent.parent == tmp:
            shutil.rmtree(Path(directory).resolve().parent, ignore_errors=True)


def worker(num_workers: int) -> None:
    from argilla_server.jobs.queues import DEFAULT_QUEUE, HIGH_QUEUE, REDIS_CONNECTION
    from rq.worker_pool import WorkerPool

    drop_ui_copy()

    WorkerPool(
        connection=REDIS_CONNECTION, queues=[DEFAULT_QUEUE.name, HIGH_QUEUE.name], num_workers=num_workers
    ).start()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="launcher.py")
    commands = parser.add_subparsers(dest="command", required=True)
    serve_cmd = commands.add_parser("serve")
    serve_cmd.add_argument("--port", type=int, required=True)
    worker_cmd = commands.add_parser("worker")
    worker_cmd.add_argument("--num-workers", type=int, default=1)
    commands.add_parser("migrate")
    args = parser.parse_args(argv)
    prepare()
    if args.command == "serve":
        serve(args.port)
    elif args.command == "worker":
        worker(args.num_workers)
    else:
        migrate()


if __name__ == "__main__":
    main()
