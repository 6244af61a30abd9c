"""ROUGE through Google's `rouge-score` and BLEU through `sacrebleu`: the reference code, not copies.

ROUGE uses the options `evaluate`'s rouge module uses by default (rouge-score's own tokenizer, no
stemmer, summaries split into sentences on newlines for rougeLsum, the best reference by F-measure
when there are several). Its tokenizer keeps only the ASCII letters and digits, so text in other
scripts scores 0 unless a `tokenizer` is passed.

BLEU has two numbers, and they are not interchangeable:
- the corpus value is sacrebleu's corpus BLEU (n-gram counts pooled over all examples, one brevity
  penalty), the number papers report; it is not the mean of the per-example values;
- the per-example values are sacrebleu's sentence BLEU (its `sentence_bleu` defaults: exp smoothing,
  effective order), which the paired comparison of examples needs.
Each example's sufficient statistics are kept in `MetricResult.stats`, so the corpus BLEU of any
resample of the examples is recomputed exactly by `corpus_bleu_from_stats` (sacrebleu's
`BLEU.compute_bleu`), without tokenising again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from assay.errors import ConfigError, require
from assay.evaluate.metrics.result import MetricResult, References, reference_lists

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")
BLEU_ORDER = 4  # sacrebleu's default maximum n-gram order


class _FunctionTokenizer:
    """Adapts a plain `text -> tokens` function to rouge-score's tokenizer interface."""

    def __init__(self, fn: Callable[[str], list[str]]) -> None:
        self.fn = fn

    def tokenize(self, text: str) -> list[str]:
        return self.fn(text)


def rouge(
    predictions: Sequence[str],
    references: References,
    *,
    rouge_types: Sequence[str] = ROUGE_TYPES,
    use_stemmer: bool = False,
    tokenizer: Callable[[str], list[str]] | None = None,
) -> dict[str, MetricResult]:
    """ROUGE F-measures per example and their mean, one result per ROUGE type.

    The corpus value is the mean of the per-example F-measures. (`evaluate`'s rouge module reports
    the median of 1,000 bootstrap means instead, which differs from this mean only by resampling
    noise; with `use_aggregator=False` it returns exactly these per-example values.)

    >>> round(rouge(["the cat sat"], ["the cat sat down"])["rouge1"].corpus, 4)
    0.8571
    """
    unknown = sorted(set(rouge_types) - set(ROUGE_TYPES))
    if unknown:
        raise ConfigError(f"unknown ROUGE type(s) {unknown}; known: {list(ROUGE_TYPES)}")
    refs = reference_lists(predictions, references, "rouge")
    scorer_mod = require("rouge_score.rouge_scorer", "eval")
    scorer = scorer_mod.RougeScorer(
        list(rouge_types), use_stemmer=use_stemmer, tokenizer=_FunctionTokenizer(tokenizer) if tokenizer else None
    )
    scores = [
        scorer.score(options[0], pred) if len(options) == 1 else scorer.score_multi(options, pred)
        for pred, options in zip(predictions, refs, strict=True)
    ]
    results = {}
    for kind in rouge_types:
        values = [float(s[kind].fmeasure) for s in scores]
        results[kind] = MetricResult(name=kind, corpus=sum(values) / len(values), per_example=values)
    return results


def _bleu_scorer(effective_order: bool, tokenize: str, lowercase: bool):
    sacrebleu = require("sacrebleu", "eval")
    try:
        return sacrebleu.BLEU(tokenize=tokenize, lowercase=lowercase, effective_order=effective_order)
    except Exception as exc:  # sacrebleu raises bare exceptions for unknown or unavailable tokenizers
        raise ConfigError(f"bleu: tokenizer {tokenize!r} cannot be used: {exc}", hint="use tokenize = '13a'") from exc


def bleu(
    predictions: Sequence[str], references: References, *, tokenize: str = "13a", lowercase: bool = False
) -> MetricResult:
    """Corpus BLEU (`corpus`), sentence BLEU per example (`per_example`) and the statistics (`stats`).

    Scores are on sacrebleu's 0-100 scale. Several references per example are allowed, and their
    number may vary between examples (sacrebleu's variable-reference mode).

    >>> r = bleu(["the cat sat on the mat"], ["the cat sat on the mat"])
    >>> (round(r.corpus, 6), [round(v, 6) for v in r.per_example])
    (100.0, [100.0])
    """
    refs = reference_lists(predictions, references, "bleu")
    sentence = _bleu_scorer(True, tokenize, lowercase)
    per_example, stats = [], []
    for pred, options in zip(predictions, refs, strict=True):
        score = sentence.sentence_score(pred, options)
        per_example.append(float(score.score))
        stats.append([score.sys_len, score.ref_len, *score.counts, *score.totals])
    stats_array = np.asarray(stats, dtype=np.int64)
    corpus = float(corpus_bleu_from_stats(stats_array))
    return MetricResult(name="bleu", corpus=corpus, per_example=per_example, stats=stats_array)


def corpus_bleu_from_stats(stats: np.ndarray) -> np.ndarray:
    """Corpus BLEU from per-example statistics of shape (..., n, 10), summed over n; shape (...).

    The columns are sacrebleu's: hypothesis length, closest reference length, the matching n-gram
    counts for n = 1..4 and the hypothesis n-gram totals. The score is sacrebleu's
    `BLEU.compute_bleu` with its corpus defaults (exp smoothing, no effective order), so
    `corpus_bleu_from_stats(bleu(p, r).stats)` equals `sacrebleu.corpus_bleu(p, ...)`.
    Cost: one small Python call per leading index (about 10 µs), whatever n is.
    """
    sacrebleu = require("sacrebleu", "eval")
    stats = np.asarray(stats)
    totals = stats.sum(axis=-2)
    flat = totals.reshape(-1, totals.shape[-1])
    scores = [
        sacrebleu.BLEU.compute_bleu(
            correct=[int(x) for x in row[2 : 2 + BLEU_ORDER]],
            total=[int(x) for x in row[2 + BLEU_ORDER :]],
            sys_len=int(row[0]),
            ref_len=int(row[1]),
            smooth_method="exp",
            effective_order=False,
            max_ngram_order=BLEU_ORDER,
        ).score
        for row in flat
    ]
    return np.asarray(scores, dtype=np.float64).reshape(totals.shape[:-1])
