"""Output wrapping: one-line messages stay one line in pipes, logs and CI whatever the path
length; on a terminal they wrap at word boundaries. Run as a user runs it, in a subprocess."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

LONG = "a_folder_name_long_enough_to_push_any_message_past_eighty_columns"


def _env(**changes: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "FORCE_COLOR")}
    return {**env, **changes}


def _imgclf(*args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "imgclf", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
        env=_env(**env),
    )


@pytest.fixture
def long_missing_path(tmp_path: Path) -> Path:
    folder = tmp_path.joinpath(*[LONG] * 3)
    folder.mkdir(parents=True)
    return folder / "nowhere"


@pytest.mark.parametrize("columns", [None, "80", "40"])
def test_error_is_one_line_in_a_pipe(long_missing_path: Path, columns: str | None) -> None:
    env = {"COLUMNS": columns} if columns else {}
    result = _imgclf("inspect", str(long_missing_path), **env)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"Error: {long_missing_path} does not exist")
    assert "Traceback" not in result.stderr + result.stdout


def test_error_markup_characters_are_printed_as_they_are(tmp_path: Path) -> None:
    missing = tmp_path / "[bold]x[/]"
    result = _imgclf("inspect", str(missing))
    assert f"Error: {missing} does not exist" in result.stderr


def test_help_lines_are_never_wrapped_or_cut_in_a_pipe() -> None:
    result = _imgclf("train", "--help", COLUMNS="80")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    epochs = next(line for line in lines if line.lstrip().startswith("--epochs"))
    assert epochs.rstrip().endswith("[default: 20]")  # help text and default on one line
    assert any("--embedding-cache / --no-embedding-cache" in line for line in lines)
    assert "…" not in result.stdout and "<bool>" not in result.stdout


def test_top_level_help_lists_whole_command_descriptions() -> None:
    result = _imgclf("--help")
    assert "list every problem before training." in result.stdout  # not cut with '...'
    assert "<bool>" not in result.stdout
    assert "--debug / --no-debug" not in result.stdout  # one flag, not a pair


def _on_a_terminal(args: list[str], columns: int) -> str:
    """Run imgclf with stdout and stderr on a pseudo-terminal; return what it printed."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "imgclf", *args],
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
        env=_env(COLUMNS=str(columns), TERM="dumb"),
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    process.wait()
    os.close(leader)
    return b"".join(chunks).decode().replace("\r\n", "\n")


def test_on_a_terminal_errors_wrap_at_word_boundaries(tmp_path: Path) -> None:
    output = _on_a_terminal(["inspect", str(tmp_path / "nowhere")], 100)
    lines = [line.rstrip() for line in output.splitlines() if line.strip()]
    assert len(lines) > 1 and all(len(line) <= 100 for line in lines), lines
    words = " ".join(lines).split()
    assert "does" in words and "not" in words and "exist" in words  # no word split in two


def test_on_a_terminal_help_wraps_at_the_terminal_width() -> None:
    output = _on_a_terminal(["train", "--help"], 70)
    lines = output.splitlines()
    assert max(len(line) for line in lines) <= 70
    assert "--no-embedding-cache" in output


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("evaluate", "Data to evaluate on. [default: the run's own data]"),
        ("inspect", "Where to write inspect.json and samples.png. [default: runs/inspect/NAME]"),
        ("train", "--data-dir PATH"),
        ("train", "else ~/.cache/imgclf/datasets"),
        ("train", "Images per training batch. [default: 32]"),
        ("train", "--path-column"),
    ],
)
def test_help_shows_defaults_without_stray_spaces(command: str, expected: str) -> None:
    from typer.testing import CliRunner

    from imgclf.cli import app

    result = CliRunner().invoke(app, [command, "--help"], terminal_width=1000)
    assert expected in " ".join(result.output.split()).replace("<path>", "PATH")
