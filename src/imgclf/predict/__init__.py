"""Prediction: image files, folders, globs, CSV tables and arrays -> Predictions -> a CSV.

``images.py`` decodes and predicts; ``predictions.py`` holds the result and writes it.
"""

from imgclf.data.formats.inputs import expand_inputs
from imgclf.predict.images import answerer, predict, predict_arrays, predict_image, scorer
from imgclf.predict.predictions import Predictions, merge_shards

__all__ = [
    "Predictions", "answerer", "expand_inputs", "merge_shards", "predict", "predict_arrays",
    "predict_image", "scorer",
]  # fmt: skip
