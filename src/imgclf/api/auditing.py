"""Auditing data (``imgclf audit``): settings, the data read once (scan, split, decode into the
cache training shares), the audit room's checks, then its files."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imgclf.api.describe import data_name
from imgclf.api.settings import make_config

if TYPE_CHECKING:  # the CLI imports this module at start: the rooms only when auditing
    from imgclf.audit.result import Audit
    from imgclf.config import Config
    from imgclf.data.formats.resolve import DataLike


def audit(
    data: DataLike,
    out: str | Path | None = None,
    config: str | Path | dict | Config | None = None,
    progress: bool = True,
    write_clean: str | Path | None = None,
    **options: Any,
) -> Audit:
    """Audit ``data``: label issues, duplicates and leaks across splits, class balance, image
    properties.

    Args:
        data: folder, CSV, .npz, built-in set name, DataFrame or (images, labels).
        out: folder for audit.html, audit.json and issues.csv; None writes nothing
            (``default_audit_dir`` gives the CLI's default, a new ``runs/audit/<data>-<n>``).
        config: a YAML file, dict or Config under the keyword options.
        progress: show progress bars.
        write_clean: a CSV to write of the usable images less every flagged one (columns
            path, label, and split when the data has its own splits), which ``train`` reads
            as data; a folder or CSV of image files only.
        **options: audit settings (``checks``, ``folds``, ``label_threshold``,
            ``hash_distance``, ``min_similarity``, ``min_alignment``, ``neighbors``, ``dark``,
            ... see ``imgclf.audit.settings.AuditSettings``) and config keys for reading and
            embedding the data (``image_size``, ``val_split``, ``seed``, ``cache_dir``,
            ``model``, ``device``, ...).

    Returns:
        The Audit: ``summary_lines()``, ``rows()`` (issues.csv), ``to_dict()`` (audit.json).
    """
    from imgclf.audit.clean import check_target
    from imgclf.audit.clean import write_clean as write_clean_csv
    from imgclf.audit.embedding import backbone_size
    from imgclf.audit.inputs import audit_data
    from imgclf.audit.runner import run_audit
    from imgclf.audit.settings import audit_settings, split_options
    from imgclf.audit.writer import write_audit
    from imgclf.data.pipeline.prepare import prepare_data
    from imgclf.runtime import Runtime

    ours, overrides = split_options(options)
    settings = audit_settings(**ours)
    settings.require_extras()  # before any decoding: a missing package fails at once
    cfg = make_config(config, **overrides)
    if cfg.data.image_size is None:  # the backbone's own size, even for images that share one
        size = backbone_size(cfg.model)  # (CIFAR-10's 32 px embedded at 32 px lost the labels)
        cfg = cfg.model_copy(update={"data": cfg.data.model_copy(update={"image_size": size})})
    runtime = Runtime.from_config(cfg.train)
    started = time.perf_counter()
    prepared = prepare_data(data, cfg, progress=progress)
    read = time.perf_counter() - started
    rows = audit_data(prepared)
    if write_clean is not None:
        check_target(rows, write_clean)  # before the checks' minutes
    result = run_audit(rows, settings, cfg, runtime, progress)
    result.timings = {"data": read, **result.timings}
    if write_clean is not None:
        write_clean_csv(result, write_clean)
    if out is not None:
        write_audit(result, out)
    return result


def default_audit_dir(data: DataLike, project: str | Path = "runs") -> Path:
    """A new folder ``<project>/audit/<data>-<n>`` (the first free n; made when written)."""
    from imgclf.audit.writer import new_audit_folder

    return new_audit_folder(project, data_name(data))


def audit_setting_help(key: str) -> str:
    """An audit setting's description and default, as ``--help`` shows it."""
    from imgclf.audit.settings import AuditSettings

    field = AuditSettings.model_fields[key]
    default = field.get_default(call_default_factory=True)
    shown = ",".join(default) if isinstance(default, tuple) else default
    return f"{field.description}  [default: {shown}]"
