"""The command line, through typer's CliRunner: output, files, exit codes and error lines."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from imgclf._version import __version__
from imgclf.cli import app

runner = CliRunner()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    for cls in ("cat", "dog"):
        (tmp_path / "data" / cls).mkdir(parents=True)
        for k in range(5):
            pixels = rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "data" / cls / f"{k}.jpg")
    return tmp_path / "data"


def test_inspect_prints_counts_and_writes_report(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = runner.invoke(app, ["inspect", str(folder), "--out", str(out), "--val-split", "0.4"])
    assert result.exit_code == 0, result.output
    assert "10 usable images" in " ".join(result.output.split())
    assert "cat" in result.output and "dog" in result.output
    report = json.loads((out / "inspect.json").read_text())
    assert report["counts"]["train"] == {"cat": 3, "dog": 3}
    assert report["counts"]["val"] == {"cat": 2, "dog": 2}
    assert (out / "samples.png").stat().st_size > 0


def test_inspect_json_is_machine_readable(folder: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["inspect", str(folder), "--json", "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["n_images"] == 10 and report["classes"] == ["cat", "dog"]
    assert report["sizes"]["most_common"] == {"12x10": 10}


def test_inspect_reads_config_file_and_flags_override_it(folder: Path, tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("seed: 3\ndata:\n  val_split: 0.4\n")
    args = ["inspect", str(folder), "--json", "--config", str(config), "--out", str(tmp_path)]
    assert json.loads(runner.invoke(app, args).stdout)["counts"]["val"]["cat"] == 2
    report = json.loads(runner.invoke(app, [*args, "--val-split", "0.2"]).stdout)
    assert report["counts"]["val"]["cat"] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["inspect", "/no/such/folder"], "does not exist"),
        (["inspect", "mnsit"], "Did you mean 'mnist'"),
        (["inspect", "{folder}", "--val-split", "1.5"], "val_split"),
    ],
)
def test_bad_arguments_give_one_clear_line_and_exit_2(folder, args, message) -> None:
    args = [a.replace("{folder}", str(folder)) for a in args]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_unknown_config_key_suggests_the_right_name(folder: Path, tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("data:\n  val_splt: 0.1\n")
    result = runner.invoke(app, ["inspect", str(folder), "--config", str(config)])
    assert result.exit_code == 2
    assert "Did you mean 'val_split'" in result.output


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["train", "digits", "--epochs", "abc"],
            "Error: Invalid value for '--epochs': Input should be a valid integer, unable to "
            "parse string as an integer. See 'imgclf train --help'.",
        ),
        (["nosuch"], "Error: No such command 'nosuch'. See 'imgclf --help'."),
        (["trian"], "Error: No such command 'trian'. Did you mean 'train'? See 'imgclf --help'."),
        (["train", "--bogus"], "Error: No such option: --bogus. See 'imgclf train --help'."),
        (["evaluate"], "Error: Missing argument 'RUN'. See 'imgclf evaluate --help'."),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(args, line) -> None:
    result = runner.invoke(app, args, prog_name="imgclf")
    assert result.exit_code == 2
    assert result.output.splitlines() == [line]


def test_unknown_flat_key_is_suggested_with_its_section(folder: Path, tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("zoom_rang: 0.1\n")
    result = runner.invoke(app, ["inspect", str(folder), "--config", str(config)])
    assert result.exit_code == 2
    assert "Did you mean 'augment.zoom_range'?" in result.output


def test_debug_shows_the_traceback() -> None:
    result = runner.invoke(app, ["--debug", "inspect", "/no/such/folder"])
    assert result.exit_code != 0
    assert "does not exist" in str(result.exception)


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


def test_demo_trains_cnn_on_digits_and_prints_the_report_path(tmp_path: Path) -> None:
    result = runner.invoke(app, ["demo", "--project", str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
    accuracy = float(result.output.split("test: accuracy ")[1].split(",")[0])
    assert accuracy >= 0.97  # the README's promise
    output = " ".join(result.output.split())  # 8x8 digits hash alike: exact copies only
    assert "leak check: altered copies not looked for: different pictures here hash alike" in output
    assert "near-duplicates in train" not in output
    report = next((tmp_path / "runs").glob("cnn-digits-*/report.html"))
    assert str(report.resolve()) in result.output


def test_inspect_csv_and_npz(folder: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # the default --out is runs/inspect/NAME under the cwd
    rows = [f"{cls}/{k}.jpg,{cls}" for cls in ("cat", "dog") for k in range(5)]
    (folder / "labels.csv").write_text("path,label\n" + "\n".join(rows) + "\nmissing.jpg,cat\n")
    result = runner.invoke(app, ["inspect", str(folder / "labels.csv"), "--json"])
    report = json.loads(result.stdout)
    assert report["n_images"] == 10
    assert report["problems"][0]["reason"] == "file not found"
    x = np.zeros((12, 8, 8), dtype=np.uint8)
    np.savez(tmp_path / "a.npz", X_train=x[:8], y_train=[0, 1] * 4, X_test=x[8:], y_test=[0, 1] * 2)
    result = runner.invoke(app, ["inspect", str(tmp_path / "a.npz"), "--json", "--no-grid"])
    report = json.loads(result.stdout)
    assert (tmp_path / "runs" / "inspect" / "labels.csv" / "inspect.json").is_file()
    assert report["counts"]["test"] == {"0": 2, "1": 2}
    assert report["duplicates"][0]["across_splits"]  # all-black images in train and test


def test_summary_prints_the_keras_table() -> None:
    result = runner.invoke(app, ["summary", "small_cnn", "--input-size", "32", "--classes", "10"])
    assert result.exit_code == 0, result.output
    assert "Total params: 122,570" in result.output
    assert "Non-trainable params: 0" in result.output


def test_summary_of_vgg16_finetune_with_keras_layer_name() -> None:
    args = ["summary", "vgg16", "--input-size", "224", "--classes", "3", "--mode", "finetune"]
    result = runner.invoke(app, [*args, "--unfreeze", "block5_conv3"])
    assert result.exit_code == 0, result.output
    assert "Non-trainable params: 12,354,880" in result.output
    assert "block5_conv3" in result.output


def test_summary_of_a_yaml_config(tmp_path: Path) -> None:
    config = tmp_path / "m.yaml"
    config.write_text("model:\n  name: cnn\ndata:\n  image_size: 28\n")
    result = runner.invoke(app, ["summary", str(config), "--channels", "1"])
    assert result.exit_code == 0, result.output
    assert "Total params: 217,194" in result.output


def test_summary_of_an_unknown_model_is_one_clear_line() -> None:
    result = runner.invoke(app, ["summary", "resnet_18"])
    assert result.exit_code == 2
    assert "Did you mean 'resnet18'" in result.output and "Traceback" not in result.output
