"""The bad-input corpus end to end: every bad file is reported with its reason and left out,
every good file is still used, and nothing crashes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from imgclf.api import inspect, load_data
from imgclf.data.formats.folder import read_folder
from imgclf.data.pipeline.scan import scan_source

GOOD = {
    "cats": {
        "good1.jpg", "good2.png", "upper.JPEG", "cmyk.jpg", "rgba.png", "la.png", "palette.png",
        "sixteen.png", "exif.jpg", "one.bmp",
    },
    "dogs": {"dog1.jpg", "png_named.jpg", os.fsdecode(b"caf\xe9.png")},
    "single": {"only.jpg"},
}  # fmt: skip
BAD_CONTENT = {
    "truncated.jpg": "truncated",
    "empty.jpg": "empty file (0 bytes)",
    "text.jpg": "not an image",
    "bomb.png": "oversized",
}
SKIPPED_BY_NAME = {
    ".hidden.jpg": "hidden file",
    "notes.txt": "not an image extension",
    "self.jpg": "broken link or unreadable",
    "loop": "symlink loop",
    "empty_class": "empty class folder",
}


def test_folder_reader_lists_every_file_with_a_reason(image_corpus: Path) -> None:
    source = read_folder(image_corpus)
    assert source.classes == ["cats", "dogs", "single"]
    skipped = {Path(s.path).name: s.reason for s in source.skipped}
    for name, reason in SKIPPED_BY_NAME.items():
        assert reason in skipped[name], (name, skipped.get(name))
    listed = {(source.classes[y], p.name) for p, y in zip(source.paths, source.labels, strict=True)}
    for cls, names in GOOD.items():
        assert {(cls, n) for n in names} <= listed
    assert {("cats", n) for n in BAD_CONTENT} <= listed  # found by the scan, not the walk


def test_scan_gives_each_bad_file_its_reason_and_keeps_good_ones(image_corpus: Path) -> None:
    source = read_folder(image_corpus)
    records = {
        p.name: r for p, r in zip(source.paths, scan_source(source, progress=False), strict=True)
    }
    for name, reason in BAD_CONTENT.items():
        assert not records[name].ok
        assert reason in records[name].reason
    for names in GOOD.values():
        for name in names:
            assert records[name].ok, (name, records[name].reason)
    assert records["png_named.jpg"].format == "PNG"
    assert (records["exif.jpg"].width, records["exif.jpg"].height) == (10, 20)  # upright
    assert records["one.bmp"].width == records["one.bmp"].height == 1


def test_inspect_reports_problems_and_warnings(image_corpus: Path, tmp_path: Path) -> None:
    report = inspect(image_corpus, out=tmp_path / "out", val_split=0.0, progress=False)
    reasons = {Path(p["path"]).name: p["reason"] for p in report.problems}
    for name, reason in {**BAD_CONTENT, "notes.txt": "not an image extension"}.items():
        assert reason in reasons[name]
    assert report.n_images == sum(len(n) for n in GOOD.values())
    assert report.counts["train"] == {"cats": 10, "dogs": 3, "single": 1}
    assert any("png_named.jpg (PNG)" in w for w in report.warnings)
    assert (tmp_path / "out" / "inspect.json").is_file()
    assert (tmp_path / "out" / "samples.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    shown = report._repr_html_()  # in a notebook: counts, the problems and the sample grid
    assert "not an image extension" in shown and "data:image/png;base64," in shown


def test_training_data_leaves_bad_files_out_and_decodes_the_rest(image_corpus: Path) -> None:
    prepared = load_data(image_corpus, image_size=16, val_split=0.0, progress=False)
    train = prepared.splits.train
    assert len(train) == sum(len(n) for n in GOOD.values())
    used = {prepared.source.paths[i].name for i in train}
    assert used == set().union(*GOOD.values())
    assert prepared.cache.images.shape == (len(prepared.source), 16, 16, 3)
    assert prepared.cache.valid[train].all()
    assert prepared.color_mode == "rgb"


def test_tiny_class_stays_in_train_with_a_warning(image_corpus: Path) -> None:
    report = inspect(image_corpus, val_split=0.3, progress=False)
    assert any("'single' (1)" in w for w in report.warnings)
    assert report.counts["train"]["single"] == 1
    assert report.counts["val"]["single"] == 0


def test_missing_path_is_one_clear_line_with_exit_code_2(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    result = subprocess.run(
        [sys.executable, "-m", "imgclf", "inspect", str(missing)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "does not exist" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.parametrize("name", ["mnsit", "cifar-10"])
def test_unknown_builtin_name_suggests_the_right_one(name: str) -> None:
    from imgclf.errors import DataError

    with pytest.raises(DataError, match="Did you mean"):
        inspect(name, progress=False)


def test_same_file_in_two_classes_is_a_conflicting_duplicate(tmp_path: Path) -> None:
    from PIL import Image

    rng = np.random.default_rng(1)
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        for k in range(3):
            Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(
                tmp_path / cls / f"{k}.png"
            )
    (tmp_path / "b" / "copy.png").write_bytes((tmp_path / "a" / "0.png").read_bytes())
    report = inspect(tmp_path, val_split=0.0, progress=False)
    assert len(report.duplicates) == 1
    group = report.duplicates[0]
    assert group["conflicting_labels"] and not group["across_splits"]
    assert {i["label"] for i in group["items"]} == {"a", "b"}
