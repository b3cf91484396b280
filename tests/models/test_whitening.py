"""The whitening stem: its filters decorrelate the training images' patches, it is fitted the
same way every time from the seed, and it is refused where it cannot be one."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from imgclf.errors import ModelError
from imgclf.models.layers import build_stack
from imgclf.models.whitening import PatchWhitening, whiten_from_data


def _images(n: int = 200, seed: int = 0) -> np.ndarray:
    """Smooth colour images (neighbouring pixels and channels correlated), NHWC uint8."""
    rng = np.random.default_rng(seed)
    noise = torch.from_numpy(rng.normal(size=(n, 1, 12, 12)).astype(np.float32))
    smooth = F.interpolate(noise, size=(16, 16), mode="bilinear")
    colour = torch.cat([smooth, 0.8 * smooth, -0.5 * smooth], 1)
    colour += 0.2 * torch.from_numpy(rng.normal(size=(n, 3, 16, 16)).astype(np.float32))
    return (colour * 40 + 128).clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()


def _stem(filters: int = 24) -> PatchWhitening:
    layers = [{"type": "conv", "filters": filters, "kernel": 2, "init": "whiten"}]
    net, _ = build_stack(layers, (3, 16, 16), 2)
    return net[0]


def test_the_fitted_filters_whiten_the_patches_and_centre_them() -> None:
    images = _images()
    stem = _stem()
    assert whiten_from_data(stem, images, np.arange(len(images)), seed=0)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    with torch.no_grad():
        out = stem(x).permute(0, 2, 3, 1).reshape(-1, 24).double()
    half = out[:, :12]  # the negatives repeat these
    covariance = torch.cov(half.T)
    # unit variance and no correlation, except where EPS damps a direction the data lacks
    assert torch.allclose(covariance.diagonal()[:6], torch.ones(6, dtype=torch.double), atol=0.05)
    off = covariance - torch.diag(covariance.diagonal())
    assert off.abs().max() < 0.05
    assert out.mean(0).abs().max() < 1e-3
    assert torch.allclose(out[:, 12:], -half, atol=1e-4)


def test_the_same_seed_fits_the_same_filters_and_a_smaller_stem_takes_the_top_directions():
    images = _images()
    a, b, small = _stem(), _stem(), _stem(filters=8)
    for stem in (a, b, small):
        whiten_from_data(stem, images, np.arange(len(images)), seed=3)
    assert torch.equal(a.weight, b.weight)
    assert torch.allclose(small.weight[:4], a.weight[:4]) and torch.allclose(
        small.weight[4:], -a.weight[:4]
    )


def test_nothing_to_fit_without_a_whitening_layer() -> None:
    net, _ = build_stack([{"type": "conv", "filters": 4}], (3, 16, 16), 2)
    before = net[0].weight.clone()
    assert not whiten_from_data(net, _images(10), np.arange(10), seed=0)
    assert torch.equal(before, net[0].weight)


@pytest.mark.parametrize(
    "layers",
    [
        [
            {"type": "conv", "filters": 4},
            {"type": "conv", "filters": 8, "kernel": 1, "init": "whiten"},
        ],
        [{"type": "conv", "filters": 7, "kernel": 2, "init": "whiten"}],
        [{"type": "conv", "filters": 26, "kernel": 2, "init": "whiten"}],
    ],
    ids=["not-first", "odd", "more-than-the-patch-has"],
)
def test_a_whitening_layer_where_it_cannot_be_one_is_refused(layers) -> None:
    with pytest.raises(ModelError, match=r"init whiten\) must be the first layer.*up to (8|24) "):
        build_stack(layers, (3, 16, 16), 2)


def test_a_training_session_fits_the_stem_on_its_training_images(tmp_path) -> None:
    from imgclf.config_loader import build_config
    from imgclf.train.session import prepare_training

    images = np.concatenate([_images(40, seed=1), _images(40, seed=2)[..., ::-1]])
    images = np.ascontiguousarray(np.pad(images, ((0, 0), (8, 8), (8, 8), (0, 0)), "reflect"))
    labels = np.repeat([0, 1], 40)
    cfg = build_config({}, model="fast_cifar", seed=7, cache_dir=str(tmp_path))
    setup = prepare_training((images, labels), cfg, progress=False)
    stem = setup.model.features[0]
    assert isinstance(stem, PatchWhitening)
    fitted = copy.deepcopy(stem)
    torch.nn.init.zeros_(fitted.weight)
    whiten_from_data(fitted, images, setup.train_data.train, 7, setup.model.preprocess)
    assert torch.allclose(stem.weight, fitted.weight) and torch.allclose(stem.bias, fitted.bias)
