"""ROUGE-1/2/L/Lsum F-measures (Google's rouge-score), per example and averaged. An `evaluate` module shipped with assay.

Load it offline by path: evaluate.load("<this folder>"), or assay.evaluate.metrics.load_module("rouge").
It delegates to assay.evaluate.metrics, so both routes give the same numbers.
"""

import evaluate

from assay.evaluate.metrics.modules import module_compute, module_info


class AssayRouge(evaluate.Metric):
    """ROUGE-1/2/L/Lsum F-measures (Google's rouge-score), per example and averaged."""

    def _info(self):
        return module_info("rouge")

    def _compute(self, predictions, references, rouge_types=None, use_stemmer=None, tokenizer=None):
        return module_compute("rouge", predictions, references, rouge_types=rouge_types, use_stemmer=use_stemmer, tokenizer=tokenizer)
