"""The learning-rate range test (Leslie Smith, 2015; fastai's ``lr_find``).

A stage's trainable parameters train for up to ``num_steps`` batches while the learning rate
grows exponentially from ``start_lr`` to ``end_lr``. The loss of every step is smoothed by a
bias-corrected moving average, and the test stops once the smoothed loss passes 4x its best or
stops being finite: beyond that the curve only shows divergence. Weights, freezing, train mode
and the global RNGs are restored afterwards, so a range test changes nothing.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np
import torch

from imgclf.config import Config
from imgclf.errors import ConfigError, ImgclfError, did_you_mean
from imgclf.models.freeze import apply_policy
from imgclf.progressbar import progress_bar
from imgclf.runtime import Runtime
from imgclf.train.callbacks import standard_callbacks
from imgclf.train.checkpoint import BestWeights
from imgclf.train.loop import fit, optimizer_step
from imgclf.train.parts import Stage, StageParts
from imgclf.train.setup import build_parts

if TYPE_CHECKING:
    import pandas as pd

    from imgclf.data.batches.loader import BatchLoader
    from imgclf.models.network import ImageModel

MIN_STEPS = 5
SMOOTHING = 0.98  # beta of the moving average, as fastai
DIVERGENCE = 4.0  # stop once the smoothed loss exceeds this many times its best
SKIP_END = 5  # the last points (about to diverge) take no part in the suggestion, as fastai


@dataclass
class LRFinderResult:
    """The curve of a range test and the learning rates read from it.

    ``lrs`` are the learning rates of the first parameter group (the head: the ``lr``, or for
    the finetune stage the ``finetune_lr``, that a run sets); other groups kept their ratio.
    """

    stage: str
    lrs: list[float]
    losses: list[float]  # smoothed
    raw_losses: list[float]
    suggestion: float  # the valley rule
    minimum: float  # the lr at the minimum smoothed loss
    steepest: float  # the lr where the smoothed loss falls fastest (per log lr)
    stop_reason: str
    num_steps: int  # requested; ``steps`` were run

    @property
    def steps(self) -> int:
        return len(self.lrs)

    def to_rows(self) -> list[dict[str, float]]:
        """One row per step: step (1-based), lr, loss (smoothed), raw_loss."""
        columns = zip(self.lrs, self.losses, self.raw_losses, strict=True)
        return [
            {"step": i + 1, "lr": lr, "loss": loss, "raw_loss": raw}
            for i, (lr, loss, raw) in enumerate(columns)
        ]

    def to_frame(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(self.to_rows(), columns=["step", "lr", "loss", "raw_loss"])


def check_range(num_steps: int, start_lr: float, end_lr: float) -> None:
    """Reject a range test that cannot produce a readable curve (before any work is done)."""
    if num_steps < MIN_STEPS:
        raise ConfigError(
            f"num_steps must be at least {MIN_STEPS} to give a curve to read, received "
            f"{num_steps}. Use e.g. 100 (the default)."
        )
    if not 0 < start_lr < end_lr:
        raise ConfigError(
            f"The range test needs 0 < start_lr < end_lr, received start_lr={start_lr} and "
            f"end_lr={end_lr}. The defaults are 1e-07 and 10."
        )


def select_stage(stages: list[Stage], name: str | None) -> int:
    """The index of the stage called ``name`` (None: the first stage)."""
    names = [stage.name for stage in stages]
    if name is None:
        return 0
    if name in names:
        return names.index(name)
    hint = (
        " The finetune stage exists for mode finetune with pretrained weights and "
        "finetune_epochs > 0."
        if name == "finetune"
        else did_you_mean(name, names)
    )
    raise ConfigError(f"This run has no stage '{name}'; its stages are: {', '.join(names)}.{hint}")


def lr_range_test(
    model: ImageModel,
    stages: list[Stage],
    cfg: Config,
    stage: str | None = None,
    num_steps: int = 100,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    progress: bool = False,
    runtime: Runtime | None = None,
) -> LRFinderResult:
    """Range-test one of a run's ``stages`` (default the first) on ``model``.

    The stages before it are fitted first, as training would (best checkpoint, early
    stopping), so the tested stage starts from the best weights, where it would start in a
    run. ``model`` is left exactly as it was.
    """
    check_range(num_steps, start_lr, end_lr)
    index = select_stage(stages, stage)
    runtime = runtime or Runtime()
    model.to(runtime.device)
    lrs = start_lr * (end_lr / start_lr) ** (np.arange(num_steps) / (num_steps - 1))
    with _restored(model, cfg.seed):
        if index:
            _fit_earlier_stages(model, stages[:index], cfg, progress, runtime)
        curve = _record(model, stages[index], cfg, [float(lr) for lr in lrs], progress, runtime)
    return _read(curve, stages[index].name, num_steps)


# ---------------------------------------------------------------- recording


@dataclass
class _Curve:
    lrs: list[float] = field(default_factory=list)
    raw: list[float] = field(default_factory=list)
    smoothed: list[float] = field(default_factory=list)
    best: float = math.inf
    average: float = 0.0
    stop_reason: str = ""

    def add(self, lr: float, loss: float) -> bool:
        """Record one step; False when the test must stop here."""
        self.average = SMOOTHING * self.average + (1 - SMOOTHING) * loss
        smoothed = self.average / (1 - SMOOTHING ** (len(self.raw) + 1))
        self.lrs.append(lr)
        self.raw.append(loss)
        self.smoothed.append(smoothed)
        if not math.isfinite(smoothed):
            self.stop_reason = f"stopped: the loss became {loss} at lr {lr:.3g}"
        elif smoothed > DIVERGENCE * self.best:
            self.stop_reason = (
                f"stopped: the smoothed loss passed {DIVERGENCE:g}x its best at lr {lr:.3g}"
            )
        self.best = min(self.best, smoothed)
        return not self.stop_reason


def _record(
    model: ImageModel, stage: Stage, cfg: Config, lrs: list[float], progress: bool, runtime
) -> _Curve:
    """Train ``stage`` one batch per lr of ``lrs`` (cycling over epochs) and record the loss."""
    if stage.policy is not None:
        apply_policy(model, stage.policy)
    parts = _parts(model, stage, cfg, runtime)
    groups = parts.optimizer.param_groups
    ratios = [group["lr"] / groups[0]["lr"] for group in groups]
    curve = _Curve()
    stage.module.train()
    with (
        closing(_cycle(parts.loader)) as batches,
        progress_bar(progress, "lr range test", len(lrs)) as advance,
    ):
        for lr, (inputs, targets) in zip(lrs, batches, strict=False):
            for group, ratio in zip(groups, ratios, strict=True):
                group["lr"] = lr * ratio
            with runtime.autocast():
                logits = stage.module(runtime.move(inputs))
            loss = parts.loss_fn(logits.float(), runtime.move(targets))
            advance()
            if not curve.add(lr, float(loss.detach())):
                break
            optimizer_step(stage.module, parts, loss, cfg.train.grad_clip)
    curve.stop_reason = curve.stop_reason or f"completed all {len(lrs)} steps"
    return curve


def _parts(model: ImageModel, stage: Stage, cfg: Config, runtime: Runtime) -> StageParts:
    """The stage's loader, optimizer and loss, its groups at their configured lrs: a constant
    schedule without warmup leaves them as built (one-cycle would rescale them and momentum)."""
    constant = stage.train.model_copy(update={"schedule": "constant", "warmup_epochs": 0.0})
    return build_parts(model, replace(stage, train=constant), cfg, runtime=runtime)


def _cycle(loader: BatchLoader) -> Iterator:
    """The loader's batches epoch after epoch, each epoch in its own seeded order."""
    epoch = 0
    while True:
        loader.set_epoch(epoch)
        yield from loader
        epoch += 1


def _fit_earlier_stages(
    model: ImageModel,
    stages: list[Stage],
    cfg: Config,
    progress: bool,
    runtime: Runtime | None = None,
):
    """Fit ``stages`` keeping the best weights (in memory) with training's early stopping, then
    load the best; the epoch table shows when progress is on."""
    first = stages[0]
    steps = -(-len(first.data.train) // first.train.batch_size)
    best = BestWeights()
    train = cfg.train.model_copy(update={"time_limit": None, "callbacks": []})
    callbacks = standard_callbacks(
        train,
        len(first.data.val) > 0,
        lambda: best.save(model),
        progress=(steps, first.train.batch_size) if progress else None,
    )
    fit(model, stages, cfg, callbacks, runtime=runtime, best=best)
    best.load_into(model)


@contextmanager
def _restored(model: ImageModel, seed: int) -> Iterator[None]:
    """Run the body seeded, then put back the weights and buffers, what trains, the frozen
    BatchNorm list, the train/eval mode and the global torch and NumPy RNG states."""
    weights = {name: value.detach().clone() for name, value in model.state_dict().items()}
    trainable = {name: param.requires_grad for name, param in model.named_parameters()}
    frozen_bn, training = list(model.frozen_bn), model.training
    torch_rng, numpy_rng = torch.get_rng_state(), np.random.get_state()
    torch.manual_seed(seed)
    try:
        yield
    finally:
        model.load_state_dict(weights)
        for name, param in model.named_parameters():
            param.requires_grad_(trainable[name])
        model.frozen_bn = frozen_bn
        model.train(training)
        torch.set_rng_state(torch_rng)
        np.random.set_state(numpy_rng)


# ---------------------------------------------------------------- reading the curve


def _read(curve: _Curve, stage: str, num_steps: int) -> LRFinderResult:
    lrs, losses = suggestion_window(curve.lrs, curve.smoothed, num_steps)
    return LRFinderResult(
        stage=stage,
        lrs=curve.lrs,
        losses=curve.smoothed,
        raw_losses=curve.raw,
        suggestion=float(lrs[valley(losses)]),
        minimum=float(lrs[int(np.argmin(losses))]),
        steepest=float(lrs[steepest(lrs, losses)]),
        stop_reason=curve.stop_reason,
        num_steps=num_steps,
    )


def suggestion_window(
    lrs: list[float], losses: list[float], num_steps: int
) -> tuple[np.ndarray, np.ndarray]:
    """The part of the curve the suggestions read, as fastai: the finite points, without the
    first tenth of the planned steps (the average is still settling) and the last few (the
    loss is about to blow up). A short curve (an early stop) is read whole."""
    lrs, losses = np.asarray(lrs, dtype=float), np.asarray(losses, dtype=float)
    finite = np.isfinite(losses)
    end = int(np.argmin(finite)) if not finite.all() else len(losses)
    if end == 0:
        raise ImgclfError(
            "The loss was not finite from the first step of the range test, so there is no "
            "curve to read. Check the data (labels, pixel values) and the model."
        )
    window = slice(num_steps // 10, end - SKIP_END)
    if len(losses[window]) < 2:
        window = slice(0, end)
    return lrs[window], losses[window]


def valley(losses: np.ndarray) -> int:
    """fastai's default "valley" rule: the index about half-way down the longest valley.

    The longest valley is the longest strictly decreasing sequence of smoothed losses (its
    steps need not be consecutive, so noise does not cut it short), ending at the earliest
    step where that length peaks. As in fastai it is taken to span its length L back from
    that step, and the suggestion sits L/3 + L/6 steps in (indices as fastai computes them, so
    the same curve gets the same lr). Why there: the loss is still falling fast, well before
    the minimum, where the lr is already about to blow training up.
    """
    longest = np.ones(len(losses), dtype=int)
    for i in range(1, len(losses)):
        higher = losses[:i] > losses[i]
        if higher.any():
            longest[i] = longest[:i][higher].max() + 1
    end = int(np.argmax(longest))
    length = int(longest[end])
    return max(0, end - length + length // 3 + length // 6)


def steepest(lrs: np.ndarray, losses: np.ndarray) -> int:
    """The index where the smoothed loss falls fastest per unit of log lr."""
    if len(losses) < 2:
        return 0
    return int(np.argmin(np.diff(losses) / np.diff(np.log(lrs))))
