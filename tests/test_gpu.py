"""The CUDA paths on a real GPU: mixed precision with and without the GradScaler, pinned batch
moves, CPU-equal predictions and an NCCL group with SyncBatchNorm. Marked ``gpu``; without a
CUDA device they skip and say so. ``benchmarks/gpu_check.sh`` runs them (issue 23)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from imgclf import api
from imgclf.runtime import Runtime

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(
        not torch.cuda.is_available(),
        reason="no CUDA device here (torch.cuda.is_available() is False): the gpu tests need "
        "an NVIDIA GPU; run benchmarks/gpu_check.sh on one",
    ),
]


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """Two classes of 32x32 colour PNGs told apart by a bright corner block."""
    rng = np.random.default_rng(0)
    root = tmp_path / "photos"
    for label, corner in (("a", 0), ("b", 16)):
        (root / label).mkdir(parents=True)
        for k in range(16):
            pixels = rng.integers(0, 60, (32, 32, 3), dtype=np.uint8)
            pixels[corner : corner + 16, corner : corner + 16] = 230
            Image.fromarray(pixels).save(root / label / f"{k}.png")
    return root


def _train(photos: Path, tmp_path: Path, precision: str, name: str):
    return api.train(
        photos, model="cnn", image_size=32, epochs=2, batch_size=8, val_split=0.25,
        device="cuda", precision=precision, quiet=True, project=tmp_path / "runs", name=name,
    )  # fmt: skip


def _check_trained(run, precision: str) -> None:
    runtime = run.metrics["runtime"]
    assert runtime["device"].startswith("cuda") and runtime["precision"] == precision
    assert len(run.history) == 2
    assert all(math.isfinite(row["loss"]) and math.isfinite(row["val_loss"]) for row in run.history)
    assert 0.0 <= run.metrics["val"]["accuracy"] <= 1.0


def test_a_16_mixed_step_scales_the_loss(photos: Path, tmp_path: Path) -> None:
    scaler = Runtime.create("cuda", "16-mixed").grad_scaler()
    assert scaler.is_enabled()  # float16 on CUDA: the GradScaler is on
    _check_trained(_train(photos, tmp_path, "16-mixed", "fp16"), "16-mixed")


def test_a_bf16_mixed_step_runs_without_a_scaler(photos: Path, tmp_path: Path) -> None:
    if not torch.cuda.is_bf16_supported():
        pytest.skip(f"{torch.cuda.get_device_name()} has no native bf16")
    assert not Runtime.create("cuda", "bf16-mixed").grad_scaler().is_enabled()
    _check_trained(_train(photos, tmp_path, "bf16-mixed", "bf16"), "bf16-mixed")


def test_a_batch_moves_through_pinned_memory() -> None:
    runtime = Runtime.create("cuda")
    assert runtime.pin_memory and runtime.device.type == "cuda"
    batch = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    moved = runtime.move(batch)
    torch.cuda.synchronize()
    assert moved.device.type == "cuda" and torch.equal(moved.cpu(), batch)
    assert runtime.move(moved) is moved  # already there: no copy


def test_cuda_predictions_equal_the_cpus(photos: Path, tmp_path: Path) -> None:
    run = _train(photos, tmp_path, "32", "fp32")
    _check_trained(run, "32")
    on_gpu = api.predict(run.path, [str(photos)], device="cuda", progress=False)
    on_cpu = api.predict(run.path, [str(photos)], device="cpu", progress=False)
    assert on_gpu.paths == on_cpu.paths and len(on_gpu) == 32
    np.testing.assert_allclose(on_gpu.probs, on_cpu.probs, atol=1e-4)


def test_an_nccl_group_trains_syncbatchnorm(tmp_path: Path) -> None:
    import torch.distributed as dist
    from timm.layers import convert_sync_batchnorm

    device = torch.device("cuda", 0)
    store = dist.FileStore(str(tmp_path / "store"), 1)
    dist.init_process_group("nccl", store=store, rank=0, world_size=1, device_id=device)
    try:
        total = torch.ones(4, device=device)
        dist.all_reduce(total)
        assert total.tolist() == [1.0] * 4
        model = torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 2),
        )  # fmt: skip
        model = convert_sync_batchnorm(model).to(device)
        assert isinstance(model[1], torch.nn.SyncBatchNorm)
        runtime = Runtime.create("cuda", "16-mixed")
        scaler = runtime.grad_scaler()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        with runtime.autocast():
            images, labels = torch.randn(4, 3, 8, 8), torch.tensor([0, 1, 0, 1])
            loss = torch.nn.functional.cross_entropy(
                model(runtime.move(images)), runtime.move(labels)
            )
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        assert math.isfinite(float(loss)) and int(model[1].num_batches_tracked) == 1
    finally:
        dist.destroy_process_group()
