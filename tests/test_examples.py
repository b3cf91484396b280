"""Every ready config in examples/ says what it reproduces, validates, and trains end to end
(on a tiny folder at 32 px for one epoch per stage: the recipes themselves run in CI on real
data in the tutorial notebooks, tests/notebooks/test_examples.py, in
tests/test_realdata_transfer.py and in benchmarks/)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imgclf.api import make_config
from imgclf.classifier import ImageClassifier

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.yaml"))


def test_there_is_an_example_for_every_tutorial_recipe() -> None:
    names = {path.stem for path in EXAMPLES}
    assert {"r1_scenes", "r3_cifar10"} <= names
    assert sum(name.startswith("r2_") for name in names) == 4
    assert {f"r5_mnist_{m}" for m in ("mlp", "cnn", "deep_cnn")} <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_says_what_it_reproduces_and_validates(path: Path) -> None:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith(f"# {path.stem[:2].upper()} ") and "accuracy" in first
    cfg = make_config(path)
    assert cfg.train.epochs >= 10


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three classes of 40 px colour images with a bright square in a class-specific corner."""
    root = tmp_path_factory.mktemp("examples-data")
    rng = np.random.default_rng(0)
    for label, (row, col) in {"a": (0, 0), "b": (0, 20), "c": (20, 10)}.items():
        (root / label).mkdir()
        for k in range(10):
            pixels = rng.integers(0, 60, (40, 40, 3), dtype=np.uint8)
            pixels[row : row + 20, col : col + 20] = 230
            Image.fromarray(pixels).save(root / label / f"{k}.png")
    return root


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_trains(path: Path, tiny_folder: Path, tmp_path: Path) -> None:
    quick = {"epochs": 1, "finetune_epochs": 1, "image_size": 32, "batch_size": 8}
    classifier = ImageClassifier(
        config=path, val_split=0.2, test_split=0.2, project=tmp_path, quiet=True, **quick
    ).fit(tiny_folder)
    cfg = make_config(path)
    history = classifier.history_
    staged = cfg.model.mode == "finetune" and cfg.model.name == "efficientnet_lite0"
    assert [row.get("stage") for row in history] == (["head", "finetune"] if staged else [None])
    assert classifier.model_.spec["model"]["name"] == cfg.model.name
    assert (classifier.run_dir_ / "report.html").is_file()
