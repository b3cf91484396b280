"""Exporting models: the bundle (safetensors weights + JSON spec) that every other tool loads."""

from imgclf.export.bundle import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    bundle_dir,
    is_bundle,
    load_bundle,
    read_bundle_json,
    save_bundle,
)

__all__ = [
    "CONFIG_NAME",
    "WEIGHTS_NAME",
    "bundle_dir",
    "is_bundle",
    "load_bundle",
    "read_bundle_json",
    "save_bundle",
]
