"""The audit's files: audit.json (everything), issues.csv (one row per flagged image and kind)
and audit.html (the page), each written atomically into one folder.

The default folder is a new numbered one, ``<project>/audit/<data>-<n>``, as runs are
``<project>/<model>-<data>-<n>`` and Ultralytics writes ``runs/classify/val2``: an audit is
never written over an earlier one unless a folder is named.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

from imgclf.audit.page import render_page
from imgclf.audit.result import Audit
from imgclf.fileio import atomic_write_text

COLUMNS = ("path", "split", "kind", "score", "given_label", "suggested_label", "group", "detail")


def write_audit(audit: Audit, folder: str | Path) -> dict[str, Path]:
    """Write the three files into ``folder`` (made if missing); their paths are also recorded
    in ``audit.files`` (beside clean.csv's, when written), so audit.json names them."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "report": folder / "audit.json",
        "issues": folder / "issues.csv",
        "page": folder / "audit.html",
    }
    audit.files = {**audit.files, **{name: str(path) for name, path in paths.items()}}
    atomic_write_text(paths["issues"], issues_csv(audit))
    atomic_write_text(paths["page"], render_page(audit))
    atomic_write_text(paths["report"], json.dumps(audit.to_dict(), indent=2))
    return paths


def issues_csv(audit: Audit) -> str:
    """issues.csv's text: a header, then ``audit.rows()``."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(audit.rows())
    return buffer.getvalue()


def new_audit_folder(project: str | Path, data_name: str) -> Path:
    """``<project>/audit/<data>-<n>`` with the first free n (made when the audit is written)."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(data_name).name) or "data"
    parent = Path(project) / "audit"
    number = 1
    while (parent / f"{base}-{number}").exists():
        number += 1
    return parent / f"{base}-{number}"
