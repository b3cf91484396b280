"""Run: what ``imgclf.api.train`` returns, a finished run and where it lies."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imgclf.config import Config
from imgclf.models.network import ImageModel
from imgclf.runtime import Runtime


@dataclass
class Run:
    """A finished run: its folder, config, best model, history and final metrics.

    ``path`` is None on a process that writes no run folder (a non-main rank); ``metrics`` then
    holds the run's epochs and stop reason but no scores, which the main process computes.
    """

    path: Path | None
    config: Config
    model: ImageModel
    history: list[dict[str, Any]]
    metrics: dict[str, Any]
    runtime: Runtime = field(default_factory=Runtime)
    note: str | None = None  # what a resume that found nothing to add said (it wrote nothing)

    @property
    def classes(self) -> list[str]:
        return self.model.classes

    @property
    def report(self) -> Path | None:
        """report.html, the page to open."""
        return None if self.path is None else self.path / "report.html"
