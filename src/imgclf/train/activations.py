"""Stage 2 of a staged fine-tune without the cost of its frozen blocks, where they allow it.

In a staged fine-tune's second stage, the blocks before the first unfrozen one have no
trainable weights and (BatchNorm statistics frozen, no dropout there) compute the same output
for an image every epoch, unless pixel augmentation changes the image. So when stage 2 has no
pixel augmentation, the activations entering the first unfrozen block are computed once for
the training and validation images, and stage 2 trains the rest of the network on them: each
step skips the frozen forward pass (BENCHMARKS.md, "Fine-tuning at 224 px"). When it augments
pixels, each step runs the frozen blocks without gradients through a copy with their
BatchNorm folded into the convolutions (``models/fold.py``).

The backbone is cut where running its top-level modules in order (containers opened) gives
``forward_features`` exactly, checked on a probe batch; a frozen part that is not
deterministic in training mode (BatchNorm statistics that train, dropout, stochastic depth)
is left alone. The activations live
in memory as float32 rows, up to ``MAX_BYTES``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from imgclf.config import Config
from imgclf.data.batches.augment import build_augment, build_batch_mix
from imgclf.models.fold import inference_copy
from imgclf.models.freeze import apply_policy
from imgclf.models.inference import eval_mode, inference_batch_size
from imgclf.models.network import ImageModel
from imgclf.progressbar import progress_bar
from imgclf.runtime import Runtime
from imgclf.train.parts import TrainData

MAX_BYTES = 4 << 30  # activations kept in memory at most (else stage 2 runs on pixels)


@dataclass
class CachedPrefix:
    """Stage 2's inputs and module when its frozen prefix is cached."""

    module: nn.Module  # the rest of the network, reading activation rows
    data: TrainData  # activation rows (train, then val) with their labels
    start: str  # the first module it runs (inside the timm model)
    seconds: float


# frozen_chain's answer: the chain, the index of its first trained module, or why not
FrozenChain = tuple[list[tuple[str, nn.Module]] | None, int, str | None]


class _WholeModel(nn.Module):
    """A stage's module that holds the whole ImageModel (its modes, parameters and the
    optimizer's groups are the model's own) and saves and loads the model's own keys, so that
    resume checkpoints read the same either way."""

    def __init__(self, model: ImageModel) -> None:
        super().__init__()
        self.model = model

    def state_dict(self, *args, **kwargs):
        return self.model.state_dict(*args, **kwargs)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        return self.model.load_state_dict(state_dict, strict=strict, assign=assign)

    def _modules_named(self, names: list[str]) -> list[nn.Module]:
        modules = dict(self.model.features.model.named_modules())
        return [modules[name] for name in names]


class FromActivations(_WholeModel):
    """The network from ``names[0]`` on, reading flattened activations (N, C*H*W)."""

    def __init__(self, model: ImageModel, names: list[str], shape: tuple[int, ...]) -> None:
        super().__init__(model)
        self.names, self.shape = list(names), tuple(shape)
        self.cache_seconds = 0.0  # what computing the activations took
        self._tail = self._modules_named(names)

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        x = rows.view(len(rows), *self.shape).contiguous(memory_format=torch.channels_last)
        for module in self._tail:
            x = module(x)
        return self.model.head(x)


class FoldedPrefix(_WholeModel):
    """The network on pixels, its frozen modules ``prefix`` run without gradients through a
    copy with BatchNorm folded, then ``tail`` and the head.

    The copy is made at the first forward after the weights were last loaded or moved (a
    stage starts from the best weights so far) and checked against the frozen modules on that
    batch; where folding changes the output, they run as they are."""

    def __init__(self, model: ImageModel, prefix: list[str], tail: list[str]) -> None:
        super().__init__(model)
        self._prefix, self._tail = self._modules_named(prefix), self._modules_named(tail)
        self._frozen: tuple[nn.Module, ...] = ()  # (not a submodule: no weights of its own)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        self._frozen = ()
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def _apply(self, fn, *args, **kwargs):
        self._frozen = ()
        return super()._apply(fn, *args, **kwargs)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = self.model.preprocess(pixels)
        with torch.no_grad():
            x = self._frozen_part(x)(x)
        for module in self._tail:
            x = module(x)
        return self.model.head(x)

    def _frozen_part(self, x: torch.Tensor) -> nn.Module:
        if not self._frozen:
            self._frozen = (inference_copy(nn.Sequential(*self._prefix), x[:2].float()),)
        return self._frozen[0]


def fold_frozen_prefix(model: ImageModel, found: FrozenChain) -> FoldedPrefix | None:
    """Stage 2's module on pixels with its frozen blocks folded, or None (nothing frozen before
    the first trained block, or no plain chain to cut: ``frozen_chain``)."""
    chain, cut, _ = found
    if chain is None:
        return None
    names = [name for name, _ in chain]
    return FoldedPrefix(model, names[:cut], names[cut:])


def cache_frozen_prefix(
    model: ImageModel,
    data: TrainData,
    cfg: Config,
    found: FrozenChain,
    runtime: Runtime | None = None,
    progress: bool = False,
) -> tuple[CachedPrefix | None, str | None]:
    """(the cached prefix, None), or (None, why not) when stage 2 must run on pixels; ``found``
    is ``frozen_chain``'s cut of the model."""
    train = cfg.train
    if not train.activation_cache:
        return None, None
    if build_augment(cfg.augment) is not None or build_batch_mix(cfg.augment, 2) is not None:
        return None, None  # (the usual case with augmentation: nothing to say)
    if train.progressive_sizes:
        return None, "progressive sizes change the activations"
    runtime = runtime or Runtime()
    chain, cut, why_not = found
    if chain is None:
        return None, why_not
    rows = np.concatenate([data.train, data.val])
    shape = _output_shape(model, chain[:cut], data)
    size = len(rows) * int(np.prod(shape)) * 4
    if size > MAX_BYTES:
        return None, f"their activations would take {size / 2**30:.1f} GiB"
    began = time.perf_counter()
    features = _run_prefix(model, chain[:cut], shape, data, rows, train.eval_batch_size, runtime,
                           progress)  # fmt: skip
    n_train = len(data.train)
    cached = TrainData(
        features,
        data.labels[rows],
        np.arange(n_train),
        np.arange(n_train, len(rows)),
        data.classes,
    )
    module = FromActivations(model, [name for name, _ in chain[cut:]], shape)
    module.cache_seconds = time.perf_counter() - began
    return CachedPrefix(module, cached, chain[cut][0], module.cache_seconds), None


def frozen_chain(model: ImageModel, data: TrainData, cfg: Config) -> FrozenChain:
    """(the backbone's chain of modules, the index of the first that stage 2 trains, None),
    or (None, 0, why not: None when there is nothing to say); the model's freezing is left as
    it was found. Stage 2 cuts it once, whether it then caches or folds."""
    chain = _forward_chain(model, data)
    if chain is None:
        return None, 0, "the backbone's forward is not a plain chain of modules"
    frozen = [p.requires_grad for p in model.parameters()]  # (stage 1's, put back below)
    apply_policy(model, cfg.model)
    try:
        cut = next(
            (i for i, (_, m) in enumerate(chain) if any(p.requires_grad for p in m.parameters())),
            None,
        )
        deterministic = cut is not None and _deterministic(model, chain[:cut], data)
    finally:
        for parameter, flag in zip(model.parameters(), frozen, strict=True):
            parameter.requires_grad_(flag)
    if not cut:
        return None, 0, None  # nothing frozen before the first trained block
    if not deterministic:
        return None, 0, "the frozen blocks compute differently in training mode (BatchNorm "
        "statistics that train, dropout or drop-path)"
    return chain, cut, None


def _forward_chain(model: ImageModel, data: TrainData) -> list[tuple[str, nn.Module]] | None:
    """The timm model's top-level modules (Sequential containers opened) whose running in
    order equals ``forward_features`` on a probe batch, or None."""
    items: list[tuple[str, nn.Module]] = []
    for name, child in model.features.model.named_children():
        if isinstance(child, nn.Sequential):
            items += [(f"{name}.{sub}", grandchild) for sub, grandchild in child.named_children()]
        else:
            items.append((name, child))
    x = _probe(model, data)
    with eval_mode(model), torch.inference_mode():
        target = model.features(x)
        out = x
        for index, (_, module) in enumerate(items):
            try:
                out = module(out)
            except RuntimeError:
                return None
            if out.shape == target.shape and torch.allclose(out, target, atol=1e-6):
                return items[: index + 1]
    return None


def _probe(model: ImageModel, data: TrainData) -> torch.Tensor:
    """Two training images, preprocessed as the backbone receives them."""
    pixels = torch.from_numpy(np.ascontiguousarray(data.images[data.train[:2]]))
    device = next(model.parameters()).device
    with torch.inference_mode():
        return model.preprocess(pixels.to(device).permute(0, 3, 1, 2).contiguous())


def _deterministic(model: ImageModel, prefix, data: TrainData) -> bool:
    """Whether the prefix computes the same in training mode (frozen BatchNorm kept in eval
    mode, as the loop trains) as in eval mode."""
    x = _probe(model, data)
    was = model.training
    with torch.inference_mode():
        model.eval()
        expected = _through(prefix, x)
        model.train()
        same = all(torch.equal(_through(prefix, x), expected) for _ in range(2))
    model.train(was)
    return same


def _output_shape(model, prefix, data: TrainData) -> tuple[int, ...]:
    with eval_mode(model), torch.inference_mode():
        return tuple(_through(prefix, _probe(model, data)).shape[1:])


def _through(prefix, x: torch.Tensor) -> torch.Tensor:
    for _, module in prefix:
        x = module(x)
    return x


def _run_prefix(model, prefix, shape, data, rows, batch_size, runtime: Runtime, progress):
    """The prefix's flattened float32 outputs (of ``shape`` each) for ``rows``, batched, in
    inference mode."""
    height, width = data.images.shape[1:3]
    batch_size = inference_batch_size(batch_size, height, width)
    out = np.empty((len(rows), int(np.prod(shape))), dtype=np.float32)
    with (
        eval_mode(model),
        torch.inference_mode(),
        progress_bar(progress, "caching the frozen blocks' activations", len(rows)) as advance,
    ):
        for start in range(0, len(rows), batch_size):
            chunk = rows[start : start + batch_size]
            pixels = torch.from_numpy(np.ascontiguousarray(data.images[chunk]))
            x = (
                runtime.move(pixels)
                .permute(0, 3, 1, 2)
                .contiguous(memory_format=torch.channels_last)
            )
            with runtime.autocast():
                features = _through(prefix, model.preprocess(x))
            out[start : start + len(chunk)] = features.float().flatten(1).cpu().numpy()
            advance(len(chunk))
    return out
