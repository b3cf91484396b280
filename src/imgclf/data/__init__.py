"""Data: sources, checks, splits, the decoded-image cache, augmentation and the batch loader."""

from imgclf.data.builtin import list_datasets, load_builtin, register_dataset
from imgclf.data.source import DataSource, Skipped

__all__ = ["DataSource", "Skipped", "list_datasets", "load_builtin", "register_dataset"]
