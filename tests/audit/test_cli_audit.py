"""`imgclf audit` from the command line: the summary and the files, and every kind of bad input
answered in one line with exit code 2 (never a traceback)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from tests.audit.conftest import SIZE
from typer.testing import CliRunner

from imgclf.cli import app
from imgclf.models import extras
from imgclf.models.extras import Extra

runner = CliRunner()


def _audit(*args: str):
    return runner.invoke(app, ["audit", *args], prog_name="imgclf")


def _one_error_line(result) -> str:
    assert result.exit_code == 2, result.output
    [line] = result.output.strip().splitlines()
    assert "Traceback" not in result.output
    return line


def test_audit_prints_a_short_summary_and_writes_three_files(planted, audit_cache, tmp_path):
    out = tmp_path / "out"
    result = _audit(str(planted.root), "--image-size", str(SIZE), "--cache-dir", str(audit_cache),
                    "-o", str(out))  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert "leak: 2 test images have near-duplicates in train (1 of them an exact copy)" in lines
    assert any(line.startswith("label issues: ") for line in lines)
    assert "unreadable: 2 files (left out of every check)" in lines
    assert any(line.startswith("image properties: 1 dark") for line in lines)
    assert lines[-2] == f"Report: {(out / 'audit.html').resolve()}"
    assert len(lines) <= 12
    assert {p.name for p in out.iterdir()} == {"audit.html", "audit.json", "issues.csv"}


def test_audit_writes_a_new_numbered_folder_by_default(planted, audit_cache, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = [str(planted.root), "--checks", "balance", "--cache-dir", str(audit_cache), "--json"]
    for number in (1, 2):
        result = _audit(*args)
        assert result.exit_code == 0, result.output
        report = json.loads(result.output)
        assert report["files"]["page"] == f"runs/audit/data-{number}/audit.html"
        assert report["balance"]["imbalance_ratio"] == 1.0 and report["groups"] == []


def test_one_class_data_runs_every_check_that_needs_one(tmp_path, audit_cache):
    folder = tmp_path / "cats" / "cat"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    Image.fromarray(np.zeros((24, 24, 3), np.uint8)).save(folder / "black.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    result = _audit(str(tmp_path / "cats"), "--image-size", "32", "--cache-dir", str(audit_cache),
                    "-o", str(tmp_path / "out"))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "class balance: one class (cat, 5 images), no ratio to give" in result.output
    assert "duplicates: none found" in result.output
    assert "labels: need two classes to compare, the data has one" in result.output
    assert "image properties: 1 dark, 1 uniform" in result.output
    assert "unreadable: 1 files" in result.output


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--checks", "dupes"], "checks"),
        (["--checks", ""], "at least one check"),
        (["--hash-distance", "-1"], "hash_distance"),
        (["--min-similarity", "2"], "min_similarity"),
        (["--min-alignment", "1.5"], "min_alignment"),
        (["--neighbors", "0"], "neighbors"),
        (["--folds", "1"], "folds"),
        (["--set", "label_threshold=2"], "label_threshold"),
        (["--set", "darkk=0.1"], "Did you mean 'dark'?"),
        (["--set", "max_shown=0"], "max_shown"),
        (["--set", "nonsense"], "KEY=VALUE"),
        (["--set", "epochz=3"], "Unknown config key 'epochz'"),
        (["--min-similarity", "high"], "'--min-similarity'"),
        (["--image-size", "0"], "image_size"),
        (["--device", "tpu"], "tpu"),
    ],
)
def test_a_bad_option_is_one_line_and_exit_2(planted, tmp_path, args, expected):
    result = _audit(str(planted.root), "-o", str(tmp_path / "out"), *args)
    assert expected in _one_error_line(result)
    assert not (tmp_path / "out").exists()


def test_missing_and_empty_data_are_one_line(tmp_path):
    assert "does not exist" in _one_error_line(_audit(str(tmp_path / "nowhere")))
    (tmp_path / "empty").mkdir()
    assert "no class folders with images" in _one_error_line(_audit(str(tmp_path / "empty")))


def test_a_missing_extra_names_the_pip_command(planted, monkeypatch, tmp_path, audit_cache):
    monkeypatch.setattr(extras, "AUDIT", Extra("audit", ("imgclf_no_such_module",)))
    line = _one_error_line(_audit(str(planted.root), "-o", str(tmp_path / "out")))
    assert line.endswith("pip install 'imgclf[audit]'.")
    result = _audit(str(planted.root), "--checks", "balance,properties",
                    "--cache-dir", str(audit_cache), "-o", str(tmp_path / "out"))  # fmt: skip
    assert result.exit_code == 0, result.output  # the checks that need no extra still run
