"""`imgclf predict --nproc-per-node 2`: each rank predicts a share, rank 0 writes one CSV in
the inputs' order, byte for byte the one-process CSV (broken files skipped and said once)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from tests.distributed.conftest import imgclf, imgclf_here, train
from tests.serve.conftest import COLOURS

pytestmark = pytest.mark.slow


def test_sharded_prediction_writes_the_one_process_csv(colours: Path, tmp_path: Path) -> None:
    run = train(colours, tmp_path, "model", "--model", "cnn", "--epochs", "2")
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(23):
        colour = list(COLOURS.values())[i % 3]
        Image.new("RGB", (20 + i, 18), colour).save(photos / f"{i:02d}.png")
    (photos / "05b-broken.png").write_bytes(b"not a png")
    (photos / "notes.txt").write_text("not an image")
    outputs = {}
    for procs in (1, 2):
        out = tmp_path / f"{procs}.csv"
        command = ("predict", str(run), str(photos), "--output", str(out))
        if procs > 1:
            result = imgclf(*command, "--nproc-per-node", str(procs), cwd=tmp_path)
        else:  # in this process: the one-process CSV
            result = imgclf_here(*command, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        outputs[procs] = (out.read_bytes(), result.stdout + result.stderr)
    assert outputs[1][0] == outputs[2][0]
    assert outputs[2][0].decode().count("\n") == 24  # the header and the 23 good images
    assert outputs[2][1].count("05b-broken.png") == 1  # the skip is said once
