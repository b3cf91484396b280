"""Export formats: a string-keyed registry of exporters, as recipes are registered.

An exporter writes one format into a folder and keeps the file only when it passes that
format's own parity gate on real images (else it raises ModelError and keeps nothing). It is
registered with the optional extra it needs, so "not installed" is one check and one message
(``models/extras.py``). ``api.export`` picks an exporter by name; ``imgclf export --help``
lists them (``format_names``, without importing the exporters: they need torch). A new format
is a module with ``@register_exporter("name", ...)``, named in ``BUILTIN_MODULES`` with its
names in ``BUILTIN_FORMATS``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from imgclf.errors import ConfigError, did_you_mean

if TYPE_CHECKING:  # importing imgclf.models imports torch; the registry stays cheap
    from imgclf.models.extras import Extra

# (model, out, images, labels, split, layout, **options) -> the parity record
ExportFn = Callable[..., dict[str, Any]]
# imported on first use (registering needs torch); BUILTIN_FORMATS: the names they register,
# listed without importing them
BUILTIN_MODULES = ("imgclf.export.onnx", "imgclf.export.onnx_int8")
BUILTIN_FORMATS = ("onnx", "onnx-int8")


@dataclass(frozen=True)
class Exporter:
    """A registered format: its export function (which runs its gate) and what it needs."""

    name: str
    export: ExportFn
    extra: Extra
    filename: str  # the file it keeps in the output folder
    label: str  # the format's name in messages: "ONNX"
    description: str = ""
    calibrated: bool = False  # it takes ``calibration=``: training images (quantizers)

    def require(self) -> None:
        """One ConfigError naming the extra if a module the format needs is missing."""
        self.extra.require(f"{self.label} export")


_EXPORTERS: dict[str, Exporter] = {}


def register_exporter(
    name: str,
    *,
    extra: Extra,
    filename: str,
    label: str | None = None,
    description: str = "",
    calibrated: bool = False,
) -> Callable[[ExportFn], ExportFn]:
    """Register ``export(model, out, images, labels, split, layout, **options)`` as format
    ``name``; ``calibrated`` ones also get ``calibration=`` (the run's training images)."""

    def decorate(export: ExportFn) -> ExportFn:
        if name in _EXPORTERS:
            raise ValueError(f"exporter '{name}' is already registered")
        summary = description or (export.__doc__ or "").strip().split("\n")[0]
        _EXPORTERS[name] = Exporter(
            name, export, extra, filename, label or name, summary, calibrated
        )
        return export

    return decorate


def list_exporters() -> list[str]:
    """Names of the registered export formats, sorted."""
    _import_builtins()
    return sorted(_EXPORTERS)


def format_names() -> list[str]:
    """The built-in formats and those registered so far, sorted, importing no exporter: for
    ``--help``, which must not wait for torch."""
    return sorted({*BUILTIN_FORMATS, *_EXPORTERS})


def get_exporter(name: str) -> Exporter:
    """The exporter registered as ``name``; an unknown name is one ConfigError."""
    formats = list_exporters()
    if name not in _EXPORTERS:
        raise ConfigError(
            f"Unknown export format '{name}'.{did_you_mean(name, formats)} "
            f"Formats: {', '.join(formats)}."
        )
    return _EXPORTERS[name]


def _import_builtins() -> None:
    for module in BUILTIN_MODULES:
        importlib.import_module(module)
