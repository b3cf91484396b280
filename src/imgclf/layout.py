"""The names of a model and a run on disk, in one torch-free place: the bundle's files, the files
an export adds beside them, and a run folder's config and bundle sub-folder.

Base module: the bundle (models), the run folder (runs) and the API tier read these names, and
listing runs must not import torch to read them.
"""

from __future__ import annotations

from pathlib import Path

CONFIG_NAME, WEIGHTS_NAME = "model.json", "model.safetensors"  # a bundle: spec and weights
# what imgclf export writes beside them: the fp32 graph, its gate and input spec; the int8 graph
# and its gate (export/onnx_int8.py)
EXPORT_NAMES = ("model.onnx", "parity.json", "onnx.json", "model-int8.onnx", "parity-int8.json")
ONNX_NAME, PARITY_NAME, SPEC_NAME, INT8_NAME, INT8_PARITY_NAME = EXPORT_NAMES
RUN_BUNDLE_DIR, RUN_CONFIG = "model", "config.yaml"  # a run folder: its bundle and its config


def is_run_folder(path: str | Path) -> bool:
    """Whether ``path`` is a run folder (config.yaml: data, splits, history), not a bare bundle."""
    return (Path(path) / RUN_CONFIG).is_file()
