"""ImageClassifier: the notebook face of imgclf (scikit-learn style).

Parameters go in ``__init__`` (the same names as CLI flags and YAML keys) and nothing happens
there; ``fit`` does the work and returns ``self``; learned state ends in ``_``.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imgclf.errors import ImgclfError

if TYPE_CHECKING:  # names for annotations: importing imgclf stays cheap (no pydantic, numpy)
    from imgclf.config import Config
    from imgclf.data.formats.resolve import DataLike


class ImageClassifier:
    """Train, evaluate, predict and save an image classifier.

    Args:
        model: a recipe (``cnn``, ``deep_cnn`` ...), ``custom`` or a timm backbone name.
        config: a YAML file, dict or Config under the keyword parameters.
        mode: how a pretrained backbone trains, ``model.mode`` (its choices:
            ``imgclf.config.TrainMode``).
        epochs: training epochs (a staged fine-tune: the head's; then ``finetune_epochs``).
        batch_size: images per training batch.
        lr: learning rate (the peak of a schedule).
        image_size: square side in pixels (None: the images' own size, else the model's).
        seed: the seed of splits, weights and augmentation.
        device: where to compute, ``train.device``, e.g. ``"cuda"`` (its choices and what
            they mean: ``TrainConfig.device`` in imgclf.config).
        precision: the arithmetic, ``train.precision``, e.g. ``"bf16-mixed"`` (its choices and
            what each needs: ``TrainConfig.precision``).
        callbacks: callbacks added to training: imgclf.train.callbacks.Callback objects (the
            events, ``on_run_end`` with the final metrics included) or names (registered, or
            'package.module:ClassName'); YAML's ``train.callbacks`` names them too.
        **params: any other config key, e.g. ``patience=5, zoom_range=0.1, project="runs"``.
    """

    def __init__(
        self,
        model: str | None = None,
        config: str | Path | dict | Config | None = None,
        *,
        mode: str | None = None,
        epochs: int | None = None,
        batch_size: int | None = None,
        lr: float | None = None,
        image_size: int | tuple[int, int] | None = None,
        seed: int | None = None,
        device: str | None = None,
        precision: str | None = None,
        callbacks: Sequence[Any] = (),
        **params: Any,
    ) -> None:
        self.model = model
        self.config = config
        self.mode = mode
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.image_size = image_size
        self.seed = seed
        self.device = device
        self.precision = precision
        self.callbacks = callbacks
        self.params = params

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The parameters as given (scikit-learn's contract: ``sklearn.base.clone`` works)."""
        return {**{name: getattr(self, name) for name in _NAMED}, **self.params}

    def set_params(self, **params: Any) -> ImageClassifier:
        """Change parameters (any config key, as in ``__init__``); returns ``self``."""
        for key, value in params.items():
            if key in _NAMED:
                setattr(self, key, value)
            else:
                self.params[key] = value
        return self

    def get_config(self) -> Config:
        """The resolved, validated config (defaults < config < parameters)."""
        from imgclf.api import make_config

        return make_config(self.config, **self._overrides())

    def _overrides(self) -> dict[str, Any]:
        """The config keys given, named or not (None: not given)."""
        named = {
            name: getattr(self, name) for name in _NAMED if name not in ("config", "callbacks")
        }
        return {**{k: v for k, v in named.items() if v is not None}, **self.params}

    def fit(self, data: DataLike | None, resume: str | Path | None = None) -> ImageClassifier:
        """Train on ``data``; the run folder gets the bundle, metrics, plots and report.

        The data is read and the model built before the run folder is made, so a bad model
        name or unusable data leaves no folder. A run that fails after that records
        ``failed`` and the error in its status.json. Ctrl-C stops after the current batch with
        the state saved and raises TrainingInterrupted; ``resume=RUN`` continues it, and may
        add epochs (``epochs``, ``finetune_epochs``) or set a ``time_limit`` for the session.
        """
        from imgclf.api import train

        run = train(data, self.config, resume=resume, callbacks=self.callbacks, **self._overrides())
        self.model_ = run.model
        self.classes_ = run.classes
        self.history_ = run.history
        self.metrics_ = run.metrics
        self.run_dir_ = run.path
        self.config_ = run.config
        self.runtime_ = run.runtime
        return self

    def lr_find(self, data: DataLike, stage: str | None = None, **kwargs: Any):
        """The learning-rate range test of this classifier's config on ``data``; fits nothing.

        A fresh model is built and tested as ``fit`` would train it, then discarded; the
        result (``suggestion``, ``minimum``, ``steepest``, the curve) is returned and kept as
        ``lr_find_`` for ``plot_lr_find``. ``kwargs`` are those of ``imgclf.api.lr_find``
        (``num_steps``, ``start_lr``, ``end_lr``, ``out``, ``progress``).
        """
        from imgclf.api import lr_find

        cfg = self.get_config()
        kwargs.setdefault("progress", not cfg.run.quiet)
        self.lr_find_ = lr_find(data, config=cfg, stage=stage, **kwargs)
        return self.lr_find_

    def evaluate(self, data: DataLike, split: str | None = None, **overrides: Any):
        """Accuracy, loss, per-class report and confusion matrix of the model on ``data``.

        The data is decoded with the model's own preprocessing; its classes must be the
        model's. On the data this classifier was trained on, the run's own ``split`` is scored
        (default test, else val); on other data, the data's own split (split folders, a split
        column, an official test set), or every image when it has none (named ``data``).
        """
        from imgclf.api import evaluate_model

        config = getattr(self, "config_", None)
        overrides.setdefault("runtime", getattr(self, "runtime_", None))
        return evaluate_model(self._fitted(), data, split=split, config=config, **overrides)

    def predict(self, inputs, **kwargs: Any):
        """Predictions for image files, folders, globs, a CSV of paths, or an image array."""
        import numpy as np

        from imgclf.predict import predict, predict_arrays

        kwargs.setdefault("runtime", getattr(self, "runtime_", None))
        if isinstance(inputs, np.ndarray):
            return predict_arrays(self._fitted(), inputs, **kwargs)
        inputs = [inputs] if isinstance(inputs, str | Path) else list(inputs)
        return predict(self._fitted(), inputs, **kwargs)

    def save(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write the model bundle (model.safetensors + model.json) to ``path``."""
        from imgclf.models.bundle import save_bundle

        return save_bundle(self._fitted(), path, overwrite=overwrite)

    def summary(self, depth: int = 1):
        """The Keras-style table of layers, output shapes and parameters, printed (in a
        notebook: shown as the cell's result instead)."""
        return self._fitted().summary(depth=depth)

    def plot_history(self):
        """Learning curves of the last fit, as a matplotlib figure (for notebooks)."""
        from imgclf.evaluate.plots import learning_curves_figure

        return learning_curves_figure(self.history_)

    def plot_lr_find(self):
        """The curve of the last ``lr_find``, as a matplotlib figure (for notebooks)."""
        from imgclf.evaluate.lr_find_plot import lr_find_figure

        if not hasattr(self, "lr_find_"):
            raise ImgclfError("No range test yet. Call lr_find(data) first.")
        return lr_find_figure(self.lr_find_)

    def _set_params(self) -> dict[str, Any]:
        """The parameters given (not None, not an empty list of callbacks)."""
        return {k: v for k, v in self.get_params().items() if v is not None and v not in ((), [])}

    def __repr__(self) -> str:
        set_params = self._set_params()
        arguments = ", ".join(f"{k}={v!r}" for k, v in set_params.items())
        if not hasattr(self, "model_"):
            return f"ImageClassifier({arguments})"
        from imgclf.runs.run import score_text

        return f"ImageClassifier({arguments}) fitted: {score_text(self.metrics_)}"

    def _repr_html_(self) -> str:
        from imgclf import notebook

        set_params = self._set_params()
        rows = [[name, repr(value)] for name, value in set_params.items()]
        params = notebook.table(["parameter", "value"], rows)
        if not hasattr(self, "model_"):
            return notebook.card("ImageClassifier (not fitted)", params if set_params else "")
        from imgclf.runs.run import run_card

        run_dir = getattr(self, "run_dir_", None)
        return notebook.card(
            f"ImageClassifier: {self.model_.spec['model']['name']}",
            params if set_params else "",
            run_card(Path(run_dir) if run_dir else None, getattr(self, "metrics_", {}) or {},
                     self.history_, self.classes_),
        )  # fmt: skip

    def _fitted(self):
        if not hasattr(self, "model_"):
            raise ImgclfError("This ImageClassifier is not fitted yet. Call fit(data) first.")
        return self.model_


# The parameters named in the signature, as scikit-learn reads them (the rest go through
# **params); None: not set, so the config file or the schema's default decides.
_NAMED = tuple(
    name
    for name, parameter in inspect.signature(ImageClassifier.__init__).parameters.items()
    if name != "self" and parameter.kind is not parameter.VAR_KEYWORD
)


def load(path: str | Path) -> ImageClassifier:
    """A fitted ImageClassifier from a bundle folder or a run folder (its model/)."""
    from imgclf.runs.opening import open_model

    opened = open_model(path)
    model = opened.network
    classifier = ImageClassifier(model=model.spec["model"]["name"])
    classifier.model_ = model
    classifier.classes_ = model.classes
    classifier.history_ = []
    if opened.run_dir is not None:  # a run folder: its splits and its history
        from imgclf.config import Config
        from imgclf.runs.rundir import read_history

        classifier.config_ = Config.model_validate(opened.config)
        classifier.history_ = read_history(opened.run_dir)
        classifier.run_dir_ = opened.run_dir.path
    return classifier
