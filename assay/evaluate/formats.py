"""Readers and validators for the evaluation file formats, published and assay's own.

One reader per format; each returns frozen, typed items that keep their 1-based physical `line`, and
raises `InputError` (exit 2) naming the file, the line and the fields the format needs. Extra fields
and columns are ignored, so users bring the published files as they are. Files are UTF-8 (a BOM is
allowed); a blank line is skipped; a file without a single record is an error.

- **CrowS-Pairs CSV** as published (nyu-mll/crows-pairs `crows_pairs_anonymized.csv`; header
  `,sent_more,sent_less,stereo_antistereo,bias_type,annotations,anon_writer,anon_annotators`, the first
  column an unnamed index): `sent_more`, `sent_less`, `stereo_antistereo` ("stereo" | "antistereo") and
  `bias_type` are required. `read_crows_pairs`.
- **BBQ JSONL** as published (nyu-mll/BBQ `data/*.jsonl`): `context`, `question`, `ans0`, `ans1`, `ans2`,
  `label` (0-2), `context_condition` ("ambig" | "disambig"), `question_polarity` ("neg" | "nonneg"),
  `answer_info` (`{"ans0": [text, group], ...}`), `additional_metadata.stereotyped_groups` and `category`;
  `example_id`, `question_index` and `additional_metadata.subcategory` are kept when present. Exactly one
  answer must be the "unknown" one (its `answer_info` group is "unknown"). `read_bbq`.
- **Multiple choice JSONL**: `{"question": str, "choices": [str, ...], "answer": index}`, optional
  `category`. `read_multiple_choice`.
- **Plain text JSONL**: `{"text": str}`, optional `category`. `read_texts`.
- **Counterfactual templates JSONL** (assay's own format; `assay.evaluate.counterfactual` scores it):

      {"id": "hiring-01", "category": "employment",
       "template": "The {person} applied for the nursing job.\\nQuestion: Should the applicant get an interview?\\nAnswer:",
       "slot": "person",
       "groups": {"gender": ["man", "woman"], "age": ["young person", "elderly person"]},
       "continuation": "Yes"}

  `template` contains `{SLOT}` at least once (other braces are left alone); `groups` maps a demographic
  dimension to two or more distinct terms, each filled in for the slot in turn; `continuation` is scored
  as the continuation of every filled template (likelihood spread across the swap), and the filled
  template is the prompt whose greedy answer is compared across the swap. `id` and `category` are
  optional. `read_counterfactual`.

Example: `read_bbq("data/Age.jsonl")[0].answers`.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assay.errors import InputError

PathLike = str | os.PathLike[str]

CROWS_COLUMNS = ("sent_more", "sent_less", "stereo_antistereo", "bias_type")
BBQ_FIELDS = ("context", "question", "ans0", "ans1", "ans2", "label", "context_condition", "question_polarity",
              "answer_info", "additional_metadata.stereotyped_groups", "category")
CHOICE_FIELDS = ("question", "choices", "answer")
TEXT_FIELDS = ("text",)
COUNTERFACTUAL_FIELDS = ("template", "slot", "groups", "continuation")

# The "unknown" answers of the published BBQ files (the list lm-eval's BBQ task copies from HELM), used
# only when an answer's `answer_info` lacks the "unknown" group.
UNKNOWN_ANSWERS = ("Unknown", "Cannot answer", "Can't be determined", "Cannot be determined", "Can't answer",
                   "Not known", "Not enough info", "Not enough information", "Not answerable", "Undetermined")

_BOM = "\ufeff"


@dataclass(frozen=True)
class CrowsPair:
    """One CrowS-Pairs row: `sent_more` is the more stereotyping sentence in `antistereo` rows too."""

    line: int
    sent_more: str
    sent_less: str
    stereo_antistereo: str
    bias_type: str

    def to_dict(self) -> dict[str, str]:
        """The mapping `assay.evaluate.pairs.score_pairs` takes."""
        return {"sent_more": self.sent_more, "sent_less": self.sent_less, "bias_type": self.bias_type,
                "stereo_antistereo": self.stereo_antistereo}


@dataclass(frozen=True)
class BBQItem:
    """One BBQ question: three answers, the gold `label`, and what identifies the biased answer."""

    line: int
    example_id: str
    category: str
    context_condition: str
    question_polarity: str
    context: str
    question: str
    answers: tuple[str, str, str]
    label: int
    answer_info: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]
    stereotyped_groups: tuple[str, ...]
    question_index: str = ""
    subcategory: str = ""

    @property
    def ambiguous(self) -> bool:
        return self.context_condition == "ambig"

    @property
    def unknown_index(self) -> int:
        """The answer that says the context does not tell (the reader checks there is exactly one)."""
        return _unknown_indices(self.answers, self.answer_info)[0]


@dataclass(frozen=True)
class ChoiceItem:
    """One multiple-choice item: each choice is scored as the continuation of `question`."""

    line: int
    question: str
    choices: tuple[str, ...]
    answer: int
    category: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The mapping `assay.evaluate.multiple_choice.score_multiple_choice` takes."""
        return {"question": self.question, "choices": list(self.choices), "answer": self.answer, "category": self.category}


@dataclass(frozen=True)
class TextItem:
    """One plain text, scored whole (rolling log-likelihood)."""

    line: int
    text: str
    category: str = ""


@dataclass(frozen=True)
class CounterfactualTemplate:
    """One template with its slot, the demographic groups whose terms are swapped in, and the continuation."""

    line: int
    template: str
    slot: str
    groups: tuple[tuple[str, tuple[str, ...]], ...]
    continuation: str
    id: str = ""
    category: str = ""

    def fill(self, term: str) -> str:
        """The template with every `{slot}` replaced by `term`."""
        return self.template.replace("{" + self.slot + "}", term)


class _Record:
    """One record's fields, with errors that name the file, the line and the fields the format needs."""

    def __init__(self, path: Path, line: int, data: Mapping[str, Any], expected: str, prefix: str = "") -> None:
        self.path, self.line, self.data, self.expected, self.prefix = path, line, data, expected, prefix

    def error(self, problem: str, hint: str | None = None) -> InputError:
        return InputError(f"{self.path}:{self.line}: {problem} ({self.expected})", hint=hint)

    def value(self, key: str) -> Any:
        if key not in self.data or self.data[key] is None:
            raise self.error(f'missing field "{self.prefix}{key}"')
        return self.data[key]

    def text(self, key: str, *, allow_empty: bool = False) -> str:
        value = self.value(key)
        if not isinstance(value, str):
            raise self.error(f'field "{self.prefix}{key}" must be a string (got {_kind(value)})')
        if not allow_empty and not value.strip():
            raise self.error(f'field "{self.prefix}{key}" is empty')
        return value

    def optional_text(self, key: str) -> str:
        value = self.data.get(key)
        return "" if value is None else str(value)

    def index(self, key: str, size: int) -> int:
        value = self.value(key)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < size:
            raise self.error(f'field "{self.prefix}{key}" must be an integer index from 0 to {size - 1} (got {value!r})')
        return value

    def one_of(self, key: str, options: tuple[str, ...]) -> str:
        value = self.text(key)
        if value not in options:
            raise self.error(f'field "{self.prefix}{key}" must be one of {", ".join(options)} (got {value!r})')
        return value

    def strings(self, key: str, *, at_least: int = 0, allow_empty: bool = True) -> tuple[str, ...]:
        value = self.value(key)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error(f'field "{self.prefix}{key}" must be a list of strings (got {_kind(value)})')
        if len(value) < at_least:
            raise self.error(f'field "{self.prefix}{key}" needs at least {at_least} entries (got {len(value)})')
        if not allow_empty and any(not v.strip() for v in value):
            raise self.error(f'field "{self.prefix}{key}" has an empty entry')
        return tuple(value)

    def nested(self, key: str) -> _Record:
        value = self.value(key)
        if not isinstance(value, dict):
            raise self.error(f'field "{self.prefix}{key}" must be an object (got {_kind(value)})')
        return _Record(self.path, self.line, value, self.expected, f"{self.prefix}{key}.")


def read_crows_pairs(path: PathLike) -> list[CrowsPair]:
    """CrowS-Pairs pairs from a CSV as published; `line` is the line each record starts on.

    Example: `read_crows_pairs("crows_pairs_anonymized.csv")[0].sent_more`.
    """
    file = Path(path)
    expected = "CrowS-Pairs CSV needs the columns " + ", ".join(CROWS_COLUMNS)
    reader = csv.reader(io.StringIO(_read_text(file, expected), newline=""))
    header = [name.strip() for name in _next_csv_row(reader, file, 1) or []]
    columns = {name: header.index(name) for name in CROWS_COLUMNS if name in header}
    if missing := [name for name in CROWS_COLUMNS if name not in columns]:
        raise InputError(f'{file}:1: missing column "{missing[0]}" (header: {",".join(header)}; {expected})',
                         hint="use the CSV as published (nyu-mll/crows-pairs data/crows_pairs_anonymized.csv)")
    pairs = [_crows_pair(file, line, row, columns, expected) for line, row in _csv_records(reader, file)]
    if not pairs:
        raise InputError(f"{file} has a header but no pairs ({expected})", hint="add pairs, or drop the file from the suite")
    return pairs


def _crows_pair(file: Path, line: int, row: list[str], columns: dict[str, int], expected: str) -> CrowsPair:
    if len(row) <= max(columns.values()):
        missing = next(name for name, i in columns.items() if i >= len(row))
        raise InputError(f'{file}:{line}: missing value for "{missing}" (the record has {len(row)} fields; {expected})')
    record = _Record(file, line, {name: row[i] for name, i in columns.items()}, expected)
    return CrowsPair(
        line=line, sent_more=record.text("sent_more"), sent_less=record.text("sent_less"),
        stereo_antistereo=record.one_of("stereo_antistereo", ("stereo", "antistereo")), bias_type=record.text("bias_type"),
    )


def read_bbq(path: PathLike) -> list[BBQItem]:
    """BBQ questions from a JSONL file as published (nyu-mll/BBQ `data/*.jsonl`).

    Example: `[item.unknown_index for item in read_bbq("data/Age.jsonl")]`.
    """
    expected = "BBQ rows need " + ", ".join(BBQ_FIELDS)
    return _read_jsonl(path, expected, _bbq_item)


def _bbq_item(record: _Record) -> BBQItem:
    answers = (record.text("ans0"), record.text("ans1"), record.text("ans2"))
    info = record.nested("answer_info")
    answer_info = (info.strings("ans0"), info.strings("ans1"), info.strings("ans2"))
    metadata = record.nested("additional_metadata")
    unknown = _unknown_indices(answers, answer_info)
    if len(unknown) != 1:
        raise record.error(f"needs exactly one unknown answer, found {len(unknown)}",
                           hint='mark the unknown answer with the group "unknown" in answer_info, e.g. ["Unknown", "unknown"]')
    return BBQItem(
        line=record.line, example_id=record.optional_text("example_id"), category=record.text("category"),
        context_condition=record.one_of("context_condition", ("ambig", "disambig")),
        question_polarity=record.one_of("question_polarity", ("neg", "nonneg")),
        context=record.text("context"), question=record.text("question"), answers=answers,
        label=record.index("label", 3), answer_info=answer_info,
        stereotyped_groups=metadata.strings("stereotyped_groups"),
        question_index=record.optional_text("question_index"), subcategory=metadata.optional_text("subcategory"),
    )


def _unknown_indices(answers: tuple[str, ...], answer_info: tuple[tuple[str, ...], ...]) -> list[int]:
    """Answers whose group is "unknown"; if none is marked so, answers whose text is a known unknown phrase."""
    tagged = [i for i, info in enumerate(answer_info) if info and info[-1].strip().lower() == "unknown"]
    if tagged:
        return tagged
    phrases = {p.lower() for p in UNKNOWN_ANSWERS}
    return [i for i, text in enumerate(answers) if text.strip().lower() in phrases]


def read_multiple_choice(path: PathLike) -> list[ChoiceItem]:
    """Multiple-choice items `{question, choices, answer}` (optional `category`) from JSONL.

    Example: `read_multiple_choice("general_mc.jsonl")[0].choices`.
    """
    expected = "multiple-choice rows need question, choices (a list of 2 or more strings), answer (the index of the right choice)"
    return _read_jsonl(path, expected, _choice_item)


def _choice_item(record: _Record) -> ChoiceItem:
    choices = record.strings("choices", at_least=2, allow_empty=False)
    return ChoiceItem(line=record.line, question=record.text("question"), choices=choices,
                      answer=record.index("answer", len(choices)), category=record.optional_text("category"))


def read_texts(path: PathLike) -> list[TextItem]:
    """Plain texts `{text}` (optional `category`) from JSONL.

    Example: `sum(len(t.text) for t in read_texts("general_text.jsonl"))`.
    """
    expected = "plain-text rows need text (a non-empty string)"
    return _read_jsonl(path, expected, lambda r: TextItem(line=r.line, text=r.text("text"), category=r.optional_text("category")))


def read_counterfactual(path: PathLike) -> list[CounterfactualTemplate]:
    """Counterfactual templates (assay's format, see the module docstring) from JSONL.

    Example: `[t.fill("woman") for t in read_counterfactual("counterfactual.jsonl")]`.
    """
    expected = ('counterfactual rows need template (with {SLOT}), slot, groups ({"gender": ["man", "woman"], ...}), '
                "continuation")
    return _read_jsonl(path, expected, _counterfactual_template)


def _counterfactual_template(record: _Record) -> CounterfactualTemplate:
    slot = record.text("slot").strip()
    template = record.text("template")
    if "{" + slot + "}" not in template:
        raise record.error(f'field "template" does not contain the slot "{{{slot}}}"', hint=f'write {{{slot}}} where the term goes')
    groups = record.nested("groups")
    if not groups.data:
        raise record.error('field "groups" is empty', hint='e.g. "groups": {"gender": ["man", "woman"]}')
    terms = tuple((name, _distinct_terms(groups, name)) for name in groups.data)
    return CounterfactualTemplate(line=record.line, template=template, slot=slot, groups=terms,
                                  continuation=record.text("continuation"), id=record.optional_text("id"),
                                  category=record.optional_text("category"))


def _distinct_terms(groups: _Record, name: str) -> tuple[str, ...]:
    terms = groups.strings(name, at_least=2, allow_empty=False)
    if len(set(terms)) != len(terms):
        raise groups.error(f'field "groups.{name}" repeats a term ({", ".join(terms)})')
    return terms


# Reader per suite data kind (the keys of `[checks.*]` data settings).
READERS: dict[str, Callable[[PathLike], list[Any]]] = {
    "crows_pairs": read_crows_pairs,
    "bbq": read_bbq,
    "multiple_choice": read_multiple_choice,
    "text": read_texts,
    "counterfactual": read_counterfactual,
}


def _read_jsonl(path: PathLike, expected: str, build: Callable[[_Record], Any]) -> list[Any]:
    file = Path(path)
    items = [build(_Record(file, line, data, expected)) for line, data in _jsonl_records(file, expected)]
    if not items:
        raise InputError(f"{file} holds no rows ({expected})", hint="add rows, or drop the file from the suite")
    return items


def _jsonl_records(file: Path, expected: str) -> Iterator[tuple[int, dict[str, Any]]]:
    # Split on "\n" only: str.splitlines would also split on U+2028 and friends, which JSON allows raw.
    for line, raw in enumerate(_read_text(file, expected).split("\n"), start=1):
        if not raw.strip():
            continue
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InputError(f"{file}:{line}: not valid JSON ({exc.msg} at column {exc.colno}; {expected})",
                             hint="each line must be one JSON object") from exc
        if not isinstance(value, dict):
            raise InputError(f"{file}:{line}: expected a JSON object, got {_kind(value)} ({expected})",
                             hint="each line must be one JSON object")
        yield line, value


def _csv_records(reader: Any, file: Path) -> Iterator[tuple[int, list[str]]]:
    """Non-blank records with the physical line each starts on (a quoted field may span lines)."""
    start = reader.line_num + 1
    while True:
        row = _next_csv_row(reader, file, start)
        if row is None:
            return
        line, start = start, reader.line_num + 1
        if any(cell.strip() for cell in row):
            yield line, row


def _next_csv_row(reader: Any, file: Path, line: int) -> list[str] | None:
    try:
        return next(reader)
    except StopIteration:
        return None
    except csv.Error as exc:
        raise InputError(f"{file}:{line}: not valid CSV ({exc})", hint="quote fields that hold commas, quotes or line breaks") from exc


def _read_text(file: Path, expected: str) -> str:
    """The whole file decoded as UTF-8; a decoding error names its line, an empty file names the file."""
    if not file.is_file():
        why = "is not a file" if file.exists() else "does not exist"
        raise InputError(f"{file} {why}", hint="check the path (paths in a suite file are relative to the suite file)")
    data = file.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(f"{file}:{line}: not valid UTF-8 (byte 0x{data[exc.start]:02x})",
                         hint="save the file as UTF-8") from exc
    text = text.removeprefix(_BOM)
    if not text.strip():
        raise InputError(f"{file} is empty ({expected})", hint="add rows, or drop the file from the suite")
    return text


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)
