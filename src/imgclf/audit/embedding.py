"""The audit's embeddings: the frozen backbone's pooled features of every row, computed once
by the models room's embed-once pass and cached where training caches them.

The pass, its backend choice and its cache are ``models.features.embed_once``'s; the cache
folder is training's (``<cache_dir>/embeddings``) and the key is the weights, preprocessing,
pooling and the image cache, so an audit and a feature-extraction run on the same images at
the same size share one file: whichever runs second embeds nothing.
"""

from __future__ import annotations

import numpy as np

from imgclf.audit.inputs import AuditData
from imgclf.config import ModelConfig
from imgclf.data.pipeline.cache import embeddings_dir
from imgclf.errors import ConfigError
from imgclf.runtime import Runtime


def backbone_size(model: ModelConfig) -> tuple[int, int]:
    """The backbone's pretrained input size, the audit's image size unless one is given; a
    recipe (random weights, nothing learned) is refused."""
    from imgclf.models.backbones import backbone_preprocess
    from imgclf.models.recipes import is_recipe

    if model.name == "custom" or is_recipe(model.name):
        raise ConfigError(
            f"The audit embeds images with a pretrained backbone; '{model.name}' is a recipe "
            "without pretrained weights. Leave model unset (efficientnet_lite0, offline) or "
            "pass a timm name such as resnet18."
        )
    return tuple(backbone_preprocess(model)["input_size"])


def audit_embeddings(
    data: AuditData,
    model: ModelConfig,
    *,
    fit: str = "resize",
    cache_dir=None,
    batch_size: int = 256,
    backend: str = "auto",
    runtime: Runtime | None = None,
    progress: bool = False,
) -> np.ndarray:
    """Unit-length float32 features (N, D) of every row (unusable rows are embedded as the
    zeros the cache holds for them, and never read). ``fit`` is the images' fit policy, part of
    the preprocessing a training run keys its embeddings by."""
    from imgclf.models.features.embeddings import embed_once
    from imgclf.models.network import build_model

    runtime = runtime or Runtime()
    size = data.images.shape[1:3]
    # The head is never used and the cache key does not depend on it; a classifier needs two
    # classes, so one-class data gets a placeholder second one.
    classes = data.classes if len(data.classes) > 1 else [*data.classes, "(none)"]
    frozen = model.model_copy(update={"mode": "feature_extract"})
    network = build_model(frozen, classes, data.images.shape[-1], size, fit=fit)
    network = network.to(runtime.device)
    embedded = embed_once(
        network,
        data.images,
        train=np.empty(0, dtype=np.int64),
        folder=embeddings_dir(cache_dir),
        batch_size=batch_size,
        images_id=data.images_id,
        progress=progress,
        runtime=runtime,
        backend=backend,
    )
    features = np.asarray(embedded.clean, dtype=np.float32)
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return features / np.maximum(norms, 1e-12)
