"""imgclf: labelled images in, a trained, evaluated and deployable classifier out."""

__version__ = "0.1.0.dev0"
