"""Training-time augmentation of uint8 image batches (N, C, H, W), built from AugmentConfig.

The Keras ImageDataGenerator knobs (rotation, shift, shear, per-axis zoom, flips, fill_mode,
brightness) are applied batched: one 2x3 affine matrix per image and a single
``affine_grid`` + ``grid_sample`` call per batch. This is done by hand because torchvision's
``v2.RandomAffine`` draws one set of parameters per call (the whole batch would move alike) and
has no equivalent of Keras's nearest / reflect / wrap fill modes.

The modern options (RandAugment, TrivialAugmentWide, RandomErasing, MixUp, CutMix) come from
``torchvision.transforms.v2``, imported only when one is enabled: importing torchvision took
1.1 s here, 0.3 s of it after torch._dynamo (which torch's first optimizer loads anyway). Those
draw from the global torch RNG, so they run inside
``torch.random.fork_rng`` seeded from the caller's generator: the same generator state gives the
same batch, and the global RNG outside is left untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from imgclf.config import AugmentConfig, FillMode
from imgclf.errors import ConfigError, DataError

_PADDING = {"nearest": "border", "reflect": "reflection"}


@dataclass(frozen=True)
class AffineParams:
    """Per-image geometric parameters in Keras's units; every field has one entry per image.

    ``shift_y`` / ``shift_x`` are in pixels and ``zoom_y`` / ``zoom_x`` are the factors Keras calls
    ``tx`` / ``ty`` and ``zx`` / ``zy``. As in Keras the matrix maps output to input coordinates:
    a positive shift moves the content up / left, and a zoom above 1 shows more of the image
    (content shrinks), below 1 magnifies it.
    """

    rotation: torch.Tensor
    shift_y: torch.Tensor
    shift_x: torch.Tensor
    shear: torch.Tensor
    zoom_y: torch.Tensor
    zoom_x: torch.Tensor
    flip_h: torch.Tensor
    flip_v: torch.Tensor

    @classmethod
    def identity(cls, n: int) -> AffineParams:
        """Parameters that leave ``n`` images unchanged (a base to override in tests and code)."""
        zeros = torch.zeros(n, dtype=torch.float64)
        ones = torch.ones(n, dtype=torch.float64)
        no = torch.zeros(n, dtype=torch.bool)
        return cls(zeros, zeros, zeros, zeros, ones, ones, no, no)


def affine_matrices(params: AffineParams, height: int, width: int) -> torch.Tensor:
    """The (N, 2, 3) float32 ``affine_grid`` matrices for Keras-style per-image parameters.

    Composes rotation @ shift @ shear @ zoom about the image centre in (row, col) pixel
    coordinates exactly as Keras's ``apply_affine_transform``, then re-expresses it in the
    normalised (x, y) coordinates of ``affine_grid(align_corners=False)``. Flips are applied
    after the affine part (Keras order) by negating a column of the linear part.
    """
    theta = torch.deg2rad(params.rotation)
    shear = torch.deg2rad(params.shear)
    cos, sin = torch.cos(theta), torch.sin(theta)
    # Linear part in (row, col) is R @ Sh @ Z; the translation is R @ t (T sits between R and Sh).
    a = cos * params.zoom_y
    b = (-cos * torch.sin(shear) - sin * torch.cos(shear)) * params.zoom_x
    c = sin * params.zoom_y
    d = (-sin * torch.sin(shear) + cos * torch.cos(shear)) * params.zoom_x
    t_row = cos * params.shift_y - sin * params.shift_x
    t_col = sin * params.shift_y + cos * params.shift_x
    # Swap to (x=col, y=row) and scale pixels to [-1, 1]: x_norm = 2 * x_centred / width.
    sx = torch.where(params.flip_h, -1.0, 1.0).to(torch.float64)
    sy = torch.where(params.flip_v, -1.0, 1.0).to(torch.float64)
    row0 = torch.stack([d * sx, c * height / width * sy, 2 * t_col / width], dim=-1)
    row1 = torch.stack([b * width / height * sx, a * sy, 2 * t_row / height], dim=-1)
    return torch.stack([row0, row1], dim=1).to(torch.float32)


def warp(
    images: torch.Tensor, matrices: torch.Tensor, fill_mode: FillMode = "nearest", cval: float = 0.0
) -> torch.Tensor:
    """Bilinearly resample float images (N, C, H, W) with per-image matrices from affine_matrices.

    Keras fill modes: nearest repeats the edge (``border``), reflect mirrors about the edge
    (``reflection``, dcba|abcd|dcba), constant fills with ``cval`` and wrap tiles the image.
    """
    n, c, h, w = images.shape
    grid = F.affine_grid(
        matrices.to(images.device, images.dtype), [n, c, h, w], align_corners=False
    )
    if fill_mode == "wrap":
        return _sample_wrapped(images, grid)
    if fill_mode == "constant":
        shifted = F.grid_sample(images - cval, grid, "bilinear", "zeros", align_corners=False)
        return shifted + cval
    if fill_mode not in _PADDING:
        raise ConfigError(
            f"fill_mode must be one of nearest, constant, reflect, wrap; received {fill_mode!r}."
        )
    return F.grid_sample(images, grid, "bilinear", _PADDING[fill_mode], align_corners=False)


def translate(images: torch.Tensor, pixels: int, generator: torch.Generator) -> torch.Tensor:
    """Shift each image of a batch (N, C, H, W) by its own whole-pixel offsets in
    [-pixels, pixels] on both axes, mirroring the edges: one gather for the batch, any dtype,
    no interpolation (the cheap translation of airbench-style CIFAR training)."""
    n, _, height, width = images.shape
    dy = torch.randint(-pixels, pixels + 1, (n, 1), generator=generator)
    dx = torch.randint(-pixels, pixels + 1, (n, 1), generator=generator)
    rows = _mirror(torch.arange(height) + dy, height)
    cols = _mirror(torch.arange(width) + dx, width)
    index = torch.arange(n)[:, None, None]
    moved = images.permute(0, 2, 3, 1)[index, rows[:, :, None], cols[:, None, :]]
    return moved.permute(0, 3, 1, 2).contiguous()


def _mirror(index: torch.Tensor, size: int) -> torch.Tensor:
    """Indices outside [0, size) reflected back in about the edge pixel (dcb|abcd|cba)."""
    if size == 1:
        return torch.zeros_like(index)
    period = 2 * (size - 1)
    index = torch.remainder(index, period)
    return torch.where(index >= size, period - index, index)


def _sample_wrapped(images: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Sample with periodic coordinates; a 1-pixel circular pad makes the seam interpolate too."""
    h, w = images.shape[-2:]
    size = grid.new_tensor([w, h])
    pixels = ((grid + 1) * size - 1) / 2
    pixels = torch.remainder(pixels + 0.5, size) - 0.5
    padded = F.pad(images, (1, 1, 1, 1), mode="circular")
    grid = (2 * (pixels + 1) + 1) / (size + 2) - 1
    return F.grid_sample(padded, grid, "bilinear", "border", align_corners=False)


class BatchAugment:
    """Per-image random augmentation of a uint8 batch, reproducible from a torch.Generator.

    Order: whole-pixel translation (a mirrored-edge random crop, as CIFAR training pads and
    crops), then Keras's (affine warp, flips, brightness), then RandAugment or
    TrivialAugmentWide, then random erasing. Only the random numbers of enabled options are
    drawn, so the output depends on the config and the generator state alone.
    """

    def __init__(self, cfg: AugmentConfig) -> None:
        self.cfg = cfg
        self._policy = _policy(cfg)
        self._erasing = None
        if cfg.random_erasing:
            from torchvision.transforms import v2

            self._erasing = v2.RandomErasing(p=cfg.random_erasing)

    def __repr__(self) -> str:
        return f"BatchAugment({self.cfg!r})"

    @property
    def costly(self) -> bool:
        """Whether a batch needs resampling (affine warps) or per-image policies, the dear
        part of augmentation; flips, brightness and whole-pixel translation are cheap."""
        cfg = self.cfg
        return bool(cfg.geometric or self._policy is not None or self._erasing is not None)

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Augment ``images`` (uint8 N, C, H, W); every image gets its own random parameters."""
        _check_uint8_batch(images)
        if self.cfg.translate:
            images = translate(images, self.cfg.translate, generator)
        params = self.sample(images.shape[0], images.shape[-2], images.shape[-1], generator)
        brightness = self._sample_brightness(images.shape[0], generator)
        out = self._pixels(images, params, brightness)
        if self._policy is not None or self._erasing is not None:
            out = self._per_image(out, generator)
        return out

    def sample(self, n: int, height: int, width: int, generator: torch.Generator) -> AffineParams:
        """Draw Keras-style affine and flip parameters for ``n`` images of the given size."""
        cfg = self.cfg
        base = AffineParams.identity(n)

        def uniform(low: float, high: float) -> torch.Tensor:
            return low + (high - low) * torch.rand(n, generator=generator, dtype=torch.float64)

        def coin(enabled: bool) -> torch.Tensor:
            return torch.rand(n, generator=generator) < 0.5 if enabled else base.flip_h

        r, s = cfg.rotation_range, cfg.shear_range
        hs, ws = cfg.height_shift_range, cfg.width_shift_range
        zoom = cfg.zoom_range != (1.0, 1.0)
        return AffineParams(
            rotation=uniform(-r, r) if r else base.rotation,
            shift_y=uniform(-hs, hs) * height if hs else base.shift_y,
            shift_x=uniform(-ws, ws) * width if ws else base.shift_x,
            shear=uniform(-s, s) if s else base.shear,
            zoom_y=uniform(*cfg.zoom_range) if zoom else base.zoom_y,
            zoom_x=uniform(*cfg.zoom_range) if zoom else base.zoom_x,
            flip_h=coin(cfg.horizontal_flip),
            flip_v=coin(cfg.vertical_flip),
        )

    def _sample_brightness(self, n: int, generator: torch.Generator) -> torch.Tensor | None:
        if self.cfg.brightness_range is None:
            return None
        low, high = self.cfg.brightness_range
        return low + (high - low) * torch.rand(n, generator=generator)

    def _pixels(
        self, images: torch.Tensor, params: AffineParams, brightness: torch.Tensor | None
    ) -> torch.Tensor:
        """Affine + flips + brightness; skips grid_sample when no affine knob is on (fast path)."""
        h, w = images.shape[-2:]
        if self.cfg.geometric:
            x = warp(
                images.float(), affine_matrices(params, h, w), self.cfg.fill_mode, self.cfg.cval
            )
        else:
            x = _flip(images, params.flip_h.to(images.device), -1)
            x = _flip(x, params.flip_v.to(images.device), -2)
            if brightness is None:
                return x
            x = x.float()
        if brightness is not None:
            x = x * brightness.to(x.device).view(-1, 1, 1, 1)
        return x.round_().clamp_(0, 255).to(torch.uint8)

    def _per_image(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """torchvision v2 ops one image at a time (they draw one parameter set per call)."""
        with seeded_global_rng(generator):
            out = []
            for image in images:
                if self._policy is not None:
                    image = self._policy(image)
                if self._erasing is not None:
                    image = self._erasing(image)
                out.append(image)
        return torch.stack(out)


class BatchMix:
    """MixUp and/or CutMix on a float batch; integer labels in, soft labels (N, K) out.

    With both enabled, each batch picks one of them at random (``v2.RandomChoice``), the usual
    timm / torchvision recipe.
    """

    def __init__(self, mixup: float, cutmix: float, num_classes: int) -> None:
        if num_classes < 1:
            raise ConfigError(f"mixup/cutmix need num_classes >= 1, received {num_classes}.")
        from torchvision.transforms import v2

        ops: list[Callable] = []
        if mixup > 0:
            ops.append(v2.MixUp(alpha=mixup, num_classes=num_classes))
        if cutmix > 0:
            ops.append(v2.CutMix(alpha=cutmix, num_classes=num_classes))
        if not ops:
            raise ConfigError("BatchMix needs mixup > 0 or cutmix > 0; received both 0.")
        self.num_classes = num_classes
        self._op = ops[0] if len(ops) == 1 else v2.RandomChoice(ops)

    def __call__(
        self, images: torch.Tensor, labels: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mix ``images`` (float N, C, H, W) and ``labels`` (int64 N,) into soft labels (N, K)."""
        if not images.is_floating_point():
            raise DataError(
                f"mixup/cutmix blend pixels and need float images, received {images.dtype}. "
                "Convert with to_float (set rescale) before mixing."
            )
        with seeded_global_rng(generator):
            mixed, soft = self._op(images, labels.to(torch.int64))
        return mixed, soft


def build_augment(cfg: AugmentConfig) -> BatchAugment | None:
    """The training augmentation for ``cfg``, or None when no augmentation is enabled."""
    enabled = (
        cfg.translate > 0
        or cfg.geometric
        or cfg.horizontal_flip
        or cfg.vertical_flip
        or cfg.brightness_range is not None
        or cfg.randaugment
        or cfg.trivialaugment
        or cfg.random_erasing > 0
    )
    return BatchAugment(cfg) if enabled else None


def build_batch_mix(cfg: AugmentConfig, num_classes: int) -> BatchMix | None:
    """MixUp / CutMix for ``cfg`` over ``num_classes`` classes, or None when both alphas are 0."""
    if cfg.mixup <= 0 and cfg.cutmix <= 0:
        return None
    return BatchMix(cfg.mixup, cfg.cutmix, num_classes)


@contextmanager
def seeded_global_rng(generator: torch.Generator) -> Iterator[None]:
    """Run torchvision v2 code (global RNG) reproducibly: fork the RNG, seed from ``generator``."""
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _policy(cfg: AugmentConfig) -> Callable | None:
    if not (cfg.randaugment or cfg.trivialaugment):
        return None
    from torchvision.transforms import v2

    return v2.RandAugment() if cfg.randaugment else v2.TrivialAugmentWide()


def _flip(images: torch.Tensor, mask: torch.Tensor, dim: int) -> torch.Tensor:
    if not bool(mask.any()):
        return images
    return torch.where(mask.view(-1, 1, 1, 1), images.flip(dim), images)


def _check_uint8_batch(images: torch.Tensor) -> None:
    if images.dtype != torch.uint8 or images.ndim != 4:
        raise DataError(
            "augmentation expects a uint8 batch (N, C, H, W), received "
            f"{images.dtype} with shape {tuple(images.shape)}."
        )
