"""The rows of ``imgclf runs list``: mode, epochs over every stage, types, status and error."""

from __future__ import annotations

from pathlib import Path

import pytest

from imgclf.runs.registry import COLUMNS, cell_text, column_headers, list_runs
from imgclf.runs.rundir import RunDir

LAYERS = [{"type": "flatten"}, {"type": "dense", "units": 8}]


@pytest.mark.parametrize(
    ("model", "mode"),
    [
        ({"name": "cnn"}, "scratch"),
        ({"name": "deep_cnn"}, "scratch"),
        ({"name": "custom", "layers": LAYERS}, "scratch"),
        ({"name": "efficientnet_lite0"}, "finetune"),
        ({"name": "resnet18", "mode": "feature_extract"}, "feature_extract"),
    ],
)
def test_recipes_and_custom_stacks_train_from_scratch(project, make_run, model, mode) -> None:
    make_run(project, "r", model=model)
    assert list_runs(project)[0]["mode"] == mode


@pytest.mark.parametrize(
    ("model", "train", "epochs"),
    [
        ({}, {}, "6/6"),  # head 3 + fine-tune 3
        ({"pretrained": False}, {}, "6/3"),
        ({"mode": "feature_extract"}, {}, "6/3"),
        ({"mode": "scratch"}, {}, "6/3"),
        ({}, {"finetune_epochs": 0}, "6/3"),
        ({"name": "cnn"}, {}, "6/3"),
        ({"name": "custom", "layers": LAYERS}, {}, "6/3"),
    ],
)
def test_epochs_planned_count_every_stage(project, make_run, model, train, epochs) -> None:
    make_run(project, "r", model=model, train=train, metrics={"epochs_run": 6})
    assert list_runs(project)[0]["epochs"] == epochs


def test_epochs_planned_in_metrics_win(project, make_run) -> None:
    make_run(project, "r", metrics={"epochs_run": 4, "epochs_planned": 9})
    make_run(project, "unrecorded", metrics={"epochs_run": 6, "epochs_planned": 0})
    make_run(project, "unfinished", model={"name": "cnn"})
    assert sorted(row["epochs"] for row in list_runs(project)) == ["4/9", "6/6", "?/3"]


def test_best_epoch_is_an_int_and_seconds_are_rounded(project, make_run) -> None:
    make_run(project, "r", metrics={"best_epoch": 2.0, "timings": {"train": 123.456789}})
    row = list_runs(project)[0]
    assert row["best_epoch"] == 2 and isinstance(row["best_epoch"], int)
    assert row["train_seconds"] == 123.5
    make_run(project, "s")
    assert [row["best_epoch"] for row in list_runs(project)].count(None) == 1


def test_rows_carry_status_and_error(project, make_run) -> None:
    RunDir(make_run(project, "bad")).write_status("failed", error="CUDA out of memory", epoch=2)
    make_run(project, "good", metrics={"val": {"accuracy": 0.9}})
    make_run(project, "started")
    rows = {row["name"]: row for row in list_runs(project)}
    assert (rows["bad"]["status"], rows["bad"]["error"]) == ("failed", "CUDA out of memory")
    assert (rows["good"]["status"], rows["good"]["error"]) == ("finished", None)
    assert rows["started"]["status"] == "unfinished"
    assert all(tuple(row) == COLUMNS for row in rows.values())


def test_no_project_folder_is_no_runs(tmp_path: Path) -> None:
    assert list_runs(tmp_path / "missing") == []


def test_headers_are_words_told_apart_by_as_few_parts_as_it_takes() -> None:
    keys = ["name", "model.name", "train.batch_size", "train.finetune_epochs", "val_accuracy",
            "train_seconds", "wall_seconds", "kaggle_public", "model.head.dropout",
            "augment.dropout"]  # fmt: skip
    assert column_headers(keys) == [
        "name", "model name", "batch size", "finetune epochs", "val acc", "train s", "wall s",
        "kaggle public", "head dropout", "augment dropout",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("column", "value", "text"),
    [("train_seconds", 2.6149, "2.6"), ("wall_seconds", 20.9433, "20.9"),
     ("val_accuracy", 0.91234, "0.9123"), ("train.lr", 0.00443038, "0.00443038"),
     ("kaggle_public", None, "-"), ("batch_size", 32, "32")],
)  # fmt: skip
def test_cells_round_seconds_alike_everywhere(column, value, text) -> None:
    assert cell_text(column, value) == text
