"""Row ids: the fast path computes exactly the reference definition (blake2b-64 of source, light content, occurrence)."""

from __future__ import annotations

import hashlib

import polars as pl

from assay.curate.ids import assign_ids, light_normalize

TRICKY = ["plain ascii text", "two  spaces", "tab\there", "line\nbreak\r\n", "  padded  ", "nbsp\u00a0here",
          "e\u0301 combining", "é precomposed", "em\u2003space", "", "\u3000ideographic\u3000", "Ω ohm sign \u2126",
          "ﬁ ligature stays", "mixed\u00a0 \t runs", "kelvin \u212a  becomes ASCII", "next\x85line", "vt\x0bff\x0c",
          "file\x1cseparator stays", "ascii  double"]


def _reference_light(texts: pl.Series) -> pl.Series:
    return texts.str.normalize("NFC").str.replace_all(r"\s+", " ").str.strip_chars()


def _reference_ids(df: pl.DataFrame) -> list[str]:
    keys = df.select(pl.col("source").fill_null(""), _reference_light(df["text"]).alias("k")).with_columns(
        pl.int_range(pl.len()).over("source", "k").alias("n"))
    return [hashlib.blake2b(f"{s}\x1f{k}\x1f{n}".encode(), digest_size=8).hexdigest() for s, k, n in keys.iter_rows()]


def test_light_normalisation_matches_the_reference_on_every_kind_of_whitespace_and_unicode():
    texts = pl.Series(TRICKY + [None] + [t * 3 for t in TRICKY])
    before = texts.to_list()
    assert light_normalize(texts).to_list() == _reference_light(pl.Series(before)).to_list()
    assert texts.to_list() == before  # the input is not changed in place


def test_ids_match_the_reference_definition_with_repeats_and_sources():
    rows = [{"source": src, "text": text} for src in ("a.jsonl", "b.jsonl", None) for text in TRICKY + TRICKY[:3]]
    df = pl.DataFrame(rows)
    ids = assign_ids(df)
    assert ids.columns[0] == "id" and ids["id"].to_list() == _reference_ids(df)
    assert ids["id"].n_unique() == df.height  # repeats get their occurrence number
    assert assign_ids(df.head(0)).height == 0


def test_provisional_ids_are_the_same_in_one_thread_or_in_slices_on_several(monkeypatch):
    """A read block's ids and occurrence keys are computed on slices in one thread per core; the
    slicing must not show in the values (occurrence 0 here: repeats are renumbered later)."""
    from assay.curate import engine

    rows = [{"source": src, "text": text} for src in ("a.jsonl", None) for text in TRICKY * 2]
    df = pl.DataFrame(rows)
    expected = [hashlib.blake2b(f"{s or ''}\x1f{k}\x1f0".encode(), digest_size=8).hexdigest()
                for s, k in zip(df["source"], _reference_light(df["text"]), strict=True)]
    one, keys_one = engine.with_provisional_ids(df)  # below the threshold: one thread
    assert one["id"].to_list() == expected
    monkeypatch.setattr(engine, "_PARALLEL_ROWS", 5)
    monkeypatch.setattr(engine, "cores", lambda: 3)
    many, keys_many = engine.with_provisional_ids(df)
    assert many.equals(one) and keys_many.equals(keys_one)
