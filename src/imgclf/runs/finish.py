"""A run's folder, first and last: the config and data report when it starts; the scores on
val and test, the bundle, metrics.json, the plots and report.html when it ends (status.json
and the ledger are runs/recording.py's).

Only the main process calls these (a non-main rank writes nothing).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from imgclf.config import Config
from imgclf.data.pipeline.prepare import PreparedData
from imgclf.layout import ONNX_NAME, PARITY_NAME
from imgclf.models.bundle import save_bundle
from imgclf.models.inference import mean_softmax, predict_rows
from imgclf.runs.calibrating import (
    Calibrated,
    calibrate,
    calibration_sentence,
    fit_sets,
    sets_sentence,
)
from imgclf.runs.explaining import heatmap_grids
from imgclf.runs.rundir import RunDir
from imgclf.train.callbacks import monitored, signals_noted
from imgclf.train.session import TrainResult


def describe_run(run: RunDir, cfg: Config, prepared: PreparedData, progress: bool) -> None:
    """Write the run's config and data report, and say what the data left out."""
    run.write_config(cfg)
    decided = prepared.decisions
    decisions = {"decisions": decided.to_dict()} if decided is not None else {}
    copies = {"copies": prepared.copies.to_dict()} if prepared.copies is not None else {}
    run.write_json(run.data_report, {**prepared.report.to_dict(), **decisions, **copies})
    leaks = check_leaks(run, prepared, cfg.data.cache_dir)
    if progress:
        from imgclf.terminal import print_line, print_warning

        if decided is not None:
            print_line(decided.summary())
        for leak in leaks:
            print_warning(f"{leak}; see {run.path / 'audit.html'}")
        together = prepared.copies.sentence() if prepared.copies is not None else None
        if together:
            print_line(together)
        line, warnings = prepared.report.left_out()
        for warning in warnings:
            print_warning(warning)
        if line:
            print_line(f"{line}; see {run.data_report}")


def check_leaks(run: RunDir, prepared: PreparedData, cache_dir: Path | None = None) -> list[str]:
    """The cheap checks (copies leaking across the run's splits, balance) into the run folder
    as audit.html, audit.json and issues.csv; ``prepared.leaks`` gets the leaked rows, so the
    scores can leave them out (a resumed session calls it again for its own scores). Returns a
    sentence per leak."""
    if prepared.cache is None:
        return []
    from imgclf.audit.inputs import audit_data
    from imgclf.audit.memo import store_beside
    from imgclf.audit.quick import leaked_rows, quick_audit
    from imgclf.audit.writer import write_audit

    data = audit_data(prepared)
    known = prepared.copies.hashes_for(data.rows) if prepared.copies is not None else None
    audit = quick_audit(data, store_beside(data.images_id, cache_dir), known)
    write_audit(audit, run.path)
    prepared.leaks = leaked_rows(audit)
    return [leak.sentence() for leak in audit.leaks] + [f"leak check: {n}" for n in audit.notes]


def finishing(progress: bool):
    """The run's last seconds (evaluation, bundle, plots, report) go on after a first Ctrl-C
    or SIGTERM, so the report is written; a second one stops at once."""
    from imgclf.terminal import print_warning

    def note(name: str) -> None:
        if progress:
            print_warning("finishing the report; press Ctrl-C again to stop at once")

    return signals_noted(note)


def write_run_artifacts(result: TrainResult, cfg: Config, run: RunDir) -> dict[str, Any]:
    """Evaluate the best model on val and test and write every artifact; return metrics.

    ``metrics["timings"]`` holds the run's parts in seconds: ``data``, ``embed`` (when the run
    embeds) and ``train`` from ``result.timings``, then ``evaluate`` (the final val/test
    scoring, calibration, the unknown score and the prediction sets) and ``report`` (bundle,
    plots and report) measured here, and ``total``, their sum.
    metrics.json is written once the splits are scored and the bundle saved (so a failed plot
    still leaves it) and again at the end with every part.
    """
    from imgclf.evaluate.metrics import evaluate_predictions, leak_free_score

    started = time.perf_counter()
    prepared, model = result.prepared, result.model
    rows_of = evaluation_rows(prepared)
    labels = {split: prepared.source.labels[rows] for split, rows in rows_of.items()}
    calibrated = _scored_and_calibrated(result, cfg, rows_of, labels)
    probs = calibrated.probs
    evaluations = {}
    for split, rows in rows_of.items():
        evaluation = evaluate_predictions(labels[split], probs[split], prepared.classes, split)
        if split in prepared.leaks:  # scored again without the copies of earlier splits' images
            leaked = prepared.leaks[split]
            evaluation.without_leaks = leak_free_score(
                labels[split], probs[split], rows, leaked, prepared.classes, split
            )
        evaluations[split] = (rows, evaluation)
    timings = {**result.timings, "evaluate": time.perf_counter() - started}
    scores = {split: evaluation.to_dict() for split, (_, evaluation) in evaluations.items()}
    metrics = run_metrics(result, scores, timings, _efficiency(result, cfg))
    metrics["calibration"] = calibrated.record
    metrics["unknown"] = _unknown(result, cfg, rows_of)
    metrics["sets"] = fit_sets(result.model, probs, labels)
    timings["evaluate"] = time.perf_counter() - started  # with the fits after training
    if not cfg.run.quiet:
        from imgclf.terminal import print_line

        print_line(calibrated.sentence())
        print_line(sets_sentence(metrics["sets"]))
    started = time.perf_counter()
    save_bundle(model, run.model, overwrite=True, extra=_headline(metrics))
    run.write_json(run.metrics, metrics)  # after the bundle: a failed save leaves the two agreeing
    if not cfg.run.quiet:
        _warn_stale_export(run)
    plots = _plots(result, cfg, run, evaluations, calibrated) if cfg.run.plots else {}
    # up to the page itself: its rendering (milliseconds) cannot be in the page it renders
    timings["report"] = time.perf_counter() - started
    timings["total"] = sum(seconds for name, seconds in timings.items() if name != "total")
    _report(result, cfg, run, metrics, plots)
    run.write_json(run.metrics, metrics)
    return metrics


def _scored_and_calibrated(
    result: TrainResult, cfg: Config, rows_of: dict[str, np.ndarray], labels: dict
) -> Calibrated:
    """The best model's probabilities on each split, calibrated on val when the run has one.
    One pass a split: with flip TTA the mean of the calibrated mirrors is not the rescaled
    mean, so each view's logits are kept and divided by the temperature."""
    model, tta = result.model, cfg.train.tta
    network, inputs = model, result.prepared.cache.images
    if result.features is not None and tta == "none":  # the same numbers, without the backbone
        network, inputs = model.classifier, result.features
    views = {
        split: predict_rows(
            network, inputs, rows, cfg.train.eval_batch_size, not cfg.run.quiet,
            result.runtime, tta=tta, logits=True,
        )
        for split, rows in rows_of.items()
    }  # fmt: skip
    scored = {split: mean_softmax(view) for split, view in views.items()}
    calibrated = calibrate(model, scored, labels, cfg.train.calibrate)
    if tta == "flip" and calibrated.temperature is not None:
        temperature, dtype = calibrated.temperature, result.runtime.autocast_dtype
        after = {split: mean_softmax(view, temperature, dtype) for split, view in views.items()}
        calibrated.measure(after, labels)
    return calibrated


def _unknown(result: TrainResult, cfg: Config, rows_of: dict[str, np.ndarray]) -> dict[str, Any]:
    if not cfg.train.unknown:
        return {"skipped": "train.unknown is false"}
    from imgclf.runs.unknowing import fit_unknown

    prepared = result.prepared
    rows = {"train": prepared.splits.train, **rows_of}
    return fit_unknown(
        result.model, rows, prepared.source.labels, prepared.cache.images, result.runtime,
        cfg.train.eval_batch_size, cfg.seed, embedded=result.embedded,
    )  # fmt: skip


def run_metrics(
    result: TrainResult,
    scores: dict[str, Any],
    timings: dict[str, float] | None = None,
    efficiency: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """metrics.json's content: the run's course (epochs, best, stop reason), where it ran, its
    timings in seconds, its efficiency (see train.efficiency), the decisions file it applied
    (its sha256 and counts) and the ``scores`` per split.
    ``best_val`` is the monitored value at the best epoch, ``final_val`` the last epoch's
    validation metrics."""
    best = result.state.best_value
    last = result.state.history[-1] if result.state.history else {}
    decided = result.prepared.decisions
    return {
        "best_epoch": result.state.best_epoch,
        "epochs_run": result.state.epoch,
        "epochs_planned": sum(result.state.planned.values()),  # before early stopping
        "stop_reason": result.state.stop_reason,
        "best_val": {"epoch": result.state.best_epoch, result.state.monitor: best},
        "final_val": {k: v for k, v in last.items() if k.startswith("val_")},
        "runtime": result.runtime.describe(),
        "timings": dict(result.timings) if timings is None else timings,
        **({"efficiency": efficiency} if efficiency else {}),
        **({"budget": result.plan.to_dict()} if result.plan is not None else {}),
        **({"decisions": decided.to_dict()} if decided is not None else {}),
        **scores,
    }


def _efficiency(result: TrainResult, cfg: Config) -> dict[str, Any]:
    """The session's images/s (data, compute), GFLOP/s and share of this machine's peak."""
    from imgclf.data.pipeline.cache import resolve_cache_dir
    from imgclf.train.efficiency import machine_peak_gflops

    meter = result.state.meter
    if not meter.images:
        return {}
    peak = machine_peak_gflops(result.runtime, resolve_cache_dir(cfg.data.cache_dir))
    return meter.summary(peak)


def _plots(
    result: TrainResult, cfg: Config, run: RunDir, evaluations: dict, calibrated: Calibrated
) -> dict[str, Path]:
    from imgclf.data.views.preview import sample_images, save_image_grid
    from imgclf.evaluate.calibration_plot import plot_reliability
    from imgclf.evaluate.plots import plot_confusion_matrix, plot_learning_curves, plot_mistakes

    prepared = result.prepared
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
        heatmaps = heatmap_grids(result.model, images, evaluation, split, run.plots)
        plots.update(heatmaps)  # the mistakes with their heatmaps, when the extra is there
        if f"mistakes ({split})" not in plots:
            plots[f"mistakes ({split})"] = plot_mistakes(
                images, evaluation.y_true, evaluation.y_pred, evaluation.confidence,
                prepared.classes, run.plots / "mistakes.png",
            )  # fmt: skip
        if split in calibrated.reliability:
            before, after = calibrated.reliability[split]
            plots[f"reliability ({split})"] = plot_reliability(
                before, after, calibrated.temperature, split, run.plots / "reliability.png"
            )
    images, titles = sample_images(prepared.source, prepared.records, seed=cfg.seed)
    plots["samples"] = save_image_grid(images, titles, run.plots / "samples.png")
    return plots


def _report(
    result: TrainResult, cfg: Config, run: RunDir, metrics: dict, plots: dict[str, Path]
) -> None:
    from imgclf.evaluate.report import write_report
    from imgclf.train.progress import epoch_span

    splits = {k: v for k, v in metrics.items() if k in ("val", "test")}
    notes = [f"stopped: {result.state.stop_reason}"] if result.state.stop_reason else []
    if not cfg.run.plots:
        notes.append("figures not drawn (plots off: --no-plots)")
    if len(result.state.planned) > 1:  # say plainly how --epochs splits over the stages
        first, parts = 1, []
        for name, epochs in result.state.planned.items():
            parts.append(f"{name} {epoch_span(first, first + epochs - 1)}")
            first += epochs
        notes.append(f"stages as planned: {', then '.join(parts)}")
    if result.state.best_epoch:
        notes.append(f"best epoch {result.state.best_epoch} of {result.state.epoch}")
    if metrics.get("calibration"):
        notes.append(calibration_sentence(metrics["calibration"]))
    if metrics.get("sets"):
        notes.append(sets_sentence(metrics["sets"]))
    write_report(
        run.report,
        title=f"imgclf run {run.name}",
        config=cfg.model_dump(mode="json"),
        data_report=result.prepared.report.to_dict(),
        history=result.state.history,
        evaluations=splits,
        plots=plots,
        timings=metrics["timings"],
        notes=notes,
        efficiency=metrics.get("efficiency"),
    )


def _warn_stale_export(run: RunDir) -> None:
    """An ONNX export of an earlier model no longer matches the bundle: say to export again."""
    import json

    from imgclf.terminal import print_warning

    try:
        record = json.loads((run.model / PARITY_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if isinstance(record, dict) and record.get("stale"):
        print_warning(
            f"{run.model / ONNX_NAME} is the model before this session, so predict no longer "
            f"uses it: export again with imgclf export {run.path} --format onnx"
        )


def _headline(metrics: dict) -> dict[str, Any]:
    return {
        split: {"accuracy": metrics[split]["accuracy"], "loss": metrics[split]["loss"]}
        for split in ("val", "test")
        if split in metrics
    }


def evaluation_rows(prepared: PreparedData) -> dict[str, np.ndarray]:
    """The splits to evaluate at the end of training (those that have images)."""
    splits = {"val": prepared.splits.val, "test": prepared.splits.test}
    return {name: rows for name, rows in splits.items() if len(rows)}
