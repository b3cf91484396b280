"""TensorBoard: the run's curves and hyperparameters in ``<run>/tensorboard``, one TB run.

``tensorboard --logdir runs/`` then shows every run folder as one run. Everything goes into
that one event directory: ``SummaryWriter.add_hparams`` would make a sub-run per call
(pytorch#32651), so the hparams summaries are written by hand next to the scalars.
"""

from __future__ import annotations

from pathlib import Path

from imgclf.track import final_metrics, flatten, missing, numeric
from imgclf.train.callbacks import Callback, TrainState

EVENT_DIR = "tensorboard"
"""The event directory's name inside the run folder."""


class TensorBoardTracker(Callback):
    """Scalars per epoch (step = epoch), and at the run's end the flattened config as
    hparams with the final scores (``final/...``) as their metrics."""

    def __init__(self, run_path: Path, config: dict) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # torch raises ImportError itself when tensorboard is absent
            raise missing("tensorboard", "tensorboard") from None
        self._make_writer = SummaryWriter
        self.log_dir = run_path / EVENT_DIR
        self.config = config
        self._writer = None

    def writer(self):
        """The open writer (opened on first use: a new event file in the same directory)."""
        if self._writer is None:
            self._writer = self._make_writer(log_dir=str(self.log_dir))
        return self._writer

    def close(self) -> None:
        """Flush and close; safe to call again."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def on_train_begin(self, state: TrainState) -> None:
        self.writer()

    def on_epoch_end(self, epoch: int, logs: dict, state: TrainState) -> None:
        writer = self.writer()
        for name, value in numeric(logs).items():
            writer.add_scalar(name, value, epoch)
        writer.flush()

    def on_train_end(self, state: TrainState) -> None:
        # Closed here as on_run_end does not come when the run fails after training; when it
        # does come, it writes its summaries through a second event file in the same directory.
        self.close()

    def on_run_end(self, metrics: dict, state: TrainState) -> None:
        from torch.utils.tensorboard.summary import hparams

        final = final_metrics(metrics)
        writer = self.writer()
        for summary in hparams(flatten(self.config), final):
            writer.file_writer.add_summary(summary)
        for name, value in final.items():
            writer.add_scalar(name, value, state.epoch)
        self.close()
