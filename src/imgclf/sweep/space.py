"""A sweep's search space, in YAML with the config's own dotted key names.

    train.lr: {log_float: [1.0e-4, 1.0e-2]}
    train.batch_size: [16, 32, 64]            # a list: one of these
    model.head.pooling: [avg, max]
    model.head.dense: [[], [256], [512, 256]]  # lists too (stored as JSON text in Optuna)
    augment.vertical_flip: [false, true]
    train.epochs: {int: [2, 8]}               # also: float, log_int, {choice: [...]}

Every key must be a config key (did-you-mean otherwise); a range needs low <= high and a list
at least one value; every bound and choice must itself be a valid value of its key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imgclf.errors import ConfigError, did_you_mean

RANGES = {"float": (float, False), "log_float": (float, True),
          "int": (int, False), "log_int": (int, True)}  # fmt: skip


@dataclass(frozen=True)
class Param:
    """One axis: a range (``kind`` float or int, maybe log) or a list of choices."""

    key: str
    kind: str  # "float", "int" or "choice"
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()

    def suggest(self, trial) -> Any:
        if self.kind == "choice":
            return decode(trial.suggest_categorical(self.key, self.encoded()))
        if self.kind == "int":
            return trial.suggest_int(self.key, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.key, self.low, self.high, log=self.log)

    def encoded(self) -> list[Any]:
        """The choices as Optuna stores them: lists and mappings (``model.head.dense``) as
        their JSON text, since Optuna's choices must be None, bool, int, float or str."""
        return [encode(choice) for choice in self.choices]

    def describe(self) -> str:
        if self.kind == "choice":
            return "one of " + ", ".join(map(str, self.choices))
        return f"{'log ' if self.log else ''}{self.kind} in [{self.low}, {self.high}]"


@dataclass(frozen=True)
class SearchSpace:
    params: tuple[Param, ...]

    def suggest(self, trial) -> dict[str, Any]:
        """A trial's settings as {dotted key: value}."""
        return {param.key: param.suggest(trial) for param in self.params}

    def grid(self) -> dict[str, list[Any]]:
        """The grid sampler's space: every axis must be a list."""
        ranged = [p.key for p in self.params if p.kind != "choice"]
        if ranged:
            raise ConfigError(
                f"The grid sampler needs a list of values for every key; {', '.join(ranged)} "
                "are ranges. Write them as lists, or use --sampler tpe or random."
            )
        return {p.key: p.encoded() for p in self.params}

    @property
    def keys(self) -> list[str]:
        return [p.key for p in self.params]


def encode(value: Any) -> Any:
    import json

    return json.dumps(value) if isinstance(value, list | dict | tuple) else value


def decode(value: Any) -> Any:
    import json

    if isinstance(value, str) and value[:1] in "[{":
        return json.loads(value)
    return value


def load_space(space: str | Path | dict[str, Any]) -> SearchSpace:
    """The space from a YAML file or a dict, every key and value checked against the schema."""
    if not isinstance(space, dict):
        space = _read(Path(space))
    if not space:
        raise ConfigError("The search space is empty: give at least one key, e.g. train.lr.")
    from imgclf.config import Config
    from imgclf.runs.recording import flatten_config

    known = flatten_config(Config().model_dump(mode="json"))
    params = []
    for key, spec in space.items():
        if key not in known:
            raise ConfigError(
                f"Search space key '{key}' is not a config key.{did_you_mean(key, known)} "
                "Use dotted keys as in the config: train.lr, data.image_size, model.head.pooling."
            )
        param = _param(key, spec)
        _check_values(param)
        params.append(param)
    return SearchSpace(tuple(params))


def _read(path: Path) -> dict[str, Any]:
    from imgclf.config_loader import read_yaml_mapping

    return read_yaml_mapping(path, "Search space file", "map config keys to ranges or lists")


def _param(key: str, spec: Any) -> Param:
    if isinstance(spec, dict) and len(spec) == 1 and "choice" in spec:
        spec = spec["choice"]
    if isinstance(spec, list):
        if not spec:
            raise ConfigError(f"Search space key '{key}' has an empty list: give some values.")
        return Param(key, "choice", choices=tuple(spec))
    kinds = [*RANGES, "choice"]
    if not isinstance(spec, dict) or len(spec) != 1:
        raise ConfigError(
            f"Search space key '{key}' must be a list of values or one of "
            f"{{{'|'.join(kinds)}: ...}}, received {spec!r}."
        )
    (kind, bounds), = spec.items()  # fmt: skip
    if kind not in RANGES:
        raise ConfigError(
            f"Search space key '{key}': unknown kind '{kind}'.{did_you_mean(kind, kinds)} "
            f"Kinds: {', '.join(kinds)}."
        )
    cast, log = RANGES[kind]
    if not (isinstance(bounds, list) and len(bounds) == 2):
        raise ConfigError(f"Search space key '{key}': {kind} needs [low, high], got {bounds!r}.")
    try:
        low, high = (cast(float(bound)) for bound in bounds)
    except (TypeError, ValueError):
        raise ConfigError(f"Search space key '{key}': bounds must be numbers: {bounds}.") from None
    if low > high:
        raise ConfigError(f"Search space key '{key}': low {low} is above high {high}.")
    if log and low <= 0:
        raise ConfigError(f"Search space key '{key}': a log range needs low > 0, got {low}.")
    return Param(key, cast.__name__, low, high, log)


def _check_values(param: Param) -> None:
    """Each bound or choice must be a valid value of its key (the schema says why not)."""
    from imgclf.config_loader import build_config

    values = param.choices if param.kind == "choice" else (param.low, param.high)
    for value in values:
        try:
            build_config(nest({param.key: value}))
        except ConfigError as exc:
            raise ConfigError(
                f"Search space key '{param.key}': {value!r} is not a valid value ({exc})"
            ) from None


def nest(flat: dict[str, Any], into: dict[str, Any] | None = None) -> dict[str, Any]:
    """{'model.head.pooling': 'max'} as {'model': {'head': {'pooling': 'max'}}}, merged into a
    copy of ``into``."""
    import copy

    nested = copy.deepcopy(into or {})
    for key, value in flat.items():
        *path, last = key.split(".")
        node = nested
        for part in path:
            node = node.setdefault(part, {})
        node[last] = value
    return nested
