"""Carved splits that keep altered copies together, against the exact-copy groups alone: per
real set, the images the run's leak check finds in val or test with a copy in an earlier split
under each, how many images were grouped with altered copies, and what finding them costs
(cold, and read back from the cache folder on the next run).

    python -m benchmarks.copy_groups --data ../shared/datasets
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

from benchmarks.common import machine

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
SETS = {  # the set, and the splits imgclf carves from it (the tutorials' settings)
    "animals": {"val_split": 0.16, "test_split": 0.2, "image_size": (224, 224)},
    "imagenette2-224-subset": {"val_split": 0.2, "image_size": (160, 160)},
    "cifar10-jpg": {"val_split": 0.2, "image_size": (32, 32)},
}


def leaks(prepared) -> str:
    """Images of val and test with a copy in an earlier split, by the run's quick check."""
    from imgclf.audit.inputs import audit_data
    from imgclf.audit.quick import quick_audit

    found = {"val": 0, "test": 0}
    for leak in quick_audit(audit_data(prepared)).leaks:
        found[leak.split] += len(leak.rows)
    return f"val {found['val']}, test {found['test']}"


def measure(folder: Path, settings: dict, cache: Path) -> dict:
    from imgclf.api.settings import make_config
    from imgclf.data.pipeline.copies import exact_groups
    from imgclf.data.pipeline.inspect import build_report
    from imgclf.data.pipeline.prepare import prepare_data
    from imgclf.data.pipeline.splits import make_splits

    cfg = make_config(None, cache_dir=cache, seed=0, **settings)
    prepare_data(folder, cfg, decode=True, progress=False)  # scan and decode, untimed
    for stored in (cache / "copies").glob("*.npz"):
        stored.unlink()
    started = time.perf_counter()
    grouped = prepare_data(folder, cfg, progress=False)
    cold = time.perf_counter() - started
    started = time.perf_counter()
    prepare_data(folder, cfg, progress=False)
    warm = time.perf_counter() - started
    source = grouped.source
    usable, groups = [r.ok for r in grouped.records], exact_groups(grouped.records)
    splits = make_splits(source.labels, source.classes, source.splits, cfg.data.val_split,
                         cfg.data.test_split, cfg.seed, usable, groups)  # fmt: skip
    exact = dataclasses.replace(grouped, splits=splits,
                                report=build_report(source, grouped.records, splits))  # fmt: skip
    return {"images": len(source), "altered": grouped.copies.altered, "note": grouped.copies.note,
            "leaks exact groups": leaks(exact), "leaks with altered": leaks(grouped),
            "prepare cold": cold, "prepare warm": warm}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=SHARED)
    args = parser.parse_args()
    print(machine())
    for name, settings in SETS.items():
        with tempfile.TemporaryDirectory() as cache:
            result = measure(args.data / name, settings, Path(cache))
        print(f"{name}: {result['images']:,} images, {result['altered']} grouped with altered "
              f"copies; val/test images with a copy in an earlier split: "
              f"{result['leaks exact groups']} with exact groups only; "
              f"{result['leaks with altered']} with altered copies grouped; prepare "
              f"{result['prepare cold']:.1f} s (pairs found) and {result['prepare warm']:.1f} s "
              f"(pairs kept){'; ' + result['note'] if result['note'] else ''}")  # fmt: skip


if __name__ == "__main__":
    main()
