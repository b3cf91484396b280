"""Label issues: out-of-sample probabilities of a head on the embeddings, ranked by cleanlab;
a planted wrong label is found with its true class suggested, and data that cannot be
cross-validated says why in one note while the other checks run."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from tests.audit.conftest import relative

from imgclf.audit.inputs import AuditData
from imgclf.audit.labels import find_label_issues


def _clusters(labels: list[int], seed: int = 0) -> tuple[AuditData, np.ndarray]:
    """AuditData of ``labels`` whose embeddings sit around one unit vector per true class
    (the true class is the label before a test changes it)."""
    rng = np.random.default_rng(seed)
    labels_array = np.array(labels)
    classes = [f"c{k}" for k in range(labels_array.max() + 1)]
    centres = np.eye(16, dtype=np.float32)[: len(classes)]
    points = centres[labels_array] + rng.normal(0, 0.25, (len(labels), 16)).astype(np.float32)
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    n = len(labels)
    data = AuditData(
        source="clusters", names=[f"{i}.png" for i in range(n)], labels=labels_array.copy(),
        classes=classes, split=np.array(["train"] * n), usable=np.ones(n, dtype=bool),
        problems={}, records=[], images=np.zeros((n, 2, 2, 3), np.uint8), images_id=None,
    )  # fmt: skip
    return data, points


def test_flipped_labels_are_found_with_their_true_class_suggested():
    data, points = _clusters([0] * 40 + [1] * 40 + [2] * 40)
    flipped = [3, 45, 90, 100]
    data.labels[flipped] = (data.labels[flipped] + 1) % 3
    found = find_label_issues(data, points, folds=5, threshold=0.6)
    assert found.folds == 5 and found.notes == [] and found.agreement > 0.9
    assert sorted(issue.row for issue in found.issues) == flipped
    assert {issue.row: issue.suggested for issue in found.issues} == {
        3: "c0", 45: "c1", 90: "c2", 100: "c2"}  # fmt: skip
    assert all(issue.score < 0.2 for issue in found.issues)  # p(given), out of sample


def test_clean_labels_are_not_flagged():
    data, points = _clusters([0] * 30 + [1] * 30)
    assert find_label_issues(data, points, folds=5, threshold=0.6).issues == []


def test_small_classes_use_fewer_folds_and_say_so():
    data, points = _clusters([0] * 20 + [1] * 3)
    found = find_label_issues(data, points, folds=5, threshold=0.6)
    assert found.folds == 3
    assert found.notes == ["labels: 3 folds instead of 5 (class 'c1' has 3 images)"]


@pytest.mark.parametrize(
    ("labels", "note"),
    [
        ([0] * 6, "labels: need two classes to compare, the data has one"),
        ([0] * 6 + [1], "labels: class 'c1' has 1 usable image; cross-validation needs 2 per "
         "class, so no label was checked"),
    ],
)  # fmt: skip
def test_data_that_cannot_be_cross_validated_gets_one_note(labels, note):
    data, points = _clusters(labels)
    found = find_label_issues(data, points, folds=5, threshold=0.6)
    assert (found.issues, found.folds, found.notes) == ([], 0, [note])


def test_a_head_that_cannot_tell_the_classes_apart_says_its_flags_are_unsure():
    data, points = _clusters([0] * 40 + [1] * 40 + [2] * 40)
    rng = np.random.default_rng(1)
    data.labels[:] = rng.permutation(data.labels)  # labels that the features do not back
    found = find_label_issues(data, points, folds=5, threshold=0.6)
    assert found.agreement < 0.5
    [note] = found.notes
    assert note.startswith(f"labels: the out-of-sample head agrees with only {found.agreement:.0%}")
    assert f"then many of the {len(found.issues):,} flagged are hard images" in note


def test_the_planted_wrong_label_is_in_issues_csv_with_a_suggestion(planted, planted_audit):
    with Path(planted_audit.files["issues"]).open(encoding="utf-8") as handle:
        rows = [row for row in csv.DictReader(handle) if row["kind"] == "label_issue"]
    found = {relative(planted, row["path"]): row for row in rows}
    row = found["train/squares/mislabelled_circle04.png"]
    assert (row["given_label"], row["suggested_label"]) == ("squares", "circles")
    assert len(found) <= 3  # 48 usable images: the planted one and at most two look-alikes
    page = Path(planted_audit.files["page"]).read_text(encoding="utf-8")
    assert '<section id="labels">' in page and "suggested circles" in page
    agreement = planted_audit.label_agreement
    assert agreement > 0.85 and f"agrees with {agreement:.0%} of the given labels" in page
    assert not [note for note in planted_audit.notes if note.startswith("labels:")]
