"""A process of a distributed run killed mid-training: every process ends within moments with
one clear line, the last checkpoint is intact and the run resumes in one process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.distributed.conftest import imgclf_here

pytestmark = pytest.mark.slow


def _pid_with(mark: str, local_rank: int) -> int | None:
    """The process whose environment holds ``mark`` and LOCAL_RANK=local_rank."""
    wanted = {f"IMGCLF_TEST_MARK={mark}".encode(), f"LOCAL_RANK={local_rank}".encode()}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = set((entry / "environ").read_bytes().split(b"\0"))
        except OSError:
            continue
        if wanted <= environ:
            return int(entry.name)
    return None


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the rank's process in /proc")
def test_killing_one_rank_ends_the_run_resumably(colours: Path, tmp_path: Path) -> None:
    run = tmp_path / "runs" / "killed"
    mark = f"kill-{os.getpid()}"
    command = [
        sys.executable, "-m", "imgclf", "train", str(colours), "--model", "cnn",
        "--epochs", "5000", "--batch-size", "16", "--val-split", "0.25", "--test-split", "0",
        "--project", str(tmp_path / "runs"), "--name", "killed", "--nproc-per-node", "2",
    ]  # fmt: skip
    env = {**os.environ, "IMGCLF_CACHE_DIR": str(tmp_path / "cache"), "IMGCLF_TEST_MARK": mark}
    process = subprocess.Popen(command, env=env, text=True, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while (
            not (run / "history.csv").is_file()
            or len((run / "history.csv").read_text().splitlines()) < 3
        ):  # two epochs done: a checkpoint exists
            assert time.monotonic() < deadline and process.poll() is None, process.stdout.read()
            time.sleep(0.2)
        victim = _pid_with(mark, 1)
        assert victim is not None
        os.kill(victim, signal.SIGKILL)
        output, _ = process.communicate(timeout=120)  # ends well within the collective timeout
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode != 0
    assert "another process of this distributed run stopped" in output
    assert f"resume with: imgclf train --resume {run}" in output
    assert json.loads((run / "status.json").read_text())["status"] == "interrupted"
    assert (run / "checkpoints" / "last.pt").is_file()
    resumed = imgclf_here("train", "--resume", str(run), "--time-limit", "2s", "--quiet",
                          cwd=tmp_path)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
