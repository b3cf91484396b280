"""ONNX export with a parity gate: the exporter registered as ``onnx``.

The graph takes what a decoder gives: uint8 pixels at the trained size, NCHW or NHWC, and does
the rest inside (``rescale``, mean/std, the network, the calibration's temperature, softmax):
outputs ``logits`` and ``probabilities``, and for a model with an unknown score a third,
``in_distribution`` (the share ``predict --abstain`` compares with the threshold onnx.json
names), with a dynamic batch axis, in one file (no external data), opset >= 18.
Resizing stays outside (Pillow's and ONNX's Resize differ): the bundle's PreprocessSpec says
how, and ``onnx.json`` repeats it beside the graph.

An exported file is kept only if it passes the gate: real images of the run's own split through
both PyTorch and ONNX Runtime, max |logit difference| <= ``MAX_LOGIT_DIFF``, every top-1 equal,
the same accuracy, and every in-distribution share one that torch gives for an unknown score
within ``SCORE_TOLERANCE`` of its own (a validation image's score is itself a reference point,
which a 1e-6 difference puts on either side). The current exporter (torch.export,
``dynamo=True``) is tried first, then the TorchScript-based one; ``parity.json`` records which
passed. Building the graph and the ONNX Runtime session are ``models/onnx_graph.py``'s (the
embed-once pass uses them too).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from imgclf.errors import ConfigError, ModelError
from imgclf.export.registry import register_exporter
from imgclf.fileio import atomic_path, atomic_write_text
from imgclf.layout import ONNX_NAME, PARITY_NAME, SPEC_NAME  # the bundle's files
from imgclf.models.conformal import threshold
from imgclf.models.extras import ONNX
from imgclf.models.network import ImageModel
from imgclf.models.onnx_graph import EXPORTERS, OPSET, onnx_graph, ort_session

MAX_LOGIT_DIFF = 1e-4
MIN_IMAGES = 64
SCORE_TOLERANCE = 1e-4  # relative: the unknown scores of torch and the graph, float32 features
SHARE = "in_distribution"
LAYOUTS = ("nchw", "nhwc")


class Deployable(nn.Module):
    """uint8 pixels (NCHW or NHWC) in; logits and softmax probabilities out, and each image's
    in-distribution share when the model has an unknown score."""

    def __init__(self, model: ImageModel, layout: str = "nchw") -> None:
        super().__init__()
        self.model, self.layout = model, layout

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if self.layout == "nhwc":
            images = images.permute(0, 3, 1, 2)
        logits, share = self.model.answer(images.float())
        probs = torch.softmax(logits, dim=1)
        return (logits, probs) if share is None else (logits, probs, share.float())


def outputs(model: ImageModel) -> tuple[str, ...]:
    """The graph's outputs, in order."""
    return ("logits", "probabilities") + (() if model.unknown is None else (SHARE,))


def require_onnx() -> None:
    """The optional libraries, or one line naming the extra."""
    ONNX.require("ONNX export")


def export_graph(model: ImageModel, path: Path, exporter: str, layout: str = "nchw") -> None:
    """Write ``model`` as one ONNX file at ``path`` with ``exporter`` (dynamo or torchscript)."""
    import onnx

    spec = model.preprocess_spec
    height, width = spec.image_size
    shape = (
        (2, spec.channels, height, width) if layout == "nchw" else (2, height, width, spec.channels)
    )
    example = torch.zeros(shape, dtype=torch.uint8)
    wrapper = Deployable(model.eval(), layout).eval()
    with atomic_path(path) as tmp:
        graph = onnx_graph(wrapper, example, outputs(model), exporter)
        onnx.save_model(graph, str(tmp), save_as_external_data=False)
    onnx.checker.check_model(str(path))


class OnnxClassifier:
    """ONNX Runtime on an exported folder (model.onnx, or ``graph``, + onnx.json): softmax
    probabilities of uint8 (B, H, W, C) batches, as the torch path takes them, and with
    ``answer`` the in-distribution shares too, when the graph has them (``abstains``)."""

    def __init__(self, folder: Path, threads: int | None = None, graph: str = ONNX_NAME) -> None:
        require_onnx()
        self.spec = json.loads((folder / SPEC_NAME).read_text(encoding="utf-8"))
        self.layout = self.spec["input"]["layout"]
        self.graph = graph
        self.session = ort_session(folder / graph, threads, spin=False)  # decoding runs beside
        self.abstains = SHARE in {output.name for output in self.session.get_outputs()}

    def __call__(self, images: np.ndarray) -> np.ndarray:
        return self.session.run(["probabilities"], self._feed(images))[0]

    def answer(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities, in-distribution shares) of one batch (a graph that ``abstains``)."""
        probs, shares = self.session.run(["probabilities", SHARE], self._feed(images))
        return probs, shares

    def _feed(self, images: np.ndarray) -> dict[str, np.ndarray]:
        feed = images if self.layout == "nhwc" else images.transpose(0, 3, 1, 2)
        return {"images": np.ascontiguousarray(feed)}


def exported(folder: Path) -> bool:
    """Whether ``folder`` holds a model.onnx that passed its parity gate."""
    try:
        parity = json.loads((folder / PARITY_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return bool(parity.get("passed")) and (folder / ONNX_NAME).is_file()


def check_parity(
    model: ImageModel, path: Path, images: np.ndarray, labels: np.ndarray, layout: str = "nchw"
) -> dict[str, Any]:
    """The gate: ``images`` (N, H, W, C uint8, as the run's decoder made them) through PyTorch
    and ONNX Runtime; their max |logit difference|, top-1 agreement and accuracies."""
    nchw = np.ascontiguousarray(images.transpose(0, 3, 1, 2))
    feed = np.ascontiguousarray(images) if layout == "nhwc" else nchw
    chunks = range(0, len(images), 64)
    names = ["logits"] + ([] if model.unknown is None else [SHARE])
    answers = [_torch_answer(model.eval(), nchw[i : i + 64]) for i in chunks]
    expected = np.concatenate([logits for logits, _ in answers])
    session = ort_session(path)
    runs = [session.run(names, {"images": feed[i : i + 64]}) for i in chunks]
    got = np.concatenate([run[0] for run in runs])
    torch_top, onnx_top = expected.argmax(1), got.argmax(1)
    diff = float(np.abs(expected - got).max())
    result = {
        "images": int(len(images)),
        "max_abs_logit_diff": diff,
        "top1_agreement": float((torch_top == onnx_top).mean()),
        "torch_accuracy": float((torch_top == labels).mean()),
        "onnx_accuracy": float((onnx_top == labels).mean()),
        "max_allowed_logit_diff": MAX_LOGIT_DIFF,
    }
    shares_agree = True
    if model.unknown is not None:
        shares = np.concatenate([run[1] for run in runs])
        scores = torch.cat([score for _, score in answers])
        result.update(_share_agreement(model, scores, shares))
        shares_agree = result["shares_within_tolerance"] == 1.0
    result["passed"] = bool(
        diff <= MAX_LOGIT_DIFF
        and result["top1_agreement"] == 1.0
        and result["torch_accuracy"] == result["onnx_accuracy"]
        and shares_agree
    )
    return result


@register_exporter("onnx", extra=ONNX, filename=ONNX_NAME, label="ONNX")
def export_onnx(
    model: ImageModel,
    out: Path,
    images: np.ndarray,
    labels: np.ndarray,
    split: str,
    layout: str = "nchw",
    exporters: tuple[str, ...] = EXPORTERS,
) -> dict[str, Any]:
    """Export ``model`` into ``out``/model.onnx through the first exporter whose graph passes
    the gate; write parity.json (every attempt) and onnx.json (the input spec). A graph that
    fails is not kept, and if none passes, a ModelError says why."""
    require_onnx()
    if layout not in LAYOUTS:
        raise ConfigError(f"Unknown layout '{layout}'. Layouts: {', '.join(LAYOUTS)}.")
    if len(images) < MIN_IMAGES:
        raise ConfigError(
            f"The parity gate needs at least {MIN_IMAGES} real images; the run's {split} split "
            f"has {len(images)}. Pass data with more images (--data)."
        )
    out.mkdir(parents=True, exist_ok=True)
    target, attempts = out / ONNX_NAME, []
    candidate = out / f".{ONNX_NAME}.candidate"
    for exporter in exporters:
        began = time.perf_counter()
        try:
            export_graph(model, candidate, exporter, layout)
            gate = check_parity(model, candidate, images, labels, layout)
        except Exception as exc:  # an exporter's own failure, of many kinds: try the next
            attempts.append({"exporter": exporter, "error": " ".join(str(exc).split())[:500]})
            candidate.unlink(missing_ok=True)
            continue
        gate.update(exporter=exporter, seconds=time.perf_counter() - began)
        attempts.append(gate)
        if gate["passed"]:
            candidate.replace(target)
            break
        candidate.unlink(missing_ok=True)
    record = {"split": split, "opset": OPSET, "layout": layout, "attempts": attempts,
              "passed": bool(attempts and attempts[-1].get("passed")),
              "exporter": attempts[-1].get("exporter") if attempts else None}  # fmt: skip
    atomic_write_text(out / PARITY_NAME, json.dumps(record, indent=2) + "\n")
    if not record["passed"]:
        (out / SPEC_NAME).unlink(missing_ok=True)
        target.unlink(missing_ok=True)
        raise ModelError(
            f"ONNX export refused: no exporter passed the parity gate ({_why(attempts)})."
        )
    atomic_write_text(out / SPEC_NAME, json.dumps(input_spec(model, layout), indent=2) + "\n")
    return record


def input_spec(model: ImageModel, layout: str) -> dict[str, Any]:
    """What a caller feeds the graph, and how to resize to it (outside the graph)."""
    spec = model.preprocess_spec
    height, width = spec.image_size
    shape = ["batch", spec.channels, height, width] if layout == "nchw" else [
        "batch", height, width, spec.channels]  # fmt: skip
    return {
        "input": {"name": "images", "dtype": "uint8", "layout": layout, "shape": shape},
        "outputs": list(outputs(model)),
        "classes": model.classes,
        "abstain": _abstain_spec(model),
        "sets": _sets_spec(model),
        "resize": {"size": [height, width], "fit": spec.fit, "interpolation": spec.interpolation,
                   "crop_pct": spec.crop_pct, "note": "decode and fit with Pillow as imgclf does"},
        "inside_the_graph": {"rescale": spec.rescale, "mean": list(spec.mean),
                             "std": list(spec.std), "softmax": True,
                             "temperature": model.temperature},
    }  # fmt: skip


@torch.inference_mode()
def _torch_answer(model: ImageModel, nchw: np.ndarray) -> tuple[np.ndarray, torch.Tensor | None]:
    """The logits of a batch and, with an unknown score, its raw scores (before placing)."""
    logits, scores = model.unknown_scores(torch.from_numpy(nchw).float())
    return logits.numpy(), scores


def _share_agreement(model: ImageModel, scores: torch.Tensor, shares: np.ndarray):
    """Whether each graph share is one torch gives for a score within ``SCORE_TOLERANCE``
    (relative) of torch's ``scores``: an image whose score sits on a validation image's (as
    every validation image's does) may be placed either side of it."""
    with torch.inference_mode():
        slack = SCORE_TOLERANCE * scores.abs().clamp_min(1.0)
        low = model.unknown.place(scores - slack).numpy()
        high = model.unknown.place(scores + slack).numpy()
        exact = model.unknown.place(scores).numpy()
    inside = (shares >= low - 1e-6) & (shares <= high + 1e-6)
    return {"shares_within_tolerance": float(inside.mean()),
            "max_abs_share_diff": float(np.abs(shares - exact).max()),
            "score_tolerance": SCORE_TOLERANCE}  # fmt: skip


def _abstain_spec(model: ImageModel) -> dict[str, Any] | None:
    """How the graph abstains (None: it has no unknown score): the output, the threshold."""
    unknown = model.spec.get("unknown")
    if model.unknown is None or not unknown:
        return None
    return {
        "output": SHARE,
        "threshold": unknown["threshold"],
        "score": unknown["score"],
        "rule": f"answer unknown when {SHARE} < threshold (imgclf predict --abstain auto)",
    }


SET_COVERAGES = (0.8, 0.9, 0.95, 0.99)  # onnx.json's thresholds: imgclf predict --sets takes any


def _sets_spec(model: ImageModel) -> dict[str, Any] | None:
    """How to build prediction sets from the graph's probabilities (None: no conformal
    scores): the split-conformal threshold of a few coverages."""
    if model.conformal is None:
        return None
    scores = model.conformal.scores.cpu().numpy()
    return {"method": "lac", "thresholds": {str(c): threshold(scores, c) for c in SET_COVERAGES},
            "rule": "a class is in the set when 1 - probability <= threshold; the top class "
            "always is (imgclf predict --sets COVERAGE)"}  # fmt: skip


def _why(attempts: list[dict[str, Any]]) -> str:
    parts = []
    for attempt in attempts:
        if "error" in attempt:
            parts.append(f"{attempt['exporter']}: {attempt['error'][:160]}")
        else:
            shares = attempt.get("shares_within_tolerance")
            parts.append(
                f"{attempt['exporter']}: max |logit diff| {attempt['max_abs_logit_diff']:.2g} "
                f"(allowed {MAX_LOGIT_DIFF:g}), top-1 agreement {attempt['top1_agreement']:.3f}"
                + ("" if shares is None else f", shares in tolerance {shares:.3f}")
            )
    return "; ".join(parts) or "no exporter ran"
