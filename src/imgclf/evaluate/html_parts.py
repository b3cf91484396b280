"""Small HTML pieces for the pages (report.html, compare.html): the page shell and its style,
escaped text, numbers, tables, embedded pictures."""

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


PAGE_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
 color:#1f2933;background:#fff;margin:0;line-height:1.45}
main{max-width:1100px;margin:0 auto;padding:24px 28px 60px}
h1{margin:0 0 4px;font-size:1.7em}h2{margin-top:2.2em;padding-bottom:4px;
 border-bottom:2px solid #e4e7eb}h3{margin-top:1.6em}
.meta,.muted{color:#616e7c;font-size:.9em}nav a{margin-right:14px;color:#2563eb}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:18px 0}
.card{border:1px solid #d9e2ec;border-radius:8px;padding:10px 16px;min-width:170px}
.card .split{font-weight:600;text-transform:uppercase;font-size:.8em;color:#616e7c}
.card .big{font-size:1.8em;font-weight:600}.card .small{font-size:.85em;color:#3e4c59}
table{border-collapse:collapse;margin:8px 0 16px;font-size:.9em}
th,td{border:1px solid #d9e2ec;padding:4px 10px;text-align:left;vertical-align:top}
th{background:#f0f4f8}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.summary td{background:#f8fafc;font-weight:600}
figure{margin:12px 0 20px}figure img{max-width:100%;height:auto;border:1px solid #e4e7eb}
figcaption{color:#616e7c;font-size:.85em}
pre{background:#f8fafc;border:1px solid #e4e7eb;padding:10px;overflow-x:auto;font-size:.85em}
.warn{color:#8d2b0b}.path{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.9em}
"""


def page(title: str, parts: list[str], viewport: bool = True) -> str:
    """A whole self-contained page: ``parts`` (HTML) under the shared style, titled ``title``.
    compare.html has always gone without the mobile viewport line (``viewport=False``)."""
    meta = '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        + (meta if viewport else "")
        + f"<title>{esc(title)}</title>\n<style>{PAGE_CSS}</style>\n</head>\n<body>\n<main>\n"
        + "\n".join(parts)
        + "\n</main>\n</body>\n</html>\n"
    )


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
