"""SQuAD v1.1 token F1, per example and averaged. An `evaluate` module shipped with assay.

Load it offline by path: evaluate.load("<this folder>"), or assay.evaluate.metrics.load_module("token_f1").
It delegates to assay.evaluate.metrics, so both routes give the same numbers.
"""

import evaluate

from assay.evaluate.metrics.modules import module_compute, module_info


class AssayTokenF1(evaluate.Metric):
    """SQuAD v1.1 token F1, per example and averaged."""

    def _info(self):
        return module_info("token_f1")

    def _compute(self, predictions, references):
        return module_compute("token_f1", predictions, references)
