"""audit.html's decisions in a real headless Chromium (Debian's chromium and chromedriver, as
the serve page's tests; skipped outside CI when missing): mark a drop and a relabel, save
decisions.csv, and train with it: the dropped image is gone, the relabelled one has its new
label, and no file was touched."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import yaml
from tests.audit.conftest import tiny_config
from tests.serve.conftest import artifact_folder, chromium_driver
from typer.testing import CliRunner

from imgclf.cli import app
from imgclf.config import Config
from imgclf.data.pipeline.prepare import prepare_data

TIMEOUT = 30


def _tile(driver, path: str):
    """The first tile of the image at ``path`` (as issues.csv prints it), in view."""
    from selenium.webdriver.common.by import By

    tiles = driver.find_elements(By.CSS_SELECTOR, ".tile")
    tile = next(t for t in tiles if t.get_attribute("data-path") == path)
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", tile)
    return tile


def _reloaded_until(driver, restored, seconds: float = 10.0) -> bool:
    """Whether the page, reloaded, shows ``restored()`` within ``seconds``: the choices are
    remembered for this audit. A page's localStorage write reaches the browser process
    asynchronously, so a reload at once may read the store as it was a moment before."""
    from selenium.webdriver.support.ui import WebDriverWait

    def reloaded(_driver) -> bool:
        driver.refresh()
        return restored()

    return WebDriverWait(driver, seconds, poll_frequency=0.5).until(reloaded)


def _checked(driver, path: str) -> set[str]:
    """The decision each tile of ``path`` shows checked ('' for none)."""
    return set(
        driver.execute_script(
            "return Array.from(document.querySelectorAll('.tile')).filter("
            "t => t.dataset.path === arguments[0]).map(t => "
            "(t.querySelector('input:checked') || {value: ''}).value)",
            path,
        )
    )


def _downloaded(folder: Path) -> Path:
    deadline = time.monotonic() + TIMEOUT
    target = folder / "decisions.csv"
    while time.monotonic() < deadline:
        if target.is_file() and not list(folder.glob("*.crdownload")):
            return target
        time.sleep(0.1)
    raise AssertionError(f"no decisions.csv downloaded; the folder has {list(folder.iterdir())}")


def test_decisions_saved_from_the_page_train_without_the_dropped_image(
    planted, planted_audit, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    dropped = str(planted.root / "test/circles/exact_circle00.png")  # a leak
    relabelled = str(planted.root / "train/squares/mislabelled_circle04.png")  # a circle
    kept = str(planted.root / "train/circles/dark.png")
    before = {p: p.stat().st_mtime_ns for p in planted.root.rglob("*") if p.is_file()}
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    driver = chromium_driver(downloads)
    try:
        driver.get(Path(planted_audit.files["page"]).resolve().as_uri())
        _tile(driver, dropped).find_element(By.CSS_SELECTOR, "input[value='drop']").click()
        tile = _tile(driver, relabelled)
        select = tile.find_element(By.CSS_SELECTOR, "select")
        preselected = tile.get_attribute("data-suggested") or "squares"  # else its own label
        assert select.get_attribute("value") == preselected
        Select(select).select_by_value("circles")  # a change of class marks it relabel
        tile.find_element(By.CSS_SELECTOR, "input[value='relabel']").click()  # (or this)
        assert _checked(driver, dropped) == {"drop"}
        assert _checked(driver, relabelled) == {"relabel"}  # every tile of it, in sync
        dark = _tile(driver, kept)
        Select(dark.find_element(By.CSS_SELECTOR, "select")).select_by_value("squares")
        assert _checked(driver, kept) == {"relabel"}  # another class chosen: a relabel
        dark.find_element(By.CSS_SELECTOR, "input[value='keep']").click()
        counter = driver.find_element(By.ID, "decided").text
        assert counter == "3 decided: 1 keep, 1 drop, 1 relabel"
        shot = artifact_folder(tmp_path) / "audit_decisions.png"
        assert driver.save_screenshot(str(shot))
        driver.find_element(By.ID, "save-decisions").click()
        saved = _downloaded(downloads)
        assert _reloaded_until(driver, lambda: _checked(driver, dropped) == {"drop"})
        assert driver.find_element(By.ID, "decided").text == counter
    finally:
        driver.quit()

    with open(saved, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows == [["path", "decision", "label"], *sorted([
        [dropped, "drop", ""], [relabelled, "relabel", "circles"], [kept, "keep", ""],
    ])]  # fmt: skip

    config = tiny_config(tmp_path)
    result = CliRunner().invoke(app, [
        "train", str(planted.root), "--config", str(config), "--decisions", str(saved),
        "--quiet", "--project", str(tmp_path / "runs"), "--name", "decided",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == f"decisions: 1 dropped, 1 relabelled ({saved})"
    run = tmp_path / "runs" / "decided"
    assert json.loads((run / "data_report.json").read_text())["n_images"] == 47  # of 48 usable
    settings = yaml.safe_load((run / "config.yaml").read_text())
    settings.pop("imgclf_version")
    prepared = prepare_data(planted.root, Config(**settings), decode=False, progress=False)
    names = [str(p) for p in prepared.source.paths]
    assert dropped not in names
    assert prepared.classes[prepared.source.labels[names.index(relabelled)]] == "circles"
    after = {p: p.stat().st_mtime_ns for p in planted.root.rglob("*") if p.is_file()}
    assert after == before  # no file moved, removed or written
