"""Label issues: images whose given label the rest of the data does not back.

Every usable image gets out-of-sample class probabilities from K-fold cross-validation of a
light head (scikit-learn's logistic regression) on the cached embeddings, so no image is
judged by a head that saw its label. cleanlab's ``find_label_issues`` (confident learning,
pruned by the estimated noise rate) ranks the likely wrong labels; an image is also flagged
when the probability of its given label is below ``label_threshold`` of the uniform 1 /
classes. The second rule catches flipped labels that confident learning leaves below its
per-class counts: with 5 % of labels flipped, cleanlab alone found 0.67-0.95 of them on
animals and imagenette, both rules 0.94-1.0 at precision 0.90-1.0 (BENCHMARKS.md, "Data
audit"). The suggested label is the head's most probable class.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from imgclf.audit.inputs import AuditData
from imgclf.audit.issues import Issue
from imgclf.audit.memo import Memo, fingerprint

HEAD_C = 4.0  # inverse L2 strength of the head on unit-length features (chosen on animals
# and imagenette: 1.0 was too soft for 10 classes, 16 too sure for 3)
WEAK_AGREEMENT = 0.85  # below this share of the given labels the head's flags are said to be
# unsure: measured, the head agreed with 94-99 % of animals' and imagenette's labels (none or
# 5 % flipped) and with 77-80 % of CIFAR-10's 32-pixel pictures', where 0.3 of its flags were flips


@dataclass
class LabelFindings:
    """The label issues, the folds used and, when the check could not run as asked, why."""

    issues: list[Issue]
    folds: int
    notes: list[str] = field(default_factory=list)
    agreement: float | None = None  # the share of given labels the head's best class matches


def find_label_issues(
    data: AuditData,
    embeddings: np.ndarray,
    folds: int,
    threshold: float,
    seed: int = 0,
    memo: Memo | None = None,
) -> LabelFindings:
    """Label issues among the usable rows (see the module's rule); a note instead when the
    data has one class or a class too small for two folds."""
    rows = data.rows
    labels = data.labels[rows]
    present, counts = np.unique(labels, return_counts=True)
    if len(present) < 2:
        return LabelFindings([], 0, ["labels: need two classes to compare, the data has one"])
    smallest = int(counts.min())
    small = data.classes[int(present[counts.argmin()])]
    if smallest < 2:
        note = (
            f"labels: class '{small}' has 1 usable image; cross-validation needs 2 per class, "
            "so no label was checked"
        )
        return LabelFindings([], 0, [note])
    used = min(folds, smallest)
    fewer = f"labels: {used} folds instead of {folds} (class '{small}' has {smallest} images)"
    notes = [fewer] if used < folds else []
    features = embeddings[rows]
    key = {"features": fingerprint(features), "labels": fingerprint(labels), "folds": used,
           "seed": seed, "C": HEAD_C, "blas_threads": 1}  # fmt: skip
    probs = (memo or Memo(None))(
        "label-probabilities",
        key,
        lambda: {"probs": out_of_sample_probabilities(features, labels, present, used, seed)},
    )["probs"]
    flagged = flag_labels(labels, probs, present, threshold)
    targets = np.searchsorted(present, labels)
    given = probs[np.arange(len(rows)), targets]
    best = probs.argmax(axis=1)
    agreement = float(np.mean(best == targets))
    if agreement < WEAK_AGREEMENT:
        notes.append(weak_head_note(agreement, int(flagged.sum())))
    suggested = present[best]
    issues = [
        Issue(
            int(rows[i]),
            "label_issue",
            float(given[i]),
            detail=f"p(given) {given[i]:.3f}, p(suggested) {probs[i].max():.3f}",
            suggested=data.classes[int(suggested[i])],
        )
        for i in np.flatnonzero(flagged)
    ]
    return LabelFindings(issues, used, notes, agreement)


def weak_head_note(agreement: float, flagged: int) -> str:
    """Said when the head agrees with under WEAK_AGREEMENT of the given labels: its flags then
    mix wrong labels with pictures it cannot tell apart (no silent garbage)."""
    return (
        f"labels: the out-of-sample head agrees with only {agreement:.0%} of the given labels, "
        "so many labels are wrong or these classes are hard to tell apart in the backbone's "
        f"features (small pictures, say); then many of the {flagged:,} flagged are hard "
        "images, not wrong labels"
    )


def out_of_sample_probabilities(
    features: np.ndarray, labels: np.ndarray, present: np.ndarray, folds: int, seed: int
) -> np.ndarray:
    """(N, len(present)) probabilities, each row's from the fold that did not train on it.

    Each head's solver runs on one BLAS thread: L-BFGS alternates short matrix products with
    its own serial steps, and a second thread only waited (10,000 CIFAR-10 embeddings on 2
    cores: 22.3 s with two threads, 7.5 s with one); one thread also gives the same numbers
    whatever the machine's core count (two threads moved 2 of 1,222 flags). The folds are
    fitted side by side instead, one per core, in threads (scikit-learn's loss releases the
    GIL; processes would leave workers behind): 7.0 -> 4.1 s there, the same probabilities."""
    from joblib import parallel_config
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from threadpoolctl import threadpool_limits

    from imgclf.cores import available_cores

    head = LogisticRegression(C=HEAD_C, max_iter=3000)
    split = StratifiedKFold(folds, shuffle=True, random_state=seed)
    targets = np.searchsorted(present, labels)
    with threadpool_limits(1), parallel_config(backend="threading"):
        return cross_val_predict(
            head, features, targets, cv=split, method="predict_proba", n_jobs=available_cores()
        )


def flag_labels(
    labels: np.ndarray, probs: np.ndarray, present: np.ndarray, threshold: float
) -> np.ndarray:
    """Bool per row: cleanlab's confident learning, or p(given) < threshold / classes."""
    from cleanlab.filter import find_label_issues as confident_learning

    targets = np.searchsorted(present, labels)
    pruned = confident_learning(targets, probs, filter_by="prune_by_noise_rate", n_jobs=1)
    given = probs[np.arange(len(targets)), targets]
    return pruned | (given < threshold / len(present))
