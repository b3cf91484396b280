"""BatchNorm folded into convolutions: the same outputs, the model itself untouched, and the
original kept wherever folding would change what the network computes."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from imgclf.config_loader import build_config
from imgclf.models.fold import fold_batchnorm, inference_copy
from imgclf.models.inference import predict_rows
from imgclf.models.network import build_model

CLASSES = ["a", "b", "c"]


def _lite0() -> nn.Module:
    cfg = build_config({}, model="efficientnet_lite0", seed=0)
    torch.manual_seed(0)
    model = build_model(cfg.model, CLASSES, 3, (64, 64)).eval()
    for module in model.modules():  # statistics a pretrained net has, not the identity
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    return model


def _pixels(n: int = 4) -> torch.Tensor:
    rng = np.random.default_rng(0)
    return torch.from_numpy(rng.integers(0, 256, (n, 3, 64, 64), dtype=np.uint8))


def test_lite0_folds_every_batchnorm_and_computes_the_same() -> None:
    model = _lite0()
    keys = list(model.state_dict())
    folded, pairs = fold_batchnorm(model)
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert pairs == len(norms) == 49  # the stem, the head and every block's convolutions
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    with torch.inference_mode():
        torch.testing.assert_close(folded(_pixels()), model(_pixels()), atol=1e-4, rtol=1e-4)
    assert list(model.state_dict()) == keys  # the model keeps its layers and weights' names
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == 49


def test_a_recipe_with_batchnorm_folds_and_one_without_is_left_as_it_is() -> None:
    cfg = build_config({}, model="fast_cifar", seed=0)
    fast = build_model(cfg.model, CLASSES, 3, (32, 32)).eval()
    probe = _pixels(2)[:, :, :32, :32]
    with torch.inference_mode():
        copy = inference_copy(fast, probe)
        assert copy is not fast
        torch.testing.assert_close(copy(probe), fast(probe), atol=1e-4, rtol=1e-4)
    mlp = build_model(build_config({}, model="mlp").model, CLASSES, 3, (32, 32)).eval()
    assert inference_copy(mlp, probe) is mlp


class _NormFirst(nn.Module):
    """A BatchNorm registered after a convolution but run before it: not a pair to fold."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.norm = nn.BatchNorm2d(3)
        self.norm.running_mean.fill_(2.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.norm(x))


def test_a_network_whose_order_differs_from_its_registration_keeps_its_batchnorm() -> None:
    module = _NormFirst().eval()
    probe = torch.randn(2, 3, 8, 8)
    folded, pairs = fold_batchnorm(module)
    with torch.no_grad():
        assert pairs == 1 and not torch.allclose(folded(probe), module(probe), atol=1e-3)
    assert inference_copy(module, probe) is module  # checked on the probe: not folded


def test_evaluation_scores_the_same_with_batchnorm_folded() -> None:
    model = _lite0()
    images = _pixels(6).permute(0, 2, 3, 1).numpy()
    rows = np.arange(6)
    probs = predict_rows(model, images, rows, tta="flip")
    with torch.inference_mode():
        expected = torch.softmax(model(_pixels(6)), 1)
        expected = (expected + torch.softmax(model(_pixels(6).flip(3)), 1)) / 2
    np.testing.assert_allclose(probs, expected.numpy(), atol=1e-5)
    assert model.training is False and any(isinstance(m, nn.BatchNorm2d) for m in model.modules())


def test_predict_on_torch_runs_a_folded_copy_and_scores_the_same() -> None:
    from imgclf.predict.scoring import scorer

    model = _lite0()
    score = scorer(model, tta="flip")
    probs = score(np.ascontiguousarray(_pixels(3).permute(0, 2, 3, 1).numpy()))
    with torch.inference_mode():
        expected = torch.softmax(model(_pixels(3)), 1)
        expected = (expected + torch.softmax(model(_pixels(3).flip(3)), 1)) / 2
    np.testing.assert_allclose(probs, expected.numpy(), atol=1e-5)
    network = score.args[0].network  # what computed: the copy, with no BatchNorm left
    assert network is not model and not any(
        isinstance(m, nn.BatchNorm2d) for m in network.modules()
    )
