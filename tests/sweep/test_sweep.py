"""Sweeps end to end on tiny data: trials as runs in the ledger, pruning, failures, the
deadline, storage, enqueueing, resuming after kill -9, the report and the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from tests.train.conftest import make_blocks
from typer.testing import CliRunner

from imgclf import api
from imgclf.cli import app
from imgclf.errors import ConfigError

SPACE = {"train.lr": {"log_float": [1e-3, 1e-1]}, "train.batch_size": [8, 16]}
# plots off: these tests are about the study, and a tiny trial's figures are most of its time
SHARED = {"model": "mlp", "epochs": 3, "quiet": True, "val_split": 0.3, "plots": False}


@pytest.fixture
def blocks_npz(tmp_path: Path) -> Path:
    images, labels = make_blocks(n_per_class=30)
    path = tmp_path / "blocks.npz"
    np.savez(path, x=images, y=labels)
    return path


def _ledger(project: Path) -> list[dict]:
    return [json.loads(line) for line in (project / "ledger.jsonl").read_text().splitlines()]


def test_every_trial_is_a_run_in_the_ledger_tagged_with_study_and_trial(tmp_path, blocks_npz):
    project = tmp_path / "runs"
    result = api.sweep(blocks_npz, SPACE, trials=3, study="s", project=project, **SHARED)
    assert [row["trial"] for row in result.trials] == [0, 1, 2]
    assert {row["state"] for row in result.trials} <= {"complete", "pruned"}
    started = [r for r in _ledger(project) if r["event"] == "started"]
    assert [(r["run"], r["study"], r["trial"]) for r in started] == [
        ("s-000", "s", 0), ("s-001", "s", 1), ("s-002", "s", 2)
    ]  # fmt: skip
    assert result.best["value"] == max(r["value"] for r in result.trials if r["value"])
    rows = api.runs(project, where={"run.study": "s"})
    assert len(rows) == 3 and {row["study"] for row in rows} == {"s"}
    assert (project / "sweeps.journal").is_file()


def test_a_study_given_again_is_continued_to_its_total(tmp_path, blocks_npz):
    project = tmp_path / "runs"
    api.sweep(blocks_npz, SPACE, trials=2, study="s", project=project, **SHARED)
    again = api.sweep(blocks_npz, SPACE, trials=3, study="s", project=project, **SHARED)
    assert again.ran == 1 and len(again.trials) == 3
    done = api.sweep(blocks_npz, SPACE, trials=3, study="s", project=project, **SHARED)
    assert done.ran == 0


def test_a_trial_that_raises_is_failed_and_the_study_goes_on(tmp_path, blocks_npz):
    # a 4x4 image is too small for the cnn's pooling: that trial's model cannot be built
    space = {"model.name": {"choice": ["cnn", "mlp"]}}
    result = api.sweep(
        blocks_npz, space, trials=2, study="s", project=tmp_path / "runs", sampler="grid",
        **{**SHARED, "model": None},
    )  # fmt: skip
    states = {row["params"]["model.name"]: row for row in result.trials}
    assert states["cnn"]["state"] == "fail" and "needs images of at least" in states["cnn"]["error"]
    assert states["mlp"]["state"] == "complete"


def test_the_pruner_stops_poor_trials_at_once(tmp_path, blocks_npz):
    # a learning rate that cannot learn, after five that can: pruned at its first report
    from imgclf.sweep.callbacks import TrialPruning
    from imgclf.train.callbacks import TrainState

    class AlwaysPrune:
        def report(self, value, step):
            self.reported = (value, step)

        def should_prune(self):
            return True

    state = TrainState(epochs=5)
    pruning = TrialPruning(AlwaysPrune(), "val_accuracy")
    pruning.on_epoch_end(2, {"val_accuracy": 0.4}, state)
    assert state.stop_reason.startswith("pruned at epoch 2")
    assert pruning.trial.reported == (0.4, 2)
    project = tmp_path / "runs"
    shared = {**SHARED, "epochs": 3, "sampler": "random"}
    api.sweep(blocks_npz, {"train.lr": {"float": [0.03, 0.06]}}, trials=5, study="p",
              project=project, **shared)  # fmt: skip
    # the median pruner's five trials are in: a learning rate that cannot learn is cut early
    recipe = tmp_path / "hopeless.yaml"
    recipe.write_text("train:\n  lr: 1.0e-7\n")
    result = api.sweep(blocks_npz, {"train.lr": {"float": [1e-7, 0.06]}}, trials=6, study="p",
                       project=project, enqueue=recipe, **shared)  # fmt: skip
    pruned = [row for row in result.trials if row["state"] == "pruned"]
    assert [row["params"]["train.lr"] for row in pruned] == [1e-7]
    finished = {r["run"]: r for r in _ledger(project) if r["event"] == "finished"}
    assert finished[pruned[0]["run"]]["stop"] == "pruned"
    assert finished[pruned[0]["run"]]["epochs_run"] < 3
    assert not (project / pruned[0]["run"] / "checkpoints").exists()  # never resumed
    assert (project / pruned[0]["run"] / "model").is_dir()


def test_the_deadline_cuts_the_trial_in_flight(tmp_path, blocks_npz):
    result = api.sweep(
        blocks_npz, SPACE, trials=50, budget=8, study="d", project=tmp_path / "runs",
        **{**SHARED, "epochs": 10_000},
    )  # fmt: skip
    assert len(result.trials) == 1  # 10,000 epochs: only the deadline ended it, and no other began
    assert result.trials[-1]["stop"] == "time_limit"
    assert result.trials[-1]["state"] == "pruned"
    assert any("budget ended the sweep" in note for note in result.notes)


def test_refit_trains_the_best_settings_on_train_and_val(tmp_path, blocks_npz):
    """...and draws its figures, the run one keeps, though the trials were told not to."""
    project = tmp_path / "runs"
    result = api.sweep(blocks_npz, SPACE, trials=2, study="r", project=project, refit=True,
                       **SHARED)  # fmt: skip
    assert result.refit == "r-refit"
    assert not list((project / "r-000" / "plots").glob("*.png"))
    assert (project / "r-refit" / "plots" / "curves.png").is_file()
    started = {r["run"]: r for r in _ledger(project) if r["event"] == "started"}
    refit = started["r-refit"]
    assert refit["parent"] == result.best["run"] and refit["study"] == "r"
    assert refit["config"]["data"]["val_split"] == 0.0
    assert refit["config"]["train"]["lr"] == result.best["params"]["train.lr"]


def test_an_enqueued_config_is_the_next_trial_with_its_own_settings(tmp_path, blocks_npz):
    recipe = tmp_path / "tutorial.yaml"
    recipe.write_text("train:\n  lr: 0.01\n  batch_size: 16\n  optimizer: sgd\n")
    project = tmp_path / "runs"
    result = api.sweep(blocks_npz, SPACE, trials=1, study="e", project=project,
                       enqueue=recipe, **SHARED)  # fmt: skip
    assert result.trials[0]["params"] == {"train.lr": 0.01, "train.batch_size": 16}
    assert result.trials[0]["enqueued"]
    started = next(r for r in _ledger(project) if r["event"] == "started")
    assert started["config"]["train"]["optimizer"] == "sgd"  # not in the space: its own
    outside = tmp_path / "outside.yaml"
    outside.write_text("train:\n  batch_size: 64\n")
    with pytest.raises(ConfigError, match="not in the space's choices"):
        api.sweep(blocks_npz, SPACE, trials=2, study="e", project=project, enqueue=outside,
                  **SHARED)  # fmt: skip


def test_a_study_continued_with_other_choices_says_so(tmp_path, blocks_npz):
    project = tmp_path / "runs"
    api.sweep(blocks_npz, {"train.lr": [0.01]}, trials=1, study="x", project=project, **SHARED)
    with pytest.raises(ConfigError, match="Study 'x' searched other values of train.lr"):
        api.sweep(blocks_npz, {"train.lr": [0.02]}, trials=2, study="x", project=project,
                  **SHARED)  # fmt: skip
    again = api.sweep(blocks_npz, {"train.lr": [0.01]}, trials=2, study="x", project=project,
                      **SHARED)  # fmt: skip
    assert [row["state"] for row in again.trials] == ["complete", "abandoned", "complete"]


def test_a_storage_that_cannot_be_opened_is_one_line(tmp_path, blocks_npz):
    with pytest.raises(ConfigError, match="Sweep storage postgresql://nobody@127.0.0.1:9/x"):
        api.sweep(blocks_npz, SPACE, trials=1, storage="postgresql://nobody@127.0.0.1:9/x",
                  project=tmp_path, **SHARED)  # fmt: skip
    with pytest.raises(ConfigError, match="cannot be opened"):
        api.sweep(blocks_npz, SPACE, trials=1, storage="nosuchdb://x", project=tmp_path,
                  **SHARED)  # fmt: skip
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="cannot be opened"):
        api.sweep(blocks_npz, SPACE, trials=1, storage=str(blocker / "s.journal"),
                  project=tmp_path, **SHARED)  # fmt: skip


def test_a_sqlite_url_holds_the_study(tmp_path, blocks_npz):
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    result = api.sweep(blocks_npz, SPACE, trials=1, storage=url, study="q",
                       project=tmp_path / "runs", **SHARED)  # fmt: skip
    assert result.trials[0]["state"] == "complete"
    assert (tmp_path / "studies.db").is_file()


_SWEEP_SCRIPT = """
import sys
from imgclf import api
api.sweep(sys.argv[1], {"train.lr": [0.01, 0.02, 0.03]}, trials=3, study="k",
          project=sys.argv[2], model="mlp", epochs=100000, quiet=True, sampler="grid")
"""


def test_kill_9_during_a_sweep_then_resume_loses_and_double_counts_nothing(tmp_path, blocks_npz):
    project = tmp_path / "runs"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    process = subprocess.Popen(
        [sys.executable, "-c", _SWEEP_SCRIPT, str(blocks_npz), str(project)], env=env
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            ledger = project / "ledger.jsonl"
            if ledger.is_file() and (project / "k-000" / "history.csv").is_file():
                break  # trial 0 is training
            time.sleep(0.2)
        else:
            pytest.fail("the sweep did not start a trial")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    result = api.sweep(blocks_npz, {"train.lr": [0.01, 0.02, 0.03]}, trials=3, study="k",
                       project=project, sampler="grid", **{**SHARED, "epochs": 2})  # fmt: skip
    states = [row["state"] for row in result.trials]
    assert states.count("abandoned") == 1 and states[0] == "abandoned"
    assert sorted(states[1:]) == ["complete"] * 3  # the killed trial replaced, three in all
    # the grid point of the killed trial was run again, once
    assert sorted(row["params"]["train.lr"] for row in result.trials[1:]) == [0.01, 0.02, 0.03]
    rows = {row["name"]: row for row in api.runs(project)}
    assert rows["k-000"]["status"] == "interrupted"
    assert len(rows) == 4


def test_the_cli_sweeps_and_reports(tmp_path, blocks_npz):
    project = tmp_path / "runs"
    space = tmp_path / "space.yaml"
    space.write_text("train.lr: {log_float: [1.0e-3, 1.0e-1]}\n")
    runner = CliRunner()
    result = runner.invoke(app, [
        "sweep", str(blocks_npz), "--space", str(space), "--trials", "2", "--study", "c",
        "--project", str(project), "--model", "mlp", "--epochs", "2", "--val-split", "0.3",
        "--no-plots",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "study c: 2 trials" in result.output and "best: trial" in result.output
    assert not list(project.glob("c-*/plots/*.png"))  # the trials' figures were not drawn
    report = runner.invoke(app, ["sweep", "report", "c", "--project", str(project)])
    assert report.exit_code == 0, report.output
    folder = project / "sweeps" / "c"
    assert {"compare.html", "history.png", "curves.png"} <= {p.name for p in folder.iterdir()}
    assert "optimisation history" in (folder / "compare.html").read_text()
    compared = runner.invoke(app, ["runs", "compare", "--study", "c", "--project", str(project)])
    assert compared.exit_code == 0, compared.output
    assert "c-000" in compared.output and "c-001" in compared.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--space", "{space}", "--sampler", "bayes"], "Unknown sampler 'bayes'"),
        (["--space", "{space}", "--pruner", "hyperband"], "Unknown pruner 'hyperband'"),
        (["--space", "{space}", "--trials", "0"], "trials must be at least 1"),
        (["--space", "{space}", "--budget", "soon"], "budget"),
        (["--space", "{missing}"], "does not exist"),
        (["--space", "{space}", "--val-split", "0"], "set val_split above 0"),
    ],
)
def test_bad_sweep_arguments_exit_2_with_one_line(tmp_path, blocks_npz, args, message):
    space = tmp_path / "space.yaml"
    space.write_text("train.lr: [0.01]\n")
    filled = [a.format(space=space, missing=tmp_path / "missing.yaml") for a in args]
    result = CliRunner().invoke(
        app, ["sweep", str(blocks_npz), *filled, "--project", str(tmp_path / "runs")]
    )
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "runs" / "ledger.jsonl").exists()


def test_a_report_of_an_unknown_study_names_the_known_ones(tmp_path, blocks_npz):
    api.sweep(blocks_npz, SPACE, trials=1, study="known", project=tmp_path / "runs", **SHARED)
    result = CliRunner().invoke(
        app, ["sweep", "report", "knwon", "--project", str(tmp_path / "runs")]
    )
    assert result.exit_code == 2
    assert "No study 'knwon'" in result.output and "Did you mean 'known'?" in result.output


@pytest.mark.parametrize(
    ("kind", "message", "race"),
    [
        ("ProgrammingError", 'relation "studies" already exists', True),  # PostgreSQL
        ("ProgrammingError", 'type "studydirection" already exists', True),
        ("OperationalError", "table studies already exists", True),  # SQLite
        ("IntegrityError", "duplicate key value violates unique constraint", True),
        ("OperationalError", "could not connect to server", False),
        ("ProgrammingError", "permission denied for schema public", False),
    ],
)
def test_workers_creating_one_database_retry_only_the_race(kind, message, race) -> None:
    """Two workers on a new database both create its tables: the one that loses retries."""
    import sqlalchemy.exc

    from imgclf.sweep.study import _creation_race

    error = getattr(sqlalchemy.exc, kind)("CREATE TABLE studies", {}, Exception(message))
    assert _creation_race(error) is race


def test_a_first_trial_that_built_the_caches_does_not_stand_for_the_next() -> None:
    """The next trial reads the decoded images and embeddings the first one made: a budget
    with less left than the first trial's wall time, but more than what it repeats, goes on."""
    import optuna

    from imgclf.api.settings import make_config
    from imgclf.sweep.runner import MIN_TRIAL_SECONDS, TrialRunner

    study = optuna.create_study(direction="maximize")
    attrs = {"wall_seconds": 40.0, "repeat_seconds": 9.0}  # 31 s decoding and embedding
    study.add_trial(optuna.trial.create_trial(value=0.5, user_attrs=attrs))
    deadline = time.perf_counter() + 20.0
    runner = TrialRunner(None, make_config(None), {}, study, deadline, False, print, train=None)
    assert runner._shortest_trial() == 9.0 < runner.left()
    older = optuna.create_study(direction="maximize")  # a study from before: its wall time
    older.add_trial(optuna.trial.create_trial(value=0.5, user_attrs={"wall_seconds": 3.0}))
    runner.study = older
    assert runner._shortest_trial() == MIN_TRIAL_SECONDS
