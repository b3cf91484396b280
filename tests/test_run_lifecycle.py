"""A run's life from the CLI: failures before the run folder leave nothing, failures after it
are recorded; Ctrl-C saves, says how to resume and exits 130; a resume may add epochs but not
change settings; left-out files are summed up on one line."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from imgclf.cli import app

runner = CliRunner()


def _train(data, *extra: str):
    return runner.invoke(app, ["train", str(data), "--config", "tiny.yaml", "--quiet", *extra])


def _status(run: str) -> dict:
    return json.loads(Path(run, "status.json").read_text())


def test_an_unknown_model_leaves_no_run_folder(shapes: Path) -> None:
    result = runner.invoke(app, ["train", str(shapes), "--model", "foobar", "--quiet"])
    assert result.exit_code == 2 and "foobar" in result.output
    assert not Path("runs").exists()


def test_one_class_data_leaves_no_run_folder(shapes: Path) -> None:
    shutil.rmtree(shapes / "right")
    result = _train(shapes)
    assert result.exit_code == 2, result.output
    assert not Path("runs").exists()


def test_a_run_that_fails_after_its_folder_exists_records_why(shapes, monkeypatch) -> None:
    import imgclf.train.session

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(imgclf.train.session, "fit", broken)
    with pytest.raises(RuntimeError):
        runner.invoke(app, ["train", str(shapes), "--config", "tiny.yaml", "--name", "f"],
                      catch_exceptions=False)  # fmt: skip
    assert _status("runs/f")["status"] == "failed"
    assert _status("runs/f")["error"] == "RuntimeError: disk on fire"
    listed = runner.invoke(app, ["runs", "list", "--csv"])
    assert pd.read_csv(pd.io.common.StringIO(listed.stdout)).loc[0, "status"] == "failed"
    predicted = runner.invoke(app, ["predict", "runs/f", str(shapes)])
    assert predicted.exit_code == 2
    assert "Run runs/f failed, so it has no model: RuntimeError: disk on fire." in predicted.output


def test_resume_adds_epochs_and_refuses_other_changes(shapes: Path) -> None:
    assert _train(shapes, "--name", "r").exit_code == 0
    more = runner.invoke(app, ["train", "--resume", "runs/r", "--epochs", "4", "--quiet"])
    assert more.exit_code == 0, more.output
    assert list(pd.read_csv("runs/r/history.csv")["epoch"]) == [1, 2, 3, 4]
    assert json.loads(Path("runs/r/metrics.json").read_text())["epochs_run"] == 4
    changed = runner.invoke(app, ["train", "--resume", "runs/r", "--model", "mlp"])
    assert changed.exit_code == 2 and changed.output.count("\n") == 1
    assert "model.name (run: 'custom', given: 'mlp')" in changed.output
    assert "imgclf train --config runs/r/config.yaml --set model.name=mlp" in changed.output
    fewer = runner.invoke(app, ["train", "--resume", "runs/r", "--epochs", "2"])
    assert fewer.exit_code == 2 and "can add epochs, not remove them" in fewer.output
    other = runner.invoke(app, ["train", str(shapes.parent), "--resume", "runs/r"])
    assert other.exit_code == 2 and "on its own data" in other.output


def test_left_out_files_are_summed_up_on_one_line(shapes: Path) -> None:
    rows = [f"{p},{p.parent.name}" for p in sorted(shapes.rglob("*.png"))]
    rows += ["data/left/missing.png,left", "data/left/0.png,"]
    Path("list.csv").write_text("path,label\n" + "\n".join(rows) + "\n")
    result = runner.invoke(app, ["train", "list.csv", "--config", "tiny.yaml", "--epochs", "1"])
    assert result.exit_code == 0, result.output
    line = next(x for x in result.output.splitlines() if x.startswith("left out"))
    assert line.startswith("left out 2 of 26 files (1 file not found, 1 empty label); see runs/")
    assert line.endswith("data_report.json")


def test_an_empty_class_folder_is_warned_about(shapes: Path) -> None:
    (shapes / "empty").mkdir()
    result = runner.invoke(app, ["train", str(shapes), "--config", "tiny.yaml", "--epochs", "1"])
    assert result.exit_code == 0, result.output
    assert "is an empty class folder, left out" in result.output


def test_the_stop_reason_is_printed_once(shapes: Path) -> None:
    result = runner.invoke(
        app, ["train", str(shapes), "--config", "tiny.yaml", "--time-limit", "0.001"]
    )
    assert result.exit_code == 0, result.output
    assert result.output.count("stopped: time limit") == 1


def test_ctrl_c_saves_says_how_to_resume_and_exits_130(shapes: Path) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "imgclf", "train", str(shapes), "--config", "tiny.yaml"]
    process = subprocess.Popen(
        [*command, "--epochs", "400", "--name", "c", "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    history = Path("runs/c/history.csv")
    while not history.is_file() and process.poll() is None:  # wait for the first epoch
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, out + err
    assert "interrupted at epoch" in err and "resume with: imgclf train --resume runs/c" in err
    assert "Traceback" not in err
    status = _status("runs/c")
    assert status["status"] == "interrupted" and status["epoch"] >= 1
    done = len(pd.read_csv(history))
    resumed = runner.invoke(app, ["train", "--resume", "runs/c", "--quiet", "--epochs", "400"])
    assert resumed.exit_code == 0, resumed.output
    assert len(pd.read_csv(history)) == 400 > done and _status("runs/c")["status"] == "finished"


def test_a_first_ctrl_c_while_finishing_still_writes_the_report(shapes, monkeypatch) -> None:
    import imgclf.runs.finish

    plots = imgclf.runs.finish._plots

    def interrupted_plots(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while the report is being made
        return plots(*args, **kwargs)

    monkeypatch.setattr(imgclf.runs.finish, "_plots", interrupted_plots)
    result = runner.invoke(app, ["train", str(shapes), "--config", "tiny.yaml", "--name", "f"])
    assert result.exit_code == 0, result.output
    assert "finishing the report; press Ctrl-C again to stop at once" in result.output
    assert Path("runs/f/report.html").is_file() and _status("runs/f")["status"] == "finished"


def test_a_run_trained_from_arrays_resumes_when_given_them_again(tmp_path, monkeypatch) -> None:
    import numpy as np

    from imgclf.classifier import ImageClassifier
    from imgclf.errors import ConfigError

    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (24, 8, 8), dtype=np.uint8)
    labels = np.array(["a", "b"] * 12)
    layers = [{"type": "flatten"}]
    params = {"model": "custom", "layers": layers, "epochs": 1, "quiet": True, "name": "arr"}
    ImageClassifier(**params).fit((images, labels))
    more = ImageClassifier(epochs=2, quiet=True).fit((images, labels), resume="runs/arr")
    assert [row["epoch"] for row in more.history_] == [1, 2]
    with pytest.raises(ConfigError, match="does not record its data"):
        ImageClassifier(quiet=True).fit(None, resume="runs/arr")


def _files(root: str) -> dict[str, tuple[int, bytes]]:
    return {str(p): (p.stat().st_mtime_ns, p.read_bytes())
            for p in sorted(Path(root).rglob("*")) if p.is_file()}  # fmt: skip


def test_resuming_a_complete_run_says_so_in_one_line_and_changes_nothing(shapes: Path) -> None:
    assert _train(shapes, "--name", "r").exit_code == 0
    before = _files("runs")  # status.json, the ledger, metrics, report, model, checkpoints
    again = runner.invoke(app, ["train", "--resume", "runs/r"])
    assert again.exit_code == 0, again.output
    assert again.output == "runs/r is complete: 3 of 3 epochs; add epochs with --epochs N\n"
    quiet = runner.invoke(app, ["train", "--resume", "runs/r", "--epochs", "3", "--quiet"])
    assert (quiet.exit_code, quiet.output) == (0, again.output)  # the outcome, not progress
    assert _files("runs") == before


def _export_into(model: Path) -> None:
    """What imgclf export writes into the bundle folder (the graph's bytes do not matter)."""
    (model / "model.onnx").write_bytes(b"graph")
    (model / "onnx.json").write_text("{}")
    (model / "parity.json").write_text('{"passed": true}')


def test_an_exported_run_resumes_with_more_epochs_and_keeps_its_export(shapes: Path) -> None:
    assert _train(shapes, "--name", "r").exit_code == 0
    _export_into(Path("runs/r/model"))
    weights = Path("runs/r/model/model.safetensors").read_bytes()
    more = runner.invoke(app, ["train", "--resume", "runs/r", "--epochs", "6"])
    assert more.exit_code == 0, more.output
    assert _status("runs/r") == {**_status("runs/r"), "status": "finished", "error": None}
    assert json.loads(Path("runs/r/metrics.json").read_text())["epochs_run"] == 6
    assert Path("runs/r/model/model.onnx").read_bytes() == b"graph"
    changed = Path("runs/r/model/model.safetensors").read_bytes() != weights  # (a better epoch)
    assert json.loads(Path("runs/r/model/parity.json").read_text())["passed"] is not changed
    assert ("export again with imgclf export runs/r --format onnx" in more.output) is changed
    before = _files("runs")
    again = runner.invoke(app, ["train", "--resume", "runs/r", "--epochs", "6"])
    assert again.output == "runs/r is complete: 6 of 6 epochs; add epochs with --epochs N\n"
    assert _files("runs") == before


def test_a_failure_while_finishing_never_downgrades_a_finished_run(shapes, monkeypatch) -> None:
    import imgclf.runs.finish
    from imgclf.errors import ModelError
    from imgclf.runs.ledger import read_ledger

    assert _train(shapes, "--name", "r").exit_code == 0
    save = imgclf.runs.finish.save_bundle

    def full_disk(*args, **kwargs):
        raise ModelError("No space left on device")

    monkeypatch.setattr(imgclf.runs.finish, "save_bundle", full_disk)
    failed = runner.invoke(app, ["train", "--resume", "runs/r", "--epochs", "4", "--quiet"])
    assert failed.exit_code == 2 and "No space left on device" in failed.output
    assert (_status("runs/r")["status"], _status("runs/r")["error"]) == (
        "finished", "No space left on device",
    )  # fmt: skip
    assert [r["event"] for r in read_ledger("runs").records] == ["started", "finished"] * 2
    listed = pd.read_csv(
        pd.io.common.StringIO(runner.invoke(app, ["runs", "list", "--csv"]).stdout)
    )
    assert (listed.loc[0, "status"], listed.loc[0, "error"]) == (
        "finished",
        "No space left on device",
    )
    monkeypatch.setattr(imgclf.runs.finish, "save_bundle", save)
    redone = runner.invoke(app, ["train", "--resume", "runs/r", "--quiet"])  # the error: redo it
    assert redone.exit_code == 0, redone.output
    assert _status("runs/r")["error"] is None
    listed = pd.read_csv(
        pd.io.common.StringIO(runner.invoke(app, ["runs", "list", "--csv"]).stdout)
    )
    assert listed.loc[0, "status"] == "finished" and pd.isna(listed.loc[0, "error"])


def test_an_early_stopped_run_is_complete_whatever_epochs_are_added(shapes: Path) -> None:
    stopped = _train(shapes, "--name", "e", "--epochs", "5", "--patience", "1")
    assert stopped.exit_code == 0, stopped.output
    done = json.loads(Path("runs/e/metrics.json").read_text())["epochs_run"]
    assert done < 5
    before = _files("runs")
    for more in ([], ["--epochs", "8"]):
        again = runner.invoke(app, ["train", "--resume", "runs/e", *more])
        assert again.exit_code == 0, again.output
        assert again.output == (
            f"runs/e is complete: early stopping ended it at epoch {done} of 5; nothing to resume\n"
        )
    assert _files("runs") == before
