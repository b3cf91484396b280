"""The one transient progress bar every room uses (decoding, embedding, lr-find).

On a terminal: a rich bar that disappears when done. In logs and pipes: nothing at all (a
transient bar there would leave blank lines), the callers print their own one-line summaries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def progress_bar(enabled: bool, description: str, total: int) -> Iterator[Callable[..., None]]:
    """Yield ``advance(n=1)``, which moves the bar ``n`` steps (a no-op when not shown)."""
    from imgclf.terminal import console as make_console

    console = make_console()
    if not (enabled and console.is_terminal):
        yield lambda n=1: None
        return
    from rich.progress import Progress

    with Progress(console=console, transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n=1: bar.advance(task, n)
