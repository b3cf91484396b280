"""An audit stopped with Ctrl-C leaves its caches usable: stopped at each cache write in turn
(the decoded images, the embeddings, the stored hashes, statistics and label probabilities),
it exits with 130 and one line, leaves no half-written file, and the audit run again finishes
with the findings of an audit that was never stopped."""

from __future__ import annotations

import os
from pathlib import Path

from tests.audit.conftest import SIZE
from typer.testing import CliRunner

from imgclf.cli import app

runner = CliRunner()


def test_ctrl_c_at_each_cache_write_in_turn_then_the_audit_finishes_as_if_never_stopped(
    planted, planted_audit, tmp_path, monkeypatch
) -> None:
    cache = tmp_path / "cache"
    replace = os.replace
    stopped_before: list[Path] = []  # each run is stopped before one more cache file

    def ctrl_c_before_a_new_cache_file(source, target) -> None:
        """Ctrl-C at the worst moment: a cache file's bytes written under a temporary name,
        not yet renamed into place; the files an earlier run was stopped before go through."""
        target = Path(target)
        if target.is_relative_to(cache) and target not in stopped_before:
            stopped_before.append(target)
            raise KeyboardInterrupt
        replace(source, target)

    monkeypatch.setattr(os, "replace", ctrl_c_before_a_new_cache_file)
    args = ["audit", str(planted.root), "--image-size", str(SIZE), "--cache-dir", str(cache)]
    for stops in range(30):
        result = runner.invoke(app, [*args, "-o", str(tmp_path / f"out{stops}")])
        if result.exit_code == 0:
            break
        assert result.exit_code == 130, result.output
        assert result.output.strip().splitlines() == [
            "interrupted; files already written are complete"
        ]  # fmt: skip
        assert not [p for p in cache.rglob("*") if p.name.endswith(".tmp")]  # no half file
    assert result.exit_code == 0, result.output
    kinds = {path.parent.name for path in stopped_before}
    assert stops == len(stopped_before) and kinds == {"scans", "images", "embeddings", "audit"}
    finished = (tmp_path / f"out{stops}" / "issues.csv").read_text(encoding="utf-8")
    never_stopped = Path(planted_audit.files["issues"]).read_text(encoding="utf-8")
    assert finished == never_stopped
