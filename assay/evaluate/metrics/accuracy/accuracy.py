"""Exact string equality, per example and averaged. An `evaluate` module shipped with assay.

Load it offline by path: evaluate.load("<this folder>"), or assay.evaluate.metrics.load_module("accuracy").
It delegates to assay.evaluate.metrics, so both routes give the same numbers.
"""

import evaluate

from assay.evaluate.metrics.modules import module_compute, module_info


class AssayAccuracy(evaluate.Metric):
    """Exact string equality, per example and averaged."""

    def _info(self):
        return module_info("accuracy")

    def _compute(self, predictions, references):
        return module_compute("accuracy", predictions, references)
