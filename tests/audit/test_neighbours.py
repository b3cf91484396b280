"""The similarity search the duplicate and outlier checks share, against a full sort."""

from __future__ import annotations

import numpy as np
import pytest

from imgclf.audit import neighbours
from imgclf.audit.neighbours import distance, most_similar


def _unit(n: int, d: int, seed: int = 0) -> np.ndarray:
    points = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    return points / np.linalg.norm(points, axis=1, keepdims=True)


@pytest.mark.parametrize("chunk", [7, 2048])  # many query blocks, and one
def test_each_row_gets_its_most_similar_first(monkeypatch, chunk: int) -> None:
    monkeypatch.setattr(neighbours, "_CHUNK", chunk)
    points = _unit(50, 16)
    cosines, found = most_similar(points, 4)
    expected = np.argsort(-(points @ points.T), axis=1, kind="stable")[:, :4]
    assert np.array_equal(found, expected)
    assert np.allclose(cosines, np.take_along_axis(points @ points.T, expected, axis=1))
    assert np.array_equal(found[:, 0], np.arange(50))  # each finds itself first (cosine 1)


def test_among_a_subset_indices_point_into_it() -> None:
    points = _unit(40, 8, seed=1)
    among = np.array([3, 9, 20, 33, 38])
    cosines, found = most_similar(points, 2, among=among)
    similarity = points @ points[among].T
    assert np.array_equal(found, np.argsort(-similarity, axis=1, kind="stable")[:, :2])
    assert found.max() < len(among) and cosines.shape == (40, 2)


def test_k_larger_than_the_candidates_is_cut_and_distance_matches_euclid() -> None:
    points = _unit(5, 3, seed=2)
    cosines, found = most_similar(points, 10)
    assert found.shape == (5, 5)
    euclid = np.linalg.norm(points[:, None] - points[found], axis=2)
    assert np.allclose(distance(cosines), euclid, atol=1e-3)
