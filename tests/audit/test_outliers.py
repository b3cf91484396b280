"""Outliers: images far from every class in embedding space are flagged (and nothing else), the
fence is Tukey's on the kNN distances, and small data gets one note instead of a guess."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tests.audit.conftest import relative

from imgclf.audit.inputs import AuditData
from imgclf.audit.outliers import fence, find_outliers, outlier_scores


def clustered(rng: np.random.Generator, per_class: int = 40, strangers: int = 3) -> np.ndarray:
    """Unit vectors: three tight classes around random centres, then ``strangers`` lone ones."""
    dim = 64
    centres = rng.normal(size=(3, dim))
    members = [c + 0.35 * rng.normal(size=(per_class, dim)) for c in centres]
    points = np.concatenate([*members, rng.normal(size=(strangers, dim)) * 3])
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


def data_of(n: int) -> AuditData:
    return AuditData(
        source="planted",
        names=[f"x[{i}]" for i in range(n)],
        labels=np.arange(n) % 3,
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
    found, below = find_outliers(data_of(len(embeddings)), embeddings, neighbors=10, iqr=1.7)
    assert sorted(i.row for i in found) == [120, 121, 122]
    assert all(0 < i.score < below < 1 for i in found)


def test_an_unusable_row_is_never_scored():
    embeddings = clustered(np.random.default_rng(1))
    data = data_of(len(embeddings))
    data.usable[121] = False
    found, _ = find_outliers(data, embeddings, neighbors=10, iqr=1.7)
    assert sorted(i.row for i in found) == [120, 122]


def test_the_fence_is_tukeys_on_the_distances_and_a_wider_one_flags_fewer():
    scores = outlier_scores(clustered(np.random.default_rng(2)), neighbors=10)
    distance = -np.log(scores)
    q1, q3 = np.percentile(distance, [25, 75])
    assert fence(scores, 1.7) == pytest.approx(np.exp(-(q3 + 1.7 * (q3 - q1))))
    assert (scores < fence(scores, 10.0)).sum() <= (scores < fence(scores, 1.7)).sum()


def test_too_few_images_give_one_note(planted_audit):
    from imgclf.audit.result import Audit
    from imgclf.audit.runner import _outliers

    audit = Audit(data_of(5), planted_audit.settings)
    _outliers(audit, clustered(np.random.default_rng(3))[:5])
    assert audit.notes == ["outliers: need 10 usable images to compare, the data has 5"]
    assert audit.outlier_fence is None and not audit.issues


def test_the_planted_audit_runs_the_check_and_lists_its_outliers_everywhere(planted, planted_audit):
    outliers = [i for i in planted_audit.issues if i.kind == "outlier"]
    assert planted_audit.outlier_fence is not None
    line = next(s for s in planted_audit.summary_lines() if s.startswith("outliers:"))
    assert line.startswith(f"outliers: {len(outliers)} image")
    in_csv = {relative(planted, r["path"]) for r in planted_audit.rows() if r["kind"] == "outlier"}
    assert in_csv == {relative(planted, planted_audit.data.names[i.row]) for i in outliers}
    page = Path(planted_audit.files["page"]).read_text(encoding="utf-8")
    assert f"Outliers: {len(outliers)}" in page
