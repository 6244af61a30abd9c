"""Escaping and number formatting shared by the page and its plots.

Every value that came from the report passes through `e()` before it reaches the page, and numbers
pass through `num()`, so a tampered report with a string where a number belongs renders as "—"
instead of leaking the string unescaped.
"""

from __future__ import annotations

import html
import json
import math
from typing import Any

DASH = "—"
MINUS = "\u2212"
# Metric names read as shares of 1 (shown in %, their deltas in percentage points).
_FRACTION_NAMES = {"exact_match", "token_f1", "f1", "accuracy", "acc", "acc_norm", "pct_stereotype"}
_FRACTION_PARTS = ("rouge", "rate", "share", "accuracy", "pct_")


def e(value: object) -> str:
    """HTML-escape any value (quotes included), so it is safe in text, attributes and SVG."""
    return html.escape("" if value is None else str(value), quote=True)


def num(value: Any) -> float | None:
    """A finite float, or None for anything else (missing, NaN, a string in a tampered report)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def as_dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else []


def dicts(value: Any) -> list[dict]:
    """The dict items of a list (other items are dropped: the page renders what it understands)."""
    return [v for v in as_list(value) if isinstance(v, dict)]


def is_fraction(name: str, *values: Any) -> bool:
    """Whether metric `name` is a share of 1; values outside [-1, 1] overrule the name."""
    low = str(name).lower()
    named = (
        low in _FRACTION_NAMES
        or low.endswith(("_acc", "_acc_norm"))
        or any(p in low for p in _FRACTION_PARTS)
    )
    return named and all(abs(v) <= 1.0 for v in map(num, values) if v is not None)


def signed(text: str) -> str:
    """A typographic minus, and a plus sign on positive numbers that lack one."""
    if text.startswith("-"):
        return MINUS + text[1:]
    return text if text.startswith("+") else "+" + text


def _plain(value: float) -> str:
    return f"{value:.1f}" if abs(value) >= 100 else f"{value:.4g}"


def fmt_value(name: str, value: Any, *, fraction: bool) -> str:
    """A metric's value on one side: 41.2 % for fractions, 23.4 for BLEU, 4 significant digits else."""
    v = num(value)
    if v is None:
        return DASH
    if fraction:
        return f"{v * 100:.1f} %".replace("-", MINUS)
    if str(name).lower().startswith("bleu"):
        return f"{v:.1f}".replace("-", MINUS)
    return _plain(v).replace("-", MINUS)


def fmt_delta(name: str, value: Any, *, fraction: bool, ratio: bool) -> str:
    """A delta: +6.2 pp for fractions, ×1.08 for ratios, a signed number else."""
    v = num(value)
    if v is None:
        return DASH
    if ratio:
        return f"×{v:.3f}"
    if fraction:
        return signed(f"{v * 100:.1f}") + " pp"
    return signed(f"{v:.1f}" if str(name).lower().startswith("bleu") else f"{v:.3g}")


def fmt_interval(name: str, low: Any, high: Any, *, fraction: bool, ratio: bool) -> str:
    """The delta's interval in the delta's unit, e.g. [−1.0, +7.0] pp or [×0.98, ×1.12]."""
    lo, hi = num(low), num(high)
    if lo is None or hi is None:
        return DASH
    if ratio:
        return f"[×{lo:.3f}, ×{hi:.3f}]"
    parts = [fmt_delta(name, x, fraction=fraction, ratio=False).removesuffix(" pp") for x in (lo, hi)]
    return f"[{parts[0]}, {parts[1]}]" + (" pp" if fraction else "")


def fmt_seconds(value: Any) -> str:
    v = num(value)
    if v is None:
        return DASH
    return f"{v:.1f} s" if v < 120 else f"{v / 60:.1f} min"


def fmt_count(value: Any) -> str:
    v = num(value)
    return DASH if v is None else f"{v:,.0f}"


def fmt_big(value: Any) -> str:
    """Parameter counts: 1.2 M, 135 M, 1.7 B."""
    v = num(value)
    if v is None:
        return DASH
    for size, unit in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= size:
            return f"{v / size:.3g} {unit}"
    return f"{v:.0f}"


def short_sha(value: Any) -> str:
    text = str(value or "")
    return text.removeprefix("sha256:")[:12]


def plain_text(value: Any) -> str:
    """A JSON-ish rendering of a nested value for generic cells (the caller escapes it)."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
