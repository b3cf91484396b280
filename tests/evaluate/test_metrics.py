"""evaluate_predictions on small cases worked out by hand."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
from sklearn.metrics import f1_score

from imgclf.errors import DataError
from imgclf.evaluate import Evaluation, evaluate_predictions

CLASSES = ["cat", "dog", "bird"]
# Rows 1, 4 and 5 are mistakes (confidence 0.6, 0.9, 0.5); "bird" is never predicted.
Y_TRUE = np.array([0, 0, 1, 1, 2, 2])
PROBS = np.array(
    [
        [0.7, 0.2, 0.1],
        [0.1, 0.6, 0.3],
        [0.2, 0.7, 0.1],
        [0.1, 0.8, 0.1],
        [0.05, 0.9, 0.05],
        [0.2, 0.5, 0.3],
    ]
)


@pytest.fixture
def evaluation() -> Evaluation:
    return evaluate_predictions(Y_TRUE, PROBS, CLASSES, split="val", top_k=(1, 2, 3, 5))


def test_accuracy_and_loss_match_a_hand_computation(evaluation: Evaluation) -> None:
    assert evaluation.accuracy == pytest.approx(3 / 6)
    expected_loss = -np.mean(np.log([0.7, 0.1, 0.7, 0.8, 0.05, 0.3]))
    assert evaluation.loss == pytest.approx(expected_loss)
    assert evaluation.y_pred.tolist() == [0, 1, 1, 1, 1, 1]
    assert evaluation.confidence.tolist() == pytest.approx([0.7, 0.6, 0.7, 0.8, 0.9, 0.5])


def test_top_k_skips_k_at_or_above_the_number_of_classes(evaluation: Evaluation) -> None:
    assert evaluation.top_k == pytest.approx({1: 3 / 6, 2: 4 / 6})
    default = evaluate_predictions(Y_TRUE, PROBS, CLASSES)
    assert list(default.top_k) == [1]


def test_top_k_on_ten_classes() -> None:
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(10), size=200)
    y_true = rng.integers(0, 10, 200)
    evaluation = evaluate_predictions(y_true, probs, [f"c{i}" for i in range(10)])
    ranks = (probs > probs[np.arange(200), y_true][:, None]).sum(axis=1)  # 0 = best
    for k in (1, 3, 5):
        assert evaluation.top_k[k] == pytest.approx(np.mean(ranks < k))


def test_report_matches_sklearn_and_handles_a_never_predicted_class(
    evaluation: Evaluation,
) -> None:
    macro = f1_score(Y_TRUE, evaluation.y_pred, average="macro", labels=[0, 1, 2], zero_division=0)
    assert evaluation.macro_f1 == pytest.approx(macro)
    assert evaluation.report["bird"]["precision"] == 0
    assert evaluation.report["bird"]["support"] == 2
    assert isinstance(evaluation.report["macro avg"]["support"], int)  # sklearn gives floats
    assert evaluation.report["dog"]["precision"] == pytest.approx(2 / 5)
    assert evaluation.per_class_accuracy == pytest.approx({"cat": 0.5, "dog": 1.0, "bird": 0.0})


def test_confusion_matrix_and_most_confused_order(evaluation: Evaluation) -> None:
    assert evaluation.confusion.tolist() == [[1, 1, 0], [0, 2, 0], [0, 2, 0]]
    assert evaluation.most_confused == [("bird", "dog", 2), ("cat", "dog", 1)]


def test_absent_class_gets_a_zero_row() -> None:
    evaluation = evaluate_predictions(Y_TRUE[:4], PROBS[:4], CLASSES)
    assert evaluation.confusion.shape == (3, 3)
    assert evaluation.confusion[2].tolist() == [0, 0, 0]
    assert evaluation.report["bird"]["support"] == 0


def test_mistakes_are_most_confident_first(evaluation: Evaluation) -> None:
    assert evaluation.mistakes().tolist() == [4, 1, 5]
    assert evaluation.mistakes(2).tolist() == [4, 1]


def test_to_dict_is_strict_json(evaluation: Evaluation) -> None:
    data = evaluation.to_dict()
    json.dumps(data, allow_nan=False)
    assert data["split"] == "val"
    assert data["n_images"] == 6
    assert data["accuracy"] == 0.5
    assert data["top_k"] == {"top_1": 0.5, "top_2": pytest.approx(0.666667)}
    assert data["confusion"] == [[1, 1, 0], [0, 2, 0], [0, 2, 0]]
    assert data["most_confused"][0] == {"true": "bird", "predicted": "dog", "count": 2}
    assert "macro avg" in data["report"] and "accuracy" in data["report"]


def test_to_dict_turns_non_finite_numbers_into_none(evaluation: Evaluation) -> None:
    broken = dataclasses.replace(evaluation, loss=math.inf, accuracy=math.nan)
    data = broken.to_dict()
    assert data["loss"] is None and data["accuracy"] is None
    json.dumps(data, allow_nan=False)


def test_to_frame_and_summary_line(evaluation: Evaluation) -> None:
    frame = evaluation.to_frame()
    assert list(frame.columns) == ["precision", "recall", "f1", "support", "accuracy"]
    assert list(frame.index) == CLASSES
    assert frame.loc["dog", "support"] == 2
    line = evaluation.summary_line()
    assert line.startswith("val: accuracy 0.5000, macro F1 ")
    assert line.endswith("(6 images)")
    assert repr(evaluation) == f"Evaluation({line})"


def test_one_hot_labels_are_accepted() -> None:
    one_hot = np.eye(3)[Y_TRUE]
    assert evaluate_predictions(one_hot, PROBS, CLASSES).accuracy == pytest.approx(0.5)


def test_zero_probability_of_the_true_class_is_clipped() -> None:
    evaluation = evaluate_predictions(np.array([0]), np.array([[0.0, 1.0]]), ["a", "b"])
    assert evaluation.loss == pytest.approx(-math.log(1e-12))


@pytest.mark.parametrize(
    ("y_true", "probs", "message"),
    [
        (Y_TRUE, PROBS[:, :2], "shape"),
        (Y_TRUE[:3], PROBS, "one label per row"),
        (np.array([0, 0, 1, 1, 2, 3]), PROBS, "outside 0..2"),
        (Y_TRUE.astype(float), PROBS, "integer"),
        (np.array([], dtype=int), np.zeros((0, 3)), "no images"),
    ],
)
def test_bad_inputs_say_what_is_wrong(y_true, probs, message: str) -> None:
    with pytest.raises(DataError, match=message):
        evaluate_predictions(y_true, probs, CLASSES)
