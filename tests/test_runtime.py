"""The Runtime: device selection, precision checks (bf16 on CPUs with native bf16 only), batch
moves, autocast wiring, threads and ranks, and what a run records of them.

CUDA and MPS are absent here, so their presence is mocked; the CUDA path itself runs on
hardware only (see BENCHMARKS.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import imgclf.runtime as runtime_module
from imgclf import api
from imgclf.cli import app
from imgclf.errors import ConfigError
from imgclf.runtime import Runtime, cpu_has_native_bf16, resolve_device


@pytest.fixture
def no_accelerators(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(runtime_module, "_mps_available", lambda: False)
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def fake_cuda(monkeypatch, no_accelerators):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)


def _cpuinfo(tmp_path: Path, flags: str) -> Path:
    path = tmp_path / "cpuinfo"
    path.write_text(f"processor\t: 0\nflags\t\t: fpu sse2 avx2 {flags}\n\nprocessor\t: 1\n")
    return path


# ---------------------------------------------------------------- devices


def test_auto_picks_the_cpu_without_accelerators(no_accelerators) -> None:
    assert resolve_device("auto") == torch.device("cpu")
    assert Runtime.create().device == torch.device("cpu")


def test_auto_picks_cuda_then_mps(no_accelerators, monkeypatch) -> None:
    monkeypatch.setattr(runtime_module, "_mps_available", lambda: True)
    assert resolve_device("auto") == torch.device("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("auto") == torch.device("cuda", 0)


def test_cuda_takes_the_local_rank_and_an_explicit_index(fake_cuda) -> None:
    assert resolve_device("cuda", local_rank=1) == torch.device("cuda", 1)
    assert resolve_device("cuda:0", local_rank=1) == torch.device("cuda", 0)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("gpu", "Unknown device 'gpu'. Use auto, cpu, cuda, cuda:N or mps"),
        ("cuda", "Device 'cuda' is not available"),
        ("mps", "Device 'mps' is not available"),
    ],
)
def test_unusable_devices_are_one_clear_error(no_accelerators, name, message) -> None:
    with pytest.raises(ConfigError, match=message):
        resolve_device(name)


def test_a_cuda_index_past_the_devices_says_how_many_there_are(fake_cuda) -> None:
    with pytest.raises(ConfigError, match=r"has 2 CUDA devices \(cuda:0 to cuda:1\)"):
        resolve_device("cuda:5")


# ---------------------------------------------------------------- precision


def test_cpu_bf16_is_read_from_the_cpu_flags(tmp_path) -> None:
    assert cpu_has_native_bf16(_cpuinfo(tmp_path, "avx512f avx512_bf16"))
    assert cpu_has_native_bf16(_cpuinfo(tmp_path, "amx_tile amx_bf16"))
    assert not cpu_has_native_bf16(_cpuinfo(tmp_path, "avx512f"))
    assert not cpu_has_native_bf16(tmp_path / "missing")


def test_bf16_is_refused_on_a_cpu_without_native_bf16(no_accelerators, monkeypatch) -> None:
    monkeypatch.setattr(runtime_module, "cpu_has_native_bf16", lambda: False)
    with pytest.raises(ConfigError, match=r"needs a CPU with native bf16 .* 44-499x slower"):
        Runtime.create("cpu", "bf16-mixed")


def test_bf16_autocasts_on_a_cpu_with_native_bf16(no_accelerators, monkeypatch) -> None:
    monkeypatch.setattr(runtime_module, "cpu_has_native_bf16", lambda: True)
    runtime = Runtime.create("cpu", "bf16-mixed")
    layer = torch.nn.Linear(4, 2)
    with runtime.autocast():
        assert layer(torch.ones(1, 4)).dtype == torch.bfloat16
    assert not runtime.grad_scaler().is_enabled()  # bf16 needs no loss scaling


def test_fp16_is_refused_on_the_cpu(no_accelerators) -> None:
    with pytest.raises(ConfigError, match="16-mixed needs a GPU"):
        Runtime.create("cpu", "16-mixed")


def test_32_bit_autocast_changes_nothing_and_scales_nothing(no_accelerators) -> None:
    runtime = Runtime.create("cpu", "32")
    layer = torch.nn.Linear(4, 2)
    with runtime.autocast():
        assert layer(torch.ones(1, 4)).dtype == torch.float32
    scaler = runtime.grad_scaler()
    loss = torch.tensor(2.0)
    assert not scaler.is_enabled() and scaler.scale(loss) is loss


def test_unknown_precision_is_a_config_error(no_accelerators) -> None:
    with pytest.raises(ConfigError, match="Unknown precision '8'"):
        Runtime.create("cpu", "8")
    with pytest.raises(ConfigError, match="train.precision"):
        api.make_config(precision="fp8")


# ---------------------------------------------------------------- moves, threads, ranks


def test_moving_a_batch_on_the_cpu_is_a_no_op(no_accelerators) -> None:
    runtime = Runtime.create("cpu")
    batch = torch.zeros(2, 3)
    assert runtime.move(batch) is batch  # no copy, no pinning
    assert not runtime.pin_memory


def test_threads_are_the_cores_divided_by_local_processes(no_accelerators, monkeypatch) -> None:
    monkeypatch.setattr(runtime_module, "available_cores", lambda: 16)
    assert Runtime.create("cpu").threads == 16
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    assert Runtime.create("cpu").threads == 4
    assert Runtime.create("cpu", threads=3).threads == 3


def test_torchrun_environment_sets_the_rank(no_accelerators, monkeypatch) -> None:
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "1")
    runtime = Runtime.create("cpu")
    assert (runtime.rank, runtime.world_size, runtime.local_rank) == (3, 4, 1)
    assert not runtime.is_main
    assert Runtime.create("cpu", rank=0).is_main


# ---------------------------------------------------------------- runs


def test_a_run_records_its_device_precision_and_threads(shapes: Path, no_accelerators) -> None:
    run = api.train(shapes, "tiny.yaml", epochs=1, quiet=True, threads=1)
    recorded = json.loads((run.path / "metrics.json").read_text())["runtime"]
    assert recorded == {"device": "cpu", "precision": "32", "threads": 1, "world_size": 1}
    assert run.runtime.device == torch.device("cpu")


def test_bf16_training_runs_and_is_recorded(shapes: Path, no_accelerators, monkeypatch) -> None:
    monkeypatch.setattr(runtime_module, "cpu_has_native_bf16", lambda: True)
    run = api.train(shapes, "tiny.yaml", quiet=True, epochs=2, precision="bf16-mixed")
    assert len(run.history) == 2 and run.metrics["runtime"]["precision"] == "bf16-mixed"
    assert all(p.dtype == torch.float32 for p in run.model.parameters())  # weights stay fp32


def test_the_cli_refuses_bf16_on_this_kind_of_cpu(shapes: Path, no_accelerators, monkeypatch):
    monkeypatch.setattr(runtime_module, "cpu_has_native_bf16", lambda: False)
    result = CliRunner().invoke(
        app, ["train", str(shapes), "--config", "tiny.yaml", "--precision", "bf16-mixed"]
    )
    assert result.exit_code == 2
    assert "bf16-mixed needs a CPU with native bf16" in result.output
    assert "Traceback" not in result.output and not Path("runs").exists()


def test_the_cli_refuses_a_missing_gpu(shapes: Path, no_accelerators) -> None:
    result = CliRunner().invoke(
        app, ["train", str(shapes), "--config", "tiny.yaml", "--device", "cuda"]
    )
    assert result.exit_code == 2 and "Device 'cuda' is not available" in result.output
    assert not Path("runs").exists()


def test_auto_precision_is_bf16_where_native_else_32(no_accelerators, monkeypatch) -> None:
    monkeypatch.setattr(runtime_module, "cpu_has_native_bf16", lambda: True)
    assert Runtime.create("cpu", "auto").precision == "bf16-mixed"
    monkeypatch.setattr(runtime_module, "cpu_has_native_bf16", lambda: False)
    assert Runtime.create("cpu", "auto").precision == "32"
    assert Runtime.create("cpu", "32").precision == "32"
