"""`imgclf train` with a pretrained backbone from the CLI: stages, the embedding cache flags,
augmented views, progressive resizing, and their bad values (tiny Lite0 at 32 px, offline)."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from typer.testing import CliRunner

from imgclf.cli import app

runner = CliRunner()
LITE0 = ["--model", "efficientnet_lite0", "--image-size", "32", "--batch-size", "8"]


@pytest.fixture
def photos(tmp_path: Path, monkeypatch) -> Path:
    """Two classes of 40 px photos: a bright square top-left or bottom-right."""
    rng = np.random.default_rng(0)
    for label, corner in (("top", 0), ("bottom", 20)):
        (tmp_path / "photos" / label).mkdir(parents=True)
        for k in range(12):
            pixels = rng.integers(0, 60, (40, 40, 3), dtype=np.uint8)
            pixels[corner : corner + 20, corner : corner + 20] = 230
            Image.fromarray(pixels).save(tmp_path / "photos" / label / f"{k}.png")
    monkeypatch.chdir(tmp_path)
    return tmp_path / "photos"


def _train(photos: Path, *extra: str):
    return runner.invoke(app, ["train", str(photos), *LITE0, "--name", "run", *extra])


def _history(run: Path) -> list[dict]:
    with open(run / "history.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_staged_finetune_with_progressive_sizes(photos: Path) -> None:
    result = _train(photos, "--epochs", "2", "--finetune-epochs", "2", "--progressive-sizes", "16")
    assert result.exit_code == 0, result.output
    assert "stages: head (2 epochs) then finetune (2 epochs)" in result.output
    assert "embeddings of 24 images computed" in result.output
    rows = _history(Path("runs/run"))
    assert [row["stage"] for row in rows] == ["head", "head", "finetune", "finetune"]
    assert [row["image_size"] for row in rows] == ["", "", "16", "32"]
    saved = yaml.safe_load(Path("runs/run/config.yaml").read_text())["train"]
    assert saved["finetune_epochs"] == 2 and saved["progressive_sizes"] == [16]
    metrics = json.loads(Path("runs/run/metrics.json").read_text())
    assert metrics["epochs_run"] == metrics["epochs_planned"] == 4  # both stages
    assert "stage head: epochs 1-2 of 4" in result.output
    assert "stage finetune: epochs 3-4 of 4" in result.output
    report = Path("runs/run/report.html").read_text()
    assert "stages as planned: head epochs 1-2, then finetune epochs 3-4" in report


def test_no_embedding_cache_runs_the_backbone_every_epoch(photos: Path) -> None:
    result = _train(photos, "--mode", "feature_extract", "--epochs", "2", "--no-embedding-cache")
    assert result.exit_code == 0, result.output
    metrics = json.loads(Path("runs/run/metrics.json").read_text())
    assert "embed" not in metrics["timings"] and metrics["epochs_run"] == 2
    assert not (Path(os.environ["IMGCLF_CACHE_DIR"]) / "embeddings").exists()


def test_augmented_views_are_cached_beside_the_images(photos: Path) -> None:
    result = _train(
        photos, "--mode", "feature_extract", "--epochs", "1", "--augment-views", "2",
        "--augment", "horizontal_flip=true",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "+ 2 augmented views" in result.output
    files = sorted(p.name for p in (Path(os.environ["IMGCLF_CACHE_DIR"]) / "embeddings").iterdir())
    assert sum("-views-" in name for name in files) == 2  # average and max pooling, one pass
    again = runner.invoke(
        app, ["train", str(photos), *LITE0, "--mode", "feature_extract", "--epochs", "1",
              "--augment-views", "2", "--augment", "horizontal_flip=true"],
    )  # fmt: skip
    assert again.exit_code == 0 and "+ 2 augmented views reused" in again.output


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--progressive-sizes", "64"], "smaller than the image size 32"),
        (["--progressive-sizes", "24,16"], "progressive_sizes must increase"),
        (["--augment-views", "-1"], "augment_views"),
        (["--finetune-epochs", "-2"], "finetune_epochs"),
        (["--finetune-lr", "0"], "finetune_lr"),
    ],
)
def test_bad_transfer_flags_exit_2_with_the_reason(photos: Path, flags, message) -> None:
    result = _train(photos, *flags)
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())  # the console wraps long lines
    assert not Path("runs/run/model").exists()


def test_feature_extract_metrics_from_embeddings_match_the_bundle_on_images(photos: Path) -> None:
    result = _train(photos, "--mode", "feature_extract", "--epochs", "3", "--test-split", "0.25")
    assert result.exit_code == 0, result.output
    metrics = json.loads(Path("runs/run/metrics.json").read_text())["test"]
    evaluated = runner.invoke(app, ["evaluate", "runs/run", "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    again = json.loads(evaluated.output)
    assert again["n_images"] == metrics["n_images"] == 6
    assert again["accuracy"] == metrics["accuracy"]
    assert again["loss"] == pytest.approx(metrics["loss"], abs=1e-5)


def test_resume_adds_finetune_epochs_and_refuses_head_epochs_once_the_head_is_over(photos):
    assert _train(photos, "--epochs", "1", "--finetune-epochs", "1", "--quiet").exit_code == 0
    more = runner.invoke(app, ["train", "--resume", "runs/run", "--finetune-epochs", "2"])
    assert more.exit_code == 0, more.output
    assert [row["stage"] for row in _history(Path("runs/run"))] == ["head", "finetune", "finetune"]
    head = runner.invoke(app, ["train", "--resume", "runs/run", "--epochs", "3"])
    assert head.exit_code == 2 and "Stage 'head' is over" in head.output


def test_a_frozen_backbones_unknown_score_reads_the_stages_the_embed_pass_kept(
    photos: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Feature extraction taps no stage after training: the pass that embedded the images kept
    every image's stage means beside the embeddings, for this run and the next one."""
    from imgclf.runs import unknowing

    def no_pass(*args, **kwargs):
        raise AssertionError("the layers were computed again")

    monkeypatch.setattr(unknowing, "layer_rows", no_pass)
    args = ["--mode", "feature_extract", "--epochs", "1", "--val-split", "0.5", "--quiet"]
    first = runner.invoke(app, ["train", str(photos), *LITE0, "--name", "a", *args])
    assert first.exit_code == 0, first.output
    assert list((Path(os.environ["IMGCLF_CACHE_DIR"]) / "embeddings").glob("*-stage*.npy"))
    second = runner.invoke(app, ["train", str(photos), *LITE0, "--name", "b", *args])
    assert second.exit_code == 0, second.output
    unknown = [json.loads(Path(f"runs/{run}/metrics.json").read_text())["unknown"]
               for run in ("a", "b")]  # fmt: skip
    assert "score" in unknown[0] and unknown[0] == unknown[1]
