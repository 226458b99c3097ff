"""Precision, recall and F1 of the reference: exact small cases, and scikit-learn on random data.

Hand-computed cases compare with exact fractions. Per class c: P = TP / (TP + FP),
R = TP / (TP + FN), F1 = 2 TP / (2 TP + FP + FN), and any 0/0 is 0.0.
"""

from __future__ import annotations

import warnings
from fractions import Fraction

import numpy as np
import pytest
import torch
from sklearn.metrics import precision_recall_fscore_support

from mnist_course.implementation import load_implementation

TOLERANCE = 1e-12
"""Absolute tolerance for float64 scores against exact fractions: only rounding error."""

AVERAGES = ("macro", "micro", "weighted")


@pytest.fixture(scope="module")
def metrics():
    return load_implementation("solutions").metrics


def exact(value: Fraction | int) -> object:
    """Return ``value`` as a float that matches up to float64 rounding error."""
    return pytest.approx(float(value), abs=TOLERANCE)


# Labels and predictions over three classes, with per-class F1 4/5, 1/2 and 2/3 and class
# counts 3, 2 and 1 in the labels.
UNBALANCED_LABELS = [0, 0, 0, 1, 1, 2]
UNBALANCED_PREDICTIONS = [0, 0, 1, 1, 2, 2]


def test_per_class_two_classes(metrics):
    labels = [0, 0, 0, 1, 1, 1, 1, 1]
    predictions = [0, 1, 0, 1, 0, 1, 0, 1]

    precision, recall, f1 = metrics.precision_recall_f1(
        labels, predictions, num_classes=2, average=None
    )

    # Class 1 has TP = 3, FP = 1 and FN = 2. Precision and recall swapped give the same F1,
    # so each gets its own check.
    assert precision[1].item() == exact(Fraction(3, 4))
    assert recall[1].item() == exact(Fraction(3, 5))
    assert f1[1].item() == exact(Fraction(2, 3))


def test_macro_unbalanced(metrics):
    precision, recall, f1 = metrics.precision_recall_f1(
        UNBALANCED_LABELS, UNBALANCED_PREDICTIONS, num_classes=3, average="macro"
    )

    assert precision == exact(Fraction(2, 3))
    assert recall == exact(Fraction(13, 18))
    assert f1 == exact(Fraction(59, 90))


def test_weighted_unbalanced(metrics):
    _, _, f1 = metrics.precision_recall_f1(
        UNBALANCED_LABELS, UNBALANCED_PREDICTIONS, num_classes=3, average="weighted"
    )

    # (3 * 4/5 + 2 * 1/2 + 1 * 2/3) / 6 = 61/90. The harmonic mean of the weighted
    # precision (3/4) and the weighted recall (2/3) would be 12/17.
    assert f1 == exact(Fraction(61, 90))


def test_micro_equals_accuracy(metrics):
    precision, recall, f1 = metrics.precision_recall_f1(
        UNBALANCED_LABELS, UNBALANCED_PREDICTIONS, num_classes=3, average="micro"
    )

    # 4 of the 6 predictions are correct.
    assert precision == exact(Fraction(2, 3))
    assert recall == exact(Fraction(2, 3))
    assert f1 == exact(Fraction(2, 3))


def test_argument_order_matters(metrics):
    # Swapped arguments turn every FP into an FN and back, so precision and recall trade places,
    # and the weights of the weighted average come from the other list.
    precision, _, _ = metrics.precision_recall_f1(
        UNBALANCED_PREDICTIONS, UNBALANCED_LABELS, num_classes=3, average="macro"
    )
    _, _, weighted_f1 = metrics.precision_recall_f1(
        UNBALANCED_PREDICTIONS, UNBALANCED_LABELS, num_classes=3, average="weighted"
    )

    assert precision == exact(Fraction(13, 18))
    assert weighted_f1 == exact(Fraction(59, 90))


@pytest.mark.parametrize("average", [None, *AVERAGES])
def test_zero_division_gives_zero(metrics, average):
    # Class 0 is never a label and class 1 is never predicted, so TP + FP = 0 for class 1 and
    # TP + FN = 0 for class 0.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scores = metrics.precision_recall_f1(
            [1, 1], [0, 0], num_classes=2, average=average
        )

    for score in scores:
        values = torch.as_tensor(score, dtype=torch.float64)
        assert not torch.isnan(values).any(), average
        assert torch.all(values == 0.0), average


def test_zero_division_per_class(metrics):
    precision, recall, f1 = metrics.precision_recall_f1(
        [1, 1], [0, 0], num_classes=2, average=None
    )

    assert precision[1].item() == 0.0
    assert recall[1].item() == 0.0
    assert f1[1].item() == 0.0


def test_class_never_predicted(metrics):
    labels = [0, 1, 2]
    predictions = [0, 1, 1]

    _, _, per_class_f1 = metrics.precision_recall_f1(
        labels, predictions, num_classes=3, average=None
    )
    _, _, macro_f1 = metrics.precision_recall_f1(
        labels, predictions, num_classes=3, average="macro"
    )

    assert per_class_f1[0].item() == exact(1)
    assert per_class_f1[1].item() == exact(Fraction(2, 3))
    assert per_class_f1[2].item() == 0.0
    assert macro_f1 == exact(Fraction(5, 9))


def test_integer_counts_divide_as_floats(metrics):
    # Class 1: TP = 3 and FP = 1. Integer division would give 0.
    labels = [1, 1, 1, 0]
    predictions = [1, 1, 1, 1]

    precision, _, _ = metrics.precision_recall_f1(
        torch.tensor(labels),
        torch.tensor(predictions),
        num_classes=2,
        average=None,
    )

    assert precision.dtype == torch.float64
    assert precision[1].item() == 0.75


INPUT_KINDS = {
    "list": lambda values: list(values),
    "torch_int64": lambda values: torch.tensor(values, dtype=torch.int64),
    "torch_int32": lambda values: torch.tensor(values, dtype=torch.int32),
    "torch_uint8": lambda values: torch.tensor(values, dtype=torch.uint8),
    "numpy_int64": lambda values: np.array(values, dtype=np.int64),
    "numpy_int32": lambda values: np.array(values, dtype=np.int32),
}


@pytest.mark.parametrize("kind", list(INPUT_KINDS))
@pytest.mark.parametrize("average", AVERAGES)
def test_input_kinds_same_average(metrics, kind, average):
    convert = INPUT_KINDS[kind]
    expected = metrics.precision_recall_f1(
        UNBALANCED_LABELS, UNBALANCED_PREDICTIONS, num_classes=3, average=average
    )

    scores = metrics.precision_recall_f1(
        convert(UNBALANCED_LABELS),
        convert(UNBALANCED_PREDICTIONS),
        num_classes=3,
        average=average,
    )

    assert scores == expected
    for score in scores:
        assert type(score) is float


@pytest.mark.parametrize("kind", list(INPUT_KINDS))
def test_input_kinds_same_per_class(metrics, kind):
    convert = INPUT_KINDS[kind]
    expected = metrics.precision_recall_f1(
        UNBALANCED_LABELS, UNBALANCED_PREDICTIONS, num_classes=3, average=None
    )

    scores = metrics.precision_recall_f1(
        convert(UNBALANCED_LABELS),
        convert(UNBALANCED_PREDICTIONS),
        num_classes=3,
        average=None,
    )

    for score, expected_score in zip(scores, expected, strict=True):
        assert score.dtype == torch.float64
        assert score.shape == (3,)
        assert torch.equal(score, expected_score)


def test_whole_set_not_batch_mean(metrics):
    batches = [([0, 0], [0, 1]), ([1, 1], [0, 1])]
    batch_f1 = [
        metrics.precision_recall_f1(labels, predictions, num_classes=2, average=None)[
            2
        ][1].item()
        for labels, predictions in batches
    ]
    all_labels = [label for labels, _ in batches for label in labels]
    all_predictions = [
        prediction for _, predictions in batches for prediction in predictions
    ]

    _, _, f1 = metrics.precision_recall_f1(
        all_labels, all_predictions, num_classes=2, average=None
    )

    # Class 1 over the whole set: TP = 1, FP = 1, FN = 1. The batches give F1 0 and 2/3.
    assert sum(batch_f1) / len(batch_f1) == exact(Fraction(1, 3))
    assert f1[1].item() == exact(Fraction(1, 2))


def test_macro_is_mean_of_class_f1(metrics):
    precision, recall, f1 = metrics.precision_recall_f1(
        [0, 0, 1, 1, 2, 2], [0, 1, 1, 1, 2, 2], num_classes=3, average="macro"
    )

    # Per-class F1 is 2/3, 4/5 and 1, whose mean is 37/45. The harmonic mean of the macro
    # precision (8/9) and the macro recall (5/6) would be 80/93.
    assert precision == exact(Fraction(8, 9))
    assert recall == exact(Fraction(5, 6))
    assert f1 == exact(Fraction(37, 45))


@pytest.mark.parametrize(
    ("average", "expected_f1"),
    [
        ("micro", Fraction(9, 10)),
        ("macro", Fraction(9, 19)),
        ("weighted", Fraction(81, 95)),
    ],
)
def test_rare_class_missed(metrics, average, expected_f1):
    # Nine images of class 0 and one of class 1, all predicted as 0. Class 0 has F1 18/19.
    labels = [0] * 9 + [1]
    predictions = [0] * 10

    _, _, f1 = metrics.precision_recall_f1(
        labels, predictions, num_classes=2, average=average
    )

    assert f1 == exact(expected_f1)


def test_rare_class_missed_per_class(metrics):
    _, _, f1 = metrics.precision_recall_f1(
        [0] * 9 + [1], [0] * 10, num_classes=2, average=None
    )

    assert f1[0].item() == exact(Fraction(18, 19))
    assert f1[1].item() == 0.0


def test_absent_classes_per_class(metrics):
    labels = [0, 0, 1, 1, 2, 2]
    predictions = [0, 1, 1, 1, 2, 0]

    scores = metrics.precision_recall_f1(
        labels, predictions, num_classes=10, average=None
    )

    for score in scores:
        assert score.shape == (10,)
        assert torch.all(score[3:] == 0.0)
        assert torch.all(score[:3] > 0.0)


def test_absent_classes_left_out_of_macro(metrics):
    labels = [0, 0, 1, 1, 2, 2]
    predictions = [0, 1, 1, 1, 2, 0]

    ten_classes = metrics.precision_recall_f1(
        labels, predictions, num_classes=10, average="macro"
    )
    three_classes = metrics.precision_recall_f1(
        labels, predictions, num_classes=3, average="macro"
    )

    # Classes 0, 1 and 2 have precision 1/2, 2/3, 1 and recall 1/2, 1, 1/2.
    assert ten_classes[0] == exact(Fraction(13, 18))
    assert ten_classes[1] == exact(Fraction(2, 3))
    assert ten_classes[2] == exact(Fraction(59, 90))
    for name, score, expected in zip(
        ("precision", "recall", "f1"), ten_classes, three_classes, strict=True
    ):
        assert score == pytest.approx(expected, abs=TOLERANCE), name


@pytest.mark.parametrize("average", AVERAGES)
def test_empty_input_averages(metrics, average):
    scores = metrics.precision_recall_f1([], [], num_classes=10, average=average)

    assert scores == (0.0, 0.0, 0.0)


def test_empty_input_per_class(metrics):
    empty = torch.tensor([], dtype=torch.int64)

    scores = metrics.precision_recall_f1(empty, empty, num_classes=10, average=None)

    for score in scores:
        assert score.shape == (10,)
        assert torch.all(score == 0.0)


def random_case(seed: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Draw labels, predictions and num_classes. Each prediction copies its label with p = 1/2.

    The length runs through 1 and a few larger sizes, and the classes drawn are a random subset
    of ``0 .. num_classes - 1``, so some classes are often absent from both lists.
    """
    rng = np.random.default_rng(seed)
    length = (1, 2, 7, 40, 300)[seed % 5]
    num_classes = int(rng.integers(2, 13))
    used = rng.choice(
        num_classes, size=int(rng.integers(1, num_classes + 1)), replace=False
    )
    labels = rng.choice(used, size=length)
    predictions = np.where(
        rng.random(length) < 0.5, labels, rng.choice(used, size=length)
    )
    return labels, predictions, num_classes


SEEDS = range(40)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("average", AVERAGES)
def test_matches_sklearn_average(metrics, seed, average):
    labels, predictions, num_classes = random_case(seed)
    expected = precision_recall_fscore_support(
        labels, predictions, average=average, zero_division=0
    )[:3]

    scores = metrics.precision_recall_f1(
        labels, predictions, num_classes=num_classes, average=average
    )

    for name, score, expected_score in zip(
        ("precision", "recall", "f1"), scores, expected, strict=True
    ):
        assert score == pytest.approx(expected_score, abs=TOLERANCE), name


@pytest.mark.parametrize("seed", SEEDS)
def test_matches_sklearn_per_class(metrics, seed):
    labels, predictions, num_classes = random_case(seed)
    expected = precision_recall_fscore_support(
        labels,
        predictions,
        labels=list(range(num_classes)),
        average=None,
        zero_division=0,
    )[:3]

    scores = metrics.precision_recall_f1(
        labels, predictions, num_classes=num_classes, average=None
    )

    for name, score, expected_score in zip(
        ("precision", "recall", "f1"), scores, expected, strict=True
    ):
        assert score.shape == (num_classes,), name
        np.testing.assert_allclose(
            score.numpy(), expected_score, rtol=0, atol=TOLERANCE
        )


@pytest.mark.parametrize("seed", range(10))
def test_batches_sum_to_whole(metrics, seed):
    labels, predictions, num_classes = random_case(seed)
    labels, predictions = torch.from_numpy(labels), torch.from_numpy(predictions)
    rng = np.random.default_rng(seed)
    cuts = sorted(rng.integers(0, len(labels) + 1, size=3).tolist())
    label_batches = torch.tensor_split(labels, cuts)
    prediction_batches = torch.tensor_split(predictions, cuts)

    batch_counts = [
        metrics.confusion_counts(batch_labels, batch_predictions, num_classes)
        for batch_labels, batch_predictions in zip(
            label_batches, prediction_batches, strict=True
        )
    ]
    whole_counts = metrics.confusion_counts(labels, predictions, num_classes)

    for index, name in enumerate(("tp", "fp", "fn")):
        summed = sum(counts[index] for counts in batch_counts)
        assert torch.equal(summed, whole_counts[index]), name


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("average", [*AVERAGES, None])
def test_batch_order_irrelevant(metrics, seed, average):
    labels, predictions, num_classes = random_case(seed)
    labels, predictions = torch.from_numpy(labels), torch.from_numpy(predictions)
    rng = np.random.default_rng(seed)
    cuts = sorted(rng.integers(0, len(labels) + 1, size=3).tolist())
    # The batches concatenated in reverse order: the same images in another order.
    reordered_labels = torch.cat(torch.tensor_split(labels, cuts)[::-1])
    reordered_predictions = torch.cat(torch.tensor_split(predictions, cuts)[::-1])

    scores = metrics.precision_recall_f1(
        reordered_labels,
        reordered_predictions,
        num_classes=num_classes,
        average=average,
    )
    expected = metrics.precision_recall_f1(
        labels, predictions, num_classes=num_classes, average=average
    )

    for name, score, expected_score in zip(
        ("precision", "recall", "f1"), scores, expected, strict=True
    ):
        assert torch.allclose(
            torch.as_tensor(score),
            torch.as_tensor(expected_score),
            rtol=0,
            atol=TOLERANCE,
        ), name


@pytest.mark.parametrize("argument", ["labels", "predictions"])
@pytest.mark.parametrize(
    ("bad_values", "message"),
    [
        ([0, 1, 10], r"contains class index 10, outside 0\.\.9"),
        ([0, -1, 2], r"contains class index -1, outside 0\.\.9"),
        ([0.0, 0.5, 1.0], r"must hold whole class indices"),
        ([[0, 1, 2]], r"must be 1-D .*got shape \(1, 3\)"),
    ],
    ids=["index_too_large", "index_negative", "fraction", "two_dimensional"],
)
def test_bad_values_rejected(metrics, argument, bad_values, message):
    good_values = [0, 1, 2]
    arguments = {"labels": good_values, "predictions": good_values}
    arguments[argument] = bad_values

    with pytest.raises(ValueError, match=f"^{argument} {message}"):
        metrics.precision_recall_f1(
            arguments["labels"], arguments["predictions"], num_classes=10
        )


def test_different_lengths_rejected(metrics):
    with pytest.raises(
        ValueError, match=r"same length, got 3 labels and 2 predictions"
    ):
        metrics.precision_recall_f1([0, 1, 2], [0, 1], num_classes=10)


def test_unknown_average_rejected(metrics):
    with pytest.raises(ValueError, match=r"average must be one of .*got 'binary'"):
        metrics.precision_recall_f1([0, 1], [0, 1], num_classes=10, average="binary")


def test_confusion_counts_example(metrics):
    tp, fp, fn = metrics.confusion_counts([0, 0, 1], [0, 1, 1], num_classes=2)

    assert tp.tolist() == [1, 1]
    assert fp.tolist() == [0, 1]
    assert fn.tolist() == [1, 0]


def test_confusion_counts_dtype(metrics):
    counts = metrics.confusion_counts(
        np.array([0, 0, 1], dtype=np.int32),
        torch.tensor([0, 1, 1], dtype=torch.uint8),
        num_classes=2,
    )

    for name, count in zip(("tp", "fp", "fn"), counts, strict=True):
        assert count.dtype == torch.int64, name
        assert count.shape == (2,), name
