"""The end of a run: the bundle, metrics.json, plots and report.html in the run folder."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from imgclf.config import Config
from imgclf.export.bundle import save_bundle
from imgclf.models.inference import predict_rows
from imgclf.train.callbacks import monitored
from imgclf.training import TrainResult, evaluation_rows


def write_run_artifacts(result: TrainResult, cfg: Config) -> dict[str, Any]:
    """Evaluate the best model on val and test and write every artifact; return metrics.

    ``metrics["timings"]`` holds the run's parts in seconds: ``data``, ``embed`` (when the run
    embeds) and ``train`` from ``result.timings``, then ``evaluate`` (the final val/test
    scoring) and ``report`` (bundle, plots and report) measured here, and ``total``, their sum.
    metrics.json is written once the splits are scored (so a failed plot still leaves it) and
    again at the end with every part.
    """
    from imgclf.evaluate.metrics import evaluate_predictions

    started = time.perf_counter()
    prepared, run, model = result.prepared, result.run, result.model
    network, inputs = model, prepared.cache.images
    if result.features is not None:  # the same numbers, without the backbone
        network, inputs = model.classifier, result.features
    evaluations = {}
    for split, rows in evaluation_rows(prepared).items():
        probs = predict_rows(network, inputs, rows, cfg.train.eval_batch_size, not cfg.run.quiet)
        evaluations[split] = (
            rows,
            evaluate_predictions(prepared.source.labels[rows], probs, prepared.classes, split),
        )
    timings = {**result.timings, "evaluate": time.perf_counter() - started}
    metrics = {
        "best_epoch": result.state.best_epoch,
        "epochs_run": result.state.epoch,
        "epochs_planned": sum(result.state.planned.values()),  # before early stopping
        "stop_reason": result.state.stop_reason,
        "timings": timings,
        **{split: evaluation.to_dict() for split, (_, evaluation) in evaluations.items()},
    }
    run.write_json(run.metrics, metrics)
    started = time.perf_counter()
    save_bundle(model, run.model, overwrite=True, extra=_headline(metrics))
    plots = _plots(result, cfg, evaluations)
    # up to the page itself: its rendering (milliseconds) cannot be in the page it renders
    timings["report"] = time.perf_counter() - started
    timings["total"] = sum(seconds for name, seconds in timings.items() if name != "total")
    _report(result, cfg, metrics, plots)
    run.write_json(run.metrics, metrics)
    return metrics


def _plots(result: TrainResult, cfg: Config, evaluations: dict) -> dict[str, Path]:
    from imgclf.data.preview import sample_images, save_image_grid
    from imgclf.evaluate.plots import plot_confusion_matrix, plot_learning_curves, plot_mistakes

    run, prepared = result.run, result.prepared
    monitor = monitored(cfg.train.monitor, len(prepared.splits.val) > 0)
    plots = {
        "learning curves": plot_learning_curves(
            result.state.history, run.plots / "curves.png", monitor
        )
    }
    if evaluations:
        split = "test" if "test" in evaluations else "val"
        rows, evaluation = evaluations[split]
        plots["confusion matrix"] = plot_confusion_matrix(
            evaluation.confusion, prepared.classes, run.plots / "confusion.png", normalize=False
        )
        plots["confusion matrix (row-normalised)"] = plot_confusion_matrix(
            evaluation.confusion, prepared.classes, run.plots / "confusion_norm.png", normalize=True
        )
        images = np.asarray(prepared.cache.images[rows])
        plots[f"mistakes ({split})"] = plot_mistakes(
            images, evaluation.y_true, evaluation.y_pred, evaluation.confidence, prepared.classes,
            run.plots / "mistakes.png",
        )  # fmt: skip
    images, titles = sample_images(prepared.source, prepared.records, seed=cfg.seed)
    plots["samples"] = save_image_grid(images, titles, run.plots / "samples.png")
    return plots


def _report(result: TrainResult, cfg: Config, metrics: dict, plots: dict[str, Path]) -> None:
    from imgclf.evaluate.report import write_report

    splits = {k: v for k, v in metrics.items() if k in ("val", "test")}
    notes = [f"stopped: {result.state.stop_reason}"] if result.state.stop_reason else []
    if len(result.state.planned) > 1:  # say plainly how --epochs splits over the stages
        first, parts = 1, []
        for name, epochs in result.state.planned.items():
            parts.append(f"{name} epochs {first}-{first + epochs - 1}")
            first += epochs
        notes.append(f"stages as planned: {', then '.join(parts)}")
    if result.state.best_epoch:
        notes.append(f"best epoch {result.state.best_epoch} of {result.state.epoch}")
    write_report(
        result.run.report,
        title=f"imgclf run {result.run.name}",
        config=cfg.model_dump(mode="json"),
        data_report=result.prepared.report.to_dict(),
        history=result.state.history,
        evaluations=splits,
        plots=plots,
        timings=metrics["timings"],
        notes=notes,
    )


def _headline(metrics: dict) -> dict[str, Any]:
    return {
        split: {"accuracy": metrics[split]["accuracy"], "loss": metrics[split]["loss"]}
        for split in ("val", "test")
        if split in metrics
    }
