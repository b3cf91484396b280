"""report.html: one self-contained page that a user can mail to their team or open offline.

No external CSS, scripts or fonts; pictures are embedded as base64 data URIs, so the single file
is the whole report. Everything that comes from the user (class names, file paths, config
values, notes) is HTML-escaped: a class folder named ``<script>`` is shown, never run.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from pathlib import Path
from typing import Any

from imgclf.evaluate.html_parts import (
    duration,
    esc,
    finite,
    num,
    page,
    picture,
    section,
    table,
)
from imgclf.evaluate.report_data import data_section

_SUMMARY_ROWS = ("macro avg", "weighted avg", "micro avg")
_HISTORY_KEYS = ("epoch", "stage", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "time")
# metrics.json "timings" keys, in the order a run goes through them, and how the report names them
_PHASES = {
    "data": "data (scan + decode)",
    "embed": "embedding",
    "activations": "fine-tune activations",
    "train": "training",
    "evaluate": "evaluation (val/test)",
    "report": "bundle, plots and report",
}


def write_report(path: str | Path, **sections: Any) -> Path:
    """Write the run's HTML page atomically and return its path.

    ``sections`` are render_report's keyword arguments: title, config (the resolved config,
    shown so the run can be reproduced), data_report (``DataReport.to_dict()``), history (one
    dict per epoch), evaluations (``{split: Evaluation.to_dict()}``), plots (``{caption: PNG
    path}``, placed in their sections by caption), timings (seconds per part of the
    run as in metrics.json, with its ``total``; without one the parts are summed), notes and
    efficiency (metrics.json's, under the timings).
    """
    from imgclf.fileio import atomic_write_text

    path = Path(path)
    atomic_write_text(path, render_report(**sections))
    return path


def render_report(
    *,
    title: str,
    config: dict[str, Any],
    data_report: dict[str, Any] | None,
    history: list[dict[str, Any]],
    evaluations: dict[str, dict[str, Any]],
    plots: dict[str, Path],
    timings: dict[str, float],
    notes: list[str] | None = None,
    efficiency: dict[str, Any] | None = None,
) -> str:
    """The report page as a string (``write_report`` without the file), e.g. for a server."""
    plots = {str(name): Path(p) for name, p in plots.items()}
    curves = {k: p for k, p in plots.items() if "curve" in k.lower()}
    samples = {k: p for k, p in plots.items() if "sample" in k.lower() and k not in curves}
    rest = {k: p for k, p in plots.items() if k not in curves and k not in samples}
    body = [
        _header(title, evaluations, timings),
        _notes(notes or []),
        _training(history, curves),
        _evaluation(evaluations, rest),
        data_section(data_report, samples),
        section("config", "Configuration", _config(config)),
        section("timings", "Timings", _timings(timings, efficiency)),
    ]
    return page(title, [part for part in body if part])


# ---------------------------------------------------------------- header and notes


def _header(title: str, evaluations: dict[str, dict[str, Any]], timings: dict[str, float]) -> str:
    from imgclf._version import __version__

    stamp = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    cards = [_metric_card(split, ev) for split, ev in evaluations.items()]
    cards.append(_time_card(timings))
    nav = " ".join(
        f'<a href="#{anchor}">{label}</a>'
        for anchor, label in (
            ("training", "Training"),
            ("evaluation", "Evaluation"),
            ("data", "Data"),
            ("config", "Configuration"),
            ("timings", "Timings"),
        )
    )
    return (
        f"<header>\n<h1>{esc(title)}</h1>\n"
        f'<div class="meta">generated {esc(stamp)} by imgclf {esc(__version__)}</div>\n'
        f"<nav>{nav}</nav>\n"
        f'<div class="cards">{"".join(cards)}</div>\n</header>'
    )


def _metric_card(split: str, ev: dict[str, Any]) -> str:
    """Headline numbers of one split: accuracy big, then macro F1, loss, top-k and size."""
    details = [f"macro F1 {num(_macro_f1(ev))}", f"loss {num(ev.get('loss'))}"]
    if ev.get("ece") is not None:
        details.append(f"ECE {100 * ev['ece']:.1f}%")
    details += [f"{esc(k.replace('_', '-'))} {num(v)}" for k, v in _top_k(ev).items()]
    if ev.get("n_images") is not None:
        details.append(f"{num(ev.get('n_images'))} images")
    clean = ev.get("without_leaks")
    if clean:  # copies of training images score for free: the number without them
        details.append(
            f"<b>{num(clean.get('accuracy'))} without the {num(clean.get('leaked'))} that leak "
            f"from {esc(clean.get('source'))}</b> (see audit.html)"
        )
    return (
        f'<div class="card"><div class="split">{esc(split)}</div>'
        f'<div class="big">{num(ev.get("accuracy"))}</div>'
        f'<div class="small">accuracy</div>'
        f'<div class="small">{"<br>".join(details)}</div></div>'
    )


def _notes(notes: list[str]) -> str:
    if not notes:
        return ""
    items = "".join(f"<li>{esc(note)}</li>" for note in notes)
    return f'<section id="notes"><h2>Notes</h2><ul>{items}</ul></section>'


# ---------------------------------------------------------------- training


def _training(history: list[dict[str, Any]], curves: dict[str, Path]) -> str:
    parts = [picture(name, path) for name, path in curves.items()]
    if history:
        parts.append(
            f"<details><summary>History: {len(history)} epoch(s)</summary>"
            f"{_history_table(history)}</details>"
        )
    if not parts:
        parts.append('<p class="muted">No training history.</p>')
    return section("training", "Training", "\n".join(parts))


def _history_table(history: list[dict[str, Any]]) -> str:
    """One row per epoch; the usual columns first, any other logged keys after them."""
    seen = {key for row in history for key in row}
    keys = [k for k in _HISTORY_KEYS if k in seen]
    keys += sorted(seen - set(keys))
    rows = [[_cell(row.get(key), key) for key in keys] for row in history]
    return table(keys, rows)


# ---------------------------------------------------------------- evaluation


def _evaluation(evaluations: dict[str, dict[str, Any]], plots: dict[str, Path]) -> str:
    parts = []
    for split, ev in evaluations.items():
        parts.append(f"<h3>{esc(split)}: per-class report</h3>")
        parts.append(_class_report_table(ev))
        parts.append(_confused_table(ev))
    confusion = {k: p for k, p in plots.items() if "confusion" in k.lower()}
    mistakes = {k: p for k, p in plots.items() if "mistake" in k.lower()}
    other = {k: p for k, p in plots.items() if k not in confusion and k not in mistakes}
    for group in (confusion, mistakes, other):
        parts += [picture(name, path) for name, path in group.items()]
    if not parts:
        parts.append('<p class="muted">No evaluation: no validation or test images.</p>')
    return section("evaluation", "Evaluation", "\n".join(parts))


def _class_report_table(ev: dict[str, Any]) -> str:
    """Precision, recall, F1 and support per class, then the averages and accuracy."""
    report = ev.get("report") or {}
    classes = ev.get("classes") or [
        k for k, v in report.items() if isinstance(v, dict) and k not in _SUMMARY_ROWS
    ]
    rows = [_class_row(name, report.get(name) or {}) for name in classes]
    summary = [_class_row(k, report[k], "summary") for k in _SUMMARY_ROWS if k in report]
    if isinstance(report.get("accuracy"), int | float):
        summary.insert(0, _summary_accuracy(report["accuracy"], ev.get("n_images")))
    head = "".join(f"<th>{h}</th>" for h in ("class", "precision", "recall", "F1", "support"))
    return f"<table><tr>{head}</tr>{''.join(rows + summary)}</table>"


def _class_row(name: str, values: dict[str, Any], css: str = "") -> str:
    f1 = values.get("f1-score")
    bar = ""
    if isinstance(f1, int | float) and math.isfinite(f1):
        pct = max(0.0, min(100.0, 100 * f1))
        bar = (
            f' style="background:linear-gradient(90deg,#dbeafe {pct:.0f}%,transparent {pct:.0f}%)"'
        )
    cells = (
        f'<td>{esc(name)}</td><td class="num">{num(values.get("precision"))}</td>'
        f'<td class="num">{num(values.get("recall"))}</td>'
        f'<td class="num"{bar}>{num(f1)}</td>'
        f'<td class="num">{num(_count(values.get("support")))}</td>'
    )
    return f'<tr class="{css}">{cells}</tr>' if css else f"<tr>{cells}</tr>"


def _summary_accuracy(accuracy: float, n_images: Any) -> str:
    return (
        '<tr class="summary"><td>accuracy</td><td></td><td></td>'
        f'<td class="num">{num(accuracy)}</td><td class="num">{num(n_images)}</td></tr>'
    )


def _confused_table(ev: dict[str, Any]) -> str:
    pairs = ev.get("most_confused") or []
    if not pairs:
        return '<p class="muted">No confusions: every image was classified correctly.</p>'
    rows = []
    for pair in pairs:
        true, pred, count = (
            (pair.get("true"), pair.get("predicted"), pair.get("count"))
            if isinstance(pair, dict)
            else tuple(pair)
        )
        rows.append([esc(true), esc(pred), num(count)])
    return "<p>Most confused (true &rarr; predicted):</p>" + table(
        ["true", "predicted", "images"], rows, numeric={2}
    )


# ---------------------------------------------------------------- data


# ---------------------------------------------------------------- config and timings


def _config(config: dict[str, Any]) -> str:
    """The resolved config as YAML, the format users write it in."""
    import yaml

    try:
        text = yaml.safe_dump(config, sort_keys=False, allow_unicode=True, default_flow_style=None)
    except yaml.YAMLError:
        text = json.dumps(config, indent=2, default=str)
    return f"<pre>{esc(text.rstrip())}</pre>"


def _timings(timings: dict[str, float], efficiency: dict[str, Any] | None = None) -> str:
    total = _total_seconds(timings)
    if total is None:
        return '<p class="muted">No timings recorded.</p>'
    rows = [[esc(_PHASES.get(n, n)), duration(s)] for n, s in _parts(timings).items()]
    rows.append(["<b>total</b>", f"<b>{duration(total)}</b>"])
    note = f'<p class="muted">{_total_note(timings)}</p>'
    return table(["part", "time"], rows, numeric={1}) + note + _efficiency(efficiency or {})


def _efficiency(efficiency: dict[str, Any]) -> str:
    """The training steps' speed: data and compute images/s, GFLOP/s, share of the peak."""
    parts = []
    if finite(efficiency.get("data_images_per_second")):
        parts.append(f"data {efficiency['data_images_per_second']:,.0f} images/s")
    if finite(efficiency.get("compute_images_per_second")):
        parts.append(f"compute {efficiency['compute_images_per_second']:,.1f} images/s")
    if finite(efficiency.get("train_gflops_per_second")):
        gflops = f"training {efficiency['train_gflops_per_second']:,.1f} GFLOP/s"
        if finite(efficiency.get("percent_of_peak")):
            peak = efficiency["peak_gflops_per_second"]
            gflops += f" ({efficiency['percent_of_peak']:.1f} % of this machine's {peak:,.0f})"
        parts.append(gflops)
    return f'<p class="muted">Efficiency: {"; ".join(parts)}.</p>' if parts else ""


def _time_card(timings: dict[str, float]) -> str:
    """The run's wall time big, its parts under it, and what the total is."""
    total = _total_seconds(timings)
    if total is None:
        return ""
    lines = [f"{esc(_PHASES.get(n, n))} {duration(s)}" for n, s in _parts(timings).items()]
    return (
        '<div class="card"><div class="split">time</div>'
        f'<div class="big">{duration(total)}</div><div class="small">total</div>'
        f'<div class="small">{"<br>".join(lines)}</div>'
        f'<div class="small muted">{_total_note(timings)}</div></div>'
    )


def _total_note(timings: dict[str, float]) -> str:
    if finite(timings.get("total")):  # a run's: every part from data preparation to the report
        return "total: the sum of the parts, from the start of data preparation to the report"
    return "total: the sum of the parts"


def _parts(timings: dict[str, float]) -> dict[str, float]:
    """The measured parts (not the total), the run's own order first, any others after."""
    known = [name for name in _PHASES if name in timings]
    names = known + [name for name in timings if name not in _PHASES and name != "total"]
    return {name: timings[name] for name in names}


def _total_seconds(timings: dict[str, float]) -> float | None:
    """The recorded total, else the sum of the parts (older runs recorded no total)."""
    if finite(timings.get("total")):
        return float(timings["total"])
    values = [float(v) for v in _parts(timings).values() if finite(v)]
    return sum(values) if values else None


# ---------------------------------------------------------------- small HTML helpers


def _cell(value: Any, key: str) -> str:
    """A history value: learning rates in scientific form, epoch times as durations."""
    if key == "lr" and finite(value):
        return f"{value:.3g}"
    if key == "time" and finite(value):
        return duration(value)
    return num(value) if isinstance(value, int | float) or value is None else esc(value)


def _count(value: Any) -> Any:
    """Image counts stored as floats (older metrics.json files) shown as integers."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _macro_f1(ev: dict[str, Any]) -> Any:
    return ((ev.get("report") or {}).get("macro avg") or {}).get("f1-score")


def _top_k(ev: dict[str, Any]) -> dict[str, Any]:
    top = ev.get("top_k") or {}
    return {k: v for k, v in top.items() if k != "top_1"}
