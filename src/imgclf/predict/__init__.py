"""Prediction: image files, folders, globs, CSV tables and arrays -> Predictions -> a CSV.

``images.py`` decodes and predicts; ``predictions.py`` holds the result and writes it.
"""

from imgclf.data.formats.inputs import expand_inputs
from imgclf.predict.images import predict, predict_arrays, predict_image
from imgclf.predict.predictions import Predictions, merge_shards
from imgclf.predict.scoring import answerer, scorer

__all__ = [
    "Predictions", "answerer", "expand_inputs", "merge_shards", "predict", "predict_arrays",
    "predict_image", "scorer",
]  # fmt: skip
