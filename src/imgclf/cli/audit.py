"""`imgclf audit DATA`: label issues, duplicates and leaks across splits, class balance and image
properties, written as audit.html, audit.json and issues.csv."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from imgclf import api, terminal
from imgclf.cli.app import user_errors
from imgclf.cli.options import (
    CacheDirOpt,
    ConfigOpt,
    DataArg,
    DataDirOpt,
    DeviceOpt,
    ImageSizeOpt,
    LabelColumnOpt,
    PathColumnOpt,
    QuietOpt,
    SeedOpt,
    SplitColumnOpt,
    TestSplitOpt,
    ValSplitOpt,
    key_values,
)

_Output = Annotated[
    Path | None,
    typer.Option(
        "--output",
        "-o",
        help="Folder for audit.html, audit.json and issues.csv.  [default: a new "
        "runs/audit/DATA-N, as runs are numbered]",
        show_default=False,
    ),
]
_Checks = Annotated[
    str | None,
    typer.Option(metavar="NAMES", help=api.audit_setting_help("checks"), show_default=False),
]
_HashDistance = Annotated[
    int | None, typer.Option(help=api.audit_setting_help("hash_distance"), show_default=False)
]
_MinSimilarity = Annotated[
    float | None, typer.Option(help=api.audit_setting_help("min_similarity"), show_default=False)
]
_MinAlignment = Annotated[
    float | None, typer.Option(help=api.audit_setting_help("min_alignment"), show_default=False)
]
_Folds = Annotated[
    int | None, typer.Option(help=api.audit_setting_help("folds"), show_default=False)
]
_Neighbors = Annotated[
    int | None, typer.Option(help=api.audit_setting_help("neighbors"), show_default=False)
]
_Set = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        metavar="KEY=VALUE",
        help="Any audit setting (label_threshold, dark, bright, uniform, blurry, min_side, "
        "max_aspect, max_shown) or config key, repeatable: --set dark=0.15",
    ),
]
_WriteClean = Annotated[
    Path | None,
    typer.Option(
        metavar="CSV",
        help="Also write a path,label table (and split, for data with its own splits) of the "
        "usable images less every flagged one; imgclf train CSV reads it.",
        show_default=False,
    ),
]
_Workers = Annotated[
    int | None,
    typer.Option(help="Decoding processes.  [default: all cores]", show_default=False),
]


def audit(
    data: DataArg,
    output: _Output = None,
    checks: _Checks = None,
    image_size: ImageSizeOpt = None,
    folds: _Folds = None,
    hash_distance: _HashDistance = None,
    min_similarity: _MinSimilarity = None,
    min_alignment: _MinAlignment = None,
    neighbors: _Neighbors = None,
    settings: _Set = None,
    write_clean: _WriteClean = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print audit.json.")] = False,
    quiet: QuietOpt = False,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    cache_dir: CacheDirOpt = None,
    val_split: ValSplitOpt = None,
    test_split: TestSplitOpt = None,
    seed: SeedOpt = None,
    path_column: PathColumnOpt = None,
    label_column: LabelColumnOpt = None,
    split_column: SplitColumnOpt = None,
    workers: _Workers = None,
    device: DeviceOpt = None,
) -> None:
    """Find wrong labels, duplicates and leaks across splits, class imbalance and bad images."""
    with user_errors():
        options = {
            "checks": checks, "folds": folds, "hash_distance": hash_distance,
            "min_similarity": min_similarity, "min_alignment": min_alignment,
            "neighbors": neighbors, "image_size": image_size,
            "data_dir": data_dir,
            "cache_dir": cache_dir, "val_split": val_split, "test_split": test_split,
            "seed": seed, "path_column": path_column, "label_column": label_column,
            "split_column": split_column, "workers": workers, "device": device,
            **key_values(settings),
        }  # fmt: skip
        result = api.audit(
            data,
            out=output or api.default_audit_dir(data),
            config=config,
            progress=not (quiet or as_json),
            write_clean=write_clean,
            **options,
        )
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
        return
    for line in result.summary_lines():
        terminal.print_line(line)
    terminal.print_line(f"Report: {Path(result.files['page']).resolve()}")
    terminal.print_line(f"Issues: {Path(result.files['issues']).resolve()}")
    if result.clean is not None:
        terminal.print_line(
            f"Clean: {Path(result.files['clean']).resolve()} ({result.clean} images, every "
            "flagged one left out)"
        )
