"""The one typed config schema behind the CLI flags, the Python keyword arguments and YAML keys.

Merging (defaults < YAML file < flags / keyword arguments) and key checking live in
imgclf.config_loader.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from imgclf.config_layers import Activation, LayerSpec, ProgressiveSizes
from imgclf.timefmt import parse_duration

FitPolicy = Literal["resize", "center_crop", "letterbox"]
ColorMode = Literal["auto", "rgb", "grayscale"]
FillMode = Literal["nearest", "constant", "reflect", "wrap"]

# The settings' sets of choices, each declared once: the schema validates with them, the
# runtime checks with them, and the CLI takes its choices (click refuses others) and help from them.
TrainMode = Literal["feature_extract", "finetune", "scratch"]
Optimizer = Literal["adam", "adamw", "sgd", "rmsprop"]
Schedule = Literal["constant", "cosine", "onecycle"]
EmbedBackend = Literal["auto", "torch", "onnx"]
Sampler = Literal["shuffle", "balanced"]  # the training epoch's order
Precision = Literal["32", "16-mixed", "bf16-mixed"]  # what a Runtime computes in
PrecisionSetting = Literal[Precision, "auto"]  # auto: the Runtime picks one per device
DEVICE_PATTERN = r"auto|cpu|mps|cuda(:\d+)?"
DEVICES = ("auto", "cpu", "cuda", "cuda:N", "mps")  # DEVICE_PATTERN's words; N: a GPU's index
# What a choice means or needs, where its name does not say (the help reads these).
NOTES = {
    "device": {"auto": "CUDA, then MPS, then CPU"},
    "precision": {
        "16-mixed": "GPU",
        "bf16-mixed": "GPU, or a CPU with native bf16",
        "auto": "bf16-mixed where the device has native bf16, else 32",
    },
}


def choices_text(choices: Iterable[str], notes: Mapping[str, str] | None = None) -> str:
    """'a (note), b or c': choices as help and messages list them, from their declaration."""
    words = [f"{c} ({notes[c]})" if notes and c in notes else c for c in choices]
    return f"{', '.join(words[:-1])} or {words[-1]}" if len(words) > 1 else "".join(words)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(_Section):
    """Where the images come from and how each is decoded once into the cache."""

    source: str | None = Field(
        None, description="Class-folder tree, CSV file, .npz file or built-in set name."
    )
    data_dir: Path | None = Field(
        None, description="Folder of built-in sets (else $IMGCLF_DATA_DIR, else ~/.cache)."
    )
    cache_dir: Path | None = Field(
        None, description="Decoded-image cache (else $IMGCLF_CACHE_DIR, else ~/.cache/imgclf)."
    )
    download: bool = Field(True, description="Download missing built-in sets.")
    path_column: str = "path"
    label_column: str = "label"
    split_column: str = "split"
    decisions: Path | None = Field(
        None,
        description="A decisions CSV (path, decision, label) from audit.html, applied at read "
        "time: drop images, change labels; no file is moved.",
    )
    audit: Literal["quick", "full"] = Field(
        "quick",
        description="Before training: quick (copies leaking across the splits, balance) or "
        "full (imgclf audit's every check, with a pretrained backbone's embeddings).",
    )
    val_split: float = Field(0.2, ge=0.0, lt=1.0)
    test_split: float = Field(0.0, ge=0.0, lt=1.0)
    image_size: tuple[int, int] | None = Field(
        None, description="(height, width); one int means square; None: the images' own size."
    )
    fit: FitPolicy = Field("resize", description="resize (squash), center_crop or letterbox.")
    color_mode: ColorMode = "auto"
    workers: int | None = Field(None, ge=1, description="Decoding processes (None: all cores).")

    @field_validator("image_size", mode="before")
    @classmethod
    def _square(cls, value: Any) -> Any:
        if isinstance(value, int | str) and not isinstance(value, bool):
            value = int(value)
            return (value, value)
        return value

    @field_validator("image_size")
    @classmethod
    def _positive(cls, value: tuple[int, int] | None) -> tuple[int, int] | None:
        if value is not None and min(value) < 1:
            raise ValueError(f"image_size must be positive, received {value}")
        return value

    @model_validator(mode="after")
    def _splits_leave_training_data(self) -> DataConfig:
        if self.val_split + self.test_split >= 1.0:
            raise ValueError(
                f"val_split + test_split must be below 1, received "
                f"{self.val_split} + {self.test_split}"
            )
        return self


class AugmentConfig(_Section):
    """Training-time augmentation. The names are Keras ImageDataGenerator's, plus modern options."""

    rotation_range: float = Field(0.0, ge=0.0, le=180.0, description="Degrees, +-.")
    width_shift_range: float = Field(0.0, ge=0.0, lt=1.0, description="Fraction of width, +-.")
    height_shift_range: float = Field(0.0, ge=0.0, lt=1.0, description="Fraction of height, +-.")
    shear_range: float = Field(0.0, ge=0.0, lt=90.0, description="Shear angle in degrees, +-.")
    zoom_range: tuple[float, float] = Field(
        (1.0, 1.0), description="z or [lower, upper]; z means [1-z, 1+z], per axis as in Keras."
    )
    translate: int = Field(
        0, ge=0, le=64, description="Whole-pixel shifts up to N px, edges mirrored (crop-pad)."
    )
    horizontal_flip: bool = False
    vertical_flip: bool = False
    fill_mode: FillMode = "nearest"
    cval: float = Field(0.0, ge=0.0, le=255.0, description="Fill value for fill_mode=constant.")
    brightness_range: tuple[float, float] | None = None
    rescale: float = Field(1 / 255, gt=0.0, description="Pixel factor for every split, as Keras.")
    randaugment: bool = False
    trivialaugment: bool = False
    random_erasing: float = Field(0.0, ge=0.0, le=1.0, description="Probability per image.")
    mixup: float = Field(0.0, ge=0.0, description="Beta alpha; 0 disables.")
    cutmix: float = Field(0.0, ge=0.0, description="Beta alpha; 0 disables.")

    @field_validator("zoom_range", mode="before")
    @classmethod
    def _zoom_pair(cls, value: Any) -> Any:
        if isinstance(value, int | float | str) and not isinstance(value, bool):
            z = float(value)
            if not 0.0 <= z < 1.0:
                raise ValueError(f"a single zoom_range must be in [0, 1), received {z}")
            return (1.0 - z, 1.0 + z)
        return value

    @field_validator("zoom_range", "brightness_range")
    @classmethod
    def _ordered_positive(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is not None and not (0.0 < value[0] <= value[1] and math.isfinite(value[1])):
            raise ValueError(f"must be [lower, upper] with 0 < lower <= upper, received {value}")
        return value

    @model_validator(mode="after")
    def _one_policy(self) -> AugmentConfig:
        if self.randaugment and self.trivialaugment:
            raise ValueError("choose one of randaugment and trivialaugment, not both")
        return self

    @property
    def geometric(self) -> bool:
        """Whether any affine knob (rotation, shift, shear, zoom) is active."""
        return bool(
            self.rotation_range
            or self.width_shift_range
            or self.height_shift_range
            or self.shear_range
            or self.zoom_range != (1.0, 1.0)
        )


_BOOL_WORDS = {"true", "false", "yes", "no", "on", "off", "1", "0"}


class HeadConfig(_Section):
    """The classifier on top of a backbone: pooling, then dense layers, then the class layer."""

    pooling: Literal["avg", "max", "flatten", "none"] = "avg"
    dense: list[int] = Field(default_factory=list, description="Hidden sizes, e.g. [256, 128].")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="Before each dense layer.")
    activation: Activation = "relu"

    @field_validator("dense")
    @classmethod
    def _positive_sizes(cls, value: list[int]) -> list[int]:
        if any(size < 1 for size in value):
            raise ValueError(f"dense sizes must be positive, received {value}")
        return value


class PreprocessConfig(_Section):
    """Overrides of the backbone's own preprocessing (None: take it from the backbone)."""

    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    interpolation: Literal["bilinear", "bicubic", "nearest"] | None = None
    crop_pct: float | None = Field(None, gt=0.0, le=1.0)


class ModelConfig(_Section):
    """Which network: a recipe by name, a custom layer stack, or any timm backbone."""

    name: str = Field("efficientnet_lite0", description="Recipe, 'custom' or a timm model name.")
    layers: list[LayerSpec] | None = Field(None, description="The custom stack (name: custom).")
    pretrained: bool = Field(True, description="Load pretrained weights for a backbone.")
    weights: Path | None = Field(None, description="Local weight file (safetensors/state dict).")
    mode: TrainMode = "finetune"
    unfreeze: int | list[str] | Literal["all"] = Field(
        2, description="finetune: last N blocks, a list of module names, or all."
    )
    freeze_bn: bool = Field(True, description="Keep BatchNorm statistics frozen in finetune.")
    backbone_lr: float = Field(0.1, gt=0.0, le=1.0, description="Backbone lr / head lr.")
    layer_decay: float | None = Field(None, gt=0.0, le=1.0, description="Per-block lr decay.")
    head: HeadConfig = Field(default_factory=HeadConfig)
    preprocess: PreprocessConfig = Field(default_factory=PreprocessConfig)

    @field_validator("unfreeze")
    @classmethod
    def _non_negative(cls, value: Any) -> Any:
        if isinstance(value, int) and value < 0:
            raise ValueError(f"unfreeze must be >= 0 blocks, a list of names or 'all'; got {value}")
        return value

    @model_validator(mode="before")
    @classmethod
    def _pretrained_path(cls, values: Any) -> Any:
        """``pretrained: PATH`` is shorthand for ``pretrained: true, weights: PATH``."""
        if isinstance(values, dict):
            pretrained = values.get("pretrained")
            if isinstance(pretrained, str | Path) and str(pretrained).lower() not in _BOOL_WORDS:
                values = {**values, "pretrained": True, "weights": pretrained}
        return values

    @model_validator(mode="after")
    def _layers_need_custom(self) -> ModelConfig:
        if self.layers is not None and self.name != "custom":
            raise ValueError(f"layers are given, so name must be 'custom' (received '{self.name}')")
        if self.name == "custom" and not self.layers:
            raise ValueError("name 'custom' needs a list of layers")
        return self


class TrainConfig(_Section):
    """How the network is trained: optimizer, schedule, regularisation, callbacks."""

    epochs: int = Field(20, ge=1)
    batch_size: int = Field(32, ge=1)
    eval_batch_size: int = Field(256, ge=1)
    tta: Literal["none", "flip"] = Field(
        "none", description="Test-time augmentation of validation and the final scores: flip."
    )
    calibrate: bool = Field(
        True,
        description="After training, fit a temperature on the validation split so that the "
        "probabilities are calibrated (temperature scaling); needs a validation split.",
    )
    unknown: bool = Field(
        True,
        description="After training, fit the unknown score on the train and validation "
        "splits, so that predict --abstain can answer 'unknown'; needs a validation split.",
    )
    optimizer: Optimizer = "adam"
    lr: float = Field(1e-3, gt=0.0)
    momentum: float = Field(0.9, ge=0.0, lt=1.0, description="sgd and rmsprop.")
    nesterov: bool = False
    weight_decay: float = Field(0.0, ge=0.0)
    schedule: Schedule = "constant"
    warmup_epochs: float = Field(0.0, ge=0.0)
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    grad_clip: float | None = Field(None, gt=0.0, description="Max gradient norm.")
    class_weight: Literal["balanced"] | dict[str, float] | None = None
    sampler: Sampler = Field(
        "shuffle",
        description="Each epoch's training images: shuffle (each once) or balanced (drawn "
        "with replacement, every class equally likely).",
    )
    monitor: Literal["val_accuracy", "val_loss"] = "val_accuracy"
    patience: int | None = Field(None, ge=1, description="Early stopping after N flat epochs.")
    min_delta: float = Field(0.0, ge=0.0)
    time_limit: float | None = Field(None, gt=0.0, description="Seconds, or '45m', '2h', '1h30m'.")
    budget: float | None = Field(
        None,
        gt=0.0,
        description="Plan the epochs and schedule to end the whole run within this: '10m'.",
    )
    threads: int | None = Field(
        None, ge=1, description="Torch threads (None: the cores divided by local processes)."
    )
    device: str = Field(
        "auto",
        pattern=f"^({DEVICE_PATTERN})$",
        description=f"{choices_text(DEVICES, NOTES['device'])}.",
    )
    precision: PrecisionSetting = Field(
        "32", description=f"{choices_text(get_args(PrecisionSetting), NOTES['precision'])}."
    )
    embedding_cache: bool = Field(
        True,
        description="Frozen backbone: embed every image once and train the head on the cache.",
    )
    activation_cache: bool = Field(
        True,
        description="finetune stage 2 without pixel augmentation: compute the frozen blocks "
        "once per image and train the rest on their activations.",
    )
    embed_backend: EmbedBackend = Field(
        "auto",
        description="Frozen backbone's embed-once pass: onnx (ONNX Runtime, CPU at 32 bits), "
        "torch, or auto (onnx when installed and the pass has 300+ images at 224 px).",
    )
    augment_views: int = Field(
        0, ge=0, le=64, description="Augmented views per training image in the embedding cache."
    )
    finetune_epochs: int = Field(
        3, ge=0, description="finetune: epochs of stage 2 (unfrozen, one-cycle); 0: head only."
    )
    finetune_lr: float | None = Field(
        None, gt=0.0, description="finetune: stage 2 peak lr of the head (None: lr)."
    )
    progressive_sizes: ProgressiveSizes = Field(
        default_factory=list,
        description="Smaller square sizes the pixel stage trains at first, each for an equal "
        "share of its steps: pixels, e.g. [128, 160], or fractions of the image size, e.g. "
        "[0.5, 0.75] (a fraction the network cannot take is skipped, with a note).",
    )
    callbacks: list[str] = Field(
        default_factory=list,
        description="Callbacks to add, by registered name or 'package.module:ClassName'.",
    )

    @field_validator("precision", mode="before")
    @classmethod
    def _precision_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("time_limit", "budget", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return parse_duration(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_imbalance_correction(self) -> TrainConfig:
        """Balanced sampling and balanced loss weights each undo the imbalance; together they
        weight a class by 1 / count squared, so the rarest class outweighs the largest."""
        if self.sampler == "balanced" and self.class_weight == "balanced":
            raise ValueError(
                "sampler balanced and class_weight balanced both correct class imbalance and "
                "together over-correct it (received both): keep one"
            )
        return self


class RunConfig(_Section):
    """Where the run directory goes and how talkative training is."""

    name: str | None = Field(None, description="Run folder name (default: model-data-N).")
    project: Path = Field(Path("runs"), description="Folder that holds the run folders.")
    quiet: bool = False
    plots: bool = Field(
        True,
        description="Draw the report's figures (curves, confusion matrices, mistakes, samples); "
        "off, the report has the scores and tables only: quicker sweep trials.",
    )
    study: str | None = Field(None, description="The sweep (Optuna study) the run is a trial of.")
    trial: int | None = Field(None, ge=0, description="Its trial number in the study.")
    parent: str | None = Field(None, description="The run this one refits or derives from.")
    track: list[str] = Field(
        default_factory=list, description="Trackers to mirror the run into: tensorboard, mlflow."
    )


class Config(_Section):
    """The whole resolved configuration of a run."""

    seed: int = 0
    preset: str | None = Field(
        None, description="Settings by name under the given ones: fast, fast_cifar, fast_mnist."
    )
    data: DataConfig = Field(default_factory=DataConfig)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    run: RunConfig = Field(default_factory=RunConfig)


SECTIONS = ("data", "augment", "model", "train", "run")
