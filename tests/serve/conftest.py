"""A tiny served model that knows colours, image bytes made here, a real uvicorn server
started on a free loopback port, and a headless Chromium for the browser tests."""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from imgclf import api

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220)}


def colour_images(n_per_class: int = 40, size: int = 12, seed: int = 0):
    """Noisy solid-colour RGB images and their colour names."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for name, rgb in COLOURS.items():
        for _ in range(n_per_class):
            noise = rng.integers(-25, 26, (size, size, 3))
            images.append(np.clip(np.array(rgb) + noise, 0, 255).astype(np.uint8))
            labels.append(name)
    return np.stack(images), np.array(labels)


def encoded(colour: str, fmt: str = "PNG", size: tuple[int, int] = (40, 30)) -> bytes:
    """An image file of one colour, as bytes."""
    buffer = io.BytesIO()
    Image.new("RGB", size, COLOURS[colour]).save(buffer, fmt)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def colour_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cnn run at 16 px that tells red, green and blue apart."""
    root = tmp_path_factory.mktemp("serve")
    images, labels = colour_images()
    data = root / "colours.npz"
    np.savez(data, x=images, y=labels)
    run = api.train(
        data, model="cnn", image_size=16, epochs=6, val_split=0.25, test_split=0.3,
        quiet=True, project=root / "runs", name="colours",
    )  # fmt: skip
    return run.path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(run: Path, *args: str, env: dict[str, str] | None = None):
    """``imgclf serve RUN`` in a subprocess on a free loopback port, once /ready says so:
    (process, base URL). The caller stops it."""
    port = free_port()
    command = [sys.executable, "-m", "imgclf", "serve", str(run), "--port", str(port), *args]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, **(env or {})},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"imgclf serve exited: {process.stdout.read()}")
        try:
            if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    process.kill()
    raise AssertionError(f"imgclf serve did not become ready: {process.stdout.read()}")


def stop_server(process: subprocess.Popen) -> str:
    """SIGTERM, then the server's output once it exited."""
    process.terminate()
    try:
        output, _ = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
    return output


@pytest.fixture(scope="module")
def live_server(colour_run: Path) -> Iterator[str]:
    """A real uvicorn server on the colour run; its base URL."""
    process, url = start_server(colour_run)
    yield url
    stop_server(process)


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _browser_binaries() -> tuple[str, str]:
    """(chromium, chromedriver); skips outside CI and fails in CI when one is missing."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if browser and driver:
        return browser, driver
    message = (
        "chromium and chromedriver are needed for the browser tests: "
        "apt-get install chromium chromium-driver (.ci/run does it in CI)"
    )
    if _in_ci():
        pytest.fail(message)
    pytest.skip(message)


def chromium_driver(downloads: Path | None = None):
    """A headless Chromium driven through Debian's chromedriver (the binaries are named
    explicitly: Selenium Manager is never asked to download anything); skips or fails as
    ``_browser_binaries`` says. ``downloads``: the folder a page's downloads are saved in,
    without asking. The caller quits it."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    chromium, chromedriver = _browser_binaries()
    options = Options()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--window-size=1280,1200", "--disable-gpu"):  # fmt: skip
        options.add_argument(arg)
    if downloads is not None:
        options.add_experimental_option(
            "prefs",
            {"download.default_directory": str(downloads), "download.prompt_for_download": False},
        )
    driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    if downloads is not None:  # headless Chromium saves downloads only when told where
        driver.execute_cdp_cmd(
            "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
        )
    return driver


@pytest.fixture
def browser() -> Iterator:
    """A headless Chromium (``chromium_driver``), quit after the test."""
    driver = chromium_driver()
    try:
        yield driver
    finally:
        driver.quit()


def artifact_folder(tmp_path: Path) -> Path:
    """Where screenshots go: $IMGCLF_TEST_ARTIFACTS in CI (kept), else the test's tmp_path."""
    folder = Path(os.environ.get("IMGCLF_TEST_ARTIFACTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder
