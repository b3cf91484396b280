"""imgclf: labelled images in, a trained, evaluated and deployable classifier out."""

from imgclf import notebook as _notebook
from imgclf._version import __version__
from imgclf.classifier import ImageClassifier, load

if _notebook.in_notebook():  # figures imgclf returns show as the last value of a cell
    _notebook.prepare_kernel()

__all__ = ["ImageClassifier", "__version__", "load"]
