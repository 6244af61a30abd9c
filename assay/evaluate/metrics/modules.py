"""The metrics as `evaluate` modules that ship with assay and load offline, by path.

`evaluate.load("rouge")` fetches a script from the Hugging Face Hub, which cannot work here. Each
folder next to this file (`rouge/`, `bleu/`, `exact_match/`, `token_f1/`, `accuracy/`) holds a
`<name>.py` script with one `evaluate.Metric`; `evaluate.load(<folder>)` copies that script into its
module cache and imports it, with no network. The scripts only delegate to the plain functions, so
both routes give the same numbers. Every module returns the corpus value under the metric's name
and the per-example values under `per_example` (for BLEU: corpus BLEU and sentence BLEU).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from assay.errors import ConfigError, require
from assay.evaluate.metrics import match, overlap
from assay.evaluate.metrics.result import References

MODULES_DIR = Path(__file__).resolve().parent

_DESCRIPTIONS = {
    "rouge": "ROUGE-1/2/L/Lsum F-measures through Google's rouge-score (no stemmer by default).",
    "bleu": "sacrebleu corpus BLEU (`bleu`) and per-example sentence BLEU (`per_example.sentence_bleu`).",
    "exact_match": "Exact match after SQuAD v1.1 answer normalisation, as a fraction.",
    "token_f1": "Token F1 after SQuAD v1.1 answer normalisation, as a fraction.",
    "accuracy": "Exact string equality between prediction and reference, as a fraction.",
}
MODULES = tuple(_DESCRIPTIONS)

_INPUTS = """
Args:
    predictions: list of strings, one per example.
    references: list of strings, or of lists of strings (several references per example).
Returns:
    {NAME: corpus value, "per_example": {NAME: [one value per example]}}
"""


def module_path(name: str) -> Path:
    """The folder of the `evaluate` module `name`, for `evaluate.load(str(path))`."""
    if name not in MODULES:
        raise ConfigError(f"no evaluate module {name!r} in assay; modules: {', '.join(MODULES)}")
    return MODULES_DIR / name


def load_module(name: str, **kwargs: Any):
    """`evaluate.load` of assay's module `name`, kept in memory (no cache files are written)."""
    evaluate = require("evaluate", "eval")
    return evaluate.load(str(module_path(name)), keep_in_memory=kwargs.pop("keep_in_memory", True), **kwargs)


def module_info(name: str):
    """The `evaluate.MetricInfo` of module `name`: text inputs, one or several references."""
    evaluate = require("evaluate", "eval")
    datasets = require("datasets", "eval")
    text = datasets.Value("string", id="sequence")
    return evaluate.MetricInfo(
        description=_DESCRIPTIONS[name],
        citation="",
        inputs_description=_INPUTS,
        features=[
            datasets.Features({"predictions": text, "references": datasets.Sequence(text, id="references")}),
            datasets.Features({"predictions": text, "references": text}),
        ],
    )


def module_compute(name: str, predictions: Sequence[str], references: References, **options: Any) -> dict:
    """What module `name` returns for these inputs (its `_compute`).

    Options left at None take the plain function's default, so each default has one home.
    """
    options = {key: value for key, value in options.items() if value is not None}
    if name == "rouge":
        results = overlap.rouge(predictions, references, **options)
        return {**{k: r.corpus for k, r in results.items()}, "per_example": {k: r.per_example for k, r in results.items()}}
    if name == "bleu":
        result = overlap.bleu(predictions, references, **options)
        return {"bleu": result.corpus, "per_example": {"sentence_bleu": result.per_example}}
    fn = {"exact_match": match.exact_match, "token_f1": match.token_f1, "accuracy": match.accuracy}[name]
    result = fn(predictions, references, **options)
    return {name: result.corpus, "per_example": {name: result.per_example}}
