"""The Python API. The CLI calls these functions; notebooks call them directly.

Every function takes the data plus config keys as keyword arguments (the same names as the
CLI flags and the YAML keys), or a ``config`` file / dict underneath them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from imgclf.config import Config
from imgclf.config_loader import build_config, load_yaml
from imgclf.data.inspect import DataReport
from imgclf.data.prepare import PreparedData, prepare_data
from imgclf.data.preview import sample_images, save_image_grid
from imgclf.data.source import SPLITS
from imgclf.data.sources import DataLike, same_source
from imgclf.errors import ConfigError, did_you_mean

if TYPE_CHECKING:
    from imgclf.train.lr_find import LRFinderResult


def make_config(config: str | Path | dict | Config | None = None, **overrides: Any) -> Config:
    """Defaults < YAML file or dict < keyword overrides, validated once."""
    if isinstance(config, Config):
        base = config.model_dump()
    elif isinstance(config, str | Path):
        base = load_yaml(config)
    else:
        base = dict(config or {})
    return build_config(base, **overrides)


def load_data(
    data: DataLike,
    config: str | Path | dict | Config | None = None,
    progress: bool = True,
    **overrides: Any,
) -> PreparedData:
    """Read, scan, split and decode ``data`` once into the cache, ready for a batch loader."""
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
        from imgclf.export.bundle import load_bundle

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


def evaluate_model(
    model,
    data: DataLike,
    split: str | None = None,
    progress: bool = True,
    config: str | Path | dict | Config | None = None,
    **overrides: Any,
):
    """Evaluate a trained ImageModel on ``data``, decoded with the model's own preprocessing.

    Exactly the images of the split asked for are scored:
    - the data the run trained on (``config`` is that run's config and names the same source):
      the run's own split, made again with its seed (None: test, else val);
    - other data with split folders, a split column or an official test set: that split
      (None: test when it has one, else every image, named ``data``);
    - other plain data: every usable image, named ``data``; asking it for a split is an error.
    Class names must be among the model's.
    """
    from imgclf.errors import DataError
    from imgclf.evaluate.metrics import evaluate_predictions
    from imgclf.models.inference import predict_rows

    if split is not None and split not in SPLITS:
        raise ConfigError(
            f"Unknown split '{split}'.{did_you_mean(split, SPLITS)} Allowed: train, val, test; "
            "omit it for the test split, or every image of data that has no splits."
        )
    run_cfg = make_config(config) if config is not None else None
    own = run_cfg is not None and same_source(data, run_cfg.data.source)
    spec = model.preprocess_spec
    base = run_cfg.model_dump() if own else {"data": {"val_split": 0.0, "test_split": 0.0}}
    color = "grayscale" if spec.channels == 1 else "rgb"
    cfg = make_config(base, image_size=spec.image_size, fit=spec.fit, color_mode=color, **overrides)
    prepared = prepare_data(data, cfg, progress=progress)
    unknown = sorted(set(prepared.classes) - set(model.classes))
    if unknown:
        raise DataError(
            f"The data has classes the model does not know: {', '.join(unknown)}. "
            f"Model classes: {', '.join(model.classes)}."
        )
    name, rows = _evaluation_rows(prepared, split, own, data)
    remap = np.array([model.classes.index(label) for label in prepared.classes])
    probs = predict_rows(model, prepared.cache.images, rows, cfg.train.eval_batch_size, progress)
    labels = remap[prepared.source.labels[rows]]
    return evaluate_predictions(labels, probs, model.classes, name)


def _evaluation_rows(
    prepared: PreparedData, split: str | None, own: bool, data: DataLike
) -> tuple[str, np.ndarray]:
    """The name and rows of the split to score (see evaluate_model)."""
    from imgclf.errors import DataError

    splits = prepared.splits.as_dict()
    if own:
        chosen = split or ("test" if len(splits["test"]) else "val")
        if len(splits[chosen]) == 0:
            raise DataError(
                f"The run kept no images in its {chosen} split ({chosen}_split was 0 and the data "
                f"has no {chosen} folder or column). Pass --split with another split, or other "
                "data with --data."
            )
        return chosen, splits[chosen]
    usable = np.sort(np.concatenate(list(splits.values())))
    if prepared.source.splits is None:
        if split is not None:
            raise DataError(
                f"{data_label(data)} has no split folders or split column, so it has no "
                f"'{split}' split. Omit --split to evaluate all {len(usable)} images."
            )
        return "data", usable
    if split is None:
        return ("test", splits["test"]) if len(splits["test"]) else ("data", usable)
    if len(splits[split]) == 0:
        present = ", ".join(name for name, rows in splits.items() if len(rows)) or "none"
        raise DataError(
            f"{data_label(data)} has no usable images in a '{split}' split. Splits it has: "
            f"{present}."
        )
    return split, splits[split]


def data_label(data: DataLike) -> str:
    """How messages name the data: its path or name, or its Python type."""
    return str(data) if isinstance(data, str | Path) else type(data).__name__


def lr_find(
    data: DataLike,
    config: str | Path | dict | Config | None = None,
    stage: str | None = None,
    num_steps: int = 100,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    out: str | Path | None = None,
    progress: bool = True,
    **overrides: Any,
) -> LRFinderResult:
    """The learning-rate range test of a run's first stage (or ``stage``) on ``data``.

    The data, model and stages are set up exactly as ``train`` would; nothing is written but
    ``out``. For a pretrained backbone the first stage is the head on cached embeddings;
    ``stage="finetune"`` fits the head first, then tests the unfrozen network.

    Args:
        stage: a stage name of the run (``train``, ``head``, ``finetune``); None: the first.
        num_steps: batches to train (at least 5), the lr growing exponentially over them.
        start_lr: the first learning rate.
        end_lr: the last learning rate (the test stops earlier if the loss diverges).
        out: folder for ``lr_find.png`` and ``lr_find.csv``; None writes nothing.
        progress: show progress bars.
        **overrides: config keys, e.g. ``model="cnn", batch_size=64, image_size=128``.

    Returns:
        An LRFinderResult: ``suggestion``, ``minimum``, ``steepest`` and the curve.
    """
    from imgclf.train.lr_find import check_range, lr_range_test
    from imgclf.training import prepare_training

    cfg = make_config(config, **overrides)
    check_range(num_steps, start_lr, end_lr)
    setup = prepare_training(data, cfg, progress=progress)
    result = lr_range_test(
        setup.model, setup.stages, cfg, stage, num_steps, start_lr, end_lr, progress=progress
    )
    if out is not None:
        write_lr_find(result, out)
    return result


def write_lr_find(result: LRFinderResult, out: str | Path) -> dict[str, Path]:
    """Write ``lr_find.png`` (the curve) and ``lr_find.csv`` (one row per step) into ``out``."""
    from imgclf.evaluate.lr_find_plot import plot_lr_find
    from imgclf.fileio import atomic_write_text

    out = Path(out)
    csv = out / "lr_find.csv"
    atomic_write_text(csv, result.to_frame().to_csv(index=False))
    return {"plot": plot_lr_find(result, out / "lr_find.png"), "csv": csv}


def default_inspect_dir(data: DataLike) -> Path:
    """runs/inspect/<a file-system-safe name for the data>."""
    name = Path(str(data)).name if isinstance(data, str | Path) else type(data).__name__
    return Path("runs") / "inspect" / (re.sub(r"[^A-Za-z0-9._-]+", "_", name) or "data")
