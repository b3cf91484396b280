"""MLflow: one MLflow run per training session, in an experiment named after the project.

The store is ``MLFLOW_TRACKING_URI`` when set (a server, a database), else
``sqlite:///<project>/mlflow.db`` with the artifacts in ``<project>/mlruns``, so a project
folder carries its own tracking (``mlflow ui --backend-store-uri sqlite:///runs/mlflow.db``).
An own ``MlflowClient`` is used, never mlflow's global active run or URI, so tracking cannot
leak into the user's other MLflow code.
"""

from __future__ import annotations

import importlib
import os
import time
import warnings
from pathlib import Path

from imgclf.runs.rundir import RunDir
from imgclf.track import final_metrics, flatten, missing, numeric
from imgclf.train.callbacks import Callback, TrainState

MAX_PARAM_LENGTH = 6000  # mlflow's limit on a param value (MAX_PARAM_VAL_LENGTH)
_BATCH = 100  # params per log_batch call, mlflow's limit


def tracking_uri(project: Path) -> tuple[str, str | None]:
    """(store URI, artifact location for a new experiment): ``MLFLOW_TRACKING_URI`` and its
    own default, or the project folder's SQLite file and ``mlruns`` folder (mlflow's default
    would be ./mlruns wherever the process runs)."""
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"], None
    return f"sqlite:///{project / 'mlflow.db'}", (project / "mlruns").as_uri()


class MLflowTracker(Callback):
    """Params (the flattened config) at the start, metrics per epoch (step = epoch), and at the
    run's end the final scores (``final/...``), report.html and model/, then FINISHED.

    A run that fails or is interrupted before its end stays RUNNING in MLflow, as on_train_end
    cannot tell whether the run's end will still come; a resumed run is a new MLflow run of the
    same name.
    """

    def __init__(self, run_path: Path, config: dict) -> None:
        self.run = RunDir(run_path.resolve())
        self.uri, self.artifact_location = tracking_uri(self.run.path.parent)
        packages = ["mlflow"] + (["sqlalchemy", "alembic"] if self.uri.startswith("sqlite") else [])
        for package in packages:
            try:
                importlib.import_module(package)
            except ImportError:
                raise missing("mlflow", package) from None
        from mlflow import MlflowClient

        with warnings.catch_warnings():  # its SQL store on SQLAlchemy 2.1 warns once at import
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"mlflow\.")
            self.client = MlflowClient(tracking_uri=self.uri)
        self.config = config
        self.run_id: str | None = None

    def _experiment_id(self) -> str:
        from mlflow.exceptions import MlflowException

        name = self.run.path.parent.name
        experiment = self.client.get_experiment_by_name(name)
        if experiment is None:
            try:
                return self.client.create_experiment(name, artifact_location=self.artifact_location)
            except MlflowException:  # created meanwhile by another run of the project
                experiment = self.client.get_experiment_by_name(name)
                if experiment is None:
                    raise
        if experiment.lifecycle_stage == "deleted":
            self.client.restore_experiment(experiment.experiment_id)
        return experiment.experiment_id

    def _start(self) -> str:
        from mlflow.entities import Param

        if self.run_id is None:
            tags = {"imgclf.run_path": str(self.run.path)}
            run = self.client.create_run(self._experiment_id(), run_name=self.run.name, tags=tags)
            self.run_id = run.info.run_id
            params = [Param(k, str(v)[:MAX_PARAM_LENGTH]) for k, v in flatten(self.config).items()]
            for start in range(0, len(params), _BATCH):
                self.client.log_batch(self.run_id, params=params[start : start + _BATCH])
        return self.run_id

    def _log(self, values: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        stamp = int(time.time() * 1000)
        metrics = [Metric(k, v, stamp, step) for k, v in values.items()]
        if metrics:
            self.client.log_batch(self._start(), metrics=metrics)

    def on_train_begin(self, state: TrainState) -> None:
        self._start()

    def on_epoch_end(self, epoch: int, logs: dict, state: TrainState) -> None:
        self._log(numeric(logs), epoch)

    def on_run_end(self, metrics: dict, state: TrainState) -> None:
        run_id = self._start()
        self._log(final_metrics(metrics), state.epoch)
        if self.run.report.is_file():
            self.client.log_artifact(run_id, str(self.run.report))
        if self.run.model.is_dir():
            self.client.log_artifacts(run_id, str(self.run.model), artifact_path="model")
        self.client.set_terminated(run_id, "FINISHED")
