"""`imgclf runs compare`: only the settings that differ, scores and times, seeds as mean ± std,
and compare.html with every picture also a PNG; bad input is one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from imgclf import api
from imgclf.cli import app
from imgclf.errors import ConfigError
from imgclf.runs.compare import pareto_front

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
    assert "train.lr" in page and "differ only by seed" in page


def test_the_cli_compares_by_where_and_prints_the_table(shapes: Path) -> None:
    _train("a")
    _train("b", lr=0.05)
    result = runner.invoke(app, ["runs", "compare", "--where", "status=finished",
                                 "--out", "cmp"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "train.lr" in result.output and "seed" not in result.output.split("Report")[0]
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
