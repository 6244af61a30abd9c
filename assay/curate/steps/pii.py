"""Personal data and secrets: detect them in every content column, then redact, drop or flag.

Kinds and their rules live in `assay.curate.pii_detectors`; the vectorised engine in
`assay.curate.pii_scan`. Every row gets `pii_<kind>` counts (Int32, one column per enabled kind,
summed over prompt, response, text and each message's content) and `pii_any`.
"""

from __future__ import annotations

from typing import Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, field_validator

from assay.curate.pii_detectors import DEFAULT_PLACEHOLDERS, DETECTORS, RESERVED_DOMAINS, Kind, ScanOptions
from assay.curate.pii_scan import TEXT_FIELD, ScanPlan, count_field
from assay.curate.steps.base import DETAIL, REASON, StepContext, step
from assay.schema import MESSAGES, PROMPT, RESPONSE, TEXT

# The order of the `pii_<kind>` columns and of the kinds in a reject's detail.
ALL_KINDS: tuple[Kind, ...] = ("email", "phone", "ipv4", "ipv6", "credit_card", "ssn", "iban", "secret")
ANY_COLUMN = "pii_any"
_SCANNED = "_pii_scan"  # temporary struct field/column prefix


class PiiConfig(BaseModel):
    """Options of the `pii` step."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["redact", "drop", "flag"] = Field(
        "redact",
        description="redact: replace each value with its kind's placeholder; drop: reject the row (reason "
        "`pii`, detail = kinds and counts), content unchanged; flag: only record the counts.",
    )
    kinds: list[Kind] = Field(default_factory=lambda: list(ALL_KINDS), description="Kinds to detect.")
    placeholders: dict[Kind, str] = Field(
        default_factory=lambda: dict(DEFAULT_PLACEHOLDERS),
        description="Replacement text per kind; kinds left out keep their default ([EMAIL], [PHONE], "
        "[IP_ADDRESS], [CREDIT_CARD], [SSN], [IBAN], [SECRET]).",
    )
    allow_values: list[str] = Field(
        default_factory=list,
        description="Detected values (compared case-insensitively) that are not personal data, e.g. a "
        "company's public support number; they are neither counted nor redacted.",
    )
    allow_domains: list[str] = Field(
        default_factory=lambda: list(RESERVED_DOMAINS),
        description="Email domains (and their subdomains) whose addresses are kept and not counted. The "
        "default is the documentation/test domains of RFC 2606 and 6761, which no person owns; set [] to "
        "redact those too.",
    )
    keep_reserved_ips: bool = Field(
        True,
        description="Keep loopback, private (RFC 1918), link-local, documentation, multicast and other "
        "reserved addresses: they identify no one on the internet.",
    )
    secret_min_entropy: float = Field(
        3.0,
        ge=0.0,
        le=8.0,
        description="Bits per character a value after `api_key =`, `password:` or `Bearer` needs to count as a secret.",
    )

    @field_validator("placeholders")
    @classmethod
    def _fill_placeholders(cls, value: dict[str, str]) -> dict[str, str]:
        return {**DEFAULT_PLACEHOLDERS, **value}

    @field_validator("kinds")
    @classmethod
    def _known_order(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("no kinds to detect; to turn the step off, remove `pii` from `steps`")
        return [k for k in ALL_KINDS if k in value]


def build_plan(cfg: PiiConfig) -> ScanPlan:
    """The detectors of the enabled kinds, in redaction order, with the config's options."""
    options = ScanOptions(
        allow_values=tuple(cfg.allow_values),
        allow_domains=tuple(cfg.allow_domains),
        keep_reserved_ips=cfg.keep_reserved_ips,
        secret_min_entropy=cfg.secret_min_entropy,
    )
    detectors = tuple(d for d in DETECTORS if d.kind in cfg.kinds)
    return ScanPlan(detectors, dict(cfg.placeholders), options)


def _scan_column(name: str, plan: ScanPlan) -> pl.Expr:
    return (
        pl.col(name)
        .map_batches(plan.scan, return_dtype=plan.dtype, is_elementwise=True)
        .alias(f"{_SCANNED}_{name}")
    )


def _scan_messages(plan: ScanPlan) -> pl.Expr:
    scanned = pl.field("content").map_batches(plan.scan, return_dtype=plan.dtype, is_elementwise=True)
    return (
        pl.col(MESSAGES)
        .list.eval(pl.element().struct.with_fields(scanned.alias(_SCANNED)))
        .alias(f"{_SCANNED}_{MESSAGES}")
    )


def _column_count(name: str, kind: str) -> pl.Expr:
    scanned = pl.col(f"{_SCANNED}_{name}")
    if name == MESSAGES:
        per_message = pl.element().struct.field(_SCANNED).struct.field(count_field(kind))
        return scanned.list.eval(per_message).list.sum().fill_null(0)
    return scanned.struct.field(count_field(kind)).fill_null(0)


def _redacted(name: str, message_fields: list[str]) -> pl.Expr:
    scanned = pl.col(f"{_SCANNED}_{name}")
    if name != MESSAGES:
        return scanned.struct.field(TEXT_FIELD).alias(name)
    el = pl.element().struct
    fields = [
        el.field(_SCANNED).struct.field(TEXT_FIELD).alias(f) if f == "content" else el.field(f)
        for f in message_fields
    ]
    return scanned.list.eval(pl.struct(fields)).alias(name)


def _detail(kinds: list[str]) -> pl.Expr:
    parts = [pl.when(pl.col(f"pii_{k}") > 0).then(pl.format(f"{k}={{}}", pl.col(f"pii_{k}"))) for k in kinds]
    return pl.concat_str(parts, separator=", ", ignore_nulls=True)


@step("pii", PiiConfig, is_filter=True)
def pii(lf: pl.LazyFrame, cfg: PiiConfig, ctx: StepContext) -> pl.LazyFrame:
    """Find emails, phones, IPs, cards, SSNs, IBANs and secrets; redact, drop or flag them."""
    plan = build_plan(cfg)
    columns = [c for c in (PROMPT, RESPONSE, TEXT, MESSAGES) if c in ctx.content_columns]
    fields = [f.name for f in lf.collect_schema()[MESSAGES].inner.fields] if MESSAGES in columns else []
    scans = [_scan_messages(plan) if c == MESSAGES else _scan_column(c, plan) for c in columns]
    counts = [
        pl.sum_horizontal([_column_count(c, k) for c in columns] or [pl.lit(0)])
        .cast(pl.Int32)
        .alias(f"pii_{k}")
        for k in cfg.kinds
    ]
    lf = lf.with_columns(scans).with_columns(counts)
    lf = lf.with_columns(pl.any_horizontal(pl.col(f"pii_{k}") > 0 for k in cfg.kinds).alias(ANY_COLUMN))
    if cfg.action == "redact":
        lf = lf.with_columns(_redacted(c, fields) for c in columns)
    drop = cfg.action == "drop"
    lf = lf.with_columns(
        pl.when(pl.col(ANY_COLUMN) & drop).then(pl.lit("pii")).otherwise(None).alias(REASON),
        pl.when(pl.col(ANY_COLUMN) & drop).then(_detail(cfg.kinds)).otherwise(None).alias(DETAIL),
    )
    return lf.drop(f"{_SCANNED}_{c}" for c in columns)
