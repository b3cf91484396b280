"""`imgclf runs compare`: only the settings that differ, scores and times, seeds as mean ± std,
and compare.html with every picture also a PNG; bad input is one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from imgclf import api
from imgclf.cli import app
from imgclf.errors import ConfigError
from imgclf.evaluate.compare_plots import parallel_figure, pareto_figure
from imgclf.runs.compare import modes_using, pareto_front

runner = CliRunner()
PNG = b"\x89PNG\r\n\x1a\n"


def _train(name: str, **overrides):
    return api.train(Path("data"), "tiny.yaml", quiet=True, name=name, epochs=2, **overrides)


def test_pareto_front_keeps_what_nothing_beats_on_time_and_score() -> None:
    points = [(10.0, 0.80), (5.0, 0.70), (20.0, 0.90), (12.0, 0.75), (5.0, 0.60)]
    assert pareto_front(points) == [1, 0, 2]


def test_compare_shows_only_what_differs_and_groups_seeds(shapes: Path) -> None:
    _train("base")
    _train("fast", lr=0.05)
    _train("reseeded", seed=5)
    comparison = api.compare(["runs/base", "runs/fast", "runs/reseeded"])
    assert set(comparison.settings) == {"train.lr", "seed"}  # not epochs, not the run name
    assert comparison.settings["train.lr"] == [0.01, 0.05, 0.01]
    headers, rows = comparison.table()
    assert headers[:3] == ["name", "seed", "train.lr"] and headers[-2:] == [
        "train_seconds",
        "wall_seconds",
    ]
    assert [row[0] for row in rows] == ["base", "fast", "reseeded"]
    [group] = comparison.seed_groups
    assert group["runs"] == ["base", "reseeded"] and group["n"] == 2
    mean, std = group["test_accuracy"]
    scores = [r["test_accuracy"] for r in comparison.rows if r["name"] in group["runs"]]
    assert mean == pytest.approx(sum(scores) / 2) and std >= 0
    files = comparison.files
    assert files["page"] == Path("runs/compare/compare.html")
    for name in ("curves", "pareto", "parallel", "f1_delta"):
        assert (Path("runs/compare") / f"{name}.png").read_bytes()[:8] == PNG
    page = files["page"].read_text()
    assert page.startswith("<!DOCTYPE html>") and page.count("data:image/png;base64,") == 4
    assert "<th>lr</th>" in page and "differ only by seed" in page


def test_the_cli_compares_by_where_and_prints_the_table(shapes: Path) -> None:
    _train("a")
    _train("b", lr=0.05)
    result = runner.invoke(app, ["runs", "compare", "--where", "status=finished",
                                 "--out", "cmp"])  # fmt: skip
    assert result.exit_code == 0, result.output
    table = result.output.split("Report")[0]
    assert " lr " in table and "seed" not in table and "train.lr" not in table
    assert f"Report: {Path('cmp/compare.html').resolve()}" in result.output


def test_bad_compares_are_one_clear_line(shapes: Path) -> None:
    _train("a")
    one = runner.invoke(app, ["runs", "compare", "a"])
    assert one.exit_code == 2 and "Compare needs at least two runs; 1 matched" in one.output
    unknown = runner.invoke(app, ["runs", "compare", "a", "zz"])
    assert unknown.exit_code == 2 and "No run 'zz'" in unknown.output
    for result in (one, unknown):
        assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert not Path("runs/compare").exists()
    with pytest.raises(ConfigError, match="at least two runs"):
        api.compare(where={"status": "failed"})


# ------------------------------------------------------- what a mode uses; trials that stopped

LITE0 = "efficientnet_lite0"


def test_settings_a_runs_mode_does_not_use_are_not_differences(project, record_run) -> None:
    for name, mode, finetune_epochs in (("fe", "feature_extract", 3), ("ft", "finetune", 1),
                                        ("ft5", "finetune", 5)):  # fmt: skip
        config = {"model": {"name": LITE0, "mode": mode, "unfreeze": 2},
                  "train": {"finetune_epochs": finetune_epochs, "finetune_lr": None}}  # fmt: skip
        record_run(project, name, config=config, metrics={"val": {"accuracy": 0.5}})
    two = api.compare(["fe", "ft"], project=project)
    assert two.settings == {"model.mode": ["feature_extract", "finetune"]}
    three = api.compare(["fe", "ft", "ft5"], project=project)
    assert three.settings["train.finetune_epochs"] == [None, 1, 5]  # fe does not use it
    assert modes_using("train.finetune_epochs") == {"finetune"}
    assert modes_using("model.unfreeze") == modes_using("model.freeze_bn") == {"finetune"}
    assert modes_using("train.embedding_cache") == {"feature_extract", "finetune"}
    assert modes_using("train.lr") == modes_using("seed") == {"feature_extract", "finetune",
                                                              "scratch"}  # fmt: skip
    result = runner.invoke(app, ["runs", "compare", "fe", "ft", "--project", str(project)])
    assert result.exit_code == 0, result.output
    assert "finetune epochs" not in result.output and " mode " in result.output


@pytest.fixture
def study(project, record_run):
    """A study's trials: complete (slow, best), pruned (fastest), cut by the deadline, failed."""
    trials = [
        ("s-000", {"stop": "complete"}, 10.0, 0.90),
        ("s-001", {"stop": "pruned"}, 2.0, 0.85),
        ("s-002", {"stop": "time_limit"}, 5.0, 0.88),
    ]
    for trial, (name, stop, wall, accuracy) in enumerate(trials):
        config = {"run": {"study": "s", "trial": trial}, "train": {"lr": 0.01 * (trial + 1)}}
        record_run(project, name, config=config, metrics={"val": {"accuracy": accuracy}},
                   wall_seconds=wall, **stop)  # fmt: skip
    record_run(project, "s-003", config={"run": {"study": "s", "trial": 3},
                                         "train": {"lr": 0.5}},
               status="failed", stop="failed", error="loss is nan")  # fmt: skip
    return project


def test_pruned_cut_and_failed_trials_are_marked_and_off_the_pareto_front(study) -> None:
    comparison = api.compare(project=study, where={"run.study": "s"}, out=study / "cmp")
    assert comparison.outcomes == ["finished", "pruned", "cut", "failed"]
    assert comparison.front() == [0]  # the pruned trial is fastest, yet not on the front
    columns, rows = comparison.table()
    assert columns[:2] == ["name", "status"]
    assert [row[1] for row in rows] == ["finished", "pruned", "cut", "failed"]
    page = (study / "cmp" / "compare.html").read_text()
    for outcome in ("pruned", "cut", "failed"):
        assert f"<td>{outcome}</td>" in page
    result = runner.invoke(app, ["runs", "compare", "--study", "s", "--project", str(study)])
    assert result.exit_code == 0, result.output
    assert "│ s-001 │ pruned " in result.output and "│ s-003 │ failed " in result.output


def test_the_pareto_picture_gives_stopped_trials_their_own_marker() -> None:
    figure = pareto_figure(["a", "b", "c"], [10.0, 2.0, 5.0], [0.9, 0.85, 0.88], [0], "val",
                           ["finished", "pruned", "cut"])  # fmt: skip
    _, labels = figure.axes[0].get_legend_handles_labels()
    assert labels == ["pruned (not on the front)", "cut (not on the front)", "Pareto front"]
    lines = parallel_figure(["a", "b"], {"lr": [0.1, 0.2]}, [0.9, 0.8], "val acc",
                            ["finished", "pruned"]).axes[0].get_lines()  # fmt: skip
    runs = {line.get_label(): line.get_linestyle() for line in lines if line.get_label()[0] != "_"}
    assert runs == {"a": "-", "b (pruned)": "--"}


def test_a_comparison_without_stopped_runs_has_no_status_column(project, record_run) -> None:
    for name, lr in (("a", 0.1), ("b", 0.2)):
        record_run(project, name, config={"train": {"lr": lr}}, stop="complete")
    columns, _ = api.compare(["a", "b"], project=project).table()
    assert "status" not in columns
