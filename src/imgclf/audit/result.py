"""The Audit: every check's findings over one data source, as plain data, and the ways they
are said: a few lines for the terminal, the rows of issues.csv, the dict of audit.json.

The writer and the page read only this and the issue kinds (``issues.py``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from imgclf.audit.balance import Balance
from imgclf.audit.duplicates import DuplicateGroup, Leak
from imgclf.audit.inputs import AuditData
from imgclf.audit.issues import KINDS, PROPERTY_KINDS, Issue
from imgclf.audit.settings import AuditSettings


@dataclass
class Audit:
    """Every finding of one audit, over the rows of ``data``."""

    data: AuditData
    settings: AuditSettings
    issues: list[Issue] = field(default_factory=list)
    groups: list[DuplicateGroup] = field(default_factory=list)
    leaks: list[Leak] = field(default_factory=list)
    balance: Balance | None = None
    label_folds: int = 0  # the folds the label check used (0: it did not run)
    label_agreement: float | None = None  # the share of given labels its head agrees with
    outlier_scores: np.ndarray | None = None  # per usable row (None: the check did not run)
    cached: list[str] = field(default_factory=list)  # results read from the audit's store
    notes: list[str] = field(default_factory=list)  # why a check could not run; how sure it is
    timings: dict[str, float] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    clean: int | None = None  # images clean.csv lists (written with --write-clean)

    def counts(self) -> dict[str, int]:
        """Flagged images per kind, in KINDS order (kinds with none left out)."""
        found = Counter(issue.kind for issue in self.issues)
        return {kind: found[kind] for kind in KINDS if found[kind]}

    def rows(self) -> list[dict[str, Any]]:
        """issues.csv as dicts: kinds in KINDS order, the worst first within a kind."""
        order = {kind: i for i, kind in enumerate(KINDS)}
        ranked = sorted(self.issues, key=lambda i: (order[i.kind], i.severity(), i.row))
        return [self._row(issue) for issue in ranked]

    def _row(self, issue: Issue) -> dict[str, Any]:
        data = self.data
        return {
            "path": data.names[issue.row],
            "split": data.split[issue.row],
            "kind": issue.kind,
            "score": "" if issue.score is None else round(float(issue.score), 4),
            "given_label": data.label_name(issue.row),
            "suggested_label": issue.suggested,
            "group": "" if issue.group is None else issue.group,
            "detail": issue.detail,
        }

    def __repr__(self) -> str:
        found = ", ".join(f"{kind} {n}" for kind, n in self.counts().items()) or "nothing flagged"
        return f"Audit({self.data.source}: {int(self.data.usable.sum()):,} images; {found})"

    def _repr_html_(self) -> str:
        """The summary, flagged images per kind, the first rows of issues.csv and links to
        the audit's files, for a notebook."""
        from imgclf import notebook

        lines = "".join(notebook.line(text) for text in self.summary_lines())
        rows = self.rows()[:10]
        keys = ["path", "split", "kind", "score", "given_label", "suggested_label"]
        table = notebook.table(keys, [[row[k] for k in keys] for row in rows]) if rows else ""
        links = " · ".join(notebook.link(path, name) for name, path in self.files.items())
        return notebook.card("Audit", lines, table, f"<div>{links}</div>" if links else "")

    def summary_lines(self) -> list[str]:
        """A few lines for the terminal: what was read, then what each check found."""
        data = self.data
        splits = Counter(s for s in data.split[data.usable] if s)
        shares = " / ".join(f"{name} {splits[name]:,}" for name in ("train", "val", "test"))
        lines = [
            f"audited {data.source}: {int(data.usable.sum()):,} images, "
            f"{len(data.classes)} classes ({shares})"
        ]
        counts = self.counts()
        if "labels" in self.settings.checks and self.label_folds:
            n = counts.get("label_issue", 0)
            lines.append(
                f"label issues: {n} image{'s' if n != 1 else ''} whose label the others do not "
                f"back ({self.label_folds}-fold out-of-sample, cleanlab)"
            )
        if "duplicates" in self.settings.checks:
            lines += _duplicate_lines(self.groups, self.leaks)
        if self.outlier_scores is not None:
            n = counts.get("outlier", 0)
            lines.append(
                f"outliers: {n} image{'s' if n != 1 else ''} farther from every class than "
                "most images are from a wrong one"
            )
        if self.balance is not None:
            lines.append(self.balance.summary())
        if "properties" in self.settings.checks:
            lines.append(_property_line(counts))
        if counts.get("unreadable"):
            lines.append(f"unreadable: {counts['unreadable']} files (left out of every check)")
        return lines + self.notes

    def to_dict(self) -> dict[str, Any]:
        """audit.json: the settings, counts, leaks, groups, balance, every issue and the notes."""
        data = self.data
        return {
            "source": data.source,
            "n_images": len(data),
            "n_usable": int(data.usable.sum()),
            "classes": data.classes,
            "settings": self.settings.model_dump(mode="json"),
            "counts": self.counts(),
            "leaks": [leak.to_dict() for leak in self.leaks],
            "groups": [group.to_dict(data) for group in self.groups],
            "balance": self.balance.to_dict() if self.balance is not None else None,
            "label_agreement": self.label_agreement,
            "notes": self.notes,
            "kinds": {kind: k._asdict() for kind, k in KINDS.items()},
            "issues": self.rows(),
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "read_from_cache": self.cached,
            "files": self.files,
        }


def _duplicate_lines(groups: list[DuplicateGroup], leaks: list[Leak]) -> list[str]:
    if not groups:
        return ["duplicates: none found"]
    exact = sum(group.exact for group in groups)
    images = sum(len(group.members) for group in groups)
    lines = [
        f"duplicates: {len(groups)} group{'s' if len(groups) > 1 else ''} ({exact} exact, "
        f"{len(groups) - exact} with altered copies), {images} images"
    ]
    lines += [f"leak: {leak.sentence()}" for leak in leaks]
    conflicting = sum(group.conflicting for group in groups)
    if conflicting:
        groups_text = "1 group" if conflicting == 1 else f"{conflicting} groups"
        lines.append(f"conflicting labels: {groups_text} of copies carry different labels")
    return lines


def _property_line(counts: dict[str, int]) -> str:
    found = [f"{counts[k]} {k.replace('_', ' ')}" for k in PROPERTY_KINDS if counts.get(k)]
    return f"image properties: {', '.join(found) if found else 'none flagged'}"
