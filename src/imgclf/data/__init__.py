"""Data, one sub-package per job: formats (readers), pipeline (scan, split, decode once),
batches (augmentation, the loader) and views (report tables, picture grids)."""

from imgclf.data.formats.builtin import list_datasets, load_builtin, register_dataset
from imgclf.data.source import DataSource, Skipped

__all__ = ["DataSource", "Skipped", "list_datasets", "load_builtin", "register_dataset"]
