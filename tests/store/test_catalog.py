import pytest

from assay.errors import ConfigError, NotFoundError
from assay.store.catalog import Catalog, Entry


def _entry(vid: str, **kw) -> Entry:
    base = dict(id=vid, family="dataset", kind="curated", name=None, parents=[], config_hash="c",
                created_at="2026-01-01T00:00:00Z", status="ready", rows=3, path=f"datasets/{vid}",
                manifest_sha256="m", tags=[])
    return Entry(**{**base, **kw})


@pytest.fixture
def catalog(tmp_path):
    cat = Catalog(tmp_path / "catalog.db")
    cat.create()
    return cat


def test_wal_mode_and_roundtrip(catalog):
    assert catalog.add(_entry("ds-aaa111", parents=["ds-p"]))
    assert not catalog.add(_entry("ds-aaa111")), "adding the same id twice is a no-op"
    with catalog.connect() as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    got = catalog.get("ds-aaa111")
    assert got.parents == ["ds-p"] and got.rows == 3


def test_resolve_by_prefix_tag_and_errors(catalog):
    catalog.add(_entry("ds-abc123"))
    catalog.add(_entry("ds-abd456"))
    assert catalog.resolve("ds-abc").id == "ds-abc123"
    with pytest.raises(ConfigError, match="matches 2 versions"):
        catalog.resolve("ds-ab")
    with pytest.raises(NotFoundError, match="no-such"):
        catalog.resolve("no-such")
    catalog.tag("ds-abd456", "train", "t")
    assert catalog.resolve("train").id == "ds-abd456"
    assert catalog.get("ds-abd456").tags == ["train"]


def test_prefix_with_like_wildcards_is_literal(catalog):
    catalog.add(_entry("ds-abc123"))
    with pytest.raises(NotFoundError):
        catalog.resolve("ds-a_c")


def test_moving_a_tag_needs_force(catalog):
    catalog.add(_entry("ds-1"))
    catalog.add(_entry("ds-2"))
    catalog.tag("ds-1", "best", "t")
    with pytest.raises(ConfigError, match="already points at ds-1"):
        catalog.tag("ds-2", "best", "t")
    assert catalog.tag("ds-2", "best", "t", force=True) == "ds-1"
    assert catalog.resolve("best").id == "ds-2"


def test_recipes_and_family_filter(catalog):
    catalog.add(_entry("ds-1"), recipe_key="k1")
    catalog.add(_entry("mv-1", family="model", kind="model"))
    assert catalog.recipe("k1") == "ds-1" and catalog.recipe("k2") is None
    assert [e.id for e in catalog.entries("dataset")] == ["ds-1"]
    with pytest.raises(NotFoundError):
        catalog.resolve("mv-1", family="dataset")
