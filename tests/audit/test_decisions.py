"""Decisions (keep, drop, relabel) from a decisions CSV: read and checked by the data room,
applied when the data is read (never a file moved), recorded by the run that trained with
them; and every bad file answered in one line with exit code 2, nothing applied, no run made."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from imgclf import api
from imgclf.classifier import ImageClassifier
from imgclf.cli import app
from imgclf.config import Config, DataConfig
from imgclf.data.formats.decisions import decide, read_decisions
from imgclf.data.formats.resolve import read_source
from imgclf.data.pipeline.prepare import prepare_data
from imgclf.errors import DataError

runner = CliRunner()
HEADER = "path,decision,label\n"


def _decisions(text: str, name: str = "decisions.csv") -> Path:
    path = Path(name)
    path.write_text(text, encoding="utf-8")
    return path


def _train(*args: str):
    return runner.invoke(app, ["train", "data", "--config", "tiny.yaml", "--epochs", "1", *args])


def _one_error_line(result) -> str:
    assert result.exit_code == 2, result.output
    [line] = result.output.strip().splitlines()
    assert "Traceback" not in result.output
    return line


def test_decisions_drop_and_relabel_at_read_time_in_every_path_form(shapes: Path) -> None:
    before = {p: p.read_bytes() for p in shapes.rglob("*.png")}
    path = _decisions(
        HEADER
        + "data/left/0.png,drop,\n"  # as issues.csv prints it (the data given as 'data')
        + "right/1.png,Drop,\n"  # relative to the data folder
        + f"{(shapes / 'left/2.png').resolve()},relabel,right\n"  # absolute
        + "./data/left/3.png,relabel,left\n"  # the label it has: nothing changes
        + "data/left/4.png,keep,\n"
        + "data/left/0.png,drop,\n"  # the same decision twice is one decision
    )
    source = read_source("data")
    decided, decisions = decide(source, path)
    assert decisions.summary() == "decisions: 2 dropped, 1 relabelled (decisions.csv)"
    assert decisions.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert decisions.keep == 1 and len(decided) == len(source) - 2
    names = [str(p) for p in decided.paths]
    assert "data/left/0.png" not in names and "data/right/1.png" not in names
    right = decided.classes.index("right")
    assert decided.labels[names.index("data/left/2.png")] == right
    assert decided.classes == source.classes
    assert {p: p.read_bytes() for p in shapes.rglob("*.png")} == before  # nothing moved


def test_a_csv_source_takes_paths_relative_to_its_folder(shapes: Path) -> None:
    rows = "".join(f"{label}/{k}.png,{label}\n" for label in ("left", "right") for k in range(3))
    Path("data/labels.csv").write_text("path,label\n" + rows)
    path = _decisions(HEADER + "left/1.png,drop,\ndata/right/2.png,relabel,left\n")
    decided, decisions = decide(read_source("data/labels.csv"), path)
    assert (len(decisions.drop), len(decisions.relabel), len(decided)) == (1, 1, 5)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("path,label\ndata/left/0.png,left\n", "has no column 'decision'"),
        ("data/left/0.png,drop\n", "has no column 'path'"),
        (HEADER + "data/left/0.png,delete,\n", "line 2: decision 'delete' is not one of keep"),
        (HEADER + "data/left/0.png,dorp,\n", "Did you mean 'drop'?"),
        (HEADER + "data/left/0.png,drop,\ndata/left/99.png,drop,\n", "line 3: 'data/left/99.png'"),
        (HEADER + "data/left/0.png,relabel,up\n", "label 'up' is not a class of the data"),
        (HEADER + "data/left/0.png,relabel,\n", "relabel of 'data/left/0.png' names no label"),
        ("path,decision\ndata/left/0.png,relabel\n", "names no label"),
        (HEADER + ",drop,\n", "line 2: no path"),
        (
            HEADER + "data/left/0.png,drop,\nleft/0.png,relabel,right\n",
            "lines 2 and 3 decide 'left/0.png' differently (drop, relabel right)",
        ),
        (HEADER + "x.png,drop,\ny.png,drop,\nz.png,drop,\n", "2 more lines have problems."),
    ],
)
def test_a_bad_decisions_file_is_one_line_exit_2_and_nothing_is_made(shapes, text, expected):
    _decisions(text)
    line = _one_error_line(_train("--decisions", "decisions.csv"))
    assert line.startswith("Error: Decisions file decisions.csv ") and expected in line
    assert line.endswith("Nothing was applied.") or "has no column" in line
    assert not Path("runs").exists()


def test_a_missing_decisions_file_is_one_line(shapes: Path) -> None:
    line = _one_error_line(_train("--decisions", "nowhere.csv"))
    assert "Decisions file nowhere.csv does not exist" in line
    assert not Path("runs").exists()


def test_nothing_is_applied_when_one_row_is_wrong(shapes: Path) -> None:
    path = _decisions(HEADER + "data/left/0.png,drop,\ndata/left/1.png,relabel,up\n")
    source = read_source("data")
    with pytest.raises(DataError, match="Nothing was applied"):
        read_decisions(path, source)
    assert len(source) == 24 and len(read_source("data")) == 24


def test_train_applies_decisions_says_so_and_records_them(shapes: Path) -> None:
    rows = "data/left/0.png,drop,\nright/1.png,drop,\nleft/2.png,relabel,right\n"
    path = _decisions(HEADER + rows)
    result = _train("--decisions", str(path), "--name", "decided")
    assert result.exit_code == 0, result.output
    assert "decisions: 2 dropped, 1 relabelled (decisions.csv)" in result.output.splitlines()
    run = Path("runs/decided")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert "decisions: decisions.csv" in (run / "config.yaml").read_text()
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["decisions"]["sha256"] == digest and metrics["decisions"]["dropped"] == 2
    report = json.loads((run / "data_report.json").read_text())
    assert report["n_images"] == 22 and report["decisions"]["relabelled"] == 1
    [started] = [
        json.loads(line)
        for line in Path("runs/ledger.jsonl").read_text().splitlines()
        if '"started"' in line
    ]
    assert started["decisions"] == {"file": "decisions.csv", "sha256": digest}
    shown = runner.invoke(app, ["runs", "show", "decided"])
    assert f"decisions: decisions.csv (sha256 {digest})" in shown.output
    quiet = _train("--decisions", str(path), "--quiet")  # said once, with the scores
    assert quiet.output.splitlines()[0] == "decisions: 2 dropped, 1 relabelled (decisions.csv)"
    # the run's own data, read again with its config (evaluation does): the decided images
    prepared = prepare_data("data", Config(**_yaml(run / "config.yaml")), decode=False)
    names = [str(p) for p in prepared.source.paths]
    assert "data/left/0.png" not in names and "data/right/1.png" not in names
    assert prepared.classes[prepared.source.labels[names.index("data/left/2.png")]] == "right"


def test_python_and_the_estimator_take_decisions(shapes: Path) -> None:
    path = _decisions(HEADER + "data/left/0.png,drop,\n")
    run = api.train("data", "tiny.yaml", decisions=path, epochs=1, quiet=True, name="py")
    assert run.config.data.decisions == path
    summary = run.metrics["decisions"]["summary"]
    assert summary == "decisions: 1 dropped, 0 relabelled (decisions.csv)"
    model = ImageClassifier(config="tiny.yaml", epochs=1, decisions=str(path), quiet=True)
    assert model.fit("data").metrics_["decisions"]["dropped"] == 1
    with pytest.raises(DataError, match="label 'up' is not a class"):
        api.train("data", "tiny.yaml", decisions=_decisions(HEADER + "left/1.png,relabel,up\n"))


def test_the_config_key_is_data_decisions() -> None:
    assert DataConfig(decisions="d.csv").decisions == Path("d.csv")
    assert api.make_config(decisions="d.csv").data.decisions == Path("d.csv")


def _yaml(path: Path) -> dict:
    import yaml

    loaded = yaml.safe_load(path.read_text())
    loaded.pop("imgclf_version", None)
    return loaded


def test_a_resume_refuses_a_decisions_file_changed_since_the_run(shapes: Path) -> None:
    path = _decisions(HEADER + "data/left/0.png,drop,\n")
    assert _train("--decisions", str(path), "--name", "r").exit_code == 0
    path.write_text(HEADER + "data/left/1.png,drop,\n", encoding="utf-8")
    line = _one_error_line(runner.invoke(app, ["train", "--resume", "runs/r", "--epochs", "2"]))
    assert "decisions.csv has changed since" in line and "restore it" in line
    path.write_text(HEADER + "data/left/0.png,drop,\n", encoding="utf-8")  # restored
    resumed = runner.invoke(app, ["train", "--resume", "runs/r", "--epochs", "2"])
    assert resumed.exit_code == 0, resumed.output
