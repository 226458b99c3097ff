"""Hidden checks of Task 1 (exercises/metrics.py): a large random input and an empty one."""

from __future__ import annotations

import random
from fractions import Fraction

import numpy as np
import pytest
import torch

from grading.checks import close, per_class, score, student_scores, true_counts
from grading.harness import check
from grading.plain import is_tuple, type_name

TASK = "Task 1: metrics"
pytestmark = pytest.mark.hidden

NUM_CLASSES = 12
"""More classes than the labels use: classes 10 and 11 appear in neither list."""
AVERAGES = ("macro", "micro", "weighted")
SCORE_NAMES = ("precision", "recall", "F1")


def ratio(numerator: int, denominator: int) -> Fraction:
    return Fraction(numerator, denominator) if denominator else Fraction(0)


def exact_scores(labels: list[int], predictions: list[int], num_classes: int) -> dict:
    """Compute every score as an exact fraction with plain Python, keyed by the average.

    The key None maps to the per-class lists of precision, recall and F1.
    """
    tp, fp, fn = true_counts(labels, predictions, num_classes)
    classes = range(num_classes)
    per_class_scores = (
        [ratio(tp[c], tp[c] + fp[c]) for c in classes],
        [ratio(tp[c], tp[c] + fn[c]) for c in classes],
        [ratio(2 * tp[c], 2 * tp[c] + fp[c] + fn[c]) for c in classes],
    )
    present = [c for c in classes if tp[c] + fp[c] + fn[c] > 0]
    support = [tp[c] + fn[c] for c in classes]
    all_tp, all_fp, all_fn = sum(tp), sum(fp), sum(fn)
    return {
        None: per_class_scores,
        "macro": tuple(
            sum(values[c] for c in present) / len(present)
            for values in per_class_scores
        ),
        "micro": (
            ratio(all_tp, all_tp + all_fp),
            ratio(all_tp, all_tp + all_fn),
            ratio(2 * all_tp, 2 * all_tp + all_fp + all_fn),
        ),
        "weighted": tuple(
            sum(values[c] * support[c] for c in classes) / sum(support)
            for values in per_class_scores
        ),
    }


def skewed_sample(seed: int, size: int) -> tuple[list[int], list[int]]:
    """Return labels of digits 0-9 with unequal counts and predictions that are 70% right.

    Digit 8 is never predicted, so its precision divides 0 by 0.
    """
    generator = random.Random(seed)
    weights = [30, 20, 15, 10, 8, 6, 5, 3, 2, 1]
    labels = generator.choices(range(10), weights=weights, k=size)
    predictions = []
    for label in labels:
        prediction = label if generator.random() < 0.7 else generator.randrange(10)
        predictions.append(3 if prediction == 8 else prediction)
    return labels, predictions


def returned_triple(result, what: str):
    check(
        (is_tuple(result) or isinstance(result, list)) and len(result) == 3,
        f"{what} to return (precision, recall, f1)",
        type_name(result),
    )
    return result


@pytest.mark.points(3)
def test_hidden_random_input_exact(student):
    labels, predictions = skewed_sample(seed=2024, size=1500)
    expected = exact_scores(labels, predictions, NUM_CLASSES)
    # Labels as an int64 numpy array and predictions as a tensor: both are allowed inputs.
    label_array = np.array(labels, dtype=np.int64)
    prediction_tensor = torch.tensor(predictions)
    what = f"1500 random labels with num_classes={NUM_CLASSES}"

    result = student_scores(
        student,
        [label_array, prediction_tensor],
        {"num_classes": NUM_CLASSES, "average": None},
    )
    result = returned_triple(result, "precision_recall_f1(..., average=None)")
    for name, values, exact_values in zip(
        SCORE_NAMES, result, expected[None], strict=True
    ):
        got = per_class(values, f"per-class {name}", NUM_CLASSES)
        wrong = [
            c for c in range(NUM_CLASSES) if not close(got[c], float(exact_values[c]))
        ]
        check(
            not wrong,
            f"per-class {name} equal to the exact value for every class, {what}",
            "wrong values for classes "
            + ", ".join(
                f"{c} ({got[c]:.6g} instead of {float(exact_values[c]):.6g})"
                for c in wrong
            ),
            "precision of a class that is never predicted is 0/0 and must be 0.0"
            if 8 in wrong and name == "precision"
            else None,
        )

    for average in AVERAGES:
        result = student_scores(
            student,
            [label_array, prediction_tensor],
            {"num_classes": NUM_CLASSES, "average": average},
        )
        result = returned_triple(
            result, f"precision_recall_f1(..., average={average!r})"
        )
        for name, value, exact_value in zip(
            SCORE_NAMES, result, expected[average], strict=True
        ):
            got = score(value, f"{average} {name}")
            mistake = None
            if average == "macro" and close(got, float(exact_value * 10 / NUM_CLASSES)):
                mistake = "classes absent from both lists averaged in"
            check(
                close(got, float(exact_value)),
                f"{average} {name} {float(exact_value):.6g}, {what}",
                f"{got:.6g}",
                mistake,
            )


@pytest.mark.points(2)
def test_hidden_empty_input(student):
    for average in AVERAGES:
        result = student_scores(
            student, [[], []], {"average": average}, warnings_as_errors=True
        )
        result = returned_triple(
            result, f"precision_recall_f1([], [], average={average!r})"
        )
        got = tuple(score(value, f"{average} score") for value in result)
        check(
            got == (0.0, 0.0, 0.0),
            f"{average} precision, recall and F1 of 0.0 for empty labels and "
            f"predictions (every score is 0/0)",
            f"{got}",
            "a division without a guard for 0/0, or a mean over no classes",
            "use safe_divide for the averages as well",
        )
    result = student_scores(
        student, [[], []], {"average": None}, warnings_as_errors=True
    )
    result = returned_triple(result, "precision_recall_f1([], [], average=None)")
    for name, values in zip(SCORE_NAMES, result, strict=True):
        got = per_class(values, f"per-class {name}", 10)
        check(
            got == [0.0] * 10,
            f"per-class {name} of ten zeros for empty labels and predictions",
            f"{got}",
        )
