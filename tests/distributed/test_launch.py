"""Launching through torchrun: the clear one-line errors (a port in use, a missing endpoint,
bad numbers, configs that differ between processes)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
from tests.distributed.conftest import imgclf

from imgclf.api import without_launch_options


def test_a_port_in_use_is_one_clear_error(colours: Path, tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = imgclf("train", str(colours), "--model", "cnn", "--nproc-per-node", "2",
                        "--rdzv-endpoint", f"127.0.0.1:{port}", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 2
    assert f"Port {port} on 127.0.0.1 is in use" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--nnodes", "2"], "--nnodes above 1 needs --rdzv-endpoint"),
        (["--node-rank", "3"], "--node-rank must be in 0..0"),
        (["--nproc-per-node", "0"], "must be at least 1"),
        (["--rdzv-endpoint", "nohost"], "HOST:PORT"),
    ],
)
def test_bad_launch_options(colours: Path, tmp_path: Path, args, says) -> None:
    launch = [] if "--nproc-per-node" in args else ["--nproc-per-node", "2"]
    result = imgclf("train", str(colours), "--model", "cnn", *launch, *args, cwd=tmp_path)
    assert result.returncode == 2 and says in result.stderr, result.stderr


@pytest.mark.slow
def test_configs_that_differ_between_processes_are_refused(colours: Path, tmp_path: Path):
    """Each rank trains with its own seed, as two nodes started differently would."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
         "--master-addr", "127.0.0.1", "--master-port", str(port),
         "-m", "tests.distributed.differing", str(colours), str(tmp_path / "runs")],
        capture_output=True, text=True, timeout=300, cwd=Path(__file__).parents[2],
    )  # fmt: skip
    assert result.returncode != 0
    assert "differs between processes: ranks [1] do not match rank 0" in result.stderr
    assert not (tmp_path / "runs").exists()  # refused before any folder was made


def test_launch_options_are_taken_out_of_the_command() -> None:
    argv = ["d", "--nproc-per-node", "2", "--epochs=3", "--nnodes=1", "--rdzv-endpoint", "h:1"]
    assert without_launch_options(argv) == ["d", "--epochs=3"]
