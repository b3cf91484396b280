"""Which backend runs the embed-once pass: the frozen backbone on ONNX Runtime or on torch.

The pass runs the same frozen network over every image, which is what ONNX Runtime is fastest
at on a CPU: Lite0 at 224 px embeds 2-4x faster there than in eager channels_last PyTorch on
2 cores (BENCHMARKS.md). The backbone (``Backbone``: preprocessing, features, then each
pooling and the stages' means) is exported in memory with the TorchScript-based exporter (about
2 s for Lite0), and used only if its outputs on the first batch agree with torch's within
``MAX_FEATURE_DIFF``; else the pass stays on torch and says why. ``auto`` picks ONNX Runtime on
a CPU at 32 bits, when the onnx extra is installed and the pass is large enough to repay the
export. The graph and the session
are built as the exporter builds them (``models/onnx_graph.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from imgclf.errors import ConfigError
from imgclf.models.extras import ONNX
from imgclf.models.onnx_graph import onnx_graph, ort_session
from imgclf.models.unknown import tapped
from imgclf.runtime import Runtime

EMBED_BACKENDS = ("auto", "torch", "onnx")
MAX_FEATURE_DIFF = 1e-4
AUTO_MIN_PIXELS = 300 * 224 * 224  # below this the export costs more than it saves
NUMERICS = {"torch": "torch", "onnx": "onnxruntime-fp32"}  # part of the embeddings' cache key
NEEDS = ("onnx", "onnxruntime")  # of the onnx extra: the in-memory graph and its session


@dataclass
class Embedder:
    """uint8 (B, C, H, W) batches to float32 outputs (``Backbone``'s, in its order), and what
    computes them."""

    backend: str  # torch or onnx
    run: Callable[[torch.Tensor], list[np.ndarray]]
    note: str | None = None  # why auto or onnx ended on torch


class Backbone(nn.Module):
    """One pass of the frozen backbone: its map pooled each way in ``poolings`` (the model's
    own first), then the spatial mean of each of ``stages`` (the unknown score's taps), so a
    run that pools the other way and the run's unknown score need no pass of their own."""

    def __init__(self, model, poolings: list[nn.Module], stages: list[str]) -> None:
        super().__init__()
        self.model, self.poolings, self.stages = model, nn.ModuleList(poolings), list(stages)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        with tapped(self.model.features, self.stages) as taps:
            maps = self.model.features(self.model.preprocess(images.float()))
        pooled = [pooling(maps) for pooling in self.poolings]
        return (*pooled, *(taps[i] for i in range(len(self.stages))))


def planned_backend(requested: str, runtime: Runtime, pixels: int) -> str:
    """The backend ``requested`` (auto, torch, onnx) means for a pass over ``pixels`` pixels,
    before any export: what the cache key is computed for."""
    if requested not in EMBED_BACKENDS:
        raise ConfigError(
            f"Unknown embed_backend '{requested}'. Allowed: {', '.join(EMBED_BACKENDS)}."
        )
    if requested == "torch":
        return "torch"
    plain_cpu = runtime.device.type == "cpu" and runtime.precision == "32"
    installed = ONNX.installed(*NEEDS)
    if requested == "auto":
        return "onnx" if plain_cpu and installed and pixels >= AUTO_MIN_PIXELS else "torch"
    if not plain_cpu:
        raise ConfigError(
            "embed_backend onnx runs on the CPU at 32 bits; this run computes on "
            f"{runtime.device.type} at precision {runtime.precision}. Use embed_backend auto."
        )
    ONNX.require("embed_backend onnx", *NEEDS)
    return "onnx"


def make_embedder(backbone: Backbone, backend: str, runtime: Runtime, sample: torch.Tensor
                  ) -> Embedder:  # fmt: skip
    """The embedder for ``backend``; an exported graph is checked on ``sample`` (a first uint8
    batch) against torch, and a graph that fails the export or the check leaves torch."""
    backbone = backbone.eval()
    torch_embedder = Embedder("torch", lambda batch: _torch_outputs(backbone, batch, runtime))
    if backend == "torch":
        return torch_embedder
    try:
        run = _onnx_runner(_exported_session(backbone, sample))
        diff = _difference(run(sample), torch_embedder.run(sample), len(backbone.poolings))
    except Exception as exc:  # an exporter's failure, of many kinds: torch still works
        reason = " ".join(str(exc).split())[:200]
        note = f"ONNX export of the backbone failed: {reason}"
        return Embedder("torch", torch_embedder.run, note)
    if diff > MAX_FEATURE_DIFF:
        note = f"ONNX Runtime's features differ from torch's by {diff:.1e} (> {MAX_FEATURE_DIFF})"
        return Embedder("torch", torch_embedder.run, note)
    return Embedder("onnx", run)


def _difference(outputs: list[np.ndarray], expected: list[np.ndarray], pooled: int) -> float:
    """The largest difference: absolute for the pooled features the head reads, relative to
    each map's scale for the stages' means (larger values, used only standardised)."""
    return max(
        float(np.abs(got - want).max()) / (1.0 if i < pooled else max(1.0, np.abs(want).max()))
        for i, (got, want) in enumerate(zip(outputs, expected, strict=True))
    )


@torch.inference_mode()
def _torch_outputs(backbone: Backbone, batch: torch.Tensor, runtime: Runtime) -> list[np.ndarray]:
    batch = batch.contiguous(memory_format=torch.channels_last)
    with runtime.autocast():
        outputs = backbone(runtime.move(batch))
    return [output.float().cpu().numpy() for output in outputs]


def _exported_session(backbone: Backbone, sample: torch.Tensor):
    """The backbone traced on ``sample`` by the TorchScript-based exporter (about 2 s for
    Lite0), in a session that never touches the disk."""
    names = tuple(f"output{i}" for i in range(len(backbone.poolings) + len(backbone.stages)))
    graph = onnx_graph(backbone, sample[:2].contiguous(), names, "torchscript")
    return ort_session(graph.SerializeToString())


def _onnx_runner(session) -> Callable[[torch.Tensor], list[np.ndarray]]:
    def run(batch: torch.Tensor) -> list[np.ndarray]:
        pixels = np.ascontiguousarray(batch.contiguous().numpy())
        return session.run(None, {"images": pixels})

    return run
