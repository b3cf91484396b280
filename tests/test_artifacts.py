"""write_run_artifacts: metrics.json records the whole run's timings and the planned epochs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from imgclf.classifier import ImageClassifier

PARTS = ["data", "train", "evaluate", "report"]


@pytest.fixture
def one_epoch_run(shapes: Path) -> Path:
    classifier = ImageClassifier(config="tiny.yaml", epochs=1, quiet=True, name="one")
    return classifier.fit(shapes).run_dir_


def test_metrics_time_every_part_and_the_total(one_epoch_run: Path) -> None:
    metrics = json.loads((one_epoch_run / "metrics.json").read_text())
    timings = metrics["timings"]
    assert list(timings) == [*PARTS, "total"]  # no embedding: a custom stack trains on pixels
    assert all(timings[name] >= 0 for name in PARTS)
    assert math.isclose(timings["total"], sum(timings[name] for name in PARTS))
    assert metrics["epochs_run"] == 1 and metrics["epochs_planned"] == 1
    page = (one_epoch_run / "report.html").read_text(encoding="utf-8")
    card = page[page.index('<div class="split">time</div>') : page.index("</header>")]
    for label in ("data (scan + decode)", "training", "evaluation (val/test)", "plots and report"):
        assert label in card
    assert "from the start of data preparation to the report" in card
