"""The README's picture of a notebook mid-training: the quick start's training cell, run in a
real kernel, its live display captured as it stood when epoch ``--at`` finished (the status
line on the next epoch), written into a copy of the notebook, rendered to HTML by
nbconvert and photographed by headless Chromium.

    python examples/notebooks/screenshot.py --out docs/notebook/training.png
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from pathlib import Path

import nbformat
from jupyter_client.manager import start_new_kernel
from nbconvert import HTMLExporter

HERE = Path(__file__).resolve().parent


def capture(folder: Path, cells: list[str], at: int) -> dict:
    """Run ``cells`` in a kernel in ``folder``; the live display's bundle once its status line
    shows epoch ``at + 1`` (so ``at`` epochs are in the table)."""
    manager, client = start_new_kernel(kernel_name="python3", cwd=str(folder))
    try:
        for cell in cells[:-1]:
            client.execute_interactive(cell, timeout=300, output_hook=lambda message: None)
        shown: dict = {}

        def watch(message: dict) -> None:
            data = message["content"].get("data", {})
            if not shown and f"epoch {at + 1}/" in data.get("text/plain", ""):
                shown.update(data)
                manager.interrupt_kernel()  # the picture is taken: no need to finish

        client.execute_interactive(cells[-1], timeout=600, output_hook=watch)
        if not shown:
            raise SystemExit(f"the display never showed epoch {at + 1}")
        return shown
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/notebook/training.png"))
    parser.add_argument("--at", type=int, default=5, help="epochs finished in the picture")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    args = parser.parse_args()
    notebook = nbformat.read(HERE / "00_quickstart.ipynb", as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    training = next(i for i, cell in enumerate(code) if ".fit(" in cell.source)
    with tempfile.TemporaryDirectory() as folder:
        shown = capture(Path(folder), [cell.source for cell in code[: training + 1]], args.at)
        picture = nbformat.v4.new_notebook(cells=[code[training]])
        picture.cells[0].outputs = [nbformat.v4.new_output("display_data", data=shown)]
        picture.cells[0].execution_count = training + 1
        html, _ = HTMLExporter().from_notebook_node(picture)
        page = Path(folder) / "page.html"
        page.write_text(html, encoding="utf-8")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [args.chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             "--window-size=1000,460", f"--screenshot={args.out.resolve()}", page.as_uri()],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
