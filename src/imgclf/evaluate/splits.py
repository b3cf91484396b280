"""Which images an evaluation scores, so that a score always names the images behind it:

- the data the run trained on: the run's own split, made again with its seed (None: test,
  else val);
- other data with split folders, a split column or an official test set: that split (None:
  test when it has one, else every image, named ``data``);
- other plain data: every usable image, named ``data``; asking it for a split is an error.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from imgclf.config import Config
from imgclf.config_loader import build_config
from imgclf.data.formats.resolve import DataLike, same_source
from imgclf.data.pipeline.prepare import PreparedData
from imgclf.data.source import SPLITS
from imgclf.errors import ConfigError, DataError, did_you_mean


def check_split(split: str | None) -> None:
    """An unknown split name is an error before any data is read."""
    if split is not None and split not in SPLITS:
        raise ConfigError(
            f"Unknown split '{split}'.{did_you_mean(split, SPLITS)} Allowed: train, val, test; "
            "omit it for the test split, or every image of data that has no splits."
        )


def scoring_config(
    spec, data: DataLike, run_config: Config | None, **overrides: Any
) -> tuple[Config, bool]:
    """(the config to read ``data`` with, whether it is the run's own data). The run's own data
    is split as the run split it; other data keeps only its own splits. Either way the images
    are decoded as the model's preprocessing ``spec`` says, and scored with the run's
    test-time augmentation."""
    own = run_config is not None and same_source(data, run_config.data.source)
    base = run_config.model_dump() if own else {"data": {"val_split": 0.0, "test_split": 0.0}}
    if run_config is not None and not own:  # other data is scored as the run scores, too
        base["train"] = {"tta": run_config.train.tta}
    color = "grayscale" if spec.channels == 1 else "rgb"
    settings = dict(image_size=spec.image_size, fit=spec.fit, color_mode=color, **overrides)
    return build_config(dict(base), **settings), own


def class_indices(prepared: PreparedData, model_classes: list[str]) -> np.ndarray:
    """The model's index of each of the data's classes; a class the model lacks is an error."""
    unknown = sorted(set(prepared.classes) - set(model_classes))
    if unknown:
        raise DataError(
            f"The data has classes the model does not know: {', '.join(unknown)}. "
            f"Model classes: {', '.join(model_classes)}."
        )
    return np.array([model_classes.index(label) for label in prepared.classes])


def scored_rows(
    prepared: PreparedData, split: str | None, own: bool, label: str
) -> tuple[str, np.ndarray]:
    """The name and rows of the split to score (see the module's rules).

    Args:
        own: the data is the run's own (``scoring_config``).
        label: how errors name the data.
    """
    splits = prepared.splits.as_dict()
    if own:
        return _own_split(splits, split)
    usable = np.sort(np.concatenate(list(splits.values())))
    if prepared.source.splits is None:
        if split is not None:
            raise DataError(
                f"{label} has no split folders or split column, so it has no "
                f"'{split}' split. Omit --split to evaluate all {len(usable)} images."
            )
        return "data", usable
    if split is None:
        return ("test", splits["test"]) if len(splits["test"]) else ("data", usable)
    if len(splits[split]) == 0:
        present = ", ".join(name for name, rows in splits.items() if len(rows)) or "none"
        raise DataError(
            f"{label} has no usable images in a '{split}' split. Splits it has: {present}."
        )
    return split, splits[split]


def _own_split(splits: dict[str, np.ndarray], split: str | None) -> tuple[str, np.ndarray]:
    """The run's own split asked for (None: test, else val); an empty one is an error."""
    chosen = split or ("test" if len(splits["test"]) else "val")
    if len(splits[chosen]) == 0:
        raise DataError(
            f"The run kept no images in its {chosen} split ({chosen}_split was 0 and the data "
            f"has no {chosen} folder or column). Pass --split with another split, or other "
            "data with --data."
        )
    return chosen, splits[chosen]
