"""The kinds of issue the audit flags, what each score measures, and the Issue: one flagged
image and one kind (an image with two problems has two issues).

issues.csv, audit.json and audit.html list every kind from this table, in its order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple


class Kind(NamedTuple):
    """What an issue kind means, what its score measures, and which end of it is worse."""

    meaning: str
    score: str
    worse: str = "high"  # "high": a higher score is the likelier problem; "low": a lower one


_COPY_SCORE = "1 - pHash distance to its closest copy / 64"
KINDS: dict[str, Kind] = {
    "unreadable": Kind("cannot be read or decoded (detail says why)", "none"),
    "label_issue": Kind(
        "a given label the other images do not back (suggested: the likeliest class)",
        "out-of-sample probability of the given label",
        "low",
    ),
    "exact_duplicate": Kind("the same file bytes as another image", _COPY_SCORE),
    "near_duplicate": Kind(
        "an altered copy of another image: re-encoded, resized, cropped, flipped or recoloured",
        _COPY_SCORE,
    ),
    "leak": Kind(
        "a val or test image with a copy in an earlier split (train; val for test)",
        "1 - pHash distance to its closest copy there / 64",
    ),
    "conflicting_labels": Kind("one of a group of copies that carry different labels", _COPY_SCORE),
    "outlier": Kind(
        "far from every class in embedding space: off-topic, blank or unlike the rest",
        "distance to the nearest class / the median image's distance to a wrong class",
    ),
    "dark": Kind("too dark", "99th-percentile luminance, 0-1", "low"),
    "bright": Kind("too bright (washed out)", "1st-percentile luminance, 0-1"),
    "uniform": Kind("almost one flat colour", "luminance standard deviation, 0-1", "low"),
    "blurry": Kind("little fine detail for its contrast", "Laplacian std / luminance std", "low"),
    "tiny": Kind("an original side shorter than min_side", "the shorter original side, px", "low"),
    "odd_aspect": Kind("far from square", "long side / short side"),
}
DUPLICATE_KINDS = ("exact_duplicate", "near_duplicate", "leak", "conflicting_labels")
PROPERTY_KINDS = ("dark", "bright", "uniform", "blurry", "tiny", "odd_aspect")


@dataclass(frozen=True)
class Issue:
    """One flagged image and why: the row, the kind (a key of KINDS), its score, the duplicate
    group it belongs to, a short detail (a reason, the copy it leaks from) and, for a label
    issue, the suggested label."""

    row: int
    kind: str
    score: float | None = None
    group: int | None = None
    detail: str = ""
    suggested: str = ""

    def severity(self) -> float:
        """Sorts the likeliest problem of a kind first (closest copies, darkest images)."""
        if self.score is None:
            return 0.0
        return -self.score if KINDS[self.kind].worse == "high" else self.score
