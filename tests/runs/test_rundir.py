"""status.json: written atomically by training, read back by ``imgclf runs list``."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from imgclf.runs.rundir import RunDir, read_status


def test_write_status_is_read_back_with_a_one_line_error(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "r")
    run.write_status(
        "failed", error="CUDA out of memory.\n  Tried to allocate 2 GiB", epoch=2, batch=7
    )
    status = read_status(run)
    assert run.status == tmp_path / "r" / "status.json"
    assert status["status"] == "failed" and (status["epoch"], status["batch"]) == (2, 7)
    assert status["error"] == "CUDA out of memory. Tried to allocate 2 GiB"
    assert datetime.fromisoformat(status["updated"]).tzinfo is not None
    assert [p.name for p in run.path.iterdir()] == ["status.json"]  # no temporary file left


def test_write_status_replaces_the_last_one(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    run.write_status("running", epoch=1, batch=3)
    run.write_status("finished")
    assert read_status(run) | {"updated": None} == {
        "status": "finished", "error": None, "epoch": None, "batch": None, "updated": None,
    }  # fmt: skip


def test_an_unknown_status_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="running, finished, failed, interrupted; received 'done'"):
        RunDir(tmp_path).write_status("done")


@pytest.mark.parametrize(
    ("files", "expected"), [((), "unfinished"), (("metrics.json",), "finished")]
)
def test_runs_without_status_json_fall_back_to_metrics(tmp_path: Path, files, expected) -> None:
    for name in files:
        (tmp_path / name).write_text("{}", encoding="utf-8")
    status = read_status(RunDir(tmp_path))
    assert status == {
        "status": expected, "error": None, "epoch": None, "batch": None, "updated": None,
    }  # fmt: skip


def test_an_unreadable_status_json_falls_back(tmp_path: Path) -> None:
    (tmp_path / "status.json").write_text('{"status": "runn', encoding="utf-8")
    assert read_status(RunDir(tmp_path))["status"] == "unfinished"
