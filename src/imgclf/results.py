"""The lines a finished run ends with: each split's scores, a loud warning when a budget cut the
run or its test split leaks, the stop reason, and where the report is. The CLI prints them; the
notebook's live display ends with them."""

from __future__ import annotations

from pathlib import Path

SCORES, WARNING = "scores", "warning"


def result_lines(metrics: dict, run_dir: Path | None, quiet: bool = False) -> list[tuple[str, str]]:
    """(kind, text) pairs, in order: kind is 'scores' or 'warning' (printed loudly)."""
    lines: list[tuple[str, str]] = []
    if quiet and metrics.get("decisions"):
        lines.append((SCORES, metrics["decisions"]["summary"]))
    for split in ("val", "test"):
        if split in metrics:
            m = metrics[split]
            ece = f", ECE {100 * m['ece']:.1f}%" if m.get("ece") is not None else ""
            lines.append((SCORES, f"{split}: accuracy {m['accuracy']:.4f}, macro F1 "
                                  f"{m['report']['macro avg']['f1-score']:.4f}, "
                                  f"loss {m['loss']:.4f}{ece}"))  # fmt: skip
            if m.get("without_leaks"):
                lines.append((WARNING, m["without_leaks"]["summary"]))
    if (metrics.get("budget") or {}).get("cut"):  # never the normal end of a budgeted run
        lines.append((WARNING, f"{metrics['stop_reason']}: the run trained less than planned"))
    elif metrics.get("stop_reason") and quiet:
        lines.append((SCORES, f"stopped: {metrics['stop_reason']}"))
    if run_dir is not None:
        lines.append((SCORES, f"Report: {(Path(run_dir) / 'report.html').resolve()}"))
    return lines
