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
from imgclf.data.pipeline.decode import decode_file
from imgclf.errors import ConfigError, DataError
from imgclf.models.bundle import load_bundle, save_bundle
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


def _model(channels: int, seed: int, fit: str = "resize") -> ImageModel:
    torch.manual_seed(seed)
    config = ModelConfig(name="cnn")
    model = build_model(config, CLASSES, channels=channels, image_size=SIZE, fit=fit)
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


def test_nothing_predictable_is_one_error_naming_counts_and_first_paths(
    tmp_path: Path, broken: Path, gray_model: ImageModel
) -> None:
    """A folder of broken images is an error, not an empty table (as a missing file is)."""
    inputs = [broken, tmp_path / "nope.png"]
    with pytest.raises(DataError) as caught:
        predict(gray_model, inputs, progress=False)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"No images to predict in {broken}, {tmp_path / 'nope.png'}: ")
    assert "4 inputs gave no image (1 missing, 3 unreadable): " in message
    assert f"{tmp_path / 'nope.png'}: does not exist; {broken / 'empty.jpg'}: empty file" in message
    assert f"{broken / 'truncated.jpg'}: truncated" in message
    assert "Pass readable image files (.jpg" in message


def test_nothing_predictable_lists_only_the_first_five(tmp_path: Path, gray_model) -> None:
    for i in range(7):
        (tmp_path / f"{i}.png").write_bytes(b"")
    with pytest.raises(DataError, match=r"7 inputs gave no image \(7 unreadable\)") as caught:
        predict(gray_model, [tmp_path], progress=False)
    assert "4.png: empty file (0 bytes); and 2 more. Pass" in str(caught.value)
    assert "5.png" not in str(caught.value)


def test_one_missing_file_and_a_broken_folder_give_the_same_kind_of_error(
    tmp_path: Path, broken: Path, gray_model: ImageModel
) -> None:
    with pytest.raises(DataError, match=r"1 input gave no image \(1 missing\): .*nope.png: does"):
        predict(gray_model, tmp_path / "nope.png", progress=False)
    with pytest.raises(DataError, match=r"3 inputs gave no image \(3 unreadable\): "):
        predict(gray_model, broken, progress=False)


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
    allowed = r"Allowed: flip \(average with the horizontal mirror image\), or none\.$"
    with pytest.raises(ConfigError, match=rf"Unknown tta '{tta}'.* {allowed}"):
        predict(gray_model, [photos], tta=tta, progress=False)


def test_batch_size_does_not_change_results(photos: Path, gray_model: ImageModel) -> None:
    results = [predict(gray_model, [photos], batch_size=b, progress=False) for b in (1, 3, 100)]
    for other in results[1:]:
        assert other.paths == results[0].paths
        np.testing.assert_allclose(other.probs, results[0].probs, rtol=0, atol=1e-6)
    with pytest.raises(ConfigError, match="batch_size"):
        predict(gray_model, [photos], batch_size=0, progress=False)


def test_decoding_threads_give_the_same_results(tmp_path: Path, gray_model: ImageModel) -> None:
    rng = np.random.default_rng(1)
    many = tmp_path / "many"
    many.mkdir()
    for i in range(70):  # more than the read-ahead of threaded_map
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


@pytest.mark.parametrize("fit", ["resize", "center_crop", "letterbox"])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("layout", ["gray", "gray1", "rgb", "float"])
def test_arrays_of_any_size_predict_like_the_same_pixels_saved_as_files(
    tmp_path: Path, fit: str, channels: int, layout: str, seed: int
) -> None:
    """(N, H, W), (N, H, W, 1), (N, H, W, 3) uint8 and float 0..1 arrays at 7x10 are fitted to
    the model's 12x12 with its fit policy and colour, exactly as the files would be."""
    model = _model(channels, seed, fit)
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, (4, 7, 10, 3 if layout == "rgb" else 1), dtype=np.uint8)
    for i, image in enumerate(pixels):
        Image.fromarray(image if layout == "rgb" else image[..., 0]).save(tmp_path / f"{i}.png")
    array = {
        "gray": pixels[..., 0],
        "gray1": pixels,
        "rgb": pixels,
        "float": pixels[..., 0].astype(np.float64) / 255,
    }[layout]
    from_files = predict(model, [tmp_path], progress=False)
    from_arrays = predict_arrays(model, array, batch_size=3)
    np.testing.assert_allclose(from_arrays.probs, from_files.probs, rtol=0, atol=1e-6)
    label, prob = predict_image(model, array[1])
    assert (label, prob) == pytest.approx((from_files.labels[1], from_files.confidence[1]))


@pytest.mark.parametrize("fit", ["resize", "letterbox"])
def test_arrays_are_fitted_by_the_code_that_builds_the_training_cache(fit: str, seed: int) -> None:
    """The issue's case: 8x8 arrays (as `digits`) on a model trained at a larger size."""
    from imgclf.data.formats.resolve import read_source
    from imgclf.data.pipeline.cache import build_image_cache

    model = _model(1, seed, fit)
    images = np.random.default_rng(4).integers(0, 17, (5, 8, 8)).astype(np.float32) * 15
    source = read_source((images, [0, 1, 2, 0, 1]))  # as fit() reads an (images, labels) pair
    cache = build_image_cache(source, SIZE, fit, "grayscale", progress=False)
    expected = predict_arrays(model, np.asarray(cache.images))  # already fitted: used as is
    result = predict_arrays(model, images)
    np.testing.assert_allclose(result.probs, expected.probs, rtol=0, atol=1e-6)
    assert predict_arrays(model, np.zeros((2, 8, 8), np.uint8)).probs.shape == (2, 3)


@pytest.mark.parametrize(
    ("images", "match"),
    [
        (np.zeros((2, 1, 12, 12), np.uint8), r"shape \(2, 1, 12, 12\).*np.moveaxis\(x, 1, -1\)"),
        (np.zeros((12, 12), np.uint8), r"shape \(12, 12\); expected \(N, H, W\)"),
        (np.zeros((2, 12, 12), bool), "dtype bool; expected uint8 or float"),
        (np.full((2, 12, 12), 300.0), r"pixels in \[0, 300\]; expected \[0, 1\] or \[0, 255\]"),
        (np.full((2, 12, 12), np.nan), "NaN"),
        (np.zeros((0, 12, 12), np.uint8), r"holds no images \(shape \(0, 12, 12, 1\)\)"),
        ([np.zeros((12, 12), np.uint8)], r"received list\. Stack .* np.stack"),
    ],
)
def test_predict_arrays_rejects_what_training_rejects(
    gray_model: ImageModel, images, match: str
) -> None:
    with pytest.raises(DataError, match=match):
        predict_arrays(gray_model, images)


def test_predict_image_rejects_a_batch_or_a_channels_first_image(gray_model) -> None:
    for shape in [(2, 12, 12, 1), (3, 12, 12)]:
        with pytest.raises(DataError, match=r"expected one image \(H, W\).*predict_arrays"):
            predict_image(gray_model, np.zeros(shape, np.uint8))


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
        "path", "label", "probability", "top2_label", "top2_probability",
    ]  # fmt: skip
    assert (frame["probability"] >= frame["top2_probability"]).all()
    assert (frame["label"] != frame["top2_label"]).all()
    assert list(result.to_frame(top_k=1).columns) == ["path", "label", "probability"]
    full = _fixed().to_frame(top_k=10)  # capped at the number of classes
    assert [c for c in full.columns if c.endswith("label")] == [
        "label", "top2_label", "top3_label",
    ]  # fmt: skip
    assert full.loc[0, ["label", "top2_label", "top3_label"]].tolist() == ["b", "c", "a"]
    probabilities = full[["probability", "top2_probability", "top3_probability"]]
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


# ---------------------------------------------------------------- CSV labels and line numbers


def test_csv_line_numbers_count_blank_lines_like_the_training_reader(tmp_path: Path) -> None:
    table = tmp_path / "list.csv"
    table.write_text('path\n\nnope.png\n"two\nlines.png"\n   \n""\n')
    with pytest.raises(DataError) as caught:
        expand_inputs([table])
    message = str(caught.value)
    assert "nope.png (" in message and "list.csv line 3): does not exist" in message
    assert "list.csv line 4): does not exist" in message  # the row that starts on line 4
    assert "list.csv line 7: empty path" in message  # line 6 is blank (spaces only)


@pytest.fixture
def labelled(tmp_path: Path, photos: Path, gray_model: ImageModel) -> tuple[Path, list[str]]:
    """list.csv beside photos/: one right label, one wrong, one the model does not know, one
    empty, and a missing file; returns the CSV and the model's predicted labels of the 4."""
    names = ["cat1.png", "cat2.jpg", "sub/dog.png", "UPPER.JPG"]
    predicted = predict(gray_model, [photos / n for n in names], progress=False).labels
    wrong = next(c for c in CLASSES if c != predicted[1])
    labels = [predicted[0], wrong, "zebra", "", "a"]
    paths = [f"photos/{n}" for n in names] + ["photos/missing.png"]
    table = tmp_path / "list.csv"
    pd.DataFrame({"path": paths, "label": labels}).to_csv(table, index=False)
    return table, predicted


def test_a_csv_label_column_is_scored(
    tmp_path: Path, labelled: tuple[Path, list[str]], gray_model: ImageModel
) -> None:
    table, predicted = labelled
    result = predict(gray_model, [table], progress=False)
    assert result.labels == predicted
    wrong = next(c for c in CLASSES if c != predicted[1])
    assert result.true_labels == [predicted[0], wrong, "zebra", None]
    assert result.labelled == 3 and result.accuracy == pytest.approx(1 / 3)
    assert result.unknown_labels == {"zebra": 1}
    assert result.summary() == (
        "predicted 4 images, accuracy 0.3333 on 3 labelled images (1 with a label the model "
        "does not know, counted wrong: zebra), skipped 1 (missing)"
    )
    back = pd.read_csv(result.to_csv(tmp_path / "out.csv"), dtype=str, keep_default_na=False)
    assert list(back.columns) == [
        "path", "label", "probability", "true_label",
        "top2_label", "top2_probability", "top3_label", "top3_probability",
    ]  # fmt: skip
    assert back["true_label"].tolist() == [predicted[0], wrong, "zebra", ""]


def test_images_without_labels_have_no_accuracy(photos: Path, gray_model: ImageModel) -> None:
    result = predict(gray_model, [photos], progress=False)
    assert result.true_labels is None and result.accuracy is None
    assert "true_label" not in result.to_frame().columns
    assert "accuracy" not in result.summary()


def test_label_column_can_be_renamed_or_ignored(
    tmp_path: Path, labelled: tuple[Path, list[str]], gray_model: ImageModel
) -> None:
    table, predicted = labelled
    assert predict(gray_model, [table], label_column=None, progress=False).true_labels is None
    renamed = tmp_path / "renamed.csv"
    pd.read_csv(table).rename(columns={"label": "species"}).to_csv(renamed, index=False)
    assert predict(gray_model, [renamed], progress=False).true_labels is None  # no 'label'
    result = predict(gray_model, [renamed], label_column="species", progress=False)
    assert result.true_labels[0] == predicted[0]
    with pytest.raises(DataError, match=r"no column 'specie'.*Did you mean 'species'.*label_col"):
        predict(gray_model, [renamed], label_column="specie", progress=False)
    with pytest.raises(ConfigError, match="path_column and label_column are both 'path'"):
        predict(gray_model, [renamed], label_column="path", progress=False)


def test_integer_labels_are_read_as_training_encodes_them(
    tmp_path: Path, photos: Path, seed: int
) -> None:
    torch.manual_seed(seed)
    model = build_model(ModelConfig(name="cnn"), ["7", "8", "10"], channels=1, image_size=SIZE)
    table = tmp_path / "list.csv"
    table.write_text("path,label\nphotos/cat1.png,07\nphotos/cat2.jpg, 10\n")
    result = predict(model.eval(), [table], progress=False)
    assert result.true_labels == ["7", "10"] and not result.unknown_labels


def test_threaded_map_keeps_order_bounds_its_read_ahead_and_raises() -> None:
    import threading

    from imgclf.data.pipeline.parallel import threaded_map

    started, lock = [], threading.Lock()

    def slow_square(x: int) -> int:
        with lock:
            started.append(x)
        return x * x

    results = threaded_map(slow_square, list(range(100)), workers=3, progress=False, ahead=8)
    first = next(results)
    assert first == 0 and len(started) <= 9  # nothing beyond the read-ahead has run
    assert [first, *results] == [x * x for x in range(100)]

    def broken(x: int) -> int:
        if x == 5:
            raise ValueError("bad item 5")
        return x

    with pytest.raises(ValueError, match="bad item 5"):
        list(threaded_map(broken, list(range(20)), workers=2, progress=False))
