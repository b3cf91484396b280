"""audit.html: one self-contained page of what the audit found, with the flagged images shown.

The page shell, style and escaping are the run report's (``evaluate/html_parts``); pictures
are thumbnails of the decoded-image cache embedded as data URIs, as report.html embeds its
plots, so the file is the whole page and nothing is decoded again. Everything from the user
(paths, class names) is escaped. Each tile carries its image's path (``data-path``, as
issues.csv prints it), its label and a label issue's suggestion, which the keep / drop /
relabel controls (``controls``: a script inside the page) attach to.
"""

from __future__ import annotations

import base64
import io
from datetime import datetime

import numpy as np

from imgclf._version import __version__
from imgclf.audit.controls import STYLE as CONTROLS_STYLE
from imgclf.audit.controls import decisions_bar, decisions_script
from imgclf.audit.duplicates import DuplicateGroup
from imgclf.audit.issues import KINDS, PROPERTY_KINDS, Issue
from imgclf.audit.result import Audit
from imgclf.evaluate.html_parts import duration, esc, more, num, page, section, table

THUMBNAIL = 128  # px, the longer side of each picture on the page
_STYLE = """<style>
.grid{display:flex;flex-wrap:wrap;gap:10px;margin:8px 0 14px}
.tile{width:136px;font-size:.75em;line-height:1.3;word-break:break-all}
.tile img{width:128px;height:128px;object-fit:contain;background:#f0f4f8;
 border:1px solid #d9e2ec;display:block}
.group{border:1px solid #d9e2ec;border-radius:8px;padding:6px 10px;margin:10px 0}
.group.leak{border-color:#d97706}.group.conflict{border-color:#8d2b0b}
.group h3{margin:.2em 0;font-size:.95em}
</style>"""


def render_page(audit: Audit) -> str:
    """The audit page as a string."""
    thumbs = _Thumbnails(audit.data.images)
    created = datetime.now().astimezone().isoformat(timespec="seconds")
    parts = [_STYLE, CONTROLS_STYLE, decisions_bar(audit, created), _header(audit, created)]
    if "labels" in audit.settings.checks and audit.label_folds:
        parts.append(_labels(audit, thumbs))
    if "duplicates" in audit.settings.checks:
        parts.append(_duplicates(audit, thumbs))
    if audit.outlier_scores is not None:
        parts.append(_outliers(audit, thumbs))
    if audit.balance is not None:
        parts.append(_balance(audit))
    if "properties" in audit.settings.checks:
        parts.append(_properties(audit, thumbs))
    parts += [_unreadable(audit), _settings(audit), decisions_script(audit)]
    return page(f"Data audit: {audit.data.source}", [p for p in parts if p])


class _Thumbnails:
    """JPEG data URIs of cache rows, each made once."""

    def __init__(self, images: np.ndarray) -> None:
        self.images, self.made = images, {}

    def __call__(self, row: int) -> str:
        if row not in self.made:
            from PIL import Image

            pixels = np.asarray(self.images[row])
            picture = Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)
            picture.thumbnail((THUMBNAIL, THUMBNAIL))
            buffer = io.BytesIO()
            picture.save(buffer, format="JPEG", quality=85)
            encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
            self.made[row] = f"data:image/jpeg;base64,{encoded}"
        return self.made[row]


def _tile(audit: Audit, thumbs: _Thumbnails, row: int, note: str = "") -> str:
    data = audit.data
    path = data.names[row]
    name = path.replace("\\", "/").rsplit("/", 1)[-1]
    caption = f"{esc(data.split[row] or '-')} · {esc(data.label_name(row))}"
    extra = f"<br>{esc(note)}" if note else ""
    suggested = next(
        (i.suggested for i in audit.issues if i.row == row and i.kind == "label_issue"), ""
    )
    label = f' data-label="{esc(data.label_name(row))}"'
    label += f' data-suggested="{esc(suggested)}"' if suggested else ""
    return (
        f'<div class="tile" data-path="{esc(path)}"{label}>'
        f'<img src="{thumbs(row)}" alt="{esc(path)}" title="{esc(path)}">'
        f'{caption}{extra}<br><span class="path">{esc(name)}</span></div>'
    )


def _header(audit: Audit, created: str) -> str:
    data = audit.data
    counts = audit.counts()
    cards = "".join(
        f'<div class="card"><div class="split">{esc(kind.replace("_", " "))}</div>'
        f'<div class="big">{num(n)}</div><div class="small">{esc(KINDS[kind].meaning)}</div></div>'
        for kind, n in counts.items()
    )
    summary = "".join(f"<li>{esc(line)}</li>" for line in audit.summary_lines())
    return (
        f"<h1>Data audit: {esc(data.source)}</h1>"
        f'<p class="meta">{num(len(data))} images, {len(data.classes)} classes · imgclf '
        f"{esc(__version__)} · {esc(created)}</p>"
        f'<div class="cards">{cards or "<p>Nothing flagged.</p>"}</div><ul>{summary}</ul>'
    )


def _duplicates(audit: Audit, thumbs: _Thumbnails) -> str:
    groups = audit.groups
    if not groups:
        return section("duplicates", "Duplicates and leaks", "<p>No duplicates found.</p>")
    leaks = "".join(f"<li>{esc(leak.sentence())}</li>" for leak in audit.leaks)
    shown = groups[: audit.settings.max_shown]
    body = (
        (f"<ul>{leaks}</ul>" if leaks else "<p>No copies cross splits.</p>")
        + '<p class="muted">Groups that cross splits first, then those with conflicting labels; '
        "under each image: split, label, and the pHash distance to its closest copy.</p>"
        + "".join(_group(audit, thumbs, group) for group in shown)
        + more(len(groups), len(shown), "groups (all are in issues.csv and audit.json)")
    )
    return section("duplicates", "Duplicates and leaks", body)


def _group(audit: Audit, thumbs: _Thumbnails, group: DuplicateGroup) -> str:
    splits = sorted(set(group.splits), key=group.splits.index)
    crossing = len(splits) > 1
    css = "group" + (" leak" if crossing else "") + (" conflict" if group.conflicting else "")
    title = f"group {group.id}: {len(group.members)} images, " + " → ".join(splits)
    title += ", exact copies" if group.exact else ", altered copies"
    if group.conflicting:
        title += ", conflicting labels " + ", ".join(sorted(set(group.labels)))
    tiles = "".join(
        _tile(audit, thumbs, row, f"distance {group.closest[row]}") for row in group.members
    )
    return f'<div class="{css}"><h3>{esc(title)}</h3><div class="grid">{tiles}</div></div>'


def _balance(audit: Audit) -> str:
    balance = audit.balance
    splits = list(balance.counts)
    rows = [
        [esc(name), *(num(balance.counts[s][name]) for s in splits)] for name in audit.data.classes
    ]
    ratios = [balance.ratio, *(balance.split_ratios[s] for s in splits[1:])]
    rows.append(["imbalance ratio", *(num(r, 2) if r is not None else "—" for r in ratios)])
    numeric = set(range(1, len(splits) + 1))
    body = f"<p>{esc(balance.summary())}</p>" + table(["class", *splits], rows, numeric)
    return section("balance", "Class balance", body)


def _labels(audit: Audit, thumbs: _Thumbnails) -> str:
    found = sorted((i for i in audit.issues if i.kind == "label_issue"),
                   key=lambda i: (i.severity(), i.row))  # fmt: skip
    shown = found[: audit.settings.max_shown]
    tiles = "".join(
        _tile(audit, thumbs, i.row, f"suggested {i.suggested} (p(given) {i.score:.2f})")
        for i in shown
    )
    meaning = KINDS["label_issue"]
    body = (
        f'<p class="muted">{esc(meaning.meaning)}; score: {esc(meaning.score)}, from '
        f"{audit.label_folds}-fold cross-validation of a logistic head on the embeddings "
        f"(it agrees with {audit.label_agreement:.0%} of the given labels out of sample), "
        "ranked by cleanlab; the least backed first.</p>"
        + (f'<div class="grid">{tiles}</div>' if found else "<p>No label was flagged.</p>")
        + more(len(found), len(shown), "images")
    )
    return section("labels", f"Label issues: {len(found)}", body)


def _outliers(audit: Audit, thumbs: _Thumbnails) -> str:
    found = sorted((i for i in audit.issues if i.kind == "outlier"),
                   key=lambda i: (i.severity(), i.row))  # fmt: skip
    shown = found[: audit.settings.max_shown]
    tiles = "".join(_tile(audit, thumbs, i.row, f"score {i.score:.2f}") for i in shown)
    meaning = KINDS["outlier"]
    body = (
        f'<p class="muted">{esc(meaning.meaning)}; score: {esc(meaning.score)} (above 1 is '
        "flagged); the strangest first.</p>"
        + (f'<div class="grid">{tiles}</div>' if found else "<p>No image was flagged.</p>")
        + more(len(found), len(shown), "images")
    )
    return section("outliers", f"Outliers: {len(found)}", body)


def _properties(audit: Audit, thumbs: _Thumbnails) -> str:
    by_kind: dict[str, list[Issue]] = {kind: [] for kind in PROPERTY_KINDS}
    for issue in audit.issues:
        if issue.kind in by_kind:
            by_kind[issue.kind].append(issue)
    parts = []
    for kind, found in by_kind.items():
        if not found:
            continue
        found.sort(key=lambda i: (i.severity(), i.row))
        shown = found[: audit.settings.max_shown]
        tiles = "".join(_tile(audit, thumbs, i.row, f"score {i.score:.3g}") for i in shown)
        meaning = KINDS[kind]
        parts.append(
            f"<h3>{esc(kind.replace('_', ' '))}: {len(found)}</h3>"
            f'<p class="muted">{esc(meaning.meaning)}; score: {esc(meaning.score)}</p>'
            f'<div class="grid">{tiles}</div>' + more(len(found), len(shown), "images")
        )
    body = "".join(parts) or "<p>No image was flagged.</p>"
    return section("properties", "Image properties", body)


def _unreadable(audit: Audit) -> str:
    found = [i for i in audit.issues if i.kind == "unreadable"]
    if not found:
        return ""
    rows = [[f'<span class="path">{esc(audit.data.names[i.row])}</span>', esc(i.detail)]
            for i in found]  # fmt: skip
    return section("unreadable", "Unreadable files", table(["file", "reason"], rows))


def _settings(audit: Audit) -> str:
    settings = audit.settings.model_dump(mode="json")
    rows = [[esc(k), esc(", ".join(v) if isinstance(v, list) else v)] for k, v in settings.items()]
    times = [[esc(k), duration(v)] for k, v in audit.timings.items()]
    notes = "".join(f'<p class="warn">{esc(note)}</p>' for note in audit.notes)
    body = (
        notes
        + table(["setting", "value"], rows)
        + (table(["step", "time"], times) if times else "")
    )
    return section("settings", "Settings", body)
