"""Task 1: precision, recall and F1 (exercises/metrics.py), 30 points."""

from __future__ import annotations

import random
from fractions import Fraction

import numpy as np
import pytest
import torch

from grading.checks import (
    close,
    exact,
    per_class,
    score,
    student_scores,
    true_counts,
)
from grading.harness import as_tensor, check
from grading.plain import is_tuple, type_name

TASK = "Task 1: metrics"

# Precision and recall swapped give the same F1 here, so only separate checks catch it.
SWAP_LABELS = [0, 0, 0, 1, 1, 1, 1, 1]
SWAP_PREDICTIONS = [0, 1, 0, 1, 0, 1, 0, 1]
# Three classes; swapping labels and predictions changes macro precision and weighted F1.
ORDER_LABELS = [0, 0, 0, 1, 1, 2]
ORDER_PREDICTIONS = [0, 0, 1, 1, 2, 2]


def per_class_scores(
    student, labels, predictions, num_classes=10, warnings_as_errors=False
):
    result = student_scores(
        student,
        [labels, predictions],
        {"num_classes": num_classes, "average": None},
        warnings_as_errors,
    )
    check(
        (is_tuple(result) or isinstance(result, list)) and len(result) == 3,
        "precision_recall_f1(..., average=None) to return (precision, recall, f1)",
        f"{type_name(result)}",
    )
    names = ("precision", "recall", "F1")
    return [
        per_class(value, f"per-class {name}", num_classes)
        for value, name in zip(result, names, strict=True)
    ]


def averaged_scores(
    student, labels, predictions, average, num_classes=10, warnings_as_errors=False
):
    result = student_scores(
        student,
        [labels, predictions],
        {"num_classes": num_classes, "average": average},
        warnings_as_errors,
    )
    check(
        (is_tuple(result) or isinstance(result, list)) and len(result) == 3,
        f"precision_recall_f1(..., average={average!r}) to return (precision, recall, f1)",
        f"{type_name(result)}",
    )
    return [score(value, f"{average} score") for value in result]


def accuracy(labels: list[int], predictions: list[int]) -> float:
    return sum(a == b for a, b in zip(labels, predictions, strict=True)) / len(labels)


ACCURACY_MISTAKE = (
    "this is the accuracy (the share of right predictions), not F1; it equals micro F1, "
    "but macro F1 averages the F1 of each class"
)


@pytest.mark.points(4)
def test_confusion_counts(student):
    tp, fp, fn = student.call("metrics.confusion_counts", [0, 0, 1], [0, 1, 1], 2)
    got = [as_tensor(x, "a count").tolist() for x in (tp, fp, fn)]
    check(
        got == [[1, 1], [0, 1], [1, 0]],
        "labels [0, 0, 1], predictions [0, 1, 1] to give tp [1, 1], fp [0, 1], fn [1, 0]",
        f"tp {got[0]}, fp {got[1]}, fn {got[2]}",
        "FP of a class counts images predicted as that class but labelled otherwise; "
        "FN counts images of that class predicted as another one",
    )

    generator = random.Random(7)
    labels = [generator.randrange(10) for _ in range(200)]
    predictions = [generator.randrange(10) for _ in range(200)]
    result = student.call("metrics.confusion_counts", labels, predictions, 10)
    got = [as_tensor(x, "a count").tolist() for x in result]
    expected = [list(x) for x in true_counts(labels, predictions, 10)]
    check(got == expected, f"tp, fp, fn = {expected} on 200 random labels", f"{got}")


@pytest.mark.points(4)
def test_precision_per_class(student):
    precision, recall, _ = per_class_scores(student, SWAP_LABELS, SWAP_PREDICTIONS, 2)
    swapped = close(precision[1], 3 / 5) and close(recall[1], 3 / 4)
    check(
        close(precision[1], 3 / 4),
        "precision of class 1 = TP/(TP+FP) = 3/4 = 0.75 for labels "
        f"{SWAP_LABELS} and predictions {SWAP_PREDICTIONS}",
        f"{precision[1]:.6g}",
        "precision and recall are swapped" if swapped else "wrong counts for TP or FP",
        "precision divides by everything predicted as the class (TP + FP)",
    )


@pytest.mark.points(3)
def test_recall_per_class(student):
    precision, recall, _ = per_class_scores(student, SWAP_LABELS, SWAP_PREDICTIONS, 2)
    swapped = close(recall[1], 3 / 4) and close(precision[1], 3 / 5)
    check(
        close(recall[1], 3 / 5),
        "recall of class 1 = TP/(TP+FN) = 3/5 = 0.6 for labels "
        f"{SWAP_LABELS} and predictions {SWAP_PREDICTIONS}",
        f"{recall[1]:.6g}",
        "precision and recall are swapped" if swapped else "wrong counts for TP or FN",
        "recall divides by everything that truly is the class (TP + FN)",
    )


@pytest.mark.points(3)
def test_f1_per_class(student):
    _, _, f1 = per_class_scores(student, SWAP_LABELS, SWAP_PREDICTIONS, 2)
    check(
        close(f1[1], 2 / 3),
        "F1 of class 1 = 2/3 (harmonic mean of 3/4 and 3/5)",
        f"{f1[1]:.6g}",
        "F1 is 2PR/(P+R), not the arithmetic mean (P+R)/2",
    )

    _, _, f1 = per_class_scores(student, [0, 1, 2], [0, 1, 1], 3)
    expected = [1.0, 2 / 3, 0.0]
    check(
        all(close(a, b) for a, b in zip(f1, expected, strict=True)),
        "per-class F1 [1, 0.6667, 0] for labels [0, 1, 2] and predictions [0, 1, 1]",
        f"{[round(x, 4) for x in f1]}",
    )


@pytest.mark.points(3)
def test_zero_division(student):
    precision, recall, f1 = per_class_scores(
        student, [1, 1], [0, 0], 2, warnings_as_errors=True
    )
    macro = averaged_scores(
        student, [0, 1, 2], [0, 1, 1], "macro", 3, warnings_as_errors=True
    )
    got = (precision[1], recall[1], f1[1])
    check(
        not any(np.isnan(got)),
        "0.0 where a score divides 0 by 0, never NaN",
        f"precision, recall, F1 of class 1 = {got}",
        "a division without a guard for 0/0",
        "return 0.0 whenever the denominator is 0",
    )
    check(
        got == (0.0, 0.0, 0.0),
        "precision, recall and F1 of class 1 all 0.0 for labels [1, 1], predictions [0, 0]",
        f"{got}",
    )
    check(
        close(macro[2], 5 / 9),
        "macro F1 5/9 for labels [0, 1, 2], predictions [0, 1, 1] (class 2 is never "
        "predicted, so its precision is 0/0 = 0)",
        f"{macro[2]:.6g}",
        ACCURACY_MISTAKE
        if close(macro[2], accuracy([0, 1, 2], [0, 1, 1]))
        else "F1 of the mean precision and mean recall (4/7), where macro F1 is the mean "
        "of the per-class F1"
        if close(macro[2], 4 / 7)
        else None,
    )


@pytest.mark.points(3)
def test_integer_inputs(student):
    labels = [1, 1, 1, 0, 0, 1, 0]
    predictions = [1, 1, 1, 1, 0, 0, 0]  # class 1: TP 3, FP 1, FN 1
    inputs = {
        "a list": (labels, predictions),
        "an int64 tensor": (torch.tensor(labels), torch.tensor(predictions)),
        "an int32 tensor": (
            torch.tensor(labels, dtype=torch.int32),
            torch.tensor(predictions, dtype=torch.int32),
        ),
        "an int32 numpy array": (
            np.array(labels, dtype=np.int32),
            np.array(predictions, dtype=np.int32),
        ),
    }
    for kind, (y_true, y_pred) in inputs.items():
        precision, _, _ = per_class_scores(student, y_true, y_pred, 2)
        check(
            close(precision[1], 0.75),
            f"precision 0.75 (3/4) with labels given as {kind}",
            f"{precision[1]:.6g}",
            "integer division: // or integer tensors divided without converting to float",
            "convert the counts to float before dividing",
        )


@pytest.mark.points(3)
def test_macro_average(student):
    labels, predictions = [0, 0, 1, 1, 2, 2], [0, 1, 1, 1, 2, 2]
    _, _, macro_f1 = averaged_scores(student, labels, predictions, "macro")
    check(
        close(macro_f1, 37 / 45),
        "macro F1 = mean of the per-class F1 (2/3, 4/5, 1) = 37/45 = 0.8222 for labels "
        f"{labels}, predictions {predictions}; digits 3-9 appear nowhere and are left out",
        f"{macro_f1:.6g}",
        ACCURACY_MISTAKE
        if close(macro_f1, accuracy(labels, predictions))
        else "F1 of the mean precision and mean recall (80/93)"
        if close(macro_f1, 80 / 93)
        else "classes absent from both lists averaged in"
        if close(macro_f1, 37 / 150)
        else None,
        "compute F1 per class first, then average the F1 values over the present classes",
    )

    labels, predictions = [0] * 9 + [1], [0] * 10
    _, _, macro_f1 = averaged_scores(student, labels, predictions, "macro")
    check(
        close(macro_f1, exact(Fraction(9, 19))),
        "macro F1 9/19 = 0.4737 when 9 of 10 images are class 0 and all are predicted 0",
        f"{macro_f1:.6g}",
        ACCURACY_MISTAKE if close(macro_f1, accuracy(labels, predictions)) else None,
    )


@pytest.mark.points(3)
def test_weighted_average(student):
    _, _, weighted_f1 = averaged_scores(
        student, ORDER_LABELS, ORDER_PREDICTIONS, "weighted"
    )
    mistake = None
    if close(weighted_f1, 12 / 17):
        mistake = "F1 of the weighted precision and weighted recall"
    elif close(weighted_f1, accuracy(ORDER_LABELS, ORDER_PREDICTIONS)):
        mistake = ACCURACY_MISTAKE
    elif close(weighted_f1, 59 / 90):
        mistake = (
            "weights from the predictions instead of the labels, or arguments swapped"
        )
    check(
        close(weighted_f1, 61 / 90),
        f"weighted F1 61/90 = 0.6778 for labels {ORDER_LABELS}, predictions "
        f"{ORDER_PREDICTIONS} (weights: each class's count in the labels)",
        f"{weighted_f1:.6g}",
        mistake,
    )

    labels, predictions = [0] * 9 + [1], [0] * 10
    _, _, weighted_f1 = averaged_scores(student, labels, predictions, "weighted")
    check(
        close(weighted_f1, 81 / 95),
        "weighted F1 81/95 = 0.8526 for 9 zeros and one 1, all predicted 0",
        f"{weighted_f1:.6g}",
    )


@pytest.mark.points(2)
def test_micro_average(student):
    labels, predictions = [0] * 9 + [1], [0] * 10
    precision, recall, f1 = averaged_scores(student, labels, predictions, "micro")
    check(
        close(f1, 0.9),
        "micro F1 0.9 (from the summed TP, FP, FN; equal to accuracy)",
        f"{f1:.6g}",
    )
    check(
        close(precision, 0.9) and close(recall, 0.9),
        "micro precision and recall 0.9",
        f"{precision:.6g} and {recall:.6g}",
    )


@pytest.mark.points(2)
def test_argument_order(student):
    precision, recall, _ = averaged_scores(
        student, ORDER_LABELS, ORDER_PREDICTIONS, "macro"
    )
    check(
        close(precision, 2 / 3) and close(recall, 13 / 18),
        f"macro precision 2/3 and recall 13/18 for labels {ORDER_LABELS}, predictions "
        f"{ORDER_PREDICTIONS}",
        f"{precision:.6g} and {recall:.6g}",
        "labels and predictions swapped" if close(precision, 13 / 18) else None,
        "the first argument is the true labels, the second the predictions"
        if close(precision, 13 / 18)
        else "average the per-class scores over the classes present in the labels or "
        "the predictions (0, 1 and 2 here)",
    )
