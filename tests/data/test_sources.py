"""read_source: one entry point that dispatches on what it is given."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from imgclf.config import DataConfig
from imgclf.data.formats.resolve import read_source
from imgclf.data.source import DataSource
from imgclf.errors import DataError


def make_png(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", (3, 3), 128).save(path)
    return path


@pytest.fixture
def offline(tmp_path: Path) -> DataConfig:
    """A config whose built-in sets live in an empty folder and are never downloaded."""
    return DataConfig(data_dir=tmp_path / "datasets", download=False)


def test_a_folder_is_read_as_class_folders(tmp_path):
    cat = make_png(tmp_path / "data" / "cat" / "1.png")
    dog = make_png(tmp_path / "data" / "dog" / "1.png")

    source = read_source(tmp_path / "data")

    assert source.classes == ["cat", "dog"]
    assert source.paths == [cat, dog]


def test_a_csv_is_read_with_the_configured_columns(tmp_path):
    image = make_png(tmp_path / "a.png")
    csv = tmp_path / "t.csv"
    csv.write_text("file,target\na.png,cat\n")

    source = read_source(str(csv), DataConfig(path_column="file", label_column="target"))

    assert source.paths == [image]
    assert source.classes == ["cat"]


def test_an_npz_is_read_as_arrays(tmp_path):
    npz = tmp_path / "d.NPZ"  # the suffix is matched case-insensitively
    with open(npz, "wb") as handle:  # np.savez(path) would append '.npz' to 'd.NPZ'
        np.savez(handle, x=np.zeros((2, 4, 4), np.uint8), y=np.array(["a", "b"]))

    source = read_source(npz)

    assert source.is_array
    assert source.images.shape == (2, 4, 4, 1)
    assert source.classes == ["a", "b"]


def test_a_builtin_name_loads_the_builtin_set(offline):
    source = read_source("digits", offline)

    assert source.name == "digits"
    assert source.classes == [str(d) for d in range(10)]
    assert source.images.shape[1:] == (8, 8, 1)


def test_builtin_names_are_matched_like_load_builtin(offline):
    """'Fashion_MNIST' is the built-in 'fashion-mnist': the error is its missing files, not
    'not a built-in set'."""
    with pytest.raises(DataError) as caught:
        read_source(" Fashion_MNIST ", offline)

    message = str(caught.value)
    assert "built-in dataset 'fashion-mnist' is missing" in message
    assert "not a built-in set" not in message


def test_a_dataframe_is_read_with_the_configured_columns(tmp_path):
    image = make_png(tmp_path / "a.png")
    frame = pd.DataFrame({"file": [str(image)], "y": ["cat"], "part": ["val"]})

    source = read_source(
        frame, DataConfig(path_column="file", label_column="y", split_column="part")
    )

    assert source.paths == [image]
    assert source.splits.tolist() == ["val"]


def test_an_images_labels_tuple_is_read_as_arrays():
    images = np.linspace(0, 1, 3 * 2 * 2).reshape(3, 2, 2)

    source = read_source((images, [[2], [0], [2]]))

    assert source.name == "arrays"
    assert source.images.dtype == np.uint8
    assert source.images.shape == (3, 2, 2, 1)
    assert source.images.max() == 255
    assert source.classes == ["0", "2"]
    assert source.labels.tolist() == [1, 0, 1]


def test_a_tuple_with_mismatched_lengths_is_refused():
    with pytest.raises(DataError, match="3 images but 2 labels; they must match"):
        read_source((np.zeros((3, 2, 2), np.uint8), [0, 1]))


@pytest.mark.parametrize("items", [1, 3])
def test_a_tuple_that_is_not_a_pair_is_refused(items):
    pair = (np.zeros((2, 2, 2), np.uint8), [0, 1], None)[:items]

    with pytest.raises(DataError, match=f"pair; received a tuple of {items} items"):
        read_source(pair)


def test_a_datasource_passes_through_unchanged():
    source = DataSource("mine", ["a"], [0], images=np.zeros((1, 2, 2, 1), np.uint8))

    assert read_source(source) is source


def test_a_path_that_does_not_exist_lists_the_builtin_sets(tmp_path, offline):
    missing = tmp_path / "nowhere"

    with pytest.raises(DataError) as caught:
        read_source(missing, offline)

    message = str(caught.value)
    assert f"{missing} does not exist and is not a built-in set" in message
    assert "Pass an existing folder, .csv or .npz" in message
    assert "digits" in message and "mnist" in message
    assert "Did you mean" not in message


def test_a_near_miss_builtin_name_suggests_the_right_one(offline):
    with pytest.raises(DataError) as caught:
        read_source("mnsit", offline)

    assert "Did you mean 'mnist'?" in str(caught.value)


def test_an_unsupported_file_suffix_is_refused(tmp_path):
    path = tmp_path / "labels.json"
    path.write_text("{}")

    with pytest.raises(DataError) as caught:
        read_source(path)

    message = str(caught.value)
    assert f"{path} is a .json file" in message
    assert "expected a folder, a .csv or an .npz" in message


def test_an_extensionless_file_is_refused(tmp_path):
    path = tmp_path / "labels"
    path.write_text("x")

    with pytest.raises(DataError, match="is a extension-less file"):
        read_source(path)


@pytest.mark.parametrize("data", [42, ["a.png"], None])
def test_an_unsupported_python_type_is_refused(data):
    with pytest.raises(DataError) as caught:
        read_source(data)

    message = str(caught.value)
    assert f"received {type(data).__name__}" in message
    assert "a pandas DataFrame or an (images, labels) tuple" in message
