"""Curation: readers, steps, the pipeline runner and its report."""
