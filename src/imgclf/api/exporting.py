"""Export: a run's model in a registered format (export/registry.py), kept only when it
passes that format's parity gate on real images."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from imgclf.errors import DataError

if TYPE_CHECKING:  # the CLI imports this module at start: the data room only when exporting
    from imgclf.data.formats.resolve import DataLike

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
    """Export a run's (or a bundle's) model to ``format`` (one of ``export_formats()``) in
    ``output`` (default: the bundle folder, where ``predict --backend auto`` finds it).

    The parity gate scores the same images with PyTorch and ONNX Runtime: the run's own test
    and validation images (or ``split`` of ``data``), decoded as the run decoded them. A graph
    that fails is not kept.

    Args:
        layout: the graph's uint8 input, nchw or nhwc.
        data, split: other images for the gate (a bundle records no data, so it needs them).

    Returns:
        The parity record (``parity.json``) with ``path``: the kept model.onnx.
    """
    from imgclf.export.registry import get_exporter
    from imgclf.models.bundle import bundle_dir
    from imgclf.runs.opening import open_model

    exporter = get_exporter(format)
    exporter.require()
    opened = open_model(model)
    name, images, labels = _gate_images(opened, data, split, progress, **overrides)
    out = Path(output) if output is not None else bundle_dir(model)
    record = exporter.export(opened.network, out, images, labels, name, layout)
    return {**record, "path": out / exporter.filename}


def export_formats() -> list[str]:
    """The export formats (``format`` of ``export``), sorted; listing them imports no
    exporter, so ``imgclf export --help`` starts at once."""
    from imgclf.export.registry import format_names

    return format_names()


def _gate_images(opened, data, split, progress, **overrides):
    """(split name, images, labels): the run's test and val images (or ``split`` of
    ``data``), the first GATE_IMAGES of them."""
    import numpy as np

    from imgclf.api.evaluation import split_images

    network, config = opened.network, opened.config
    data = opened.scored_data(data, purpose="the parity gate")
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
        raise DataError(f"{opened.path} kept no test or validation images for the parity gate.")
    return "+".join(names), np.concatenate(parts), np.concatenate(labels)
