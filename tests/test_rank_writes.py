"""Only the main process writes: a non-main rank (rank=1, simulated) trains the same way and
leaves no file behind, no run folder, no checkpoint, no status, no report."""

from __future__ import annotations

import os
from pathlib import Path

from imgclf import api
from imgclf.runtime import Runtime


def _files(root: Path) -> dict[str, float]:
    return {str(path): path.stat().st_mtime_ns for path in root.rglob("*")}


def test_a_non_main_rank_writes_nothing(shapes: Path, tmp_path: Path) -> None:
    main = api.train(shapes, "tiny.yaml", quiet=True, name="main", runtime=Runtime(rank=0))
    cache = Path(os.environ["IMGCLF_CACHE_DIR"])
    before = {**_files(tmp_path), **_files(cache)}  # the decoded images are cached by now

    other = api.train(shapes, "tiny.yaml", name="other", runtime=Runtime(rank=1, world_size=2))

    assert {**_files(tmp_path), **_files(cache)} == before
    assert other.path is None and other.report is None
    assert len(other.history) == len(main.history) == 3
    assert other.metrics["epochs_run"] == 3 and "test" not in other.metrics
    assert other.model.classes == main.model.classes


def test_a_non_main_rank_keeps_its_best_weights_in_memory(shapes: Path) -> None:
    """Without a checkpoint folder the best epoch's weights still come back at the end."""
    main = api.train(shapes, "tiny.yaml", quiet=True, epochs=6, name="m", runtime=Runtime())
    other = api.train(shapes, "tiny.yaml", epochs=6, runtime=Runtime(rank=1, world_size=2))
    assert other.metrics["best_epoch"] == main.metrics["best_epoch"]
    for name, value in main.model.state_dict().items():
        assert (value == other.model.state_dict()[name]).all(), name
