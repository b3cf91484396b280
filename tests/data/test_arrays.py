""".npz sources and pixel conversion: layouts, shapes, dtypes, ranges and unreadable files."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from imgclf.data.formats.arrays import read_npz, to_uint8_images
from imgclf.errors import DataError


def rgb(n: int, value: int = 0, size: int = 4) -> np.ndarray:
    return np.full((n, size, size, 3), value, dtype=np.uint8)


def save(path: Path, **arrays: np.ndarray) -> Path:
    np.savez(path, **arrays)
    return path


# ---------------------------------------------------------------- layouts


def test_r2_layout_gives_train_and_test_splits(tmp_path):
    x_train, x_test = rgb(3, 10), rgb(2, 200)
    npz = save(
        tmp_path / "d.npz",
        X_train=x_train,
        y_train=np.array([0, 1, 0]),
        X_test=x_test,
        y_test=np.array([1, 1]),
    )

    source = read_npz(npz)

    assert source.images.shape == (5, 4, 4, 3)
    assert source.images.dtype == np.uint8
    assert source.splits.tolist() == ["train"] * 3 + ["test"] * 2
    assert source.labels.tolist() == [0, 1, 0, 1, 1]
    assert source.classes == ["0", "1"]
    np.testing.assert_array_equal(source.images[:3], x_train)
    np.testing.assert_array_equal(source.images[3:], x_test)
    assert source.is_array and source.name == str(npz)


def test_x_y_layout_has_no_splits(tmp_path):
    npz = save(tmp_path / "d.npz", x=rgb(4), y=np.array([1, 0, 1, 0]))

    source = read_npz(npz)

    assert source.splits is None
    assert source.labels.tolist() == [1, 0, 1, 0]
    assert len(source) == 4


def test_train_arrays_only_have_no_splits(tmp_path):
    npz = save(tmp_path / "d.npz", X_train=rgb(3), y_train=np.array([2, 0, 1]))

    source = read_npz(npz)

    assert source.splits is None
    assert source.classes == ["0", "1", "2"]
    assert source.images.shape == (3, 4, 4, 3)


def test_column_vector_labels_are_flattened(tmp_path):
    npz = save(tmp_path / "d.npz", x=rgb(3), y=np.array([[5], [7], [5]]))

    assert read_npz(npz).labels.tolist() == [0, 1, 0]


def test_string_labels_are_sorted_by_name(tmp_path):
    npz = save(tmp_path / "d.npz", x=rgb(3), y=np.array(["dog", "cat", "emu"]))

    source = read_npz(npz)

    assert source.classes == ["cat", "dog", "emu"]
    assert source.labels.tolist() == [1, 0, 2]


def test_integer_labels_are_ordered_by_value(tmp_path):
    npz = save(tmp_path / "d.npz", x=rgb(3), y=np.array([10, 2, 1]))

    source = read_npz(npz)

    assert source.classes == ["1", "2", "10"]
    assert source.labels.tolist() == [2, 1, 0]


def test_mismatched_lengths_name_both_keys_and_counts(tmp_path):
    npz = save(tmp_path / "d.npz", X_train=rgb(3), y_train=np.array([0, 1]))

    with pytest.raises(DataError) as caught:
        read_npz(npz)

    message = str(caught.value)
    assert "X_train has 3 images" in message
    assert "y_train has 2 labels" in message
    assert "exactly one label" in message


def test_mismatched_test_lengths_are_caught_too(tmp_path):
    npz = save(
        tmp_path / "d.npz",
        X_train=rgb(2),
        y_train=np.array([0, 1]),
        X_test=rgb(1),
        y_test=np.array([0, 1, 1]),
    )

    with pytest.raises(DataError, match="X_test has 1 images but y_test has 3 labels"):
        read_npz(npz)


def test_wrong_keys_list_the_keys_found_and_the_expected_ones(tmp_path):
    npz = save(tmp_path / "d.npz", images=rgb(2), targets=np.array([0, 1]))

    with pytest.raises(DataError) as caught:
        read_npz(npz)

    message = str(caught.value)
    assert "['images', 'targets']" in message
    assert "X_train, y_train, X_test, y_test" in message
    assert "Rename the arrays" in message


def test_train_and_test_of_different_shapes_are_refused(tmp_path):
    npz = save(
        tmp_path / "d.npz",
        X_train=rgb(2, size=4),
        y_train=np.array([0, 1]),
        X_test=rgb(2, size=5),
        y_test=np.array([0, 1]),
    )

    with pytest.raises(DataError, match="train and test images differ in shape"):
        read_npz(npz)


# ---------------------------------------------------------------- pixels


def test_grayscale_hw_images_get_a_channel_axis(tmp_path):
    gray = np.arange(2 * 3 * 5, dtype=np.uint8).reshape(2, 3, 5)
    npz = save(tmp_path / "d.npz", x=gray, y=np.array([0, 1]))

    images = read_npz(npz).images

    assert images.shape == (2, 3, 5, 1)
    np.testing.assert_array_equal(images[..., 0], gray)


def test_float_images_in_0_1_are_scaled_to_0_255_with_rounding():
    x = np.array([0.0, 0.5, 1 / 255, 0.999, 1.0], dtype=np.float64).reshape(1, 1, 5)

    out = to_uint8_images(x, "x")

    assert out.dtype == np.uint8
    assert out.shape == (1, 1, 5, 1)
    assert out.ravel().tolist() == [0, 128, 1, 255, 255]  # 0.5 * 255 = 127.5 rounds to 128


def test_float_images_in_0_255_are_rounded_not_scaled():
    x = np.array([0.0, 2.0, 127.6, 255.0], dtype=np.float32).reshape(1, 1, 4)

    assert to_uint8_images(x, "x").ravel().tolist() == [0, 2, 128, 255]


def test_uint8_images_pass_through_unchanged():
    x = np.arange(2 * 2 * 2 * 3, dtype=np.uint8).reshape(2, 2, 2, 3)

    np.testing.assert_array_equal(to_uint8_images(x, "x"), x)


def test_rgba_images_drop_the_alpha_channel():
    x = np.zeros((1, 2, 2, 4), dtype=np.uint8)
    x[..., 3] = 255

    out = to_uint8_images(x, "x")

    assert out.shape == (1, 2, 2, 3)
    assert out.max() == 0


@pytest.mark.parametrize("shape", [(2, 3, 8, 8), (2, 4, 4, 3, 1), (5, 5)])
def test_bad_shapes_say_what_is_expected_and_hint_at_moveaxis(shape):
    with pytest.raises(DataError) as caught:
        to_uint8_images(np.zeros(shape, dtype=np.uint8), "data.npz:X_train")

    message = str(caught.value)
    assert f"data.npz:X_train has shape {shape}" in message
    assert "(N, H, W, 3)" in message
    assert "np.moveaxis(x, 1, -1)" in message


def test_channels_first_array_in_an_npz_is_refused(tmp_path):
    npz = save(tmp_path / "d.npz", x=np.zeros((2, 3, 8, 8), np.uint8), y=np.array([0, 1]))

    with pytest.raises(DataError, match=r"d\.npz:x has shape \(2, 3, 8, 8\).*moveaxis"):
        read_npz(npz)


def test_nan_pixels_are_refused():
    x = np.zeros((1, 2, 2), dtype=np.float32)
    x[0, 1, 1] = np.nan

    with pytest.raises(DataError, match="pics contains NaN or infinite pixels. Clean the array"):
        to_uint8_images(x, "pics")


@pytest.mark.parametrize(
    ("low", "high", "shown"), [(-0.5, 0.5, "[-0.5, 0.5]"), (0.0, 256.0, "[0, 256]")]
)
def test_pixels_out_of_range_are_refused_with_the_range_found(low, high, shown):
    x = np.array([low, high], dtype=np.float32).reshape(1, 1, 2)

    with pytest.raises(DataError) as caught:
        to_uint8_images(x, "pics")

    message = str(caught.value)
    assert f"pics has pixels in {shown}" in message
    assert "expected [0, 1] or [0, 255]" in message


def test_wide_integer_pixels_out_of_range_are_refused():
    with pytest.raises(DataError, match=r"pixels in \[0, 300\]"):
        to_uint8_images(np.array([[[0, 300]]], dtype=np.int32), "pics")


def test_non_numeric_pixels_are_refused():
    with pytest.raises(DataError, match="pics has dtype bool; expected uint8 or float"):
        to_uint8_images(np.zeros((1, 2, 2), dtype=bool), "pics")


# ---------------------------------------------------------------- unreadable files


def test_missing_npz_file(tmp_path):
    with pytest.raises(DataError, match=r"nope\.npz does not exist"):
        read_npz(tmp_path / "nope.npz")


def test_a_text_file_is_not_an_npz(tmp_path):
    fake = tmp_path / "fake.npz"
    fake.write_text("x,y\n1,2\n")

    with pytest.raises(DataError) as caught:
        read_npz(fake)

    message = str(caught.value)
    assert str(fake) in message
    assert "is not an .npz archive" in message
    assert "numpy.savez" in message


def test_a_single_npy_array_is_not_an_npz(tmp_path):
    fake = tmp_path / "one.npz"
    with open(fake, "wb") as handle:
        np.save(handle, rgb(2))

    with pytest.raises(DataError, match="is not an .npz archive"):
        read_npz(fake)


def test_a_corrupt_zip_is_reported_and_its_file_closed(tmp_path):
    """A zip header with garbage after it: a DataError, and no unclosed-file warning (error)."""
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"PK\x03\x04" + b"\x00" * 20)

    with pytest.raises(DataError, match=r"broken\.npz cannot be read.*numpy\.savez"):
        read_npz(broken)


def test_a_zip_of_other_files_has_the_wrong_keys(tmp_path):
    archive = tmp_path / "other.npz"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("notes.txt", "hello")

    with pytest.raises(DataError, match=r"holds \['notes.txt'\]"):
        read_npz(archive)


def test_object_arrays_are_refused_without_unpickling(tmp_path):
    npz = save(tmp_path / "d.npz", x=rgb(2), y=np.array(["cat", None], dtype=object))

    with pytest.raises(DataError) as caught:
        read_npz(npz)

    message = str(caught.value)
    assert str(npz) in message
    assert "object (pickled) array" in message
    assert "astype(str)" in message
