"""How efficiently a run trained: images per second of the data pipeline and of the compute,
the training step's GFLOP/s (counted by torch's FlopCounterMode on each stage's first step) and
that as a share of this machine's measured peak (the best of short matmul and convolution
probes, kept per machine).

The loader builds batches in a background thread, so its seconds are its own work, not time
the loop waited; compute is forward, backward and the optimizer step. A run's figures go in
metrics.json ("efficiency"), the ledger and the report.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from imgclf.fileio import atomic_write_text
from imgclf.models.flops import meta_flops
from imgclf.runtime import Runtime, cpu_model

PEAK_SIZE, PEAK_REPEATS = 1024, 3  # best of 4 calls: within 1 % of 9 calls, half the time
PEAK_CONV = (8, 128, 32)  # batch, channels, side of the 3x3 convolution probe: 2.4 GFLOP
_PROBED: dict[str, float] = {}  # this process's probe of each device, dtype and thread count


@dataclass
class StepMeter:
    """Running sums over a run's training steps (this session's)."""

    images: int = 0
    compute_seconds: float = 0.0
    data_images: int = 0
    data_seconds: float = 0.0
    flops: float = 0.0  # counted flops per image, times the images of its stage

    def summary(self, peak_gflops: float | None) -> dict[str, Any]:
        """metrics.json's "efficiency"."""
        out: dict[str, Any] = {"images": self.images}
        if self.data_seconds > 0:
            out["data_images_per_second"] = self.data_images / self.data_seconds
        if self.compute_seconds > 0:
            out["compute_images_per_second"] = self.images / self.compute_seconds
            if self.flops > 0:
                gflops = self.flops / self.compute_seconds / 1e9
                out["train_gflops_per_second"] = gflops
                if peak_gflops:
                    out["peak_gflops_per_second"] = peak_gflops
                    out["percent_of_peak"] = 100.0 * gflops / peak_gflops
        return out


def step_flops(module: torch.nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    """The flops of one training step (forward and backward) of ``module`` (or the module a
    DDP wrapper holds) on a batch like ``inputs``, counted on a meta-device copy in eval mode
    (``models.flops``), so no number of the run changes; 0.0 where they cannot be counted."""
    module = getattr(module, "module", module)
    flops = meta_flops(module, tuple(inputs.shape), inputs.dtype, backward=True)
    return flops or 0.0


def machine_peak_gflops(runtime: Runtime, cache_dir: Path | None = None) -> float | None:
    """This machine's GFLOP/s at the run's precision (fp32, or bf16 under bf16-mixed), with
    its threads: the better of a matmul and a 3x3 convolution. A process probes once (about
    0.09 s on one CPU core: a third of a small run's time, paid once by a sweep's trials or a
    notebook's runs) and ``cache_dir/machine-peak.json`` keeps the best probe so far: a probe on
    a busy machine reads low, and the best of many is the machine's."""
    dtype = torch.bfloat16 if runtime.precision == "bf16-mixed" else torch.float32
    if runtime.precision == "16-mixed":
        dtype = torch.float16
    device = runtime.device
    threads, name = torch.get_num_threads(), _device_name(device)
    key = f"{device.type}|{name}|{dtype}|{threads} threads|torch {torch.__version__}"
    file = cache_dir / "machine-peak.json" if cache_dir is not None else None
    known = _read(file)
    try:
        if key not in _PROBED:
            _PROBED[key] = _measure(device, dtype)
    except RuntimeError:  # a device or dtype without matmul: no percentage
        return known.get(key)
    peak = max(_PROBED[key], known.get(key, 0.0))
    if file is not None and peak != known.get(key):
        file.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(file, json.dumps({**known, key: peak}, indent=2) + "\n")
    return peak


def _measure(device: torch.device, dtype: torch.dtype) -> float:
    """The better of the two probes. Both kernels count: the BLAS matmul and the convolution
    library can differ by 2.4x (fp32 on a 2-core AMD EPYC: MKL's sgemm 200 GFLOP/s, oneDNN's
    convolution 490), and a network of convolutions read 115-129 % of the matmul alone."""
    return max(_matmul_rate(device, dtype), _conv_rate(device, dtype))


def _matmul_rate(device: torch.device, dtype: torch.dtype) -> float:
    a = torch.randn(PEAK_SIZE, PEAK_SIZE, device=device).to(dtype)
    b = torch.randn(PEAK_SIZE, PEAK_SIZE, device=device).to(dtype)
    return 2 * PEAK_SIZE**3 / _best_seconds(device, lambda: torch.mm(a, b)) / 1e9


@torch.no_grad()
def _conv_rate(device: torch.device, dtype: torch.dtype) -> float:
    batch, channels, side = PEAK_CONV
    conv = torch.nn.Conv2d(channels, channels, 3, padding=1, bias=False)
    conv = conv.to(device=device, dtype=dtype, memory_format=torch.channels_last)
    x = torch.randn(batch, channels, side, side, device=device).to(dtype)
    x = x.contiguous(memory_format=torch.channels_last)
    flops = 2 * batch * channels * channels * 9 * side * side
    return flops / _best_seconds(device, lambda: conv(x)) / 1e9


def _best_seconds(device: torch.device, step) -> float:
    """The fastest of PEAK_REPEATS + 1 timed calls of ``step``."""
    best = float("inf")
    for _ in range(PEAK_REPEATS + 1):
        _sync(device)
        began = time.perf_counter()
        step()
        _sync(device)
        best = min(best, time.perf_counter() - began)
    return best


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return cpu_model()


def _read(file: Path | None) -> dict[str, float]:
    if file is None:
        return {}
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): float(v) for k, v in data.items() if isinstance(v, int | float)}
