"""The house's size rules (issue 22, docs/architecture.md): no module of imgclf over 400 lines
and no function whose body runs over 60. The signature and the docstring are not counted: a
Typer command declares one option a line, which reads as a table, not as logic."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "imgclf"
MODULE_LINES = 400
BODY_LINES = 60


def body_lines(function: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines from the first statement after the docstring to the function's last line."""
    body = function.body
    if len(body) > 1 and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    return function.end_lineno - body[0].lineno + 1


def test_no_module_is_over_400_lines() -> None:
    sizes = {p.relative_to(SRC): len(p.read_text().splitlines()) for p in SRC.rglob("*.py")}
    assert len(sizes) > 100  # the whole package was read
    assert {path: n for path, n in sizes.items() if n > MODULE_LINES} == {}


def test_no_function_body_is_over_60_lines() -> None:
    long = {}
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                if body_lines(node) > BODY_LINES:
                    long[f"{path.relative_to(SRC)}:{node.name}"] = body_lines(node)
    assert long == {}


def test_the_count_starts_after_the_docstring() -> None:
    source = 'def f(\n    a: int = 1,\n) -> int:\n    """Doc."""\n    b = a\n    return b\n'
    (function,) = ast.parse(source).body
    assert body_lines(function) == 2
