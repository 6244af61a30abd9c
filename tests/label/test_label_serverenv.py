"""Where the argilla-server venv lives and when it counts as built (no build here: the path and stamp logic)."""

from __future__ import annotations

from pathlib import Path

import pytest

from assay.label.server import manager, procs, server_venv_dir, serverenv, start_server


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """A private user cache, with no $ASSAY_ARGILLA_VENV override."""
    monkeypatch.delenv(serverenv.ENV_VENV, raising=False)
    monkeypatch.setenv("ASSAY_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


class _Chosen(Exception):
    """Stops start_server right after it picked the venv, before anything is built or started."""


def _venv_used_by_start(home: Path, monkeypatch) -> Path:
    chosen: list[Path] = []

    def record(venv_dir, **_):
        chosen.append(Path(venv_dir))
        raise _Chosen

    monkeypatch.setattr(manager, "ensure_server_env", record)
    with pytest.raises(_Chosen):
        start_server(home, port=procs.free_port(), progress=None)
    return chosen[0]


def _fake_venv(path: Path, stamp: str | None) -> Path:
    """A folder that looks like a venv (bin/python, lib/) with the given stamp, or none."""
    (path / "bin").mkdir(parents=True)
    (path / "bin" / "python").write_text("")
    (path / "lib").mkdir()
    if stamp is not None:
        (path / serverenv.STAMP_FILE).write_text(stamp + "\n")
    return path


def test_two_workspaces_share_one_venv_in_the_user_cache(tmp_path, cache, monkeypatch):
    first = _venv_used_by_start(tmp_path / "ws1" / "argilla", monkeypatch)
    second = _venv_used_by_start(tmp_path / "ws2" / "argilla", monkeypatch)
    assert first == second == server_venv_dir()
    assert first.parent == cache and first.name.startswith(f"argilla-server-{serverenv.SERVER_VERSION}-")
    assert not (tmp_path / "ws1" / "argilla" / "venv").exists()


def test_changed_requirements_give_a_new_folder(cache, monkeypatch):
    before = server_venv_dir()
    monkeypatch.setattr(serverenv, "REQUIREMENTS", (*serverenv.REQUIREMENTS, "rq==1.16.2"))
    changed = server_venv_dir()
    monkeypatch.setattr(serverenv, "FALLBACK_REQUIREMENTS", (*serverenv.FALLBACK_REQUIREMENTS, "rq"))
    assert len({before, changed, server_venv_dir()}) == 3
    assert {before.parent, changed.parent} == {cache}


def test_the_environment_variable_overrides_the_cache(tmp_path, cache, monkeypatch):
    monkeypatch.setenv(serverenv.ENV_VENV, str(tmp_path / "mine"))
    assert server_venv_dir() == tmp_path / "mine"
    assert _venv_used_by_start(tmp_path / "ws" / "argilla", monkeypatch) == tmp_path / "mine"


def test_only_a_finished_build_is_current(tmp_path):
    venv = _fake_venv(tmp_path / "venv", stamp=None)
    assert not serverenv.is_current(venv)
    (venv / serverenv.STAMP_FILE).write_text("0123456789abcdef\n")
    assert not serverenv.is_current(venv)
    serverenv._write_stamp(venv)
    assert serverenv.is_current(venv)
    (venv / "bin" / "python").unlink()
    assert not serverenv.is_current(venv)


def test_a_current_venv_is_not_rebuilt(tmp_path, monkeypatch):
    venv = _fake_venv(tmp_path / "venv", stamp=serverenv._stamp())
    monkeypatch.setattr(serverenv, "_build", lambda *args: pytest.fail("a current venv was rebuilt"))
    assert serverenv.ensure_server_env(venv, progress=None) == venv / "bin" / "python"


def test_an_interrupted_cleanup_never_leaves_a_current_looking_venv(tmp_path, monkeypatch):
    venv = _fake_venv(tmp_path / "venv", stamp=serverenv._stamp())

    def interrupted(path, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(serverenv.shutil, "rmtree", interrupted)
    with pytest.raises(KeyboardInterrupt):
        serverenv._create_venv(venv)
    assert (venv / "bin" / "python").exists() and not serverenv.is_current(venv)


def test_outdated_environments_are_those_of_other_requirements(cache):
    current = _fake_venv(server_venv_dir(), stamp=serverenv._stamp())
    old = _fake_venv(cache / "argilla-server-2.7.0-0123456789abcdef", stamp="0123456789abcdef")
    _fake_venv(cache / "argilla-server-2.8.0-fedcba9876543210", stamp=None)  # unfinished: maybe building now
    _fake_venv(cache / "other-tool", stamp="0123456789abcdef")
    assert serverenv.outdated_server_envs() == [old]
    said: list[str] = []
    serverenv._mention_outdated(said.append)
    assert len(said) == 1 and str(old) in said[0] and str(current) not in said[0]
