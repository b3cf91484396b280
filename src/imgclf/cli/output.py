"""What train and demo print when a run is done: the scores and the report's path."""

from __future__ import annotations

from pathlib import Path

from imgclf import terminal
from imgclf.results import WARNING, result_lines


def print_result(metrics: dict, run_dir: Path, quiet: bool = False) -> None:
    """The scores and the report's path (the stop reason and the decisions applied too when
    no progress printed them)."""
    for kind, text in result_lines(metrics, run_dir, quiet):
        (terminal.print_warning if kind == WARNING else terminal.print_line)(text)
