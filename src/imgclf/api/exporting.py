"""Export: a run's model as ONNX, kept only when it passes the parity gate on real images."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from imgclf.data.sources import DataLike
from imgclf.errors import ConfigError, DataError, did_you_mean

FORMATS = ("onnx",)
GATE_IMAGES = 256  # the gate's images at most: the first of the held-out splits


def export(
    model: str | Path,
    format: str = "onnx",
    *,
    output: str | Path | None = None,
    data: DataLike | None = None,
    split: str | None = None,
    layout: str = "nchw",
    progress: bool = True,
    **overrides: Any,
) -> dict[str, Any]:
    """Export a run's (or a bundle's) model to ``format`` (onnx) in ``output`` (default: the
    bundle folder, where ``predict --backend auto`` finds it).

    The parity gate scores the same images with PyTorch and ONNX Runtime: the run's own test
    and validation images (or ``split`` of ``data``), decoded as the run decoded them. A graph
    that fails is not kept.

    Args:
        layout: the graph's uint8 input, nchw or nhwc.
        data, split: other images for the gate (a bundle records no data, so it needs them).

    Returns:
        The parity record (``parity.json``) with ``path``: the kept model.onnx.
    """
    from imgclf.export.bundle import bundle_dir, load_bundle
    from imgclf.export.onnx import ONNX_NAME, export_onnx, require_onnx
    from imgclf.runs.rundir import require_model

    if format not in FORMATS:
        raise ConfigError(
            f"Unknown export format '{format}'.{did_you_mean(format, FORMATS)} "
            f"Formats: {', '.join(FORMATS)}."
        )
    require_onnx()
    require_model(model)
    network = load_bundle(model)
    name, images, labels = _gate_images(network, model, data, split, progress, **overrides)
    out = Path(output) if output is not None else bundle_dir(model)
    record = export_onnx(network, out, images, labels, name, layout)
    return {**record, "path": out / ONNX_NAME}


def _gate_images(network, model, data, split, progress, **overrides):
    """(split name, images, labels): the run's test and val images (or ``split`` of
    ``data``), the first GATE_IMAGES of them."""
    from imgclf.api.evaluation import split_images
    from imgclf.runs.rundir import open_run_dir, read_run_config

    is_run = (Path(model) / "config.yaml").is_file()
    config = read_run_config(open_run_dir(Path(model))) if is_run else None
    if data is None:
        if config is None or not config.get("data", {}).get("source"):
            raise ConfigError(
                f"{model} records no data for the parity gate: pass --data with images of its "
                "classes."
            )
        data = config["data"]["source"]
    names, parts, labels = [], [], []
    for wanted in [split] if split else ["test", "val"]:
        try:
            name, images, rows, part_labels, _ = split_images(
                network, data, wanted, progress, config, **overrides
            )
        except DataError:
            if split:
                raise
            continue  # a run without that split
        names.append(name)
        parts.append(images[rows[: GATE_IMAGES - sum(len(p) for p in parts)]])
        labels.append(part_labels[: len(parts[-1])])
        if sum(len(p) for p in parts) >= GATE_IMAGES:
            break
    if not parts:
        raise DataError(f"{model} kept no test or validation images for the parity gate.")
    return "+".join(names), np.concatenate(parts), np.concatenate(labels)
