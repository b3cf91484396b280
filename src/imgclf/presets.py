"""Presets: named sets of settings a user gets with one word (``--preset fast``).

A preset sits between the schema's defaults and what the user gives: defaults < preset < YAML
file < flags / keyword arguments, so any of its settings can still be changed. ``fast`` is an
alias that picks the fast recipe for the data: ``fast_mnist`` for single-channel images,
``fast_cifar`` for colour ones. A fast preset is defined by the work it does (its epochs),
measured to reach the tutorial's accuracy over seeds, so a slower CPU takes longer rather than
scoring worse (a time budget in the preset cut CIFAR-10 to part of an epoch on a CPU without
AMX: issue 23). A budget the user gives (``--budget``) is a constraint the step planner fills.

Each preset's settings are backed by measurements in BENCHMARKS.md ("Speed").
"""

from __future__ import annotations

import copy
from typing import Any

from imgclf.errors import ConfigError, did_you_mean

ALIASES = ("fast",)

_PRESETS: dict[str, dict[str, Any]] = {
    "fast_cifar": {
        "model": {"name": "fast_cifar"},
        "augment": {"horizontal_flip": True, "translate": 2},
        "train": {
            "optimizer": "sgd",
            "lr": 0.1,
            "momentum": 0.9,
            "nesterov": True,
            "weight_decay": 5e-4,
            "schedule": "onecycle",
            "batch_size": 96,
            "eval_batch_size": 1024,
            "label_smoothing": 0.2,
            "precision": "auto",
            "tta": "flip",
            "epochs": 1,
        },
    },
    "fast_mnist": {
        "model": {"name": "fast_mnist"},
        "augment": {"translate": 2},
        "train": {
            "optimizer": "adamw",
            "lr": 3e-3,
            "weight_decay": 5e-2,
            "schedule": "onecycle",
            "batch_size": 128,
            "eval_batch_size": 1024,
            "label_smoothing": 0.1,
            "precision": "auto",
            "epochs": 2,
        },
    },
}


def list_presets() -> list[str]:
    """The preset names, aliases first."""
    return [*ALIASES, *sorted(_PRESETS)]


def resolve_preset(name: str, channels: int | None = None, color_mode: str = "auto") -> str:
    """The concrete preset ``name`` stands for: an alias picks by the data's ``channels``
    (None: unknown, then by ``color_mode``; colour unless it says grayscale).

    Raises:
        ConfigError: an unknown name, with the known ones.
    """
    name = str(name).strip().lower()
    if name in _PRESETS:
        return name
    if name not in ALIASES:
        raise ConfigError(
            f"Unknown preset '{name}'.{did_you_mean(name, list_presets())} "
            f"Presets: {', '.join(list_presets())}."
        )
    grayscale = channels == 1 or (channels is None and color_mode == "grayscale")
    return "fast_mnist" if grayscale else "fast_cifar"


def preset_values(name: str) -> dict[str, Any]:
    """The nested settings of concrete preset ``name`` (a fresh copy)."""
    return copy.deepcopy(_PRESETS[resolve_preset(name)])


def under_preset(merged: dict[str, Any]) -> dict[str, Any]:
    """The user's nested settings ``merged`` laid over their preset's, if they name one: a
    setting the user gives wins."""
    name = merged.get("preset")
    if not name:
        return merged
    data = merged.get("data") if isinstance(merged.get("data"), dict) else {}
    concrete = resolve_preset(name, color_mode=str(data.get("color_mode", "auto")))
    out = dict(merged, preset=concrete)
    for section, settings in preset_values(concrete).items():
        given = merged.get(section)
        out[section] = {**settings, **(given if isinstance(given, dict) else {})}
    return out
