"""Consoles for people and for logs: the one place that decides how imgclf's output wraps.

On a terminal, rich wraps long lines at word boundaries to the terminal's width. In a file, a
pipe or a CI log nothing is wrapped or cut: a one-line message stays one line whatever the path
length, and ``COLUMNS`` (often unset or 80 there) does not matter.
"""

from __future__ import annotations

import shutil
import sys

from rich.console import Console
from rich.text import Text

from imgclf.notebook import in_notebook

# The width given to rich when the output is not a terminal: wide enough for any line we print,
# so a table is laid out at its natural width and nothing wraps.
UNLIMITED = 1_000_000


def console(stderr: bool = False) -> Console:
    """A console on stdout (or stderr) that wraps only on a terminal.

    Made per use, not at import, so it follows the current ``sys.stdout`` (tests swap it).
    """
    if is_terminal(stderr):
        return Console(stderr=stderr, highlight=False)
    # force_jupyter=False: in a notebook, lines are plain text on the cell's stream, not one
    # rich display per print; no_color: a kernel's FORCE_COLOR would colour them all the same
    return Console(stderr=stderr, highlight=False, soft_wrap=True, width=UNLIMITED,
                   force_jupyter=False, no_color=in_notebook(), force_terminal=False)  # fmt: skip


def is_terminal(stderr: bool = False) -> bool:
    """Whether stdout (or stderr) is a terminal, as rich decides it (FORCE_COLOR counts), and
    not a notebook's cell: a Jupyter kernel sets FORCE_COLOR, but a cell saves every redraw of
    a bar (imgclf's live display there is train/notebook_progress's)."""
    return Console(stderr=stderr).is_terminal and not in_notebook()


def terminal_width(stderr: bool = False) -> int | None:
    """The terminal's width in columns, or None when the output is not a terminal."""
    return shutil.get_terminal_size().columns if is_terminal(stderr) else None


def print_error(message: str) -> None:
    """``Error: message`` on stderr (red on a terminal), never parsed as rich markup."""
    line = Text.assemble(("Error:", "bold red"), " ", str(message))
    console(stderr=True).print(line)


def print_warning(message: str) -> None:
    """A warning line on stderr (yellow on a terminal)."""
    console(stderr=True).print(Text(str(message), style="yellow"))


def print_line(message: str, style: str | None = None) -> None:
    """One line of plain text on stdout; brackets in paths are never taken for markup."""
    console().print(Text(str(message), style=style or ""))


def help_settings() -> dict[str, int]:
    """Click context settings for ``--help``: the terminal's width, or no wrapping at all."""
    width = terminal_width() if sys.stdout is not None else None
    if width is None:
        return {"terminal_width": UNLIMITED, "max_content_width": UNLIMITED}
    return {"max_content_width": width}
