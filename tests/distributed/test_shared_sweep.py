"""Two `imgclf sweep` processes on one study through a storage both reach: every trial number
once, every trial in the ledger. Storages: Optuna's journal file (the default, for one machine
or a shared filesystem), SQLite, and a real PostgreSQL server on loopback when Debian's
`postgresql` and psycopg2 are installed (.ci/run installs them; elsewhere that case skips and
says so, the other two still run)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.distributed import postgres

from imgclf import api
from imgclf.sweep.study import open_storage
from imgclf.sweep.trials import trial_rows

pytestmark = pytest.mark.slow

SPACE = "train.lr: {log_float: [1.0e-4, 1.0e-2]}\ntrain.batch_size: [8, 16]\n"


@pytest.fixture
def database(request, tmp_path: Path):
    """The storage URL of the case (None: the journal file)."""
    if request.param == "journal":
        yield None
    elif request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'study.db'}"
    else:
        if postgres.binaries() is None or importlib.util.find_spec("psycopg2") is None:
            pytest.skip("PostgreSQL (Debian's postgresql) or psycopg2 is not installed: the "
                        "journal and SQLite cases ran instead")  # fmt: skip
        with postgres.postgres_server() as url:
            yield url


@pytest.mark.parametrize("database", ["journal", "sqlite", "postgresql"], indirect=True)
def test_two_sweep_processes_share_one_study(colours: Path, tmp_path: Path, database) -> None:
    (tmp_path / "space.yaml").write_text(SPACE)
    project = tmp_path / "runs"
    url = ["--storage", database] if database else []
    command = [
        sys.executable, "-m", "imgclf", "sweep", str(colours), "--space", "space.yaml",
        "--trials", "6", "--study", "shared", "--project", str(project), "--model", "cnn",
        "--epochs", "1", "--val-split", "0.25", "--test-split", "0", "--no-plots", *url,
    ]  # fmt: skip
    env = {**os.environ, "IMGCLF_CACHE_DIR": str(tmp_path / "cache")}
    workers = [
        subprocess.Popen(
            command,
            cwd=tmp_path,
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        for _ in range(2)
    ]
    outputs = [worker.communicate(timeout=600)[0] for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], outputs
    import optuna

    study = optuna.load_study(study_name="shared", storage=open_storage(url[1] if url else None,
                                                                        project))  # fmt: skip
    rows = trial_rows(study)
    numbers = [row["trial"] for row in rows]
    assert len(numbers) == len(set(numbers)) >= 6  # each number once (a last race may add one)
    assert all(row["state"] in ("complete", "pruned") for row in rows), rows
    ledger = {row["name"] for row in api.runs(project, where={"study": "shared"})}
    assert {row["run"] for row in rows} <= ledger
    assert all(worker_output.count("trial") for worker_output in outputs)  # both worked
