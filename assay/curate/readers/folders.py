"""Walking input folders: sorted, hidden entries skipped, Hugging Face dataset folders as leaves.

Links to folders are followed, each folder at most once, and a link back to a folder that
contains it (`a/loop -> ..`, `a -> .`) is an input error: followed, it would make the tree
endless and the walk never finish.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

from assay.curate.readers.formats import InputFile, read_json_file
from assay.curate.readers.splits import dataset_dict_split
from assay.errors import InputError

_DirKey = tuple[int, int]  # (st_dev, st_ino): the same folder, whatever path leads to it


def walk_tree(root: Path, is_leaf: Callable[[Path], bool] = lambda _: False) -> Iterator[Path]:
    """Every non-hidden entry under `root`, depth first in name order; leaves are yielded, not entered.

    A folder reached again through a link is skipped (its files are already listed); a link to
    a folder on the path from `root` raises InputError.
    """
    key = _dir_key(root)
    yield from _walk(root, (key,), {key}, is_leaf)


def _walk(
    folder: Path, ancestors: tuple[_DirKey, ...], seen: set[_DirKey], is_leaf: Callable[[Path], bool]
) -> Iterator[Path]:
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if entry.name.startswith("."):
            continue
        if not entry.is_dir():
            yield entry
            continue
        key = _dir_key(entry)
        if key in ancestors:
            raise _loop_error(entry)
        if key in seen:
            continue
        seen.add(key)
        yield entry
        if not is_leaf(entry):
            yield from _walk(entry, (*ancestors, key), seen, is_leaf)


def _dir_key(folder: Path) -> _DirKey:
    st = folder.stat()
    return st.st_dev, st.st_ino


def _loop_error(entry: Path) -> InputError:
    target = entry.resolve()
    if entry.is_symlink():
        what = f"{entry} is a symbolic link to {os.readlink(entry)} ({target}), a folder that contains it"
    else:
        what = f"{entry} is {target} again, a folder that contains it"
    return InputError(
        f"{what}: the folder tree loops and reading it would never end",
        hint=f"remove the link, or pass the real folder ({target}) instead of a folder that links back to it",
    )


def is_hf_folder(folder: Path) -> bool:
    """True for a folder written by `datasets.save_to_disk` (a Dataset or a DatasetDict)."""
    if (folder / "dataset_dict.json").is_file():
        return True
    return (folder / "state.json").is_file() and any(folder.glob("*.arrow"))


def hf_inputs(folder: Path, dataset_source: str, dict_prefix: str) -> list[InputFile] | None:
    """Inputs for a `save_to_disk` folder, or None when `folder` is not one.

    A DatasetDict gives one input per split, whose rows carry that split.
    """
    dict_file = folder / "dataset_dict.json"
    if dict_file.is_file():
        splits = read_json_file(dict_file).get("splits", [])
        missing = [s for s in splits if not (folder / s).is_dir()]
        if missing or not splits:
            raise InputError(f"{folder} is an incomplete Hugging Face DatasetDict (splits: {splits})")
        return [
            InputFile(folder / s, f"{dict_prefix}/{s}", "hf", dataset_dict_split(folder, s)) for s in splits
        ]
    if is_hf_folder(folder):
        return [InputFile(folder, dataset_source, "hf")]
    return None


def check_no_loops(folder: Path) -> None:
    """Raise InputError when a link under `folder` loops back (before a recursive glob walks it)."""
    for _ in walk_tree(folder):
        pass
