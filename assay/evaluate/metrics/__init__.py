"""Task metrics (ROUGE, BLEU, exact match, token F1, accuracy): per-example values and corpus values.

Plain functions (`score`, `score_many`, registered in `REGISTRY` with direction, scale and version)
and the same metrics as `evaluate` modules that load offline by path (`load_module`, `module_path`).
No torch here: metrics only compare strings.
"""

from assay.evaluate.metrics.match import accuracy, exact_match, normalize_answer, token_f1
from assay.evaluate.metrics.modules import MODULES, load_module, module_path
from assay.evaluate.metrics.overlap import ROUGE_TYPES, bleu, corpus_bleu_from_stats, rouge
from assay.evaluate.metrics.registry import REGISTRY, MetricSpec, compare, get_metric, score, score_many
from assay.evaluate.metrics.result import MetricResult

__all__ = [
    "MODULES",
    "REGISTRY",
    "ROUGE_TYPES",
    "MetricResult",
    "MetricSpec",
    "accuracy",
    "bleu",
    "compare",
    "corpus_bleu_from_stats",
    "exact_match",
    "get_metric",
    "load_module",
    "module_path",
    "normalize_answer",
    "rouge",
    "score",
    "score_many",
    "token_f1",
]
