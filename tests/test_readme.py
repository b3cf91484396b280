"""Every Python example in the README runs (on a tiny folder standing in for the user's)."""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


SERVER = "http://127.0.0.1:8000"  # the client examples' server, started here for them


def _photos(root: Path, per_class: int) -> Path:
    """A tiny folder of noise photos in classes a and b, standing in for the user's."""
    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        for k in range(per_class):
            Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(
                root / cls / f"{k}.png"
            )
    return root


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_python_example_runs(code: str, tmp_path: Path, monkeypatch) -> None:
    photos = _photos(tmp_path / "path" / "to" / "photos", per_class=10)
    monkeypatch.chdir(tmp_path)
    if SERVER not in code:
        exec(compile(code, str(README), "exec"), {"__name__": "readme"})
        return
    # a client example: a real server on a tiny run of the same photos, on a free port
    from tests.serve.conftest import start_server, stop_server

    from imgclf import api

    run = api.train(photos, model="cnn", image_size=16, epochs=1, quiet=True,
                    project=tmp_path / "runs", name="photos")  # fmt: skip
    process, url = start_server(run.path, "--name", "photos", "--log-level", "warning")
    try:
        exec(compile(code.replace(SERVER, url), str(README), "exec"), {"__name__": "readme"})
    finally:
        stop_server(process)


def test_readme_has_python_examples() -> None:
    assert BLOCKS


SHELL_BLOCKS = re.findall(r"```bash\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def _imgclf_commands(block: str) -> list[list[str]]:
    """The arguments of every imgclf command in a shell block (after env assignments,
    `torchrun ... -m`, continuation lines and comments)."""

    commands = []
    for line in block.replace("\\\n", " ").splitlines():
        if not re.match(r"([A-Z_]+=\S*\s+)*(imgclf|torchrun)\b", line):
            continue  # another program (curl, python), or a line inside its quotes
        words = shlex.split(line, comments=True)
        while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):
            words.pop(0)  # IMGCLF_DATA_DIR=... imgclf ...
        if words[:1] == ["torchrun"] and "imgclf" in words:
            words = words[words.index("imgclf") :]
        if words[:1] == ["imgclf"]:
            commands.append([w for w in words[1:] if w != "&"])
    return commands


@pytest.mark.parametrize("block", SHELL_BLOCKS, ids=[f"sh{i}" for i in range(len(SHELL_BLOCKS))])
def test_readme_shell_block_is_valid_bash_and_every_imgclf_command_parses(block: str) -> None:
    """bash parses the block, and the CLI takes every imgclf command in it: its verb, options,
    choices and value types (the commands that train for minutes on real data are not run)."""
    import subprocess

    import typer.main

    from imgclf.cli import app

    checked = subprocess.run(["bash", "-n"], input=block, text=True, capture_output=True)
    assert checked.returncode == 0, checked.stderr
    for args in _imgclf_commands(block):
        _parse(typer.main.get_command(app), "imgclf", args)


def _parse(command, name: str, args: list[str]) -> None:
    """Parse ``args`` as click would run them, down to the verb, without running it."""
    with command.make_context(name, list(args)) as ctx:
        if not hasattr(command, "commands"):
            return
        protected = getattr(ctx, "_protected_args", None)  # click >= 8.2 (and Typer's copy)
        rest = [*(ctx.protected_args if protected is None else protected), *ctx.args]
    verb, sub, rest = command.resolve_command(ctx, rest)
    _parse(sub, f"{name} {verb}", rest)


def test_readme_shell_blocks_hold_imgclf_commands() -> None:
    assert sum(len(_imgclf_commands(block)) for block in SHELL_BLOCKS) > 40


def test_readme_v2_curl_example_runs_against_a_real_server(tmp_path: Path, monkeypatch) -> None:
    """The /v2 example with a body file built by its own command, on a photo far over the
    128 KB that an inline base64 argument can take, through curl."""
    import json
    import shutil
    import subprocess

    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    from tests.serve.conftest import start_server, stop_server

    from imgclf import api

    block = next(b for b in SHELL_BLOCKS if "body.json" in b)
    lines = block.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("python -c"))
    last = next(i for i, line in enumerate(lines) if "@body.json" in line)
    python = shlex.quote(sys.executable)  # a clone in a path with spaces
    script = "\n".join(lines[first : last + 1]).replace("python ", f"{python} ", 1)
    photos = _photos(tmp_path / "photos", per_class=6)
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(1)
    big = rng.integers(0, 256, (400, 400, 3), dtype=np.uint8)  # noise: a large JPEG
    Image.fromarray(big).save(tmp_path / "cat.jpg", quality=95)
    assert (tmp_path / "cat.jpg").stat().st_size > 150_000
    run = api.train(photos, model="cnn", image_size=16, epochs=1, quiet=True,
                    project=tmp_path / "runs", name="photos")  # fmt: skip
    process, url = start_server(run.path, "--name", "photos", "--log-level", "warning")
    try:
        script = script.replace(SERVER, url)
        done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
    finally:
        stop_server(process)
    assert done.returncode == 0, done.stderr
    outputs = {o["name"]: o for o in json.loads(done.stdout)["outputs"]}
    assert outputs["labels"]["data"][0] in ("a", "b")
