"""The one typed config schema behind the CLI flags, the Python keyword arguments and YAML keys.

Precedence is defaults < YAML file < flags / keyword arguments. Unknown keys fail with a
"did you mean" suggestion. Later rooms (model, train, run) add their sections here.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from imgclf.errors import ConfigError, did_you_mean

FitPolicy = Literal["resize", "center_crop", "letterbox"]
ColorMode = Literal["auto", "rgb", "grayscale"]
FillMode = Literal["nearest", "constant", "reflect", "wrap"]


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
Activation = Literal["relu", "gelu", "silu", "tanh", "sigmoid", "elu", "leaky_relu", "none"]
Padding = Literal["valid", "same"]


class ConvLayer(_Section):
    type: Literal["conv"]
    filters: int = Field(gt=0)
    kernel: int = Field(3, gt=0)
    stride: int = Field(1, gt=0)
    padding: Padding | int = "valid"
    activation: Activation = "relu"


class PoolLayer(_Section):
    type: Literal["maxpool", "avgpool"]
    size: int = Field(2, gt=0)
    stride: int | None = Field(None, gt=0)


class GlobalPoolLayer(_Section):
    type: Literal["global_avgpool", "global_maxpool"]


class BatchNormLayer(_Section):
    type: Literal["batchnorm"]


class DropoutLayer(_Section):
    type: Literal["dropout"]
    rate: float = Field(ge=0.0, lt=1.0)


class FlattenLayer(_Section):
    type: Literal["flatten"]


class DenseLayer(_Section):
    type: Literal["dense"]
    units: int = Field(gt=0)
    activation: Activation = "relu"


LayerSpec = Annotated[
    ConvLayer
    | PoolLayer
    | GlobalPoolLayer
    | BatchNormLayer
    | DropoutLayer
    | FlattenLayer
    | DenseLayer,
    Field(discriminator="type"),
]
LAYER_TYPES = (
    "conv", "maxpool", "avgpool", "global_avgpool", "global_maxpool", "batchnorm", "dropout",
    "flatten", "dense",
)  # fmt: skip


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
    mode: Literal["feature_extract", "finetune", "scratch"] = "finetune"
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
    optimizer: Literal["adam", "adamw", "sgd", "rmsprop"] = "adam"
    lr: float = Field(1e-3, gt=0.0)
    momentum: float = Field(0.9, ge=0.0, lt=1.0, description="sgd and rmsprop.")
    nesterov: bool = False
    weight_decay: float = Field(0.0, ge=0.0)
    schedule: Literal["constant", "cosine", "onecycle"] = "constant"
    warmup_epochs: float = Field(0.0, ge=0.0)
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    grad_clip: float | None = Field(None, gt=0.0, description="Max gradient norm.")
    class_weight: Literal["balanced"] | dict[str, float] | None = None
    monitor: Literal["val_accuracy", "val_loss"] = "val_accuracy"
    patience: int | None = Field(None, ge=1, description="Early stopping after N flat epochs.")
    min_delta: float = Field(0.0, ge=0.0)
    time_limit: float | None = Field(None, gt=0.0, description="Seconds, or '45m', '2h', '1h30m'.")
    threads: int | None = Field(None, ge=1, description="Torch threads (None: all cores).")

    @field_validator("time_limit", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return parse_duration(value) if isinstance(value, str) else value


class RunConfig(_Section):
    """Where the run directory goes and how talkative training is."""

    name: str | None = Field(None, description="Run folder name (default: model-data-N).")
    project: Path = Field(Path("runs"), description="Folder that holds the run folders.")
    quiet: bool = False


class Config(_Section):
    """The whole resolved configuration of a run."""

    seed: int = 0
    data: DataConfig = Field(default_factory=DataConfig)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    run: RunConfig = Field(default_factory=RunConfig)


SECTIONS = ("data", "augment", "model", "train", "run")
# Flat keys two sections share: the model's name is given as ``model=``, so ``name`` is the run's.
_FLAT_OWNER = {"name": "run"}


def parse_duration(text: str) -> float:
    """Seconds from '90', '90s', '45m', '2h' or '1h30m'."""
    import re

    cleaned = str(text).strip().lower().replace(" ", "")
    if re.fullmatch(r"\d+(\.\d+)?", cleaned):
        return float(cleaned)
    parts = re.fullmatch(
        r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?", cleaned
    )
    if not cleaned or parts is None:
        raise ValueError(f"a duration like 90s, 45m, 2h or 1h30m, received '{text}'")
    hours, minutes, seconds = (float(p) if p else 0.0 for p in parts.groups())
    return hours * 3600 + minutes * 60 + seconds


def build_config(base: dict[str, Any] | None = None, **overrides: Any) -> Config:
    """Validate nested YAML-like ``base`` plus flat or dotted overrides into a Config.

    Flat keyword names (``val_split=0.1``) are routed to the one section that owns them, so
    ``ImageClassifier(val_split=0.1)``, ``--val-split 0.1`` and ``data: {val_split: 0.1}`` agree.
    """
    merged: dict[str, Any] = {
        k: dict(v) if isinstance(v, dict) else {} if v is None and k in SECTIONS else v
        for k, v in (base or {}).items()
    }  # an empty YAML section (``augment:``) means its defaults
    for key, value in overrides.items():
        if value is None:
            continue
        section, name = _route(key, value)
        if section is None:
            merged[name] = value
        else:
            _section_dict(merged, section, key)[name] = value
    _check_keys(merged)
    try:
        return Config.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_explain(exc)) from None


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file into a plain dict, with clear errors for missing or bad files."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Config file {path} does not exist. Pass an existing YAML file.")
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Config file {path} is not valid YAML: {exc}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(
            f"Config file {path} must hold a mapping of sections, received {type(loaded).__name__}."
        )
    return loaded


def _route(key: str, value: Any = None) -> tuple[str | None, str]:
    if key == "model" and isinstance(value, str):
        return "model", "name"  # ImageClassifier(model="deep_cnn"), --model deep_cnn
    if "." in key:
        section, name = key.split(".", 1)
        return section, name
    if key in Config.model_fields:
        return None, key
    if key in _FLAT_OWNER:
        return _FLAT_OWNER[key], key
    owners = [s for s in SECTIONS if key in _section_model(s).model_fields]
    return (owners[0], key) if owners else (None, key)


def _section_dict(merged: dict[str, Any], section: str, key: str) -> dict[str, Any]:
    if section not in SECTIONS:
        raise ConfigError(
            f"Unknown config key '{key}': '{section}' is not a section."
            f"{did_you_mean(section, SECTIONS)} Sections: {', '.join(SECTIONS)}."
        )
    values = merged.setdefault(section, {})
    if not isinstance(values, dict):
        raise ConfigError(
            f"Config section '{section}' must be a mapping of keys, received {values!r}. "
            f"Write it as '{section}: {{key: value}}'."
        )
    return values


def _section_model(section: str) -> type[_Section]:
    return Config.model_fields[section].annotation  # type: ignore[return-value]


def _all_keys() -> list[str]:
    keys = [k for k in Config.model_fields if k not in SECTIONS]
    for section in SECTIONS:
        keys += list(_section_model(section).model_fields)
    return keys


def _check_keys(merged: dict[str, Any]) -> None:
    for key, value in merged.items():
        if key not in Config.model_fields:
            hint = did_you_mean(key, [*Config.model_fields, *_all_keys()])  # sections too
            raise ConfigError(
                f"Unknown config key '{key}'.{hint} Top-level keys: "
                f"{', '.join(Config.model_fields)}; section keys also work flat or dotted."
            )
        if key in SECTIONS and isinstance(value, dict):
            fields = _section_model(key).model_fields
            for name in value:
                if name not in fields:
                    raise ConfigError(
                        f"Unknown key '{name}' in section '{key}'.{did_you_mean(name, fields)} "
                        f"Allowed: {', '.join(fields)}."
                    )


def _explain(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"])
        lines.append(f"{where}: {err['msg']} (received {err.get('input')!r})")
    return "Invalid config: " + "; ".join(lines)
