"""`imgclf runs list` in a pipe (every column, nothing wrapped) and on an 80-column terminal
(columns left out, with a note, never squeezed), its CSV and its help."""

from __future__ import annotations

import csv
import io

import pytest
from typer.testing import CliRunner

from imgclf import api
from imgclf.cli import app
from imgclf.cli.runs import fit_columns, runs_csv, table_width
from imgclf.runs.ledger import append_record
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
    """The table's lines (after the heading, which a long project path may wrap on a terminal)
    and the note below it, unwrapped."""
    lines = _lines(output)
    start = next(i for i, line in enumerate(lines) if line.startswith("┏"))
    end = next(i for i, line in enumerate(lines) if line.startswith("└"))
    return lines[start : end + 1], " ".join(line.strip() for line in lines[end + 1 :])


def test_a_pipe_gets_every_column_at_natural_width(runs) -> None:
    result = runner.invoke(app, ["runs", "list", "--wide", "--project", str(runs)])
    assert result.exit_code == 0, result.output
    lines = _lines(result.output)
    assert len(lines) == 1 + 3 + 2 + 1  # heading, top rule + header + rule, 2 rows, bottom rule
    assert (
        LONG in lines[4] + lines[5] and "CUDA out of memory. Tried to allocate 2.00 GiB" in lines[4]
    )
    headers = ("name", "mode", "image size", "lr", "best epoch", "train s", "wall s", "status")
    for header in (*headers, "error"):
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
    assert note.startswith("Left out to fit 80 columns: model, data, train_seconds, wall_seconds.")
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


# ------------------------------------------------- external scores on some runs (issue 21)

DISAGREE = (
    "kaggle_public and test_accuracy disagree: a is ahead by test_accuracy, c by kaggle_public"
)


@pytest.fixture
def scored(project, record_run):
    """Four finished runs, two with a Kaggle score that ranks them the other way round from
    their test accuracy; training took 2.61 s of a 20.9433 s run."""
    for name, optimizer, accuracy in (("a", "adam", 0.9), ("b", "sgd", 0.8), ("c", "adam", 0.7),
                                      ("d", "adam", 0.6)):  # fmt: skip
        record_run(project, name, config={"train": {"optimizer": optimizer}},
                   metrics={"val": {"accuracy": accuracy}, "test": {"accuracy": accuracy}},
                   timings={"train": 2.61}, wall_seconds=20.9433)  # fmt: skip
    api.score_run("a", "kaggle_public", 0.70, project=project)
    api.score_run("c", "kaggle_public", 0.75, project=project, note="public leaderboard")
    return project


def _names(output: str) -> list[str]:
    """The first cell of each row of a table."""
    return [line.split("│")[1].strip() for line in _lines(output) if line.startswith("│")]


def _cells(output: str, name: str) -> list[str]:
    row = next(line for line in _lines(output) if line.startswith(f"│ {name} "))
    return [cell.strip() for cell in row.split("│")[1:-1]]


@pytest.mark.parametrize(
    ("args", "names"),
    [
        ([], ["d", "c", "b", "a"]),
        (["--sort", "val_accuracy", "--where", "train.optimizer=adam", "--limit", "5"],
         ["a", "c", "d"]),
        (["--sort", "kaggle_public"], ["c", "a", "d", "b"]),  # runs without the score last
    ],
)  # fmt: skip
def test_runs_without_an_external_score_list_with_an_empty_cell(scored, args, names) -> None:
    result = runner.invoke(app, ["runs", "list", "--project", str(scored), *args])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output and _names(result.output) == names
    assert _cells(result.output, "c")[-1] == "0.75" and _cells(result.output, "d")[-1] == "-"
    assert DISAGREE in result.output  # the README's warning, now that the list prints
    assert all(set(row) == {*COLUMNS, "kaggle_public"} for row in api.runs(scored))


def test_time_columns_say_what_they_hold_and_round_alike(scored) -> None:
    listed = runner.invoke(app, ["runs", "list", "--project", str(scored)])
    header = _lines(listed.output)[2]
    assert " train s " in header and " wall s " in header and " seconds " not in header
    assert _cells(listed.output, "a")[-3:-1] == ["2.6", "20.9"]
    compared = runner.invoke(app, ["runs", "compare", "a", "b", "--project", str(scored)])
    assert compared.exit_code == 0, compared.output
    assert " train s " in compared.output and " wall s " in compared.output
    assert _cells(compared.output, "a")[-2:] == ["2.6", "20.9"]
    assert "20.9433" not in compared.output
    rows = list(csv.DictReader(io.StringIO(runs_csv(api.runs(scored)))))
    assert (rows[0]["train_seconds"], rows[0]["wall_seconds"]) == ("2.6", "20.9")


def test_headers_are_words_in_one_style_in_list_and_compare(project, record_run) -> None:
    for name, batch, finetune in (("a", 16, 1), ("b", 32, 2)):
        config = {"model": {"name": "efficientnet_lite0", "mode": "finetune"},
                  "train": {"batch_size": batch, "finetune_epochs": finetune}}  # fmt: skip
        record_run(project, name, config=config, metrics={"val": {"accuracy": 0.5}})
    compared = runner.invoke(app, ["runs", "compare", "a", "b", "--project", str(project)])
    listed = runner.invoke(app, ["runs", "list", "--wide", "--project", str(project)])
    for output in (compared.output, listed.output):
        header = next(line for line in _lines(output) if line.startswith("┃"))
        cells = [cell.strip() for cell in header.split("┃")[1:-1]]
        assert "name" in cells and not any("." in c or "_" in c for c in cells), cells
    assert " batch size " in compared.output and " finetune epochs " in compared.output
    assert " batch size " in listed.output


def test_show_prints_nested_values_as_lines_and_no_dash_for_an_unknown_commit(project) -> None:
    runtime = {"device": "cpu", "precision": "32", "threads": 2, "world_size": 1}
    for name, sha in (("known", "a" * 40), ("unknown", None)):
        append_record(project, "started", name, config={"model": {"name": "cnn"}},
                      runtime=runtime, cpu="AMD EPYC", git_sha=sha)  # fmt: skip
    shown = runner.invoke(app, ["runs", "show", "unknown", "--project", str(project)])
    assert shown.exit_code == 0, shown.output
    lines = _lines(shown.output)
    at = lines.index("runtime:")
    assert lines[at : at + 6] == [
        "runtime:", "  device: cpu", "  precision: 32", "  threads: 2", "  world_size: 1",
        "cpu: AMD EPYC",
    ]  # fmt: skip
    assert "{" not in shown.output and "git" not in shown.output  # not "git -"
    known = runner.invoke(app, ["runs", "show", "known", "--project", str(project)])
    assert f", git {'a' * 40}" in known.output


def test_a_run_that_is_not_found_ends_in_one_period(project, record_run) -> None:
    for k in range(7):
        record_run(project, f"run-{k}", status="running")
    result = runner.invoke(app, ["runs", "show", "nope", "--project", str(project)])
    assert result.exit_code == 2 and "...." not in result.output
    assert (
        "No run 'nope' in " in result.output
        and "Its runs: run-2, run-3, run-4, run-5, run-6 and 2 more. See imgclf runs list"
        in (result.output.replace("\n", " "))
    )
