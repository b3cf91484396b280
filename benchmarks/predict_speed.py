"""P5: `imgclf predict` on real photos at 224 px (EfficientNet-Lite0), torch and ONNX Runtime
backends, against a naive per-image loop (Pillow + PyTorch, batch 1) and raw ONNX Runtime
(Pillow decoding, batches of 32), all in one run on the same files, with the ratios. Each
imgclf backend is called once on 8 photos before it is timed (the first int8 call in a process
is about 0.25 s slower, ONNX Runtime's own start), as the baselines run on warm runtimes.

    python -m benchmarks.predict_speed --data ../shared/datasets/animals --images 320

With ``--run RUN`` (a trained run exported with --format onnx and --format onnx-int8), the run's
own model instead of an untrained one, and the int8 rows: predict --backend onnx-int8, raw int8
ONNX Runtime, and the int8 gate's accuracy change (parity-int8.json) beside them.

With ``--openvino`` (``pip install openvino``; not an imgclf dependency), the same ONNX files
on OpenVINO's CPU runtime against ONNX Runtime, network alone (decoded batches of 32, so the
runtimes are compared, not the decoding): whether OpenVINO would be worth a backend.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from benchmarks.common import machine
from imgclf import api
from imgclf.config import ModelConfig
from imgclf.export.onnx import export_onnx, ort_session
from imgclf.models.bundle import bundle_dir, save_bundle
from imgclf.models.network import build_model

SIZE = (224, 224)
NAIVE, RAW = "naive loop (Pillow + torch, batch 1)", "raw ONNX Runtime (Pillow, batch 32)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--images", type=int, default=320)
    parser.add_argument("--run", type=Path, help="a trained run with both ONNX exports")
    parser.add_argument("--openvino", action="store_true", help="OpenVINO against ORT too")
    args = parser.parse_args()
    files = sorted(p for p in args.data.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    files = files[: args.images]
    print(f"machine: {machine()}; {len(files)} photos from {args.data}")
    model, bundle = _run_model(args.run) if args.run else _untrained(files)
    backends = ("torch", "onnx", "onnx-int8") if args.run else ("torch", "onnx")
    rates = {}
    for backend in backends:  # each after a warm-up call: the baselines' runtimes are warm too
        api.predict(bundle, [str(f) for f in files[:8]], backend=backend, progress=False)
        began = time.perf_counter()
        result = api.predict(bundle, [str(f) for f in files], backend=backend, progress=False)
        rates[f"imgclf predict ({backend})"] = len(result) / (time.perf_counter() - began)
    rates[NAIVE] = _naive(model, files)
    rates[RAW] = _raw_ort(bundle / "model.onnx", files)
    if args.run:
        rates["raw ONNX Runtime int8 (Pillow, batch 32)"] = _raw_ort(
            bundle / "model-int8.onnx", files
        )
    naive, raw = rates[NAIVE], rates[RAW]
    for name, rate in rates.items():
        print(
            f"{name:40s} {rate:7.1f} img/s  x{rate / naive:4.2f} naive  x{rate / raw:4.2f} raw ORT"
        )
    if args.run:
        _print_int8_gate(bundle)
    if args.openvino:
        _runtimes(bundle, files, int8=bool(args.run))


def _untrained(files: list[Path]):
    """An untrained Lite0 bundle, exported through the fp32 gate on the first 64 photos."""
    model = build_model(ModelConfig(name="efficientnet_lite0", mode="feature_extract"),
                        ["a", "b", "c"], 3, SIZE).eval()  # fmt: skip
    bundle = save_bundle(model, Path(tempfile.mkdtemp(prefix="imgclf-p5-")) / "model")
    gate = np.stack([_decode(path) for path in files[:64]])
    with torch.inference_mode():
        labels = model(torch.from_numpy(gate).permute(0, 3, 1, 2).float()).argmax(1).numpy()
    record = export_onnx(model, bundle, gate, labels, "p5 photos")
    print(f"export: {record['exporter']}, gate {record['attempts'][-1]['max_abs_logit_diff']:.1e}")
    return model, bundle


def _run_model(run: Path):
    """A trained run's model and bundle; both its exports must have passed their gates."""
    from imgclf.export.onnx_int8 import passed_gate
    from imgclf.runs.opening import open_model

    bundle = bundle_dir(run)
    if not passed_gate(bundle, "onnx-int8"):
        raise SystemExit(f"{run}: export it first with imgclf export --format onnx-int8.")
    return open_model(run).network.eval(), bundle


def _print_int8_gate(bundle: Path) -> None:
    import json

    record = json.loads((bundle / "parity-int8.json").read_text(encoding="utf-8"))
    gate = record["attempts"][-1]
    print(
        f"int8 gate ({record['images']} {record['split']} images): top-1 agreement "
        f"{gate['top1_agreement']:.1%}, accuracy {gate['fp32_accuracy']:.4f} -> "
        f"{gate['int8_accuracy']:.4f} ({gate['accuracy_change'] * 100:+.2f} points), "
        f"{gate['nodes_excluded']} nodes in fp32"
    )


def _decode(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB").resize(SIZE, Image.BILINEAR))


def _naive(model, files: list[Path]) -> float:
    began = time.perf_counter()
    with torch.inference_mode():
        for path in files:
            x = torch.from_numpy(_decode(path)).permute(2, 0, 1)[None].float()
            torch.softmax(model(x), dim=1)
    return len(files) / (time.perf_counter() - began)


def _raw_ort(path: Path, files: list[Path]) -> float:
    session = ort_session(path)
    began = time.perf_counter()
    for start in range(0, len(files), 32):
        batch = np.stack([_decode(p) for p in files[start : start + 32]]).transpose(0, 3, 1, 2)
        session.run(["probabilities"], {"images": np.ascontiguousarray(batch)})
    return len(files) / (time.perf_counter() - began)


def _runtimes(bundle: Path, files: list[Path], int8: bool, repeats: int = 5) -> None:
    """ONNX Runtime and OpenVINO on the same ONNX files and decoded batches of 32: the
    network's img/s on each (median of ``repeats`` passes over the batches), and each one's
    top-1 agreement with the fp32 graph on ONNX Runtime (what the int8 gate asks: >= 99 %).
    OpenVINO runs at its default inference precision (bf16 where the CPU has it) and at f32."""
    import openvino

    batches = [
        np.ascontiguousarray(
            np.stack([_decode(p) for p in files[i : i + 32]]).transpose(0, 3, 1, 2)
        )
        for i in range(0, min(len(files), 128), 32)
    ]
    names = ["model.onnx", *(["model-int8.onnx"] if int8 else [])]
    core, version = openvino.Core(), openvino.__version__.split("-")[0]
    reference = ort_session(bundle / "model.onnx")
    top1 = np.concatenate([reference.run(["probabilities"], {"images": b})[0] for b in batches])
    top1 = top1.argmax(1)
    for name in names:
        session = ort_session(bundle / name)
        runners = {"ONNX Runtime": lambda b, s=session: s.run(["probabilities"], {"images": b})[0]}
        for precision in ("default", "f32"):
            config = {"PERFORMANCE_HINT": "LATENCY"}
            if precision == "f32":
                config["INFERENCE_PRECISION_HINT"] = "f32"
            compiled = core.compile_model(str(bundle / name), "CPU", config)
            shown = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
            output = compiled.output("probabilities")
            runners[f"OpenVINO {version} {shown}"] = lambda b, c=compiled, o=output: c(b)[o]
        rates, agreement = {}, {}
        for runtime, run in runners.items():
            probs = np.concatenate([run(batch) for batch in batches])  # also the warm-up
            agreement[runtime] = float((probs.argmax(1) == top1).mean())
            times = []
            for _ in range(repeats):
                began = time.perf_counter()
                for batch in batches:
                    run(batch)
                times.append(time.perf_counter() - began)
            rates[runtime] = sum(len(b) for b in batches) / float(np.median(times))
        ort_rate = rates["ONNX Runtime"]
        for runtime, rate in rates.items():
            print(
                f"{name:16s} {runtime:26s} {rate:7.1f} img/s (network alone)  "
                f"x{rate / ort_rate:4.2f} ORT  top-1 agreement with fp32 "
                f"{agreement[runtime]:.1%}"
            )


if __name__ == "__main__":
    main()
