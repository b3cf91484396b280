"""inspect and the decode cache on the real datasets in ../shared/datasets (CI only)."""

from __future__ import annotations

from pathlib import Path

import pytest

from imgclf.api import inspect, load_data

pytestmark = pytest.mark.realdata


def test_inspect_animals(shared_datasets: Path, tmp_path: Path) -> None:
    report = inspect(shared_datasets / "animals", out=tmp_path, test_split=0.2, progress=False)
    assert report.classes == ["cats", "dogs", "panda"]
    assert report.n_images == 1200 and not report.problems
    assert report.counts["test"] == {"cats": 80, "dogs": 80, "panda": 80}
    assert report.imbalance_ratio == 1.0
    assert report.modes.get("L", 0) >= 1  # the set keeps a few grayscale JPEGs on purpose
    assert report.sizes["width"]["max"] > 500
    assert (tmp_path / "samples.png").is_file()


def test_inspect_imagenette_split_folders(shared_datasets: Path) -> None:
    report = inspect(shared_datasets / "imagenette2-224-subset", progress=False)
    assert len(report.classes) == 10
    assert sum(report.counts["test"].values()) == 300
    assert sum(report.counts["train"].values()) + sum(report.counts["val"].values()) == 600
    assert report.modes["L"] == 17
    assert report.sizes["most_common"] == {"224x224": 900}


def test_inspect_mnist_from_the_data_dir_env(shared_datasets: Path, monkeypatch) -> None:
    monkeypatch.setenv("IMGCLF_DATA_DIR", str(shared_datasets))
    report = inspect("mnist", progress=False, grid=False)
    assert report.classes == [str(d) for d in range(10)]
    assert sum(report.counts["test"].values()) == 10000
    assert sum(report.counts["train"].values()) == 48000
    assert sum(report.counts["val"].values()) == 12000


def test_animals_decode_once_then_reuse(shared_datasets: Path) -> None:
    first = load_data(shared_datasets / "animals", image_size=48, test_split=0.2, progress=False)
    assert first.cache.images.shape == (1200, 48, 48, 3) and first.cache.valid.all()
    again = load_data(shared_datasets / "animals", image_size=48, test_split=0.2, progress=False)
    assert again.cache.reused and again.cache.path == first.cache.path
    assert (again.splits.test == first.splits.test).all()


def test_inspect_cifar10_jpg_folders(shared_datasets: Path) -> None:
    report = inspect(shared_datasets / "cifar10-jpg", progress=False, grid=False)
    assert report.n_images == 60000 and not report.problems
    assert report.counts["test"]["cat"] == 1000
    assert report.sizes["most_common"] == {"32x32": 60000}
