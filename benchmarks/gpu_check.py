"""The prepared GPU check (issue 23): the CUDA paths end to end, one results file.

Called by ``benchmarks/gpu_check.sh``; the steps and the results file live here so that they
are tested on the CPU. Each step runs under ``timeout`` (the limits add up to under 8
minutes, kill grace included) and a failed step does not stop the next. The steps:

1. the device and the torch/CUDA versions;
2. the tests marked ``gpu`` (tests/test_gpu.py; they skip, saying why, without CUDA);
3. EfficientNet-Lite0 fine-tuned on animals at 16-mixed (3a) and bf16-mixed (3b);
4. ``imgclf doctor ddp`` (NCCL, SyncBatchNorm, ``cuda:LOCAL_RANK``): it compares 1 process
   with 2 or more, one GPU each, so on a single GPU it is skipped with that reason;
5. the fast CIFAR-10 preset.

Steps 3 and 5 read ``$IMGCLF_DATA_DIR`` (default ../shared/datasets) and are skipped, with
the reason, when their data is absent. The results file (``$OUT/gpu_check_results.txt`` when
$OUT is set, else ./gpu_check_results.txt) holds each step's exit code, wall seconds and the
lines that carry its figures (accuracies, the test summary, the DDP comparison).

    python -m benchmarks.gpu_check --dry-run          # the commands, nothing run
    python -m benchmarks.gpu_check --device cpu       # the plumbing, on a CPU
    bash benchmarks/gpu_check.sh                      # the check, on a GPU machine
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "datasets"
KILL_GRACE = 5  # seconds ``timeout`` waits after TERM before KILL
TOTAL_LIMIT = 480  # the whole check: 8 minutes
ACCURACY = r"^(val|test): accuracy"
PYTEST_SUMMARY = r"passed|failed|skipped|error|^(SKIPPED|FAILED|ERROR)"


@dataclass
class Step:
    """One step: its id, a short name, the command, its time limit and the lines kept."""

    id: str
    name: str
    command: list[str]
    limit: int  # seconds, given to ``timeout``
    keep: str = ACCURACY  # regex of the output lines written to the results file
    skip: str | None = None  # why it is not run (the command is still listed)


@dataclass
class Outcome:
    step: Step
    code: int | None  # None: skipped
    seconds: float
    lines: list[str]


def imgclf_command() -> list[str]:
    """``.venv/bin/imgclf`` when the checkout has one, else ``python3 -m imgclf``."""
    venv = ROOT / ".venv" / "bin" / "imgclf"
    return [str(venv)] if venv.exists() else ["python3", "-m", "imgclf"]


def python_command() -> list[str]:
    venv = ROOT / ".venv" / "bin" / "python"
    return [str(venv)] if venv.exists() else ["python3"]


def plan(
    device: str = "cuda",
    data_dir: str | Path = DEFAULT_DATA,
    gpus: int | None = None,
    work: str | Path = "gpu_check_work",
) -> list[Step]:
    """The check's steps for ``device`` (cuda, or cpu for a smoke test of the plumbing).

    ``gpus``: the CUDA devices here (None: not known, as in a dry run, and step 4 is listed
    without a reason to skip it)."""
    data_dir, work = Path(data_dir), Path(work)
    imgclf, python = imgclf_command(), python_command()
    on_cpu = device == "cpu"
    animals, cifar = data_dir / "animals", data_dir / "cifar10-jpg"
    common = ["--device", device, "--quiet", "--project", str(work / "runs")]
    steps = [
        Step("1", "device", [*python, "-m", "benchmarks.gpu_check", "--info"], 20, keep=r"."),
        Step("2", "gpu tests", [*python, "-m", "pytest", "-m", "gpu", "tests/test_gpu.py", "-q",
             "-p", "no:cacheprovider"], 90, keep=PYTEST_SUMMARY),
    ]  # fmt: skip
    # a CPU runs neither float16 nor (mostly) bf16: the smoke test swaps in what it can run
    for sub, precision, limit in (("a", "16-mixed", 75), ("b", "bf16-mixed", 55)):
        run_at = {"16-mixed": "32", "bf16-mixed": "auto"}[precision] if on_cpu else precision
        command = [*imgclf, "train", str(animals), "--model", "efficientnet_lite0",
                   "--epochs", "2", "--finetune-epochs", "1", "--image-size", "128",
                   "--test-split", "0.2", "--precision", run_at, "--name", f"lite0-{precision}",
                   *common]  # fmt: skip
        skip = None if animals.is_dir() else f"no data at {animals}"
        steps.append(Step(f"3{sub}", f"lite0 animals {run_at}", command, limit, skip=skip))
    ddp = [*imgclf, "doctor", "ddp", "--device", device, "--nproc-per-node", "2", "--epochs", "1"]
    steps.append(Step("4", "doctor ddp", ddp, 60, keep=r".", skip=_ddp_skip(device, gpus)))
    fast = [*imgclf, "train", str(cifar), "--preset", "fast", "--val-split", "0",
            "--name", "fast-cifar", *common]  # fmt: skip
    skip = None if cifar.is_dir() else f"no data at {cifar}"
    steps.append(Step("5", "fast cifar", fast, 120, skip=skip))
    return steps


def _ddp_skip(device: str, gpus: int | None) -> str | None:
    if device == "cpu" or gpus is None or gpus >= 2:
        return None
    return (
        f"doctor ddp compares 1 process with 2 or more, one GPU each (cuda:LOCAL_RANK); this "
        f"machine has {gpus} GPU{'s' * (gpus != 1)}, so NCCL across processes cannot run here "
        "(tests/test_gpu.py covers an NCCL group of one and SyncBatchNorm)"
    )


def device_info() -> None:
    """Step 1: the torch, CUDA and cuDNN versions and each CUDA device."""
    import shutil

    import torch

    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {cudnn}")
    print(f"cuda available: {torch.cuda.is_available()}, devices: {torch.cuda.device_count()}")
    for index in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(index)
        print(f"cuda:{index}: {props.name}, {props.total_memory / 2**30:.0f} GiB, capability "
              f"{props.major}.{props.minor}, bf16 {torch.cuda.is_bf16_supported()}")  # fmt: skip
    if shutil.which("nvidia-smi"):
        subprocess.run(["nvidia-smi", "-L"], check=False)


def cuda_devices() -> int:
    try:
        import torch
    except ImportError:
        return 0
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def run_step(step: Step, env: dict[str, str] | None = None, echo: bool = True) -> Outcome:
    """Run one step under ``timeout``, its output streamed (``echo``) and its figures kept."""
    if step.skip:
        return Outcome(step, None, 0.0, [])
    command = ["timeout", "-k", str(KILL_GRACE), str(step.limit), *step.command]
    began = time.perf_counter()
    lines: list[str] = []
    try:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, text=True, errors="replace",
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
    except OSError as exc:  # no such program
        return Outcome(step, 127, time.perf_counter() - began, [str(exc)])
    with process:  # closes its pipe
        assert process.stdout is not None
        for line in process.stdout:
            if echo:
                sys.stdout.write(line)
                sys.stdout.flush()
            lines.append(line.rstrip("\n"))
        code = process.wait()
    return Outcome(step, code, time.perf_counter() - began, lines)


def describe(outcome: Outcome, tail: int = 12) -> list[str]:
    """The results file's lines for one step."""
    step = outcome.step
    head = f"step {step.id} {step.name}:"
    if outcome.code is None:
        return [f"{head} skipped ({step.skip})"]
    state = "ok" if outcome.code == 0 else "FAILED"
    if outcome.code in (124, 137):
        state = f"TIMED OUT after {step.limit} s"
    rows = [f"{head} {state}, exit {outcome.code}, {outcome.seconds:.1f} s"]
    pattern = re.compile(step.keep)
    kept = [line for line in outcome.lines if pattern.search(line)]
    if outcome.code != 0:  # what it printed last says why
        kept += [line for line in outcome.lines[-tail:] if line not in kept]
    rows += [f"    {line}" for line in kept]
    return rows


def results_path() -> Path:
    out = os.environ.get("OUT")
    return Path(out) / "gpu_check_results.txt" if out else Path("gpu_check_results.txt")


def write_results(path: Path, outcomes: list[Outcome], header: str) -> None:
    """The results file, rewritten after each step so a cut-off check keeps what it did."""
    done = [o for o in outcomes if o.code is not None]
    ok = sum(o.code == 0 for o in done)
    rows = [f"# imgclf GPU check (issue 23): {header}"]
    for outcome in outcomes:
        rows += describe(outcome)
    rows.append(
        f"total: {sum(o.seconds for o in outcomes):.1f} s; {ok} ok, {len(done) - ok} failed, "
        f"{len(outcomes) - len(done)} skipped"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run none")
    parser.add_argument("--data-dir", default=os.environ.get("IMGCLF_DATA_DIR", DEFAULT_DATA))
    parser.add_argument("--output", type=Path, help="the results file (default: see above)")
    parser.add_argument("--info", action="store_true", help="step 1: print the device, exit")
    parser.add_argument("--only", nargs="+", metavar="ID", help="run these steps: 1 2 3a ...")
    args = parser.parse_args(argv)
    if args.info:
        device_info()
        return 0
    gpus = None if args.dry_run else cuda_devices()
    args.data_dir = Path(args.data_dir).resolve()
    scratch = Path("SCRATCH" if args.dry_run else tempfile.mkdtemp(prefix="imgclf-gpu-check-"))
    steps = plan(args.device, args.data_dir, gpus, scratch)
    if args.only:
        steps = [s for s in steps if s.id in args.only]
    limits = sum(s.limit + KILL_GRACE for s in steps)
    if args.dry_run:
        for step in steps:
            note = f"  # skipped: {step.skip}" if step.skip else ""
            print(f"step {step.id} {step.name} (limit {step.limit} s): "
                  f"{shlex.join(step.command)}{note}")  # fmt: skip
        print(f"limits: {limits} s in all (of {TOTAL_LIMIT})")
        return 0
    path = args.output or results_path()
    env = {**os.environ, "IMGCLF_DATA_DIR": str(args.data_dir),
           "IMGCLF_CACHE_DIR": str(scratch / "cache")}  # fmt: skip
    header = f"device {args.device}, data {args.data_dir}, {time.strftime('%Y-%m-%d %H:%M:%S')}"
    outcomes: list[Outcome] = []
    for step in steps:
        print(f"=== step {step.id} {step.name}" + (f": skipped ({step.skip})" if step.skip else ""),
              flush=True)  # fmt: skip
        outcomes.append(run_step(step, env))
        write_results(path, outcomes, header)
    print(f"\nresults in {path}:\n" + path.read_text(encoding="utf-8"))
    return 0 if all(o.code in (0, None) for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
