"""Data-parallel training on torchrun's engine: the process group, DDP, batch statistics over
all ranks, one global loss, and decisions made by rank 0.

torchrun starts the processes and sets RANK, WORLD_SIZE, LOCAL_RANK and MASTER_ADDR/PORT;
``join`` makes the process group from them (gloo on the CPU, NCCL on CUDA). Everything here is
a no-op in a single process, and in a "simulated" rank (a Runtime with a rank but no process
group, as tests make), so the one loop serves both.

Equal to one process, by construction:
- the loader builds each global batch as one process does and gives rank r its rows [r::W];
- the loss is the global batch's mean: each rank's summed loss is divided by the batch's
  normaliser summed over ranks (one all-reduce), so DDP's gradient average is the one-process
  gradient, whatever the split of the last batch;
- BatchNorm layers that train compute their statistics over all ranks (torch's SyncBatchNorm
  on CUDA; on the CPU, which it does not support, the same two all-reduces here);
- rank 0 decides when to stop (time limit, Ctrl-C, early stopping) and tells the others, so no
  rank waits in a collective for one that has left.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from imgclf.data.batches.loader import IGNORE_LABEL
from imgclf.errors import ConfigError
from imgclf.runtime import Runtime

_PEER_LOST = ("connection reset", "connection closed", "timed out", "gloo", "nccl", "broken pipe")
TIMEOUT = timedelta(seconds=int(os.environ.get("IMGCLF_COLLECTIVE_TIMEOUT", "300")))


def lost_peer(exc: BaseException) -> bool:
    """Whether a collective failed because another process died or hung (gloo's and NCCL's
    errors), not because of this process's own bug."""
    backend_error = getattr(dist, "DistBackendError", ())
    text = str(exc).lower()
    return active() and (isinstance(exc, backend_error) or any(k in text for k in _PEER_LOST))


def reason(exc: BaseException) -> str:
    """A collective's error in a few words (gloo's messages run to a paragraph)."""
    text = " ".join(str(exc).split())
    for known in ("Connection reset by peer", "Connection closed by peer", "Timed out"):
        if known.lower() in text.lower():
            return known.lower()
    return text.split(". ")[0][-160:]


def active() -> bool:
    """Whether this process is one of several in a process group."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def join(runtime: Runtime) -> bool:
    """Join the process group torchrun describes (once); False in a single process."""
    if runtime.world_size <= 1 or "MASTER_ADDR" not in os.environ:
        return False
    if not dist.is_initialized():
        backend = "nccl" if runtime.device.type == "cuda" else "gloo"
        kwargs = {"device_id": runtime.device} if backend == "nccl" else {}
        dist.init_process_group(backend, timeout=TIMEOUT, **kwargs)
    return True


def leave() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


@contextmanager
def local_main_first(runtime: Runtime) -> Iterator[None]:
    """Local rank 0 runs the block first (decoding the cache, embedding); the others wait at a
    barrier, then run it and find the files it wrote."""
    if not active():
        yield
        return
    if runtime.local_rank != 0:
        dist.barrier()
    try:
        yield
    finally:
        if runtime.local_rank == 0:
            dist.barrier()


def check_same(value: str, what: str) -> None:
    """Every rank must hold the same ``value`` (a config's digest): one clear error if not."""
    if not active():
        return
    values: list[str | None] = [None] * dist.get_world_size()
    dist.all_gather_object(values, value)
    differing = [rank for rank, other in enumerate(values) if other != values[0]]
    if differing:
        raise ConfigError(
            f"The {what} differs between processes: ranks {differing} do not match rank 0. "
            "Start every node with the same command, config and data."
        )


def from_rank0(value):
    """Rank 0's ``value`` on every rank (timings, plans: what must not differ by rank)."""
    if not active():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_to_main(value):
    """Every rank's ``value`` as a list on rank 0 (in rank order); None on the others."""
    if not active():
        return [value]
    values = [None] * dist.get_world_size() if dist.get_rank() == 0 else None
    dist.gather_object(value, values, dst=0)
    return values


def wrap(module: nn.Module, runtime: Runtime) -> nn.Module:
    """``module`` under DistributedDataParallel when several processes train it."""
    if not active() or not any(p.requires_grad for p in module.parameters()):
        return module
    import inspect

    ids = [runtime.device.index] if runtime.device.type == "cuda" else None
    ddp = nn.parallel.DistributedDataParallel
    # buffers (BatchNorm's running statistics) are equal on every rank: no sync per forward
    quiet = "forward_sync_buffers" in inspect.signature(ddp).parameters
    buffers = {"forward_sync_buffers": False} if quiet else {"broadcast_buffers": False}
    return ddp(module, device_ids=ids, **buffers)


def sync_batchnorm(model: nn.Module, runtime: Runtime) -> list[str]:
    """BatchNorm layers compute batch statistics over every rank: SyncBatchNorm on CUDA (timm's
    converter, which keeps its BatchNorm+activation layers whole); on the CPU, which
    SyncBatchNorm does not support, all-reduce versions of plain BatchNorm and of timm's
    BatchNormAct2d. Frozen layers (eval mode) are unaffected either way.

    Returns the BatchNorm layers of other kinds left with per-rank statistics, for a warning."""
    if not active():
        return []
    if runtime.device.type == "cuda":
        from timm.layers import convert_sync_batchnorm

        convert_sync_batchnorm(model)  # replaces the layers in place below the (non-BN) root
        return []
    from timm.layers import BatchNormAct2d

    swaps = {nn.BatchNorm1d: AllReduceBatchNorm, nn.BatchNorm2d: AllReduceBatchNorm,
             nn.BatchNorm3d: AllReduceBatchNorm, BatchNormAct2d: _act_class()}  # fmt: skip
    local = []
    for name, child in model.named_modules():
        if type(child) in swaps:
            child.__class__ = swaps[type(child)]  # same parameters and buffers, new forward
        elif isinstance(child, nn.modules.batchnorm._BatchNorm) and child.training:
            local.append(name)
    return local


def _global_batch_norm(layer: nn.modules.batchnorm._BatchNorm, x: torch.Tensor) -> torch.Tensor:
    """BatchNorm of ``x`` with the global batch's statistics: the mean, then the variance,
    each summed over ranks with a differentiable all-reduce (as SyncBatchNorm does on CUDA)."""
    all_reduce = _SumOverRanks.apply
    dims = [0, *range(2, x.ndim)]
    shape = [1, -1, *([1] * (x.ndim - 2))]
    count = all_reduce(torch.tensor([x.numel() / x.shape[1]], dtype=x.dtype))
    mean = all_reduce(x.sum(dims)) / count
    var = all_reduce(((x - mean.view(shape)) ** 2).sum(dims)) / count
    if layer.track_running_stats:
        _update_running(layer, mean.detach(), var.detach(), float(count))
    out = (x - mean.view(shape)) / torch.sqrt(var.view(shape) + layer.eps)
    if layer.affine:
        out = out * layer.weight.view(shape) + layer.bias.view(shape)
    return out


@torch.no_grad()
def _update_running(layer, mean: torch.Tensor, var: torch.Tensor, count: float) -> None:
    layer.num_batches_tracked += 1
    momentum = layer.momentum
    if momentum is None:  # a cumulative average, as nn.BatchNorm does
        momentum = 1.0 / float(layer.num_batches_tracked)
    unbiased = var * count / max(count - 1, 1)
    layer.running_mean.mul_(1 - momentum).add_(mean, alpha=momentum)
    layer.running_var.mul_(1 - momentum).add_(unbiased, alpha=momentum)


class _SumOverRanks(torch.autograd.Function):
    """A tensor summed over ranks; its gradient is the ranks' gradients summed, since every
    rank's loss depends on the sum."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        total = tensor.clone()
        dist.all_reduce(total)
        return total

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        total = grad.clone()
        dist.all_reduce(total)
        return total


class AllReduceBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose training statistics are the global batch's; in eval mode, or alone,
    plain BatchNorm."""

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.ndim < 2:
            raise ValueError(f"BatchNorm expects (N, C, ...) input, received {x.ndim}-D")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and active()):
            return super().forward(x)
        return _global_batch_norm(self, x)


def _act_class():
    """timm's BatchNormAct2d (BatchNorm, dropout, activation) with the global statistics."""
    from timm.layers import BatchNormAct2d

    class AllReduceBatchNormAct2d(BatchNormAct2d):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if not (self.training and active()):
                return super().forward(x)
            return self.act(self.drop(_global_batch_norm(self, x)))

    return AllReduceBatchNormAct2d


def global_loss(
    loss_fn: nn.CrossEntropyLoss, logits: torch.Tensor, targets: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(the loss to backpropagate on this rank, the global batch's mean loss).

    The first is this rank's summed loss over the global batch's normaliser times the world
    size, so DDP's average of the gradients is the one-process gradient. Padding rows
    (``IGNORE_LABEL``, or all-zero soft labels) count nowhere."""
    weight = loss_fn.weight
    per_image = F.cross_entropy(
        logits, targets, weight=weight, label_smoothing=loss_fn.label_smoothing,
        ignore_index=IGNORE_LABEL, reduction="none",
    )  # fmt: skip
    if targets.ndim == 2:  # soft labels: the mean over images
        norm = (targets.sum(1) > 0).sum().to(logits.dtype)
    elif weight is not None:  # class weights: the mean weighted by them, as nn does
        valid = targets != IGNORE_LABEL
        norm = weight[targets.clamp(min=0)].mul(valid).sum()
    else:
        norm = (targets != IGNORE_LABEL).sum().to(logits.dtype)
    totals = torch.stack([per_image.sum().detach(), norm.detach()])
    if active():
        dist.all_reduce(totals)
    world = dist.get_world_size() if active() else 1
    return per_image.sum() * world / totals[1], totals[0] / totals[1]


def kept_rows(targets: torch.Tensor) -> torch.Tensor:
    """The rows of a batch that are images, not padding."""
    return targets.sum(1) > 0 if targets.ndim == 2 else targets != IGNORE_LABEL


def sum_over_ranks(*values: float) -> list[float]:
    """``values`` summed over every rank (an epoch's running sums)."""
    if not active():
        return list(values)
    tensor = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(tensor)
    return tensor.tolist()


def epoch_logs(tally) -> dict[str, float]:
    """An epoch's training loss and accuracy over every rank's images (an ``EpochTally``)."""
    loss, correct, seen = sum_over_ranks(tally.loss, tally.correct, tally.seen)
    return {"loss": loss / seen, "accuracy": correct / seen}


def agree(state) -> None:
    """Rank 0's decisions to stop the run or end the stage, on every rank of a ``TrainState``
    (a no-op alone): a rank's own deadline or signal never makes it leave the others waiting
    in a collective."""
    if not active():
        return
    stop, end = rank0_decides(bool(state.stop_reason), bool(state.end_stage))
    if dist.get_rank() > 0:
        state.stop_reason = (state.stop_reason or "stopped by rank 0") if stop else None
        state.end_stage = (state.end_stage or "ended by rank 0") if end else None


def stopping(state):
    """The loop's per-batch stop check: rank 0's decision, agreed."""

    def stop() -> bool:
        agree(state)
        return bool(state.stop_reason)

    return stop


def rank0_decides(stop: bool, end_stage: bool = False) -> tuple[bool, bool]:
    """Rank 0's (stop, end stage), on every rank."""
    if not active():
        return stop, end_stage
    flags = torch.tensor([int(stop), int(end_stage)])
    dist.broadcast(flags, src=0)
    return bool(flags[0]), bool(flags[1])
