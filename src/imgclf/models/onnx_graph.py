"""A torch module as an ONNX graph, and the ONNX Runtime session that runs it.

Shared by the exporter (``export/onnx.py``: a file kept only when it passes the parity gate)
and by the embed-once pass (``models/features/backend.py``: the frozen backbone in memory,
kept only when its features agree with torch's). Both build the graph the same way: one input
``images`` with a dynamic batch axis, opset ``OPSET``, through torch.export (``dynamo``) or
the TorchScript-based exporter; each caller's own check decides whether it is used.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import torch
from torch import nn

OPSET = 18
EXPORTERS = ("dynamo", "torchscript")


def onnx_graph(module: nn.Module, example: torch.Tensor, outputs: tuple[str, ...], exporter: str):
    """``module`` (in eval mode) as an ``onnx.ModelProto`` traced on ``example``: input
    ``images``, ``outputs`` named in order, any batch size."""
    import onnx

    names = {"input_names": ["images"], "output_names": list(outputs)}
    with warnings.catch_warnings(), torch.inference_mode(False):
        warnings.simplefilter("ignore")  # the exporters' own chatter: the caller's check decides
        if exporter == "dynamo":
            batch = torch.export.Dim("batch", min=1)
            program = torch.onnx.export(
                module, (example,), dynamo=True, opset_version=OPSET,
                dynamic_shapes={"images": {0: batch}}, optimize=True, verbose=False, **names,
            )  # fmt: skip
            return program.model_proto
        buffer = io.BytesIO()
        axes = {name: {0: "batch"} for name in ("images", *outputs)}
        torch.onnx.export(
            module, (example,), buffer, dynamo=False, opset_version=OPSET,
            dynamic_axes=axes, **names,
        )  # fmt: skip
    return onnx.load_from_string(buffer.getvalue())


def ort_session(source: Path | str | bytes, threads: int | None = None, spin: bool = True):
    """An ONNX Runtime CPU session for a graph file or serialized graph (threads: the cores
    by default).

    ``spin=False`` where other threads work beside the session (predict and serve decode
    images while it computes): ONNX Runtime's threads otherwise busy-wait between runs and
    take the cores from the decoders (int8 Lite0 on 2 cores: imgclf predict 295 -> 316 img/s;
    serve with 16 clients 166-172 -> 204-208, one client 1.4 ms slower; BENCHMARKS.md)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    if not spin:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    graph = source if isinstance(source, bytes) else str(source)
    return ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
