"""Batched Keras-style augmentation and the torchvision v2 options, on tiny synthetic batches."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from imgclf.config import AugmentConfig
from imgclf.data.batches.augment import (
    AffineParams,
    BatchAugment,
    BatchMix,
    affine_matrices,
    build_augment,
    build_batch_mix,
    warp,
)
from imgclf.errors import ConfigError, DataError


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture
def batch(seed: int) -> torch.Tensor:
    """Eight random RGB 16x16 uint8 images."""
    return torch.randint(0, 256, (8, 3, 16, 16), dtype=torch.uint8, generator=gen(seed))


@pytest.fixture
def ramp() -> torch.Tensor:
    """One 1-channel 4x4 image whose columns are 0, 10, 20, 30 (asymmetric left-right)."""
    return (torch.arange(4, dtype=torch.uint8) * 10).view(1, 1, 1, 4).expand(1, 1, 4, 4).clone()


def dot(size: int = 9, row: int = 4, col: int = 6) -> torch.Tensor:
    """A black 1-channel image with a single bright pixel."""
    image = torch.zeros(1, 1, size, size)
    image[0, 0, row, col] = 255.0
    return image


def brightest(image: torch.Tensor) -> tuple[int, int]:
    flat = int(image[0, 0].argmax())
    return divmod(flat, image.shape[-1])


def test_build_augment_none_when_nothing_enabled() -> None:
    assert build_augment(AugmentConfig()) is None
    assert build_augment(AugmentConfig(mixup=0.2)) is None
    assert isinstance(build_augment(AugmentConfig(horizontal_flip=True)), BatchAugment)


def test_same_seed_same_batch_different_seed_differs(batch: torch.Tensor) -> None:
    cfg = AugmentConfig(rotation_range=20, zoom_range=0.2, width_shift_range=0.1, shear_range=10)
    augment = build_augment(cfg)
    first, again = augment(batch, gen(1)), augment(batch, gen(1))
    other = augment(batch, gen(2))
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_output_dtype_shape_and_input_untouched(batch: torch.Tensor) -> None:
    original = batch.clone()
    cfg = AugmentConfig(rotation_range=30, horizontal_flip=True, brightness_range=(0.5, 1.5))
    out = build_augment(cfg)(batch, gen(0))
    assert out.dtype == torch.uint8
    assert out.shape == batch.shape
    assert torch.equal(batch, original)


def test_every_image_gets_its_own_rotation(batch: torch.Tensor) -> None:
    twins = batch[:1].expand(4, -1, -1, -1).contiguous()
    out = build_augment(AugmentConfig(rotation_range=45))(twins, gen(0))
    assert not torch.equal(out[0], out[1])
    assert len({out[i].numpy().tobytes() for i in range(4)}) == 4


def test_identity_params_leave_pixels_exact(batch: torch.Tensor) -> None:
    matrices = affine_matrices(AffineParams.identity(len(batch)), 16, 16)
    out = warp(batch.float(), matrices).round().to(torch.uint8)
    assert torch.equal(out, batch)


@pytest.mark.parametrize(
    ("fill_mode", "expected"),
    [
        ("nearest", [20, 30, 30, 30]),
        ("constant", [20, 30, 99, 99]),
        ("reflect", [20, 30, 30, 20]),
        ("wrap", [20, 30, 0, 10]),
    ],
)
def test_fill_modes_at_the_border(ramp: torch.Tensor, fill_mode: str, expected: list[int]) -> None:
    # A shift of +2 columns samples columns 2..5 of [0, 10, 20, 30]: columns 4, 5 are outside.
    params = replace(AffineParams.identity(1), shift_x=torch.tensor([2.0], dtype=torch.float64))
    out = warp(ramp.float(), affine_matrices(params, 4, 4), fill_mode, cval=99.0)
    assert out[0, 0].round().tolist() == [expected] * 4


def test_wrap_interpolates_across_the_seam(ramp: torch.Tensor) -> None:
    params = replace(AffineParams.identity(1), shift_x=torch.tensor([0.5], dtype=torch.float64))
    out = warp(ramp.float(), affine_matrices(params, 4, 4), "wrap")
    assert out[0, 0, 0].tolist() == pytest.approx([5.0, 15.0, 25.0, 15.0])


def test_shift_moves_content_up_and_left_like_keras() -> None:
    params = replace(
        AffineParams.identity(1),
        shift_x=torch.tensor([2.0], dtype=torch.float64),
        shift_y=torch.tensor([1.0], dtype=torch.float64),
    )
    out = warp(dot(row=4, col=6), affine_matrices(params, 9, 9), "constant")
    assert brightest(out) == (3, 4)
    assert out.max().item() == pytest.approx(255.0)


def test_zoom_below_one_magnifies_per_axis() -> None:
    # Keras zoom maps output to input: z = 0.5 doubles the distance from the centre (4, 4).
    params = replace(AffineParams.identity(1), zoom_x=torch.tensor([0.5], dtype=torch.float64))
    out = warp(dot(row=4, col=6), affine_matrices(params, 9, 9), "constant")
    assert brightest(out) == (4, 8)
    params = replace(AffineParams.identity(1), zoom_y=torch.tensor([0.5], dtype=torch.float64))
    out = warp(dot(row=6, col=4), affine_matrices(params, 9, 9), "constant")
    assert brightest(out) == (8, 4)


def test_rotation_by_90_degrees_turns_the_image() -> None:
    params = replace(AffineParams.identity(1), rotation=torch.tensor([90.0], dtype=torch.float64))
    out = warp(dot(row=4, col=6), affine_matrices(params, 9, 9), "constant")
    assert brightest(out) == (6, 4)  # Keras: input (row, col) = R @ output, R = [[c, -s], [s, c]]
    assert out.max().item() == pytest.approx(255.0, abs=1e-3)


def test_shear_follows_keras_matrix() -> None:
    # Keras: row_in = row - sin(s) * col, col_in = cos(s) * col (centred). A dot 2 columns right
    # of the centre is seen from output (+1.15, +2.31), i.e. it moves down, not up.
    params = replace(AffineParams.identity(1), shear=torch.tensor([30.0], dtype=torch.float64))
    out = warp(dot(row=4, col=6), affine_matrices(params, 9, 9), "constant")
    assert brightest(out) == (5, 6)


def test_zoom_config_samples_each_axis_independently(batch: torch.Tensor) -> None:
    params = build_augment(AugmentConfig(zoom_range=(0.5, 1.5))).sample(64, 16, 16, gen(0))
    assert not torch.equal(params.zoom_x, params.zoom_y)
    assert params.zoom_x.min() >= 0.5 and params.zoom_x.max() <= 1.5
    assert params.zoom_x.std() > 0.1


@pytest.mark.parametrize(("option", "dim"), [("horizontal_flip", -1), ("vertical_flip", -2)])
def test_flips_are_exact_and_per_image(ramp: torch.Tensor, option: str, dim: int) -> None:
    image = ramp[0].clone()
    image[0, 0, 0] = 255  # mark the top-left corner: the image is asymmetric both ways
    images = image.expand(64, -1, -1, -1).contiguous()
    out = build_augment(AugmentConfig(**{option: True}))(images, gen(0))
    flipped = torch.tensor([torch.equal(o, image.flip(dim)) for o in out])
    kept = torch.tensor([torch.equal(o, image) for o in out])
    assert bool((flipped | kept).all())
    assert 10 < int(flipped.sum()) < 54


def test_flip_folded_into_affine_matches_plain_flip(ramp: torch.Tensor) -> None:
    params = replace(AffineParams.identity(1), flip_h=torch.tensor([True]))
    out = warp(ramp.float(), affine_matrices(params, 4, 4)).round().to(torch.uint8)
    assert torch.equal(out, ramp.flip(-1))


def test_flips_only_skip_grid_sample(monkeypatch: pytest.MonkeyPatch, batch: torch.Tensor) -> None:
    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("grid_sample called on the flip-only fast path")

    monkeypatch.setattr(torch.nn.functional, "grid_sample", forbidden)
    out = build_augment(AugmentConfig(horizontal_flip=True, vertical_flip=True))(batch, gen(0))
    assert out.dtype == torch.uint8


def test_brightness_scales_each_image_and_clamps() -> None:
    images = torch.full((32, 3, 4, 4), 200, dtype=torch.uint8)
    augment = build_augment(AugmentConfig(brightness_range=(0.5, 1.5)))
    out = augment(images, gen(0))
    values = out[:, 0, 0, 0].float()
    assert values.min() >= 100 and values.max() <= 255
    assert int((out == 255).all(dim=(1, 2, 3)).sum()) > 0  # factors above 1.275 clamp
    assert len(torch.unique(values)) > 10  # one factor per image
    assert bool((out == out[:, :1, :1, :1]).all())  # uniform within an image


@pytest.mark.parametrize(
    "cfg",
    [
        AugmentConfig(randaugment=True),
        AugmentConfig(trivialaugment=True),
        AugmentConfig(random_erasing=1.0),
        AugmentConfig(rotation_range=10, randaugment=True, random_erasing=0.5),
    ],
    ids=["randaugment", "trivialaugment", "erasing", "combined"],
)
def test_v2_options_deterministic_and_leave_global_rng(
    cfg: AugmentConfig, batch: torch.Tensor
) -> None:
    augment = build_augment(cfg)
    torch.manual_seed(7)
    state = torch.get_rng_state()
    first = augment(batch, gen(3))
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(first, augment(batch, gen(3)))
    assert not torch.equal(first, augment(batch, gen(4)))
    assert first.dtype == torch.uint8 and first.shape == batch.shape


def test_random_erasing_erases_a_box_per_image() -> None:
    images = torch.full((6, 3, 16, 16), 255, dtype=torch.uint8)
    out = build_augment(AugmentConfig(random_erasing=1.0))(images, gen(0))
    erased = (out == 0).all(dim=1)
    assert bool(erased.flatten(1).any(dim=1).all())
    assert len({erased[i].numpy().tobytes() for i in range(6)}) == 6


def test_grayscale_batch_through_every_option() -> None:
    images = torch.randint(0, 256, (4, 1, 12, 12), dtype=torch.uint8, generator=gen(0))
    cfg = AugmentConfig(rotation_range=10, fill_mode="wrap", trivialaugment=True, random_erasing=1)
    assert build_augment(cfg)(images, gen(0)).shape == (4, 1, 12, 12)


def test_augment_rejects_float_batch() -> None:
    with pytest.raises(DataError, match="uint8 batch"):
        build_augment(AugmentConfig(horizontal_flip=True))(torch.zeros(2, 3, 4, 4), gen(0))


@pytest.mark.parametrize(("mixup", "cutmix"), [(0.4, 0.0), (0.0, 1.0), (0.4, 1.0)])
def test_mix_gives_soft_labels_summing_to_one(mixup: float, cutmix: float) -> None:
    images = torch.rand(8, 3, 8, 8, generator=gen(0))
    labels = torch.arange(8) % 3
    mix = build_batch_mix(AugmentConfig(mixup=mixup, cutmix=cutmix), num_classes=3)
    state = torch.get_rng_state()
    mixed, soft = mix(images, labels, gen(5))
    assert torch.equal(torch.get_rng_state(), state)
    assert soft.shape == (8, 3) and soft.dtype == torch.float32
    assert torch.allclose(soft.sum(dim=1), torch.ones(8))
    assert mixed.shape == images.shape
    again = mix(images, labels, gen(5))
    assert torch.equal(mixed, again[0]) and torch.equal(soft, again[1])


def test_mixup_blends_images_and_labels_with_the_same_weight() -> None:
    images = torch.stack([torch.zeros(1, 2, 2), torch.ones(1, 2, 2)])
    mixed, soft = BatchMix(mixup=1.0, cutmix=0.0, num_classes=2)(
        images, torch.tensor([0, 1]), gen(0)
    )
    lam = soft[0, 0].item()
    assert 0.0 < lam < 1.0
    assert torch.allclose(mixed[0], torch.full((1, 2, 2), 1 - lam))


def test_build_batch_mix_none_and_errors() -> None:
    assert build_batch_mix(AugmentConfig(), num_classes=3) is None
    with pytest.raises(ConfigError, match="num_classes"):
        build_batch_mix(AugmentConfig(mixup=0.2), num_classes=0)
    mix = build_batch_mix(AugmentConfig(mixup=0.2), num_classes=2)
    with pytest.raises(DataError, match="float images"):
        mix(torch.zeros(2, 3, 4, 4, dtype=torch.uint8), torch.tensor([0, 1]), gen(0))


def test_translate_shifts_whole_pixels_with_mirrored_edges() -> None:
    from imgclf.data.batches.augment import translate

    image = torch.arange(20, dtype=torch.uint8).view(1, 1, 4, 5)
    images = image.expand(64, 1, 4, 5).clone()
    moved = translate(images, 2, gen(0))
    assert moved.dtype == torch.uint8 and moved.shape == images.shape
    seen = set()
    for out in moved[:, 0]:
        # each output is the image moved by (dy, dx) in [-2, 2]: find the offset it matches
        offsets = [
            (dy, dx)
            for dy in range(-2, 3)
            for dx in range(-2, 3)
            if torch.equal(out, _mirror_shift(image[0, 0], dy, dx))
        ]
        assert offsets, out
        seen.add(offsets[0])
    assert len(seen) > 10  # per-image offsets, not one for the batch
    assert torch.equal(translate(images, 2, gen(0)), moved)  # the generator decides


def _mirror_shift(image: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    height, width = image.shape

    def mirror(i: int, size: int) -> int:
        return -i if i < 0 else 2 * (size - 1) - i if i >= size else i

    return torch.stack(
        [
            torch.stack(
                [image[mirror(r + dy, height), mirror(c + dx, width)] for c in range(width)]
            )
            for r in range(height)
        ]
    )


def test_translate_is_enabled_by_its_knob_and_is_cheap_enough_to_build_inline() -> None:
    assert build_augment(AugmentConfig(translate=0)) is None
    cheap = build_augment(AugmentConfig(translate=2, horizontal_flip=True))
    assert cheap is not None and not cheap.costly
    assert build_augment(AugmentConfig(zoom_range=0.1)).costly
    assert build_augment(AugmentConfig(randaugment=True)).costly
    out = cheap(torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8), gen(1))
    assert out.shape == (4, 3, 8, 8) and out.dtype == torch.uint8
