"""The model a server answers with: its identity, classes, input spec and scoring function."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from imgclf.data.pipeline.decode import decode_bytes
from imgclf.models.preprocess import PreprocessSpec


@dataclass(frozen=True)
class ServedModel:
    """Everything the app needs of a model; ``score`` maps uint8 (B, H, W, C) batches to
    probabilities (the torch model or its gated ONNX graph: ``imgclf.predict.scorer``), then,
    when the server abstains, one more column: each image's in-distribution share (see
    ``outputs``). ``abstain`` is the share below which an image is answered "unknown".

    ``explain`` maps uint8 images and their class indices to Grad-CAM overlays (on torch,
    whatever the backend), or is None and ``unexplained`` says why; ``conformal`` holds the
    validation split's conformity scores for prediction sets (None: the model has none)."""

    name: str
    version: str
    classes: list[str]
    spec: PreprocessSpec
    backend: str
    score: Callable[[np.ndarray], np.ndarray]
    metrics: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    abstain: float | None = None
    explain: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None
    unexplained: str = "this server was started without explanations."
    conformal: np.ndarray | None = None

    @property
    def platform(self) -> str:
        return "pytorch" if self.backend == "torch" else "onnxruntime_onnx"

    def decode(self, data: bytes, max_pixels: int) -> np.ndarray:
        """One encoded image fitted to the model as ``imgclf predict`` fits files.

        Raises:
            ImageDecodeError: not an image, truncated, corrupt or over ``max_pixels``.
        """
        color = "grayscale" if self.spec.channels == 1 else "rgb"
        return decode_bytes(data, tuple(self.spec.image_size), self.spec.fit, color, max_pixels)

    def blank(self, count: int = 1) -> np.ndarray:
        """Black images at the input size: the warm-up batch."""
        height, width = self.spec.image_size
        return np.zeros((count, height, width, self.spec.channels), dtype=np.uint8)

    def outputs(self, scored: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(probabilities, in-distribution shares or None) of what ``score`` returned."""
        if self.abstain is None:
            return scored, None
        return scored[:, :-1], scored[:, -1]

    def top(self, probs: np.ndarray, k: int) -> list[dict[str, Any]]:
        """The k most probable classes of one image, most probable first."""
        order = np.argsort(-probs, kind="stable")[: min(k, len(self.classes))]
        return [{"label": self.classes[i], "probability": float(probs[i])} for i in order]
