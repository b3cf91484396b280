"""The quick leak check looks for altered copies only where the hash tells pictures apart: in
photos (and the planted pictures) random pairs hash far apart, in small digits they do not."""

from __future__ import annotations

import numpy as np

from imgclf.audit.hashing import perceptual_hashes
from imgclf.audit.quick import QUICK_DISTANCE, chance_distance


def test_digits_hash_alike_and_generated_pictures_do_not():
    from sklearn.datasets import load_digits

    digits = (load_digits().images * 16).clip(0, 255).astype(np.uint8)[..., None]
    rows = np.arange(len(digits))
    assert chance_distance(perceptual_hashes(digits, rows, crops=False), rows) < 3 * QUICK_DISTANCE


def test_planted_pictures_are_told_apart(planted_audit):
    data = planted_audit.data
    hashes = perceptual_hashes(data.images, data.rows, crops=False)
    assert chance_distance(hashes, data.rows) >= 3 * QUICK_DISTANCE


def test_too_few_pictures_to_pair_count_as_told_apart():
    images = np.zeros((1, 8, 8, 1), np.uint8)
    rows = np.arange(1)
    assert chance_distance(perceptual_hashes(images, rows, crops=False), rows) == 64
