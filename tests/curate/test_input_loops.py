"""Folders with symbolic links: a link that loops back is an input error, any other link is followed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from assay.curate.readers import expand_inputs
from assay.errors import InputError
from tests.conftest import run_cli, write_jsonl

pytestmark = pytest.mark.skipif(os.name != "posix", reason="symbolic links need a POSIX file system")


def _tree(root: Path) -> Path:
    """data/a/x.jsonl and data/b/y.jsonl."""
    write_jsonl(root / "data" / "a" / "x.jsonl", [{"text": "a row in folder a"}])
    write_jsonl(root / "data" / "b" / "y.jsonl", [{"text": "a row in folder b"}])
    return root / "data"


def _loop_error(inputs: list) -> str:
    with pytest.raises(InputError) as info:
        expand_inputs(inputs)
    return str(info.value)


@pytest.mark.timeout(30)
def test_link_to_the_parent_folder_is_named_with_its_target(tmp_path):
    data = _tree(tmp_path)
    (data / "a" / "loop").symlink_to("..")
    message = _loop_error([data])
    assert f"{data / 'a' / 'loop'} is a symbolic link to .. ({data})" in message
    assert "remove the link" in message and str(data) in message.split("fix:")[1]


@pytest.mark.timeout(30)
def test_two_loops_fail_fast_instead_of_walking_forever(tmp_path):
    # each link doubles the paths to walk: 2^40 before the kernel's symlink limit stops it
    data = _tree(tmp_path)
    (data / "a" / "loop").symlink_to("..")
    (data / "b" / "loop").symlink_to("..")
    assert "a/loop is a symbolic link to .." in _loop_error([data])


@pytest.mark.timeout(30)
def test_link_to_itself_is_a_loop(tmp_path):
    data = _tree(tmp_path)
    (data / "self").symlink_to(".")
    assert f"{data / 'self'} is a symbolic link to . ({data})" in _loop_error([data])


@pytest.mark.timeout(30)
def test_links_between_subfolders_that_form_a_cycle(tmp_path):
    data = _tree(tmp_path)
    (data / "a" / "to_b").symlink_to("../b")
    (data / "b" / "to_a").symlink_to("../a")
    message = _loop_error([data])
    assert "is a symbolic link to ../a" in message or "is a symbolic link to ../b" in message


@pytest.mark.timeout(30)
def test_recursive_glob_over_a_loop_is_an_input_error(tmp_path):
    data = _tree(tmp_path)
    (data / "a" / "loop").symlink_to("..")
    (data / "b" / "loop").symlink_to("..")
    assert "is a symbolic link to .." in _loop_error([str(data / "**" / "*.jsonl")])


def test_links_to_files_and_to_folders_outside_the_tree_still_work(tmp_path):
    data = _tree(tmp_path)
    outside = write_jsonl(tmp_path / "elsewhere" / "more" / "z.jsonl", [{"text": "outside"}])
    (data / "linked_file.jsonl").symlink_to(
        write_jsonl(tmp_path / "elsewhere" / "one.jsonl", [{"text": "one"}])
    )
    (data / "linked_dir").symlink_to(outside.parent)
    (data / "again_b").symlink_to("b")  # a second path to a folder already in the tree: read once
    sources = [f.source for f in expand_inputs([data])]
    assert sources == [
        "data/a/x.jsonl",
        "data/again_b/y.jsonl",
        "data/linked_dir/z.jsonl",
        "data/linked_file.jsonl",
    ]


@pytest.mark.timeout(60)
def test_cli_exits_2_and_names_the_link(tmp_path):
    data = _tree(tmp_path)
    (data / "a" / "loop").symlink_to("..")
    (data / "b" / "loop").symlink_to("..")
    ws = str(tmp_path / "ws")
    run_cli("init", ws)
    proc = run_cli("curate", "run", str(data), "--workspace", ws, check=2)
    assert f"{data / 'a' / 'loop'} is a symbolic link" in proc.stdout + proc.stderr
