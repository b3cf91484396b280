"""The audit's files: audit.json, issues.csv (one row per flagged image and kind) and a
self-contained audit.html; and where they go by default."""

from __future__ import annotations

import csv
import html
import json
from pathlib import Path

from tests.audit.conftest import noise_folder

from imgclf import api
from imgclf.audit.writer import COLUMNS


def test_audit_json_holds_the_findings(planted_audit):
    report = json.loads(Path(planted_audit.files["report"]).read_text(encoding="utf-8"))
    assert report["n_images"] == 50 and report["n_usable"] == 48
    assert report["counts"] == planted_audit.counts()
    assert [leak["summary"] for leak in report["leaks"]] == [
        "2 test images have near-duplicates in train (1 of them an exact copy)",
        "1 val image has near-duplicates in train",
    ]
    assert report["settings"]["hash_distance"] == planted_audit.settings.hash_distance
    assert {"data", "hashes", "embeddings", "duplicates", "properties"} <= set(report["timings"])
    assert len(report["issues"]) == len(planted_audit.issues)
    assert all(len(group["members"]) >= 2 for group in report["groups"])


def test_issues_csv_is_one_row_per_flagged_image_and_kind(planted_audit):
    with open(planted_audit.files["issues"], newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == COLUMNS
    assert len(rows) == len(planted_audit.issues)
    assert len({(r["path"], r["kind"]) for r in rows}) == len(rows)
    leak = next(
        r for r in rows if r["path"].endswith("flipped_square01.jpg") and r["kind"] == "leak"
    )
    assert leak["split"] == "test" and leak["given_label"] == "squares"
    assert leak["suggested_label"] == "" and leak["group"] != ""
    unreadable = [r for r in rows if r["kind"] == "unreadable"]
    assert len(unreadable) == 2 and all(r["detail"] and r["score"] == "" for r in unreadable)


def test_the_page_is_self_contained_and_shows_the_flagged_images(planted_audit):
    page = Path(planted_audit.files["page"]).read_text(encoding="utf-8")
    assert "http://" not in page and "https://" not in page and "<script src" not in page
    assert page.count('<div class="tile"') >= len(planted_audit.counts())
    assert "data:image/jpeg;base64," in page
    for heading in ("Duplicates and leaks", "Class balance", "Image properties", "Unreadable"):
        assert heading in page
    assert "1 val image has near-duplicates in train" in page


def test_user_text_on_the_page_is_escaped(tmp_path, audit_cache):
    noise_folder(tmp_path / "data", ("<b>bold</b>", "plain & simple"))
    result = api.audit(
        tmp_path / "data", out=tmp_path / "out", checks="balance,properties",
        cache_dir=audit_cache, progress=False,
    )  # fmt: skip
    page = Path(result.files["page"]).read_text(encoding="utf-8")
    assert "<b>bold</b>" not in page and "&lt;b&gt;bold&lt;/b&gt;" in page
    assert "plain &amp; simple" in page
    # the classes the relabel controls offer: JSON with <, > and & escaped inside the script
    start = page.index('id="audit-classes">') + len('id="audit-classes">')
    names = page[start : page.index("</script>", start)]
    assert "<" not in names and "&" not in names and json.loads(names) == result.data.classes


def test_each_tile_carries_what_the_decision_controls_need(planted, planted_audit):
    page = Path(planted_audit.files["page"]).read_text(encoding="utf-8")
    assert page.count("<script") == 2  # the class names (JSON) and the controls' script
    assert 'id="save-decisions">Save decisions.csv</button>' in page
    issue = next(i for i in planted_audit.issues if i.kind == "label_issue")
    path = planted_audit.data.names[issue.row]
    given = planted_audit.data.label_name(issue.row)
    assert (
        f'<div class="tile" data-path="{path}" data-label="{given}" '
        f'data-suggested="{issue.suggested}">' in page
    )
    leak = str(planted.root / "test/circles/exact_circle00.png")
    assert f'<div class="tile" data-path="{leak}" data-label="circles">' in page


def test_the_default_folder_is_a_new_numbered_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = api.default_audit_dir("data/my photos")
    assert first == Path("runs/audit/my_photos-1")
    first.mkdir(parents=True)
    assert api.default_audit_dir("data/my photos") == Path("runs/audit/my_photos-2")
    assert api.default_audit_dir("x", project=tmp_path / "p") == tmp_path / "p/audit/x-1"


def test_an_audit_shows_itself_in_a_notebook(planted_audit) -> None:
    page = planted_audit._repr_html_()
    assert page.startswith("<div") and "audit.html" in page and "label_issue" in page
    for line in planted_audit.summary_lines():
        assert html.escape(line) in page
    assert repr(planted_audit).startswith("Audit(") and "label_issue" in repr(planted_audit)
