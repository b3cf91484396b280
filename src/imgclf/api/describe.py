"""Looking before training: the data (inspect, load_data) and a model's layers (summarize)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imgclf.api.settings import make_config

if TYPE_CHECKING:  # the CLI imports this module at start: the data room only when used
    from imgclf.config import Config
    from imgclf.data.formats.resolve import DataLike
    from imgclf.data.pipeline.inspect import DataReport
    from imgclf.data.pipeline.prepare import PreparedData


def load_data(
    data: DataLike,
    config: str | Path | dict | Config | None = None,
    progress: bool = True,
    **overrides: Any,
) -> PreparedData:
    """Read, scan, split and decode ``data`` once into the cache, ready for a batch loader."""
    from imgclf.data.pipeline.prepare import prepare_data

    cfg = make_config(config, **overrides)
    return prepare_data(data, cfg, decode=True, progress=progress)


def inspect(
    data: DataLike,
    out: str | Path | None = None,
    config: str | Path | dict | Config | None = None,
    grid: bool = True,
    progress: bool = True,
    **overrides: Any,
) -> DataReport:
    """Scan ``data`` and report its classes, splits, image facts and problems.

    Args:
        data: folder, CSV, .npz, built-in set name, DataFrame or (images, labels).
        out: folder for ``inspect.json`` and ``samples.png``; None writes nothing.
        config: a YAML file, dict or Config under the keyword overrides.
        grid: draw the 5x5 sample grid.
        progress: show progress bars.
        **overrides: config keys, e.g. ``val_split=0.1, seed=3, data_dir="..."``.
    """
    from imgclf.data.pipeline.prepare import prepare_data
    from imgclf.data.views.preview import sample_images, save_image_grid

    cfg = make_config(config, **overrides)
    prepared = prepare_data(data, cfg, decode=False, progress=progress)
    report = prepared.report
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        if grid:
            images, titles = sample_images(prepared.source, prepared.records, seed=cfg.seed)
            report.files["sample grid"] = str(save_image_grid(images, titles, out / "samples.png"))
        report.files["report"] = str(out / "inspect.json")
        (out / "inspect.json").write_text(json.dumps(report.to_dict(), indent=2), encoding="utf-8")
    return report


def summarize(
    model: str | Path,
    input_size: int | tuple[int, int] | None = None,
    classes: int = 10,
    channels: int = 3,
    depth: int = 1,
    config: str | Path | dict | Config | None = None,
    **overrides: Any,
):
    """The Keras-style summary of a model: a recipe or timm name, a YAML file or a bundle.

    Weights are not loaded (the counts do not depend on them), so this works offline for any
    architecture.
    """
    from imgclf.errors import ConfigError
    from imgclf.models.network import build_model
    from imgclf.models.recipes import is_recipe
    from imgclf.models.summary import model_summary

    if isinstance(channels, bool) or channels not in (1, 3):
        raise ConfigError(
            f"channels must be 1 (grayscale) or 3 (RGB), received {channels!r}. "
            "Pass --channels 1 or --channels 3 (Python: channels=1 or 3)."
        )
    path = Path(model)
    if path.is_dir():
        from imgclf.models.bundle import load_bundle

        return model_summary(load_bundle(path), depth=depth)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        cfg = make_config(path, **overrides)
    else:
        cfg = make_config(config, model=str(model), **overrides)
    size = (input_size, input_size) if isinstance(input_size, int) else input_size
    size = size or cfg.data.image_size
    if size is None and (cfg.model.name == "custom" or is_recipe(cfg.model.name)):
        raise ConfigError(
            f"{'Recipe' if is_recipe(cfg.model.name) else 'Model'} '{cfg.model.name}' needs an "
            "input size: pass --input-size N (Python: input_size=N), e.g. 28 for MNIST-like data."
        )
    names = [str(i) for i in range(classes)]
    network = build_model(cfg.model, names, channels, size, load_weights=False)
    return model_summary(network, depth=depth)


def data_name(data: DataLike) -> str:
    """A short name for the data in run names and reports."""
    return Path(str(data)).name if isinstance(data, str | Path) else type(data).__name__


def data_label(data: DataLike) -> str:
    """How messages name the data: its path or name, or its Python type."""
    return str(data) if isinstance(data, str | Path) else type(data).__name__


def default_inspect_dir(data: DataLike) -> Path:
    """runs/inspect/<a file-system-safe name for the data>."""
    name = Path(str(data)).name if isinstance(data, str | Path) else type(data).__name__
    return Path("runs") / "inspect" / (re.sub(r"[^A-Za-z0-9._-]+", "_", name) or "data")


def render_data_report(report: DataReport):
    """The inspect report as a rich renderable: counts per class and split, facts, problems."""
    from imgclf.data.views.report_table import render_data_report as render

    return render(report)
