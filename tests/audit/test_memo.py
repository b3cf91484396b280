"""An audit run again reads its hashes, pixel statistics and label probabilities from the
store beside the image cache, finds the same issues, and recomputes what changed or broke."""

from __future__ import annotations

import numpy as np
from tests.audit.conftest import SIZE

from imgclf import api
from imgclf.audit.memo import Memo

STORED = ["label-probabilities", "hashes", "pixel-statistics"]


def test_an_audit_run_again_reads_what_it_computed(planted, planted_audit, audit_cache, tmp_path):
    again = api.audit(planted.root, image_size=SIZE, cache_dir=audit_cache, progress=False)
    assert again.cached == STORED
    assert again.rows() == planted_audit.rows()
    other_seed = api.audit(planted.root, image_size=SIZE, cache_dir=audit_cache, progress=False,
                           checks="labels", seed=1)  # fmt: skip
    assert other_seed.cached == []  # another split and folds: computed afresh


def test_a_broken_stored_file_is_computed_again(tmp_path):
    memo = Memo(tmp_path)
    calls = []

    def compute():
        calls.append(1)
        return {"x": np.arange(3)}

    assert memo("thing", {"k": 1}, compute)["x"].tolist() == [0, 1, 2]
    [stored] = tmp_path.glob("thing-*.npz")
    stored.write_bytes(b"half a file")  # as a crash mid-write by another tool would leave it
    assert memo("thing", {"k": 1}, compute)["x"].tolist() == [0, 1, 2]
    assert memo("thing", {"k": 1}, compute)["x"].tolist() == [0, 1, 2]
    assert len(calls) == 2 and memo.hits == ["thing"]
    assert memo("thing", {"k": 2}, compute) and len(calls) == 3  # another key
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary file left
