"""Outliers: images far from every class in embedding space are flagged (and nothing else), the
fence is Tukey's on the kNN distances, and small data gets one note instead of a guess."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tests.audit.conftest import relative

from imgclf.audit.inputs import AuditData
from imgclf.audit.outliers import class_distances, find_outliers, outlier_scores


def clustered(rng: np.random.Generator, per_class: int = 40, strangers: int = 3) -> np.ndarray:
    """Unit vectors: three classes of one kind (centres near a shared direction, as photos of
    three animals are), then ``strangers`` lone ones in random directions."""
    dim = 64
    centres = rng.normal(size=dim) + 0.5 * rng.normal(size=(3, dim))
    members = [c + 0.3 * rng.normal(size=(per_class, dim)) for c in centres]
    points = np.concatenate([*members, rng.normal(size=(strangers, dim)) * 3])
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


def data_of(n: int) -> AuditData:
    """``n`` rows; from 120 on, the labels are clustered()'s classes (strangers spread)."""
    return AuditData(
        source="planted",
        names=[f"x[{i}]" for i in range(n)],
        labels=np.arange(n) % 3 if n < 120 else np.r_[np.arange(120) // 40, np.arange(n - 120) % 3],
        classes=["a", "b", "c"],
        split=np.array(["train"] * n, dtype=object),
        usable=np.ones(n, dtype=bool),
        problems={},
        records=[],
        images=np.zeros((n, 4, 4, 3), np.uint8),
        images_id=None,
    )


def test_lone_points_far_from_every_class_are_the_outliers():
    embeddings = clustered(np.random.default_rng(0))
    found, scores, note = find_outliers(data_of(len(embeddings)), embeddings, 5, 0.5)
    assert sorted(i.row for i in found) == [120, 121, 122] and note == ""
    assert all(i.score > 1 for i in found) and (scores[:120] < 1).all()


def test_where_the_classes_overlap_only_the_farthest_are_flagged_and_a_note_says_why():
    """CIFAR-10's thumbnails in Lite0's embedding: 29 % of the images passed the yardstick."""
    from imgclf.audit.outliers import MAX_SHARE

    points = np.random.default_rng(3).normal(size=(300, 16))  # three classes in one cloud
    points = (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)
    found, scores, note = find_outliers(data_of(300), points, 5, 0.5)
    past = int((scores > 1).sum())
    assert past > MAX_SHARE * 300  # what the rule alone would flag
    assert len(found) == 3 and min(i.score for i in found) >= np.quantile(scores, 0.99)
    assert note.startswith(f"outliers: {past:,} images (") and "overlap" in note
    assert "the farthest 1% are flagged" in note


def test_an_unusable_row_is_never_scored():
    embeddings = clustered(np.random.default_rng(1))
    data = data_of(len(embeddings))
    data.usable[121] = False
    found, scores, _ = find_outliers(data, embeddings, 5, 0.5)
    assert sorted(i.row for i in found) == [120, 122] and len(scores) == len(embeddings) - 1


def test_a_class_distance_leaves_the_image_itself_out_even_beside_an_exact_copy():
    points = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    distances = class_distances(points, np.array([0, 0, 1, 1]), k=1)
    assert distances[0, 0] == 0.0  # its copy, not itself
    assert distances[2, 1] == pytest.approx(np.linalg.norm(points[2] - points[3]))
    lone = class_distances(points, np.array([0, 0, 0, 1]), k=3)
    assert np.isinf(lone[:, 1]).all()  # a class of one image is no neighbourhood


def test_a_higher_quantile_flags_fewer():
    embeddings = clustered(np.random.default_rng(2), strangers=6)
    labels = np.r_[np.arange(120) // 40, np.arange(6) % 3]  # the classes, strangers spread
    low = outlier_scores(embeddings, labels, 5, 0.2)
    high = outlier_scores(embeddings, labels, 5, 0.8)
    assert (high > 1).sum() <= (low > 1).sum() and np.allclose(low / high, (low / high)[0])


@pytest.mark.parametrize(
    ("n", "labels", "note"),
    [
        (5, None, "outliers: need 10 usable images to compare, the data has 5"),
        (12, np.zeros(12, dtype=np.int64), "outliers: need two classes to measure against, "
         "the data has one"),
    ],
)  # fmt: skip
def test_data_that_cannot_be_measured_gets_one_note(planted_audit, n, labels, note):
    from imgclf.audit.result import Audit
    from imgclf.audit.runner import _outliers

    data = data_of(n)
    if labels is not None:
        data.labels = labels
    audit = Audit(data, planted_audit.settings)
    _outliers(audit, clustered(np.random.default_rng(3))[:n])
    assert audit.notes == [note]
    assert audit.outlier_scores is None and not audit.issues
    assert not any(line.startswith("outliers:") for line in audit.summary_lines()[:-1])


def test_the_planted_audit_runs_the_check_and_lists_its_outliers_everywhere(planted, planted_audit):
    outliers = [i for i in planted_audit.issues if i.kind == "outlier"]
    assert len(planted_audit.outlier_scores) == len(planted_audit.data.rows)
    line = next(s for s in planted_audit.summary_lines() if s.startswith("outliers:"))
    assert line.startswith(f"outliers: {len(outliers)} image")
    in_csv = {relative(planted, r["path"]) for r in planted_audit.rows() if r["kind"] == "outlier"}
    assert in_csv == {relative(planted, planted_audit.data.names[i.row]) for i in outliers}
    page = Path(planted_audit.files["page"]).read_text(encoding="utf-8")
    assert f"Outliers: {len(outliers)}" in page
