"""The CLI starts at once (issue 23): commands that compute nothing import none of the heavy
packages. How fast it starts is measured by benchmarks/startup.py, not asserted here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("torch", "timm", "matplotlib", "sklearn", "pandas", "optuna", "onnx", "onnxruntime")


def imported(*args: str) -> set[str]:
    """The top-level packages `python -X importtime -m imgclf ARGS` imports (it must exit 0)."""
    argv = [sys.executable, "-X", "importtime", "-m", "imgclf", *args]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
    lines = [line.split("|") for line in done.stderr.splitlines() if line.startswith("import")]
    return {parts[2].strip().split(".")[0] for parts in lines if len(parts) == 3}


@pytest.mark.parametrize(
    "args", [["--version"], ["--help"], ["export", "--help"], ["train", "--help"]]
)
def test_help_and_version_import_no_heavy_package(args: list[str]) -> None:
    loaded = imported(*args)
    assert "imgclf" in loaded and not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_runs_list_imports_no_heavy_package(tmp_path: Path) -> None:
    from imgclf.runs.ledger import append_record

    project = tmp_path / "runs"
    for name, model in (("a", "cnn"), ("b", "efficientnet_lite0")):
        append_record(project, "started", name, config={"model": {"name": model}})
        append_record(project, "finished", name, metrics={"val": {"accuracy": 0.5}})
    loaded = imported("runs", "list", "--project", str(project))
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_the_cheap_name_lists_match_their_registries() -> None:
    from imgclf.export.registry import BUILTIN_FORMATS, format_names, list_exporters
    from imgclf.models.recipes import list_recipes
    from imgclf.runs.registry import BUILTIN_RECIPES

    assert sorted(BUILTIN_RECIPES) == list_recipes()
    assert set(BUILTIN_FORMATS) <= set(list_exporters()) and format_names() == list_exporters()


def test_a_run_without_torchvision_augmentations_does_not_import_it(tmp_path: Path) -> None:
    """torchvision (1.1 s to import, 0.3 s after torch._dynamo) is for RandAugment, erasing,
    MixUp and CutMix."""
    args = ["train", "digits", "--model", "cnn", "--epochs", "1", "--image-size", "16",
            "--augment", "horizontal_flip=true", "--project", str(tmp_path), "--quiet"]  # fmt: skip
    assert "torchvision" not in imported(*args)
