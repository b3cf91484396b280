"""benchmarks/serve_load.py's load loop against a real server: the mix of good and bad
requests gets 200s and the right 4xx, with no 5xx and no dropped connection."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.serve.conftest import encoded, start_server, stop_server

from benchmarks import serve_load

pytestmark = pytest.mark.slow  # a real server process, as in test_server.py


def test_serve_load_mix_gets_200s_and_4xx_only(colour_run: Path) -> None:
    good = [encoded(colour, "JPEG") for colour in ("red", "green", "blue")]
    photos = [encoded("red", "JPEG", size=(64, 48))]
    kinds = serve_load.request_mix(good, photos, max_upload_mb=0.25)
    process, url = start_server(colour_run, "--max-upload-mb", "0.25", "--log-level", "warning")
    try:
        result = serve_load.run_load(url, kinds, clients=4, seconds=2, seed=1, timeout=30)
    finally:
        output = stop_server(process)
    assert result.violations == [], (result.violations, result.errors, output)
    assert result.dropped == 0 and result.good > 0
    assert all(int(s) < 500 for counts in result.statuses.values() for s in counts), output
    for kind in ("oversize", "text", "truncated"):
        assert result.statuses[kind], f"no {kind} request was sent in 2 s"
        assert all(400 <= int(s) < 500 for s in result.statuses[kind]), result.statuses
    assert process.returncode == 0, output
