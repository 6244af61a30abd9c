"""The scanning engine of the `pii` step: find, validate, count and redact, one detector at a time.

1. Prefilter: one regex, the union of the detectors' hints, picks the rows that could hold anything;
   the rest (almost all rows of ordinary text) are never looked at again.
2. Find and validate, vectorised: `extract_all` with the candidate regex, one exploded row per
   candidate, its named groups unpacked, and the detector's check (Luhn, mod-97, SSN rules,
   entropy ...) as a polars expression over those few candidates.
3. Redact, in Python, only the rows holding a validated value. The candidates come back from polars
   in text order, so each is located with `str.find` from the end of the previous one and confirmed
   with an anchored `re.match`: no full Python regex scan, which is 10-100x slower than Rust's.

Detectors run in order on the text that earlier detectors redacted, so a value is counted once.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from assay.curate.pii_detectors import REJECTING_GROUPS, Detector, Kind, ScanOptions

TEXT_FIELD = "text"


def rust_pattern(pattern: str) -> str:
    """The pattern for polars: `\\b` made ASCII, as Python's `re.ASCII` makes it."""
    return pattern.replace(r"\b", r"(?-u:\b)")


def count_field(kind: str) -> str:
    return f"n_{kind}"


@dataclass(frozen=True)
class ScanPlan:
    """Which detectors run, with which placeholders and options; `scan` applies them to a column."""

    detectors: tuple[Detector, ...]
    placeholders: dict[str, str]
    options: ScanOptions
    prefilter: bool = True  # off only to test that the hints are necessary conditions

    @property
    def kinds(self) -> tuple[Kind, ...]:
        return tuple(dict.fromkeys(d.kind for d in self.detectors))

    @property
    def dtype(self) -> pl.Struct:
        return pl.Struct({TEXT_FIELD: pl.String, **{count_field(k): pl.Int32 for k in self.kinds}})

    @property
    def hint(self) -> str:
        """One regex that every text with a candidate for any detector matches."""
        return rust_pattern("|".join(f"(?:{d.hint})" for d in self.detectors))

    def scan(self, texts: pl.Series) -> pl.Series:
        """Redacted text and per-kind counts for each string, as a struct series of `self.dtype`."""
        texts = texts.cast(pl.String)
        counts = {k: np.zeros(texts.len(), dtype=np.int32) for k in self.kinds}
        if not self.prefilter:
            texts = self.scan_rows(texts, counts, np.arange(texts.len()))
        elif self.detectors:
            rows = texts.str.contains(self.hint).fill_null(False).arg_true()
            if rows.len():
                found = self.scan_rows(texts.gather(rows), counts, rows.to_numpy())
                texts = texts.clone().scatter(rows, found)
        cols = {
            TEXT_FIELD: texts,
            **{count_field(k): pl.Series(v, dtype=pl.Int32) for k, v in counts.items()},
        }
        return pl.DataFrame(cols).to_struct("pii")

    def scan_rows(self, texts: pl.Series, counts: dict[str, np.ndarray], rows: np.ndarray) -> pl.Series:
        """Run every detector in order over `texts`, adding to `counts` at positions `rows`."""
        for det in self.detectors:
            cands = find_candidates(texts, det, self.options)
            hit_rows = cands.filter("valid")["row"].to_numpy()
            if hit_rows.size:
                np.add.at(counts[det.kind], rows[hit_rows], 1)
                texts = redact_rows(texts, cands, det, self.placeholders[det.kind])
        return texts


def candidates(texts: pl.Series, det: Detector) -> pl.DataFrame:
    """Every candidate match in text order: its row, the full match, and one column per named group."""
    pattern = rust_pattern(det.pattern)
    found = pl.DataFrame({"match": texts.str.extract_all(pattern)}).with_row_index("row")
    found = found.explode("match").drop_nulls("match")
    if found.height == 0:
        return found.with_columns(m=pl.lit(None, pl.String))
    return found.with_columns(pl.col("match").str.extract_groups(pattern).alias("_g")).unnest("_g")


def find_candidates(texts: pl.Series, det: Detector, opts: ScanOptions) -> pl.DataFrame:
    """Candidates with `valid`: not glued to a longer token, passing the detector's check, not allow-listed."""
    cands = candidates(texts, det)
    ok = pl.lit(True)
    for g in REJECTING_GROUPS:
        if g in cands.columns:
            ok = ok & pl.col(g).fill_null("").eq("")
    if det.check is not None:
        ok = ok & det.check(opts).fill_null(False)
    if opts.allow_values:
        ok = ok & ~pl.col("m").str.to_lowercase().is_in([v.lower() for v in opts.allow_values])
    return cands.select("row", "match", "m", ok.alias("valid"))


def redact_rows(texts: pl.Series, cands: pl.DataFrame, det: Detector, placeholder: str) -> pl.Series:
    """Replace the validated matches in the rows that have any; every other row is left as it is."""
    rx = re.compile(det.pattern, re.ASCII)
    hit = cands.filter(pl.col("valid").any().over("row"))
    per_row = hit.group_by("row", maintain_order=True).agg("match", "valid")
    rows = per_row["row"]
    new = [
        redact_one(rx, text, matches, valid, placeholder)
        for text, matches, valid in zip(
            texts.gather(rows).to_list(), per_row["match"].to_list(), per_row["valid"].to_list(), strict=True
        )
    ]
    return texts.clone().scatter(rows, pl.Series(new, dtype=pl.String))


def redact_one(
    rx: re.Pattern, text: str, matches: Sequence[str], valid: Sequence[bool], placeholder: str
) -> str:
    """Rebuild `text` with the value (group `m`) of each valid match swapped for the placeholder.

    `matches` are all of the row's candidates in text order, valid or not, as polars found them: the
    invalid ones are needed too, to place each valid one exactly where the regex found it.
    """
    pieces, pos = [], 0
    for full, ok in zip(matches, valid, strict=True):
        mt = locate(rx, text, full, pos)
        if mt is None:
            return resub(rx, text, {f for f, v in zip(matches, valid, strict=True) if v}, placeholder)
        pieces += [text[pos : mt.start()], swap(mt, placeholder) if ok else full]
        pos = mt.end()
    pieces.append(text[pos:])
    return "".join(pieces)


def locate(rx: re.Pattern, text: str, full: str, pos: int) -> re.Match | None:
    """The first place at or after `pos` where the regex matches exactly `full`."""
    at = text.find(full, pos)
    while at >= 0:
        mt = rx.match(text, at)
        if mt is not None and mt.group(0) == full:
            return mt
        at = text.find(full, at + 1)
    return None


def swap(mt: re.Match, placeholder: str) -> str:
    """The match with its value replaced and its context (`phone: `, `api_key = "`) kept."""
    full, start = mt.group(0), mt.start()
    return full[: mt.start("m") - start] + placeholder + full[mt.end("m") - start :]


def resub(rx: re.Pattern, text: str, valid: set[str], placeholder: str) -> str:
    """Slow path, for a row where Python's `re` and polars' engine disagree: rescan it in Python."""
    done = []

    def one(mt: re.Match) -> str:
        if mt.group(0) not in valid:
            return mt.group(0)
        done.append(mt.group(0))
        return swap(mt, placeholder)

    out = rx.sub(one, text)
    for full in valid.difference(done):
        # Still unseen by Python: a validated match must not survive, so replace it literally.
        out = out.replace(full, placeholder)
    return out
