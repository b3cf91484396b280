"""imgclf in a real Jupyter kernel (ipykernel, driven by nbclient and jupyter_client): the live
training display is one output updated in place and stays small, every object imgclf returns
shows as HTML (figures as PNG) with no set-up, an imgclf error is one line, and a fit
interrupted in a running kernel resumes from the next cell."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.slow

FIT = """from imgclf import ImageClassifier, api
clf = ImageClassifier("mlp", epochs=30, project="runs", name="fit30")
clf.fit("digits")"""


def execute(cells: list[str], folder: Path, raising: tuple[int, ...] = ()) -> nbformat.NotebookNode:
    """Run ``cells`` top to bottom in a new python3 kernel with ``folder`` as its working
    folder; the cells numbered in ``raising`` may end in an error."""
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    for index in raising:
        notebook.cells[index].metadata["tags"] = ["raises-exception"]
    client = NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(folder)}})  # fmt: skip
    client.execute()
    return notebook


def _data(cell, kind: str) -> list[dict]:
    return [o["data"] for o in cell.outputs if o.output_type == kind]


@pytest.fixture(scope="module")
def notebook(tmp_path_factory: pytest.TempPathFactory) -> nbformat.NotebookNode:
    folder = tmp_path_factory.mktemp("kernel")
    return execute(
        [
            FIT,
            'ev = clf.evaluate("digits")\nev',
            "ev.plot_confusion()",
            "from sklearn.datasets import load_digits\n"
            "clf.predict((load_digits().images[:12] * 16).astype('uint8'))",
            "clf.summary()",  # shown as the result, not printed too
            'one = api.train("digits", model="mlp", epochs=1, project="runs", name="one")\none',
            "api.compare([clf.run_dir_, one.path])",
            'ImageClassifier("cnn", epochs=1).fit("digits")',  # 8 px is too small for a cnn
        ],
        folder,
        raising=(7,),
    )


def test_a_fit_is_one_display_updated_in_place_and_stays_small(notebook) -> None:
    fit = notebook.cells[0]
    (live,) = _data(fit, "display_data")  # one area, however many epochs and batches
    assert live["text/html"].count("<tr>") == 31  # the header and 30 epochs
    assert "Report: " in live["text/plain"] and "report.html" in live["text/html"]
    assert "data:image/png;base64," in live["text/html"]  # the curves
    streams = "".join(o.get("text", "") for o in fit.outputs if o.output_type == "stream")
    assert "\x1b[" not in streams + live["text/plain"] and "\r" not in streams  # no ANSI, no bar
    assert len(json.dumps(fit.outputs)) < 100_000  # the saved outputs of a 30-epoch fit


def test_every_object_shows_as_html_and_figures_as_png(notebook) -> None:
    for index in (0, 1, 3, 4, 5, 6):
        (result,) = _data(notebook.cells[index], "execute_result")
        assert result["text/html"].startswith("<div"), notebook.cells[index].source
        assert "object at 0x" not in result["text/plain"]
    assert [o.output_type for o in notebook.cells[4].outputs] == ["execute_result"]
    fitted = _data(notebook.cells[0], "execute_result")[0]
    assert "fitted: val accuracy" in fitted["text/plain"] and "ImageClassifier: mlp" in fitted[
        "text/html"]  # fmt: skip
    (figure,) = _data(notebook.cells[2], "execute_result")
    assert "image/png" in figure  # no %matplotlib inline needed
    predictions = _data(notebook.cells[3], "execute_result")[0]["text/html"]
    assert "Predictions: 12 images" in predictions
    assert predictions.count("data:image/png") == 10  # the first rows' thumbnails


def test_an_imgclf_error_is_one_line_not_a_traceback(notebook) -> None:
    (error,) = [o for o in notebook.cells[7].outputs if o.output_type == "error"]
    assert error["ename"] == "MapTooSmall"
    assert len(error["traceback"]) == 1 and "needs images of at least" in error["traceback"][0]


def test_an_interrupted_fit_resumes_from_the_next_cell(tmp_path: Path) -> None:
    from jupyter_client.manager import start_new_kernel

    manager, client = start_new_kernel(kernel_name="python3", cwd=str(tmp_path))
    try:
        fit = 'from imgclf import ImageClassifier\nImageClassifier("mlp", epochs=20, ' \
              'project="runs", name="stopped").fit("digits")'  # fmt: skip
        outputs = _run(manager, client, fit, interrupt_at="    2 ")
        (error,) = [content for kind, content in outputs if kind == "error"]
        assert error["ename"] == "TrainingInterrupted" and len(error["traceback"]) == 1
        assert 'fit(data, resume="' in error["evalue"]
        resume = ('clf = ImageClassifier("mlp", epochs=20).fit("digits", resume="runs/stopped")\n'
                  "len(clf.history_), clf.metrics_['epochs_run']")  # fmt: skip
        outputs = _run(manager, client, resume)
        (result,) = [content for kind, content in outputs if kind == "execute_result"]
        assert result["data"]["text/plain"] == "(20, 20)"
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def _run(manager, client, code: str, interrupt_at: str | None = None, timeout: float = 300):
    """Execute ``code``; interrupt the kernel (as the stop button does) once the live display
    shows ``interrupt_at``. Returns (message type, content) of the cell's outputs."""
    outputs = []

    def watch(message: dict) -> None:
        nonlocal interrupt_at
        kind, content = message["msg_type"], message["content"]
        if kind == "status":
            return
        outputs.append((kind, content))
        if interrupt_at and interrupt_at in content.get("data", {}).get("text/plain", ""):
            manager.interrupt_kernel()
            interrupt_at = None

    client.execute_interactive(code, timeout=timeout, output_hook=watch)
    return outputs
