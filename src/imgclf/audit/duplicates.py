"""Duplicates and leaks: exact copies, altered copies, the groups they form, and the copies
that cross from train into val or test.

- **Exact**: the same file bytes. The scan already hashes every file's bytes while it reads
  them (blake2b, cached with the scan), so exact copies cost nothing more. Bytes rather than
  decoded pixels: the cache holds pixels resized to the audit's size, and equal small pixels
  do not prove equal images; a lossless re-save (same pixels, other bytes) is found by the
  near-duplicate rule below at distance 0.
- **Near**: a candidate pair is two images among each other's ``neighbors`` nearest in
  embedding space (``neighbours.py``: chunked matrix products of unit vectors and torch's
  top-k, not a Python loop over pairs). A candidate is a copy when the flip-invariant pHash
  distance is at most ``hash_distance``, the embedding cosine at least ``min_similarity``
  and the pixels, lined up by the best crop window and mirror (``alignment.py``), correlate
  at least ``min_alignment``: the embedding finds what looks alike, the hash and the aligned
  pixels tell a copy of one picture from another picture of the same subject. On photos the
  hash alone did that; on thumbnails (CIFAR-10) only the aligned pixels did.
- Pairs join into groups (connected components); a group spanning splits is a leak, a group
  with more than one label has conflicting labels.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np

from imgclf.audit.alignment import aligned_similarity
from imgclf.audit.inputs import SPLIT_ORDER, AuditData, split_rank
from imgclf.audit.issues import Issue
from imgclf.audit.neighbours import most_similar
from imgclf.audit.settings import AuditSettings
from imgclf.data.pipeline.hashing import HASH_BITS, Hashes, hash_distance


@dataclass
class Pairs:
    """Pairs of rows found to be copies, with their hash distance and embedding cosine."""

    a: np.ndarray
    b: np.ndarray
    distance: np.ndarray
    similarity: np.ndarray

    def __len__(self) -> int:
        return len(self.a)

    def where(self, keep: np.ndarray) -> Pairs:
        """The pairs that ``keep`` (a boolean per pair) keeps."""
        return Pairs(self.a[keep], self.b[keep], self.distance[keep], self.similarity[keep])


@dataclass
class DuplicateGroup:
    """Rows that are copies of each other (directly or through a chain of copies)."""

    id: int
    members: list[int]  # by split (train, val, test), then row
    closest: dict[int, int]  # member -> pHash distance to its closest copy (0: same pixels)
    exact: bool  # every member has the same bytes
    splits: list[str]
    labels: list[str]

    @property
    def conflicting(self) -> bool:
        return len(set(self.labels)) > 1

    def to_dict(self, data: AuditData) -> dict[str, Any]:
        members = [
            {
                "path": data.names[row],
                "split": data.split[row],
                "label": data.label_name(row),
                "distance": self.closest[row],
            }
            for row in self.members
        ]
        return {"id": self.id, "exact": self.exact, "conflicting_labels": self.conflicting,
                "splits": sorted(set(self.splits), key=split_rank),
                "members": members}  # fmt: skip


@dataclass
class Leak:
    """Images of split ``split`` with a copy in the earlier split ``source``."""

    split: str
    source: str
    rows: list[int]
    exact: int  # of them, with a byte-identical copy there

    def sentence(self) -> str:
        n = len(self.rows)
        images = f"{n} {self.split} image{'s' if n != 1 else ''}"
        verb = "has" if n == 1 else "have"
        copies = "an exact copy" if self.exact == 1 else "exact copies"
        exact = f" ({self.exact} of them {copies})" if self.exact else ""
        return f"{images} {verb} near-duplicates in {self.source}{exact}"

    def to_dict(self) -> dict[str, Any]:
        return {"split": self.split, "source": self.source, "images": len(self.rows),
                "exact": self.exact, "summary": self.sentence()}  # fmt: skip


@dataclass
class DuplicateFindings:
    """What the duplicates check found: the groups, the leaks between splits, the issues."""

    groups: list[DuplicateGroup]
    leaks: list[Leak]
    issues: list[Issue]


def find_duplicates(
    data: AuditData, embeddings: np.ndarray, hashes: Hashes, settings: AuditSettings
) -> DuplicateFindings:
    """Exact and near-duplicates of the usable rows, their groups, leaks and issues."""
    digests = [record.digest for record in data.records]
    exact = exact_pairs(digests, data.rows)
    near = near_pairs(data.images, embeddings, hashes, data.rows, settings)
    groups = duplicate_groups(exact, near, data, digests)
    issues = duplicate_issues(groups, data, digests, hashes)
    return DuplicateFindings(groups, find_leaks(groups, digests), issues)


def exact_pairs(digests: list[str], rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (first row of a digest, another row with it) among ``rows``."""
    first: dict[str, int] = {}
    a, b = [], []
    for row in rows:
        key = digests[row]
        if key in first:
            a.append(first[key])
            b.append(int(row))
        else:
            first[key] = int(row)
    return np.array(a, dtype=np.int64), np.array(b, dtype=np.int64)


def near_pairs(
    images: np.ndarray,
    embeddings: np.ndarray,
    hashes: Hashes,
    rows: np.ndarray,
    settings: AuditSettings,
) -> Pairs:
    """The pairs of ``rows`` that are altered copies (see the module's rule); the pixels are
    compared only where the hash and the embedding let a pair through."""
    a, b, similarity = candidate_pairs(embeddings, rows, settings.neighbors)
    distance = hash_distance(hashes, a, b)
    keep = (distance <= settings.hash_distance) & (similarity >= settings.min_similarity)
    pairs = Pairs(a, b, distance, similarity).where(keep)
    return pairs.where(aligned_similarity(images, pairs.a, pairs.b) >= settings.min_alignment)


def candidate_pairs(
    embeddings: np.ndarray, rows: np.ndarray, neighbors: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each row paired with its ``neighbors`` nearest (unit-length embeddings), each pair once
    (a < b), with its cosine (the search's own: no pair's vectors are copied)."""
    k = min(neighbors + 1, len(rows))
    if k < 2:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, np.empty(0, dtype=np.float32)
    cosines, found = most_similar(embeddings[rows], k)
    left, right = np.repeat(np.arange(len(rows)), k), found.ravel()
    cosine = cosines.ravel()
    other = left != right
    pairs = np.sort(np.stack([left[other], right[other]], axis=1), axis=1)
    pairs, first = np.unique(pairs, axis=0, return_index=True)
    return rows[pairs[:, 0]], rows[pairs[:, 1]], cosine[other][first].astype(np.float32)


def duplicate_groups(
    exact: tuple[np.ndarray, np.ndarray], near: Pairs, data: AuditData, digests: list[str]
) -> list[DuplicateGroup]:
    """The groups that exact and near pairs join into, leaks and conflicts first."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    a = np.concatenate([exact[0], near.a])
    b = np.concatenate([exact[1], near.b])
    distance = np.concatenate([np.zeros(len(exact[0]), dtype=np.int64), near.distance])
    n = len(data)
    graph = coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    closest: dict[int, int] = defaultdict(lambda: HASH_BITS)
    for left, right, d in zip(a.tolist(), b.tolist(), distance.tolist(), strict=True):
        closest[left] = min(closest[left], d)
        closest[right] = min(closest[right], d)
    members: dict[int, list[int]] = defaultdict(list)
    for row in sorted(closest, key=lambda r: (split_rank(data.split[r]), r)):
        members[int(component[row])].append(row)
    groups = [
        DuplicateGroup(
            id=0,
            members=rows,
            closest={row: closest[row] for row in rows},
            exact=len({digests[row] for row in rows}) == 1,
            splits=[str(data.split[row]) for row in rows],
            labels=[data.label_name(row) for row in rows],
        )
        for rows in members.values()
    ]
    groups.sort(key=lambda g: (len(set(g.splits)) == 1, not g.conflicting, g.members[0]))
    for number, group in enumerate(groups, start=1):
        group.id = number
    return groups


def find_leaks(groups: list[DuplicateGroup], digests: list[str]) -> list[Leak]:
    """For each later split and each earlier one, its images with a copy there."""
    found: dict[tuple[str, str], Leak] = {}
    for group in groups:
        digests_in: dict[str, set[str]] = defaultdict(set)  # split -> its members' digests
        for row, split in zip(group.members, group.splits, strict=True):
            digests_in[split].add(digests[row])
        for row, split in zip(group.members, group.splits, strict=True):
            for source in SPLIT_ORDER[: split_rank(split)]:
                if source not in digests_in:
                    continue
                leak = found.setdefault((split, source), Leak(split, source, [], 0))
                leak.rows.append(row)
                leak.exact += digests[row] in digests_in[source]
    return [found[key] for key in sorted(found, key=_leak_order)]


def _leak_order(key: tuple[str, str]) -> tuple[int, int]:
    split, source = key
    return (-split_rank(split), split_rank(source))  # test first: it matters most


def duplicate_issues(
    groups: list[DuplicateGroup], data: AuditData, digests: list[str], hashes: Hashes
) -> list[Issue]:
    """Every member of a group is a duplicate (exact when another has its bytes); a member
    with a copy in an earlier split also leaks; every member of a mixed-label group conflicts."""
    issues = []
    for group in groups:
        labels = ", ".join(sorted(set(group.labels)))
        copies = Counter(digests[m] for m in group.members)
        detail = _group_detail(group)
        ranks = [split_rank(split) for split in group.splits]  # members are in split order
        for row, rank in zip(group.members, ranks, strict=True):
            score = 1.0 - group.closest[row] / HASH_BITS
            kind = "exact_duplicate" if copies[digests[row]] > 1 else "near_duplicate"
            issues.append(Issue(row, kind, score, group.id, detail))
            earlier = group.members[: bisect_left(ranks, rank)]
            if earlier:
                issues.append(_leak_issue(group, row, earlier, data, hashes))
            if group.conflicting:
                issues.append(Issue(row, "conflicting_labels", score, group.id, f"labels {labels}"))
    return issues


def _group_detail(group: DuplicateGroup) -> str:
    counts = {s: group.splits.count(s) for s in sorted(set(group.splits), key=split_rank)}
    return f"group of {len(group.members)}: " + ", ".join(f"{n} {s}" for s, n in counts.items())


def _leak_issue(
    group: DuplicateGroup, row: int, earlier: list[int], data: AuditData, hashes: Hashes
) -> Issue:
    """The leak of ``row`` from its closest copy among ``earlier`` (its group's members in
    earlier splits)."""
    distance = hash_distance(hashes, np.full(len(earlier), row), np.array(earlier))
    closest = earlier[int(np.argmin(distance))]
    score = 1.0 - int(distance.min()) / HASH_BITS
    detail = f"copy in {data.split[closest]}: {data.names[closest]}"
    return Issue(row, "leak", score, group.id, detail)
