"""The report's data section: counts per class and split, sizes, left-out files, duplicates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from imgclf.evaluate.html_parts import esc, inline_counts, more, num, picture, section, table

MAX_LISTED_FILES = 500
MAX_LISTED_DUPLICATES = 100


def data_section(report: dict[str, Any] | None, samples: dict[str, Path]) -> str:
    pictures = [_samples(samples)] if samples else []
    if not report:
        pictures.append('<p class="muted">No data summary.</p>')
        return section("data", "Data", "\n".join(pictures))
    facts = [
        ("source", esc(report.get("source", "—"))),
        ("usable images", num(report.get("n_images"))),
        ("classes", num(len(report.get("classes") or []))),
        ("imbalance (largest / smallest class)", num(report.get("imbalance_ratio"), 2)),
        ("modes", inline_counts(report.get("modes"))),
        ("formats", inline_counts(report.get("formats"))),
    ]
    parts = [table(["", ""], [[k, v] for k, v in facts], header=False)]
    parts.append(_counts_table(report.get("classes") or [], report.get("counts") or {}))
    parts.append(_sizes(report.get("sizes") or {}))
    parts.append(_warnings(report.get("warnings") or []))
    parts.append(_problems(report.get("problems") or []))
    parts.append(_duplicates(report.get("duplicates") or []))
    return section("data", "Data", "\n".join(p for p in parts + pictures if p))


def _samples(samples: dict[str, Path]) -> str:
    """The sample grid under its own heading, so it never reads as part of the section above."""
    pictures = "".join(picture(name, path) for name, path in samples.items())
    return (
        "<h3>Sample images</h3>"
        '<p class="muted">Usable images taken in turn from each class (all splits), titled with '
        "their label.</p>" + pictures
    )


def _counts_table(classes: list[str], counts: dict[str, dict[str, int]]) -> str:
    """Images per class (rows) and split (columns), with totals."""
    if not counts:
        return ""
    splits = list(counts)
    classes = list(classes) or sorted({c for per in counts.values() for c in per})
    rows, totals = [], [0] * len(splits)
    for name in classes:
        values = [int(counts[s].get(name, 0) or 0) for s in splits]
        totals = [t + v for t, v in zip(totals, values, strict=True)]
        rows.append([esc(name), *map(num, values), num(sum(values))])
    rows.append(
        ["<b>total</b>", *(f"<b>{num(t)}</b>" for t in totals), f"<b>{num(sum(totals))}</b>"]
    )
    numeric = set(range(1, len(splits) + 2))
    return "<h3>Images per class and split</h3>" + table(
        ["class", *map(esc, splits), "total"], rows, numeric=numeric
    )


def _sizes(sizes: dict[str, Any]) -> str:
    if not sizes:
        return ""
    rows = []
    for axis in ("width", "height"):
        stats = sizes.get(axis) or {}
        rows.append([axis, *(num(stats.get(k), 1) for k in ("min", "median", "max"))])
    text = table(["", "min", "median", "max"], rows, numeric={1, 2, 3})
    if sizes.get("most_common"):
        text += f"<p>Most common sizes: {inline_counts(sizes['most_common'])}</p>"
    if sizes.get("smallest_side_under_32"):
        text += f"<p>Images with a side under 32 px: {num(sizes['smallest_side_under_32'])}</p>"
    return "<h3>Image sizes (pixels)</h3>" + text


def _warnings(warnings: list[str]) -> str:
    if not warnings:
        return ""
    items = "".join(f'<li class="warn">{esc(w)}</li>' for w in warnings)
    return f"<h3>Warnings</h3><ul>{items}</ul>"


def _problems(problems: list[dict[str, Any]]) -> str:
    """Files left out of training, with the reason, so users can fix or delete them."""
    if not problems:
        return '<h3>Left-out files</h3><p class="muted">None: every file was usable.</p>'
    rows = [
        [f'<span class="path">{esc(p.get("path", "?"))}</span>', esc(p.get("reason", ""))]
        for p in problems[:MAX_LISTED_FILES]
    ]
    return (
        f"<h3>Left-out files ({len(problems)})</h3>"
        + table(["file", "reason"], rows)
        + more(len(problems), MAX_LISTED_FILES, "files")
    )


def _duplicates(groups: list[dict[str, Any]]) -> str:
    """Groups of identical images; across splits means test leakage, mixed labels mean noise."""
    if not groups:
        return ""
    rows = []
    for group in groups[:MAX_LISTED_DUPLICATES]:
        items = "<br>".join(
            f'<span class="path">{esc(i.get("path", "?"))}</span> '
            f"({esc(i.get('label', '?'))}, {esc(i.get('split') or 'unused')})"
            for i in group.get("items", [])
        )
        flags = [
            text
            for key, text in (
                ("across_splits", "across splits (leakage)"),
                ("conflicting_labels", "conflicting labels"),
            )
            if group.get(key)
        ]
        rows.append([items, f'<span class="warn">{", ".join(flags)}</span>' if flags else ""])
    return (
        f"<h3>Exact duplicates ({len(groups)} group(s))</h3>"
        + table(["images (label, split)", "problem"], rows)
        + more(len(groups), MAX_LISTED_DUPLICATES, "groups")
    )
