"""Efficiency in every run: counted flops, the machine's peak probe (cached), and the figures
in metrics.json, the ledger and the report."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from tests.train.conftest import make_blocks

from imgclf import api
from imgclf.runtime import Runtime
from imgclf.train import efficiency
from imgclf.train.callbacks import Callback
from imgclf.train.parts import TrainData


def test_a_training_step_is_counted_without_touching_the_model() -> None:
    layer = torch.nn.Sequential(torch.nn.Linear(16, 8, bias=False), torch.nn.BatchNorm1d(8))
    batch, labels = torch.randn(4, 16), torch.zeros(4, dtype=torch.long)
    before = {k: v.clone() for k, v in layer.state_dict().items()}
    state = torch.random.get_rng_state()
    flops = efficiency.step_flops(layer, batch, labels)
    assert flops == 2 * (2 * 4 * 16 * 8)  # the forward and the weight's gradient (the input
    # needs none)
    assert all(torch.equal(before[k], v) for k, v in layer.state_dict().items())
    assert torch.equal(state, torch.random.get_rng_state()) and layer[0].weight.grad is None


def test_the_summary_divides_what_the_meter_summed() -> None:
    meter = efficiency.StepMeter(images=200, compute_seconds=2.0, data_images=300,
                                 data_seconds=0.5, flops=4e11)  # fmt: skip
    summary = meter.summary(peak_gflops=400.0)
    assert summary["compute_images_per_second"] == 100.0
    assert summary["data_images_per_second"] == 600.0
    assert summary["train_gflops_per_second"] == 200.0 and summary["percent_of_peak"] == 50.0
    assert "percent_of_peak" not in meter.summary(peak_gflops=None)


def test_the_peak_is_the_best_probe_kept_per_machine(tmp_path: Path, monkeypatch) -> None:
    probes = iter([120.0, 80.0, 150.0, 50.0])  # a busy machine reads low
    monkeypatch.setattr(efficiency, "_measure", lambda *a: next(probes))
    seen = []
    for _ in range(3):  # three processes
        monkeypatch.setattr(efficiency, "_PROBED", {})
        seen.append(efficiency.machine_peak_gflops(Runtime(), tmp_path))
    assert seen == [120.0, 120.0, 150.0] and (tmp_path / "machine-peak.json").is_file()
    # another precision has its own record
    assert efficiency.machine_peak_gflops(Runtime(precision="16-mixed"), tmp_path) == 50.0


def test_a_process_probes_once(tmp_path: Path, monkeypatch) -> None:
    """A sweep's trials or a notebook's runs pay the probe once, not once a run."""
    calls = []
    monkeypatch.setattr(efficiency, "_measure", lambda *a: calls.append(a) or 100.0)
    monkeypatch.setattr(efficiency, "_PROBED", {})
    peaks = [efficiency.machine_peak_gflops(Runtime(), tmp_path) for _ in range(3)]
    assert peaks == [100.0] * 3 and len(calls) == 1


def test_the_peak_is_the_better_of_the_matmul_and_the_convolution(monkeypatch) -> None:
    """Issue 23: on an AMD EPYC, fp32 convolutions (oneDNN) ran 2.4x the matmul (MKL), and a
    network's share of the matmul alone read 115-129 %."""
    monkeypatch.setattr(efficiency, "_matmul_rate", lambda *a: 200.0)
    monkeypatch.setattr(efficiency, "_conv_rate", lambda *a: 490.0)
    assert efficiency._measure(torch.device("cpu"), torch.float32) == 490.0
    monkeypatch.setattr(efficiency, "_conv_rate", lambda *a: 150.0)
    assert efficiency._measure(torch.device("cpu"), torch.float32) == 200.0


def test_both_probes_measure_this_machine() -> None:
    for probe in (efficiency._matmul_rate, efficiency._conv_rate):
        assert probe(torch.device("cpu"), torch.float32) > 0


@pytest.mark.slow
def test_a_run_records_its_efficiency(tmp_path: Path) -> None:
    images, labels = make_blocks(n_per_class=30)
    data = tmp_path / "blocks.npz"
    np.savez(data, x=images, y=labels)
    run = api.train(data, model="cnn", image_size=16, epochs=2, val_split=0.25, quiet=True,
                    project=tmp_path / "runs", name="fast")  # fmt: skip
    figures = run.metrics["efficiency"]
    assert figures["compute_images_per_second"] > 0 and figures["data_images_per_second"] > 0
    assert 0 < figures["percent_of_peak"] < 100 and figures["train_gflops_per_second"] > 0
    row = api.runs(tmp_path / "runs")[0]
    assert row["percent_of_peak"] == round(figures["percent_of_peak"], 1)
    assert row["images_per_second"] > 0
    assert "Efficiency: data" in (run.path / "report.html").read_text()


def test_a_depthwise_convolution_counts_its_own_backward() -> None:
    """torch's formula counts a grouped weight gradient ``groups`` times over; imgclf counts one
    convolution of the forward's size per gradient."""
    depthwise = torch.nn.Sequential(
        torch.nn.Conv2d(32, 32, 3, padding=1, groups=32, bias=False), torch.nn.Flatten()
    )
    batch, labels = torch.randn(2, 32, 8, 8), torch.zeros(2, dtype=torch.long)
    forward = 2 * 2 * 32 * 1 * 9 * 8 * 8  # 2 x batch x out channels x in per group x k x H x W
    assert efficiency.step_flops(depthwise, batch, labels) == 2 * forward  # + the weight's grad


class _PerStage(Callback):
    """Each stage's counted flops, images and compute seconds (the run's meter, split)."""

    def __init__(self) -> None:
        self.stages: dict[str, tuple[float, int, float]] = {}

    def on_stage_begin(self, stage: str, state) -> None:
        meter = state.meter
        self.start = (meter.flops, meter.images, meter.compute_seconds)

    def on_stage_end(self, stage: str, state) -> None:
        meter = state.meter
        now = (meter.flops, meter.images, meter.compute_seconds)
        self.stages[stage] = tuple(b - a for a, b in zip(self.start, now, strict=True))


def _stripes(size: int = 32) -> TrainData:
    """3 classes of colour stripes (horizontal, vertical, diagonal) for a tiny Lite0."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size]
    patterns = [(yy // 4) % 2, (xx // 4) % 2, ((xx + yy) // 4) % 2]
    images = [
        np.clip(p[..., None] * rng.integers(60, 255, 3) + rng.integers(0, 40, (size, size, 3)),
                0, 255).astype(np.uint8)
        for p in patterns for _ in range(16)
    ]  # fmt: skip
    labels = np.repeat(np.arange(3), 16)
    order = np.random.default_rng(1).permutation(len(labels))
    return TrainData(np.stack(images), labels, np.sort(order[:36]), np.sort(order[36:]),
                     ["horizontal", "vertical", "diagonal"])  # fmt: skip


@pytest.mark.slow
def test_a_staged_finetune_counts_only_the_work_each_stage_does(tmp_path: Path) -> None:
    """The head on embeddings counts the head alone; the unfrozen top on cached activations
    counts no more than a forward and two gradients of what it runs; no stage reads more than
    the machine's peak."""
    from imgclf.config_loader import build_config
    from imgclf.models.flops import meta_flops
    from imgclf.models.network import build_model
    from imgclf.train.loop import fit
    from imgclf.train.setup import configure_torch
    from imgclf.train.stages import plan_stages

    data = _stripes()
    cfg = build_config({}, model="efficientnet_lite0", epochs=1, finetune_epochs=1,
                       batch_size=12, seed=5, cache_dir=str(tmp_path))  # fmt: skip
    configure_torch(cfg)
    model = build_model(cfg.model, data.classes, 3, (32, 32))
    stages, _ = plan_stages(model, data, cfg)
    assert [stage.data.images.ndim for stage in stages] == [2, 2]  # embeddings, activations
    per_stage = _PerStage()
    fit(model, stages, cfg, [per_stage])
    head_flops, head_images, _ = per_stage.stages["head"]
    features = stages[0].data.images.shape[1]
    assert head_flops / head_images == 2 * 2 * features * 3  # the class layer: forward + grad
    top = stages[1]
    top_flops, top_images, _ = per_stage.stages["finetune"]
    forward = meta_flops(top.module, (1, top.data.images.shape[1]))
    assert 0 < top_flops / top_images <= 3 * forward
    peak = efficiency.machine_peak_gflops(Runtime(), tmp_path)
    for name, (flops, _, seconds) in per_stage.stages.items():
        assert 100 * flops / seconds / 1e9 / peak < 100, name
