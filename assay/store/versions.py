"""Committing a staged version directory: hash its files, write the manifest, publish, catalogue.

Shared by every family (dataset, model, report) so that atomicity and verification live in one place.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from assay.layout import Layout
from assay.store.atomic import publish_dir, sha256_file
from assay.store.catalog import Catalog, Entry
from assay.store.manifest import dumps, read_manifest

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Version:
    """A published version of any family: its catalog entry and its folder (read-only accessors)."""

    entry: Entry
    path: Path

    @property
    def id(self) -> str:
        return self.entry.id

    @property
    def kind(self) -> str:
        return self.entry.kind

    @property
    def status(self) -> str:
        return self.entry.status

    @property
    def manifest(self) -> dict:
        return read_manifest(self.path)


class VersionStore:
    """Read, list and tag the versions of one family in a workspace (subclasses write them)."""

    family = ""
    version_class: type[Version] = Version

    def __init__(self, layout: Layout, catalog: Catalog) -> None:
        self.layout, self.catalog = layout, catalog

    def get(self, ref: str) -> Version:
        """A version by full id, unique id prefix or tag."""
        return self._version(self.catalog.resolve(ref, family=self.family))

    def list(self) -> list[Entry]:
        return self.catalog.entries(self.family)

    def tag(self, version_id: str, name: str, *, force: bool = True) -> str | None:
        """Point tag `name` at a version (moving it unless force=False); returns the version it named before."""
        from assay.store.manifest import now_iso

        return self.catalog.tag(version_id, name, now_iso(), force=force)

    def _version(self, entry: Entry) -> Version:
        return self.version_class(entry, self.layout.root / entry.path)


def file_hashes(folder: Path) -> dict[str, dict]:
    """sha256 and size of every payload file below a folder (the manifest excluded)."""
    out = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        if rel != MANIFEST:
            out[rel] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
    return out


def commit(layout: Layout, catalog: Catalog, staged: Path, manifest: dict, *, recipe_key: str | None = None) -> tuple[Entry, bool]:
    """Publish a staged version; returns its catalog entry and whether it is new.

    The manifest must carry id, family, kind, parents, config_hash and created_at.
    """
    manifest = {**manifest, "files": file_hashes(staged)}
    (staged / MANIFEST).write_bytes(dumps(manifest))
    final = layout.version_dir(manifest["family"], manifest["id"])
    existing = catalog.get(manifest["id"])
    if existing:
        shutil.rmtree(staged, ignore_errors=True)
        if recipe_key:
            catalog.add(existing, recipe_key)
        return existing, False
    if final.exists() and verify_dir(final):
        shutil.rmtree(final)  # a damaged uncatalogued leftover of an earlier crash: replace it
    publish_dir(staged, final)  # an intact leftover (crash before cataloguing) is kept and registered
    entry = entry_for(layout, final)
    created = catalog.add(entry, recipe_key)
    return entry, created


def entry_for(layout: Layout, folder: Path) -> Entry:
    """The catalog entry described by a published version's manifest."""
    m = read_manifest(folder)
    return Entry(
        id=m["id"], family=m["family"], kind=m["kind"], name=m.get("name"), parents=list(m.get("parents", [])),
        config_hash=m.get("config_hash", ""), created_at=m["created_at"], status=m.get("status", "ready"),
        rows=m.get("rows"), path=folder.relative_to(layout.root).as_posix(),
        manifest_sha256=sha256_file(folder / MANIFEST), tags=[],
    )


def verify_dir(folder: Path, *, deep: bool = True) -> list[str]:
    """Problems with a version folder: missing manifest, missing/extra files, size or hash mismatch."""
    try:
        files = read_manifest(folder)["files"]
    except (OSError, ValueError, KeyError) as exc:
        return [f"{folder.name}: unreadable manifest ({exc})"]
    problems = []
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()} - {MANIFEST}
    for rel in sorted(present - set(files)):
        problems.append(f"{folder.name}/{rel}: not listed in the manifest")
    for rel, meta in files.items():
        path = folder / rel
        if not path.is_file():
            problems.append(f"{folder.name}/{rel}: missing")
        elif path.stat().st_size != meta["bytes"]:
            problems.append(f"{folder.name}/{rel}: size {path.stat().st_size} != {meta['bytes']} in the manifest")
        elif deep and sha256_file(path) != meta["sha256"]:
            problems.append(f"{folder.name}/{rel}: content hash differs from the manifest")
    return problems
