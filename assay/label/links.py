"""Which assay version an Argilla dataset reviews: kept on the dataset (its metadata) and in the workspace.

The dataset's own metadata (`assay_version`) is authoritative, because it travels with the server; the
workspace file `label/links.json` lists what this workspace pushed where, for people and for pulls from
a server that lost the metadata.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assay.store.atomic import write_bytes_atomic

if TYPE_CHECKING:
    from assay.label.store import DatasetRef

LINKS_FILE = Path("label") / "links.json"
VERSION_KEY = "assay_version"
OVERLAP_KEY = "assay_overlap"  # the sampled overlap (spec.overlap_spec) a dataset was created with


def read_links(root: Path) -> dict[str, dict[str, Any]]:
    """dataset name → link (version, dataset_id, server, workspace, pushed_at, records)."""
    path = Path(root) / LINKS_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}


def write_link(root: Path, name: str, link: dict[str, Any]) -> None:
    """Record (or refresh) the link of one dataset, atomically."""
    links = read_links(root)
    links[name] = link
    path = Path(root) / LINKS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, (json.dumps(links, indent=2, sort_keys=True) + "\n").encode())


def linked_version(dataset: DatasetRef, root: Path) -> str | None:
    """The version a review dataset reviews, from its own metadata or else the workspace file."""
    if dataset.version:
        return dataset.version
    link = read_links(root).get(dataset.name)
    return link["version"] if link and link.get("dataset_id") == dataset.id else None
