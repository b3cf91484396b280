"""/docs in a real headless Chromium: Swagger UI renders the OpenAPI 3.1 that FastAPI writes
(every operation listed, no "Unable to render" error), from this server's files only."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.serve.conftest import artifact_folder

pytestmark = pytest.mark.slow

TIMEOUT = 60
RENDER_ERROR = "Unable to render"


def _rendered(driver) -> str:
    """Wait until Swagger UI shows operations or its render error; the page's text."""
    from selenium.webdriver.support.ui import WebDriverWait

    def done(d):
        text = d.find_element("tag name", "body").text
        has_ops = d.execute_script("return document.querySelectorAll('.opblock').length") > 0
        return text if has_ops or RENDER_ERROR in text else None

    return WebDriverWait(driver, TIMEOUT).until(done)


def _operations(driver) -> set[tuple[str, str]]:
    """(METHOD, path) of every operation the page lists."""
    rows = driver.execute_script(
        "return [...document.querySelectorAll('.opblock-summary')].map(s => ["
        "s.querySelector('.opblock-summary-method').textContent.trim(),"
        "s.querySelector('.opblock-summary-path').dataset.path])"
    )
    return {(method, path) for method, path in rows}


def test_docs_list_the_operations(browser, live_server: str, tmp_path: Path) -> None:
    browser.get(f"{live_server}/docs")
    text = _rendered(browser)
    browser.save_screenshot(str(artifact_folder(tmp_path) / "docs_page.png"))
    assert RENDER_ERROR not in text, text[:300]
    operations = _operations(browser)
    assert {("POST", "/v1/predict"), ("POST", "/v2/models/{name}/infer"),
            ("GET", "/v1/model"), ("GET", "/health")} <= operations  # fmt: skip
    loaded = browser.execute_script(
        "return performance.getEntriesByType('resource').map(r => r.name)"
    )
    assert loaded and all(url.startswith(live_server) for url in loaded), loaded  # offline
