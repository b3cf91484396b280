"""The cheap checks every training run makes: copies that leak across its own splits, and class
balance, written into the run folder as the audit's files.

No embedding here: a run that trains a small CNN has no backbone features, and embedding every
image would cost more than the training. Exact copies come from the scan's byte digests (free);
altered copies from the perceptual hash of each picture and its mirror against the pictures of
the earlier splits, all pairs at once (a chunked matrix product of +-1 bit vectors). Without
the crop windows and the embedding's second opinion it finds re-encoded, resized, recoloured and
mirrored copies, not cropped ones, and its distance is stricter than the full audit's: the full
audit (`imgclf audit`, `train --audit full`) finds the rest. The pixels have the last word, as
in the full audit (``alignment.py``), with a lower bar since the hash is stricter: of the 277
pairs that CIFAR-10's 60,000 pictures hash within 6 bits, the 25 whose pixels, lined up,
correlate below ``QUICK_ALIGNMENT`` were by eye nearly all different pictures of one layout (a
plane on a blue sky, a horse side on), and most of those above it one picture recoloured,
recropped or mirrored.

A hash tells copies apart only where different pictures hash far apart. In CIFAR-10, animals
and imagenette, 1 random pair in 50 is within 22 bits; in MNIST within 14 and in the 8x8
digits within 16, and 87 % of MNIST's test digits were "within 6 bits" of a training digit.
Where that 1-in-50 distance (``chance_distance``, from up to 2,048 x 2,048 random pairs; a
share large enough that true copies among the pairs cannot set it) is under three times the
check's distance, altered copies are not looked for, the check says so, and exact copies
still are.
"""

from __future__ import annotations

import numpy as np

from imgclf.audit.alignment import aligned_similarity
from imgclf.audit.balance import class_balance
from imgclf.audit.duplicates import (
    Pairs,
    duplicate_groups,
    duplicate_issues,
    exact_pairs,
    find_leaks,
)
from imgclf.audit.inputs import SPLIT_ORDER, AuditData
from imgclf.audit.memo import Memo, fingerprint
from imgclf.audit.result import Audit
from imgclf.audit.runner import unreadable_issues
from imgclf.audit.settings import AuditSettings
from imgclf.data.pipeline.copies import NEAR_DISTANCE
from imgclf.data.pipeline.hashing import (
    CHANCE,
    Hashes,
    chance_distance,
    close_pairs,
    perceptual_hashes,
)

QUICK_DISTANCE = NEAR_DISTANCE  # what the carved splits keep together (data/pipeline/copies)
QUICK_ALIGNMENT = 0.82  # the lined-up pixels' correlation under which a close hash is a look-alike


def quick_audit(data: AuditData, memo: Memo | None = None, hashes: Hashes | None = None) -> Audit:
    """Leaks across ``data``'s splits (exact and altered copies) and class balance.

    With ``memo`` (the audit's store beside the image cache) the hashes, their chance distance
    and the pairs are kept, so the next run or evaluation on the same images and splits (a
    sweep's trials, ``imgclf evaluate``) reads them: 5 s on CIFAR-10's 60,000 images.
    ``hashes``: the rows' whole-picture hashes where the caller has them (the copies the run's
    splits kept together were found with them), so that they are not computed twice."""
    settings = AuditSettings(checks=("duplicates", "balance"), hash_distance=QUICK_DISTANCE)
    audit = Audit(data, settings, issues=unreadable_issues(data))
    digests = [record.digest for record in data.records]
    rows = data.rows
    key = {"images": data.images_id, "rows": fingerprint(rows), "distance": QUICK_DISTANCE,
           "alignment": QUICK_ALIGNMENT,
           "split": fingerprint(np.asarray(data.split, dtype="U5"))}  # fmt: skip
    stored = (memo or Memo(None))("quick-leaks", key, lambda: _leak_arrays(data, rows, hashes))
    hashes = Hashes(stored["whole"], stored["windows"])
    chance = int(stored["chance"])
    near = Pairs(stored["a"], stored["b"], stored["distance"], stored["similarity"])
    if chance < 3 * QUICK_DISTANCE:
        audit.notes.append(
            "altered copies not looked for: different pictures here hash alike (1 random pair "
            f"in {1 / CHANCE:.0f} within {chance} bits of 64); exact copies checked"
        )
    groups = duplicate_groups(exact_pairs(digests, rows), near, data, digests)
    audit.groups, audit.leaks = groups, find_leaks(groups, digests)
    audit.issues += duplicate_issues(groups, data, digests, hashes)
    audit.balance = class_balance(data.labels, data.classes, data.split, data.usable)
    return audit


def _leak_arrays(data: AuditData, rows: np.ndarray, hashes: Hashes | None) -> dict[str, np.ndarray]:
    """The hashes (computed unless given), their chance distance and the pairs of altered
    copies across the splits whose pixels line up (none where the chance distance is too
    small to tell copies apart), as arrays to keep."""
    if hashes is None:
        hashes = perceptual_hashes(data.images, rows, crops=False)
    chance = chance_distance(hashes, rows)
    if chance >= 3 * QUICK_DISTANCE:
        near = hash_pairs(hashes, data.split, rows, QUICK_DISTANCE)
        near = near.where(aligned_similarity(data.images, near.a, near.b) >= QUICK_ALIGNMENT)
    else:
        near = _no_pairs()
    return {"whole": hashes.whole, "windows": hashes.windows, "chance": np.array(chance),
            "a": near.a, "b": near.b, "distance": near.distance,
            "similarity": near.similarity}  # fmt: skip


def leaked_rows(audit: Audit) -> dict[str, np.ndarray]:
    """Per split (val, test), its rows with a copy in an earlier split, sorted."""
    found: dict[str, set[int]] = {}
    for leak in audit.leaks:
        found.setdefault(leak.split, set()).update(leak.rows)
    return {split: np.array(sorted(rows), dtype=np.int64) for split, rows in found.items()}


def hash_pairs(hashes: Hashes, split: np.ndarray, rows: np.ndarray, max_distance: int) -> Pairs:
    """Pairs (earlier-split row, later-split row) whose pictures (or one's mirror image) are
    within ``max_distance`` bits."""
    found = []
    for rank, later in enumerate(SPLIT_ORDER[1:], start=1):
        queries = rows[split[rows] == later]
        targets = rows[np.isin(split[rows], SPLIT_ORDER[:rank])]
        found.append(close_pairs(hashes, queries, targets, max_distance))
    a, b, distance = (np.concatenate(parts) for parts in zip(*found, strict=True))
    return Pairs(a, b, distance, np.full(len(a), np.nan, dtype=np.float32))


def _no_pairs() -> Pairs:
    empty = np.empty(0, dtype=np.int64)
    return Pairs(empty, empty, empty, np.empty(0, dtype=np.float32))
