"""ImageClassifier: the notebook face of imgclf (scikit-learn style).

Parameters go in ``__init__`` (the same names as CLI flags and YAML keys) and nothing happens
there; ``fit`` does the work and returns ``self``; learned state ends in ``_``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from imgclf.config import Config
from imgclf.data.sources import DataLike
from imgclf.errors import ImgclfError


class ImageClassifier:
    """Train, evaluate, predict and save an image classifier.

    Args:
        model: a recipe (``cnn``, ``deep_cnn`` ...), ``custom`` or a timm backbone name.
        config: a YAML file, dict or Config under the keyword parameters.
        callbacks: callbacks added to training: imgclf.train.callbacks.Callback objects (the
            events, ``on_run_end`` with the final metrics included) or names (registered, or
            'package.module:ClassName'); YAML's ``train.callbacks`` names them too.
        **params: any config key, e.g. ``epochs=10, lr=1e-3, image_size=150, zoom_range=0.1``.
    """

    def __init__(
        self,
        model: str | None = None,
        config: str | Path | dict | Config | None = None,
        callbacks: Sequence[Any] = (),
        **params,
    ) -> None:
        self.model = model
        self.config = config
        self.callbacks = callbacks
        self.params = params

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The parameters as given (scikit-learn's contract: ``sklearn.base.clone`` works)."""
        return {
            "model": self.model,
            "config": self.config,
            "callbacks": self.callbacks,
            **self.params,
        }

    def set_params(self, **params: Any) -> ImageClassifier:
        """Change parameters (any config key, as in ``__init__``); returns ``self``."""
        for key, value in params.items():
            if key in ("model", "config", "callbacks"):
                setattr(self, key, value)
            else:
                self.params[key] = value
        return self

    def get_config(self) -> Config:
        """The resolved, validated config (defaults < config < parameters)."""
        from imgclf.api import make_config

        return make_config(self.config, model=self.model, **self.params)

    def fit(self, data: DataLike | None, resume: str | Path | None = None) -> ImageClassifier:
        """Train on ``data``; the run folder gets the bundle, metrics, plots and report.

        The data is read and the model built before the run folder is made, so a bad model
        name or unusable data leaves no folder. A run that fails after that records
        ``failed`` and the error in its status.json. Ctrl-C stops after the current batch with
        the state saved and raises TrainingInterrupted; ``resume=RUN`` continues it, and may
        add epochs (``epochs``, ``finetune_epochs``) or set a ``time_limit`` for the session.
        """
        from imgclf.artifacts import write_run_artifacts
        from imgclf.runs.rundir import create_run_dir, open_run_dir
        from imgclf.train.checkpoint import RESUME_STATE, load_resume_state
        from imgclf.training import (
            data_name,
            describe_run,
            finishing,
            prepare_training,
            recording_status,
            resume_config,
            run_training,
        )

        if resume is not None:
            run = open_run_dir(resume)
            cfg = resume_config(run, self._resume_request(), data)
            saved = load_resume_state(run.checkpoints / RESUME_STATE)
            source = data if data is not None else cfg.data.source
            setup = prepare_training(source, cfg, not cfg.run.quiet)
        else:
            cfg = self.get_config()
            if isinstance(data, str | Path):
                cfg.data.source = str(data)
            setup = prepare_training(data, cfg, not cfg.run.quiet)
            run = create_run_dir(cfg, data_name(data))
            describe_run(run, cfg, setup.prepared, not cfg.run.quiet)
            saved = None
        with recording_status(run):
            result = run_training(setup, cfg, run, saved, self._callback_objects())
            with finishing(not cfg.run.quiet):
                self.metrics_ = write_run_artifacts(result, cfg)
            for callback in result.callbacks:
                callback.on_run_end(self.metrics_, result.state)
        self.model_ = result.model
        self.classes_ = result.prepared.classes
        self.history_ = result.state.history
        self.run_dir_ = run.path
        self.config_ = cfg
        return self

    def _callback_objects(self) -> list:
        from imgclf.train.callbacks import create_callback

        return [create_callback(c) if isinstance(c, str) else c for c in self.callbacks]

    def _resume_request(self) -> dict[str, Any]:
        """The settings this classifier asks for, as {'section.key': value} (for a resume)."""
        from imgclf.config_loader import dotted_overrides, load_yaml

        config = self.config
        if isinstance(config, str | Path):
            config = load_yaml(config)
        elif isinstance(config, Config):
            config = config.model_dump(exclude_unset=True)
        return dotted_overrides(config, model=self.model, **self.params)

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
        return evaluate_model(self._fitted(), data, split=split, config=config, **overrides)

    def predict(self, inputs, **kwargs: Any):
        """Predictions for image files, folders, globs, a CSV of paths, or an image array."""
        import numpy as np

        from imgclf.predict import predict, predict_arrays

        if isinstance(inputs, np.ndarray):
            return predict_arrays(self._fitted(), inputs, **kwargs)
        inputs = [inputs] if isinstance(inputs, str | Path) else list(inputs)
        return predict(self._fitted(), inputs, **kwargs)

    def save(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write the model bundle (model.safetensors + model.json) to ``path``."""
        from imgclf.export.bundle import save_bundle

        return save_bundle(self._fitted(), path, overwrite=overwrite)

    def summary(self, depth: int = 1):
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

    def _fitted(self):
        if not hasattr(self, "model_"):
            raise ImgclfError("This ImageClassifier is not fitted yet. Call fit(data) first.")
        return self.model_


def load(path: str | Path) -> ImageClassifier:
    """A fitted ImageClassifier from a bundle folder or a run folder (its model/)."""
    from imgclf.export.bundle import load_bundle
    from imgclf.runs.rundir import require_model

    require_model(path)
    model = load_bundle(path)
    classifier = ImageClassifier(model=model.spec["model"]["name"])
    classifier.model_ = model
    classifier.classes_ = model.classes
    classifier.history_ = []
    if (Path(path) / "config.yaml").is_file():  # a run folder: its splits and its history
        from imgclf.runs.rundir import RunDir, read_history, read_run_config

        run = RunDir(Path(path))
        classifier.config_ = Config.model_validate(read_run_config(run))
        classifier.history_ = read_history(run)
        classifier.run_dir_ = run.path
    return classifier
