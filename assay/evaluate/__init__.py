"""Evaluation and release gate (DESIGN §8): checks, reports, signatures and promotion."""
