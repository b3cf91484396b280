"""Which backend predicts and serves: torch, or ONNX Runtime on the run's exported graph.

The graph counts only if it passed its parity gate. That test is export's, and predict sits
beside export (neither imports the other), so the caller passes it in as ``gated``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from imgclf.errors import ConfigError, did_you_mean
from imgclf.runtime import Runtime

BACKENDS = ("auto", "torch", "onnx")


def onnx_folder(
    model, backend: str, runtime: Runtime, gated: Callable[[Path], bool]
) -> Path | None:
    """The bundle folder whose exported graph ONNX Runtime should run, or None for torch.

    torch: None. onnx: the folder, or an error when it has no gated graph. auto: the folder
    when it has a gated graph, the onnx extra is installed and the prediction is on the CPU at
    32 bits; else None.

    Args:
        model: a run or bundle folder, or a loaded ImageModel (which has no exported graph).
        gated: whether a folder holds a model.onnx that passed its parity gate.
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
    ready = folder is not None and gated(folder)
    if backend == "onnx":
        if not ready:
            raise ConfigError(
                f"{model} has no exported model that passed its parity gate: run "
                f"imgclf export {model} first, or use --backend torch."
            )
        return folder
    plain = runtime.device.type == "cpu" and runtime.precision == "32"
    return folder if ready and plain and ONNX.installed("onnxruntime") else None
