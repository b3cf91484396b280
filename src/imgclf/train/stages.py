"""Which stages a run trains in, from its model and config.

- Recipes, custom stacks, ``scratch`` and a randomly initialised ``finetune``: one stage,
  everything that the freezing policy leaves trainable, on pixels.
- ``feature_extract``: one stage, the head. With the embedding cache (the default) it trains on
  features computed once; with ``embedding_cache: false`` the frozen backbone runs every epoch
  (the tutorials' way).
- ``finetune`` with pretrained weights: stage 1 is that head stage; stage 2 (``finetune_epochs``,
  0 skips it) unfreezes the policy's blocks and trains on pixels with the backbone at
  ``backbone_lr`` times the head's lr, frozen BatchNorm statistics and a one-cycle schedule
  peaking at ``finetune_lr`` (fastai's ``fine_tune``). It starts from stage 1's best weights.
  Without pixel augmentation it trains on the frozen blocks' activations, computed once
  (``activations.py``).
"""

from __future__ import annotations

import torch
from torch import nn

from imgclf.config import Config
from imgclf.errors import ConfigError
from imgclf.models.network import ImageModel
from imgclf.runtime import Runtime
from imgclf.train.activations import cache_frozen_prefix, fold_frozen_prefix, frozen_chain
from imgclf.train.embeddings import embed_images
from imgclf.train.parts import Stage, TrainData


def plan_stages(
    model: ImageModel,
    data: TrainData,
    cfg: Config,
    images_id: str | None = None,
    progress: bool = False,
    runtime: Runtime | None = None,
) -> tuple[list[Stage], list[str]]:
    """The stages for ``model`` on ``data``, and notes for the user about the choices made;
    cached embeddings are computed here, on ``runtime``'s device."""
    sizes, notes = _progressive(model, data, list(cfg.train.progressive_sizes))
    mode, train = cfg.model.mode, cfg.train
    staged = mode == "finetune" and cfg.model.pretrained
    if not model.has_backbone or not (mode == "feature_extract" or staged):
        notes += _unused(cfg, _TRANSFER_KEYS, "a frozen or staged pretrained backbone")
        return [Stage("train", model, data, train, policy=cfg.model, sizes=sizes)], notes
    if mode == "feature_extract":
        notes += _unused(cfg, {"finetune_epochs", "finetune_lr"}, "mode finetune")
    head, head_notes = _head_stage(model, data, cfg, images_id, progress, runtime)
    notes += head_notes
    if mode == "feature_extract" or train.finetune_epochs == 0:
        if sizes:
            notes.append("progressive_sizes apply to pixel stages; this run trains only the head")
        return [head], notes
    finetune, finetune_notes = _finetune_stage(model, data, cfg, sizes, runtime, progress)
    return [head, finetune], notes + finetune_notes


def _head_stage(
    model: ImageModel,
    data: TrainData,
    cfg: Config,
    images_id: str | None,
    progress: bool,
    runtime: Runtime | None,
) -> tuple[Stage, list[str]]:
    """The head alone, the backbone frozen: on embeddings computed once (``embedding_cache``),
    or on pixels through the frozen backbone; and the notes about the embeddings."""
    train = cfg.train
    frozen = cfg.model.model_copy(update={"mode": "feature_extract"})
    if not train.embedding_cache:
        return Stage("head", model, data, train, frozen), []
    embeddings = embed_images(
        model,
        data.images,
        train=data.train,
        batch_size=train.eval_batch_size,
        views=train.augment_views,
        augment=cfg.augment,
        seed=cfg.seed,
        images_id=images_id,
        cache_dir=cfg.data.cache_dir,
        progress=progress,
        runtime=runtime,
        backend=train.embed_backend,
    )
    features = TrainData(embeddings.clean, data.labels, data.train, data.val, data.classes)
    head = Stage("head", model.classifier, features, train, frozen, embeddings)
    return head, _embedding_notes(cfg, embeddings)


def _finetune_stage(
    model: ImageModel,
    data: TrainData,
    cfg: Config,
    sizes: list[int],
    runtime: Runtime | None,
    progress: bool,
) -> tuple[Stage, list[str]]:
    """Stage 2: the policy's blocks unfrozen, one cycle peaking at ``finetune_lr``; on the
    frozen blocks' activations when they can be computed once, else on pixels with the frozen
    blocks folded. And a note on which."""
    train, notes = cfg.train, []
    unfrozen = train.model_copy(
        update={
            "epochs": train.finetune_epochs,
            "lr": train.finetune_lr or train.lr,
            "schedule": "onecycle",
            "warmup_epochs": 0.0,
        }
    )
    finetune = Stage("finetune", model, data, unfrozen, cfg.model, sizes=sizes)
    found = frozen_chain(model, data, cfg)
    cached, why_not = cache_frozen_prefix(model, data, cfg, found, runtime, progress)
    if cached is not None:
        finetune = Stage("finetune", cached.module, cached.data, unfrozen, cfg.model)
        notes.append(
            f"finetune trains from {cached.start} on: the frozen blocks before it ran once per "
            f"image ({cached.seconds:.1f} s), as stage 2 has no pixel augmentation"
        )
    else:
        if why_not:
            notes.append(f"finetune runs the frozen blocks every step: {why_not}")
        folded = fold_frozen_prefix(model, found)
        if folded is not None:
            finetune = Stage("finetune", folded, data, unfrozen, cfg.model, sizes=sizes)
    return finetune, notes


_TRANSFER_KEYS = {
    "embedding_cache", "embed_backend", "augment_views", "finetune_epochs", "finetune_lr",
    "activation_cache",
}  # fmt: skip


def _unused(cfg: Config, keys: set[str], needs: str) -> list[str]:
    """A note for transfer settings changed from their defaults that this run cannot use."""
    fields = type(cfg.train).model_fields
    given = sorted(k for k in keys if getattr(cfg.train, k) != fields[k].default)
    return [f"{', '.join(given)} ignored: only used with {needs}"] if given else []


def _embedding_notes(cfg: Config, embeddings) -> list[str]:
    notes = []
    where = embeddings.path.parent
    verb = "reused" if embeddings.reused else f"computed in {embeddings.seconds:.1f} s"
    views = f" + {len(embeddings.views)} augmented views" if embeddings.views is not None else ""
    on = " on ONNX Runtime" if embeddings.backend == "onnx" else ""
    notes.append(f"embeddings of {len(embeddings.clean)} images{views} {verb}{on} ({where})")
    if embeddings.note:
        notes.append(f"embedding on torch: {embeddings.note}")
    augment = cfg.augment
    if cfg.train.augment_views and embeddings.views is None:
        notes.append("augment_views ignored: no augmentation is enabled to make the views")
    elif embeddings.views is None and (augment.geometric or augment.horizontal_flip):
        notes.append(
            "augmentation does not reach cached embeddings: set augment_views (e.g. 5) or "
            "embedding_cache: false"
        )
    if augment.mixup or augment.cutmix:
        notes.append("mixup/cutmix apply to pixel stages only, not to the head on embeddings")
    return notes


def _progressive(model: ImageModel, data: TrainData, given: list) -> tuple[list[int], list[str]]:
    """The progressive sizes in pixels, and notes. Pixels the user gives must fit (an error
    says why not); fractions of the image size that the network cannot take are skipped with
    a note, so one config serves 32-pixel and 224-pixel images alike."""
    if not given:
        return [], []
    full = min(data.images.shape[1:3])
    if isinstance(given[0], int):
        _check_progressive(model, data, full, given)
        return list(given), []
    if not _resizable(model):
        return [], [f"progressive_sizes {given} skipped: the network takes one input size"]
    sizes = sorted({round(fraction * full) for fraction in given})
    kept = [size for size in sizes if 8 <= size < full and _too_small(model, data, size) is None]
    if len(kept) == len(sizes):
        return kept, []
    skipped = [size for size in sizes if size not in kept]
    return kept, [
        f"progressive sizes {skipped} px ({given} of {full} px) skipped: too small for this network"
    ]


def _check_progressive(model: ImageModel, data: TrainData, full: int, sizes: list[int]) -> None:
    if sizes[-1] >= full:
        raise ConfigError(
            f"progressive_sizes must be smaller than the image size {full}, received {sizes}."
        )
    if not _resizable(model):
        raise ConfigError(
            "progressive_sizes need a network that accepts any input size: a backbone with "
            "head pooling avg or max, or layers that end in global pooling (a flatten fixes "
            "the size)."
        )
    why = _too_small(model, data, sizes[0])
    if why:
        raise ConfigError(
            f"progressive size {sizes[0]} is too small for this network ({why}): use larger "
            "progressive_sizes."
        )


def _resizable(model: ImageModel) -> bool:
    if model.has_backbone:
        return model.spec["model"]["head"]["pooling"] != "flatten"
    return any(isinstance(m, nn.AdaptiveAvgPool2d | nn.AdaptiveMaxPool2d) for m in model.features)


def _too_small(model: ImageModel, data: TrainData, size: int) -> str | None:
    """Why the network cannot take ``size`` (a forward pass says), or None: so a size the
    layers cannot take fails before training, not mid-epoch."""
    param = next(model.parameters())
    probe = torch.zeros(1, data.images.shape[-1], size, size, device=param.device)
    training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(probe)
    except RuntimeError as err:
        return str(err).splitlines()[0]
    finally:
        model.train(training)
    return None
