"""Decode once: the cache is built once, reused unchanged, rebuilt when an input changes."""

from __future__ import annotations

import os
from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imgclf.data.formats.folder import read_folder
from imgclf.data.pipeline import cache as cache_module
from imgclf.data.pipeline.cache import build_image_cache
from imgclf.data.pipeline.decode import decode_file
from imgclf.data.pipeline.scan import scan_source
from imgclf.data.source import DataSource
from imgclf.errors import DataError


def _folder(root: Path, per_class: int, size=(12, 10)) -> Path:
    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        for k in range(per_class):
            pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / cls / f"{k:03d}.png")
    return root


def _forbid_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args, **kwargs):
        raise AssertionError("decoded again although the cache should be reused")

    monkeypatch.setattr(cache_module, "decode_file", fail)


def test_second_build_reuses_without_decoding(tmp_path, monkeypatch) -> None:
    source = read_folder(_folder(tmp_path / "d", 4))
    first = build_image_cache(source, (8, 8), progress=False)
    assert not first.reused and first.valid.all()
    expected = np.stack([decode_file(p, (8, 8), "resize", "rgb") for p in source.paths])
    np.testing.assert_array_equal(first.images, expected)
    _forbid_decoding(monkeypatch)
    second = build_image_cache(source, (8, 8), progress=False)
    assert second.reused and second.path == first.path
    np.testing.assert_array_equal(second.images, expected)


def test_changed_file_or_setting_rebuilds(tmp_path) -> None:
    source = read_folder(_folder(tmp_path / "d", 3))
    base = build_image_cache(source, (8, 8), progress=False)
    assert build_image_cache(source, (8, 8), fit="letterbox", progress=False).path != base.path
    assert build_image_cache(source, (9, 8), progress=False).path != base.path
    assert (
        build_image_cache(source, (8, 8), color_mode="grayscale", progress=False).path != base.path
    )
    Image.new("RGB", (12, 10), (1, 2, 3)).save(source.paths[0])
    os.utime(source.paths[0], ns=(1, 1))
    rebuilt = build_image_cache(source, (8, 8), progress=False)
    assert rebuilt.path != base.path and not rebuilt.reused
    assert tuple(rebuilt.images[0, 0, 0]) == (1, 2, 3)


def test_process_pool_fills_every_row_and_marks_bad_ones(tmp_path) -> None:
    source = read_folder(_folder(tmp_path / "d", 40))  # 80 files: above the pool threshold
    source.paths[5].write_bytes(b"broken")
    built = build_image_cache(source, (6, 6), workers=2, progress=False)
    assert built.images.shape == (80, 6, 6, 3)
    assert not built.valid[5] and built.valid.sum() == 79
    assert "not an image" in built.reasons[5]
    np.testing.assert_array_equal(
        built.images[70], decode_file(source.paths[70], (6, 6), "resize", "rgb")
    )


def test_array_source_at_native_size_is_used_as_is() -> None:
    images = np.zeros((3, 5, 5, 1), dtype=np.uint8)
    source = DataSource("arr", ["x"], np.zeros(3), images=images)
    built = build_image_cache(source, (5, 5), color_mode="grayscale", progress=False)
    assert built.images is images and built.path is None


def test_array_source_is_fitted_once_into_the_cache(monkeypatch) -> None:
    images = np.full((2, 4, 4, 1), 200, dtype=np.uint8)
    source = DataSource("arr", ["x"], np.zeros(2), images=images)
    built = build_image_cache(source, (8, 8), color_mode="rgb", progress=False)
    assert built.images.shape == (2, 8, 8, 3) and (np.asarray(built.images) == 200).all()
    monkeypatch.setattr(cache_module, "fit_array", lambda *a: pytest.fail("refitted"))
    assert build_image_cache(source, (8, 8), color_mode="rgb", progress=False).reused


def test_not_enough_disk_is_a_clear_error(tmp_path, monkeypatch) -> None:
    source = read_folder(_folder(tmp_path / "d", 2))
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(cache_module.shutil, "disk_usage", lambda p: usage(10, 10, 10))
    with pytest.raises(DataError, match="cache_dir"):
        build_image_cache(source, (64, 64), progress=False)


def test_bad_settings_are_rejected(tmp_path) -> None:
    source = read_folder(_folder(tmp_path / "d", 1))
    with pytest.raises(DataError, match="fit must be one of"):
        build_image_cache(source, (8, 8), fit="stretch", progress=False)


def test_scan_is_cached_and_redone_for_changed_files(tmp_path, monkeypatch) -> None:
    source = read_folder(_folder(tmp_path / "d", 2))
    first = scan_source(source, progress=False)
    assert all(r.ok for r in first)
    from imgclf.data.pipeline import scan as scan_module

    monkeypatch.setattr(scan_module, "probe_file", lambda p: pytest.fail("scanned again"))
    assert scan_source(source, progress=False) == first
    monkeypatch.undo()
    source.paths[1].write_bytes(b"")
    again = scan_source(source, progress=False)
    assert again[0] == first[0] and "empty" in again[1].reason
