"""Which score best tells "none of my classes" (issue 25): train a model, then score its own
test photos and photos of other things with five out-of-distribution scores, and print each
score's AUROC and, at the threshold that keeps 95 % of the validation photos, the share of
other things answered "unknown" and the share of the model's own test photos.

    near: animals (Lite0, the default) against imagenette's photos of other things (its
          English springer class left out): python -m benchmarks.unknown_scores near
    far:  CIFAR-10 (--preset fast) against MNIST digits: python -m benchmarks.unknown_scores far

Scores, higher = more in-distribution: msp (the top calibrated probability), maxlogit (the top
calibrated logit), energy (logsumexp of the calibrated logits), knn (minus the cosine distance
to the k-th nearest training embedding, Sun et al. 2022) and mahalanobis (minus the smallest
class-conditional Mahalanobis distance with a shared covariance, Lee et al. 2018).
"""

from __future__ import annotations

import argparse
import csv
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.audit_labels import photos_of
from benchmarks.common import machine

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
DATASETS = Path(os.environ.get("IMGCLF_DATA_DIR", SHARED))
KEEP = 0.95  # the share of in-distribution validation images the threshold keeps
K = 10


def split_table(rows: list[tuple[str, str]], rng: np.random.Generator, out: Path) -> Path:
    """A path/label/split table: 70 / 15 / 15, stratified."""
    labels = np.array([label for _, label in rows])
    split = np.array(["train"] * len(rows), dtype=object)
    for label in sorted(set(labels)):
        members = rng.permutation(np.flatnonzero(labels == label))
        n = round(0.15 * len(members))
        split[members[:n]], split[members[n : 2 * n]] = "val", "test"
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label", "split"])
        writer.writerows((p, lab, s) for (p, lab), s in zip(rows, split, strict=True))
    return out


def decode(paths: list[str], model) -> np.ndarray:
    from imgclf.data.pipeline.decode import decode_file

    spec = model.preprocess_spec
    mode = "grayscale" if spec.channels == 1 else "rgb"
    return np.stack([decode_file(Path(p), tuple(spec.image_size), spec.fit, mode) for p in paths])


@torch.inference_mode()
def logits_and_features(model, images: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Calibrated logits, the pooled embeddings the classifier reads and the shipped unknown
    score (the in-distribution share ``predict --abstain`` reads), in batches."""
    from imgclf.models.unknown import tapped

    model.eval()
    logits, features, shares = [], [], []
    for start in range(0, len(images), 64):
        x = torch.from_numpy(images[start : start + 64]).permute(0, 3, 1, 2).float()
        with tapped(model.features, model.unknown.stages) as taps:
            f = model.embed(x)
        logits.append(model.classifier(f).numpy())
        features.append(f.flatten(1).numpy())
        shares.append(model.unknown(f, taps).numpy())
    return np.concatenate(logits), np.concatenate(features), np.concatenate(shares)


class Scores:
    """The five scores, fitted on the training embeddings and labels."""

    def __init__(self, train_features: np.ndarray, train_labels: np.ndarray) -> None:
        from sklearn.neighbors import NearestNeighbors

        unit = _unit(train_features)
        self.index = NearestNeighbors(n_neighbors=K).fit(unit)
        self.means = np.stack([unit[train_labels == c].mean(0) for c in np.unique(train_labels)])
        centred = unit - self.means[np.searchsorted(np.unique(train_labels), train_labels)]
        cov = centred.T @ centred / len(unit) + 1e-3 * np.eye(unit.shape[1])
        self.precision = np.linalg.inv(cov)

    def __call__(
        self, logits: np.ndarray, features: np.ndarray, shipped: np.ndarray
    ) -> dict[str, np.ndarray]:
        from scipy.special import logsumexp, softmax

        unit = _unit(features)
        distance, _ = self.index.kneighbors(unit)
        gaps = unit[:, None, :] - self.means[None]
        mahalanobis = np.einsum("ncd,de,nce->nc", gaps, self.precision, gaps).min(1)
        return {
            "msp": softmax(logits, axis=1).max(1),
            "maxlogit": logits.max(1),
            "energy": logsumexp(logits, axis=1),
            "knn": -distance[:, -1],
            "mahalanobis": -mahalanobis,
            "imgclf": shipped,  # the shipped score: stages + features, fitted on the run's splits
        }


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def report(name: str, val: dict, test: dict, other: dict) -> None:
    from sklearn.metrics import roc_auc_score

    for score in val:
        threshold = 1 - KEEP if score == "imgclf" else np.quantile(val[score], 1 - KEEP)
        y = np.r_[np.ones(len(test[score])), np.zeros(len(other[score]))]
        auroc = roc_auc_score(y, np.r_[test[score], other[score]])
        print(f"  {name} {score:12s} AUROC {auroc:.4f}; unknown at the {KEEP:.0%} threshold: "
              f"other {np.mean(other[score] < threshold):.3f}, own test "
              f"{np.mean(test[score] < threshold):.3f}")  # fmt: skip


def near(project: Path, seed: int) -> None:
    from imgclf import api
    from imgclf.runs.opening import open_model

    rng = np.random.default_rng(seed)
    rows = photos_of(DATASETS / "animals", None, rng)
    table = split_table(rows, rng, project / "animals.csv")
    started = time.perf_counter()
    run = api.train(table, project=project, name="animals", quiet=True, seed=seed)
    print(f"near: animals test accuracy {run.metrics['test']['accuracy']:.4f} "
          f"({time.perf_counter() - started:.0f} s)")  # fmt: skip
    model = open_model(run.path).network
    with table.open(encoding="utf-8") as handle:
        parts = list(csv.DictReader(handle))
    classes = model.classes
    by_split = {s: [r for r in parts if r["split"] == s] for s in ("train", "val", "test")}
    others = [p for p, c in photos_of(DATASETS / "imagenette2-224-subset", None, rng)
              if c != "n02102040"]  # fmt: skip
    out = {}
    for name, paths in [*((s, [r["path"] for r in v]) for s, v in by_split.items()),
                        ("other", others)]:  # fmt: skip
        out[name] = logits_and_features(model, decode(paths, model))
    labels = np.array([classes.index(r["label"]) for r in by_split["train"]])
    scores = Scores(out["train"][1], labels)
    report("near", *(scores(*out[s]) for s in ("val", "test", "other")))


def far(project: Path, seed: int, n: int) -> None:
    from PIL import Image

    from imgclf import api
    from imgclf.data.formats.idx import read_idx
    from imgclf.runs.opening import open_model

    started = time.perf_counter()
    run = api.train(DATASETS / "cifar10-jpg", preset="fast", project=project, name="cifar",
                    quiet=True, seed=seed)  # fmt: skip
    print(f"far: CIFAR-10 test accuracy {run.metrics['test']['accuracy']:.4f} "
          f"({time.perf_counter() - started:.0f} s)")  # fmt: skip
    model = open_model(run.path).network
    rng = np.random.default_rng(seed)
    rows = photos_of(DATASETS / "cifar10-jpg" / "train", None, rng)
    picks = rng.choice(len(rows), size=3 * n, replace=False)
    train = [rows[i] for i in picks[:n]]
    val = [rows[i][0] for i in picks[n : 2 * n]]  # training photos stand in for val here
    test_rows = photos_of(DATASETS / "cifar10-jpg" / "test", None, rng)
    test = [test_rows[i][0] for i in rng.choice(len(test_rows), size=n, replace=False)]
    digits = read_idx(DATASETS / "mnist" / "t10k-images-idx3-ubyte.gz", 2051)[:n]
    mnist = np.stack([np.asarray(Image.fromarray(d).convert("RGB").resize((32, 32)))
                      for d in digits])  # fmt: skip
    out = {
        "train": logits_and_features(model, decode([p for p, _ in train], model)),
        "val": logits_and_features(model, decode(val, model)),
        "test": logits_and_features(model, decode(test, model)),
        "other": logits_and_features(model, mnist),
    }
    labels = np.array([model.classes.index(c) for _, c in train])
    scores = Scores(out["train"][1], labels)
    report("far", *(scores(*out[s]) for s in ("val", "test", "other")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("which", nargs="+", choices=("near", "far"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n", type=int, default=2000, help="far: images per set")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    os.environ.setdefault("IMGCLF_DATA_DIR", str(DATASETS))
    print(f"machine: {machine()}")
    project = args.out or Path(tempfile.mkdtemp(prefix="imgclf-unknown-"))
    project.mkdir(parents=True, exist_ok=True)
    if "near" in args.which:
        near(project, args.seed)
    if "far" in args.which:
        far(project, args.seed, args.n)


if __name__ == "__main__":
    main()
