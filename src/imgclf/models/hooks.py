"""What each layer of a network gives, seen from outside: one forward pass with a hook on
every sub-module, for the callers that pick a layer by its output (the Grad-CAM target, the
unknown score's stages)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)  # their outputs are a child's


def output_shapes(
    modules: nn.Module, forward: Callable[[], object], skip: tuple[type, ...] = CONTAINERS
) -> list[tuple[str, nn.Module, tuple[int, ...]]]:
    """(name, module, output shape) of each named sub-module of ``modules`` that is none of
    ``skip`` and outputs a tensor, in the order they finish while ``forward()`` runs (in
    inference mode; the hooks are removed after)."""
    seen: list[tuple[str, nn.Module, tuple[int, ...]]] = []

    def hook(name: str):
        def keep(module, _inputs, output) -> None:
            if isinstance(output, torch.Tensor):
                seen.append((name, module, tuple(output.shape)))

        return keep

    handles = [
        module.register_forward_hook(hook(name))
        for name, module in modules.named_modules()
        if name and not isinstance(module, skip)
    ]
    try:
        with torch.inference_mode():
            forward()
    finally:
        for handle in handles:
            handle.remove()
    return seen
