"""R4, made by imgclf: a sweep over the study group's own axes on imagenette2-224-subset with
the frozen EfficientNet-Lite0, the tutorial's settings enqueued as trial 0 (the baseline), a
30-minute budget on this CPU, median pruning.

Prints R4's table (trial, settings, wall time, val and test accuracy, stop), how many trials
ran and were pruned, the best trial against trial 0 (their ratio), and what vertical flip did;
writes the study's compare.html (and its PNGs).

    python -m benchmarks.r4_sweep --data ../shared/datasets/imagenette2-224-subset --budget 30m
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.common import machine
from imgclf import api

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
AXES = {  # column title: config key
    "px": "data.image_size", "batch": "train.batch_size", "optimizer": "train.optimizer",
    "lr": "train.lr", "pooling": "model.head.pooling", "head": "model.head.dense",
    "vflip": "augment.vertical_flip", "rotation": "augment.rotation_range",
}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--budget", default="30m")
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=30, help="each trial's most (pruning cuts)")
    parser.add_argument("--project", type=Path, default=None)
    parser.add_argument("--study", default="r4")
    args = parser.parse_args()
    project = args.project or Path(tempfile.mkdtemp(prefix="imgclf-r4-")) / "runs"
    print(f"machine: {machine()}; project {project}")
    began = time.perf_counter()
    result = api.sweep(
        args.data,
        EXAMPLES / "spaces" / "r4.yaml",
        trials=args.trials,
        budget=args.budget,
        study=args.study,
        enqueue=EXAMPLES / "r4_tutorial.yaml",
        config=EXAMPLES / "r4_tutorial.yaml",
        epochs=args.epochs,
        project=project,
        quiet=True,
        say=print,
    )
    wall = time.perf_counter() - began
    rows = {row["name"]: row for row in api.runs(project, where={"run.study": args.study})}
    print(f"\nsweep wall time {wall:.0f} s for a budget of {args.budget}")
    table(result, rows, project)
    summary(result, rows)
    report = api.sweep_report(args.study, project=project)
    print(f"\ncompare.html: {report.files['page']}")


def _settings(project: Path, run: str) -> dict:
    config = api.show_run(run, project)["config"]
    values = {}
    for title, key in AXES.items():
        node = config
        for part in key.split("."):
            node = node[part]
        values[title] = node
    values["epochs"] = config["train"]["epochs"]
    return values


def table(result, rows: dict, project: Path) -> None:
    header = ["trial", *AXES, "epochs run", "wall s", "val acc", "test acc", "stop"]
    print("\n| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for trial in result.trials:
        row = rows.get(trial["run"] or "", {})
        if not row:
            continue
        settings = _settings(project, trial["run"])
        cells = [f"{trial['trial']}{' (tutorial)' if trial['enqueued'] else ''}"]
        cells += [_fmt(settings[title]) for title in AXES]
        cells += [
            str(row["epochs"]),
            _fmt(trial["wall_seconds"], 0),
            _fmt(row["val_accuracy"], 3),
            _fmt(row["test_accuracy"], 3),
            trial["stop"] or trial["state"],
        ]
        print("| " + " | ".join(cells) + " |")


def summary(result, rows: dict) -> None:
    states = [t["state"] for t in result.trials]
    print(f"\ntrials: {len(states)} ({', '.join(f'{states.count(s)} {s}' for s in set(states))})")
    by_trial = {t["trial"]: rows.get(t["run"] or "", {}) for t in result.trials}
    first, best = by_trial.get(0, {}), by_trial.get(result.best["trial"], {}) if result.best else {}
    for name, row in (("trial 0 (tutorial)", first), ("best", best)):
        if row:
            scores = f"val {row['val_accuracy']:.3f} test {row['test_accuracy']:.3f}"
            print(f"{name}: {row['name']} {scores}")
    if first and best:
        ratio = best["test_accuracy"] / first["test_accuracy"]
        print(f"best / tutorial, test accuracy: {ratio:.2f}")
    for flip in (False, True):
        scored = [
            by_trial[t["trial"]]
            for t in result.trials
            if t["state"] == "complete" and t["params"].get("augment.vertical_flip") is flip
        ]
        if scored:
            val = statistics.mean(r["val_accuracy"] for r in scored)
            test = statistics.mean(r["test_accuracy"] for r in scored)
            print(f"vertical_flip={flip}: {len(scored)} complete trials, mean val {val:.3f}, "
                  f"mean test {test:.3f}")  # fmt: skip


def _fmt(value, digits: int | None = None) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and digits is not None:
        return f"{value:.{digits}f}"
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, list) and len(value) == 2 and value[0] == value[1]:
        return str(value[0])  # a square image size
    if isinstance(value, list):
        return "-".join(map(str, value)) or "none"
    return str(value)


if __name__ == "__main__":
    main()
