"""Optional dependencies: an extra's pip name and the modules it brings, one check, one error.

Every use of an extra (an export format, the embed-once pass on ONNX Runtime, predict's
backend) asks here, so "not installed" reads the same everywhere and names the fix. The check
finds modules without importing them: importing imgclf stays cheap.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from imgclf.errors import ConfigError


@dataclass(frozen=True)
class Extra:
    """``pip install 'imgclf[name]'`` and the modules it installs."""

    name: str
    modules: tuple[str, ...]

    def missing(self, *modules: str) -> str | None:
        """The first of ``modules`` (default: all of the extra's) that is not installed."""
        for module in modules or self.modules:
            if importlib.util.find_spec(module) is None:
                return module
        return None

    def installed(self, *modules: str) -> bool:
        """Whether ``modules`` (default: all of the extra's) are installed."""
        return self.missing(*modules) is None

    def require(self, purpose: str, *modules: str) -> None:
        """Raise a one-line ConfigError naming the package and the extra if one is missing.

        Args:
            purpose: what needs it, the start of the message ("ONNX export").
            modules: the ones ``purpose`` needs (default: all of the extra's).
        """
        package = self.missing(*modules)
        if package is not None:
            raise ConfigError(
                f"{purpose} needs the {package} package: pip install 'imgclf[{self.name}]'."
            )


ONNX = Extra("onnx", ("onnx", "onnxruntime", "onnxscript"))
AUDIT = Extra("audit", ("cleanlab",))  # imgclf audit's label issues
EXPLAIN = Extra("explain", ("captum",))  # class activation maps (predict --explain)
