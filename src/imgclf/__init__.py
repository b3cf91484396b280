"""imgclf: labelled images in, a trained, evaluated and deployable classifier out."""

from imgclf import notebook as _notebook
from imgclf._version import __version__
from imgclf.classifier import ImageClassifier, load

_notebook.prepare_kernel()  # in a kernel, the figures imgclf returns show as a cell's value

__all__ = ["ImageClassifier", "__version__", "load"]
