"""CLI start-up (issue 23): wall time and import time of `imgclf --version`, `imgclf --help` and
`imgclf runs list` (on a generated 200-run ledger), and the heavy packages each one imports.

    python -m benchmarks.startup --repeats 10 --runs 200

Each command runs as `python -m imgclf ...` in a fresh process: wall time is the min and median
of ``--repeats`` runs; import time is one extra run under `python -X importtime` (the sum of
the top-level imports' cumulative times), which also names the heavy packages it loaded.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HEAVY = ("torch", "timm", "matplotlib", "sklearn", "pandas", "optuna", "onnx", "onnxruntime")
MODELS = ("cnn", "deep_cnn", "efficientnet_lite0", "resnet18", "small_cnn")


def write_ledger(project: Path, runs: int = 200) -> Path:
    """A ledger of ``runs`` finished runs as training records them (started, then finished),
    with the settings, scores and timings `runs list` shows; no run folders."""
    from imgclf.runs.ledger import append_record, ledger_path

    for k in range(runs):
        model = MODELS[k % len(MODELS)]
        config = {
            "data": {"source": f"/data/set{k % 3}", "image_size": 32 if "cnn" in model else 224},
            "model": {"name": model, "mode": "finetune", "pretrained": True},
            "train": {"epochs": 5 + k % 4, "finetune_epochs": 3, "lr": 0.001 * (1 + k % 5),
                      "batch_size": 64, "optimizer": "adamw"},
        }  # fmt: skip
        name = f"{model}-{k:04d}"
        append_record(project, "started", name, config=config, seed=k)
        scores = {"accuracy": 0.5 + (k % 50) / 100, "loss": 1.0 - (k % 50) / 100}
        append_record(
            project, "finished", name, epochs_planned=config["train"]["epochs"],
            epochs_run=config["train"]["epochs"], best_epoch=k % 5 + 1, stop="completed",
            metrics={"val": scores, "test": scores}, timings={"train": 60.0 + k},
            wall_seconds=70.0 + k, efficiency={"compute_images_per_second": 900.0 + k},
        )  # fmt: skip
    return ledger_path(project)


def wall_seconds(argv: list[str], repeats: int, env: dict[str, str]) -> list[float]:
    """Wall seconds of ``repeats`` runs of ``argv`` (after one unmeasured warm-up run)."""
    times = []
    for _ in range(repeats + 1):
        began = time.perf_counter()
        subprocess.run(argv, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - began)
    return times[1:]


def import_profile(args: list[str], env: dict[str, str]) -> tuple[float, list[str]]:
    """(seconds of imports, heavy packages imported) of `python -X importtime -m imgclf ARGS`."""
    argv = [sys.executable, "-X", "importtime", "-m", "imgclf", *args]
    err = subprocess.run(argv, env=env, check=True, capture_output=True, text=True).stderr
    total, loaded = 0, set()
    for line in err.splitlines():
        parts = line.split("|")
        if not line.startswith("import time:") or len(parts) != 3 or "[us]" in line:
            continue
        name = parts[2].rstrip()
        if not name.startswith("  "):  # top level: its cumulative time holds its children's
            total += int(parts[1])
        loaded.add(name.strip().split(".")[0])
    return total / 1e6, [name for name in HEAVY if name in loaded]


def cpu_name() -> str:
    """The CPU's model name (Linux's /proc/cpuinfo, else platform's guess) and its core count."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        name = next(line.split(":", 1)[1].strip() for line in lines if "model name" in line)
    except (OSError, StopIteration):
        name = platform.processor() or platform.machine()
    return f"{name}, {os.cpu_count()} cores"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10, help="timed runs per command")
    parser.add_argument("--runs", type=int, default=200, help="runs in the generated ledger")
    args = parser.parse_args()
    env = {**os.environ, "COLUMNS": "200"}
    print(f"machine: {cpu_name()}; Python {platform.python_version()}; {args.repeats} runs each")
    with tempfile.TemporaryDirectory(prefix="imgclf-startup-") as scratch:
        project = Path(scratch) / "runs"
        write_ledger(project, args.runs)
        commands = {
            "imgclf --version": ["--version"],
            "imgclf --help": ["--help"],
            f"imgclf runs list ({args.runs} runs)": ["runs", "list", "--project", str(project)],
        }
        print(f"{'command':32s} {'wall min':>9s} {'median':>8s} {'imports':>8s}  heavy imported")
        for label, command in commands.items():
            argv = [sys.executable, "-m", "imgclf", *command]
            times = wall_seconds(argv, args.repeats, env)
            imports, heavy = import_profile(command, env)
            print(f"{label:32s} {min(times):8.3f}s {statistics.median(times):7.3f}s "
                  f"{imports:7.3f}s  {', '.join(heavy) or '-'}")  # fmt: skip


if __name__ == "__main__":
    main()
