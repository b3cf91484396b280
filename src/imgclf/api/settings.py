"""Settings: defaults < YAML file or dict < keyword overrides, one validated Config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic.fields import FieldInfo

from imgclf.config import Config
from imgclf.config_loader import build_config, load_yaml


def make_config(config: str | Path | dict | Config | None = None, **overrides: Any) -> Config:
    """Defaults < YAML file or dict < keyword overrides, validated once."""
    if isinstance(config, Config):
        base = config.model_dump()
    elif isinstance(config, str | Path):
        base = load_yaml(config)
    else:
        base = dict(config or {})
    return build_config(base, **overrides)


def requested_settings(
    config: str | Path | dict | Config | None, overrides: dict[str, Any]
) -> dict[str, Any]:
    """The settings a call asks for, as {'section.key': value}, only those given (a resume
    compares them with the run's own)."""
    from imgclf.config_loader import dotted_overrides

    if isinstance(config, str | Path):
        config = load_yaml(config)
    elif isinstance(config, Config):
        config = config.model_dump(exclude_unset=True)
    return dotted_overrides(config, **overrides)


def schema_default(key: str) -> str | bool:
    """The config schema's default of ``key`` ('train.epochs', 'seed') as --help shows it, or
    False (shown as nothing) when the default is None: the schema is the one source of truth."""
    value = _field(key).get_default(call_default_factory=True)
    if value is None:
        return False
    if isinstance(value, tuple) and len(set(value)) == 1:
        value = value[0]  # image_size (28, 28) reads 28
    return str(value)


def setting_type(key: str) -> Any:
    """The schema's type of ``key``: for a set of choices its Literal, which a CLI option takes
    as its own type (click then lists and checks the choices)."""
    return _field(key).annotation


def setting_help(key: str) -> str:
    """The schema's description of ``key`` (what its choices mean), for --help."""
    return _field(key).description or ""


def _field(key: str) -> FieldInfo:
    section, _, name = key.rpartition(".")
    fields = (
        Config.model_fields[section].annotation.model_fields if section else Config.model_fields
    )
    return fields[name]
