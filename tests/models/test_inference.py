"""Inference batches are capped by pixels (large images in cache-sized batches), and
predict_rows gives the same probabilities whatever the batch size."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from imgclf.models.inference import PIXELS_PER_BATCH, inference_batch_size, predict_rows


@pytest.mark.parametrize(
    ("requested", "size", "expected"),
    [(256, 224, PIXELS_PER_BATCH // 224**2), (256, 28, 256), (256, 32, 256), (4, 224, 4),
     (256, 2048, 1)],
)  # fmt: skip
def test_batch_size_is_capped_by_pixels(requested: int, size: int, expected: int) -> None:
    assert inference_batch_size(requested, size, size) == expected
    assert inference_batch_size(requested, size, size) * size * size <= max(
        PIXELS_PER_BATCH, size * size
    )


class _Linear(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(300 * 300, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.float().flatten(1) / 255)


def test_predict_rows_is_the_same_in_any_batch_size() -> None:
    torch.manual_seed(0)
    model = _Linear()
    images = np.random.default_rng(0).integers(0, 255, (10, 300, 300, 1), dtype=np.uint8)
    rows = np.arange(10)
    capped = predict_rows(model, images, rows, batch_size=256)  # capped to 5 per batch
    single = predict_rows(model, images, rows, batch_size=1)
    assert capped.shape == (10, 3)
    np.testing.assert_allclose(capped, single, atol=1e-5)


def test_flip_tta_averages_each_image_with_its_mirror() -> None:
    torch.manual_seed(0)
    model = _Linear()
    images = np.random.default_rng(1).integers(0, 255, (6, 300, 300, 1), dtype=np.uint8)
    rows = np.arange(6)
    mirrored = np.ascontiguousarray(images[:, :, ::-1])
    expected = (predict_rows(model, images, rows) + predict_rows(model, mirrored, rows)) / 2
    np.testing.assert_allclose(predict_rows(model, images, rows, tta="flip"), expected, atol=1e-6)
    assert not np.allclose(predict_rows(model, images, rows), expected, atol=1e-3)
    with pytest.raises(ValueError, match="tta must be"):
        predict_rows(model, np.zeros((3, 8), np.float32), np.arange(3), tta="flip")
