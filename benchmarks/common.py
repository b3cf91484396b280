"""Shared pieces of the training benchmarks: machine facts, matmul peak, FLOPs, timing."""

from __future__ import annotations

import os
import platform
import time

import numpy as np
import torch


def machine() -> str:
    return (
        f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    )


def matmul_peak_gflops(size: int = 2048, repeats: int = 10) -> float:
    """Measured float32 matmul throughput of this CPU (the best of ``repeats``)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def step_flops(model: torch.nn.Module, batch: torch.Tensor, labels: torch.Tensor) -> int:
    """FLOPs of one training step (forward + backward), counted by torch's FlopCounterMode."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        loss = torch.nn.functional.cross_entropy(model(batch), labels)
        loss.backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def accuracy(probs: np.ndarray, labels: np.ndarray) -> float:
    return float((probs.argmax(1) == labels).mean())
