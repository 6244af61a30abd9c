"""Expanding the inputs a user names (files, folders, glob patterns) into a list of `InputFile`s.

>>> expand_inputs(["data/train.jsonl", "more/", "extra/*.csv"])
"""

from __future__ import annotations

import glob
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from assay.curate.readers.folders import check_no_loops, hf_inputs, is_hf_folder, walk_tree
from assay.curate.readers.formats import InputFile, format_of, stem_of, supported_list
from assay.curate.readers.remote import remote_input
from assay.curate.readers.splits import named_split
from assay.errors import InputError
from assay.store.urls import is_url

# An input and the split its file or folder names suggest (kept only if the inputs name two or more).
_Found = tuple[InputFile, str | None]


def expand_inputs(inputs: Sequence[str | Path]) -> list[InputFile]:
    """Resolve files, folders and glob patterns into a sorted, de-duplicated list of inputs.

    Folders are searched recursively (hidden entries skipped, links followed, a link that loops
    back is an error); a folder written by `datasets.save_to_disk` is one input, or one per
    split for a DatasetDict. When the inputs are a file per split (`train.jsonl`, `test.jsonl`,
    or `train/`, `test/` folders), each file's rows carry its split.

    >>> expand_inputs(["data/train.jsonl", "more/", "extra/*.csv"])
    """
    if not inputs:
        raise InputError("no inputs given", hint="pass files, folders or glob patterns")
    found: list[_Found] = []
    for item in inputs:
        found.extend(_expand_one(str(item)))
    return _with_named_splits(_dedupe(found))


def _expand_one(item: str) -> list[_Found]:
    if is_url(item):  # one file in an object store (`list_remote` expanded its globs and folders)
        f = remote_input(item)
        return [(f, named_split([stem_of(f.path)]))]
    path = Path(item)
    if path.is_dir():
        return _expand_dir(path)
    if path.exists():
        return [_file_input(path)]
    if glob.has_magic(item):
        return _expand_glob(item)
    raise InputError(f"{item} does not exist", hint="check the path, or quote a glob pattern")


def _file_input(path: Path) -> _Found:
    fmt = format_of(path)
    if fmt is None:
        raise InputError(f"unsupported file type: {path}", hint=f"supported extensions: {supported_list()}")
    return InputFile(path, f"{path.resolve().parent.name}/{path.name}", fmt), named_split([stem_of(path)])


def _expand_glob(pattern: str) -> list[_Found]:
    if "**" in pattern:  # glob follows links to folders: a loop would make it walk forever
        base = _glob_base(pattern)
        if base.is_dir():
            check_no_loops(base)
    matches = sorted(glob.glob(pattern, recursive=True))
    if not matches:
        raise InputError(f"no files match {pattern}", hint="check the pattern and the current directory")
    found: list[_Found] = []
    for match in map(Path, matches):
        if match.is_dir():
            found.extend(_expand_dir(match))
        elif format_of(match):
            found.append(_file_input(match))
    if not found:
        raise InputError(
            f"{pattern} matches no supported files", hint=f"supported extensions: {supported_list()}"
        )
    return found


def _glob_base(pattern: str) -> Path:
    """The folder a pattern starts from: its leading parts without wildcards."""
    parts = Path(pattern).parts
    first_magic = next(i for i, part in enumerate(parts) if glob.has_magic(part))
    return Path(*parts[:first_magic]) if first_magic else Path(".")


def _expand_dir(folder: Path) -> list[_Found]:
    name = folder.resolve().name
    hf = hf_inputs(folder, f"{folder.resolve().parent.name}/{name}", name)
    if hf is not None:
        return [(f, None if f.split else named_split([name])) for f in hf]
    found = _scan_dir(folder, name)
    if not found:
        raise InputError(f"no supported files in {folder}", hint=f"supported extensions: {supported_list()}")
    return found


def _scan_dir(root: Path, root_name: str) -> list[_Found]:
    """Files and dataset folders under `root`; each is named `root_name/<path below root>`."""
    found: list[_Found] = []
    for entry in walk_tree(root, is_leaf=is_hf_folder):
        rel = entry.relative_to(root)
        source = f"{root_name}/{rel.as_posix()}"
        # the file's own name first, then the folders around it, nearest first
        names = [stem_of(entry), *reversed(rel.parent.parts), root_name]
        if entry.is_dir():
            found.extend(
                (f, None if f.split else named_split(names)) for f in hf_inputs(entry, source, source) or []
            )
        elif fmt := format_of(entry):
            found.append((InputFile(entry, source, fmt), named_split(names)))
    return found


def _dedupe(found: list[_Found]) -> list[_Found]:
    """Drop repeats of the same path; refuse two paths that would share a source name."""
    by_path: dict[Path | str, _Found] = {}
    for item in found:
        by_path.setdefault(item[0].url or item[0].path.resolve(), item)
    by_source: dict[str, InputFile] = {}
    for f, _ in by_path.values():
        other = by_source.setdefault(f.source, f)
        if other is not f:
            raise InputError(
                f"{other.url or other.path} and {f.url or f.path} would both be named {f.source} in the `source` column",
                hint="pass their common parent folder instead, so the names differ",
            )
    return list(by_path.values())


def _with_named_splits(found: list[_Found]) -> list[InputFile]:
    """Give files the split their names suggest, when the inputs name at least two different splits.

    A lone `train.jsonl` stays unsplit (its rows are split by the ratios); `train.jsonl` +
    `test.jsonl` is a file per split.
    """
    if len({named for _, named in found if named}) < 2:
        return [f for f, _ in found]
    return [replace(f, split=named) if named and f.split is None else f for f, named in found]
