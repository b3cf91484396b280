"""The audit tests' planted data, audited once per session at 64 px (one embedding pass of the
offline Lite0 over 48 small images); the CLI tests reuse its cache, so they embed nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.audit.planted import Planted, make_planted

from imgclf import api

SIZE = 64  # the audit's image size in these tests: small, and Lite0 still runs on it


@pytest.fixture(scope="session")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Planted:
    return make_planted(tmp_path_factory.mktemp("planted") / "data")


@pytest.fixture(scope="session")
def audit_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("audit-cache")


@pytest.fixture(scope="session")
def planted_audit(planted: Planted, audit_cache: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("audit-out") / "planted"
    return api.audit(planted.root, out=out, image_size=SIZE, cache_dir=audit_cache, progress=False)


def relative(planted: Planted, path: str) -> str:
    """A printed path relative to the planted root, with forward slashes."""
    return Path(path).relative_to(planted.root).as_posix()


TINY_MODEL = (
    "model:\n  name: custom\n  layers:\n"
    "    - {type: conv, filters: 4, padding: same}\n    - {type: maxpool, size: 4}\n"
    "    - {type: flatten}\n"
    "train: {epochs: 1, batch_size: 8, lr: 0.01}\n"
    "data: {image_size: 16}\n"
)


def tiny_config(folder: Path) -> Path:
    """A one-epoch model of a few hundred weights at 16 px (training on the planted data:
    a second or two), as ``folder/tiny.yaml``."""
    path = folder / "tiny.yaml"
    path.write_text(TINY_MODEL, encoding="utf-8")
    return path


def noise_folder(root: Path, classes: tuple[str, ...], per_class: int = 3, side: int = 16) -> Path:
    """Class folders of random-noise PNGs under ``root`` (made), seeded; returns ``root``."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for name in classes:
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root
