"""Small HTML pieces for the report: escaped text, numbers, tables, embedded pictures."""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from imgclf.timefmt import format_duration

IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".svg": "image/svg+xml",
}


def section(anchor: str, heading: str, content: str) -> str:
    return f'<section id="{anchor}">\n<h2>{heading}</h2>\n{content}\n</section>'


def picture(name: str, path: Path) -> str:
    """A picture embedded as a data URI, or a note when the file is missing."""
    try:
        data = base64.b64encode(path.read_bytes()).decode("ascii")
    except OSError:
        return f'<p class="muted">Picture "{esc(name)}" not found at {esc(path)}.</p>'
    mime = IMAGE_TYPES.get(path.suffix.lower(), "image/png")
    return (
        f'<figure><img src="data:{mime};base64,{data}" alt="{esc(name)}">'
        f"<figcaption>{esc(name)}</figcaption></figure>"
    )


def table(
    headers: list[str],
    rows: Iterable[list[str]],
    numeric: set[int] | None = None,
    header: bool = True,
) -> str:
    """An HTML table from already-escaped cells; ``numeric`` columns are right-aligned."""
    numeric = numeric or set()
    head = "<tr>" + "".join(f"<th>{h}</th>" for h in headers) + "</tr>" if header else ""
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>"
            for i, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table>{head}{body}</table>"


def more(total: int, shown: int, what: str) -> str:
    return f'<p class="muted">... and {total - shown} more {what}.</p>' if total > shown else ""


def inline_counts(counts: dict[str, Any] | None) -> str:
    if not counts:
        return "—"
    return ", ".join(f"{esc(k)} ({num(v)})" for k, v in counts.items())


def num(value: Any, digits: int = 4) -> str:
    """Numbers for reading: ints with thousands separators, floats to ``digits`` decimals."""
    if value is None or isinstance(value, bool):
        return "—" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.{digits}f}" if math.isfinite(value) else "—"
    return esc(value)


def finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def duration(seconds: Any) -> str:
    """Seconds in imgclf's one duration format ('0.4s', '9.4s', '2m39s', '1h02m')."""
    return format_duration(seconds)
