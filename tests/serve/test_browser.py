"""The page at / in a real headless Chromium: model info, an upload of two real photos, the
API-key prompt, "not sure" and the heatmaps. Real data, CI only; Debian's chromium and
chromedriver (.ci/run installs them; the ``browser`` fixture is conftest's)."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest
from tests.serve.conftest import artifact_folder, start_server, stop_server

from imgclf import api

pytestmark = [pytest.mark.realdata, pytest.mark.slow]

PER_CLASS = 20  # training photos per class: enough for a 1-epoch model, a few seconds
TIMEOUT = 60


@pytest.fixture(scope="module")
def animals(shared_datasets: Path, tmp_path_factory: pytest.TempPathFactory):
    """A Lite0 head trained on PER_CLASS photos per animal (seconds: the embeddings are
    computed once), and two other photos of different classes."""
    source = shared_datasets / "animals"
    root = tmp_path_factory.mktemp("browser")
    classes = sorted(p for p in source.iterdir() if p.is_dir())
    photos = []
    for folder in classes:
        files = sorted(folder.glob("*.jpg"))
        (root / "data" / folder.name).mkdir(parents=True)
        for file in files[:PER_CLASS]:
            shutil.copy(file, root / "data" / folder.name / file.name)
        photos.append(files[-1])  # not trained on
    with pytest.MonkeyPatch.context() as patch:  # the autouse cache fixture is per test
        patch.setenv("IMGCLF_CACHE_DIR", str(root / "cache"))
        run = api.train(
            root / "data", model="efficientnet_lite0", mode="feature_extract", image_size=96,
            epochs=8, quiet=True, project=root / "runs", name="animals",
        )  # fmt: skip
    return run.path, photos[:2]


def _wait_state(driver, *states: str) -> str:
    """Wait until document.body.dataset.state is one of ``states``; returns it."""
    from selenium.webdriver.support.ui import WebDriverWait

    def state(d):
        value = d.execute_script("return document.body.dataset.state")
        return value if value in states else None

    try:
        return WebDriverWait(driver, TIMEOUT).until(state)
    except Exception as exc:
        error = driver.execute_script("return document.getElementById('error').textContent")
        now = driver.execute_script("return document.body.dataset.state")
        raise AssertionError(f"page state {now!r}, not {states}; error box: {error!r}") from exc


def _shown_classes(driver) -> list[str]:
    from selenium.webdriver.common.by import By

    return [li.text for li in driver.find_elements(By.CSS_SELECTOR, "#classes li")]


def test_page_classifies_two_real_photos(browser, animals, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    run, photos = animals
    expected = api.predict(run, [str(p) for p in photos], progress=False).labels
    process, url = start_server(run)
    try:
        classes = httpx.get(url + "/v1/model", timeout=10).json()["classes"]
        browser.get(url + "/")
        _wait_state(browser, "ready")
        assert _shown_classes(browser) == classes
        assert "%" in browser.find_element(By.ID, "metrics").text  # val/test accuracy shown
        browser.find_element(By.ID, "files").send_keys("\n".join(str(p) for p in photos))
        assert _wait_state(browser, "done", "error") == "done"
        cards = browser.find_elements(By.CSS_SELECTOR, ".result")
        assert [c.get_attribute("data-file") for c in cards] == [p.name for p in photos]
        labels = [c.find_element(By.CSS_SELECTOR, ".label").text for c in cards]
        assert labels == expected
        assert labels == [p.parent.name for p in photos]  # a cat and a dog, told apart
        assert not browser.find_element(By.ID, "error").is_displayed()
        shot = artifact_folder(tmp_path) / "browser_predict.png"
        assert browser.save_screenshot(str(shot))
        assert shot.is_file() and shot.stat().st_size > 0
    finally:
        stop_server(process)


def test_page_asks_for_the_api_key(browser, animals, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    run, _ = animals
    process, url = start_server(
        run, "--api-key-env", "IMGCLF_TEST_KEY", env={"IMGCLF_TEST_KEY": "s3cret"}
    )
    try:
        browser.get(url + "/")
        _wait_state(browser, "auth")
        key = browser.find_element(By.ID, "api-key")
        assert key.is_displayed() and key.get_attribute("type") == "password"
        assert not browser.find_element(By.ID, "files").is_displayed()
        key.send_keys("s3cret" + Keys.ENTER)
        _wait_state(browser, "ready")
        info = httpx.get(url + "/v1/model", headers={"Authorization": "Bearer s3cret"}, timeout=10)
        assert _shown_classes(browser) == info.json()["classes"]
        assert not browser.find_element(By.ID, "api-key").is_displayed()
        shot = artifact_folder(tmp_path) / "browser_api_key.png"
        assert browser.save_screenshot(str(shot))
        assert shot.is_file()
    finally:
        stop_server(process)


def test_page_says_not_sure_for_a_photo_of_something_else(
    browser, animals, shared_datasets: Path, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    run, photos = animals
    churches = shared_datasets / "imagenette2-224-subset" / "test" / "n03028079"
    church = sorted(churches.glob("*.JPEG"))[0]
    process, url = start_server(run, "--abstain", "auto")
    try:
        browser.get(url + "/")
        _wait_state(browser, "ready")
        browser.find_element(By.ID, "files").send_keys(f"{photos[0]}\n{church}")
        assert _wait_state(browser, "done", "error") == "done"
        cat, other = browser.find_elements(By.CSS_SELECTOR, ".result")
        assert cat.find_element(By.CSS_SELECTOR, ".label").text == photos[0].parent.name
        assert "unknown" not in cat.get_attribute("class").split()
        assert "unknown" in other.get_attribute("class").split()
        assert other.find_element(By.CSS_SELECTOR, ".label").text.startswith("not sure: unlike")
        shot = artifact_folder(tmp_path) / "browser_unknown.png"
        assert browser.save_screenshot(str(shot))
        assert not browser.find_elements(By.CSS_SELECTOR, "img.heatmap")
        from selenium.webdriver.support.ui import WebDriverWait

        browser.find_element(By.ID, "explain").click()  # classifies the same photos again
        maps = WebDriverWait(browser, TIMEOUT).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, ".result img.heatmap")
        )
        assert len(maps) == 2 and _wait_state(browser, "done", "error") == "done"
        for heatmap in maps:  # the overlay PNG from ?explain=true, decoded by the browser
            assert heatmap.get_attribute("src").startswith("data:image/png;base64,")
            assert browser.execute_script("return arguments[0].naturalWidth", heatmap) == 96
        assert browser.save_screenshot(str(artifact_folder(tmp_path) / "browser_heatmap.png"))
    finally:
        stop_server(process)
