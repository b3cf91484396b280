"""``predict --explain DIR``: one PNG per predicted image, the image with the Grad-CAM map of
its predicted class drawn over it (``models.attribution``), named after the image (a second
image of the same name gets -2, -3, ...). The maps are computed on torch whatever backend
predicted: the exported graph has no gradients."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from imgclf.data.pipeline.decode import decode_file
from imgclf.fileio import atomic_path
from imgclf.models.attribution import BATCH, find_target, overlays
from imgclf.models.network import ImageModel
from imgclf.predict.predictions import Predictions


def write_explanations(model: ImageModel, result: Predictions, folder: str | Path) -> list[Path]:
    """Write the overlays of ``result``'s images into ``folder`` (made); returns their paths,
    in ``result``'s order (also kept in ``result.explanations``)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    spec = model.preprocess_spec
    mode = "grayscale" if spec.channels == 1 else "rgb"
    classes = result.probs.argmax(axis=1)
    target, written, taken = None, [], set()
    for start in range(0, len(result.paths), BATCH):  # decoded a batch at a time
        paths = result.paths[start : start + BATCH]
        images = np.stack([decode_file(Path(p), tuple(spec.image_size), spec.fit, mode)
                           for p in paths])  # fmt: skip
        if target is None:
            target = find_target(model, torch.from_numpy(images[:1]).permute(0, 3, 1, 2).float())
        drawn = overlays(model, images, classes[start : start + BATCH], target)
        for path, picture in zip(paths, drawn, strict=True):
            out = _unique(folder, Path(path).stem, taken)
            with atomic_path(out) as tmp:
                Image.fromarray(picture).save(tmp, format="PNG")
            written.append(out)
    result.explanations = [str(p) for p in written]
    return written


def check_explainable(model: ImageModel) -> None:
    """A one-line ModelError for a network with no spatial map to explain (an MLP)."""
    height, width = model.preprocess_spec.image_size
    find_target(model, torch.zeros(1, model.preprocess_spec.channels, height, width))


def _unique(folder: Path, stem: str, taken: set[str]) -> Path:
    name, n = f"{stem}.png", 1
    while name in taken:
        n += 1
        name = f"{stem}-{n}.png"
    taken.add(name)
    return folder / name
