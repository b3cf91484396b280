"""`imgclf doctor ddp`: is distributed training on this machine the same as one process?"""

from __future__ import annotations

from typing import Annotated

import typer

from imgclf import api, terminal
from imgclf.cli.app import user_errors

doctor_app = typer.Typer(help="Checks of this machine's setup.", no_args_is_help=True)


@doctor_app.command("ddp")
def ddp(
    nproc_per_node: Annotated[
        int, typer.Option("--nproc-per-node", help="Processes to compare with one.")
    ] = 2,
    device: Annotated[str, typer.Option(help="cpu (gloo) or cuda (NCCL, one GPU each).")] = "cpu",
    epochs: Annotated[int, typer.Option(help="Epochs of each run.")] = 2,
) -> None:
    """Train a tiny model (dropout, flips) in 1 process and in N through torchrun, and print
    how far apart they end: they should agree within 1e-4."""
    with user_errors():
        report = api.check_ddp(nproc_per_node, device, epochs)
    n = report["processes"]
    terminal.print_line(
        f"epoch  loss (1 process)  loss ({n})  val accuracy (1)  val accuracy ({n})"
    )
    for row in report["epochs"]:
        (a, b), (c, d) = row["loss"], row["val_accuracy"]
        terminal.print_line(f"{row['epoch']:>5}  {a:16.6f}  {b:9.6f}  {c:16.4f}  {d:16.4f}")
    seconds = ", ".join(f"{p} process(es) {s:.1f} s" for p, s in report["seconds"].items())
    verdict = "the same within 1e-4" if report["ok"] else "DIFFERENT (more than 1e-4)"
    terminal.print_line(
        f"max |parameter difference| {report['max_param_diff']:.1e}: {verdict} ({seconds}; "
        f"{report['device']})"
    )
    if not report["ok"]:
        raise typer.Exit(1)
