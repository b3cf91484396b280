"""The project's ledger: append-only events per run, folded into one state per run; it survives
a line cut by kill -9, is rebuilt from run folders when missing, and `runs list / show /
score / rm` read and extend it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from imgclf import api
from imgclf.cli import app
from imgclf.config import Config
from imgclf.errors import ConfigError
from imgclf.runs.ledger import append_record, fold_runs, ledger_path, read_ledger
from imgclf.runs.recording import stop_kind

runner = CliRunner()


def _train(name: str, **overrides):
    return api.train(Path("data"), "tiny.yaml", quiet=True, name=name, epochs=2, **overrides)


# ---------------------------------------------------------------- the file


def test_events_fold_into_one_state_per_run(tmp_path: Path) -> None:
    append_record(tmp_path, "started", "a", seed=1)
    append_record(tmp_path, "started", "b", seed=2)
    append_record(tmp_path, "finished", "a", epochs_run=3)
    append_record(tmp_path, "score", "a", name="kaggle_public", value=0.5, note=None)
    append_record(tmp_path, "score", "a", name="kaggle_public", value=0.7, note="resubmitted")
    append_record(tmp_path, "removed", "b")
    states = fold_runs(read_ledger(tmp_path).records)
    assert list(states) == ["a"]
    assert states["a"]["status"] == "finished" and states["a"]["epochs_run"] == 3
    assert [score["value"] for score in states["a"]["external"]] == [0.5, 0.7]
    with pytest.raises(ValueError, match="Ledger event must be one of"):
        append_record(tmp_path, "deleted", "a")


def test_a_line_cut_by_kill_9_is_skipped_and_nothing_else_is_lost(tmp_path: Path) -> None:
    append_record(tmp_path, "started", "a")
    with open(ledger_path(tmp_path), "a", encoding="utf-8") as file:
        file.write('{"format": 1, "event": "finished", "run": "a", "epo')  # the crash
    append_record(tmp_path, "started", "b")
    read = read_ledger(tmp_path)
    assert [record["run"] for record in read.records] == ["a", "b"]
    assert read.skipped == [(2, "not a complete JSON line; cut by a crash?")]
    assert "ledger.jsonl:2: skipped" in read.warnings(ledger_path(tmp_path))[0]


@pytest.mark.parametrize(
    ("status", "reason", "kind"),
    [
        ("finished", None, "complete"),
        ("finished", "early stopping: val_accuracy did not improve for 3 epochs", "early_stop"),
        ("finished", "time limit 1m00s: epoch 3 would end after 1m09s; stopped", "time_limit"),
        ("finished", "pruned at epoch 2", "pruned"),
        ("finished", "loss is nan at epoch 1, batch 3", "failed"),
        ("interrupted", None, "interrupted"),
        ("failed", None, "failed"),
    ],
)
def test_stop_kinds(status: str, reason: str | None, kind: str) -> None:
    assert stop_kind(status, reason) == kind


# ---------------------------------------------------------------- what a run records


def test_a_run_records_who_what_where_and_how_well(shapes: Path) -> None:
    first = _train("a")
    _train("b")
    _train("c", seed=7)
    records = read_ledger("runs").records
    assert [(r["event"], r["run"]) for r in records] == [
        ("started", "a"), ("finished", "a"), ("started", "b"), ("finished", "b"),
        ("started", "c"), ("finished", "c"),
    ]  # fmt: skip
    started, finished = records[0], records[1]
    assert started["config"]["train"]["epochs"] == 2 and started["seed"] == 0
    assert started["runtime"]["device"] == "cpu" and started["cpu"]
    assert started["imgclf_version"] and len(started["data_fingerprint"]) == 32
    assert finished["epochs_run"] == 2 == finished["epochs_planned"]
    assert finished["stop"] == "complete" and finished["wall_seconds"] > 0
    assert finished["metrics"]["test"]["accuracy"] == first.metrics["test"]["accuracy"]
    assert finished["metrics"]["val"]["macro_f1"] is not None
    assert finished["best_val"]["epoch"] == first.metrics["best_epoch"]
    states = fold_runs(records)
    same = ("config_hash", "data_fingerprint")  # names differ, settings and data do not
    assert all(states["a"][key] == states["b"][key] for key in same)
    assert all(states["a"][key] != states["c"][key] for key in same)  # the seed splits too


def test_a_failed_run_is_in_the_ledger_with_its_error(shapes: Path, monkeypatch) -> None:
    import imgclf.train.session

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(imgclf.train.session, "fit", broken)
    with pytest.raises(RuntimeError):
        _train("f")
    state = fold_runs(read_ledger("runs").records)["f"]
    assert (state["status"], state["stop"]) == ("failed", "failed")
    assert state["error"] == "RuntimeError: disk on fire"  # an unexpected error names its type


def test_an_unexpected_error_is_recorded_with_its_type_and_an_imgclf_error_as_said() -> None:
    from imgclf.errors import DataError
    from imgclf.runs.recording import readable_error

    assert readable_error(KeyError(140288553500560)) == "KeyError: 140288553500560"
    assert readable_error(ValueError()) == "ValueError"
    assert readable_error(DataError("data/cat has 0 images.")) == "data/cat has 0 images."


def test_runs_list_rebuilds_a_missing_ledger_from_the_folders(shapes: Path) -> None:
    _train("a")
    _train("b", lr=0.05)
    before = api.runs("runs")
    os.remove(ledger_path("runs"))
    assert api.runs("runs") == before
    assert {record["rebuilt"] for record in read_ledger("runs").records if "rebuilt" in record}


# ---------------------------------------------------------------- the commands


def test_list_sorts_filters_and_picks_the_best(shapes: Path) -> None:
    _train("slow", lr=0.001)
    _train("fast", lr=0.05)
    names = [row["name"] for row in api.runs("runs")]
    assert names == ["fast", "slow"]  # newest first
    assert [row["name"] for row in api.runs("runs", where={"train.lr": "0.05"})] == ["fast"]
    assert len(api.runs("runs", limit=1)) == 1
    by_seconds = api.runs("runs", sort="train_seconds")
    assert by_seconds[0]["train_seconds"] <= by_seconds[1]["train_seconds"]
    best = api.runs("runs", best="val_accuracy")
    assert len(best) == 1
    assert best[0]["val_accuracy"] == max(row["val_accuracy"] for row in api.runs("runs"))
    listed = runner.invoke(app, ["runs", "list", "--where", "status=finished", "--limit", "1"])
    assert listed.exit_code == 0 and "fast" in listed.output and "slow" not in listed.output
    bad = runner.invoke(app, ["runs", "list", "--sort", "val_acuracy"])
    assert bad.exit_code == 2 and "Unknown key 'val_acuracy'" in bad.output
    assert "Did you mean 'val_accuracy'" in bad.output and "Traceback" not in bad.output


def test_external_scores_are_kept_listed_and_shown(shapes: Path) -> None:
    _train("a")
    assert runner.invoke(app, ["runs", "score", "runs/a", "kaggle_public", "0.71"]).exit_code == 0
    scored = runner.invoke(
        app, ["runs", "score", "a", "kaggle_public", "0.74", "--note", "with tta"]
    )
    assert scored.exit_code == 0, scored.output
    assert api.runs("runs")[0]["kaggle_public"] == 0.74
    assert "kaggle_public" in runner.invoke(app, ["runs", "list", "--csv"]).stdout
    shown = runner.invoke(app, ["runs", "show", "runs/a"])
    assert "score kaggle_public: 0.71" in shown.output and "0.74" in shown.output
    assert "with tta" in shown.output and "config hash:" in shown.output
    record = json.loads(runner.invoke(app, ["runs", "show", "a", "--json"]).stdout)
    assert [s["value"] for s in record["external"]] == [0.71, 0.74]
    unknown = runner.invoke(app, ["runs", "score", "b", "kaggle_public", "0.7"])
    assert unknown.exit_code == 2 and "No run 'b' in runs. Its runs: a." in unknown.output
    assert len(unknown.output.strip().splitlines()) == 1
    typo = runner.invoke(app, ["runs", "show", "aa"])
    assert typo.exit_code == 2 and "Did you mean 'a'?" in typo.output
    with pytest.raises(ConfigError, match="needs its own name"):
        api.score_run("runs/a", "val_accuracy", 0.5)


def test_a_kaggle_submission_names_its_run(shapes: Path) -> None:
    _train("k")
    made = runner.invoke(app, ["predict", "runs/k", "data/left", "--format", "kaggle",
                               "--output", "sub.csv"])  # fmt: skip
    assert made.exit_code == 0, made.output
    assert json.loads(Path("sub.csv.imgclf.json").read_text())["run"].endswith("runs/k")
    scored = runner.invoke(app, ["runs", "score", "sub.csv", "kaggle_private", "0.66"])
    assert scored.exit_code == 0, scored.output
    assert api.show_run("runs/k")["external"][0]["name"] == "kaggle_private"


def test_rm_asks_then_deletes_and_the_ledger_remembers(shapes: Path) -> None:
    _train("a")
    _train("b")
    refused = runner.invoke(app, ["runs", "rm", "runs/a"], input="n\n")
    assert refused.exit_code == 1 and Path("runs/a").is_dir()
    unknown = runner.invoke(app, ["runs", "rm", "runs/a", "runs/zz", "--yes"])
    assert unknown.exit_code == 2 and "No run 'zz'" in unknown.output
    assert Path("runs/a").is_dir()  # nothing is deleted when one name is wrong
    done = runner.invoke(app, ["runs", "rm", "a", "--project", "runs"], input="y\n")
    assert done.exit_code == 0, done.output
    assert not Path("runs/a").exists() and [row["name"] for row in api.runs()] == ["b"]
    assert read_ledger("runs").records[-1]["event"] == "removed"


def test_rankings_that_disagree_with_an_external_score_are_flagged(tmp_path: Path) -> None:
    rows = [
        {"name": "a", "test_accuracy": 0.9, "val_accuracy": 0.8, "kaggle": 0.70},
        {"name": "b", "test_accuracy": 0.8, "val_accuracy": 0.9, "kaggle": 0.75},
        {"name": "c", "test_accuracy": 0.7, "val_accuracy": 0.7, "kaggle": 0.60},
        {"name": "d", "test_accuracy": 0.95, "val_accuracy": 0.9},  # no external score
    ]
    assert api.ranking_disagreements(rows, "kaggle") == [("a", "b", "test_accuracy")]
    no_test = [{**row, "test_accuracy": None} for row in rows]
    assert api.ranking_disagreements(no_test, "kaggle") == []  # val agrees: b > a, b > c
    for name, accuracy in (("x", 0.9), ("y", 0.8)):  # two finished runs, as the ledger has them
        append_record(tmp_path, "started", name, config={"model": {"name": "cnn"}})
        append_record(tmp_path, "finished", name, metrics={"test": {"accuracy": accuracy}})
    api.score_run("x", "kaggle", 0.1, project=tmp_path)
    api.score_run("y", "kaggle", 0.9, project=tmp_path)
    listed = runner.invoke(app, ["runs", "list", "--project", str(tmp_path)])
    assert listed.exit_code == 0, listed.output
    assert "kaggle and test_accuracy disagree: x is ahead by test_accuracy, y by kaggle" in (
        listed.output
    )


def test_where_reaches_nested_config_keys(tmp_path: Path) -> None:
    for name, pooling in (("avg", "avg"), ("max", "max")):
        config = {"model": {"name": "cnn", "head": {"pooling": pooling}}}
        append_record(tmp_path, "started", name, config=config)
    rows = api.runs(tmp_path, where={"model.head.pooling": "max"})
    assert [row["name"] for row in rows] == ["max"]
    with pytest.raises(ConfigError, match="Unknown key 'model.head.poolng'"):
        api.runs(tmp_path, where={"model.head.poolng": "max"})


def test_the_ledger_records_imgclfs_own_commit_wherever_it_runs(tmp_path, monkeypatch) -> None:
    import subprocess

    import imgclf.runs.recording as recording

    package = Path(recording.__file__).resolve().parents[1]
    tracked = subprocess.run(["git", "-C", str(package), "ls-files", "--error-unmatch", "--",
                              "__init__.py"], capture_output=True, check=False)  # fmt: skip
    if tracked.returncode != 0:
        pytest.skip("imgclf is not running from a git clone")
    head = subprocess.run(["git", "-C", str(package), "rev-parse", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()  # fmt: skip
    monkeypatch.chdir(tmp_path)  # a folder outside any git work tree
    started = recording.started_fields(Config(), "fingerprint", {"device": "cpu"})
    assert started["git_sha"] == head
    untracked = tmp_path / "clone" / ".venv" / "imgclf"  # a wheel inside some project's repo
    untracked.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(tmp_path / "clone")], check=True)
    assert recording.git_sha(untracked) is None
