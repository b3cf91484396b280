"""The suite's own entry (pytest with this project's settings) run as a fresh clone's
`make test` runs it: from a folder with a long path, output to a pipe, COLUMNS unset. Tests
that print paths broke this way once (a path long enough made rich wrap the error line)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PATH_PRINTING_TESTS = [
    "tests/data/test_bad_input.py::test_missing_path_is_one_clear_line_with_exit_code_2",
    "tests/test_terminal.py::test_error_is_one_line_in_a_pipe",
]


def test_path_printing_tests_pass_from_a_long_folder_through_a_pipe(tmp_path: Path) -> None:
    deep = tmp_path.joinpath(*["a-checkout-folder-with-a-rather-long-name"] * 4)
    deep.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "PYTEST_ADDOPTS")}
    result = subprocess.run(
        [
            sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
            "--rootdir", str(ROOT), "-c", str(ROOT / "pyproject.toml"),
            "--basetemp", str(deep / "tmp"),
            *(str(ROOT / test) for test in PATH_PRINTING_TESTS),
        ],
        cwd=deep, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert " passed" in result.stdout
