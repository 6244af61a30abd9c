"""What the `pii` step looks for: one candidate regex per detector, plus a vectorised check.

Each detector's pattern has a named group `m`, the value that gets redacted. Other named groups
give context, because the regex engine polars uses has no look-around:

- `lead` / `tail`: the character(s) glued to either side of the value. A candidate with either
  present is part of a longer token (a longer number, an identifier, a dotted sequence) and is
  rejected. `lead` is lazy (`??`) so that at every position the bare value is tried first.
- `veto`: a preceding context word that makes the value something else (`version 1.2.3.4`).
- `ctx`: a preceding context word that a detector requires (`phone: 5551234567`); it is kept.

Patterns use explicit ASCII classes and `\\b` only, so that polars (Rust `regex`, with `\\b` made
ASCII) and Python's `re` (with `re.ASCII`, used to redact the few rows with hits) match alike.
Checks are polars expressions over the candidate frame, whose columns are the group names.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Literal

import polars as pl

Kind = Literal["email", "phone", "ipv4", "ipv6", "credit_card", "ssn", "iban", "secret"]

DEFAULT_PLACEHOLDERS: dict[Kind, str] = {
    "email": "[EMAIL]",
    "phone": "[PHONE]",
    "ipv4": "[IP_ADDRESS]",
    "ipv6": "[IP_ADDRESS]",
    "credit_card": "[CREDIT_CARD]",
    "ssn": "[SSN]",
    "iban": "[IBAN]",
    "secret": "[SECRET]",
}

# Domains reserved for documentation and tests (RFC 2606, RFC 6761): no person owns an address there.
RESERVED_DOMAINS = ("example.com", "example.org", "example.net", "example", "test", "invalid", "localhost")


@dataclass(frozen=True)
class ScanOptions:
    """The parts of the step's config that checks read."""

    allow_values: tuple[str, ...] = ()
    allow_domains: tuple[str, ...] = RESERVED_DOMAINS
    keep_reserved_ips: bool = True
    secret_min_entropy: float = 3.0


Check = Callable[[ScanOptions], pl.Expr]


@dataclass(frozen=True)
class Detector:
    """One candidate regex for a kind, and the check its candidates must pass.

    `hint` is a cheap regex that every text with a candidate matches (a necessary condition): the
    engine runs the detectors only on the rows that match some hint, which is most of its speed.
    """

    kind: Kind
    name: str
    pattern: str
    hint: str
    check: Check | None = None


M = pl.col("m")


def digits_of(expr: pl.Expr) -> pl.Expr:
    return expr.str.replace_all("[^0-9]", "")


# ---------------------------------------------------------------- email
_LOCAL = r"[A-Za-z0-9][A-Za-z0-9._%+-]*"
_DOMAIN = r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,24}"
# An address ends in a country code (any two letters) or a generic TLD from the package data file
# (the legacy ones and the widely used new ones; the file says why).
_GENERIC_TLDS_FILE = "data/generic_tlds.txt"


def _generic_tlds() -> tuple[str, ...]:
    """The generic TLDs listed in `assay/curate/data/generic_tlds.txt` (one per line, `#` comments)."""
    text = resources.files("assay.curate").joinpath(_GENERIC_TLDS_FILE).read_text(encoding="utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


_GENERIC_TLDS = _generic_tlds()


def _email_check(opts: ScanOptions) -> pl.Expr:
    domain = M.str.split("@").list.last().str.to_lowercase()
    tld = domain.str.extract(r"\.([a-z]+)$", 1)
    ok = (tld.str.len_chars() == 2) | tld.is_in(_GENERIC_TLDS)
    if opts.allow_domains:
        alts = "|".join(d.lower().replace(".", r"\.") for d in opts.allow_domains)
        ok = ok & ~domain.str.contains(rf"(?:^|\.)(?:{alts})$")
    return ok


EMAIL = Detector("email", "email", rf"(?P<m>{_LOCAL}@{_DOMAIN})\b", "@", _email_check)


# ---------------------------------------------------------------- phone
_PHONE_WORDS = r"(?i:(?:tele)?phone|tel|mobile|cell(?:phone)?|fax|call|whatsapp)"
_PHONE_CTX = rf"\b{_PHONE_WORDS}\b(?:[ \t]*(?i:no|number|nr|num)\b)?\.?[ \t]*#?[ \t]*:?[ \t]*"
# `+`, then 8 to 15 digits with single separators (spaces, dots, dashes, brackets) anywhere between.
_INTL = r"\+[0-9](?:[ .-]?\(?[0-9]\)?){7,14}"
_NANP = (
    r"(?:1[ .-])?(?:\([0-9]{3}\) ?[0-9]{3}[ .-][0-9]{4}"
    r"|[0-9]{3}-[0-9]{3}-[0-9]{4}|[0-9]{3}\.[0-9]{3}\.[0-9]{4})"
)
_GLUED_LEAD = r"(?P<lead>[A-Za-z0-9_)\]][-.]?)??"
_GLUED_TAIL = r"(?P<tail>[-.]?[A-Za-z0-9_])?"


# A context word lets a loosely grouped number of 7 to 15 digits through (`call 020 7946 0958`, `tel: 5551234567`).
PHONE_CONTEXT = Detector(
    "phone",
    "phone_context",
    rf"(?P<ctx>{_PHONE_CTX})(?P<m>\+?\(?[0-9](?:[ .-]?\(?[0-9]\)?){{6,14}}){_GLUED_TAIL}",
    rf"\b{_PHONE_WORDS}\b[ \t.#:A-Za-z]*[+(0-9]",
)
# Without one, only unmistakable shapes: `+` and a country code, or the North American groupings.
PHONE_SHAPED = Detector(
    "phone",
    "phone_shaped",
    rf"{_GLUED_LEAD}(?P<m>{_INTL}|{_NANP}){_GLUED_TAIL}",
    r"\+[0-9](?:[ .-]?\(?[0-9]\)?){7}|[0-9]{3}(?:\) ?|[.-])[0-9]{3}[ .-][0-9]{4}",
)


# ---------------------------------------------------------------- US social security number
def _ssn_check(opts: ScanOptions) -> pl.Expr:
    d = digits_of(M)
    area, group, serial = d.str.slice(0, 3), d.str.slice(3, 2), d.str.slice(5, 4)
    return (
        (d.str.len_chars() == 9)
        & ~area.is_in(["000", "666"])
        & ~area.str.starts_with("9")
        & (group != "00")
        & (serial != "0000")
    )


_SSN_CTX = r"\b(?i:ssn|ss#|social[ \t]+security(?:[ \t]+(?:number|no|nr|#))?)\.?[ \t]*[:#]?[ \t]*"
SSN_CONTEXT = Detector(
    "ssn",
    "ssn_context",
    rf"(?P<ctx>{_SSN_CTX})(?P<m>[0-9]{{3}}[ -]?[0-9]{{2}}[ -]?[0-9]{{4}}){_GLUED_TAIL}",
    r"(?i:ssn|ss#|social[ \t]+security)[ \t.#:A-Za-z]*[0-9]",
    _ssn_check,
)
SSN = Detector(
    "ssn",
    "ssn",
    rf"{_GLUED_LEAD}(?P<m>[0-9]{{3}}-[0-9]{{2}}-[0-9]{{4}}){_GLUED_TAIL}",
    "[0-9]{3}-[0-9]{2}-[0-9]{4}",
    _ssn_check,
)


# ---------------------------------------------------------------- payment card
def luhn_ok(digits: pl.Expr, max_len: int = 19) -> pl.Expr:
    """Luhn checksum over a digit string, as fixed-position arithmetic (no lists, no Python)."""
    rev = digits.str.reverse()
    total = pl.lit(0, pl.Int32)
    for i in range(max_len):
        d = rev.str.slice(i, 1).cast(pl.Int32, strict=False).fill_null(0)
        total = total + (d if i % 2 == 0 else (2 * d) // 10 + (2 * d) % 10)
    return total % 10 == 0


def _card_check(opts: ScanOptions) -> pl.Expr:
    d = digits_of(M)
    # Issuer ranges start 2-6 (Mastercard 2/5, Amex/JCB/Diners 3, Visa 4, Discover/UnionPay 6); a run
    # of one repeated digit passes Luhn but is filler, not a card.
    return (
        d.str.len_chars().is_between(13, 19)
        & d.str.contains("^[2-6]")
        & ~d.str.contains("^(?:0+|1+|2+|3+|4+|5+|6+|7+|8+|9+)$")
        & luhn_ok(d)
    )


# Grouped forms are the ones cards are printed in: 4-4-4-4(-1..3), and 4-6-4/5 (Diners, Amex), with one
# kind of separator; subtraction chains such as `6000-600-150-1200-2000` have other groupings.
CREDIT_CARD = Detector(
    "credit_card",
    "credit_card",
    r"(?P<lead>[A-Za-z0-9_+][-.,/]?|[0-9] |[-.,/])??"
    r"(?P<m>[0-9]{13,19}|[0-9]{4}(?: [0-9]{4}){3}(?: [0-9]{1,3})?|[0-9]{4}(?:-[0-9]{4}){3}(?:-[0-9]{1,3})?"
    r"|[0-9]{4} [0-9]{6} [0-9]{4,5}|[0-9]{4}-[0-9]{6}-[0-9]{4,5})"
    r"(?P<tail>[-.,]?[A-Za-z0-9_])?",
    "[0-9]{13}|[0-9]{4}[ -][0-9]{4}(?:[0-9]{2})?[ -][0-9]{4}",
    _card_check,
)


# ---------------------------------------------------------------- IBAN
IBAN_LENGTHS: dict[str, int] = json.loads(
    resources.files("assay.curate").joinpath("data/iban_lengths.json").read_text(encoding="utf-8")
)["lengths"]  # country code -> length, from the IBAN registry (package data)
_LETTER_VALUES = {chr(c): str(c - 55) for c in range(ord("A"), ord("Z") + 1)}


def mod97(numeric: pl.Expr, width: int = 72) -> pl.Expr:
    """`int(numeric) % 97` for digit strings too long for Int64: zero-padded, folded 9 digits at a time."""
    padded = numeric.str.pad_start(width, "0")
    rem = pl.lit(0, pl.Int64)
    for i in range(0, width, 9):
        rem = (rem * 10**9 + padded.str.slice(i, 9).cast(pl.Int64)) % 97
    return rem


def _iban_check(opts: ScanOptions) -> pl.Expr:
    compact = M.str.replace_all(" ", "")
    expected = compact.str.slice(0, 2).replace_strict(IBAN_LENGTHS, default=None, return_dtype=pl.Int32)
    numeric = (compact.str.slice(4) + compact.str.slice(0, 4)).str.replace_many(_LETTER_VALUES)
    return (compact.str.len_chars() == expected).fill_null(False) & (mod97(numeric) == 1)


IBAN = Detector(
    "iban",
    "iban",
    r"(?P<lead>[A-Za-z0-9_])??(?P<m>[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?)"
    r"(?P<tail>[A-Za-z0-9_])?",
    "[A-Z]{2}[0-9]{2} ?[A-Z0-9]{4}",
    _iban_check,
)


# ---------------------------------------------------------------- IP addresses
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
# Words after which a dotted quad is a version or a section number, not an address.
_IP_VETO = (
    r"\b(?i:version|ver|v|release|rel|build|firmware|fw|rev|revision|update|patch|section|sec"
    r"|chapter|ch|figure|fig|table|step|rule|clause|article|art|paragraph|para|oid)\.?[ \t]*[:#]?[ \t]*"
)
_RESERVED_V4 = (
    r"^(?:0\.|10\.|127\.|169\.254\.|172\.(?:1[6-9]|2[0-9]|3[01])\.|192\.168\.|192\.0\.[02]\."
    r"|198\.1[89]\.|198\.51\.100\.|203\.0\.113\.|100\.(?:6[4-9]|[7-9][0-9]|1[01][0-9]|12[0-7])\."
    r"|22[4-9]\.|2[3-5][0-9]\.)"
)
_RESERVED_V6 = r"^(?:::1?$|fe[89ab]|f[cd]|ff|2001:0*db8:)"


def _ipv4_check(opts: ScanOptions) -> pl.Expr:
    return ~M.str.contains(_RESERVED_V4) if opts.keep_reserved_ips else pl.lit(True)


def _ipv6_check(opts: ScanOptions) -> pl.Expr:
    groups = M.str.count_matches("[0-9A-Fa-f]+")
    compressed = M.str.count_matches("::")
    # Compressed: three groups at least and a digit, since `Cafe::Bad` and `Add::ee` are C++ scopes.
    # Full: a group of 3-4 hex digits, since `de:ad:be:ef:00:01:02:03` is a hex dump.
    full = (groups == 8) & M.str.contains("[0-9A-Fa-f]{3}")
    compact = (compressed == 1) & groups.is_between(3, 7) & M.str.contains("[0-9]")
    ok = pl.when(compressed == 0).then(full).otherwise(compact)
    return ok & ~M.str.to_lowercase().str.contains(_RESERVED_V6) if opts.keep_reserved_ips else ok


IPV4 = Detector(
    "ipv4",
    "ipv4",
    rf"(?:(?P<veto>{_IP_VETO})|(?P<lead>[A-Za-z0-9_]\.?|\.))??(?P<m>{_OCTET}(?:\.{_OCTET}){{3}})"
    r"(?P<tail>\.?[A-Za-z0-9_])?",
    r"[0-9]\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]",
    _ipv4_check,
)
_H = "[0-9A-Fa-f]{1,4}"
IPV6 = Detector(
    "ipv6",
    "ipv6",
    rf"(?P<lead>[A-Za-z0-9_:.])??(?P<m>(?:{_H}:){{7}}{_H}|(?:{_H}(?::{_H}){{0,6}})?::(?:{_H}(?::{_H}){{0,6}})?)"
    r"(?P<tail>[.:]?[A-Za-z0-9_])?",
    "::|[0-9A-Fa-f]:[0-9A-Fa-f]{1,4}:",
    _ipv6_check,
)


# ---------------------------------------------------------------- secrets
def entropy(expr: pl.Expr) -> pl.Expr:
    """Shannon entropy in bits per character."""
    p = pl.element().unique_counts() / pl.len()
    return expr.str.split("").list.eval(-(p * p.log(2)).sum()).list.first()


def _has_digit(opts: ScanOptions) -> pl.Expr:
    return M.str.contains("[0-9]")


def _high_entropy(opts: ScanOptions) -> pl.Expr:
    # A value of letters and `_.-` only is an identifier or a placeholder (`get_token`,
    # `settings.SECRET_KEY`, `your-api-key-here`); a real key or password mixes in digits or symbols.
    return (M.str.len_chars() >= 8) & M.str.contains("[^A-Za-z_.-]") & (entropy(M) >= opts.secret_min_entropy)


_PLACEHOLDER_PASSWORDS = (
    "password",
    "passwd",
    "pass",
    "pwd",
    "secret",
    "changeme",
    "xxx",
    "xxxx",
    "***",
    "****",
)


def _url_password(opts: ScanOptions) -> pl.Expr:
    return ~M.str.to_lowercase().is_in(list(_PLACEHOLDER_PASSWORDS))


# Provider formats whose prefix says what they are; the whole token is the secret.
_TOKENS = "|".join(
    [
        r"-----BEGIN[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----(?:(?s:.)*?-----END[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----"
        r"|(?:[\r\n]+[A-Za-z0-9+/=]{16,})*)",
        r"\b(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{16,}",  # Stripe
        r"\bsk-[A-Za-z0-9_-]{20,}",  # OpenAI, Anthropic (sk-ant-...)
        r"\bgh[pousr]_[A-Za-z0-9]{36,}",
        r"\bgithub_pat_[A-Za-z0-9_]{22,}",  # GitHub
        r"\bglpat-[A-Za-z0-9_-]{20,}",  # GitLab
        r"\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b",  # AWS access key id
        r"\bxox[abprs]-[A-Za-z0-9-]{10,}",
        r"https://hooks\.slack\.com/services/[A-Za-z0-9/_-]{20,}",  # Slack
        r"\bAIza[0-9A-Za-z_-]{35}",  # Google API key
        r"\bhf_[A-Za-z0-9]{30,}",  # Hugging Face
        r"\bnpm_[A-Za-z0-9]{36}",  # npm
        r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]*",  # JWT: base64 of '{"' twice
    ]
)
SECRET_TOKEN = Detector(
    "secret",
    "secret_token",
    rf"(?P<m>{_TOKENS})",
    r"-----BEGIN|hooks\.slack\.com|\b(?:[sr]k_(?:live|test)_|sk-|gh[pousr]_|github_pat_|glpat-"
    r"|A(?:KIA|SIA|BIA|CCA)|xox[abprs]-|AIza|hf_|npm_|eyJ)",
    _has_digit,
)
SECRET_AUTH_HEADER = Detector(
    "secret",
    "secret_auth_header",
    r"(?P<ctx>\b(?i:authorization:[ \t]*(?:bearer|basic|token)|bearer)[ \t]+)(?P<m>[A-Za-z0-9._~+/-]{16,}=*)",
    "(?i:bearer|authorization)",
    _high_entropy,
)
_KEYWORDS = (
    r"api[_-]?key|apikey|api[_-]?secret|secret[_-]?key|secret|access[_-]?key|access[_-]?token"
    r"|auth[_-]?token|refresh[_-]?token|token|password|passwd|pwd|client[_-]?secret|private[_-]?key"
)
# `db_password`, `AWS_SECRET_ACCESS_KEY`, `x-api-key`, `githubToken`; not `monkey` or `public_key`.
_KEY_NAME = (
    rf"\b(?:(?:[A-Za-z0-9_.-]*[_.-])?(?i:{_KEYWORDS})"
    r"|[a-z][A-Za-z0-9]*(?:Token|Secret|SecretKey|AccessKey|ApiKey|PrivateKey|Password|Passwd|Pwd))"
)
SECRET_ASSIGNMENT = Detector(
    "secret",
    "secret_assignment",
    rf"(?P<ctx>{_KEY_NAME}[\"']?[ \t]*(?::=|=>|=|:)[ \t]*[\"']?)(?P<m>[^ \t\r\n\"'`,;<>(){{}}\[\]$]{{8,}})"
    r"(?P<tail>\()?",
    "(?i:key|secret|token|password|passwd|pwd)[\"']?[ \t]*[:=]",
    _high_entropy,
)
SECRET_URL_PASSWORD = Detector(
    "secret",
    "secret_url_password",
    r"(?P<ctx>\b[A-Za-z][A-Za-z0-9+.-]*://[^ \t\r\n/:@]+:)(?P<m>[^ \t\r\n/:@${}<>]+)(?P<at>@)",
    "://",
    _url_password,
)

# The order in which detectors run, each on the text the previous ones redacted: specific, long
# shapes first, so that a key or an IBAN is never half-taken by the card or phone detectors.
DETECTORS: tuple[Detector, ...] = (
    SECRET_TOKEN,
    SECRET_AUTH_HEADER,
    SECRET_ASSIGNMENT,
    SECRET_URL_PASSWORD,
    EMAIL,
    IBAN,
    CREDIT_CARD,
    SSN_CONTEXT,
    SSN,
    PHONE_CONTEXT,
    PHONE_SHAPED,
    IPV6,
    IPV4,
)
REJECTING_GROUPS = ("lead", "tail", "veto")
