"""report.html: self-contained, escaped, complete, written atomically."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from imgclf.evaluate import (
    evaluate_predictions,
    plot_confusion_matrix,
    plot_learning_curves,
    render_report,
    write_report,
)

EVIL = "<script>alert(1)</script>"
CLASSES = ["cat", EVIL]
HISTORY = [
    {"epoch": 1, "loss": 0.9, "accuracy": 0.6, "val_loss": 0.8, "val_accuracy": 0.65, "lr": 1e-3},
    {"epoch": 2, "loss": 0.5, "accuracy": 0.8, "val_loss": 0.6, "val_accuracy": 0.75, "lr": 1e-4},
]
DATA_REPORT = {
    "source": "photos",
    "n_images": 8,
    "classes": CLASSES,
    "counts": {"train": {"cat": 3, EVIL: 3}, "test": {"cat": 1, EVIL: 1}},
    "imbalance_ratio": 1.0,
    "sizes": {
        "width": {"min": 10, "median": 24.0, "max": 64},
        "height": {"min": 10, "median": 16.0, "max": 48},
        "most_common": {"24x16": 6},
        "smallest_side_under_32": 8,
    },
    "modes": {"RGB": 7, "L": 1},
    "formats": {"JPEG": 6, "PNG": 2},
    "problems": [{"path": "photos/cat/broken&1.jpg", "reason": "truncated image"}],
    "duplicates": [
        {
            "items": [
                {"path": "photos/cat/a.jpg", "label": "cat", "split": "train"},
                {"path": "photos/cat/b.jpg", "label": "cat", "split": "test"},
            ],
            "conflicting_labels": False,
            "across_splits": True,
        }
    ],
    "warnings": ["1 file(s) whose extension does not match the content: x.jpg (PNG)"],
    "files": {},
}


class _TagChecker(HTMLParser):
    """Fails on a closing tag that does not match the open one; records what is left open."""

    VOID = {"meta", "br", "img", "hr", "input", "link"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs) -> None:
        self.tags.append(tag)
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag) -> None:
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes <{self.stack[-1:]}>"
        self.stack.pop()


@pytest.fixture(scope="module")
def report_inputs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp_path = tmp_path_factory.mktemp("plots")
    probs = np.array([[0.9, 0.1], [0.3, 0.7], [0.6, 0.4], [0.2, 0.8]])
    evaluation = evaluate_predictions(np.array([0, 1, 1, 1]), probs, CLASSES, "test")
    plots = {
        "learning curves": plot_learning_curves(HISTORY, tmp_path / "plots" / "curves.png"),
        "confusion matrix": plot_confusion_matrix(
            evaluation.confusion, CLASSES, tmp_path / "plots" / "cm.png", normalize=False
        ),
    }
    return {
        "title": "imgclf run <demo>",
        "config": {"data": {"source": "photos", "image_size": [32, 32]}, "seed": 0},
        "data_report": DATA_REPORT,
        "history": HISTORY,
        "evaluations": {"test": evaluation.to_dict()},
        "plots": plots,
        "timings": {"data": 0.4, "train": 125.0},
        "notes": ["best epoch 2 of 2"],
    }


def test_report_is_valid_self_contained_html(tmp_path: Path, report_inputs: dict) -> None:
    path = write_report(tmp_path / "run" / "report.html", **report_inputs)
    page = path.read_text(encoding="utf-8")
    checker = _TagChecker()
    checker.feed(page)
    checker.close()
    assert checker.stack == []
    assert page.startswith("<!DOCTYPE html>")
    assert "script" not in checker.tags
    links = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert links and all(link.startswith(("data:", "#")) for link in links)
    assert page.count("data:image/png;base64,") == 2


def test_report_escapes_user_strings(tmp_path: Path, report_inputs: dict) -> None:
    page = write_report(tmp_path / "report.html", **report_inputs).read_text(encoding="utf-8")
    assert EVIL not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "imgclf run &lt;demo&gt;" in page
    assert "photos/cat/broken&amp;1.jpg" in page


def test_report_shows_metrics_data_config_and_timings(tmp_path: Path, report_inputs: dict) -> None:
    page = write_report(tmp_path / "report.html", **report_inputs).read_text(encoding="utf-8")
    evaluation = report_inputs["evaluations"]["test"]
    assert f"{evaluation['accuracy']:.4f}" in page
    assert f"{evaluation['report']['macro avg']['f1-score']:.4f}" in page
    assert "macro avg" in page and "weighted avg" in page
    assert "Most confused" in page
    assert "truncated image" in page and "Left-out files (1)" in page
    assert "across splits (leakage)" in page
    assert "extension does not match" in page
    assert "image_size:" in page
    assert "2m05s" in page and "0.4s" in page  # one duration format
    assert "best epoch 2 of 2" in page


def test_report_tolerates_missing_pieces(tmp_path: Path) -> None:
    path = write_report(
        tmp_path / "report.html",
        title="bare",
        config={},
        data_report={"source": "somewhere"},
        history=[],
        evaluations={"val": {"accuracy": None}},
        plots={"samples": tmp_path / "missing.png"},
        timings={},
    )
    page = path.read_text(encoding="utf-8")
    assert "somewhere" in page
    assert "not found" in page
    write_report(
        tmp_path / "none.html",
        title="none",
        config={},
        data_report=None,
        history=[],
        evaluations={},
        plots={},
        timings={},
        notes=None,
    )


def test_report_write_is_atomic(tmp_path: Path, report_inputs: dict) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.html").write_text("old")
    write_report(out / "report.html", **report_inputs)
    assert [p.name for p in out.iterdir()] == ["report.html"]
    assert (out / "report.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.04, "0.0s"),
        (0.4, "0.4s"),
        (9.44, "9.4s"),
        (59.96, "1m00s"),
        (159.0, "2m39s"),
        (3599.6, "1h00m"),
        (3720.0, "1h02m"),
        (float("nan"), "—"),
        (None, "—"),
    ],
)
def test_durations_have_one_format(seconds, text: str) -> None:
    from imgclf.evaluate.html_parts import duration

    assert duration(seconds) == text


RUN_TIMINGS = {"data": 9.44, "embed": 20.0, "train": 159.0, "evaluate": 1.5, "report": 3.0}


def _header(page: str) -> str:
    return page[page.index("<header>") : page.index("</header>")]


def test_time_card_shows_every_part_and_the_total(report_inputs: dict) -> None:
    timings = {**RUN_TIMINGS, "total": sum(RUN_TIMINGS.values())}  # 192.94 s
    page = render_report(**{**report_inputs, "timings": timings})
    card = _header(page).split('<div class="split">time</div>')[1]
    parts = [
        "data (scan + decode) 9.4s",
        "embedding 20.0s",
        "training 2m39s",
        "evaluation (val/test) 1.5s",
        "bundle, plots and report 3.0s",
    ]
    positions = [card.index(part) for part in parts]
    assert positions == sorted(positions)  # in the order the run goes through them
    assert '<div class="big">3m13s</div>' in card  # the total, not total + parts
    assert "sum of the parts, from the start of data preparation to the report" in card
    section = page[page.index('<section id="timings">') :]
    assert "<b>3m13s</b>" in section and "training" in section and "6m26s" not in page


def test_timings_without_a_total_are_summed(report_inputs: dict) -> None:
    page = render_report(**{**report_inputs, "timings": {"data": 0.4, "train": 125.0}})
    assert '<div class="big">2m05s</div>' in _header(page)
    page = render_report(**{**report_inputs, "timings": {}})
    assert '<div class="split">time</div>' not in page and "No timings recorded." in page


def test_sample_grid_has_its_own_heading_after_the_left_out_files(report_inputs: dict) -> None:
    samples = report_inputs["plots"]["learning curves"]  # any PNG
    for problems in ([], DATA_REPORT["problems"]):
        data_report = {**DATA_REPORT, "problems": problems}
        page = render_report(
            **{**report_inputs, "data_report": data_report, "plots": {"samples": samples}}
        )
        data = page[page.index('<section id="data">') : page.index('<section id="config">')]
        left_out = data.index("<h3>Left-out files")
        heading = data.index("<h3>Sample images</h3>")
        figure = data.index('<figure><img src="data:image/png;base64,')
        assert left_out < heading < figure
        assert "<h3>" not in data[heading + 1 : figure]  # nothing between heading and grid
        assert data.count("<figure>") == 1
    bare = render_report(**{**report_inputs, "data_report": None, "plots": {"samples": samples}})
    assert "<h3>Sample images</h3><p" in bare
