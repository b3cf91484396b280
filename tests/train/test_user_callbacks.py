"""Callbacks users add, as objects through the Python API and by name through YAML and the CLI,
see every event in order, the final metrics included; names that do not resolve are one clear
error."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from imgclf.classifier import ImageClassifier
from imgclf.cli import app
from imgclf.errors import ConfigError
from imgclf.train.callbacks import Callback, create_callback, list_callbacks, register_callback

EVENTS: list[tuple] = []


@register_callback("recorder")
class Recorder(Callback):
    """Writes each event into EVENTS."""

    def on_train_begin(self, state):
        EVENTS.append(("train_begin",))

    def on_stage_begin(self, stage, state):
        EVENTS.append(("stage_begin", stage))

    def on_epoch_begin(self, epoch, state):
        EVENTS.append(("epoch_begin", epoch))

    def on_batch_end(self, batch, logs, state):
        EVENTS.append(("batch_end", batch))

    def on_epoch_end(self, epoch, logs, state):
        EVENTS.append(("epoch_end", epoch, state.best_epoch is not None))

    def on_stage_end(self, stage, state):
        EVENTS.append(("stage_end", stage))

    def on_train_end(self, state):
        EVENTS.append(("train_end",))

    def on_run_end(self, metrics, state):
        EVENTS.append(("run_end", "test" in metrics))


# tiny.yaml: 12 training images, batch 8 -> 2 batches per epoch
EXPECTED = [
    ("train_begin",), ("stage_begin", "train"),
    ("epoch_begin", 1), ("batch_end", 0), ("batch_end", 1), ("epoch_end", 1, True),
    ("epoch_begin", 2), ("batch_end", 0), ("batch_end", 1), ("epoch_end", 2, True),
    ("stage_end", "train"), ("train_end",), ("run_end", True),
]  # fmt: skip


@pytest.fixture(autouse=True)
def _fresh_events():
    EVENTS.clear()


def test_an_object_through_the_api_sees_every_event_in_order(shapes: Path) -> None:
    ImageClassifier(config="tiny.yaml", epochs=2, quiet=True, callbacks=[Recorder()]).fit(shapes)
    assert EVENTS == EXPECTED


def test_a_name_through_yaml_sees_every_event_in_order(shapes: Path) -> None:
    config = Path("tiny.yaml").read_text().replace("epochs: 3", "epochs: 2, callbacks: [recorder]")
    Path("named.yaml").write_text(config)
    ImageClassifier(config="named.yaml", quiet=True).fit(shapes)
    assert EVENTS == EXPECTED


def test_an_import_path_through_the_cli(shapes: Path) -> None:
    path = f"{__name__}:Recorder"
    result = CliRunner().invoke(
        app, ["train", str(shapes), "--config", "tiny.yaml", "--epochs", "2", "--quiet",
              "--callback", path],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert EVENTS == EXPECTED
    assert f"- {path}" in Path("runs/custom-data-1/config.yaml").read_text()  # re-runnable


def test_registry_lists_and_rejects_unknown_names() -> None:
    assert {"recorder", "terminate_on_nan"} <= set(list_callbacks())
    with pytest.raises(ConfigError, match="Unknown callback 'recordr'. Did you mean 'recorder'?"):
        create_callback("recordr")
    with pytest.raises(ConfigError, match="cannot be imported"):
        create_callback("no.such.module:Thing")


def test_an_object_through_api_train_sees_every_event_and_gets_the_run(shapes: Path) -> None:
    from imgclf import api

    run = api.train(shapes, "tiny.yaml", epochs=2, quiet=True, callbacks=[Recorder()])
    assert EVENTS == EXPECTED
    assert run.path == Path("runs/custom-data-1") and run.report.is_file()
    assert [row["epoch"] for row in run.history] == [1, 2] and "test" in run.metrics
