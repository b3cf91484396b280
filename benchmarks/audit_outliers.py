"""Off-topic photos and blank frames among real photos (issue 24): plant photos of other things
and flat or noise frames into the class folders of a photo set, each under a random class, audit
with the outlier check, and count how many plants it flags (recall) and how many of its flags
are plants (precision). The set's own photos may hold genuine oddities (the animals set has
pandas with people in them): the unplanted flags are listed to look at.

    python -m benchmarks.audit_outliers --data ../shared/datasets/animals \\
        --others ../shared/datasets/imagenette2-224-subset --leave-out n02102040 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.audit_labels import photos_of
from benchmarks.common import machine


def plant(
    rows: list[tuple[str, str]],
    others: list[tuple[str, str]],
    n_photos: int,
    n_frames: int,
    rng: np.random.Generator,
    out: Path,
) -> set[str]:
    """``table.csv`` (path, label) of ``rows`` plus ``n_photos`` random ``others`` and
    ``n_frames`` flat or noise frames, each with a random class of ``rows``; returns the
    planted paths."""
    classes = sorted({label for _, label in rows})
    picked = [others[i][0] for i in rng.choice(len(others), size=n_photos, replace=False)]
    frames = out / "frames"
    frames.mkdir(parents=True, exist_ok=True)
    for i in range(n_frames):
        if i % 2:  # sensor noise
            pixels = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
        else:  # a flat frame of one colour, a little grain
            colour = rng.integers(0, 256, 3)
            pixels = np.clip(colour + rng.normal(0, 2, (240, 320, 3)), 0, 255).astype(np.uint8)
        path = frames / f"frame{i:02d}.jpg"
        Image.fromarray(pixels).save(path, quality=90)
        picked.append(str(path.resolve()))
    table = rows + [(path, classes[rng.integers(len(classes))]) for path in picked]
    with (out / "table.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label"])
        writer.writerows(table)
    return set(picked)


def ranking(result, planted: set[str]) -> float:
    """The AUROC of the outlier score over every usable image, planted against the rest."""
    from sklearn.metrics import roc_auc_score

    names = result.data.names
    truth = [str(Path(names[row]).resolve()) in planted for row in result.data.rows]
    return float(roc_auc_score(truth, result.outlier_scores))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--others", type=Path, required=True, help="photos of other things")
    parser.add_argument(
        "--leave-out", nargs="*", default=[], help="class folders of --others not to plant"
    )
    parser.add_argument("--photos", type=int, default=30, help="off-topic photos planted")
    parser.add_argument("--frames", type=int, default=6, help="flat or noise frames planted")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument(
        "--quantile", type=float, default=None, help="outlier_quantile (default imgclf's)"
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    from imgclf import api

    print(f"machine: {machine()}")
    out = args.out or Path(tempfile.mkdtemp(prefix="imgclf-outliers-"))
    rows = photos_of(args.data, None, np.random.default_rng(0))
    others = [(p, c) for p, c in photos_of(args.others, None, np.random.default_rng(0))
              if c not in args.leave_out]  # fmt: skip
    for seed in args.seeds:
        folder = out / f"seed{seed}"
        planted = plant(rows, others, args.photos, args.frames, np.random.default_rng(seed), folder)
        started = time.perf_counter()
        result = api.audit(
            folder / "table.csv", out=folder / "audit", checks="outliers", cache_dir=out / "cache",
            outlier_quantile=args.quantile, progress=False,
        )  # fmt: skip
        seconds = time.perf_counter() - started
        flagged = {
            str(Path(result.data.names[i.row]).resolve()): i.score
            for i in result.issues
            if i.kind == "outlier"
        }
        found = len(planted & set(flagged))
        print(f"seed {seed}: {len(rows)} photos + {len(planted)} planted; flagged {len(flagged)}, "
              f"of them {found} planted: recall {found / len(planted):.3f}, precision "
              f"{found / max(len(flagged), 1):.3f}; AUROC of the score "
              f"{ranking(result, planted):.4f}, {seconds:.1f} s")  # fmt: skip
        missed = sorted(Path(p).name for p in planted - set(flagged))
        print(f"  missed: {', '.join(missed) or 'none'}")
        unplanted = sorted((s, p) for p, s in flagged.items() if p not in planted)
        for score, path in unplanted:
            print(f"  flagged, not planted: {score:.3f} {path}")


if __name__ == "__main__":
    main()
