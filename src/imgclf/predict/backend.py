"""Which backend predicts and serves: torch, or ONNX Runtime on the run's exported graph
(fp32 model.onnx, or the int8 model-int8.onnx).

A graph counts only if it passed its gate. That test is export's, and predict sits beside
export (neither imports the other), so the caller passes it in as ``gated``. auto prefers the
int8 graph: export keeps it only when it was faster than fp32 on the exporting machine.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from imgclf.errors import ConfigError, did_you_mean
from imgclf.layout import INT8_NAME, ONNX_NAME
from imgclf.runtime import Runtime

BACKENDS = ("auto", "torch", "onnx", "onnx-int8")
GRAPHS = {"onnx-int8": INT8_NAME, "onnx": ONNX_NAME}  # auto's order: the fastest first


def onnx_graph_file(
    model, backend: str, runtime: Runtime, gated: Callable[[Path, str], bool]
) -> Path | None:
    """The exported graph ONNX Runtime should run, or None for torch.

    torch: None. onnx, onnx-int8: that graph, or an error when the folder has no gated one.
    auto: the int8 graph, else the fp32 graph, when gated, the onnx extra is installed and the
    prediction is on the CPU at 32 bits; else None.

    Args:
        model: a run or bundle folder, or a loaded ImageModel (which has no exported graph).
        gated: whether a folder holds the graph of a backend (onnx, onnx-int8) that passed
            its gate.
    """
    from imgclf.models.bundle import bundle_dir
    from imgclf.models.extras import ONNX

    if backend not in BACKENDS:
        raise ConfigError(
            f"Unknown backend '{backend}'.{did_you_mean(backend, BACKENDS)} "
            f"Backends: {', '.join(BACKENDS)}."
        )
    if backend == "torch":
        return None
    folder = bundle_dir(model) if isinstance(model, str | Path) else None
    ready = [name for name in GRAPHS if folder is not None and gated(folder, name)]
    if backend == "onnx" and backend not in ready:
        raise ConfigError(
            f"{model} has no exported model that passed its parity gate: run "
            f"imgclf export {model} first, or use --backend torch."
        )
    if backend == "onnx-int8" and backend not in ready:
        raise ConfigError(
            f"{model} has no int8 model that passed its gate: run imgclf export {model} "
            "--format onnx-int8 first, or use --backend onnx or torch."
        )
    if backend in GRAPHS:
        return folder / GRAPHS[backend]
    plain = runtime.device.type == "cpu" and runtime.precision == "32"
    usable = ready and plain and ONNX.installed("onnxruntime")
    return folder / GRAPHS[ready[0]] if usable else None


def backend_name(onnx) -> str:
    """The backend a prediction ran on, as ``--backend`` names it: torch, onnx (fp32) or
    onnx-int8, from the ONNX Runtime runner (None: torch) and the graph file it runs."""
    if onnx is None:
        return "torch"
    return next(name for name, file in GRAPHS.items() if getattr(onnx, "graph", ONNX_NAME) == file)
