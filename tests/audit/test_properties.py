"""Image properties and class balance: the planted bad images are flagged with their kind, the
good pictures are not, and the statistics mean what their names say."""

from __future__ import annotations

import numpy as np
from tests.audit.conftest import relative
from tests.audit.planted import picture

from imgclf.audit.balance import class_balance
from imgclf.audit.issues import PROPERTY_KINDS
from imgclf.audit.properties import pixel_statistics


def test_each_planted_bad_image_gets_its_kind_and_no_good_picture_is_flagged(
    planted, planted_audit
):
    flagged: dict[str, set[str]] = {}
    for issue in planted_audit.issues:
        if issue.kind in PROPERTY_KINDS:
            path = relative(planted, planted_audit.data.names[issue.row])
            flagged.setdefault(path, set()).add(issue.kind)
    for path, kind in planted.flagged.items():
        assert kind in flagged.get(path, set()), (path, flagged.get(path))
    assert set(flagged) == set(planted.flagged)  # the generated pictures pass every check


def test_the_statistics_of_flat_dark_bright_and_sharp_images():
    rng = np.random.default_rng(0)
    black = np.zeros((32, 32, 3), np.uint8)
    white = np.full((32, 32, 3), 255, np.uint8)
    noise = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    ramp = np.repeat(np.linspace(0, 255, 32, dtype=np.uint8)[None, :, None], 32, 0).repeat(3, 2)
    stats = pixel_statistics(np.stack([black, white, noise, ramp]), np.arange(4))
    assert stats.high[0] == 0.0 and stats.low[1] == 1.0
    assert stats.std[0] == 0.0 and stats.std[2] > 0.1
    assert stats.sharpness[2] > 1.0 > 0.1 > stats.sharpness[3]  # noise is all detail


def test_an_upscaled_thumbnail_is_judged_sharp_at_its_own_size():
    from PIL import Image, ImageFilter

    rng = np.random.default_rng(1)
    thumbnail = picture(rng, "circle", side=32).resize((128, 128), Image.Resampling.BICUBIC)
    blurred = picture(rng, "square", side=128).filter(ImageFilter.GaussianBlur(4))
    images = np.stack([np.asarray(thumbnail), np.asarray(blurred)])
    cache_size = pixel_statistics(images, np.arange(2)).sharpness
    own_size = pixel_statistics(images, np.arange(2), np.array([[32, 32], [128, 128]])).sharpness
    assert own_size[0] > 5 * cache_size[0]  # smooth at 128 px, sharp at its own 32
    assert own_size[1] == cache_size[1] < 0.1  # a blurred photo stays blurry


def test_grayscale_and_two_pixel_images_have_statistics():
    grey = np.full((5, 2, 2, 1), 200, np.uint8)
    stats = pixel_statistics(grey, np.arange(5))
    assert np.allclose(stats.low, 200 / 255) and np.isinf(stats.sharpness).all()


def test_balance_counts_per_split_and_the_ratio(planted_audit):
    balance = planted_audit.balance
    assert balance.counts["all"] == {"circles": 24, "squares": 24}
    assert balance.counts["test"] == {"circles": 6, "squares": 5}
    assert balance.ratio == 1.0 and balance.split_ratios["test"] == 1.2
    assert balance.summary() == "class balance: balanced, 24 images per class"


def test_an_imbalanced_and_a_one_class_balance():
    labels, split = np.array([0, 0, 0, 1, 2]), np.array(["train"] * 5, dtype=object)
    usable = np.array([True, True, True, True, False])
    balance = class_balance(labels, ["a", "b", "c"], split, usable)
    assert balance.ratio == float("inf") and balance.to_dict()["imbalance_ratio"] == "inf"
    assert "infinite (a class has no usable image)" in balance.summary()
    two = class_balance(labels[:4], ["a", "b"], split[:4], usable[:4])
    assert two.ratio == 3.0 and two.summary().startswith("class balance: imbalance ratio 3.00")
    one = class_balance(np.zeros(3, int), ["a"], split[:3], np.ones(3, bool))
    assert one.ratio is None and one.summary() == (
        "class balance: one class (a, 3 images), no ratio to give"
    )
