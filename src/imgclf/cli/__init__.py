"""The command line: a thin typed shell over the Python API (imgclf.api), one module per verb.

Errors imgclf raises on purpose print one clear line and exit with code 2; ``--debug`` shows
the traceback instead (see ``cli/app.py``). The commands are registered here, in the order
``imgclf --help`` lists them.
"""

from imgclf.cli import (
    audit,
    demo,
    doctor,
    evaluate,
    export,
    inspect,
    lr_find,
    predict,
    runs,
    serve,
    summary,
    sweep,
    train,
)
from imgclf.cli.app import app, main

for _name, _command in (
    ("inspect", inspect.inspect),
    ("audit", audit.audit),
    ("summary", summary.summary),
    ("train", train.train),
    ("lr-find", lr_find.lr_find),
    ("evaluate", evaluate.evaluate),
    ("predict", predict.predict),
    ("export", export.export),
    ("serve", serve.serve),
    ("demo", demo.demo),
):
    app.command(_name)(_command)
app.add_typer(runs.runs_app, name="runs")
app.add_typer(sweep.sweep_app, name="sweep")
app.add_typer(doctor.doctor_app, name="doctor")
del _name, _command

__all__ = ["app", "main"]
