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


@pytest.mark.parametrize("chunk", [300, 2048])
def test_ranking_roughly_in_bf16_first_finds_the_exact_neighbours(monkeypatch, chunk: int) -> None:
    """A bf16 shortlist, then the exact cosines: the same neighbours and cosines as the float32
    search, for clusters of near-copies (cosines 0.99 and more, where bf16 cannot tell them
    apart) and for the rest."""
    monkeypatch.setattr(neighbours, "_CHUNK", chunk)
    centres = _unit(100, 64, seed=3)
    noise = np.random.default_rng(4).normal(scale=0.02, size=(800, 64)).astype(np.float32)
    points = np.concatenate([np.repeat(centres, 8, axis=0) + noise, _unit(400, 64, seed=5)])
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    exact_cosines, exact = most_similar(points, 6, rough=False)
    cosines, found = most_similar(points, 6, rough=True)
    assert np.array_equal(np.sort(found, axis=1), np.sort(exact, axis=1))
    assert np.allclose(cosines, exact_cosines, atol=1e-6)
    among = np.arange(0, 1200, 3)
    assert np.array_equal(
        np.sort(most_similar(points, 5, among, rough=True)[1], axis=1),
        np.sort(most_similar(points, 5, among, rough=False)[1], axis=1),
    )


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
