"""The scan: every file read once, its facts and problems recorded, and the result cached.

The cache key is the file list with sizes and mtimes, so a second ``inspect`` or ``train`` on
unchanged files reads the records back instead of reading the files.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from imgclf.data.pipeline.cache import resolve_cache_dir
from imgclf.data.pipeline.decode import FileRecord, probe_file
from imgclf.data.pipeline.parallel import parallel_map
from imgclf.data.source import DataSource
from imgclf.fileio import atomic_write_text
from imgclf.identity import image_set_digest, stat_files

_SCAN_FORMAT = 1


def scan_source(
    source: DataSource,
    cache_dir: Path | None = None,
    workers: int | None = None,
    progress: bool = True,
    stats: list[os.stat_result | OSError] | None = None,
) -> list[FileRecord]:
    """One FileRecord per item of ``source``, from the scan cache when the files are unchanged
    (``stats``: the files' ``identity.stat_files``, when taken already)."""
    if source.is_array:
        return _array_records(source.images)
    stats = [_stat(st) for st in (stats if stats is not None else stat_files(source.paths))]
    key = _scan_key(source.paths, stats)
    cached = resolve_cache_dir(cache_dir) / "scans" / f"{key}.json"
    if cached.is_file():
        return [FileRecord(**r) for r in json.loads(cached.read_text(encoding="utf-8"))]
    todo = [i for i, st in enumerate(stats) if not isinstance(st, str)]
    records: list[FileRecord] = [
        FileRecord(nbytes=0, reason=f"unreadable: {st}") if isinstance(st, str) else None
        for st in stats
    ]
    paths = [source.paths[i] for i in todo]
    results = parallel_map(probe_file, paths, workers, "scanning", progress)
    for i, record in zip(todo, results, strict=True):
        records[i] = record
    atomic_write_text(cached, json.dumps([r.to_dict() for r in records]))
    return records


def _stat(stat: os.stat_result | OSError) -> os.stat_result | str:
    """A file's stat, or why it has none (the scan's reason for it)."""
    return stat.strerror or str(stat) if isinstance(stat, OSError) else stat


def _scan_key(paths: list[Path], stats: list) -> str:
    stamps = [str(st if isinstance(st, str) else (st.st_size, st.st_mtime_ns)) for st in stats]
    files = zip(paths, stamps, strict=True)
    return image_set_digest(f"scan-v{_SCAN_FORMAT}".encode(), files=files, end=b"").hexdigest()


def _array_records(images: np.ndarray) -> list[FileRecord]:
    mode = "L" if images.shape[-1] == 1 else "RGB"
    height, width = images.shape[1:3]
    nbytes = int(np.prod(images.shape[1:]))
    return [
        FileRecord(
            nbytes=nbytes,
            digest=hashlib.blake2b(row.tobytes(), digest_size=16).hexdigest(),
            format="array",
            mode=mode,
            width=width,
            height=height,
        )
        for row in images
    ]
