"""Tiny planted data for the audit's tests: generated pictures in train/val/test class folders,
with exact and altered copies across and within splits, and one of each bad image.

Every picture is a random composition (a gradient, a few shapes, some texture), so two
pictures of one class share a kind of shape but never a layout: the audit must pair the
planted copies and nothing else.
"""

from __future__ import annotations

import io
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageOps

SIDE = 96


def picture(rng: np.random.Generator, shape: str, side: int = SIDE) -> Image.Image:
    """A random composition of ``shape`` ('circle' or 'square') on a textured gradient
    (``side`` a multiple of 8)."""
    yy, xx = np.mgrid[0:side, 0:side] / side
    start, end = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    angle = rng.uniform(0, 2 * np.pi)
    t = (np.cos(angle) * xx + np.sin(angle) * yy + 1.5) / 3
    background = start + (end - start) * t[..., None]
    texture = rng.normal(0, 12, (side // 8, side // 8, 1)).repeat(8, 0).repeat(8, 1)
    image = Image.fromarray(np.clip(background + texture, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(rng.integers(3, 6)):
        x0, y0 = rng.integers(0, side - 24, 2)
        size = rng.integers(14, 40)
        box = (int(x0), int(y0), int(x0 + size), int(y0 + size))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        (draw.ellipse if shape == "circle" else draw.rectangle)(box, fill=colour)
    return image


def altered(image: Image.Image, *, scale=1.0, crop=0.0, flip=False, shift=0, quality=None):
    """A copy of ``image``: resized by ``scale``, cropped by ``crop`` of each side's length
    (from the top left), mirrored, colour-shifted by ``shift`` levels, re-encoded as JPEG."""
    width, height = image.size
    if crop:
        image = image.crop((int(crop * width), int(crop * height), width, height))
    if scale != 1.0:
        image = image.resize((round(image.width * scale), round(image.height * scale)))
    if flip:
        image = ImageOps.mirror(image)
    if shift:
        pixels = np.asarray(image).astype(np.int16) + np.array([shift, -shift // 2, shift // 3])
        image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    if quality is not None:
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=quality)
        image = Image.open(io.BytesIO(buffer.getvalue()))
        image.load()
    return image


@dataclass
class Planted:
    """The planted data's root and what was planted in it (paths relative to the root)."""

    root: Path
    families: list[set[str]] = field(default_factory=list)  # an original and its copies
    leaks: dict[str, str] = field(default_factory=dict)  # later-split copy -> its split's source
    conflicting: set[str] = field(default_factory=set)
    flagged: dict[str, str] = field(default_factory=dict)  # bad image -> the kind it must get
    unreadable: set[str] = field(default_factory=set)


def make_planted(root: Path, seed: int = 0) -> Planted:
    """train/val/test of 'circles' and 'squares' (12 / 3 / 4 originals each) plus the plants."""
    rng = np.random.default_rng(seed)
    planted = Planted(root)
    counts = {"train": 12, "val": 3, "test": 4}
    for split, n in counts.items():
        for label, shape in (("circles", "circle"), ("squares", "square")):
            folder = root / split / label
            folder.mkdir(parents=True)
            for i in range(n):
                picture(rng, shape).save(folder / f"{shape}{i:02d}.png")
    _plant_copies(planted)
    _plant_bad_images(planted, rng)
    return planted


def _plant_copies(planted: Planted) -> None:
    root = planted.root

    def copy(source: str, target: str, **alter) -> None:
        if alter:
            with Image.open(root / source) as image:
                altered(image, **alter).save(root / target)
        else:
            shutil.copyfile(root / source, root / target)
        planted.families.append({source, target})

    copy("train/circles/circle00.png", "test/circles/exact_circle00.png")
    planted.leaks["test/circles/exact_circle00.png"] = "train"
    copy("train/squares/square01.png", "test/squares/flipped_square01.jpg",
         scale=0.8, flip=True, quality=70)  # fmt: skip
    planted.leaks["test/squares/flipped_square01.jpg"] = "train"
    copy("train/circles/circle02.png", "val/circles/cropped_circle02.png", crop=0.08, shift=12)
    planted.leaks["val/circles/cropped_circle02.png"] = "train"
    copy("train/circles/circle03.png", "train/circles/reencoded_circle03.jpg",
         scale=1.25, quality=60)  # fmt: skip
    copy("train/circles/circle04.png", "train/squares/mislabelled_circle04.png")
    planted.conflicting |= {"train/circles/circle04.png", "train/squares/mislabelled_circle04.png"}


def _plant_bad_images(planted: Planted, rng: np.random.Generator) -> None:
    root = planted.root
    dark = np.asarray(picture(rng, "circle")).astype(np.float32) * 0.1
    Image.fromarray(dark.astype(np.uint8)).save(root / "train/circles/dark.png")
    flat = np.full((SIDE, SIDE, 3), 128, dtype=np.uint8) + rng.integers(0, 2, (SIDE, SIDE, 3))
    Image.fromarray(flat.astype(np.uint8)).save(root / "train/squares/uniform.png")
    picture(rng, "circle").resize((12, 12)).save(root / "test/circles/tiny.png")
    blurred = picture(rng, "square").filter(ImageFilter.GaussianBlur(6))
    blurred.save(root / "train/squares/blurry.png")
    wide = picture(rng, "square").resize((SIDE * 2, SIDE // 3))
    wide.save(root / "val/squares/wide.png")
    planted.flagged = {
        "train/circles/dark.png": "dark",
        "train/squares/uniform.png": "uniform",
        "test/circles/tiny.png": "tiny",
        "train/squares/blurry.png": "blurry",
        "val/squares/wide.png": "odd_aspect",
    }
    good = (root / "train/squares/square00.png").read_bytes()
    (root / "train/squares/truncated.png").write_bytes(good[: len(good) // 3])
    (root / "test/squares/text.jpg").write_text("not an image\n")
    planted.unreadable = {"train/squares/truncated.png", "test/squares/text.jpg"}
