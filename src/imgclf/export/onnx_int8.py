"""int8 ONNX export with an accuracy gate: the exporter registered as ``onnx-int8``.

ONNX Runtime static quantization (QDQ, per-channel weights, uint8 activations: the x86 fast
path) of the run's fp32 graph, which is exported first when the folder has no gated one.
Static, not dynamic: dynamic quantization leaves convolutions in fp32, and its ConvInteger is
slow (onnxruntime#12854). Calibration: the run's own training images, decoded as the run decodes
them. The gate uses the fp32 gate's images (test and val): top-1 agreement with the fp32 graph
>= ``MIN_AGREEMENT`` and accuracy no more than ``MAX_ACCURACY_DROP`` below it. Per-channel
quantization can cost a depthwise network much accuracy (onnxruntime#11415), so a failed gate
is retried with the sensitive nodes left in fp32 (the stem conv and the head, then the
depthwise convs too). int8 can run slower than fp32 (onnxruntime#5319, #26143): both graphs
are timed on the gate images and the int8 one is kept only when faster. parity-int8.json
records every attempt, kept or not.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from imgclf.errors import ConfigError, ModelError
from imgclf.export.onnx import LAYOUTS, export_onnx, exported, require_onnx
from imgclf.export.registry import register_exporter
from imgclf.fileio import atomic_write_text
from imgclf.layout import INT8_NAME, INT8_PARITY_NAME, ONNX_NAME, SPEC_NAME
from imgclf.models.extras import ONNX
from imgclf.models.network import ImageModel
from imgclf.models.onnx_graph import ort_session

MIN_AGREEMENT = 0.99  # top-1 agreement with the fp32 graph
MAX_ACCURACY_DROP = 0.005  # half a point of accuracy
REPEATS = 3  # timed passes over the gate images per graph; the median counts
BATCH = 64
METHOD = "static QDQ, per-channel int8 weights, uint8 activations, MinMax calibration"
# what each try leaves in fp32: the softmax always (uint8 probabilities would come in steps of
# 1/255), then also the stem and the head, then the depthwise convs too
EXCLUSIONS = (("softmax",), ("softmax", "stem", "head"), ("softmax", "stem", "head", "depthwise"))


@register_exporter("onnx-int8", extra=ONNX, filename=INT8_NAME, label="ONNX int8",
                   calibrated=True)  # fmt: skip
def export_onnx_int8(
    model: ImageModel,
    out: Path,
    images: np.ndarray,
    labels: np.ndarray,
    split: str,
    layout: str = "nchw",
    *,
    calibration: np.ndarray,
    min_agreement: float = MIN_AGREEMENT,
    max_accuracy_drop: float = MAX_ACCURACY_DROP,
    min_speedup: float = 1.0,
) -> dict[str, Any]:
    """Quantize the fp32 graph in ``out`` to int8 (model-int8.onnx), kept only when it passes
    the gate and runs ``min_speedup`` times as fast as fp32 here; parity-int8.json either way.

    Args:
        calibration: training images (N, H, W, C uint8) to calibrate the activations' ranges.
        min_agreement, max_accuracy_drop: the gate (top-1 agreement with fp32, as a fraction;
            accuracy below fp32's, as a fraction).
        min_speedup: the int8 graph's speed over the fp32 graph's needed to keep it.
    """
    require_onnx()
    if len(calibration) == 0:
        raise ConfigError("int8 calibration needs training images; the run's train split has none.")
    fp32 = _fp32_graph(model, out, images, labels, split, layout)
    feed = _feed(images, _layout(out))
    reference, fp32_speed = _timed(fp32, feed)
    thresholds = {"min_agreement": min_agreement, "max_accuracy_drop": max_accuracy_drop,
                  "min_speedup": min_speedup}  # fmt: skip
    record: dict[str, Any] = {
        "split": split, "images": int(len(images)), "method": METHOD,
        "calibration": {"split": "train", "images": int(len(calibration))},
        "thresholds": thresholds, "fp32_images_per_s": fp32_speed, "attempts": [],
    }  # fmt: skip
    candidate = out / ".model.int8.candidate"
    with tempfile.TemporaryDirectory(prefix="imgclf-int8-") as work:
        source = _prepared(fp32, Path(work))
        for exclusion in EXCLUSIONS:
            attempt = _attempt(source, candidate, exclusion, calibration, feed, _layout(out))
            attempt.update(_compare(attempt.pop("probs"), reference, labels, thresholds))
            attempt["speedup"] = attempt["int8_images_per_s"] / fp32_speed
            record["attempts"].append(attempt)
            if attempt["gate_passed"]:
                break
    return _keep_or_refuse(record, candidate, out / INT8_NAME, out)


def passed_gate(folder: Path, backend: str = "onnx") -> bool:
    """Whether ``folder`` holds the ``backend`` graph (onnx or onnx-int8) and it passed its
    gate; an int8 graph counts only while the fp32 graph it came from still does (a re-saved
    bundle marks only parity.json stale)."""
    if backend == "onnx":
        return exported(folder)
    try:
        parity = json.loads((folder / INT8_PARITY_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    kept = bool(parity.get("passed")) and (folder / INT8_NAME).is_file()
    return kept and exported(folder)


def _fp32_graph(model, out: Path, images, labels, split: str, layout: str) -> Path:
    """The folder's gated fp32 graph in ``layout``, exported (with its own gate) when missing."""
    if layout not in LAYOUTS:
        raise ConfigError(f"Unknown layout '{layout}'. Layouts: {', '.join(LAYOUTS)}.")
    if not (exported(out) and _layout(out) == layout):
        export_onnx(model, out, images, labels, split, layout)
    return out / ONNX_NAME


def _layout(out: Path) -> str:
    try:
        return json.loads((out / SPEC_NAME).read_text(encoding="utf-8"))["input"]["layout"]
    except (OSError, ValueError, KeyError, TypeError):
        return "missing"


def _feed(images: np.ndarray, layout: str) -> np.ndarray:
    return np.ascontiguousarray(images if layout == "nhwc" else images.transpose(0, 3, 1, 2))


def _timed(path: Path, feed: np.ndarray) -> tuple[np.ndarray, float]:
    """Probabilities of ``feed`` and the median speed (images/s) of REPEATS timed passes,
    after one untimed warm-up batch."""
    session = ort_session(path)
    session.run(["probabilities"], {"images": feed[:BATCH]})
    seconds, probs = [], None
    for _ in range(REPEATS):
        began = time.perf_counter()
        probs = np.concatenate([session.run(["probabilities"], {"images": feed[i : i + BATCH]})[0]
                                for i in range(0, len(feed), BATCH)])  # fmt: skip
        seconds.append(time.perf_counter() - began)
    return probs, len(feed) / float(np.median(seconds))


def _prepared(fp32: Path, work: Path) -> Path:
    """The fp32 graph after ONNX Runtime's pre-quantization pass (shapes, fused ops), as its
    docs advise; the graph as it is when that pass fails."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    target = work / "prepared.onnx"
    try:
        quant_pre_process(str(fp32), str(target))
    except Exception:  # an optional optimization of many failure kinds: quantize without it
        return fp32
    return target


def _attempt(source, candidate, exclusion, calibration, feed, layout) -> dict[str, Any]:
    """One quantization of ``source`` into ``candidate`` with ``exclusion``'s nodes in fp32:
    its probabilities on ``feed`` and its speed."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    excluded = sensitive_nodes(source, exclusion)
    began = time.perf_counter()
    quantize_static(
        str(source), str(candidate), _Calibration(_feed(calibration, layout)),
        quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax,
        nodes_to_exclude=excluded,
    )  # fmt: skip
    seconds = time.perf_counter() - began
    probs, speed = _timed(candidate, feed)
    return {"fp32_nodes": list(exclusion), "nodes_excluded": len(excluded),
            "quantize_seconds": seconds, "int8_images_per_s": speed, "probs": probs}  # fmt: skip


def sensitive_nodes(path: Path, kinds: tuple[str, ...]) -> list[str]:
    """Names of the nodes ``kinds`` names: the softmax, the stem (the first Conv), the head
    (Gemm and MatMul) and the depthwise convs (group > 1), which quantize worst."""
    import onnx

    nodes = list(onnx.load(str(path), load_external_data=False).graph.node)
    convs = [node for node in nodes if node.op_type == "Conv"]
    chosen = [node.name for node in nodes if "softmax" in kinds and node.op_type == "Softmax"]
    if "stem" in kinds and convs:
        chosen.append(convs[0].name)
    if "head" in kinds:
        chosen += [node.name for node in nodes if node.op_type in ("Gemm", "MatMul")]
    if "depthwise" in kinds:
        chosen += [node.name for node in convs if _group(node) > 1]
    return list(dict.fromkeys(name for name in chosen if name))


def _group(node) -> int:
    return next((attr.i for attr in node.attribute if attr.name == "group"), 1)


class _Calibration:
    """ONNX Runtime's calibration reader: the training images in batches."""

    def __init__(self, feed: np.ndarray) -> None:
        self.batches = [feed[i : i + 32] for i in range(0, len(feed), 32)]
        self.rewind()

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self.left, None)
        return None if batch is None else {"images": batch}

    def rewind(self) -> None:
        self.left = iter(self.batches)


def _compare(probs, reference, labels, thresholds) -> dict[str, Any]:
    """The gate: int8 against fp32 on the same images."""
    int8_top, fp32_top = probs.argmax(1), reference.argmax(1)
    agreement = float((int8_top == fp32_top).mean())
    fp32_accuracy = float((fp32_top == labels).mean())
    int8_accuracy = float((int8_top == labels).mean())
    change = int8_accuracy - fp32_accuracy
    close = -change <= thresholds["max_accuracy_drop"] + 1e-12  # float noise in the difference
    passed = agreement >= thresholds["min_agreement"] and close
    return {"top1_agreement": agreement, "fp32_accuracy": fp32_accuracy,
            "int8_accuracy": int8_accuracy, "accuracy_change": change,
            "gate_passed": bool(passed)}  # fmt: skip


def _keep_or_refuse(record, candidate: Path, target: Path, out: Path) -> dict[str, Any]:
    """Keep the last attempt's graph when it passed the gate and is fast enough; else keep
    nothing and raise one line that says why."""
    last = record["attempts"][-1]
    fast = last["speedup"] >= record["thresholds"]["min_speedup"]
    record["passed"] = bool(last["gate_passed"] and fast)
    record["reason"] = None if record["passed"] else _why(record, last)
    atomic_write_text(out / INT8_PARITY_NAME, json.dumps(record, indent=2) + "\n")
    if record["passed"]:
        candidate.replace(target)
        return record
    candidate.unlink(missing_ok=True)
    target.unlink(missing_ok=True)
    raise ModelError(f"int8 export refused: {record['reason']} (fp32 model.onnx kept).")


def _why(record: dict[str, Any], last: dict[str, Any]) -> str:
    limits = record["thresholds"]
    if not last["gate_passed"]:
        return (
            f"even with {last['nodes_excluded']} sensitive nodes in fp32, top-1 agreement "
            f"{last['top1_agreement']:.1%} (needs {limits['min_agreement']:.1%}) and accuracy "
            f"change {last['accuracy_change'] * 100:+.2f} points (allowed "
            f"-{limits['max_accuracy_drop'] * 100:.2f}) on {record['images']} "
            f"{record['split']} images"
        )
    return (
        f"int8 passed the gate but runs at {last['int8_images_per_s']:.1f} images/s against "
        f"fp32's {record['fp32_images_per_s']:.1f} on this machine (x{last['speedup']:.2f}, "
        f"needs x{limits['min_speedup']:g})"
    )
