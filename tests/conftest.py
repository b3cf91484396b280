"""Shared fixtures: seeds and the real datasets beside the checkout."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


@pytest.fixture
def seed() -> int:
    return 1234


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Keep every test's decoded-image cache out of the user's ~/.cache."""
    monkeypatch.setenv("IMGCLF_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


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
