"""The Python API. The CLI and the estimator call these functions; notebooks call them directly.

Every function takes the data plus config keys as keyword arguments (the same names as the
CLI flags and the YAML keys), or a ``config`` file / dict underneath them.

- ``train``: one run, end to end (api/training.py, the one module between the CLI and the
  rooms on the train path); ``lr_find``: the learning-rate range test.
- ``evaluate`` / ``evaluate_model`` / ``predict``: a trained model on data (api/evaluation.py;
  the split scored is evaluate/splits.py's rule, the backend predict/backend.py's);
  ``export`` / ``export_formats``: a registered format (onnx) with its parity gate
  (api/exporting.py); ``serve`` / ``serve_app``: the model behind FastAPI (api/serving.py).
- ``inspect`` / ``load_data`` / ``summarize``: looking at data and models (api/describe.py);
  ``audit``: label issues, duplicates and leaks across splits, class balance and image properties,
  written as audit.html, audit.json and issues.csv (api/auditing.py, over the audit room);
  ``make_config``, ``setting_type``, ``setting_help``: the settings and their schema
  (api/settings.py).
- ``runs`` / ``show_run`` / ``score_run`` / ``remove_runs``: the project's ledger
  (api/experiments.py); ``sweep`` / ``sweep_report``: Optuna studies of many runs
  (api/sweeping.py, over sweep/runner.py's trial loop).
"""

from imgclf.api.auditing import audit, audit_setting_help, default_audit_dir
from imgclf.api.describe import (
    data_label,
    data_name,
    default_inspect_dir,
    inspect,
    load_data,
    render_data_report,
    summarize,
)
from imgclf.api.doctor import check_ddp
from imgclf.api.evaluation import evaluate, evaluate_model, predict
from imgclf.api.experiments import (
    RUN_COLUMNS,
    compare,
    prediction_grid_output,
    prediction_output,
    ranking_disagreements,
    remove_runs,
    runs,
    save_prediction_grid,
    score_run,
    show_run,
    write_predictions,
)
from imgclf.api.exporting import export, export_formats
from imgclf.api.launching import launch, under_torchrun, without_launch_options
from imgclf.api.serving import serve, serve_app
from imgclf.api.settings import (
    make_config,
    requested_settings,
    schema_default,
    setting_help,
    setting_type,
)
from imgclf.api.sweeping import SweepResult, sweep, sweep_report
from imgclf.api.training import lr_find, train, write_lr_find

__all__ = [
    "RUN_COLUMNS", "audit", "audit_setting_help", "check_ddp", "compare", "data_label",
    "data_name", "default_audit_dir", "default_inspect_dir",
    "evaluate",
    "export", "export_formats", "launch", "under_torchrun", "without_launch_options",
    "evaluate_model", "inspect", "load_data", "lr_find", "make_config", "predict",
    "prediction_grid_output",
    "prediction_output",
    "ranking_disagreements", "remove_runs", "render_data_report", "requested_settings", "runs",
    "save_prediction_grid", "schema_default", "setting_help", "setting_type",
    "score_run", "serve", "serve_app", "show_run", "summarize", "SweepResult",
    "sweep", "sweep_report",
    "train", "write_lr_find",
    "write_predictions",
]  # fmt: skip
