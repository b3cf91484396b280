"""CSV / DataFrame sources: path resolution, columns, splits, skipped rows and class order."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from imgclf.data.formats.inputs import expand_inputs, no_images_message
from imgclf.data.formats.table import read_csv, read_frame
from imgclf.errors import DataError


def make_png(path: Path) -> Path:
    """A real 2x2 RGB PNG at ``path`` (parents created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (2, 2), (10, 20, 30)).save(path)
    return path


def write_csv(path: Path, *lines: str) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def images(tmp_path: Path) -> dict[str, Path]:
    """Four PNGs in tmp_path/img: a.png, b.png, c.png, d.png."""
    return {name: make_png(tmp_path / "img" / f"{name}.png") for name in "abcd"}


def test_relative_paths_are_resolved_from_the_csv_folder(tmp_path, images, monkeypatch):
    csv = write_csv(tmp_path / "labels.csv", "path,label", "img/a.png,cat", "img/b.png,dog")
    monkeypatch.chdir(tmp_path / "img")  # the working directory must not matter

    source = read_csv(csv)

    assert source.paths == [images["a"], images["b"]]
    assert source.classes == ["cat", "dog"]
    assert source.labels.tolist() == [0, 1]
    assert source.splits is None
    assert source.skipped == []
    assert source.name == str(csv)


def test_absolute_paths_are_used_as_they_are(tmp_path, images):
    elsewhere = tmp_path / "tables"
    elsewhere.mkdir()
    csv = write_csv(elsewhere / "t.csv", "path,label", f"{images['c']},x", f"{images['d']},y")

    source = read_csv(csv)

    assert source.paths == [images["c"], images["d"]]
    assert source.labels.tolist() == [0, 1]


def test_custom_column_names(tmp_path, images):
    csv = write_csv(
        tmp_path / "t.csv", "file,target,subset", "img/a.png,cat,train", "img/b.png,dog,test"
    )

    source = read_csv(csv, path_column="file", label_column="target", split_column="subset")

    assert source.paths == [images["a"], images["b"]]
    assert source.classes == ["cat", "dog"]
    assert source.splits.tolist() == ["train", "test"]


def test_split_column_and_its_aliases_become_train_val_test(tmp_path, images):
    csv = write_csv(
        tmp_path / "t.csv",
        "path,label,split",
        "img/a.png,cat,train",
        "img/b.png,cat, Validation",
        "img/c.png,dog,dev",
        "img/d.png,dog,TESTING",
    )

    source = read_csv(csv)

    assert source.splits.tolist() == ["train", "val", "val", "test"]


def test_invalid_split_value_names_the_row_and_the_allowed_values(tmp_path, images):
    csv = write_csv(
        tmp_path / "t.csv", "path,label,split", "img/a.png,cat,train", "img/b.png,dog,holdout"
    )

    with pytest.raises(DataError) as caught:
        read_csv(csv)

    message = str(caught.value)
    assert str(csv) in message
    assert "line 3" in message  # the header is line 1
    assert "'holdout'" in message
    assert "train, val, test" in message and "validation" in message


def test_invalid_split_row_matches_the_row_of_skipped_items(tmp_path, images):
    """The split error and the skipped list count rows the same way (file line numbers)."""
    csv = write_csv(
        tmp_path / "t.csv", "path,label,split", "img/gone.png,cat,train", "img/b.png,dog,nope"
    )

    with pytest.raises(DataError, match="line 3"):
        read_csv(csv)
    csv.write_text("path,label,split\nimg/gone.png,cat,train\nimg/b.png,dog,val\n")
    assert read_csv(csv).skipped[0].path.endswith("(line 2)")


def test_messages_count_csv_lines_as_an_editor_does(tmp_path, images):
    """Blank lines and a quoted cell spanning two lines still count: every message says 'line N'
    with the file's own line numbers (the header is line 1)."""
    csv = tmp_path / "t.csv"
    csv.write_text(
        'path,label,split\n\nimg/gone.png,cat,train\n"img/\nnope.png",dog,val\n  \n'
        ",cat,train\r\nimg/a.png,,test\nimg/b.png,dog,holdout\n\n",
        encoding="utf-8",
        newline="",
    )

    with pytest.raises(DataError, match=r"t\.csv line 9: split value 'holdout'"):
        read_csv(csv)
    csv.write_text(csv.read_text().replace("holdout", "val"))
    skipped = [s.path for s in read_csv(csv).skipped]

    assert skipped[0].endswith("gone.png (line 3)")
    assert skipped[1].endswith("nope.png (line 4)")  # the row that starts on line 4
    assert skipped[2] == "line 7"  # empty path; line 6 is blank (spaces only)
    assert skipped[3].endswith("a.png (line 8)")  # empty label


def test_missing_files_are_skipped_and_reported_while_good_rows_are_used(tmp_path, images):
    csv = write_csv(
        tmp_path / "t.csv",
        "path,label",
        "img/a.png,cat",
        "img/missing.png,cat",
        "img/b.png,dog",
        "img/also-missing.png,bird",
    )

    source = read_csv(csv)

    assert source.paths == [images["a"], images["b"]]
    assert source.classes == ["cat", "dog"]  # 'bird' only had a missing file
    assert [s.reason for s in source.skipped] == ["file not found", "file not found"]
    assert "missing.png (line 3)" in source.skipped[0].path
    assert "also-missing.png (line 5)" in source.skipped[1].path


def test_empty_labels_are_skipped_and_reported_while_good_rows_are_used(tmp_path, images):
    csv = write_csv(
        tmp_path / "t.csv", "path,label", "img/a.png,cat", "img/b.png,", "img/c.png,   "
    )

    source = read_csv(csv)

    assert source.paths == [images["a"]]
    assert source.classes == ["cat"]
    assert [s.reason for s in source.skipped] == ["empty label", "empty label"]
    assert str(images["b"]) in source.skipped[0].path


def test_empty_path_cell_is_skipped(tmp_path, images):
    csv = write_csv(tmp_path / "t.csv", "path,label", ",cat", "img/a.png,cat")

    source = read_csv(csv)

    assert source.paths == [images["a"]]
    assert source.skipped[0].reason == "empty path"
    assert source.skipped[0].path == "line 2"


def test_missing_column_suggests_a_close_name_and_lists_the_columns(tmp_path, images):
    csv = write_csv(tmp_path / "t.csv", "paths,label", "img/a.png,cat")

    with pytest.raises(DataError) as caught:
        read_csv(csv)

    message = str(caught.value)
    assert "no column 'path'" in message
    assert "Did you mean 'paths'?" in message
    assert "Columns: paths, label" in message
    assert "path_column" in message  # the fix


def test_missing_label_column_is_reported_too(tmp_path, images):
    csv = write_csv(tmp_path / "t.csv", "path,class", "img/a.png,cat")

    with pytest.raises(DataError, match=r"no column 'label'.*Columns: path, class"):
        read_csv(csv)


def test_missing_columns_name_the_flag_that_sets_them(tmp_path, images):
    """Training and prediction name the CLI flag (and the key), not 'path_column / label_column'."""
    path_csv = write_csv(tmp_path / "p.csv", "paths,label", "img/a.png,cat")
    label_csv = write_csv(tmp_path / "l.csv", "path,class", "img/a.png,cat")
    for reader, csv, flag in (
        (read_csv, path_csv, "--path-column NAME, the column of image paths (path_column"),
        (read_csv, label_csv, "--label-column NAME, the column of labels (label_column"),
        (lambda t: expand_inputs([t]), path_csv, "--path-column NAME"),
    ):
        with pytest.raises(DataError, match=re.escape(f"Pass {flag}")):
            reader(csv)


def test_csv_that_does_not_exist(tmp_path):
    missing = tmp_path / "nope.csv"

    with pytest.raises(DataError) as caught:
        read_csv(missing)

    assert str(missing) in str(caught.value)
    assert "does not exist" in str(caught.value)


def test_empty_csv_file_cannot_be_parsed(tmp_path):
    csv = tmp_path / "empty.csv"
    csv.write_text("")

    with pytest.raises(DataError) as caught:
        read_csv(csv)

    assert str(csv) in str(caught.value)
    assert "cannot be parsed" in str(caught.value)


def test_csv_with_only_a_header_has_no_rows(tmp_path):
    csv = write_csv(tmp_path / "t.csv", "path,label")

    with pytest.raises(DataError, match="has no rows. Add one row per image"):
        read_csv(csv)


def test_csv_whose_every_row_is_bad_fails_and_names_the_first_reason(tmp_path, images):
    csv = write_csv(tmp_path / "t.csv", "path,label", "img/x.png,cat", "img/a.png,")

    with pytest.raises(DataError) as caught:
        read_csv(csv)

    message = str(caught.value)
    assert "no usable rows" in message
    assert "2 rows; 2 left out" in message
    assert "x.png (line 2): file not found" in message


def test_integer_labels_are_ordered_by_value(tmp_path, images):
    csv = write_csv(tmp_path / "t.csv", "path,label", "img/a.png,10", "img/b.png,2", "img/c.png,1")

    source = read_csv(csv)

    assert source.classes == ["1", "2", "10"]
    assert source.labels.tolist() == [2, 1, 0]


def test_string_labels_are_sorted_by_name(tmp_path, images):
    csv = write_csv(
        tmp_path / "t.csv", "path,label", "img/a.png,zebra", "img/b.png,ant", "img/c.png,mole"
    )

    source = read_csv(csv)

    assert source.classes == ["ant", "mole", "zebra"]
    assert source.labels.tolist() == [2, 0, 1]


def test_tsv_file_is_read_with_tabs(tmp_path, images):
    tsv = write_csv(tmp_path / "t.tsv", "path\tlabel", "img/a.png\tcat", "img/b.png\tdog")

    source = read_csv(tsv)

    assert source.paths == [images["a"], images["b"]]
    assert source.classes == ["cat", "dog"]


def test_dataframe_with_root_and_integer_labels(tmp_path, images):
    frame = pd.DataFrame({"path": ["img/a.png", "img/b.png", "img/gone.png"], "label": [3, 1, 1]})

    source = read_frame(frame, root=tmp_path)

    assert source.name == "DataFrame"
    assert source.paths == [images["a"], images["b"]]
    assert source.classes == ["1", "3"]
    assert source.labels.tolist() == [1, 0]
    assert source.skipped[0].reason == "file not found"
    assert "gone.png (row 2)" in source.skipped[0].path  # the DataFrame's own index label


def test_dataframe_with_absolute_paths_and_a_split_column(images):
    frame = pd.DataFrame(
        {
            "path": [images["a"], images["b"]],
            "label": ["cat", "dog"],
            "split": ["training", "valid"],
        }
    )

    source = read_frame(frame)

    assert source.paths == [images["a"], images["b"]]
    assert source.splits.tolist() == ["train", "val"]


def test_dataframe_with_a_repeated_index_reads_every_row(images):
    """pd.concat without ignore_index repeats index labels; every row must still be read."""
    one = pd.DataFrame({"path": [str(images["a"])], "label": ["cat"]})
    two = pd.DataFrame({"path": [str(images["b"])], "label": ["dog"]})

    source = read_frame(pd.concat([one, two]))

    assert source.paths == [images["a"], images["b"]]
    assert source.labels.tolist() == [0, 1]
    assert source.skipped == []


def test_dataframe_with_missing_values_skips_those_rows(images):
    frame = pd.DataFrame(
        {"path": [str(images["a"]), np.nan, str(images["c"])], "label": ["cat", "cat", None]}
    )

    source = read_frame(frame)

    assert source.paths == [images["a"]]
    assert [s.reason for s in source.skipped] == ["empty path", "empty label"]


def test_a_csv_that_lists_no_image_says_so() -> None:
    message = no_images_message(["list.csv"], [])
    assert message.startswith("No images to predict in list.csv: none listed. Pass readable")
