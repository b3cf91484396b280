"""clean.csv (``--write-clean``): the usable images less every flagged one, as a table imgclf
trains on; from the command line and from Python, and its two refusals in one line."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tests.audit.conftest import SIZE, noise_folder, relative, tiny_config
from typer.testing import CliRunner

from imgclf import api
from imgclf.audit.clean import COPY_KINDS, clean_rows, write_clean
from imgclf.cli import app
from imgclf.data.formats.resolve import read_source
from imgclf.errors import ConfigError

runner = CliRunner()


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_clean_rows_leave_out_every_flagged_image_but_the_first_copy(planted, planted_audit):
    audit = planted_audit
    kept = set(clean_rows(audit).tolist())
    names = {row: relative(planted, audit.data.names[row]) for row in audit.data.rows}
    planted_bad = set(planted.flagged) | planted.unreadable | set(planted.leaks)
    assert not {names[row] for row in kept} & (planted_bad | planted.conflicting)
    assert "train/circles/reencoded_circle03.jpg" not in {names[row] for row in kept}
    others = {i.row for i in audit.issues if i.kind not in COPY_KINDS}
    firsts = {g.members[0] for g in audit.groups if not g.conflicting}
    assert firsts - others <= kept  # the train original of each copy family stays
    assert "train/circles/circle03.png" in {names[row] for row in firsts}
    flagged = {i.row for i in audit.issues} - (firsts - others)
    assert kept == set(audit.data.rows.tolist()) - flagged


def test_write_clean_from_the_cli_and_train_reads_it(planted, audit_cache, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(
        app,
        ["audit", str(planted.root), "--image-size", str(SIZE), "--cache-dir", str(audit_cache),
         "-o", "out", "--write-clean", "clean.csv"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = _rows(tmp_path / "clean.csv")
    line = result.output.strip().splitlines()[-1]
    clean = (tmp_path / "clean.csv").resolve()
    assert line == f"Clean: {clean} ({len(rows)} images, every flagged one left out)"
    assert list(rows[0]) == ["path", "label", "split"]  # the planted data has split folders
    assert {r["split"] for r in rows} == {"train", "val", "test"}
    report = json.loads((tmp_path / "out/audit.json").read_text())
    assert report["files"]["clean"] == "clean.csv"
    assert len(rows) < report["n_usable"]
    tiny_config(tmp_path)
    trained = runner.invoke(app, ["train", "clean.csv", "--config", "tiny.yaml", "--quiet",
                                  "--name", "clean"])  # fmt: skip
    assert trained.exit_code == 0, trained.output
    data = json.loads((tmp_path / "runs/clean/data_report.json").read_text())
    assert data["n_images"] == len(rows) and data["problems"] == []


def test_write_clean_from_python_writes_paths_under_its_folder_relatively(tmp_path, audit_cache):
    noise_folder(tmp_path / "data", ("a", "b"), side=40)
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(tmp_path / "data/a/black.png")
    audit = api.audit(tmp_path / "data", checks="balance,properties", cache_dir=audit_cache,
                      progress=False, write_clean=tmp_path / "clean.csv")  # fmt: skip
    rows = _rows(tmp_path / "clean.csv")
    assert audit.clean == len(rows) == 6 and audit.files["clean"] == str(tmp_path / "clean.csv")
    assert list(rows[0]) == ["path", "label"]  # no split of its own: training splits it
    assert "data/a/black.png" not in {r["path"] for r in rows}
    source = read_source(tmp_path / "clean.csv")
    assert len(source) == 6 and not source.skipped and source.classes == ["a", "b"]
    elsewhere = tmp_path / "out" / "clean.csv"
    write_clean(replace(audit, files={}), elsewhere)
    assert _rows(elsewhere)[0]["path"].startswith(str(tmp_path / "data"))  # absolute


def test_write_clean_refuses_arrays_and_the_data_s_own_csv(tmp_path, audit_cache, monkeypatch):
    monkeypatch.chdir(tmp_path)
    images = np.random.default_rng(0).integers(0, 256, (6, 16, 16, 3), dtype=np.uint8)
    with pytest.raises(ConfigError, match="holds its images in an array"):
        api.audit((images, np.array([0, 1] * 3)), checks="balance", cache_dir=audit_cache,
                  progress=False, write_clean=tmp_path / "clean.csv")  # fmt: skip
    assert not (tmp_path / "clean.csv").exists()
    np.savez(tmp_path / "set.npz", x=images, y=np.array([0, 1] * 3))
    result = runner.invoke(app, ["audit", str(tmp_path / "set.npz"), "--checks", "balance",
                                 "--write-clean", str(tmp_path / "clean.csv")])  # fmt: skip
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
    table = tmp_path / "labels.csv"
    for i in range(4):
        Image.fromarray(images[i]).save(tmp_path / f"{i}.png")
    table.write_text("path,label\n" + "".join(f"{i}.png,{'ab'[i % 2]}\n" for i in range(4)))
    with pytest.raises(ConfigError, match="is the data's own CSV"):
        api.audit(table, checks="balance", cache_dir=audit_cache, progress=False, val_split=0,
                  write_clean=table)  # fmt: skip
    assert table.read_text().startswith("path,label\n0.png,a")
