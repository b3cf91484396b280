"""Real photos, CI only: the R2 steps that the notebook (examples/notebooks/02_animals_r2)
does not take, with small budgets: fine-tuning with augmentation (one fine-tuning epoch) and a
time-limited own CNN at 32 px. R2's feature extraction and R1's recipe run in full in their
notebooks (tests/notebooks/test_examples.py); R2 step 3 runs in tests/test_examples.py on tiny
data. The full-length figures are measured by benchmarks/transfer.py and recorded in
BENCHMARKS.md.

The runs share the session's real-data cache (tests/conftest.py), as a user's successive runs
do: the head stage reuses the embeddings of the photos that the R2 notebook computed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from imgclf.classifier import ImageClassifier

pytestmark = pytest.mark.realdata

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TUTORIAL_BEST = 0.88  # R2 fine-tuning + augmentation


def _fit(data: Path, example: str, project: Path, **overrides) -> ImageClassifier:
    return ImageClassifier(
        config=EXAMPLES / f"{example}.yaml",
        project=project,
        quiet=True,
        **overrides,
    ).fit(data)


def test_r2_finetune_with_augmentation(shared_datasets, tmp_path):
    clf = _fit(
        shared_datasets / "animals",
        "r2_4_finetune_augment",
        tmp_path,
        finetune_epochs=1,
        augment_views=0,  # the head on the shared plain embeddings; the pixels stage augments
        unknown=False,  # its fit passes the photos through the fine-tuned network once more
    )
    assert [row["stage"] for row in clf.history_][-2:] == ["head", "finetune"]
    assert clf.metrics_["test"]["accuracy"] > TUTORIAL_BEST


def test_r2_own_cnn_within_a_time_budget(shared_datasets, tmp_path):
    clf = _fit(
        shared_datasets / "animals",
        "r2_1_animal_cnn",
        tmp_path,
        image_size=32,
        time_limit="10s",
    )
    assert clf.metrics_["stop_reason"].startswith("time limit 10.0s: ")
    assert len(clf.history_) < 50  # how many epochs fit depends on the machine: not asserted
    assert "test" in clf.metrics_ and (clf.run_dir_ / "report.html").is_file()
