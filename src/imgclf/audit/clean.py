"""clean.csv (``imgclf audit DATA --write-clean clean.csv``): the usable images less every
flagged one, as a path/label table that imgclf reads back as data (``imgclf train clean.csv``).

Left out: unreadable files, label issues, leaks, every image property flag, every copy but the
first of a duplicate group (members are ordered by split, then row, so the train copy stays)
and every member of a group whose copies carry different labels (which label is right is the
user's call: a decisions file says it). A source with its own splits keeps them in a ``split``
column; otherwise training splits clean.csv as it would the data.

Paths under clean.csv's folder are written relative to it (the table reader reads them from
there), others absolute; the columns are the table reader's defaults (path, label, split).
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import numpy as np

from imgclf.audit.inputs import AuditData
from imgclf.audit.result import Audit
from imgclf.data.formats.files import display_path
from imgclf.errors import ConfigError
from imgclf.fileio import atomic_write_text

COPY_KINDS = ("exact_duplicate", "near_duplicate")  # the first member of a group is kept


def clean_rows(audit: Audit) -> np.ndarray:
    """The usable rows no check flagged (a duplicate group's first member not counted)."""
    firsts = {group.members[0] for group in audit.groups if not group.conflicting}
    flagged = {
        issue.row
        for issue in audit.issues
        if not (issue.kind in COPY_KINDS and issue.row in firsts)
    }
    return np.array([row for row in audit.data.rows if row not in flagged], dtype=np.int64)


def check_target(data: AuditData, target: str | Path) -> None:
    """Before any check runs: clean.csv lists image files (an array source, .npz or a built-in
    set, has none) and is never written over the data's own CSV."""
    if data.paths is None:
        raise ConfigError(
            f"--write-clean lists image files, and {data.source} holds its images in an array. "
            "Audit a folder or a CSV of paths, or leave out --write-clean."
        )
    if Path(target).exists() and Path(data.source).exists():
        if os.path.samefile(target, data.source):
            raise ConfigError(
                f"--write-clean {target} is the data's own CSV: name another file, e.g. clean.csv."
            )


def write_clean(audit: Audit, target: str | Path) -> int:
    """Write clean.csv at ``target`` (its folder made if missing); returns how many images it
    lists (also kept in ``audit.clean``, and its path in ``audit.files``)."""
    data = audit.data
    check_target(data, target)
    target = Path(target)
    rows = clean_rows(audit)
    folder = os.path.abspath(target.parent)
    columns = ["path", "label"] + (["split"] if data.fixed_splits else [])
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows.tolist():
        cells = [_written_path(data.paths[row], folder), data.label_name(row)]
        writer.writerow(cells + ([data.split[row]] if data.fixed_splits else []))
    atomic_write_text(target, buffer.getvalue())
    audit.files["clean"], audit.clean = str(target), len(rows)
    return len(rows)


def _written_path(path: Path, folder: str) -> str:
    """Relative to clean.csv's folder when the image is under it, else absolute."""
    absolute = os.path.abspath(path)
    if absolute.startswith(folder.rstrip(os.sep) + os.sep):
        absolute = os.path.relpath(absolute, folder)
    return display_path(absolute)
