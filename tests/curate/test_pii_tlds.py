"""The email detector's generic TLDs come from a package data file."""

from __future__ import annotations

import re
from importlib import resources

import polars as pl

from assay.curate import pii_detectors
from assay.curate.steps.base import REGISTRY, StepContext
from assay.curate.steps.pii import PiiConfig


def _emails(texts: list[str]) -> list[int]:
    out = REGISTRY["pii"].fn(
        pl.DataFrame({"text": texts}).lazy(), PiiConfig(), StepContext(content_columns=("text",))
    )
    return out.collect()["pii_email"].to_list()


def test_the_data_file_is_read_once_into_lowercase_names():
    tlds = pii_detectors._GENERIC_TLDS
    lines = (
        resources.files("assay.curate")
        .joinpath("data/generic_tlds.txt")
        .read_text(encoding="utf-8")
        .splitlines()
    )
    assert tlds == tuple(line for line in lines if line and not line.startswith("#"))
    assert len(set(tlds)) == len(tlds) and all(re.fullmatch("[a-z]{3,24}", t) for t in tlds)
    assert {"com", "org", "museum"} <= set(tlds)


def test_listed_generic_tlds_and_country_codes_are_addresses_others_are_not():
    listed = [
        f"write to jo@mail.{tld} now"
        for tld in pii_detectors._GENERIC_TLDS[:: len(pii_detectors._GENERIC_TLDS) // 5]
    ]
    assert all(n == 1 for n in _emails([*listed, "jo@mail.de", "jo@mail.co.uk"]))
    assert _emails(["y = x@self.weight", "icon@2x.png", "jo@mail.notatld"]) == [0, 0, 0]
