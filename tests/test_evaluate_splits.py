"""Evaluation scores exactly the split asked for: the run's own split on its own data, the
data's own split on other data, every image of plain other data (named 'data'); a split that
does not exist is one clear error."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from tests.conftest import make_shapes
from typer.testing import CliRunner

from imgclf.classifier import ImageClassifier, load
from imgclf.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def trained_once(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ImageClassifier]:
    """A folder with the shapes data and run r in runs/, trained once for the module (the
    tests only read it): the folder and the fitted classifier."""
    root = tmp_path_factory.mktemp("splits")
    data = make_shapes(root)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.setenv("IMGCLF_CACHE_DIR", str(root / "cache"))
        classifier = ImageClassifier(config="tiny.yaml", quiet=True, name="r", epochs=1)
        return root, classifier.fit(data)


@pytest.fixture
def shapes(trained_once, monkeypatch) -> Path:
    """The shared folder's data, and the working directory there (this module's own shapes)."""
    root, _ = trained_once
    monkeypatch.chdir(root)
    return root / "data"


@pytest.fixture
def trained(trained_once, shapes: Path) -> ImageClassifier:
    return trained_once[1]


def _json(*args: str) -> dict:
    result = runner.invoke(app, ["evaluate", "runs/r", "--json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _split_folders(shapes: Path) -> Path:
    """The same images as train/ and test/ folders: 4 test images per class."""
    other = shapes.parent / "other"
    for label in ("left", "right"):
        for k, image in enumerate(sorted((shapes / label).iterdir())):
            target = other / ("test" if k < 4 else "train") / label
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy(image, target / image.name)
    return other


def test_same_data_as_training_scores_the_runs_own_splits(trained: ImageClassifier, shapes):
    assert trained.evaluate(shapes).split == "test"
    assert len(trained.evaluate(shapes).y_true) == trained.metrics_["test"]["n_images"] == 6
    assert len(trained.evaluate(shapes, split="val").y_true) == 6
    assert len(trained.evaluate(shapes, split="train").y_true) == 12
    assert _json()["n_images"] == 6 and _json("--split", "val")["n_images"] == 6
    assert _json("--data", str(shapes), "--split", "train")["n_images"] == 12
    assert len(load("runs/r").evaluate(shapes).y_true) == 6  # a loaded run knows its splits


def test_other_data_with_split_folders_scores_the_named_split(trained, shapes: Path) -> None:
    other = _split_folders(shapes)
    assert _json("--data", str(other), "--split", "test")["n_images"] == 8
    assert _json("--data", str(other), "--split", "train")["n_images"] == 16
    assert _json("--data", str(other))["n_images"] == 8  # its test split by default
    missing = runner.invoke(app, ["evaluate", "runs/r", "--data", str(other), "--split", "val"])
    assert missing.exit_code == 2 and "no usable images in a 'val' split" in missing.output
    assert "Splits it has: train, test" in missing.output


def test_plain_other_data_is_scored_whole_and_named_data(trained, shapes: Path) -> None:
    plain = shapes.parent / "plain"
    shutil.copytree(shapes, plain)
    scored = _json("--data", str(plain))
    assert scored["n_images"] == 24 and scored["split"] == "data"
    asked = runner.invoke(app, ["evaluate", "runs/r", "--data", str(plain), "--split", "test"])
    assert asked.exit_code == 2 and "has no split folders or split column" in asked.output


def test_unknown_split_is_one_line_with_exit_code_2(trained) -> None:
    result = runner.invoke(app, ["evaluate", "runs/r", "--split", "bogus"])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("Error: Unknown split 'bogus'.")
    assert result.output.count("\n") == 1 and not isinstance(result.exception, AttributeError)


def test_a_run_without_a_test_split_says_so(shapes: Path) -> None:
    ImageClassifier(config="tiny.yaml", quiet=True, name="nt", epochs=1, test_split=0).fit(shapes)
    result = runner.invoke(app, ["evaluate", "runs/nt", "--split", "test"])
    assert result.exit_code == 2 and "kept no images in its test split" in result.output
    assert _json_of("runs/nt")["split"] == "val"  # the default falls back to val


def _json_of(run: str) -> dict:
    result = runner.invoke(app, ["evaluate", run, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_evaluate_prints_a_per_class_table_and_the_confusion_matrix(
    trained: ImageClassifier,
) -> None:
    result = runner.invoke(app, ["evaluate", "runs/r"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    header = next(line.split() for line in lines if "precision" in line)
    assert header == ["class", "precision", "recall", "F1", "support"]  # no copy of recall
    left = next(line.split() for line in lines if line.split()[:1] == ["left"])
    assert all(len(v.split(".")[1]) == 4 for v in left[1:4]), left
    at = next(i for i, line in enumerate(lines) if line.startswith("confusion"))
    assert lines[at + 1].split()[-2:] == ["left", "right"]
    matrix = [line.split()[1:] for line in lines[at + 2 : at + 4]]
    assert sum(int(n) for row in matrix for n in row) == 6  # the run's 6 test images


def test_a_run_with_flip_tta_is_evaluated_as_it_scored_itself(shapes: Path) -> None:
    """The run's test score was taken with its mirror images averaged in; evaluating the run
    again (Python or CLI) does the same, so the numbers agree."""
    fitted = ImageClassifier(config="tiny.yaml", quiet=True, name="t", epochs=1, tta="flip")
    fitted.fit(shapes)
    scored = fitted.metrics_["test"]
    again = fitted.evaluate(shapes)
    assert again.loss == pytest.approx(scored["loss"], abs=1e-6)
    result = runner.invoke(app, ["evaluate", "runs/t", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["loss"] == pytest.approx(scored["loss"], abs=1e-6)
