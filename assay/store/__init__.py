"""Versions, manifests, the catalog and atomic writes."""

from assay.store.catalog import Catalog, Entry
from assay.store.datasets import DatasetStore, DatasetVersion

__all__ = ["Catalog", "DatasetStore", "DatasetVersion", "Entry"]
