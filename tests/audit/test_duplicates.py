"""Duplicates and leaks on planted data: exact and altered copies are grouped with their
originals, across and within splits, and different pictures of one class are never paired."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageOps
from tests.audit.conftest import relative
from tests.audit.planted import altered, picture

from imgclf.audit.alignment import aligned_similarity
from imgclf.audit.duplicates import candidate_pairs, exact_pairs, find_leaks
from imgclf.audit.embedding import audit_embeddings
from imgclf.config import ModelConfig
from imgclf.data.pipeline.hashing import hash_distance, perceptual_hashes


def _groups(planted, audit) -> list[set[str]]:
    return [{relative(planted, audit.data.names[r]) for r in g.members} for g in audit.groups]


def test_every_planted_copy_is_grouped_with_its_original_and_nothing_else(planted, planted_audit):
    found = _groups(planted, planted_audit)
    assert sorted(map(sorted, found)) == sorted(map(sorted, planted.families))


def test_an_altered_copy_in_test_leaks_from_train(planted, planted_audit):
    leaks = {
        relative(planted, planted_audit.data.names[i.row]): i
        for i in planted_audit.issues
        if i.kind == "leak"
    }
    assert set(leaks) == set(planted.leaks)
    flipped = leaks["test/squares/flipped_square01.jpg"]  # resized 0.8x, mirrored, JPEG 70
    assert flipped.detail.endswith("train/squares/square01.png") and flipped.score > 0.8
    lines = planted_audit.summary_lines()
    assert "leak: 2 test images have near-duplicates in train (1 of them an exact copy)" in lines
    assert "leak: 1 val image has near-duplicates in train" in lines


def test_exact_copies_and_conflicting_labels(planted, planted_audit):
    kinds: dict[str, set[str]] = {}
    for issue in planted_audit.issues:
        kinds.setdefault(issue.kind, set()).add(
            relative(planted, planted_audit.data.names[issue.row])
        )
    assert {"train/circles/circle00.png", "test/circles/exact_circle00.png"} <= kinds[
        "exact_duplicate"
    ]
    assert "test/squares/flipped_square01.jpg" in kinds["near_duplicate"]
    assert kinds["conflicting_labels"] == planted.conflicting
    [conflict] = [g for g in planted_audit.groups if g.conflicting]
    assert conflict.exact and set(conflict.labels) == {"circles", "squares"}


def test_the_closest_different_pictures_stay_apart(planted_audit, audit_cache):
    """Nearest neighbours in embedding space are only candidates: different pictures among
    them, of one class or not, are told apart by the hash."""
    data = planted_audit.data
    family = {r: g.id for g in planted_audit.groups for r in g.members}
    embeddings = audit_embeddings(data, ModelConfig(), cache_dir=audit_cache)  # cached
    a, b, _ = candidate_pairs(embeddings, data.rows, planted_audit.settings.neighbors)
    distance = hash_distance(perceptual_hashes(data.images, data.rows), a, b)
    strangers = np.array(
        [family.get(x, -1) != family.get(y, -2) for x, y in zip(a, b, strict=True)]
    )
    same_class = strangers & (data.labels[a] == data.labels[b])
    assert same_class.sum() > 20
    assert distance[strangers].min() > planted_audit.settings.hash_distance


def test_the_hash_distance_ignores_a_mirror_and_a_crop():
    rng = np.random.default_rng(3)
    original = picture(rng, "square")
    copies = [
        original,
        ImageOps.mirror(original),
        altered(original, scale=1.2, quality=75),
        altered(original, crop=0.08, flip=True, quality=80),  # cropped from one corner
        picture(rng, "square"),  # another picture of the class
    ]
    images = np.stack([np.asarray(im.resize((64, 64))) for im in copies])
    hashes = perceptual_hashes(images, np.arange(5))
    distance = hash_distance(hashes, np.zeros(4, dtype=np.int64), np.arange(1, 5))
    assert distance[0] == 0 and distance[1] <= 6 and distance[2] <= 10
    assert distance[3] > 16
    assert hash_distance(hashes, np.arange(1, 5), np.zeros(4)).tolist() == distance.tolist()


@pytest.mark.parametrize("side", [96, 32])
def test_the_aligned_pixels_tell_a_copy_from_a_look_alike(side):
    """A cropped, resized, mirrored, recoloured and re-encoded copy lines up with its original
    (at a photo's size and at a thumbnail's); a picture a third of another does not, nor
    does another picture of the class; either way round alike."""
    rng = np.random.default_rng(7)
    original, other = picture(rng, "square"), picture(rng, "square")
    pictures = [
        original,
        altered(original, crop=0.08, scale=0.8, flip=True, shift=12, quality=70),
        altered(original, crop=0.05, scale=1.3, quality=60),
        Image.blend(original, other, 0.35),  # the same layout, a third of its details changed
        other,
    ]
    images = np.stack([np.asarray(p.convert("RGB").resize((side, side))) for p in pictures])
    first, rest = np.zeros(4, dtype=np.int64), np.arange(1, 5)
    score = aligned_similarity(images, first, rest)
    assert (score[:2] >= 0.95).all() and score[2] < 0.9 and score[3] < 0.5
    assert aligned_similarity(images, rest, first).tolist() == score.tolist()
    assert aligned_similarity(images, first[:0], rest[:0]).shape == (0,)


def test_min_alignment_decides_which_candidates_are_copies(planted_audit, audit_cache):
    """The setting reaches the rule: asking for pixels that line up perfectly leaves only the
    byte-identical copies grouped; the default groups the altered ones too."""
    from imgclf.audit.duplicates import find_duplicates
    from imgclf.audit.settings import AuditSettings

    data = planted_audit.data
    embeddings = audit_embeddings(data, ModelConfig(), cache_dir=audit_cache)  # cached
    hashes = perceptual_hashes(data.images, data.rows)
    strict = find_duplicates(data, embeddings, hashes, AuditSettings(min_alignment=1.0))
    assert strict.groups and all(group.exact for group in strict.groups)
    found = find_duplicates(data, embeddings, hashes, AuditSettings())
    assert [g.members for g in found.groups] == [g.members for g in planted_audit.groups]


def test_candidate_pairs_are_each_pair_once_with_its_cosine():
    points = np.eye(3, dtype=np.float32)[[0, 0, 1, 2]]  # rows 0 and 1 are the same point
    a, b, similarity = candidate_pairs(points, np.arange(4), neighbors=1)
    pairs = set(zip(a.tolist(), b.tolist(), strict=True))
    assert (0, 1) in pairs and all(x < y for x, y in pairs)
    assert similarity[list(zip(a, b, strict=True)).index((0, 1))] == 1.0


def test_exact_pairs_join_equal_digests_of_the_usable_rows():
    a, b = exact_pairs(["x", "y", "x", "x", "y"], np.array([0, 1, 2, 4]))
    assert list(zip(a.tolist(), b.tolist(), strict=True)) == [(0, 2), (1, 4)]


def test_leaks_put_test_first(planted_audit):
    leaks = find_leaks(planted_audit.groups, [r.digest for r in planted_audit.data.records])
    assert [(leak.split, leak.source) for leak in leaks] == [("test", "train"), ("val", "train")]
    assert [leak.exact for leak in leaks] == [1, 0]


def test_an_image_file_that_cannot_be_decoded_is_left_out_of_the_pairs(planted, planted_audit):
    unreadable = {
        relative(planted, planted_audit.data.names[i.row])
        for i in planted_audit.issues
        if i.kind == "unreadable"
    }
    assert unreadable == planted.unreadable
    paired = {
        relative(planted, planted_audit.data.names[r])
        for g in planted_audit.groups
        for r in g.members
    }
    assert not paired & unreadable
    with Image.open(planted.root / "train/squares/square00.png") as image:  # left untouched
        assert image.size == (96, 96)


def test_the_batched_phash_is_imagehash_bit_for_bit():
    import imagehash

    from imgclf.data.pipeline.hashing import phash

    rng = np.random.default_rng(5)
    pictures = [picture(rng, shape).convert("L").resize((32, 32)) for shape in ["circle"] * 20]
    pictures.append(Image.fromarray(rng.integers(0, 256, (32, 32), dtype=np.uint8)))
    expected = [int(str(imagehash.phash(p)), 16) for p in pictures]
    batched = phash(np.stack([np.asarray(p) for p in pictures]))
    assert [int(h) for h in batched] == expected
