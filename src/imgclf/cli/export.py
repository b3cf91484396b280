"""`imgclf export RUN --format onnx`: the model in a registered format (listed by
``api.export_formats``), kept only when it passes the format's parity gate (for ONNX: PyTorch
and ONNX Runtime agree on the run's own held-out images; for onnx-int8: int8 agrees with fp32
and runs faster)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from imgclf import api, terminal
from imgclf.cli.app import user_errors
from imgclf.cli.options import DataDirOpt

_FORMATS_HELP = f"The format: {', '.join(api.export_formats())}."


def export(
    model: Annotated[
        str, typer.Argument(metavar="RUN", help="A run folder or a model bundle folder.")
    ],
    format: Annotated[str, typer.Option("--format", help=_FORMATS_HELP)] = "onnx",
    output: Annotated[
        Path | None,
        typer.Option(help="Folder for the export.  [default: the bundle's]", show_default=False),
    ] = None,
    layout: Annotated[str, typer.Option(help="The graph's uint8 input: nchw or nhwc.")] = "nchw",
    data: Annotated[
        str | None,
        typer.Option(
            help="Images for the parity gate.  [default: the run's test and val images]",
            show_default=False,
        ),
    ] = None,
    split: Annotated[str | None, typer.Option(help="Their split: test, val or train.")] = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Export a trained model to ONNX, with uint8 pixels in and softmax out, after checking
    on real images that ONNX Runtime gives PyTorch's answers (parity.json beside it);
    onnx-int8: quantized from it, kept when it agrees and is faster (parity-int8.json)."""
    with user_errors():
        record = api.export(
            model, format, output=output, data=data, split=split, layout=layout,
            data_dir=data_dir,
        )  # fmt: skip
    if "fp32_images_per_s" in record:
        _print_int8(record)
        return
    gate = record["attempts"][-1]
    for attempt in record["attempts"][:-1]:
        terminal.print_warning(f"exporter {attempt['exporter']} failed: {_failure(attempt)}")
    terminal.print_line(
        f"parity on {gate['images']} {record['split']} images: max |logit diff| "
        f"{gate['max_abs_logit_diff']:.1e}, top-1 agreement {gate['top1_agreement']:.0%}, "
        f"accuracy {gate['torch_accuracy']:.4f} (torch) = {gate['onnx_accuracy']:.4f} (onnx)"
    )
    terminal.print_line(
        f"Exported: {record['path']} (exporter {record['exporter']}, opset {record['opset']})"
    )


def _failure(attempt: dict) -> str:
    if "error" in attempt:
        return attempt["error"][:200]
    return f"max |logit diff| {attempt['max_abs_logit_diff']:.1e}"


def _print_int8(record: dict) -> None:
    gate = record["attempts"][-1]
    terminal.print_line(
        f"int8 gate on {record['images']} {record['split']} images: top-1 agreement with fp32 "
        f"{gate['top1_agreement']:.1%}, accuracy {gate['fp32_accuracy']:.4f} (fp32) -> "
        f"{gate['int8_accuracy']:.4f} (int8); {gate['int8_images_per_s']:.0f} images/s "
        f"against {record['fp32_images_per_s']:.0f} (x{gate['speedup']:.2f})"
    )
    terminal.print_line(
        f"Exported: {record['path']} (calibrated on {record['calibration']['images']} train "
        f"images, {gate['nodes_excluded']} nodes left in fp32)"
    )
