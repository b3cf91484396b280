"""The image-set identity: the scan, image, fingerprint and embeddings keys it now builds are
byte for byte the ones each cache built on its own before (caches on disk stay valid)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from imgclf.data.pipeline import cache, scan
from imgclf.data.pipeline.fingerprint import data_fingerprint
from imgclf.data.pipeline.splits import Splits
from imgclf.data.source import DataSource
from imgclf.identity import image_set_digest, stamp, stat_file, stat_files
from imgclf.models.features import embeddings

_MTIME_NS = 1_700_000_000_000_000_000
# Digests the code gave before the identity was shared (computed on this example then).
_BEFORE = {
    "scan": "d5d2a56c7912c7619a606ccc41ab6dcd",
    "cache_files": "4de3cbb13ed89c530bcafe066e3a8316",
    "cache_array": "2aea0f8e01332ee20619436c0522461b",
    "embeddings_array": "6e075045d1935446dde26aab",
    "fingerprint_files": "f70ac5d0e792f83fc651eaee92c9e52f",
    "fingerprint_array": "0317f364cb552b1174018805652a994f",
}


@pytest.fixture
def example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[DataSource, DataSource]:
    """Two files with fixed sizes and mtimes (relative paths) and a missing one; a tiny array."""
    monkeypatch.chdir(tmp_path)
    for name, data in [("a.png", b"x" * 10), ("b.png", b"y" * 7)]:
        Path(name).write_bytes(data)
        os.utime(name, ns=(_MTIME_NS, _MTIME_NS))
    paths = [Path("a.png"), Path("b.png"), Path("gone.png")]
    files = DataSource("t", ["a", "b"], np.array([0, 1, 1]), paths=paths)
    images = np.arange(24, dtype=np.uint8).reshape(2, 3, 4, 1)
    array = DataSource("arr", ["a", "b"], np.array([0, 1]), images=images)
    return files, array


def test_every_cache_key_is_the_one_the_old_code_gave(example) -> None:
    files, array = example
    stats = [scan._stat(st) for st in stat_files(files.paths)]
    assert scan._scan_key(files.paths, stats) == _BEFORE["scan"]
    assert cache._cache_key(files, (8, 8), "resize", "rgb") == _BEFORE["cache_files"]
    assert cache._cache_key(array, (8, 8), "resize", "rgb") == _BEFORE["cache_array"]
    assert embeddings._array_digest(array.images) == _BEFORE["embeddings_array"]
    splits = Splits(np.array([0, 1]), np.array([2]), np.array([], dtype=np.int64))
    assert data_fingerprint(files, splits) == _BEFORE["fingerprint_files"]
    splits = Splits(np.array([0]), np.array([1]), np.array([], dtype=np.int64))
    assert data_fingerprint(array, splits) == _BEFORE["fingerprint_array"]


def test_a_file_stamp_is_its_size_and_mtime_or_the_error(example) -> None:
    assert stamp(stat_file("a.png")) == f"10:{_MTIME_NS}"
    assert stamp(stat_file("a.png"), mtime=False) == "10"
    assert stamp(stat_file("gone.png")) == "error:2"


def test_a_run_stats_each_file_once_for_the_scan_the_image_cache_and_the_fingerprint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PIL import Image

    import imgclf.identity
    from imgclf.config import Config
    from imgclf.data.pipeline.prepare import prepare_data

    for label in ("a", "b"):
        (tmp_path / "d" / label).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (8, 8), (i, 0, 0)).save(tmp_path / "d" / label / f"{i}.png")
    stated: list[Path] = []
    monkeypatch.setattr(imgclf.identity, "stat_file", lambda p: stated.append(p) or stat_file(p))
    config = Config(data={"cache_dir": tmp_path / "cache", "image_size": 8, "val_split": 0.34})
    prepared = prepare_data(tmp_path / "d", config, progress=False)
    data_fingerprint(prepared.source, prepared.splits, prepared.stats)
    assert stated == prepared.source.paths and len(stated) == 6


def test_the_digest_changes_with_any_file_stamp_or_pixel(example) -> None:
    files, array = example
    before = image_set_digest(b"k", files=[("a.png", "1:2")]).hexdigest()
    assert image_set_digest(b"k", files=[("a.png", "1:3")]).hexdigest() != before
    changed = array.images.copy()
    changed[0, 0, 0, 0] += 1
    assert (
        image_set_digest(images=changed).hexdigest()
        != image_set_digest(images=array.images).hexdigest()
    )
