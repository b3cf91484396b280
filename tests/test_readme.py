"""Every Python example in the README runs (on a tiny folder standing in for the user's)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


SERVER = "http://127.0.0.1:8000"  # the client examples' server, started here for them


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_python_example_runs(code: str, tmp_path: Path, monkeypatch) -> None:
    rng = np.random.default_rng(0)
    photos = tmp_path / "path" / "to" / "photos"
    for cls in ("a", "b"):
        (photos / cls).mkdir(parents=True)
        for k in range(10):
            Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(
                photos / cls / f"{k}.png"
            )
    monkeypatch.chdir(tmp_path)
    if SERVER not in code:
        exec(compile(code, str(README), "exec"), {"__name__": "readme"})
        return
    # a client example: a real server on a tiny run of the same photos, on a free port
    from tests.serve.conftest import start_server, stop_server

    from imgclf import api

    run = api.train(photos, model="cnn", image_size=16, epochs=1, quiet=True,
                    project=tmp_path / "runs", name="photos")  # fmt: skip
    process, url = start_server(run.path, "--name", "photos", "--log-level", "warning")
    try:
        exec(compile(code.replace(SERVER, url), str(README), "exec"), {"__name__": "readme"})
    finally:
        stop_server(process)


def test_readme_has_python_examples() -> None:
    assert BLOCKS
