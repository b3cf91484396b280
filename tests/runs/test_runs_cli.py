"""`imgclf runs list` in a pipe (every column, nothing wrapped) and on an 80-column terminal
(columns left out, with a note, never squeezed), its CSV and its help."""

from __future__ import annotations

import csv
import io

import pytest
from typer.testing import CliRunner

from imgclf.cli import app
from imgclf.cli.runs import fit_columns, table_width
from imgclf.runs.registry import COLUMNS
from imgclf.runs.rundir import RunDir

runner = CliRunner()
LONG = "efficientnet_lite0-flowers102-run12"  # with 4 score columns: exactly 80 wide
# A terminal of 80 columns as rich and shutil see it; TERM=dumb: no colours or bold to strip.
TERMINAL_80 = {"TTY_COMPATIBLE": "1", "COLUMNS": "80", "LINES": "25", "TERM": "dumb"}


@pytest.fixture
def runs(project, make_run):
    metrics = {
        "epochs_run": 6,
        "best_epoch": 5,
        "val": {"accuracy": 0.91234},
        "test": {"accuracy": 0.9},
        "timings": {"train": 123.456789},
    }
    make_run(project, LONG, metrics=metrics)
    failed = RunDir(make_run(project, "cnn-flowers-1", model={"name": "cnn"}))
    failed.write_status("failed", error="CUDA out of memory. Tried to allocate 2.00 GiB", epoch=2)
    return project


def _lines(output: str) -> list[str]:
    return output.rstrip("\n").split("\n")


def _table_and_note(output: str) -> tuple[list[str], str]:
    """The table's lines (after the heading) and the note below it, unwrapped."""
    lines = _lines(output)
    end = next(i for i, line in enumerate(lines) if line.startswith("└"))
    return lines[1 : end + 1], " ".join(line.strip() for line in lines[end + 1 :])


def test_a_pipe_gets_every_column_at_natural_width(runs) -> None:
    result = runner.invoke(app, ["runs", "list", "--wide", "--project", str(runs)])
    assert result.exit_code == 0, result.output
    lines = _lines(result.output)
    assert len(lines) == 1 + 3 + 2 + 1  # heading, top rule + header + rule, 2 rows, bottom rule
    assert (
        LONG in lines[4] + lines[5] and "CUDA out of memory. Tried to allocate 2.00 GiB" in lines[4]
    )
    for header in ("name", "mode", "image size", "lr", "best epoch", "seconds", "status", "error"):
        assert f" {header} " in lines[2]
    assert "scratch" in lines[4] and "failed" in lines[4] and "6/6" in lines[5]
    assert "Left out" not in result.output


def test_an_80_column_terminal_leaves_columns_out_and_says_which(runs) -> None:
    result = runner.invoke(app, ["runs", "list", "--project", str(runs)], env=TERMINAL_80)
    assert result.exit_code == 0, result.output
    table, note = _table_and_note(result.output)
    assert max(len(line) for line in table) == 80 and len(table) == 3 + 2 + 1
    assert any(LONG in line for line in table)  # never wrapped nor cut
    assert all(f" {h} " in table[1] for h in ("name", "val acc", "test acc", "status"))
    assert " model " not in table[1] and " data " not in table[1]
    assert note.startswith("Left out to fit 80 columns: model, data, train_seconds.")
    assert "--wide on a wider terminal" in note and "--csv" in note


def test_wide_on_an_80_column_terminal_keeps_name_and_scores(runs) -> None:
    result = runner.invoke(app, ["runs", "list", "--wide", "--project", str(runs)], env=TERMINAL_80)
    assert result.exit_code == 0, result.output
    table, note = _table_and_note(result.output)
    assert all(f" {h} " in table[1] for h in ("name", "val acc", "test acc"))
    assert all(len(line) <= 80 for line in table) and len(table) == 3 + 2 + 1
    assert ", error." in note and note.endswith("A wider terminal shows them, or use --csv.")


def test_fit_columns_drops_the_least_important_first() -> None:
    widths = {
        "name": 30,
        "model": 18,
        "data": 7,
        "epochs": 6,
        "val_accuracy": 7,
        "test_accuracy": 8,
    }
    assert fit_columns(widths, None) == list(widths)
    assert fit_columns(widths, table_width(list(widths.values()))) == list(widths)
    assert fit_columns(widths, 80) == ["name", "epochs", "val_accuracy", "test_accuracy"]
    assert fit_columns(widths, 60) == ["name", "val_accuracy", "test_accuracy"]
    assert fit_columns(widths, 20) == ["name"]  # kept even when too wide: names are never cut
    assert fit_columns({"name": 4, "new_column": 4, "val_accuracy": 7}, 20) == [
        "name", "val_accuracy",
    ]  # fmt: skip


def test_csv_has_integer_best_epoch_rounded_seconds_and_the_error(runs) -> None:
    result = runner.invoke(app, ["runs", "list", "--csv", "--project", str(runs)])
    assert result.exit_code == 0, result.output
    assert result.output.split("\n")[0] == ",".join(COLUMNS)
    failed, finished = csv.DictReader(io.StringIO(result.output))
    assert (finished["best_epoch"], finished["train_seconds"]) == ("5", "123.5")
    assert (failed["best_epoch"], failed["train_seconds"], failed["status"]) == ("", "", "failed")
    assert failed["error"] == "CUDA out of memory. Tried to allocate 2.00 GiB"
    assert (failed["mode"], failed["epochs"]) == ("scratch", "?/3")


def test_no_runs(tmp_path) -> None:
    result = runner.invoke(app, ["runs", "list", "--project", str(tmp_path)])
    assert result.exit_code == 0 and result.output == f"No runs in {tmp_path}.\n"
    assert runner.invoke(app, ["runs", "list", "--csv", "--project", str(tmp_path)]).output == (
        ",".join(COLUMNS) + "\n"
    )


@pytest.mark.parametrize("env", [{}, {"COLUMNS": "80"}])
def test_help_says_what_runs_does_with_whole_words(env) -> None:
    group = runner.invoke(app, ["runs", "--help"], env=env)
    assert group.exit_code == 0
    commands = group.output.split("Commands:")[1]
    assert all(f"  {verb}  " in commands for verb in ("list", "show", "score", "rm", "compare"))
    assert "..." not in group.output.split("Commands:")[1]  # the list command's line is not cut
    listed = runner.invoke(app, ["runs", "list", "--help"], env=env)
    assert listed.exit_code == 0 and "--no-wide" not in listed.output
    assert "  --wide  " in listed.output.replace("  --wide            ", "  --wide  ")
