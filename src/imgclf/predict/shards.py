"""Predictions made in shards under torchrun, joined on rank 0 as one process would give them."""

from __future__ import annotations

from imgclf.predict.predictions import Predictions, merge_shards


def joined_predictions(parts: list[Predictions], inputs) -> Predictions:
    """The ranks' shards as one, in the inputs' order. Only the whole can tell that no input
    gave an image (each shard alone may be empty), so that error is raised here, as one
    process raises it."""
    merged = merge_shards(parts)
    if not merged.paths:
        from imgclf.data.formats.inputs import no_images_message
        from imgclf.errors import DataError

        named = list(inputs) if isinstance(inputs, list | tuple) else [inputs]
        raise DataError(no_images_message([str(item) for item in named], merged.skipped))
    return merged
