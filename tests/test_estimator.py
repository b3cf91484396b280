"""ImageClassifier keeps scikit-learn's estimator contract: parameters in, clone works, learned
state ends in '_'; a loaded run has its history."""

from __future__ import annotations

from pathlib import Path

from sklearn.base import clone

from imgclf.classifier import ImageClassifier, load


def test_clone_gives_an_unfitted_twin_that_fits_the_same(shapes: Path) -> None:
    original = ImageClassifier(config="tiny.yaml", epochs=1, quiet=True, name="a")
    twin = clone(original).set_params(name="b")
    assert twin.get_params()["epochs"] == 1 and not hasattr(twin, "model_")
    original.fit(shapes)
    twin.fit(shapes)
    assert twin.run_dir_ == Path("runs/b")
    assert twin.metrics_["test"]["accuracy"] == original.metrics_["test"]["accuracy"]
    assert twin.history_[0]["loss"] == original.history_[0]["loss"]


def test_set_params_changes_what_fit_uses(shapes: Path) -> None:
    classifier = ImageClassifier(config="tiny.yaml", quiet=True).set_params(
        epochs=2, model="custom"
    )
    assert classifier.get_config().train.epochs == 2


def test_a_loaded_run_has_its_history(shapes: Path) -> None:
    fitted = ImageClassifier(config="tiny.yaml", epochs=2, quiet=True, name="h").fit(shapes)
    loaded = load("runs/h")
    assert [row["epoch"] for row in loaded.history_] == [1, 2]
    assert loaded.history_[1]["val_loss"] == fitted.history_[1]["val_loss"]
    assert load(fitted.save("bundle")).history_ == []


def test_the_signature_names_the_common_settings_and_clone_keeps_them() -> None:
    import inspect

    named = set(inspect.signature(ImageClassifier).parameters)
    assert {"model", "config", "epochs", "batch_size", "lr", "image_size", "seed"} <= named
    assert {"mode", "device", "precision", "callbacks"} <= named
    classifier = ImageClassifier("cnn", epochs=2, device="cpu", patience=3)
    twin = clone(classifier)
    assert twin.get_params() == classifier.get_params()
    cfg = twin.get_config()
    assert (cfg.model.name, cfg.train.epochs, cfg.train.device, cfg.train.patience) == (
        "cnn", 2, "cpu", 3,
    )  # fmt: skip


def test_an_evaluation_keeps_its_worst_mistakes_to_draw(shapes: Path) -> None:
    """In a notebook ``ev.plot_mistakes()`` needs no images: the evaluation kept the worst."""
    import numpy as np

    from imgclf.api.evaluation import split_images

    fitted = ImageClassifier(config="tiny.yaml", epochs=1, lr=1e-4, quiet=True).fit(shapes)
    evaluation = fitted.evaluate(shapes, split="train")
    worst = evaluation.mistakes(evaluation.KEPT)
    assert len(worst) and len(evaluation.mistake_images) == len(worst)
    _, images, rows, _, _ = split_images(fitted.model_, shapes, "train", config=fitted.config_)
    assert np.array_equal(evaluation.mistake_images, images[rows[worst]])
    kept = [text.get_text() for text in evaluation.plot_mistakes().axes[0].texts]
    given = [text.get_text() for text in evaluation.plot_mistakes(images[rows]).axes[0].texts]
    assert kept and kept == given
