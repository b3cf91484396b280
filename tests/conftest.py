"""Shared fixtures: seeds, the real datasets beside the checkout, bad files, tiny folders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
SHARED_BY_PACKAGE = {"serve", "export", "audit", "distributed"}  # session fixtures in conftest


def _cores() -> list[int]:
    """The cores this process may run on (affinity, as imgclf reads it)."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto`` (make test): one worker per core this process may use, not per core of
    the host (a container's limit), nor per physical core (psutil's count on a VM)."""
    return len(_cores())


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist, each worker runs on its own core (imgclf reads the affinity and
    starts one thread): two workers of two threads each on two cores fight for them."""
    worker = getattr(config, "workerinput", None)  # xdist's, on its workers only
    cores = _cores()
    if worker and hasattr(os, "sched_setaffinity") and 1 < worker["workercount"] <= len(cores):
        os.sched_setaffinity(0, {cores[int(worker["workerid"].removeprefix("gw"))]})


def work_unit(nodeid: str) -> str:
    """What one xdist worker runs together: a package whose conftest makes session fixtures
    (a trained model, a server), or else a module (its module fixtures are made once); each
    tutorial notebook, long and alone, is a unit of its own so that they spread."""
    path = nodeid.partition("::")[0]
    parts = path.split("/")
    if path == "tests/notebooks/test_examples.py":
        return nodeid
    if len(parts) > 2 and parts[1] in SHARED_BY_PACKAGE:
        return "/".join(parts[:2])
    return path


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under xdist, the slow and real-data tests go first: long units started last would
    leave one worker running them alone at the end."""
    if hasattr(config, "workerinput"):
        items.sort(key=lambda item: not (_marked(item, "slow") or _marked(item, "realdata")))


def _marked(item: pytest.Item, name: str) -> bool:
    return item.get_closest_marker(name) is not None


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """``--dist loadscope`` with the units above (xdist's ``loadgroup`` marks do not reach
    its scheduler under pytest 9: the node id it rewrites is no longer the one it reads)."""
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class SharedFixtureScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    return SharedFixtureScheduling(config, log)


@pytest.fixture
def seed() -> int:
    return 1234


@pytest.fixture(scope="session", autouse=True)
def _scratch_in_basetemp(tmp_path_factory: pytest.TempPathFactory):
    """The processes the tests start (Chromium, torchrun, Jupyter kernels) make their scratch
    folders under pytest's temporary folder, which pytest prunes: in /tmp each run of the
    suite left dozens behind (org.chromium.Chromium.*, torchelastic_*)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TMPDIR", str(tmp_path_factory.mktemp("tmp")))
        yield


@pytest.fixture(scope="session")
def _realdata_cache(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    if hasattr(request.config, "workerinput"):  # one cache for all xdist workers (atomic writes)
        folder = tmp_path_factory.getbasetemp().parent / "realdata-cache"
        folder.mkdir(exist_ok=True)
        return folder
    return tmp_path_factory.mktemp("realdata-cache")


@pytest.fixture(autouse=True)
def _isolated_cache(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    """Keep every test's decoded-image cache out of the user's ~/.cache.

    Tests on the real datasets share one cache for the session, as a user's successive runs
    do: the same photos are decoded and embedded once, not once per test (the cache is keyed
    by content, so a test cannot see another's data). Every other test starts cold.
    """
    if "shared_datasets" in request.fixturenames:
        folder = request.getfixturevalue("_realdata_cache")
    else:
        folder = request.getfixturevalue("tmp_path_factory").mktemp("cache")
    monkeypatch.setenv("IMGCLF_CACHE_DIR", str(folder))


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    """../shared/datasets: real data that CI has beside the checkout and a user's clone does not.

    Outside CI the tests that need it skip and say why; in CI (CI=true) a missing folder fails.
    """
    if SHARED_DATASETS.is_dir():
        return SHARED_DATASETS
    message = (
        f"real datasets not found at {SHARED_DATASETS}: they live beside the checkout in CI only "
        "(see README, 'Tests')"
    )
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(message)
    pytest.skip(message)


def _png_bomb(path: Path, side: int = 20000) -> None:
    """A valid tiny PNG whose header claims side x side pixels (a decompression bomb)."""
    import io
    import struct
    import zlib

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (1, 1)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    ihdr = data.index(b"IHDR")
    data[ihdr + 4 : ihdr + 12] = struct.pack(">II", side, side)
    crc = zlib.crc32(bytes(data[ihdr : ihdr + 17])) & 0xFFFFFFFF
    data[ihdr + 17 : ihdr + 21] = struct.pack(">I", crc)
    path.write_bytes(bytes(data))


def _exif_rotated(path: Path) -> None:
    """A 20x10 JPEG, red left half and blue right half, with EXIF orientation 6 (rotate 90 CW).

    Displayed upright it is 10 wide and 20 tall with red on top.
    """
    from PIL import Image

    img = Image.new("RGB", (20, 10), (0, 0, 255))
    img.paste((255, 0, 0), (0, 0, 10, 10))
    exif = Image.Exif()
    exif[0x0112] = 6
    img.save(path, format="JPEG", quality=95, exif=exif)


@pytest.fixture
def image_corpus(tmp_path: Path) -> Path:
    """A class-folder tree with every kind of good and bad file users have.

    Good (used): RGB JPEG, PNG, upper-case .JPEG, CMYK JPEG, RGBA, LA, palette with
    transparency, 16-bit PNG, EXIF-rotated JPEG, 1x1 BMP, PNG named .jpg, non-UTF-8 file name,
    a class with one image. Bad (left out, with a reason): truncated JPEG, zero-byte file, text
    named .jpg, a bomb header, a hidden file, a .txt, a symlink loop, a self-looping link, an
    empty class folder.
    """
    import numpy as np
    from PIL import Image

    root = tmp_path / "corpus"
    cats, dogs, single = root / "cats", root / "dogs", root / "single"
    for folder in (cats, dogs, single, root / "empty_class"):
        folder.mkdir(parents=True)
    rng = np.random.default_rng(0)

    def noise(size=(24, 16)):
        return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))

    noise((64, 48)).save(cats / "good1.jpg", quality=90)
    noise().save(cats / "good2.png")
    noise().save(cats / "upper.JPEG", format="JPEG")
    noise().convert("CMYK").save(cats / "cmyk.jpg", format="JPEG")
    noise().convert("RGBA").save(cats / "rgba.png")
    noise().convert("LA").save(cats / "la.png")
    pal = noise().convert("P")
    pal.info["transparency"] = 0
    pal.save(cats / "palette.png", transparency=0)
    Image.fromarray(rng.integers(0, 65536, (16, 24), dtype=np.uint16)).save(cats / "sixteen.png")
    _exif_rotated(cats / "exif.jpg")
    Image.new("RGB", (1, 1), (10, 20, 30)).save(cats / "one.bmp")
    good = (cats / "good1.jpg").read_bytes()
    (cats / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (cats / "empty.jpg").write_bytes(b"")
    (cats / "text.jpg").write_text("this is not an image\n")
    _png_bomb(cats / "bomb.png")
    (cats / ".hidden.jpg").write_bytes(good)
    (cats / "notes.txt").write_text("notes")
    (cats / "loop").symlink_to(cats, target_is_directory=True)
    (cats / "self.jpg").symlink_to(cats / "self.jpg")
    noise().save(dogs / "dog1.jpg")
    noise().save(dogs / "png_named.jpg", format="PNG")
    noise().save(os.path.join(os.fsencode(dogs), b"caf\xe9.png"))
    noise().save(single / "only.jpg")
    return root


def make_shapes(root: Path) -> Path:
    """Two classes of 16x16 images (a bright square left or right) in ROOT/data, a tiny model
    config in ROOT/tiny.yaml beside it; returns ROOT/data."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for label, left in (("left", 0), ("right", 8)):
        (root / "data" / label).mkdir(parents=True)
        for k in range(12):
            pixels = rng.integers(0, 50, (16, 16, 3), dtype=np.uint8)
            pixels[4:12, left : left + 8] = 220
            Image.fromarray(pixels).save(root / "data" / label / f"{k}.png")
    (root / "tiny.yaml").write_text(
        "model:\n  name: custom\n  layers:\n"
        "    - {type: conv, filters: 4, padding: same}\n    - {type: maxpool, size: 4}\n"
        "    - {type: flatten}\n"
        "train: {epochs: 3, batch_size: 8, lr: 0.01}\n"
        "data: {val_split: 0.25, test_split: 0.25}\n"
    )
    return root / "data"


@pytest.fixture
def shapes(tmp_path: Path, monkeypatch) -> Path:
    """Two classes of 16x16 images (a bright square left or right) in data/, a tiny model
    config in tiny.yaml beside it, and the working directory there (CLI tests)."""
    data = make_shapes(tmp_path)
    monkeypatch.chdir(tmp_path)
    return data
