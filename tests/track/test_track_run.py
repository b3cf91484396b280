"""--track end to end: a trained run mirrored into TensorBoard and MLflow, and a bad tracker
refused before any run folder exists."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tests.train.conftest import make_blocks
from typer.testing import CliRunner

from imgclf.cli import app


def _npz(tmp_path: Path) -> Path:
    images, labels = make_blocks(n_per_class=20)
    path = tmp_path / "blocks.npz"
    np.savez(path, x=images, y=labels)
    return path


def test_imgclf_train_track_mirrors_the_run_into_both(tmp_path, monkeypatch) -> None:
    from mlflow import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    project = tmp_path / "runs"
    result = CliRunner().invoke(app, [
        "train", str(_npz(tmp_path)), "--model", "mlp", "--epochs", "2", "--quiet",
        "--project", str(project), "--name", "tracked",
        "--track", "tensorboard", "--track", "mlflow",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    events = EventAccumulator(str(project / "tracked" / "tensorboard"))
    events.Reload()
    assert [e.step for e in events.Scalars("val_accuracy")] == [1, 2]
    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("runs").experiment_id])
    assert run.info.run_name == "tracked" and run.info.status == "FINISHED"
    assert run.data.params["model.name"] == "mlp"
    assert len(client.get_metric_history(run.info.run_id, "val_accuracy")) == 2


def test_an_unknown_tracker_is_refused_before_a_run_folder_exists(tmp_path) -> None:
    project = tmp_path / "runs"
    result = CliRunner().invoke(app, [
        "train", str(_npz(tmp_path)), "--model", "mlp", "--epochs", "1", "--quiet",
        "--project", str(project), "--track", "wandb",
    ])  # fmt: skip
    assert result.exit_code == 2
    assert "Unknown tracker 'wandb'" in result.output and "Traceback" not in result.output
    assert not project.exists() or not any(project.iterdir())
