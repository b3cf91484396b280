"""Frozen-backbone features: the embed-once pass, its cache on disk, and its backend.

Training's head stage and the data audit (K-fold heads, near-duplicates) both read a frozen
backbone's pooled features, so they live beside the models, not inside ``train``.
"""

from imgclf.models.features.backend import EMBED_BACKENDS, planned_backend
from imgclf.models.features.embeddings import Embeddings, embed_once

__all__ = ["EMBED_BACKENDS", "Embeddings", "embed_once", "planned_backend"]
