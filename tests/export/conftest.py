"""The export tests' tiny run, trained once for the session (test_onnx, test_onnx_int8)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tests.train.conftest import make_blocks

from imgclf import api


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small cnn run on 8x8 blocks at 16 px with 54 test and 38 val images."""
    root = tmp_path_factory.mktemp("onnx")
    images, labels = make_blocks(n_per_class=60)
    data = root / "blocks.npz"
    np.savez(data, x=images, y=labels)
    run = api.train(
        data, model="cnn", image_size=16, epochs=2, val_split=0.3, test_split=0.3,
        quiet=True, project=root / "runs", name="tiny",
    )  # fmt: skip
    return run.path
