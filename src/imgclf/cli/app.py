"""The Typer app, its ``--debug`` / ``--version`` callback and the one way errors reach the
user: an ImgclfError is one red line and exit code 2 (``--debug`` shows the traceback instead).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from typer.core import TyperGroup

from imgclf import terminal
from imgclf._version import __version__
from imgclf.errors import ImgclfError, TrainingInterrupted

try:  # Typer 0.2x carries its own copy of click
    from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError
except ImportError:  # older Typer runs on click itself
    from click.exceptions import ClickException, NoArgsIsHelpError, UsageError


class OneLineErrors(TyperGroup):
    """Click's usage errors (a bad value, an unknown option or command) as one line, like every
    other imgclf error, with the help command to run: 'Error: Invalid value for '--epochs': ...
    See 'imgclf train --help'.' Help shown for a bare command stays as click prints it."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        call = super().main
        if not standalone_mode:
            return call(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = call(args, prog_name, complete_var, standalone_mode=False, **extra)
        except NoArgsIsHelpError as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except UsageError as exc:
            where = f" See '{exc.ctx.command_path} --help'." if exc.ctx is not None else ""
            message = exc.format_message().replace("Value error, ", "")  # pydantic's prefix
            terminal.print_error(message + ("" if message.endswith((".", "?")) else ".") + where)
            sys.exit(exc.exit_code)
        except ClickException as exc:
            terminal.print_error(exc.format_message())
            sys.exit(exc.exit_code)
        except typer.Abort:
            terminal.print_error("Aborted.")
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    name="imgclf",
    cls=OneLineErrors,
    help="Labelled images in; a trained, evaluated, comparable, deployable classifier out.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # click's plain help: wraps at words on a terminal, never in pipes
)
_state = {"debug": False}


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn ImgclfError into one red line and exit code 2 (unless --debug); an interrupted run
    says how to resume it and exits with 130, as a shell does on Ctrl-C."""
    try:
        yield
    except TrainingInterrupted as exc:
        terminal.print_warning(str(exc))
        raise typer.Exit(exc.exit_code) from None
    except ImgclfError as exc:
        if _state["debug"]:
            raise
        terminal.print_error(str(exc))
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        if _state["debug"]:
            raise
        terminal.print_warning("interrupted; files already written are complete")
        raise typer.Exit(130) from None


def _version(value: bool) -> None:
    if value:
        typer.echo(f"imgclf {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks for imgclf errors.")
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print version.")
    ] = False,
) -> None:
    _state["debug"] = debug


def main() -> None:
    """Console-script entry point: help at the terminal's width, unwrapped in pipes.

    A command holds many long-lived objects (60,000 file records for CIFAR-10, the modules),
    so the garbage collector runs less often here (still collecting every cycle it finds):
    start-up to the first epoch of a CIFAR-10 run 3.9 s -> 3.4 s. And whatever way the command
    ends (Typer exits with SystemExit), the objects alive then are frozen out of the collector:
    the interpreter's last full collection at exit walked every one of them, 1.2 s after such a
    run had written everything (py-spy: gc_collect_main). The OS takes the memory back.
    """
    import gc

    gc.set_threshold(100_000, 50, 100)
    try:
        app(**terminal.help_settings())
    finally:
        gc.freeze()
