"""P5: `imgclf predict` on real photos at 224 px (EfficientNet-Lite0), torch and ONNX Runtime
backends, against a naive per-image loop (Pillow + PyTorch, batch 1) and raw ONNX Runtime
(Pillow decoding, batches of 32), all in one run on the same files, with the ratios.

    python -m benchmarks.predict_speed --data ../shared/datasets/animals --images 320
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
from imgclf.models.bundle import save_bundle
from imgclf.models.network import build_model

SIZE = (224, 224)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--images", type=int, default=320)
    args = parser.parse_args()
    files = sorted(p for p in args.data.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    files = files[: args.images]
    print(f"machine: {machine()}; {len(files)} photos from {args.data}")
    model = build_model(ModelConfig(name="efficientnet_lite0", mode="feature_extract"),
                        ["a", "b", "c"], 3, SIZE).eval()  # fmt: skip
    bundle = save_bundle(model, Path(tempfile.mkdtemp(prefix="imgclf-p5-")) / "model")
    gate = np.stack([_decode(path) for path in files[:64]])
    with torch.inference_mode():
        labels = model(torch.from_numpy(gate).permute(0, 3, 1, 2).float()).argmax(1).numpy()
    record = export_onnx(model, bundle, gate, labels, "p5 photos")
    print(f"export: {record['exporter']}, gate {record['attempts'][-1]['max_abs_logit_diff']:.1e}")
    rates = {}
    for backend in ("torch", "onnx"):
        began = time.perf_counter()
        result = api.predict(bundle, [str(f) for f in files], backend=backend, progress=False)
        rates[f"imgclf predict ({backend})"] = len(result) / (time.perf_counter() - began)
    rates["naive loop (Pillow + torch, batch 1)"] = _naive(model, files)
    rates["raw ONNX Runtime (Pillow, batch 32)"] = _raw_ort(bundle / "model.onnx", files)
    naive, raw = (
        rates["naive loop (Pillow + torch, batch 1)"],
        rates["raw ONNX Runtime (Pillow, batch 32)"],
    )
    for name, rate in rates.items():
        print(
            f"{name:40s} {rate:7.1f} img/s  x{rate / naive:4.2f} naive  x{rate / raw:4.2f} raw ORT"
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


if __name__ == "__main__":
    main()
