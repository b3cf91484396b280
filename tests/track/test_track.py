"""The tracking callbacks, driven by hand through a 3-epoch run's events, write what the run did
where the tools read it back: TensorBoard into the run folder's one event directory (hparams
included, no sub-runs), MLflow into the project's SQLite store or MLFLOW_TRACKING_URI. Unknown
names and missing libraries are one-line ConfigErrors."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

from imgclf.errors import ConfigError
from imgclf.track import TRACKERS, create_tracker, final_metrics, flatten
from imgclf.train.callbacks import TrainState

CONFIG = {
    "seed": 0,
    "data": {"source": None, "image_size": [16, 16]},
    "model": {"name": "cnn", "head": {"dense": [], "dropout": 0.0}},
    "train": {"lr": 0.001, "epochs": 3, "mixed": True, "note": "x" * 7000},
}
VAL_ACCURACY = {1: 0.5, 2: 0.75, 3: 0.875}  # exact in float32, as TensorBoard stores them
METRICS = {
    "best_epoch": 3,
    "epochs_run": 3,
    "stop_reason": None,
    "best_val": {"epoch": 3, "val_accuracy": 0.875},
    "val": {"accuracy": 0.875, "loss": 0.25, "top_k": {"top_1": 0.875}, "classes": ["a", "b"]},
    "test": {"accuracy": 0.625, "loss": 0.5, "report": {"a": {"precision": 1.0}}},
    "timings": {"train": 5.0, "total": 7.5},
}


def epoch_logs(epoch: int) -> dict:
    return {
        "epoch": epoch,
        "loss": 1.0 / epoch,
        "accuracy": VAL_ACCURACY[epoch] - 0.25,
        "val_loss": 0.5,
        "val_accuracy": VAL_ACCURACY[epoch],
        "lr": 0.001,
        "time": 1.5,
        "stage": "train",
    }


@pytest.fixture
def run_path(tmp_path: Path) -> Path:
    """A finished run folder in the project folder tmp_path/proj: report.html and model/."""
    path = tmp_path / "proj" / "run-1"
    (path / "model").mkdir(parents=True)
    (path / "report.html").write_text("<html>report</html>", encoding="utf-8")
    (path / "model" / "model.json").write_text("{}", encoding="utf-8")
    return path


def drive(tracker, run_end: bool = True) -> None:
    state = TrainState(epochs=3)
    tracker.on_train_begin(state)
    for epoch in (1, 2, 3):
        state.epoch = epoch
        tracker.on_epoch_end(epoch, epoch_logs(epoch), state)
    tracker.on_train_end(state)
    if run_end:
        tracker.on_run_end(METRICS, state)


def test_flatten_and_final_metrics():
    flat = flatten(CONFIG)
    assert flat["train.lr"] == 0.001 and flat["train.mixed"] is True
    assert flat["data.source"] == "None" and flat["data.image_size"] == "[16, 16]"
    assert flat["model.head.dense"] == "[]"
    assert final_metrics(METRICS) == {
        "final/val_accuracy": 0.875,
        "final/val_loss": 0.25,
        "final/val_top_1": 0.875,
        "final/test_accuracy": 0.625,
        "final/test_loss": 0.5,
        "final/best_val_accuracy": 0.875,
        "final/best_epoch": 3.0,
        "final/epochs_run": 3.0,
        "final/wall_seconds": 7.5,
        "final/seconds_train": 5.0,
    }


def test_tensorboard_scalars_and_hparams_in_one_event_directory(run_path: Path):
    drive(create_tracker("tensorboard", run_path, CONFIG))

    log_dir = run_path / "tensorboard"
    assert [p for p in log_dir.iterdir() if not p.name.startswith("events.out.tfevents.")] == []
    assert {p.parent for p in run_path.rglob("events.out.tfevents.*")} == {log_dir}
    events = EventAccumulator(str(log_dir))
    events.Reload()
    scalars = events.Tags()["scalars"]
    assert {"loss", "val_accuracy", "lr", "final/test_accuracy"} <= set(scalars)
    assert "epoch" not in scalars and "stage" not in scalars
    curve = [(e.step, e.value) for e in events.Scalars("val_accuracy")]
    assert curve == list(VAL_ACCURACY.items())
    assert [(e.step, e.value) for e in events.Scalars("final/test_accuracy")] == [(3, 0.625)]
    content = events.PluginTagToContent("hparams")
    assert set(content) == {
        "_hparams_/experiment",
        "_hparams_/session_start_info",
        "_hparams_/session_end_info",
    }
    start = HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    hparams = start.session_start_info.hparams
    assert hparams["train.lr"].number_value == pytest.approx(0.001)
    assert hparams["model.name"].string_value == "cnn"
    experiment = HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    assert "final/val_accuracy" in {m.name.tag for m in experiment.metric_infos}


def test_tensorboard_without_run_end_is_closed_and_readable(run_path: Path):
    tracker = create_tracker("tensorboard", run_path, CONFIG)
    drive(tracker, run_end=False)
    tracker.on_train_end(TrainState(epochs=3))  # closing again is harmless
    events = EventAccumulator(str(run_path / "tensorboard"))
    events.Reload()
    assert [e.step for e in events.Scalars("loss")] == [1, 2, 3]


def read_run(uri: str, experiment: str):
    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    assert len(runs) == 1
    return client, runs[0]


def test_mlflow_logs_into_the_project_sqlite_store(
    run_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    drive(create_tracker("mlflow", run_path, CONFIG))

    client, run = read_run(f"sqlite:///{tmp_path / 'proj' / 'mlflow.db'}", "proj")
    assert run.info.run_name == "run-1" and run.info.status == "FINISHED"
    assert run.data.params["train.lr"] == "0.001"
    assert run.data.params["model.head.dense"] == "[]"
    assert run.data.params["train.note"] == "x" * 6000  # cut to mlflow's limit
    history = client.get_metric_history(run.info.run_id, "val_accuracy")
    assert sorted((m.step, m.value) for m in history) == list(VAL_ACCURACY.items())
    assert run.data.metrics["final/test_accuracy"] == 0.625
    assert run.data.metrics["final/test_loss"] == 0.5
    assert run.data.metrics["final/wall_seconds"] == 7.5
    assert "stage" not in run.data.metrics and "epoch" not in run.data.metrics
    top = {f.path for f in client.list_artifacts(run.info.run_id)}
    assert top == {"report.html", "model"}
    assert [f.path for f in client.list_artifacts(run.info.run_id, "model")] == ["model/model.json"]
    assert (tmp_path / "proj" / "mlruns").is_dir()  # the artifacts stay in the project
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_mlflow_tracking_uri_from_the_environment(
    run_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    uri = f"sqlite:///{tmp_path / 'other.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)  # where mlflow puts artifacts for a store of its own
    drive(create_tracker("mlflow", run_path, CONFIG))

    assert (tmp_path / "other.db").is_file()
    assert not (tmp_path / "proj" / "mlflow.db").exists()
    _, run = read_run(uri, "proj")
    assert run.info.status == "FINISHED" and run.data.metrics["final/test_accuracy"] == 0.625


def test_unknown_tracker_suggests_the_name(run_path: Path):
    with pytest.raises(ConfigError, match=r"Unknown tracker 'mlfow'\. Did you mean 'mlflow'\?"):
        create_tracker("mlfow", run_path, CONFIG)
    assert TRACKERS == ("tensorboard", "mlflow")


@pytest.mark.parametrize(
    ("name", "modules", "package"),
    [
        ("mlflow", ["mlflow"], "mlflow"),
        ("mlflow", ["sqlalchemy"], "sqlalchemy"),
        ("tensorboard", ["tensorboard", "torch.utils.tensorboard"], "tensorboard"),
    ],
)
def test_missing_library_is_one_line(
    run_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, modules: list, package: str
):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ConfigError) as error:
        create_tracker(name, run_path, CONFIG)
    assert str(error.value) == (
        f"--track {name} needs the {package} package: pip install 'imgclf[track]'."
    )
