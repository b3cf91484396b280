"""Export: a run's model in a registered format (export/registry.py), kept only when it
passes that format's parity gate on real images."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from imgclf.errors import DataError

if TYPE_CHECKING:  # the CLI imports this module at start: the data room only when exporting
    from imgclf.data.formats.resolve import DataLike

GATE_IMAGES = 256  # the gate's images at most: the first of the held-out splits
CALIBRATION_IMAGES = 256  # a quantizer's calibration images at most, spread over the train split


def export(
    model: str | Path,
    format: str = "onnx",
    *,
    output: str | Path | None = None,
    data: DataLike | None = None,
    split: str | None = None,
    layout: str = "nchw",
    progress: bool = True,
    options: dict[str, Any] | None = None,
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
        options: the format's own keywords, e.g. for onnx-int8 ``min_agreement``,
            ``max_accuracy_drop``, ``min_speedup`` (its gate).

    onnx-int8 is calibrated on up to CALIBRATION_IMAGES of the train split of the same data,
    and exports the fp32 model.onnx first when the folder has no gated one.

    Returns:
        The parity record (``parity.json``, ``parity-int8.json``) with ``path``: the kept file.
    """
    from imgclf.export.registry import get_exporter
    from imgclf.models.bundle import bundle_dir
    from imgclf.runs.opening import open_model

    exporter = get_exporter(format)
    exporter.require()
    options = _checked_options(exporter, options)
    opened = open_model(model)
    name, images, labels = _gate_images(opened, data, split, progress, **overrides)
    if exporter.calibrated:
        options["calibration"] = _calibration_images(opened, data, progress, **overrides)
    out = Path(output) if output is not None else bundle_dir(model)
    record = exporter.export(opened.network, out, images, labels, name, layout, **options)
    return {**record, "path": out / exporter.filename}


def export_formats() -> list[str]:
    """The export formats (``format`` of ``export``), sorted; listing them imports no
    exporter, so ``imgclf export --help`` starts at once."""
    from imgclf.export.registry import format_names

    return format_names()


def _checked_options(exporter, options: dict[str, Any] | None) -> dict[str, Any]:
    """``options`` when ``exporter`` takes each of them by keyword; else one ConfigError."""
    import inspect

    from imgclf.errors import ConfigError, did_you_mean

    params = inspect.signature(exporter.export).parameters
    allowed = [n for n, p in params.items() if p.kind is p.KEYWORD_ONLY and n != "calibration"]
    for key in options or {}:
        if key not in allowed:
            raise ConfigError(
                f"Unknown option '{key}' for export format {exporter.name}."
                f"{did_you_mean(key, allowed)} Options: {', '.join(allowed) or 'none'}."
            )
    return dict(options or {})


def _calibration_images(opened, data, progress, **overrides):
    """Up to CALIBRATION_IMAGES of the train split, evenly spread over it, decoded as the run
    decodes them (the gate's images are held out: calibrating on them would flatter it)."""
    import numpy as np

    from imgclf.api.evaluation import split_images

    data = opened.scored_data(data, purpose="int8 calibration")
    _, images, rows, _, _ = split_images(
        opened.network, data, "train", progress, opened.config, **overrides
    )
    if len(rows) > CALIBRATION_IMAGES:
        rows = rows[np.linspace(0, len(rows) - 1, CALIBRATION_IMAGES).astype(int)]
    return images[rows]


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
