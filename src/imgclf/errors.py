"""One error hierarchy. The CLI prints the message of any ImgclfError and exits with code 2.

Messages say what is wrong, where, what is allowed, what was received, and the fix.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class ImgclfError(Exception):
    """Base class of every error imgclf raises on purpose (bad input, bad config, ...)."""

    def _render_traceback_(self) -> list[str]:
        """What IPython and Jupyter show instead of a traceback: the one line the CLI prints
        (the message says what is wrong and the fix; the stack says nothing more)."""
        return [f"{type(self).__name__}: {self}"]


class ConfigError(ImgclfError, ValueError):
    """A configuration value, flag or keyword argument is invalid."""


class DataError(ImgclfError, ValueError):
    """The data cannot be read or used: missing path, empty class, broken table or array."""


class ModelError(ImgclfError, ValueError):
    """A model name, spec, weight file or bundle is invalid."""


class TrainingInterrupted(ImgclfError):
    """Training stopped on Ctrl-C or SIGTERM with its state saved; the CLI exits with 130."""

    exit_code = 130

    def __init__(self, message: str, epoch: int | None = None, batch: int | None = None):
        super().__init__(message)
        self.epoch, self.batch = epoch, batch


def did_you_mean(received: str, allowed: Iterable[str]) -> str:
    """A ' Did you mean 'x'?' suffix for error messages, or '' when nothing is close."""
    close = difflib.get_close_matches(str(received), [str(a) for a in allowed], n=1, cutoff=0.6)
    return f" Did you mean '{close[0]}'?" if close else ""
