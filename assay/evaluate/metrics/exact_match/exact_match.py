"""SQuAD v1.1 exact match, per example and averaged. An `evaluate` module shipped with assay.

Load it offline by path: evaluate.load("<this folder>"), or assay.evaluate.metrics.load_module("exact_match").
It delegates to assay.evaluate.metrics, so both routes give the same numbers.
"""

import evaluate

from assay.evaluate.metrics.modules import module_compute, module_info


class AssayExactMatch(evaluate.Metric):
    """SQuAD v1.1 exact match, per example and averaged."""

    def _info(self):
        return module_info("exact_match")

    def _compute(self, predictions, references):
        return module_compute("exact_match", predictions, references)
