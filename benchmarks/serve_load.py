"""`imgclf serve` under load: 1, 16 and 200 concurrent HTTP/1.1 keep-alive clients for a fixed
time each, sending mostly real photos (one per request) and some bad requests (a body over the
limit, a text file, a truncated JPEG). Per client count: requests/s, images/s, the p50 and p99
latency of good requests and the statuses each kind got. Exit 1 on any 5xx, dropped
connection, wrong refusal, refused good image or unclean shutdown.

    python -m benchmarks.serve_load --data ../shared/datasets/animals --clients 1,16,200
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import numpy as np

from benchmarks.common import machine

HOST = "127.0.0.1"  # loopback only: the benchmark never binds or calls another address
SIZE = (224, 224)
PHOTO_SUFFIXES = {".jpg", ".jpeg"}
GOOD = "good"
MIX = {GOOD: 0.85, "oversize": 0.05, "text": 0.05, "truncated": 0.05}
EXPECTED = {GOOD: (200,), "oversize": (413,), "text": (415,), "truncated": (422, 415)}

Upload = tuple[str, bytes, str]  # file name, content, content type


@dataclass(frozen=True)
class Kind:
    """One kind of request: the uploads it picks from, its share of requests, what it must get."""

    name: str
    uploads: tuple[Upload, ...]
    weight: float
    expected: tuple[int, ...]


@dataclass(frozen=True)
class Record:
    """One request: its kind, status (None: dropped), latency and what went wrong, if anything."""

    kind: str
    status: int | None
    seconds: float
    error: str | None = None


@dataclass
class LoadResult:
    """One client count's run: the figures and the statuses every kind got."""

    clients: int
    wall: float  # from the first request to the last answer (those in flight at the end too)
    client_cpu: float  # seconds of CPU this process spent: the load generator's own share
    requests: int
    good: int
    requests_per_s: float
    good_per_s: float
    images_per_s: float
    p50_ms: float
    p99_ms: float
    statuses: dict[str, dict[str, int]]
    dropped: int
    errors: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)


def request_mix(good: Sequence[bytes], photos: Sequence[bytes], max_upload_mb: float) -> list[Kind]:
    """The fixed mix: ``good`` JPEG files, and the three bad kinds: a body over the limit by a
    quarter, a text file, and the first half of each of ``photos`` (JPEG files)."""
    oversize = int(max_upload_mb * 1.25 * 2**20)
    uploads = {
        GOOD: tuple((f"good{i}.jpg", data, "image/jpeg") for i, data in enumerate(good)),
        "oversize": (("big.jpg", bytes(oversize), "image/jpeg"),),
        "text": (("notes.txt", b"not an image, just some words\n" * 40, "text/plain"),),
        "truncated": tuple(
            (f"half{i}.jpg", data[: len(data) // 2], "image/jpeg") for i, data in enumerate(photos)
        ),
    }
    return [Kind(name, uploads[name], MIX[name], EXPECTED[name]) for name in MIX]


def run_load(
    url: str, kinds: Sequence[Kind], clients: int, seconds: float, *, seed: int = 0,
    timeout: float = 60.0,
) -> LoadResult:  # fmt: skip
    """``clients`` concurrent clients posting to ``url``/v1/predict for ``seconds``, over a pool
    of as many keep-alive connections (one per client in effect); requests in flight at the end
    are waited for, and count."""
    began, cpu = time.perf_counter(), time.process_time()
    records = asyncio.run(_load(url, kinds, clients, began + seconds, seed, timeout))
    result = summarize(records, kinds, clients, time.perf_counter() - began)
    result.client_cpu = time.process_time() - cpu
    return result


async def _load(
    url: str, kinds: Sequence[Kind], clients: int, deadline: float, seed: int, timeout: float
) -> list[Record]:
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(
        base_url=url, limits=limits, timeout=timeout, trust_env=False
    ) as client:
        tasks = [
            _client(client, kinds, random.Random(seed * 100_003 + index), deadline)
            for index in range(clients)
        ]
        per_client = await asyncio.gather(*tasks)
    return [record for records in per_client for record in records]


async def _client(
    client: httpx.AsyncClient, kinds: Sequence[Kind], rng: random.Random, deadline: float
) -> list[Record]:
    weights = [kind.weight for kind in kinds]
    records = []
    while time.perf_counter() < deadline:
        kind = rng.choices(kinds, weights)[0]
        records.append(await _request(client, kind, rng.choice(kind.uploads)))
    return records


async def _request(client: httpx.AsyncClient, kind: Kind, upload: Upload) -> Record:
    began = time.perf_counter()
    try:
        response = await client.post("/v1/predict", files={"files": upload})
    except httpx.RequestError as exc:  # reset, refused, closed, timed out: no answer
        return Record(kind.name, None, time.perf_counter() - began, f"{type(exc).__name__}: {exc}")
    seconds = time.perf_counter() - began
    error = None
    if response.status_code == 200 and not _one_prediction(response):
        error = f"200 without exactly one prediction: {response.text[:200]}"
    elif response.status_code >= 500:
        error = f"{response.status_code}: {response.text[:200]}"
    return Record(kind.name, response.status_code, seconds, error)


def _one_prediction(response: httpx.Response) -> bool:
    try:
        return len(response.json()["predictions"]) == 1
    except (ValueError, KeyError, TypeError):
        return False


def summarize(
    records: Sequence[Record], kinds: Sequence[Kind], clients: int, wall: float
) -> LoadResult:
    """The figures of one run, and what it did wrong (``violations``: empty when all is well)."""
    good = [r.seconds for r in records if r.kind == GOOD and r.status == 200]
    p50, p99 = np.percentile(good, [50, 99]) * 1000 if good else (float("nan"), float("nan"))
    statuses = {kind.name: _status_counts(records, kind.name) for kind in kinds}
    errors = Counter(f"{r.kind}: {r.error}" for r in records if r.error is not None)
    return LoadResult(
        clients=clients, wall=wall, client_cpu=0.0, requests=len(records), good=len(good),
        requests_per_s=len(records) / wall, good_per_s=len(good) / wall,
        images_per_s=len(good) / wall, p50_ms=float(p50), p99_ms=float(p99),
        statuses=statuses, dropped=sum(r.status is None for r in records),
        errors=[f"{count} x {text}" for text, count in errors.most_common(10)],
        violations=violations(records, kinds),
    )  # fmt: skip


def _status_counts(records: Sequence[Record], kind: str) -> dict[str, int]:
    counts = Counter(
        "dropped" if r.status is None else str(r.status) for r in records if r.kind == kind
    )
    return dict(sorted(counts.items()))


def violations(records: Sequence[Record], kinds: Sequence[Kind]) -> list[str]:
    """One line per broken rule: a 5xx, a dropped connection, a status a kind must not get, a
    200 without its one prediction."""
    found = []
    server_errors = Counter(r.kind for r in records if r.status is not None and r.status >= 500)
    if server_errors:
        found.append(f"{server_errors.total()} responses >= 500 ({_by_kind(server_errors)})")
    dropped = Counter(r.kind for r in records if r.status is None)
    if dropped:
        found.append(f"{dropped.total()} dropped connections ({_by_kind(dropped)})")
    for kind in kinds:
        wrong = Counter(
            r.status for r in records
            if r.kind == kind.name and r.status is not None and r.status not in kind.expected
        )  # fmt: skip
        if wrong:
            expected = " or ".join(map(str, kind.expected))
            found.append(f"{kind.name} requests must get {expected}, got {dict(wrong)}")
    malformed = sum(r.status == 200 and r.error is not None for r in records)
    if malformed:
        found.append(f"{malformed} responses 200 without exactly one prediction")
    return found


def _by_kind(counts: Counter) -> str:
    return ", ".join(f"{kind}: {count}" for kind, count in sorted(counts.items()))


def print_result(result: LoadResult) -> None:
    print(
        f"{result.clients:>7} {result.requests:>8} {result.requests_per_s:>8.1f} "
        f"{result.good_per_s:>8.1f} {result.images_per_s:>8.1f} {result.p50_ms:>8.1f} "
        f"{result.p99_ms:>8.1f} {result.dropped:>7} {result.wall:>6.1f} "
        f"{result.client_cpu / result.wall:>7.0%}"
    )
    for kind, counts in result.statuses.items():
        got = ", ".join(f"{status}: {count}" for status, count in counts.items()) or "none sent"
        print(f"{'':>9}{kind:<10} {got}")
    for line in result.errors:
        print(f"{'':>9}error: {line}")


def print_header() -> None:
    names = ("clients", "requests", "req/s", "good/s", "img/s", "p50 ms", "p99 ms", "dropped",
             "wall s", "client")  # fmt: skip
    widths = (7, 8, 8, 8, 8, 8, 8, 7, 6, 7)
    print(" ".join(f"{name:>{width}}" for name, width in zip(names, widths, strict=True)))


def load_photos(data: Path, count: int) -> list[bytes]:
    """The bytes of up to ``count`` JPEG photos under ``data``, spread over its classes."""
    files = sorted(p for p in data.rglob("*") if p.suffix.lower() in PHOTO_SUFFIXES)
    if not files:
        raise SystemExit(f"no JPEG photos under {data}")
    step = max(1, len(files) // count)
    return [path.read_bytes() for path in files[::step][:count]]


def build_bundle(data: Path, photos: Sequence[bytes], folder: Path) -> Path:
    """An untrained EfficientNet-Lite0 (feature extract, 224 px) bundle with a gated ONNX
    export, as predict_speed.py builds it, under ``folder``."""
    import torch

    from imgclf.config import ModelConfig
    from imgclf.export.onnx import export_onnx
    from imgclf.models.bundle import save_bundle
    from imgclf.models.network import build_model

    classes = sorted(p.name for p in data.iterdir() if p.is_dir()) or ["a", "b", "c"]
    config = ModelConfig(name="efficientnet_lite0", mode="feature_extract")
    model = build_model(config, classes, 3, SIZE).eval()
    bundle = save_bundle(model, folder / "model")
    gate = np.stack([_decode(photo) for photo in photos[:64]])
    with torch.inference_mode():
        labels = model(torch.from_numpy(gate).permute(0, 3, 1, 2).float()).argmax(1).numpy()
    record = export_onnx(model, bundle, gate, labels, "serve_load photos")
    print(f"export: {record['exporter']}, gate {record['attempts'][-1]['max_abs_logit_diff']:.1e}")
    return bundle


def _decode(data: bytes) -> np.ndarray:
    import io

    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB").resize(SIZE, Image.BILINEAR))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def start_server(model: Path, log: IO[str], *options: str) -> tuple[subprocess.Popen, str]:
    """``imgclf serve MODEL`` on a free loopback port, its output to ``log``, once /ready
    answers 200: (process, base URL)."""
    port = free_port()
    command = [
        sys.executable, "-m", "imgclf", "serve", str(model), "--host", HOST, "--port", str(port),
        "--log-level", "warning", *options,
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, text=True)
    url = f"http://{HOST}:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.flush()
            raise SystemExit(f"imgclf serve exited with code {process.returncode}:\n{_tail(log)}")
        try:
            if httpx.get(f"{url}/ready", timeout=2, trust_env=False).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    process.kill()
    process.wait()
    raise SystemExit(f"imgclf serve was not ready in 300 s:\n{_tail(log)}")


def _tail(log: IO[str], lines: int = 20) -> str:
    return "\n".join(Path(log.name).read_text().splitlines()[-lines:])


def stop_server(process: subprocess.Popen, timeout: float = 60) -> tuple[int | None, float]:
    """SIGTERM, then (exit code, seconds it took); None when it had to be killed."""
    began = time.perf_counter()
    process.send_signal(signal.SIGTERM)
    try:
        code: int | None = process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        code = None
    return code, time.perf_counter() - began


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="a folder of JPEG photos")
    parser.add_argument("--model", type=Path, help="a run or bundle folder (default: built)")
    parser.add_argument("--backend", choices=("auto", "torch", "onnx"), default="auto")
    parser.add_argument("--seconds", type=float, default=20.0, help="per client count")
    parser.add_argument("--clients", default="1,16,200", help="comma-separated client counts")
    parser.add_argument("--photos", type=int, default=200, help="photos to send")
    parser.add_argument("--max-upload-mb", type=float, default=2.0, help="the server's limit")
    parser.add_argument("--timeout", type=float, default=60.0, help="per request, seconds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write the results here")
    return parser.parse_args()


def main() -> None:
    args = _arguments()
    photos = load_photos(args.data, args.photos)
    print(f"machine: {machine()}; {len(photos)} photos from {args.data}")
    work = Path(tempfile.mkdtemp(prefix="imgclf-serve-load-"))
    model = args.model or build_bundle(args.data, photos, work)
    kinds = request_mix(photos, photos[:16], args.max_upload_mb)
    options = ("--backend", args.backend, "--max-upload-mb", f"{args.max_upload_mb:g}")
    with open(work / "server.log", "w") as log:
        process, url = start_server(model, log, *options)
        try:
            info = httpx.get(f"{url}/v1/model", trust_env=False).json()
            print(f"serving {model} at {url}: backend {info['backend']}, limits {info['limits']}")
            results = _run_all(url, kinds, args)
        finally:
            code, took = stop_server(process)
    print(f"server stopped by SIGTERM in {took:.1f} s, exit code {code}")
    _report_log(work / "server.log")
    failures = [f"{r.clients} clients: {line}" for r in results for line in r.violations]
    if code != 0:
        failures.append(f"the server exited with code {code} after SIGTERM, not 0{_why(code)}")
    if args.json:
        _write_json(args.json, results, failures, info, code)
    _finish(failures)


def _run_all(url: str, kinds: Sequence[Kind], args: argparse.Namespace) -> list[LoadResult]:
    mix = ", ".join(f"{kind.name} {kind.weight:.0%}" for kind in kinds)
    print(f"mix: {mix}; {args.seconds:g} s per client count, seed {args.seed}")
    print_header()
    results = []
    for clients in (int(n) for n in args.clients.split(",")):
        result = run_load(url, kinds, clients, args.seconds, seed=args.seed, timeout=args.timeout)
        print_result(result)
        results.append(result)
    print("client: the CPU this load generator used (100% = one core), beside the server's")
    return results


def _why(code: int | None) -> str:
    if code is None:
        return ": it did not stop within 60 s and was killed"
    if code == -signal.SIGTERM:
        return (
            ": it ended by the signal itself (uvicorn re-raises a captured SIGTERM once its "
            "graceful shutdown is done)"
        )
    return ""


def _report_log(path: Path, lines: int = 40) -> None:
    text = path.read_text().splitlines()
    logged = [line for line in text if not line.startswith("Serving ")]
    if logged:
        print(f"server log ({path}), last {min(lines, len(logged))} of {len(logged)} lines:")
        print("\n".join(f"  {line}" for line in logged[-lines:]))


def _write_json(
    path: Path, results: Sequence[LoadResult], failures: list[str], info: dict[str, Any],
    code: int | None,
) -> None:  # fmt: skip
    payload = {
        "machine": machine(), "backend": info["backend"], "limits": info["limits"],
        "mix": MIX, "results": [asdict(r) for r in results], "server_exit_code": code,
        "failures": failures,
    }  # fmt: skip
    path.write_text(json.dumps(payload, indent=2))
    print(f"results written to {path}")


def _finish(failures: list[str]) -> None:
    if failures:
        print("FAILED:\n" + "\n".join(f"  {line}" for line in failures))
        sys.exit(1)
    print("OK: no 5xx, no dropped connection, every bad request refused as it should be, "
          "every good image answered 200, clean shutdown")  # fmt: skip


if __name__ == "__main__":
    main()
