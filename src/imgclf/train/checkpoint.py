"""Checkpoints, written atomically: best weights (safetensors) and the full resume state.

The resume file holds only tensors and plain Python values, so it is read back with
``torch.load(weights_only=True)``: loading a checkpoint never executes code.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from imgclf.errors import ImgclfError
from imgclf.fileio import atomic_path

BEST_WEIGHTS = "best.safetensors"
RESUME_STATE = "last.pt"


def save_weights(model: nn.Module, path: Path) -> None:
    """The model's state dict as safetensors, via a temporary file and a rename."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp))
        os.chmod(tmp, 0o666 & ~_umask())  # safetensors writes 0600; checkpoints are user files


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def load_weights(model: nn.Module, path: Path) -> None:
    from safetensors.torch import load_file

    model.load_state_dict(load_file(str(path)), strict=True)


class BestWeights:
    """The best weights so far: a safetensors file in the run folder, or (a process that
    writes no files, such as a non-main rank) a copy in memory."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._copy: dict[str, torch.Tensor] | None = None

    def save(self, model: nn.Module) -> None:
        if self.path is not None:
            save_weights(model, self.path)
        else:
            self._copy = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def load_into(self, model: nn.Module) -> bool:
        """Load the best weights into ``model``; False when none were saved yet."""
        if self.path is not None and self.path.is_file():
            load_weights(model, self.path)
            return True
        if self._copy is not None:
            model.load_state_dict(self._copy, strict=True)
            return True
        return False


def save_resume_state(path: Path, state: dict[str, Any]) -> None:
    """Everything to continue a run (model, optimizer, schedule, RNG, loader, history)."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_resume_state(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ImgclfError(
            f"{path} does not exist: the run has no checkpoint to resume from (it stopped "
            "before its first epoch ended). Start it again without --resume."
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file can fail in many ways
        raise ImgclfError(
            f"{path} cannot be read ({exc}). It is not an imgclf checkpoint."
        ) from None
