"""imgclf: labelled images in, a trained, evaluated and deployable classifier out."""

from imgclf._version import __version__
from imgclf.classifier import ImageClassifier, load

__all__ = ["ImageClassifier", "__version__", "load"]
