"""The suite file: which checks run, on which data, with which settings.

A TOML file with one `[checks.NAME]` table per check; a check runs when its table is present (and
`enabled` is not false). Paths are relative to the suite file; `@probes/NAME` names a probe set that
ships with assay (`assay/evaluate/probes/`). Users bring the published files as they are:

    [checks.bias]
    crows_pairs = ["crows_pairs_anonymized.csv"]   # CrowS-Pairs CSV as published
    bbq = ["data/Age.jsonl", "data/Religion.jsonl"] # BBQ JSONL as published
    [checks.forgetting]
    multiple_choice = ["probe_mc.jsonl"]            # {question, choices, answer}
    text = ["general.jsonl"]                        # {text}
    [checks.task]
    files = ["test.jsonl"]                          # default: the dataset version's test split

Without a suite file, `default_suite()` runs every check on the probe sets assay ships.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from assay.errors import ConfigError, InputError
from assay.evaluate.extract import ExtractConfig
from assay.settings import read_toml, validate

PROBES_DIR = Path(__file__).with_name("probes")
PROBE_PREFIX = "@probes/"
TASK_METRICS = ["rouge1", "rouge2", "rougeL", "bleu", "exact_match", "token_f1", "accuracy"]

_STRICT = ConfigDict(extra="forbid")


class CheckSettings(BaseModel):
    """Settings every check has."""

    model_config = _STRICT

    enabled: bool = Field(True, description="Run this check (a table that is present runs unless this is false).")


class TaskSettings(CheckSettings):
    """`[checks.task]`: generate answers to held-out prompts and score them against the references."""

    files: list[str] = Field(default_factory=list, description="Eval files (any shape `assay curate` reads: prompt/response, messages, question/answer, ...); empty: the `test` split of the model's dataset versions.")
    max_examples: int = Field(200, ge=1, description="Score at most this many examples (the first, in file or version order).")
    metrics: list[str] = Field(default_factory=lambda: list(TASK_METRICS), description=f"Metrics to compute; known: {', '.join(TASK_METRICS)}, rougeLsum.")
    max_new_tokens: int = Field(128, ge=1, description="Longest generated answer, in tokens.")
    stop: list[str] = Field(default_factory=list, description="Stop sequences besides the tokenizer's end-of-sequence token.")
    extract: ExtractConfig = Field(default_factory=ExtractConfig, description="How the answer is taken from a generation.")
    reference_extract: ExtractConfig = Field(default_factory=ExtractConfig, description="How the answer is taken from a reference (e.g. last_number for `#### 42`).")
    category_column: str | None = Field(None, examples=["topic"], description="Column whose values get their own metrics (per-category breakdown).")
    samples: int = Field(10, ge=0, description="Generations shown side by side in the report.")


class OverfittingSettings(CheckSettings):
    """`[checks.overfitting]`: the loss history and the loss on the model's own train vs test rows."""

    max_rows: int = Field(200, ge=1, description="Rows of each split (train, test) scored for the test/train loss ratio.")


class MemorisationSettings(CheckSettings):
    """`[checks.memorisation]`: discoverable extraction — prefix in, greedy continuation out, compared."""

    rows: int = Field(100, ge=1, description="Sampled training rows (plus every PII-flagged, redacted and canary row) and as many held-out rows.")
    prefix_tokens: int = Field(32, ge=1, description="Tokens of each row given as the prompt.")
    continuation_tokens: int = Field(32, ge=1, description="Tokens generated greedily and compared with the row's true next tokens.")
    near_threshold: float = Field(0.9, gt=0, le=1, description="A continuation counts as a near copy at this normalised edit similarity or above.")
    canaries: list[str] = Field(default_factory=list, description="Files of canary rows (`text` or prompt/response JSONL) always tested: strings planted in training data to detect extraction.")
    worst: int = Field(10, ge=0, description="Most-memorised rows listed in the report.")


class ForgettingSettings(CheckSettings):
    """`[checks.forgetting]`: general ability kept — perplexity on plain text, accuracy on multiple choice."""

    text: list[str] = Field(default_factory=lambda: [PROBE_PREFIX + "general_text.jsonl"], description="Plain-text JSONL files (`text`, optional `category`).")
    multiple_choice: list[str] = Field(default_factory=lambda: [PROBE_PREFIX + "general_mc.jsonl"], description="Multiple-choice JSONL files (`question`, `choices`, `answer` index, optional `category`).")
    max_items: int | None = Field(None, ge=1, examples=[50], description="At most this many texts and this many questions (a seeded sample, the same every run); unset: all. For quick runs on a CPU.")


class BiasSettings(CheckSettings):
    """`[checks.bias]`: paired-sentence preference, ambiguous question answering, counterfactual swaps."""

    crows_pairs: list[str] = Field(default_factory=lambda: [PROBE_PREFIX + "crows_pairs.csv"], description="CrowS-Pairs CSV files as published (sent_more, sent_less, stereo_antistereo, bias_type).")
    bbq: list[str] = Field(default_factory=lambda: [PROBE_PREFIX + "bbq.jsonl"], description="BBQ JSONL files as published (nyu-mll/BBQ data/*.jsonl).")
    counterfactual: list[str] = Field(default_factory=lambda: [PROBE_PREFIX + "counterfactual.jsonl"], description="Counterfactual template JSONL files (assay's format, see assay/evaluate/counterfactual.py).")
    examples: int = Field(10, ge=0, description="Pairs shown in the report.")
    max_items: int | None = Field(None, ge=1, examples=[50], description="At most this many pairs, questions and templates of each kind (a seeded sample, the same every run); unset: all.")


class ContaminationSettings(CheckSettings):
    """`[checks.contamination]`: word n-grams shared by the training data and each eval set."""

    ngram: int = Field(13, ge=3, description="Shared word n-gram length that counts as overlap (13, as in GPT-3's decontamination).")
    max_overlap: float = Field(0.01, ge=0, le=1, description="An eval set with a larger share of overlapping rows is `invalid`: its results cannot count as a pass.")


class SuiteChecks(BaseModel):
    model_config = _STRICT

    task: TaskSettings | None = None
    overfitting: OverfittingSettings | None = None
    memorisation: MemorisationSettings | None = None
    forgetting: ForgettingSettings | None = None
    bias: BiasSettings | None = None
    contamination: ContaminationSettings | None = None


class SuiteConfig(BaseModel):
    """A suite file: `[checks.NAME]` tables."""

    model_config = _STRICT

    checks: SuiteChecks = Field(default_factory=SuiteChecks, description="The checks to run, one table each.")

    def enabled(self) -> dict[str, CheckSettings]:
        """Check name → its settings, for the checks that run, in a fixed order."""
        return {name: s for name in SuiteChecks.model_fields if (s := getattr(self.checks, name)) is not None and s.enabled}


def default_suite() -> SuiteConfig:
    """Every check, on the probe sets assay ships and the model's own test split."""
    return SuiteConfig(checks=SuiteChecks(
        task=TaskSettings(), overfitting=OverfittingSettings(), memorisation=MemorisationSettings(),
        forgetting=ForgettingSettings(), bias=BiasSettings(), contamination=ContaminationSettings(),
    ))


class Suite(BaseModel):
    """A loaded suite: its settings, where it came from, and its hash (recorded in reports)."""

    model_config = ConfigDict(frozen=True)

    config: SuiteConfig
    path: str | None
    sha256: str
    base_dir: str

    def resolve(self, name: str) -> Path:
        """A data path of the suite: `@probes/...` from assay's package, else relative to the suite file."""
        if name.startswith(PROBE_PREFIX):
            return PROBES_DIR / name[len(PROBE_PREFIX):]
        path = Path(name).expanduser()
        return path if path.is_absolute() else Path(self.base_dir) / path

    def require_files(self) -> None:
        """Every named file exists, or one error listing the missing ones with where they were looked for."""
        missing = [f"{name} (looked for {self.resolve(name)})" for name in _file_settings(self.config) if not self.resolve(name).is_file()]
        if missing:
            raise InputError(f"suite {self.path or '(default)'}: {len(missing)} file(s) not found:\n  - " + "\n  - ".join(missing),
                             hint="paths in a suite file are relative to the suite file; @probes/NAME names a shipped probe set")

    def check_formats(self) -> None:
        """Every named file reads in the format its setting expects, checked before any model loads (a
        wrong column found after minutes of scoring wastes them); one error naming every bad file."""
        readers = _readers()
        problems: list[InputError] = []
        for field, name in _named_files(self.config):
            try:
                readers[field](self.resolve(name))
            except InputError as exc:
                problems.append(exc)
        if len(problems) == 1:
            raise problems[0]
        if problems:
            raise InputError(f"suite {self.path or '(default)'}: {len(problems)} file(s) in the wrong format:\n  - "
                             + "\n  - ".join(p.message for p in problems), hint="fix each file; the expected columns are named after it")


def load_suite(path: Path | None) -> Suite:
    """A suite file (validated at once, every problem named), or the default suite when `path` is None."""
    if path is None:
        config = default_suite()
        return Suite(config=config, path=None, sha256=_digest(config.model_dump_json().encode()), base_dir=str(Path.cwd()))
    raw = read_toml(path)
    config = validate(SuiteConfig, raw, source=str(path))
    if not config.enabled():
        raise ConfigError(f"suite {path} enables no check", hint=f"add a [checks.NAME] table; checks: {', '.join(SuiteChecks.model_fields)}")
    suite = Suite(config=config, path=str(path), sha256=_digest(Path(path).read_bytes()), base_dir=str(Path(path).absolute().parent))
    suite.require_files()
    return suite


FILE_FIELDS = ("files", "text", "multiple_choice", "crows_pairs", "bbq", "counterfactual", "canaries")


def _named_files(config: SuiteConfig) -> list[tuple[str, str]]:
    """(setting, file name) of every file the enabled checks read."""
    return [(field, name) for settings in config.enabled().values() for field in FILE_FIELDS
            for name in getattr(settings, field, None) or []]


def _file_settings(config: SuiteConfig) -> list[str]:
    return [name for _, name in _named_files(config)]


def _readers() -> dict[str, Any]:
    """Setting → the reader of its format (each raises InputError naming the file, the line and the columns)."""
    from assay.evaluate import formats
    from assay.evaluate.checks.rows import read_eval_file

    return {"files": read_eval_file, "canaries": read_eval_file, "text": formats.read_texts,
            "multiple_choice": formats.read_multiple_choice, "crows_pairs": formats.read_crows_pairs,
            "bbq": formats.read_bbq, "counterfactual": formats.read_counterfactual}


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: Path) -> str:
    from assay.store.atomic import sha256_file

    return sha256_file(path)


Kind = Literal["text", "multiple_choice", "crows_pairs", "bbq", "counterfactual", "task"]


def describe(config: SuiteConfig) -> dict[str, Any]:
    """The resolved settings of the enabled checks (recorded in reports)."""
    return {name: settings.model_dump(mode="json") for name, settings in config.enabled().items()}
