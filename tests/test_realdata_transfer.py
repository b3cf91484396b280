"""Real photos, CI only: the R2 progression on animals and R1's recipe on imagenette, with
small budgets (one fine-tuning epoch, a time-limited own CNN at 32 px; R2 step 3 runs in
tests/test_examples.py on tiny data). The full-length figures are
measured by benchmarks/transfer.py and recorded in BENCHMARKS.md.

The pretrained runs share one embedding cache (same backbone, pooling and images), as a user's
successive runs do: the backbone runs over the 1,200 photos once for the whole module.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from imgclf.classifier import ImageClassifier

pytestmark = pytest.mark.realdata

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TUTORIAL_BEST = 0.88  # R2 fine-tuning + augmentation; also R1's test accuracy


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("transfer-cache")


def _fit(data: Path, example: str, cache: Path, project: Path, **overrides) -> ImageClassifier:
    return ImageClassifier(
        config=EXAMPLES / f"{example}.yaml",
        cache_dir=cache,
        project=project,
        quiet=True,
        **overrides,
    ).fit(data)


def test_r2_feature_extraction_on_cached_embeddings(shared_datasets, shared_cache, tmp_path):
    clf = _fit(shared_datasets / "animals", "r2_2_feature_extract", shared_cache, tmp_path)
    assert clf.metrics_["test"]["n_images"] == 240
    assert len(clf.history_) == 50
    assert "embed" in clf.metrics_["timings"]  # the head trained on embeddings computed once
    assert clf.metrics_["test"]["accuracy"] > TUTORIAL_BEST


def test_r2_finetune_with_augmentation(shared_datasets, shared_cache, tmp_path):
    clf = _fit(
        shared_datasets / "animals",
        "r2_4_finetune_augment",
        shared_cache,
        tmp_path,
        finetune_epochs=1,
        augment_views=0,  # the head on the shared plain embeddings; the pixels stage augments
    )
    assert [row["stage"] for row in clf.history_][-2:] == ["head", "finetune"]
    assert clf.metrics_["test"]["accuracy"] > TUTORIAL_BEST


def test_r2_own_cnn_within_a_time_budget(shared_datasets, shared_cache, tmp_path):
    clf = _fit(
        shared_datasets / "animals",
        "r2_1_animal_cnn",
        shared_cache,
        tmp_path,
        image_size=32,
        time_limit="10s",
    )
    assert clf.metrics_["stop_reason"].startswith("time limit 10.0s: ")
    assert len(clf.history_) < 50  # how many epochs fit depends on the machine: not asserted
    assert "test" in clf.metrics_ and (clf.run_dir_ / "report.html").is_file()


def test_r1_recipe_on_imagenette(shared_datasets, shared_cache, tmp_path):
    clf = _fit(
        shared_datasets / "imagenette2-224-subset",
        "r1_scenes",
        shared_cache,
        tmp_path,
        finetune_epochs=1,
    )
    assert clf.metrics_["test"]["n_images"] == 300
    assert clf.metrics_["test"]["accuracy"] > TUTORIAL_BEST
