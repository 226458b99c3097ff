"""Task 1: precision, recall and F1 for the ten digit classes.

Definitions, per class ``c`` (class ``c`` against all the others):

- TP = images of class ``c`` predicted as ``c``;
- FP = images of another class predicted as ``c``;
- FN = images of class ``c`` predicted as another class;
- precision = TP / (TP + FP), recall = TP / (TP + FN), F1 = 2 TP / (2 TP + FP + FN), which
  equals the harmonic mean of precision and recall.

Zero division: any 0/0 gives 0.0, with no exception, NaN or warning (scikit-learn's
``zero_division=0``). Example: labels ``[1, 1]`` and predictions ``[0, 0]`` give precision,
recall and F1 of 0.0 for class 1.

Averages over the classes:

- ``"macro"``: the plain mean of the per-class scores, over the classes that appear in the
  labels or in the predictions. A class that appears in neither is left out (scikit-learn's
  default), so scores on a subset of digits are not dragged down by absent digits;
- ``"micro"``: the scores of the summed TP, FP and FN. With one label per image this equals
  the accuracy;
- ``"weighted"``: the mean of the per-class scores weighted by each class's count in the
  labels;
- ``None``: no average; the per-class scores as float64 tensors of shape (num_classes,),
  with 0.0 for a class that appears in neither list.
"""

from __future__ import annotations

import numpy as np
import torch

AVERAGES = (None, "macro", "micro", "weighted")


def as_label_tensor(values: object, name: str, num_classes: int) -> torch.Tensor:
    """Convert a list, numpy array or tensor of class indices to a 1-D int64 tensor.

    Raises:
        ValueError: ``values`` is not 1-D, holds non-integer numbers, or holds a class index
            outside ``0 .. num_classes - 1``.
    """
    if isinstance(values, torch.Tensor):
        tensor = values.detach().cpu()
    else:
        tensor = torch.as_tensor(np.asarray(values))
    if tensor.ndim != 1:
        raise ValueError(
            f"{name} must be 1-D (one class index per image), got shape {tuple(tensor.shape)}"
        )
    if tensor.is_floating_point():
        if not torch.equal(tensor, tensor.round()):
            raise ValueError(
                f"{name} must hold whole class indices, got {tensor.tolist()[:10]}"
            )
    elif tensor.dtype == torch.bool or tensor.is_complex():
        raise ValueError(
            f"{name} must hold integer class indices, got dtype {tensor.dtype}"
        )
    tensor = tensor.to(torch.int64)
    if tensor.numel() and (tensor.min() < 0 or tensor.max() >= num_classes):
        bad = tensor[(tensor < 0) | (tensor >= num_classes)][0].item()
        raise ValueError(
            f"{name} contains class index {bad}, outside 0..{num_classes - 1}; "
            f"pass num_classes if there are more classes"
        )
    return tensor


def confusion_counts(
    labels: object, predictions: object, num_classes: int = 10
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Count true positives, false positives and false negatives for every class.

    Args:
        labels: the true class of every image; list, numpy array or tensor of shape (N,).
        predictions: the predicted class of every image, same shape as ``labels``.
        num_classes: classes are ``0 .. num_classes - 1``.

    Returns:
        ``(tp, fp, fn)``: three int64 tensors of shape (num_classes,).

    Example: labels ``[0, 0, 1]`` and predictions ``[0, 1, 1]`` give tp ``[1, 1]``,
    fp ``[0, 1]`` and fn ``[1, 0]`` (with ``num_classes=2``).
    """
    labels = as_label_tensor(labels, "labels", num_classes)
    predictions = as_label_tensor(predictions, "predictions", num_classes)
    if labels.shape != predictions.shape:
        raise ValueError(
            f"labels and predictions must have the same length, got {labels.numel()} labels "
            f"and {predictions.numel()} predictions"
        )
    ### BEGIN SOLUTION
    ### TODO: Count TP, FP and FN of every class and return (tp, fp, fn).
    ###   labels and predictions are already 1-D int64 tensors of the same length.
    ###   Return three int64 tensors of shape (num_classes,), with 0 for a class that
    ###   appears in neither.
    ###   Hint: torch.bincount(values, minlength=num_classes) counts each class index.
    correct = labels[labels == predictions]
    tp = torch.bincount(correct, minlength=num_classes)
    fp = torch.bincount(predictions, minlength=num_classes) - tp
    fn = torch.bincount(labels, minlength=num_classes) - tp
    return tp, fp, fn
    ### END SOLUTION


def safe_divide(numerator: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
    """Divide element-wise in float64, with 0.0 wherever the denominator is 0."""
    ### BEGIN SOLUTION
    ### TODO: Divide numerator by denominator element by element, in float64.
    ###   Where the denominator is 0 the result is 0.0, with no exception and no NaN.
    ###   Both are tensors of the same shape (0-D too) and of any number dtype.
    ###   Hint: torch.where(condition, a, b) takes a where condition is True, else b.
    numerator = torch.as_tensor(numerator, dtype=torch.float64)
    denominator = torch.as_tensor(denominator, dtype=torch.float64)
    zero = denominator == 0
    return torch.where(zero, 0.0, numerator / torch.where(zero, 1.0, denominator))
    ### END SOLUTION


def precision_recall_f1(
    labels: object,
    predictions: object,
    *,
    num_classes: int = 10,
    average: str | None = "macro",
) -> tuple[float, float, float] | tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Compute precision, recall and F1, per class or averaged (see the module docstring).

    Args:
        labels: the true class of every image; list, numpy array or tensor of shape (N,).
        predictions: the predicted class of every image, same shape as ``labels``.
        num_classes: classes are ``0 .. num_classes - 1``.
        average: ``"macro"``, ``"micro"``, ``"weighted"`` or ``None`` (per class).

    Returns:
        ``(precision, recall, f1)``: three Python floats, or for ``average=None`` three
        float64 tensors of shape (num_classes,).

    Example: labels ``[0, 0, 1, 1, 2, 2]`` and predictions ``[0, 1, 1, 1, 2, 2]`` give
    per-class F1 of 2/3, 4/5 and 1, so macro F1 = 37/45. The F1 of the mean precision and
    mean recall would be 80/93, which is not the macro F1.
    """
    if average not in AVERAGES:
        raise ValueError(f"average must be one of {AVERAGES}, got {average!r}")
    tp, fp, fn = confusion_counts(labels, predictions, num_classes)
    ### BEGIN SOLUTION
    ### TODO: Compute precision, recall and F1 from tp, fp and fn (counted above).
    ###   Per class: TP/(TP+FP), TP/(TP+FN) and 2TP/(2TP+FP+FN); every 0/0 gives 0.0.
    ###   None: return the three per-class float64 tensors of shape (num_classes,).
    ###   "micro": the three scores of the summed tp, fp and fn.
    ###   "macro": the plain mean of the per-class scores over the classes with
    ###   tp + fp + fn > 0, so a class absent from labels and predictions is left out.
    ###   "weighted": the per-class scores weighted by each class's count in the labels.
    ###   The averages are three Python floats. Macro F1 is the mean of the per-class
    ###   F1, not the F1 of the mean precision and mean recall.
    ###   Hint: safe_divide also covers the averages of an empty input.
    if average == "micro":
        tp, fp, fn = tp.sum(), fp.sum(), fn.sum()
    precision = safe_divide(tp, tp + fp)
    recall = safe_divide(tp, tp + fn)
    f1 = safe_divide(2 * tp, 2 * tp + fp + fn)
    if average is None:
        return precision, recall, f1
    if average == "micro":
        return precision.item(), recall.item(), f1.item()

    if average == "macro":
        present = (tp + fp + fn) > 0
        weights = present.to(torch.float64)
    else:
        weights = (tp + fn).to(torch.float64)
    weights = safe_divide(weights, weights.sum())
    return tuple(float(weights @ score) for score in (precision, recall, f1))
    ### END SOLUTION
