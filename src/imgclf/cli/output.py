"""What train and demo print when a run is done: the scores and the report's path."""

from __future__ import annotations

from pathlib import Path

from imgclf import terminal


def print_result(metrics: dict, run_dir: Path, quiet: bool = False) -> None:
    """The scores and the report's path (the stop reason and the decisions applied too when
    no progress printed them)."""
    if quiet and metrics.get("decisions"):
        terminal.print_line(metrics["decisions"]["summary"])
    for split in ("val", "test"):
        if split in metrics:
            m = metrics[split]
            ece = f", ECE {100 * m['ece']:.1f}%" if m.get("ece") is not None else ""
            terminal.print_line(
                f"{split}: accuracy {m['accuracy']:.4f}, macro F1 "
                f"{m['report']['macro avg']['f1-score']:.4f}, loss {m['loss']:.4f}{ece}"
            )
            if m.get("without_leaks"):
                terminal.print_warning(m["without_leaks"]["summary"])
    if (metrics.get("budget") or {}).get("cut"):  # never the normal end of a budgeted run
        terminal.print_warning(f"{metrics['stop_reason']}: the run trained less than planned")
    elif metrics.get("stop_reason") and quiet:
        terminal.print_line(f"stopped: {metrics['stop_reason']}")
    terminal.print_line(f"Report: {(Path(run_dir) / 'report.html').resolve()}")
