"""Opening a saved model by path: a bundle folder, or a run folder with its bundle in ``model/``.

The one place that decides "run or bundle" for the tools that take a model path (evaluate,
export, predict, serve, ``imgclf.load``): a run also brings its folder, its config and the data
it trained on, so those tools can score it on its own split without asking for data.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from imgclf.errors import ConfigError
from imgclf.layout import is_run_folder
from imgclf.models.bundle import load_bundle
from imgclf.models.network import ImageModel
from imgclf.runs.rundir import RunDir, read_run_config, require_model


@dataclass(frozen=True)
class OpenedModel:
    """A loaded network and, for a run folder, the run (None for a bare bundle).

    ``config`` and ``data`` are read from config.yaml when first asked for, so predicting and
    serving (which need neither) read no more than the bundle.
    """

    path: str | Path  # as given: messages name it as the user wrote it
    network: ImageModel
    run_dir: RunDir | None

    @cached_property
    def config(self) -> dict[str, Any] | None:
        """The run's resolved config (a dict, as config.yaml holds it); None for a bundle."""
        return read_run_config(self.run_dir) if self.run_dir is not None else None

    @cached_property
    def data(self) -> Any:
        """The data source the run trained on; None for a bundle or a run that records none."""
        if self.config is None:
            return None
        return self.config.get("data", {}).get("source") or None

    def scored_data(self, data: Any, purpose: str | None = None) -> Any:
        """``data`` when given, else the run's own data (to be split as the run split it).

        Args:
            purpose: what needs the data (e.g. "the parity gate"), for the error's wording.

        Raises:
            ConfigError: no ``data`` and the model records none.
        """
        if data is not None:
            return data
        if self.data is not None:
            return self.data
        if purpose is not None:
            raise ConfigError(
                f"{self.path} records no data for {purpose}: pass --data with images of its "
                "classes."
            )
        if self.run_dir is None:
            raise ConfigError(f"{self.path} is a model bundle, not a run folder: pass --data DATA.")
        raise ConfigError(f"{self.path} does not record its data source. Pass --data DATA.")


def open_model(path: str | Path) -> OpenedModel:
    """The model saved at ``path`` (a bundle or a run folder), in eval mode.

    Raises:
        ModelError: the run has no model (it failed, was interrupted or is still training: said
            first), or the bundle is missing or damaged.
    """
    require_model(path)
    network = load_bundle(path)
    run_dir = RunDir(Path(path)) if is_run_folder(path) else None
    return OpenedModel(path, network, run_dir)
