"""Prediction: input expansion, parity with the saved bundle and a manual forward, bad files, TTA,
tables and CSVs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from imgclf.config import ModelConfig
from imgclf.data.decode import decode_file
from imgclf.errors import ConfigError, DataError
from imgclf.export.bundle import load_bundle, save_bundle
from imgclf.models.network import ImageModel, build_model
from imgclf.predict import (
    Predictions,
    expand_inputs,
    predict,
    predict_arrays,
    predict_image,
)

CLASSES = ["a", "b", "c"]
SIZE = (12, 12)


def _model(channels: int, seed: int) -> ImageModel:
    torch.manual_seed(seed)
    model = build_model(ModelConfig(name="cnn"), CLASSES, channels=channels, image_size=SIZE)
    return model.eval()


@pytest.fixture
def gray_model(seed: int) -> ImageModel:
    return _model(1, seed)


@pytest.fixture
def rgb_model(seed: int) -> ImageModel:
    return _model(3, seed)


def _noise(rng: np.random.Generator, width: int = 20, height: int = 16) -> Image.Image:
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """photos/: PNG, JPEG, upper-case .JPG, a sub-folder, a .txt and a hidden image."""
    rng = np.random.default_rng(0)
    root = tmp_path / "photos"
    (root / "sub").mkdir(parents=True)
    _noise(rng).save(root / "cat1.png")
    _noise(rng, 30, 18).save(root / "cat2.jpg", quality=90)
    _noise(rng).convert("L").save(root / "UPPER.JPG", format="JPEG")
    _noise(rng, 9, 25).save(root / "sub" / "dog.png")
    (root / "notes.txt").write_text("not an image")
    _noise(rng).save(root / ".hidden.png")
    return root


@pytest.fixture
def broken(tmp_path: Path, photos: Path) -> Path:
    """broken/: a truncated JPEG, a zero-byte file and a text file named .jpg."""
    root = tmp_path / "broken"
    root.mkdir()
    good = (photos / "cat2.jpg").read_bytes()
    (root / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (root / "empty.jpg").write_bytes(b"")
    (root / "text.jpg").write_text("this is not an image\n")
    return root


def _good(photos: Path) -> list[Path]:
    names = ["UPPER.JPG", "cat1.png", "cat2.jpg", "sub/dog.png"]
    return [photos / name for name in names]


def _manual_probs(model: ImageModel, path: Path, flip: bool = False) -> np.ndarray:
    """What a tutorial does by hand: decode, add a batch axis, forward, softmax."""
    color = "grayscale" if model.preprocess_spec.channels == 1 else "rgb"
    image = decode_file(path, SIZE, "resize", color)
    x = torch.from_numpy(image).permute(2, 0, 1)[None]
    if flip:
        x = x.flip(3)
    with torch.no_grad():
        return torch.softmax(model(x.contiguous()), dim=1)[0].numpy()


# ---------------------------------------------------------------- expand_inputs


def test_folder_is_walked_recursively_sorted_and_hidden_files_ignored(photos: Path) -> None:
    paths, skipped = expand_inputs([photos])
    assert paths == _good(photos)
    assert skipped == [(str(photos / "notes.txt"), skipped[0][1])]
    assert skipped[0][1].startswith("not an image extension")


def test_files_keep_input_order_and_duplicates_are_dropped(
    photos: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(photos)
    paths, skipped = expand_inputs(["cat2.jpg", photos / "cat2.jpg", "./cat1.png", photos])
    assert paths[:2] == [Path("cat2.jpg"), Path("cat1.png")]
    assert sorted(p.resolve() for p in paths) == sorted(_good(photos))


def test_a_single_path_is_one_input_not_characters(photos: Path) -> None:
    assert expand_inputs(str(photos / "cat1.png"))[0] == [photos / "cat1.png"]


def test_glob_patterns(photos: Path) -> None:
    assert expand_inputs([f"{photos}/*.jpg"])[0] == [photos / "cat2.jpg"]
    assert expand_inputs([f"{photos}/**/*.png"])[0] == [photos / "cat1.png", photos / "sub/dog.png"]


def test_csv_paths_are_relative_to_the_csv_folder(
    tmp_path: Path, photos: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = tmp_path / "list.csv"
    rows = ["photos/cat1.png", "photos/sub/dog.png", "photos/missing.png", "", "photos/notes.txt"]
    pd.DataFrame({"path": rows, "other": range(5)}).to_csv(table, index=False)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    paths, skipped = expand_inputs([table])
    assert paths == [photos / "cat1.png", photos / "sub/dog.png"]
    reasons = [reason.split(" (")[0] for _, reason in skipped]
    assert reasons == ["does not exist", "empty path", "not an image extension"]
    assert "line 4" in skipped[0][0] and "line 5" in skipped[1][0]


def test_csv_without_the_path_column_is_an_error(tmp_path: Path) -> None:
    table = tmp_path / "list.csv"
    table.write_text("paths,label\nx.png,a\n")
    with pytest.raises(DataError, match=r"no column 'path'.*Did you mean 'paths'"):
        expand_inputs([table])
    with pytest.raises(DataError, match=r"x.png \(.*list.csv line 2\): does not exist"):
        expand_inputs([table], path_column="paths")


def test_missing_inputs_are_skipped_with_their_reason(tmp_path: Path, photos: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    inputs = [photos / "cat1.png", tmp_path / "nope.png", f"{tmp_path}/none/*.png", empty]
    paths, skipped = expand_inputs(inputs)
    assert paths == [photos / "cat1.png"]
    assert [reason.split(" (")[0] for _, reason in skipped] == [
        "does not exist",
        "no file matches the pattern",
        "no images in folder",
    ]


def test_no_images_at_all_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataError, match=r"No images to predict.*nope.png: does not exist"):
        expand_inputs([tmp_path / "nope.png", tmp_path / "notes.txt"])
    with pytest.raises(DataError, match="No inputs"):
        expand_inputs([])


# ---------------------------------------------------------------- predict


def test_loaded_bundle_predicts_exactly_like_the_model_in_memory(
    tmp_path: Path, photos: Path, gray_model: ImageModel
) -> None:
    save_bundle(gray_model, tmp_path / "bundle")
    loaded = predict(load_bundle(tmp_path / "bundle"), [photos], progress=False)
    direct = predict(gray_model, [photos], progress=False)
    assert loaded.paths == direct.paths == [str(p) for p in _good(photos)]
    assert loaded.classes == CLASSES
    np.testing.assert_array_equal(loaded.probs, direct.probs)


@pytest.mark.parametrize("channels", [1, 3])
def test_predictions_equal_a_manual_decode_and_forward(
    photos: Path, channels: int, seed: int
) -> None:
    model = _model(channels, seed)
    result = predict(model, [photos], progress=True)
    for path, probs in zip(_good(photos), result.probs, strict=True):
        np.testing.assert_allclose(probs, _manual_probs(model, path), rtol=0, atol=1e-6)


def test_unreadable_files_are_skipped_with_their_reason(
    photos: Path, broken: Path, gray_model: ImageModel
) -> None:
    result = predict(gray_model, [photos, broken], progress=False)
    assert result.paths == [str(p) for p in _good(photos)]
    reasons = dict(result.skipped)
    assert reasons[str(broken / "truncated.jpg")].startswith("truncated")
    assert reasons[str(broken / "empty.jpg")] == "empty file (0 bytes)"
    assert reasons[str(broken / "text.jpg")].startswith("not an image")
    assert result.summary() == "predicted 4 images, skipped 4 (1 wrong extension, 3 unreadable)"
    only_bad = predict(gray_model, [broken], progress=False)
    assert only_bad.probs.shape == (0, 3) and only_bad.summary().startswith("predicted 0 images")
    assert only_bad.to_frame().empty


def test_summary_of_one_kind_of_skip() -> None:
    result = Predictions(["x"], np.ones((1, 2)) / 2, ["a", "b"], [("y", "truncated: ...")])
    assert result.summary() == "predicted 1 image, skipped 1 (unreadable)"


def test_flip_tta_averages_image_and_mirror(photos: Path, rgb_model: ImageModel) -> None:
    result = predict(rgb_model, [photos], tta="flip", progress=False)
    plain = predict(rgb_model, [photos], progress=False)
    assert not np.allclose(result.probs, plain.probs)
    for path, probs in zip(_good(photos), result.probs, strict=True):
        both = (_manual_probs(rgb_model, path) + _manual_probs(rgb_model, path, flip=True)) / 2
        np.testing.assert_allclose(probs, both, rtol=0, atol=1e-6)


@pytest.mark.parametrize("tta", ["mirror", "hflip", 1])
def test_unknown_tta_is_a_config_error(photos: Path, gray_model: ImageModel, tta) -> None:
    with pytest.raises(ConfigError, match="Allowed: None, 'flip'"):
        predict(gray_model, [photos], tta=tta, progress=False)


def test_batch_size_does_not_change_results(photos: Path, gray_model: ImageModel) -> None:
    results = [predict(gray_model, [photos], batch_size=b, progress=False) for b in (1, 3, 100)]
    for other in results[1:]:
        assert other.paths == results[0].paths
        np.testing.assert_allclose(other.probs, results[0].probs, rtol=0, atol=1e-6)
    with pytest.raises(ConfigError, match="batch_size"):
        predict(gray_model, [photos], batch_size=0, progress=False)


def test_worker_processes_give_the_same_results(tmp_path: Path, gray_model: ImageModel) -> None:
    rng = np.random.default_rng(1)
    many = tmp_path / "many"
    many.mkdir()
    for i in range(70):  # enough for parallel_map to start a pool
        _noise(rng, 8, 8).save(many / f"{i:03d}.png")
    pooled = predict(gray_model, [many], workers=2, progress=False)
    serial = predict(gray_model, [many], workers=1, progress=False)
    assert pooled.paths == serial.paths and len(pooled) == 70
    np.testing.assert_array_equal(pooled.probs, serial.probs)


def test_predict_restores_training_mode(photos: Path, gray_model: ImageModel) -> None:
    gray_model.train()
    predict(gray_model, [photos], progress=False)
    assert gray_model.training


def test_every_kind_of_bad_file_in_a_real_corpus(
    image_corpus: Path, gray_model: ImageModel
) -> None:
    result = predict(gray_model, [image_corpus], progress=False)
    reasons = {Path(path).name: reason for path, reason in result.skipped}
    assert reasons["bomb.png"].startswith("oversized")
    assert reasons["self.jpg"] == "broken link or unreadable"
    assert reasons["notes.txt"].startswith("not an image extension")
    assert not any(".hidden" in path for path in result.paths)
    assert len(result.paths) == len(set(result.paths)) == 14  # the symlink loop is walked once
    assert np.isfinite(result.probs).all()


# ---------------------------------------------------------------- arrays and single images


def test_predict_arrays_matches_files(photos: Path, gray_model: ImageModel) -> None:
    images = np.stack([decode_file(p, SIZE, "resize", "grayscale") for p in _good(photos)])
    images.setflags(write=False)
    from_files = predict(gray_model, [photos], progress=False)
    for batch in (images, images[..., 0]):
        result = predict_arrays(gray_model, batch, batch_size=3)
        assert result.paths == ["array[0]", "array[1]", "array[2]", "array[3]"]
        np.testing.assert_allclose(result.probs, from_files.probs, rtol=0, atol=1e-6)


def test_predict_arrays_rejects_wrong_shapes_and_dtypes(gray_model: ImageModel) -> None:
    with pytest.raises(DataError, match=r"\(N, 12, 12, 1\).*transpose"):
        predict_arrays(gray_model, np.zeros((2, 1, 12, 12), dtype=np.uint8))
    with pytest.raises(DataError, match="uint8"):
        predict_arrays(gray_model, np.zeros((2, 12, 12, 1), dtype=np.float32))


def test_predict_image_gives_a_class_name_and_probability(
    photos: Path, rgb_model: ImageModel, broken: Path
) -> None:
    label, prob = predict_image(rgb_model, photos / "cat2.jpg")
    expected = _manual_probs(rgb_model, photos / "cat2.jpg")
    assert label == CLASSES[int(expected.argmax())]
    assert prob == pytest.approx(float(expected.max()), abs=1e-6)
    array = decode_file(photos / "cat2.jpg", SIZE, "resize", "rgb")
    assert predict_image(rgb_model, array) == (label, prob)
    with pytest.raises(DataError, match="truncated"):
        predict_image(rgb_model, broken / "truncated.jpg")
    with pytest.raises(DataError, match="does not exist"):
        predict_image(rgb_model, photos / "nope.jpg")


# ---------------------------------------------------------------- tables and CSV files


def _fixed() -> Predictions:
    probs = np.array([[0.2, 0.5, 0.3], [0.6, 0.1, 0.3]], dtype=np.float32)
    return Predictions(["x/one.jpg", "y/two.png"], probs, CLASSES)


def test_to_frame_lists_the_top_classes_best_first(photos: Path, gray_model: ImageModel) -> None:
    result = predict(gray_model, [photos], progress=False)
    with pytest.raises(ConfigError, match="top_k"):
        result.to_frame(top_k=0)
    frame = result.to_frame(top_k=2)
    assert list(frame.columns) == [
        "path", "label", "probability",
        "top1_label", "top1_probability", "top2_label", "top2_probability",
    ]  # fmt: skip
    assert (frame["label"] == frame["top1_label"]).all()
    assert (frame["top1_probability"] >= frame["top2_probability"]).all()
    full = _fixed().to_frame(top_k=10)  # capped at the number of classes
    assert [c for c in full.columns if c.endswith("_label")] == [
        "top1_label", "top2_label", "top3_label",
    ]  # fmt: skip
    assert full.loc[0, ["top1_label", "top2_label", "top3_label"]].tolist() == ["b", "c", "a"]
    probabilities = full[["top1_probability", "top2_probability", "top3_probability"]]
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)
    assert (probabilities.diff(axis=1).iloc[:, 1:] <= 0).all().all()


def test_probabilities_sum_to_one(photos: Path, gray_model: ImageModel) -> None:
    result = predict(gray_model, [photos], progress=False)
    np.testing.assert_allclose(result.probs.sum(axis=1), 1.0, atol=1e-6)
    assert result.labels == [CLASSES[i] for i in result.probs.argmax(axis=1)]
    np.testing.assert_array_equal(result.confidence, result.probs.max(axis=1))


def test_to_csv_writes_the_frame(tmp_path: Path) -> None:
    out = _fixed().to_csv(tmp_path / "out" / "predictions.csv")
    back = pd.read_csv(out)
    expected = _fixed().to_frame()
    assert list(back.columns) == list(expected.columns)
    assert back["label"].tolist() == ["b", "a"]
    np.testing.assert_allclose(back["probability"], [0.5, 0.6], atol=1e-6)
    assert [p.name for p in out.parent.iterdir()] == ["predictions.csv"]  # no temp file left


def test_to_csv_kaggle_layout(tmp_path: Path) -> None:
    back = pd.read_csv(_fixed().to_csv(tmp_path / "submission.csv", format="kaggle"), dtype=str)
    assert list(back.columns) == ["id", "label"]
    assert back.values.tolist() == [["one", "b"], ["two", "a"]]
    named = _fixed().to_csv(
        tmp_path / "s.csv", format="kaggle", id_column="ImageId", label_column="Label"
    )
    assert pd.read_csv(named).columns.tolist() == ["ImageId", "Label"]


def test_to_csv_rejects_bad_formats_and_duplicate_kaggle_ids(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="Allowed: csv, kaggle"):
        _fixed().to_csv(tmp_path / "x.csv", format="json")
    twins = Predictions(["a/one.jpg", "b/one.png"], _fixed().probs, CLASSES)
    with pytest.raises(DataError, match="one"):
        twins.to_csv(tmp_path / "x.csv", format="kaggle")
    assert not (tmp_path / "x.csv").exists()
