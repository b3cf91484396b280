"""The example notebooks: committed without outputs, and run top to bottom in a real Jupyter
kernel (nbclient), with no error, every result shown as HTML or PNG, and the figure each one
prints reaching its tutorial's."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[2] / "examples" / "notebooks"


def run_notebook(name: str, folder: Path) -> nbformat.NotebookNode:
    """``name`` executed in ``folder`` (its runs and files land there)."""
    shutil.copy(NOTEBOOKS / name, folder / name)
    notebook = nbformat.read(folder / name, as_version=4)
    NotebookClient(notebook, timeout=900, kernel_name="python3",
                   resources={"metadata": {"path": str(folder)}}).execute()  # fmt: skip
    return notebook


def results(notebook: nbformat.NotebookNode) -> list[dict]:
    cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    kinds = ("execute_result", "display_data")
    return [o["data"] for cell in cells for o in cell.outputs if o.output_type in kinds]


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.name)
def test_notebooks_are_committed_without_outputs(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]


@pytest.mark.slow
def test_the_quick_start_runs_top_to_bottom(tmp_path: Path) -> None:
    notebook = run_notebook("00_quickstart.ipynb", tmp_path)
    shown = results(notebook)
    assert all("text/html" in data or "image/png" in data for data in shown)
    assert sum("image/png" in data for data in shown) == 2  # the curves, the confusion matrix
    run = nbformat.read(NOTEBOOKS / "00_quickstart.ipynb", as_version=4)
    assert len(shown) >= sum(c.cell_type == "code" for c in run.cells) - 1  # all but the import
    metrics = json.loads((tmp_path / "runs" / "quickstart" / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] >= 0.95  # make demo's recipe, a third of its epochs
