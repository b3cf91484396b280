"""Near-duplicates on real photos (issue 24): altered copies of random photos planted in a test
split, then how many the audit pairs with their original (recall) and which other pairs it
makes (false pairs), at the default thresholds and on a grid around them, with each step's time.
A copy paired with another photo that the same rule pairs with the copy's original (the data's
own duplicate of it) is counted apart, "through its original's copy", and drawn with
``--grid PNG`` (copy, original, the other photo) for checking by eye, as are the false pairs.

The copies follow the issue's recipe: cropped up to 10 %, resized 0.7-1.3x, mirrored half the
time, a colour shift of up to 15 levels per channel, saved as JPEG at quality 60-90. Pairs
between two of the unaltered photos are counted apart and printed: a web-crawled set has real
repeats, so they are checked by eye.

    python -m benchmarks.audit_duplicates --data ../shared/datasets/animals --copies 120
    python -m benchmarks.audit_duplicates --data ../shared/datasets/cifar10-jpg/train \
        --subset 10000 --copies 200 --grid cifar_pairs.png
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from benchmarks.common import machine
from imgclf.data.formats.files import is_image_name


def random_copy(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """An altered copy: cropped, resized, maybe mirrored, colour-shifted (then saved as JPEG
    by the caller at ``copy_quality``)."""
    image = image.convert("RGB")
    width, height = image.size
    crop = rng.uniform(0.0, 0.10)  # of each side's length, split between its two ends
    left, top = rng.uniform(0.0, crop), rng.uniform(0.0, crop)
    box = (
        left * width,
        top * height,
        width - (crop - left) * width,
        height - (crop - top) * height,
    )
    image = image.crop(tuple(round(v) for v in box))
    scale = rng.uniform(0.7, 1.3)
    image = image.resize((max(8, round(image.width * scale)), max(8, round(image.height * scale))))
    if rng.random() < 0.5:
        image = ImageOps.mirror(image)
    shift = rng.integers(-15, 16, 3)
    pixels = np.clip(np.asarray(image).astype(np.int16) + shift, 0, 255).astype(np.uint8)
    return Image.fromarray(pixels)


def copy_quality(rng: np.random.Generator) -> int:
    return int(rng.integers(60, 91))


def plant(
    data: Path, out: Path, copies: int, seed: int = 0, subset: int | None = None
) -> dict[str, str]:
    """``out/train/<class>/`` holds every photo of ``data`` (class folders), ``out/test/<class>/``
    an altered copy of ``copies`` random ones; returns {copy path: its original's path}."""
    rng = np.random.default_rng(seed)
    photos = sorted(p for p in data.rglob("*") if p.is_file() and is_image_name(p.name))
    if subset is not None and subset < len(photos):  # a random subset (classes keep their share)
        photos = sorted(photos[i] for i in rng.choice(len(photos), size=subset, replace=False))
    for photo in photos:
        target = out / "train" / photo.parent.name / photo.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(photo, target)
    planted = {}
    for index in rng.choice(len(photos), size=copies, replace=False):
        photo = photos[index]
        original = out / "train" / photo.parent.name / photo.name
        target = out / "test" / photo.parent.name / f"copy_{photo.stem}.jpg"
        target.parent.mkdir(parents=True, exist_ok=True)
        with Image.open(original) as image:
            random_copy(image, rng).save(target, quality=copy_quality(rng))
        planted[str(target)] = str(original)
    return planted


def signals(folder: Path, cache: Path, image_size: int | None, neighbors: int) -> dict:
    """The audit's signals on ``folder``: data, hashes, embeddings, candidate pairs, timings."""
    from imgclf.api.settings import make_config
    from imgclf.audit.alignment import aligned_similarity
    from imgclf.audit.duplicates import candidate_pairs
    from imgclf.audit.embedding import audit_embeddings, backbone_size
    from imgclf.audit.inputs import audit_data
    from imgclf.data.pipeline.hashing import hash_distance, perceptual_hashes
    from imgclf.data.pipeline.prepare import prepare_data

    cfg = make_config(None, cache_dir=cache, image_size=image_size)
    times = {}
    started = time.perf_counter()
    prepared = prepare_data(folder, cfg, progress=False, default_size=backbone_size(cfg.model))
    data = audit_data(prepared)
    times["scan + decode"] = time.perf_counter() - started
    started = time.perf_counter()
    hashes = perceptual_hashes(data.images, data.rows)
    times["hashes"] = time.perf_counter() - started
    started = time.perf_counter()
    embeddings = audit_embeddings(data, cfg.model, cache_dir=cache)
    times["embeddings"] = time.perf_counter() - started
    started = time.perf_counter()
    a, b, similarity = candidate_pairs(embeddings, data.rows, neighbors)
    distance = hash_distance(hashes, a, b)
    times["neighbours + distances"] = time.perf_counter() - started
    started = time.perf_counter()
    aligned = np.full(len(a), -1.0, dtype=np.float32)
    gate = (distance <= 16) & (similarity >= 0.4)  # wider than any rule below
    aligned[gate] = aligned_similarity(data.images, a[gate], b[gate])
    times[f"aligned pixels ({int(gate.sum())} pairs)"] = time.perf_counter() - started
    return {"data": data, "a": a, "b": b, "similarity": similarity, "distance": distance,
            "aligned": aligned, "times": times}  # fmt: skip


def judge(found: dict, planted: dict[str, str]) -> dict[str, np.ndarray]:
    """Each candidate pair's truth: 'planted' (a copy and its original), 'false' (a copy and
    anything else) or 'originals' (two unaltered photos: checked by eye)."""
    names = found["data"].names
    left = np.array([names[i] for i in found["a"]])
    right = np.array([names[i] for i in found["b"]])
    is_copy = np.vectorize(lambda n: n in planted)
    copy_left, copy_right = is_copy(left), is_copy(right)
    planted_pair = np.array(
        [planted.get(x) == y or planted.get(y) == x for x, y in zip(left, right, strict=True)],
        dtype=bool,
    )
    return {
        "planted": planted_pair,
        "false": (copy_left | copy_right) & ~planted_pair,
        "originals": ~copy_left & ~copy_right,
    }


def through_original(found: dict, planted: dict[str, str], accepted: np.ndarray) -> np.ndarray:
    """Which accepted pairs join a copy to a photo that ``accepted`` also pairs with the copy's
    original: the data's own duplicate of the original, not a false pair."""
    names = found["data"].names
    row = {name: i for i, name in enumerate(names)}
    pairs = zip(found["a"][accepted], found["b"][accepted], strict=True)
    kept = {(int(x), int(y)) for x, y in pairs}
    result = np.zeros(len(accepted), dtype=bool)
    for k in np.flatnonzero(accepted):
        x, y = names[found["a"][k]], names[found["b"][k]]
        copy, other = (x, y) if x in planted else (y, x)
        if copy in planted:
            pair = sorted((row[planted[copy]], row[other]))
            result[k] = (pair[0], pair[1]) in kept
    return result


def rule_table(
    found: dict, planted: dict[str, str], truth: dict, rules: list[tuple[str, np.ndarray]]
) -> None:
    """Recall, false pairs (and those through the original's own copy) and pairs among the
    originals of each accepted-pair rule."""
    print(f"{'rule':<46} {'recall':>7} {'false':>6} {'through':>8} {'originals':>10}")
    for name, accepted in rules:
        through = through_original(found, planted, accepted) & truth["false"]
        found_, false, originals = (int((accepted & truth[k]).sum()) for k in truth)
        print(f"{name:<46} {found_ / len(planted):7.3f} {false - int(through.sum()):6d} "
              f"{int(through.sum()):8d} {originals:10d}")  # fmt: skip


def draw_pairs(found: dict, planted: dict[str, str], rows: np.ndarray, path: Path) -> None:
    """A grid, a row per pair: the copy, its original, the photo it was paired with."""
    names, tile = found["data"].names, 96
    sheet = Image.new("RGB", (3 * (tile + 4), max(1, len(rows)) * (tile + 4)), "white")
    for r, k in enumerate(rows):
        x, y = names[found["a"][k]], names[found["b"][k]]
        copy, other = (x, y) if x in planted else (y, x)
        for c, name in enumerate((copy, planted[copy], other)):
            with Image.open(name) as image:
                sheet.paste(
                    image.convert("RGB").resize((tile, tile)), (c * (tile + 4), r * (tile + 4))
                )
    sheet.save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--copies", type=int, default=120)
    parser.add_argument("--subset", type=int, default=None, help="a random subset of the photos")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--image-size", type=int, default=None)
    parser.add_argument("--neighbors", type=int, default=10)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--grid", type=Path, default=None, help="a PNG of the default's pairs "
                        "of a copy with anything but its original")  # fmt: skip
    args = parser.parse_args()
    print(f"machine: {machine()}")
    out = args.out or Path(tempfile.mkdtemp(prefix="imgclf-audit-"))
    planted = plant(args.data, out / "planted", args.copies, args.seed, args.subset)
    found = signals(out / "planted", out / "cache", args.image_size, args.neighbors)
    truth = judge(found, planted)
    s, d, aligned = found["similarity"], found["distance"], found["aligned"]
    for kind in ("planted", "false", "originals"):
        chosen = truth[kind]
        if chosen.any():
            print(f"{kind:>9} candidate pairs: {int(chosen.sum()):5d}, cosine "
                  f"{s[chosen].min():.3f}-{s[chosen].max():.3f}, pHash distance "
                  f"{d[chosen].min()}-{d[chosen].max()}")  # fmt: skip
    rules = [("embedding alone, cosine >= 0.861", s >= 0.861),
             ("pHash alone, distance <= 10", d <= 10),
             ("pHash <= 10, cosine >= 0.8 (the rule before)", (d <= 10) & (s >= 0.8))]  # fmt: skip
    for distance, similarity in ((10, 0.6), (12, 0.6), (14, 0.6), (12, 0.8)):
        for least in (0.88, 0.9, 0.92, 0.94, 0.96):
            rules.append((f"pHash <= {distance}, cosine >= {similarity}, aligned >= {least}",
                          (d <= distance) & (s >= similarity) & (aligned >= least)))  # fmt: skip
    rule_table(found, planted, truth, rules)
    default = (d <= 12) & (s >= 0.6) & (aligned >= 0.92)
    among = default & truth["originals"]
    for i, j in zip(found["a"][among], found["b"][among], strict=True):
        print(f"pair among the originals: {found['data'].names[i]} {found['data'].names[j]}")
    if args.grid:
        draw_pairs(found, planted, np.flatnonzero(default & truth["false"]), args.grid)
        print(f"the default's pairs of a copy with another photo drawn in {args.grid}")
    for step, seconds in found["times"].items():
        print(f"{step:>24}: {seconds:6.1f} s")
    print(f"planted data and cache kept in {out}")


if __name__ == "__main__":
    main()
