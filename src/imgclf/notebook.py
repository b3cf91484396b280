"""imgclf in a Jupyter notebook: whether we are in one, and the self-contained HTML that rich
displays are made of (tables, a card, an inline PNG: no CDN, no widget extension, so the same
output shows in Jupyter, Colab, Kaggle and VS Code).

Base module: the run, the model, predictions, comparisons and the live training display build
their ``_repr_html_`` from these pieces. Nothing here imports IPython unless a kernel already
has: the CLI never pays for it.
"""

from __future__ import annotations

import base64
import html
import io
import sys
from collections.abc import Iterable, Sequence
from typing import Any

STYLE = (
    "font-family:system-ui,-apple-system,'Segoe UI',sans-serif;font-size:13px;line-height:1.4;"
    "border:1px solid #d0d7de;border-radius:8px;padding:8px 12px;max-width:980px"
)
TABLE = "border-collapse:collapse;font-variant-numeric:tabular-nums;margin:4px 0"
CELL = "padding:2px 10px;text-align:right;border-bottom:1px solid #eaeef2"


def in_notebook() -> bool:
    """Whether this process is a Jupyter kernel (a notebook, Colab, Kaggle, VS Code): its
    IPython shell sends rich displays to a front end. A terminal IPython is not one."""
    if "IPython" not in sys.modules:
        return False
    from IPython import get_ipython

    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def escape(value: Any) -> str:
    return html.escape(str(value), quote=True)


def table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """An HTML table of ``rows`` (already formatted cells), the first column left-aligned."""
    left = CELL.replace("text-align:right", "text-align:left")

    def cells(tag: str, values: Sequence[Any]) -> str:
        return "".join(
            f'<{tag} style="{left if i == 0 else CELL}">{escape(v)}</{tag}>'
            for i, v in enumerate(values)
        )

    body = "".join(f"<tr>{cells('td', row)}</tr>" for row in rows)
    return f'<table style="{TABLE}"><thead><tr>{cells("th", header)}</tr></thead>{body}</table>'


def card(title: str, *parts: str) -> str:
    """A bordered block: a bold title line, then ``parts`` (HTML) in order."""
    inner = "".join(part for part in parts if part)
    return f'<div style="{STYLE}"><div style="font-weight:600">{escape(title)}</div>{inner}</div>'


def line(text: str, colour: str | None = None) -> str:
    """One line of text (escaped), in ``colour`` when given; nothing for no text."""
    if not text:
        return ""
    style = f' style="color:{colour}"' if colour else ""
    return f"<div{style}>{escape(text)}</div>"


def link(path: Any, text: str | None = None) -> str:
    """A link to a local file, relative to the notebook when it lies under its folder (so the
    front end can open it), else its absolute path."""
    from pathlib import Path

    target = Path(path)
    try:
        href = target.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        href = target.resolve().as_uri()
    return f'<a href="{escape(href)}" target="_blank">{escape(text or target)}</a>'


def png_url(data: bytes) -> str:
    """PNG bytes as a data: URL, which an <img> shows as it is."""
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def array_url(pixels) -> str:
    """An (H, W), (H, W, 1) or (H, W, 3) uint8 array as a PNG data: URL."""
    from PIL import Image

    array = pixels[..., 0] if pixels.ndim == 3 and pixels.shape[2] == 1 else pixels
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return png_url(buffer.getvalue())


def png(figure, dpi: int = 72) -> str:
    """A matplotlib figure as an inline <img>."""
    return f'<img src="{png_url(_figure_png(figure, dpi))}" alt="">'


def image(pixels, size: int = 64) -> str:
    """A uint8 image array as a small inline <img> (thumbnails)."""
    return (f'<img src="{array_url(pixels)}" width="{size}" height="{size}" '
            'style="object-fit:contain;image-rendering:pixelated" alt="">')  # fmt: skip


def prepare_kernel() -> None:
    """In a kernel, have matplotlib figures display as PNG wherever they are the last value of
    a cell, whatever backend imgclf chose (Agg, which draws no window): what
    ``%matplotlib inline`` would set up, without asking the user to. And silence tqdm's
    advice to install ipywidgets (a library imgclf imports draws no bar in a notebook)."""
    if not in_notebook():
        return
    import warnings

    warnings.filterwarnings("ignore", message="IProgress not found")
    from IPython import get_ipython
    from matplotlib.figure import Figure

    formatter = get_ipython().display_formatter.formatters["image/png"]
    if not _known(formatter, Figure):
        formatter.for_type(Figure, _figure_png)


def _known(formatter, kind) -> bool:
    try:
        formatter.lookup_by_type(kind)
    except KeyError:
        return False
    return True


def _figure_png(figure, dpi: int | None = None) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi or "figure", bbox_inches="tight")
    return buffer.getvalue()
