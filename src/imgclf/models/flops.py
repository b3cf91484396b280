"""FLOPs counted by torch's FlopCounterMode on a meta-device copy of a module: shapes only, so
no number of the module changes (no BatchNorm statistics, no dropout draw, no collective)."""

from __future__ import annotations

import copy

import torch
from torch import nn


def meta_flops(
    module: nn.Module,
    shape: tuple[int, ...],
    dtype: torch.dtype = torch.float32,
    backward: bool = False,
) -> float | None:
    """The flops of ``module`` in eval mode on a batch of ``shape``: the forward pass, plus a
    cross-entropy backward when ``backward``; None for a module the meta device cannot run."""
    from torch.utils.flop_counter import FlopCounterMode

    try:
        twin = copy.deepcopy(module).to("meta").eval()
        x = torch.empty(shape, dtype=dtype, device="meta")
        counter = FlopCounterMode(display=False)
        with counter, torch.set_grad_enabled(backward):
            logits = twin(x)
            if backward:
                labels = torch.zeros(len(x), dtype=torch.long, device="meta")
                nn.functional.cross_entropy(logits.float(), labels).backward()
    except Exception:  # an op without a meta kernel, of many kinds: no count
        return None
    return float(counter.get_total_flops())
