"""FLOPs counted by torch's FlopCounterMode on a meta-device copy of a module: shapes only, so
no number of the module changes (no BatchNorm statistics, no dropout draw, no collective).

Only what runs is counted: the modules the forward calls, and in the backward the gradients
autograd computes (none for frozen weights, none for the input of the first trainable layer).
torch's formula for a convolution's backward ignores ``groups`` for the weight's gradient, so a
depthwise convolution's backward reads ``groups`` times its work (EfficientNet and MobileNet
counted several times the machine's peak); imgclf counts each gradient as one convolution of
the forward's size.
"""

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
        counter = FlopCounterMode(display=False, custom_mapping=_formulas())
        with counter, torch.set_grad_enabled(backward):
            logits = twin(x)
            if backward:
                labels = torch.zeros(len(x), dtype=torch.long, device="meta")
                nn.functional.cross_entropy(logits.float(), labels).backward()
    except Exception:  # an op without a meta kernel, of many kinds: no count
        return None
    return float(counter.get_total_flops())


def _formulas() -> dict:
    return {torch.ops.aten.convolution_backward: conv_backward_flops}


def conv_backward_flops(
    grad_out_shape, x_shape, w_shape, _bias, _stride, _padding, _dilation, transposed,
    _output_padding, _groups, output_mask, out_shape=None, **kwargs,
) -> int:  # fmt: skip
    """A convolution's backward: each gradient asked for (input, weight) costs one forward.

    The weight ``w_shape`` already holds ``in_channels / groups``, so the forward's count is
    right for grouped and depthwise convolutions too.
    """
    from torch.utils.flop_counter import conv_flop_count

    forward = conv_flop_count(list(x_shape), list(w_shape), list(grad_out_shape), transposed)
    return forward * (bool(output_mask[0]) + bool(output_mask[1]))
