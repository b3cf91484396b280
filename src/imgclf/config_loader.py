"""Building a Config: defaults < YAML file < flags / keyword arguments, validated once.

Flat keys (``val_split=0.1``, ``--val-split``) go to the one section that owns them; dotted keys
(``train.lr``) name it. Unknown keys fail with a "did you mean" suggestion.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from imgclf.config import SECTIONS, Config, _Section
from imgclf.errors import ConfigError, did_you_mean
from imgclf.presets import under_preset

# Flat keys two sections share: the model's name is given as ``model=``, so ``name`` is the run's.
_FLAT_OWNER = {"name": "run"}


def build_config(base: dict[str, Any] | None = None, **overrides: Any) -> Config:
    """Validate nested YAML-like ``base`` plus flat or dotted overrides into a Config.

    Flat keyword names (``val_split=0.1``) are routed to the one section that owns them, so
    ``ImageClassifier(val_split=0.1)``, ``--val-split 0.1`` and ``data: {val_split: 0.1}`` agree.
    """
    base = dict(base or {})
    dotted = {key: base.pop(key) for key in list(base) if "." in key}  # 'model.head.pooling: avg'
    merged: dict[str, Any] = {
        k: dict(v) if isinstance(v, dict) else {} if v is None and k in SECTIONS else v
        for k, v in base.items()
    }  # an empty YAML section (``augment:``) means its defaults
    for key, value in {**dotted, **overrides}.items():
        if value is not None:
            _place(merged, key, value)
    _check_keys(merged)
    merged = under_preset(merged)
    try:
        return Config.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_explain(exc)) from None


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file into a plain dict, with clear errors for missing or bad files."""
    loaded = read_yaml_mapping(path, "Config file", "hold a mapping of sections")
    loaded.pop("imgclf_version", None)  # written into a run's config.yaml, not a setting
    return loaded


def read_yaml_mapping(path: str | Path, what: str, expected: str) -> dict[str, Any]:
    """A YAML file that must hold a mapping ({} when empty); a missing file, bad YAML or
    another type is a one-line ConfigError naming ``what`` it is and what it must ``expected``."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} {path} does not exist. Pass an existing YAML file.")
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{what} {path} is not valid YAML: {exc}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{what} {path} must {expected}, received {type(loaded).__name__}.")
    return loaded


def dotted_overrides(config: dict[str, Any] | None = None, **overrides: Any) -> dict[str, Any]:
    """Nested YAML-like ``config`` plus flat or dotted overrides as one {'section.key': value}
    map of the values given (None means not given), e.g. {'model.name': 'mlp'}."""
    flat: dict[str, Any] = {}
    for key, value in (config or {}).items():
        if key in SECTIONS and isinstance(value, dict):
            flat.update({f"{key}.{name}": v for name, v in value.items()})
        else:
            flat[key] = value
    for key, value in overrides.items():
        if value is not None:
            section, name = _route(key, value)
            flat[f"{section}.{name}" if section else name] = value
    return flat


def _route(key: str, value: Any = None) -> tuple[str | None, str]:
    if key == "model" and isinstance(value, str):
        return "model", "name"  # ImageClassifier(model="deep_cnn"), --model deep_cnn
    if "." in key:
        section, name = key.split(".", 1)
        return section, name
    if key in Config.model_fields:
        return None, key
    if key in _FLAT_OWNER:
        return _FLAT_OWNER[key], key
    owners = [s for s in SECTIONS if key in _section_model(s).model_fields]
    return (owners[0], key) if owners else (None, key)


def _place(merged: dict[str, Any], key: str, value: Any) -> None:
    """Put a flat or dotted key's value where its section (and sub-mapping: ``head.pooling``)
    keeps it."""
    section, name = _route(key, value)
    if section is None:
        merged[name] = value
        return
    target = _section_dict(merged, section, key)
    *parents, leaf = name.split(".")
    for parent in parents:
        child = dict(target[parent]) if isinstance(target.get(parent), dict) else {}
        target[parent], target = child, child
    target[leaf] = value


def _section_dict(merged: dict[str, Any], section: str, key: str) -> dict[str, Any]:
    if section not in SECTIONS:
        raise ConfigError(
            f"Unknown config key '{key}': '{section}' is not a section."
            f"{did_you_mean(section, SECTIONS)} Sections: {', '.join(SECTIONS)}."
        )
    values = merged.setdefault(section, {})
    if not isinstance(values, dict):
        raise ConfigError(
            f"Config section '{section}' must be a mapping of keys, received {values!r}. "
            f"Write it as '{section}: {{key: value}}'."
        )
    return values


def _section_model(section: str) -> type[_Section]:
    return Config.model_fields[section].annotation  # type: ignore[return-value]


def _dotted_keys() -> dict[str, str]:
    """Every key a user can write, bare, with the dotted name a suggestion shows."""
    keys = {k: k for k in Config.model_fields}  # the top-level keys and the sections
    for section in SECTIONS:
        for name in _section_model(section).model_fields:
            keys.setdefault(name, f"{section}.{name}")
    return keys


def _suggest(key: str) -> str:
    """' Did you mean 'augment.zoom_range'?' for 'zoom_rang': the key with its section."""
    keys = _dotted_keys()
    close = difflib.get_close_matches(key.rsplit(".", 1)[-1], list(keys), n=1, cutoff=0.6)
    return f" Did you mean '{keys[close[0]]}'?" if close else ""


def _check_keys(merged: dict[str, Any]) -> None:
    for key, value in merged.items():
        if key not in Config.model_fields:
            hint = _suggest(key)
            raise ConfigError(
                f"Unknown config key '{key}'.{hint} Top-level keys: "
                f"{', '.join(Config.model_fields)}; section keys also work flat or dotted."
            )
        if key in SECTIONS and isinstance(value, dict):
            fields = _section_model(key).model_fields
            for name in value:
                if name not in fields:
                    raise ConfigError(
                        f"Unknown key '{name}' in section '{key}'.{did_you_mean(name, fields)} "
                        f"Allowed: {', '.join(fields)}."
                    )


def _explain(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"])
        message = err["msg"].removeprefix("Value error, ")
        received = "" if "received" in message else f" (received {err.get('input')!r})"
        lines.append(f"{where}: {message}{received}")
    return "Invalid config: " + "; ".join(lines)
