"""`imgclf doctor ddp` runs the equivalence check on this machine and says how far apart the
runs ended; bad arguments are one line."""

from __future__ import annotations

import tempfile

import pytest
from typer.testing import CliRunner

from imgclf.cli import app


@pytest.mark.slow
def test_doctor_ddp_finds_one_and_two_processes_alike(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # its runs' folder, kept to look at
    result = CliRunner().invoke(app, ["doctor", "ddp"])
    assert result.exit_code == 0, result.output
    assert "the same within 1e-4" in result.output
    assert result.output.count("\n") >= 4  # the header, two epochs, the verdict


def test_doctor_ddp_needs_two_processes() -> None:
    result = CliRunner().invoke(app, ["doctor", "ddp", "--nproc-per-node", "1"])
    assert result.exit_code == 2 and "2 or more" in result.output
