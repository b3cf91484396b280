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
    seen = [efficiency.machine_peak_gflops(Runtime(), tmp_path) for _ in range(3)]
    assert seen == [120.0, 120.0, 150.0] and (tmp_path / "machine-peak.json").is_file()
    # another precision has its own record
    assert efficiency.machine_peak_gflops(Runtime(precision="16-mixed"), tmp_path) == 50.0


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
