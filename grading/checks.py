"""Shared pieces of the graded checks: tolerances, the graders' own metric, fixed data.

Nothing here comes from the reference solution: the checks compute what they expect
themselves, so the same suite grades the student version where solutions/ is absent.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch

from grading.harness import Feedback, NotImplementedFeedback, as_tensor, call, feedback
from grading.plain import type_name
from grading.student import call_function, feedback_text
from mnist_course.data import load_mnist
from mnist_course.errors import CourseError
from mnist_course.implementation import PROJECT_ROOT
from mnist_course.model import MnistNet

SCORE_TOLERANCE = 1e-6
"""Absolute tolerance when comparing a metric with its exact value. A division in float32,
torch's default, is off by up to about 6e-8 for scores in [0, 1]; the mistakes that the
checks tell apart differ by more than 1e-3."""

F1_THRESHOLD = 0.90
"""Macro F1 that the student's own loop must reach on the fixed subset below."""
F1_TRAIN_SUBSET = 6000
F1_TEST_SUBSET = 1000
F1_EPOCHS = 2
"""The reference reaches about 0.96 on this subset; the threshold leaves room for correct
variants (another optimizer, batch size or scheduler)."""

GRADING_DATA = Path(__file__).resolve().parent / "data"
REFERENCE_MODEL = GRADING_DATA / "reference_model.pt"
"""A state_dict of MnistNet trained by the reference on the full MNIST (macro F1 above
0.99). The classification checks use it, so they do not depend on the student's training."""


def load_grading_split(train: bool, count: int):
    """Return the first ``count`` images of the MNIST train or test split, in memory.

    Raises :class:`Feedback` if MNIST is not available (it is prepared offline if needed).
    """
    try:
        return load_mnist(
            PROJECT_ROOT / "data", train=train, indices=list(range(count))
        )
    except CourseError as error:
        raise Feedback(
            f"MNIST is not available, so this check cannot run.\n{error}"
        ) from None


@functools.cache
def grading_split(train: bool, count: int):
    """Return :func:`load_grading_split` of the same split, loaded once per process.

    Observers that need MNIST load it with this, next to student code. The checks' own
    process uses the ``mnist_train`` and ``mnist_test`` fixtures.
    """
    return load_grading_split(train, count)


def attempt(function: Callable[..., Any], *args: Any, **kwargs: Any) -> dict:
    """Observer side: return ``{"value": function(*args, **kwargs)}``, or the feedback raised.

    The result has the form of an observer's reply, so the check raises that feedback
    with :func:`grading.student.unpack` where it judges this step, after the checks of the
    steps before it, as if it had run the step itself.
    """
    try:
        return {"value": function(*args, **kwargs)}
    except Feedback as error:
        return {
            "feedback": feedback_text(error),
            "not_implemented": isinstance(error, NotImplementedFeedback),
        }


def exact(value: Fraction | int) -> float:
    return float(Fraction(value))


def score(value: Any, what: str) -> float:
    """Return a metric value as a float: Python numbers and one-element tensors are accepted."""
    if (
        isinstance(value, torch.Tensor | np.ndarray | np.generic)
        and np.size(value) == 1
    ):
        return float(
            np.asarray(value.detach() if isinstance(value, torch.Tensor) else value)
        )
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise feedback(f"{what} as a number", f"a value of type {type_name(value)}")


def per_class(value: Any, what: str, num_classes: int) -> list[float]:
    """Return per-class scores as a list of floats, from a tensor, array or list."""
    if isinstance(value, list | tuple | np.ndarray):
        value = torch.as_tensor(np.asarray(value, dtype=np.float64))
    tensor = as_tensor(value, what)
    if tensor.shape != (num_classes,):
        raise feedback(
            f"{what} of shape ({num_classes},), one score per class",
            f"shape {tuple(tensor.shape)}",
            "average=None must return one value per class 0..num_classes-1",
        )
    return [float(x) for x in tensor.to(torch.float64)]


def close(actual: float, expected: float) -> bool:
    return abs(actual - expected) <= SCORE_TOLERANCE


def true_counts(labels, predictions, num_classes: int):
    """Count TP, FP and FN per class with plain Python, as the graders' own oracle."""
    tp = [0] * num_classes
    fp = [0] * num_classes
    fn = [0] * num_classes
    for label, prediction in zip(labels, predictions, strict=True):
        if label == prediction:
            tp[label] += 1
        else:
            fp[prediction] += 1
            fn[label] += 1
    return tp, fp, fn


def true_macro_f1(labels, predictions, num_classes: int = 10) -> float:
    """Macro F1 over the classes present in labels or predictions, with 0/0 as 0."""
    tp, fp, fn = true_counts(
        [int(x) for x in labels], [int(x) for x in predictions], num_classes
    )
    scores = [
        2 * t / (2 * t + p + n)
        for t, p, n in zip(tp, fp, fn, strict=True)
        if t + p + n > 0
    ]
    return sum(scores) / len(scores) if scores else 0.0


def scores_raising_warnings(implementation, args: list, kwargs: dict):
    """Observer: call precision_recall_f1 with every warning raised as an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return call_function(
            implementation, "metrics.precision_recall_f1", args, kwargs
        )


def student_scores(student, args: list, kwargs: dict, warnings_as_errors: bool = False):
    """Return what the student's precision_recall_f1(*args, **kwargs) returns, as plain data.

    With ``warnings_as_errors``, a warning that it raises fails the check.
    """
    if warnings_as_errors:
        return student.run(scores_raising_warnings, args, kwargs)
    return student.call("metrics.precision_recall_f1", *args, **kwargs)


def epoch_loss_at_rate_zero(implementation, model: torch.nn.Module, batches) -> Any:
    """Return the student's train_one_epoch() on ``batches`` with SGD at learning rate 0.

    A helper of observers: with the weights fixed, the check can compute the loss itself.
    """
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    return call(
        implementation.training.train_one_epoch,
        model,
        batches,
        optimizer,
        torch.nn.CrossEntropyLoss(),
    )


def own_metric_agrees(student, labels, predictions, f1: float) -> bool:
    """Tell whether the student's own macro F1 of ``labels`` and ``predictions`` is ``f1``.

    The training checks accept a reported F1 that the student's metric gives, because
    Task 1 grades the metric itself.
    """
    try:
        own = student_scores(student, [labels, predictions], {"average": "macro"})
        return abs(score(own[2], "macro F1") - f1) <= SCORE_TOLERANCE
    except (Feedback, TypeError, IndexError):
        return False


def load_reference_model() -> MnistNet:
    """Load the model in :data:`REFERENCE_MODEL`, in evaluation mode."""
    model = MnistNet()
    model.load_state_dict(torch.load(REFERENCE_MODEL, weights_only=True))
    return model.eval()


def label_of(model: MnistNet, tensor: torch.Tensor) -> int:
    """Return the digit that ``model`` gives one preprocessed image of shape (1, 28, 28)."""
    with torch.no_grad():
        return int(model(tensor.unsqueeze(0)).argmax(dim=1))
