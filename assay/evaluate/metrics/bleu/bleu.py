"""sacrebleu corpus BLEU, and sentence BLEU per example. An `evaluate` module shipped with assay.

Load it offline by path: evaluate.load("<this folder>"), or assay.evaluate.metrics.load_module("bleu").
It delegates to assay.evaluate.metrics, so both routes give the same numbers.
"""

import evaluate

from assay.evaluate.metrics.modules import module_compute, module_info


class AssayBleu(evaluate.Metric):
    """sacrebleu corpus BLEU, and sentence BLEU per example."""

    def _info(self):
        return module_info("bleu")

    def _compute(self, predictions, references, tokenize=None, lowercase=None):
        return module_compute("bleu", predictions, references, tokenize=tokenize, lowercase=lowercase)
