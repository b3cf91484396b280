"""Explanations (issue 25): the cost of a Grad-CAM map per image for Lite0 at 224 px (target
<= 100 ms on 2 cores) and its faithfulness by deletion: blank the 20 % of pixels the map
rates highest and, separately, the top 20 % of a random map as coarse as Grad-CAM's, and
count the images whose predicted-class logit falls further under the map's deletion (target:
>= 90 % of 200 test images). The logit, not the probability: a confident model's
probabilities sit at 1.0 before and after most deletions, which ties the two.

    python -m benchmarks.explain --data ../shared/datasets/animals --images 200

It trains the default model (Lite0, embed once) on ``--data`` split 70/15/15 and scores the
test split's images.
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.audit_labels import photos_of
from benchmarks.common import machine
from benchmarks.unknown_scores import decode, split_table

SHARE = 0.2  # of the pixels blanked


@torch.inference_mode()
def logits(model, images: np.ndarray) -> np.ndarray:
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    return model(x).numpy()


def blanked(images: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Each image with its masked pixels set to its mean colour."""
    means = images.reshape(len(images), -1, images.shape[-1]).mean(axis=1)
    out = images.astype(np.float32)
    for i in range(len(images)):
        out[i][masks[i]] = means[i]
    return out.round().astype(np.uint8)


def smooth_random(rng: np.random.Generator, shape: tuple[int, ...], stride: int = 32):
    """Random maps as coarse as Grad-CAM's (one value per ``stride`` pixels, upsampled the same
    way), so both deletions blank blobs: scattered pixels would hurt a CNN by their own noise."""
    n, height, width = shape
    coarse = torch.from_numpy(rng.random((n, 1, max(1, height // stride), max(1, width // stride))))
    fine = torch.nn.functional.interpolate(coarse, size=(height, width), mode="bilinear")
    return fine[:, 0].numpy()


def top_share(maps: np.ndarray, share: float) -> np.ndarray:
    flat = maps.reshape(len(maps), -1)
    cut = np.quantile(flat, 1 - share, axis=1, keepdims=True)
    return (flat >= cut).reshape(maps.shape)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from imgclf import api
    from imgclf.models.attribution import class_activation_maps, find_target
    from imgclf.runs.opening import open_model

    print(f"machine: {machine()}")
    rng = np.random.default_rng(args.seed)
    project = Path(tempfile.mkdtemp(prefix="imgclf-explain-"))
    table = split_table(photos_of(args.data, None, rng), rng, project / "table.csv")
    run = api.train(table, project=project, name="explain", quiet=True, seed=args.seed).path
    model = open_model(run).network.eval()
    with table.open(encoding="utf-8") as handle:
        paths = [r["path"] for r in csv.DictReader(handle) if r["split"] == "test"]
    paths = paths[: args.images]
    images = decode(paths, model)
    scores = logits(model, images)
    predicted = scores.argmax(axis=1)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    target = find_target(model, x[:1])
    class_activation_maps(model, x[:8], torch.from_numpy(predicted[:8]), target)  # warm-up
    started = time.perf_counter()
    maps = np.concatenate([
        class_activation_maps(model, x[i : i + 8], torch.from_numpy(predicted[i : i + 8]), target)
        for i in range(0, len(x), 8)
    ])  # fmt: skip
    per_image = (time.perf_counter() - started) / len(x)
    random_maps = smooth_random(rng, maps.shape)
    rows = np.arange(len(images))
    kept = scores[rows, predicted]
    by_map = logits(model, blanked(images, top_share(maps, SHARE)))[rows, predicted]
    chance = logits(model, blanked(images, top_share(random_maps, SHARE)))[rows, predicted]
    beats = np.mean((kept - by_map) > (kept - chance))
    print(f"{len(images)} test images of {run}: Grad-CAM on {target.name}, "
          f"{1000 * per_image:.0f} ms per image (batches of 8)")  # fmt: skip
    print(f"deletion of the top {SHARE:.0%}: predicted-class logit {kept.mean():.3f} -> "
          f"{by_map.mean():.3f} by the map, {chance.mean():.3f} at random; the map's deletion "
          f"hurts more on {beats:.1%} of the images")  # fmt: skip


if __name__ == "__main__":
    main()
