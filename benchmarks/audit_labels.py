"""Wrong labels on real photos (issue 24): flip a share of the training labels at random to
another class, audit, and count how many flips the label check finds (recall) and how many of
its flags are flips (precision); then train on the noisy labels as they are and without the
flagged images, and compare test accuracy with training on the true labels.

The photos get a seeded stratified 80/20 train/test split written into a path/label/split
table; only training labels are flipped, the test labels stay true. The audit reads the same
table (every split), so a flag on a test image counts against precision.

    python -m benchmarks.audit_labels --data ../shared/datasets/animals --seeds 0 1 2
    python -m benchmarks.audit_labels --data ../shared/datasets/cifar10-jpg/train --subset 10000 \
        --no-train --ceiling 0.8
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import machine
from imgclf.data.formats.files import is_image_name


def photos_of(data: Path, subset: int | None, rng: np.random.Generator) -> list[tuple[str, str]]:
    """(path, class) of every photo in ``data``'s class folders (nested folders allowed: the
    class is the photo's parent folder), or a stratified random ``subset`` of them."""
    found = sorted(
        (str(p.resolve()), p.parent.name)
        for p in data.rglob("*")
        if p.is_file() and is_image_name(p.name)
    )
    if subset is None or subset >= len(found):
        return found
    labels = np.array([label for _, label in found])
    keep = []
    for label in sorted(set(labels)):
        members = np.flatnonzero(labels == label)
        share = round(subset * len(members) / len(found))
        keep += rng.choice(members, size=share, replace=False).tolist()
    return [found[i] for i in sorted(keep)]


def plant(rows: list[tuple[str, str]], share: float, rng: np.random.Generator, out: Path):
    """Tables ``true.csv`` and ``noisy.csv`` (path, label, split); returns the flipped paths."""
    classes = sorted({label for _, label in rows})
    labels = np.array([label for _, label in rows])
    split = np.array(["train"] * len(rows), dtype=object)
    for label in classes:  # stratified 20 % test
        members = rng.permutation(np.flatnonzero(labels == label))
        split[members[: round(0.2 * len(members))]] = "test"
    train = np.flatnonzero(split == "train")
    flipped = rng.choice(train, size=round(share * len(train)), replace=False)
    noisy = labels.copy()
    for i in flipped:
        others = [c for c in classes if c != labels[i]]
        noisy[i] = others[rng.integers(len(others))]
    for name, column in (("true", labels), ("noisy", noisy)):
        with (out / f"{name}.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["path", "label", "split"])
            writer.writerows(zip([p for p, _ in rows], column, split, strict=True))
    return {rows[i][0] for i in flipped}


def audit_flags(table: Path, cache: Path, out: Path, image_size: int | None):
    """The paths the label check flags, the audit's timings (seconds per step) and its data."""
    from imgclf import api

    started = time.perf_counter()
    result = api.audit(
        table, out=out, checks="labels", cache_dir=cache, image_size=image_size, progress=False
    )
    timings = {**result.timings, "audit": time.perf_counter() - started}
    flagged = {
        str(Path(result.data.names[i.row]).resolve())
        for i in result.issues
        if i.kind == "label_issue"
    }
    return flagged, timings, result.data


def ceiling(data, cache: Path, flipped: set[str], recall: float) -> str:
    """The best precision any threshold on p(given) reaches at ``recall``, on the label check's
    own out-of-sample probabilities (the same embeddings, head and folds): how far ranking by
    these probabilities can go, whatever the count flagged."""
    from imgclf.audit.embedding import audit_embeddings
    from imgclf.audit.labels import out_of_sample_probabilities
    from imgclf.config import ModelConfig

    rows = data.rows
    features = audit_embeddings(data, ModelConfig(), cache_dir=cache)[rows]  # cached by the audit
    labels = data.labels[rows]
    present = np.unique(labels)
    probs = out_of_sample_probabilities(features, labels, present, 5, seed=0)
    given = probs[np.arange(len(rows)), np.searchsorted(present, labels)]
    flips = np.array([str(Path(data.names[i]).resolve()) in flipped for i in rows])
    found = np.cumsum(flips[np.argsort(given, kind="stable")])
    needed = int(np.ceil(recall * flips.sum() - 1e-9))
    flagged = int(np.searchsorted(found, needed)) + 1
    return (
        f"head right on {np.mean(probs.argmax(1) == np.searchsorted(present, labels)):.1%} out "
        f"of sample; the best precision at recall {recall:.2f} by p(given): "
        f"{needed / flagged:.3f} ({flagged} flagged)"
    )


def without(table: Path, flagged: set[str], target: Path) -> Path:
    """``table`` without the flagged training rows (test rows stay: the score's ground)."""
    with table.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    kept = [r for r in rows if r["split"] == "test" or str(Path(r["path"])) not in flagged]
    with target.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", "label", "split"])
        writer.writeheader()
        writer.writerows(kept)
    return target


def test_accuracy(table: Path, cache: Path, project: Path, name: str, args) -> float:
    """Test accuracy of ``imgclf train TABLE`` with the default model (Lite0, embed once)."""
    from imgclf import api

    options = {"image_size": args.image_size} if args.image_size else {}
    run = api.train(
        table, cache_dir=cache, project=project, name=name, quiet=True, val_split=0,
        epochs=args.epochs, **options,
    )  # fmt: skip
    return float(run.metrics["test"]["accuracy"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--share", type=float, default=0.05, help="training labels flipped")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--subset", type=int, default=None, help="a stratified random subset")
    parser.add_argument("--image-size", type=int, default=None)
    parser.add_argument(
        "--epochs", type=int, default=None, help="training epochs (default: imgclf's)"
    )
    parser.add_argument("--no-train", action="store_true", help="the audit only")
    parser.add_argument(
        "--ceiling", type=float, metavar="RECALL",
        help="also the best precision any p(given) threshold reaches at this recall",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    out = args.out or Path(tempfile.mkdtemp(prefix="imgclf-labels-"))
    cache = out / "cache"
    for seed in args.seeds:
        rng = np.random.default_rng(seed)
        rows = photos_of(args.data, args.subset, rng)
        folder = out / f"seed{seed}"
        folder.mkdir(parents=True, exist_ok=True)
        flipped = plant(rows, args.share, rng, folder)
        flagged, timings, data = audit_flags(
            folder / "noisy.csv", cache, folder / "audit", args.image_size
        )
        found = len(flagged & flipped)
        steps = ", ".join(f"{k} {v:.1f} s" for k, v in timings.items())
        print(f"seed {seed}: {len(rows)} images, {len(flipped)} labels flipped; flagged "
              f"{len(flagged)}, of them {found} flips: recall {found / len(flipped):.3f}, "
              f"precision {found / max(len(flagged), 1):.3f} ({steps})")  # fmt: skip
        if args.ceiling:
            print(f"seed {seed}: {ceiling(data, cache, flipped, args.ceiling)}")
        if args.no_train:
            continue
        clean = without(folder / "noisy.csv", flagged, folder / "cleaned.csv")
        project = folder / "runs"
        scores = {
            name: test_accuracy(table, cache, project, name, args)
            for name, table in (("true", folder / "true.csv"), ("noisy", folder / "noisy.csv"),
                                ("cleaned", clean))
        }  # fmt: skip
        lost = scores["true"] - scores["noisy"]
        regained = scores["cleaned"] - scores["noisy"]
        share = f"{regained / lost:.0%} of what the noise cost" if lost > 0 else "nothing lost"
        print(f"seed {seed}: test accuracy true labels {scores['true']:.4f}, noisy "
              f"{scores['noisy']:.4f}, flagged dropped {scores['cleaned']:.4f} "
              f"({share})")  # fmt: skip
    print(f"tables, audits and runs kept in {out}")


if __name__ == "__main__":
    main()
