"""Pictures of a training run and of classified images, written as PNG files."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use(
    "Agg"
)  # Write files only; no window, so it works on machines without a display.

import matplotlib.pyplot as plt
import numpy as np
import torch

from mnist_course.contracts import EpochRecord
from mnist_course.data import NUM_CLASSES


def plot_training_curves(history: Sequence[EpochRecord], path: Path) -> Path:
    """Plot the training loss and the test precision, recall and macro F1 per epoch."""
    epochs = [record.epoch for record in history]
    figure, (loss_axes, score_axes) = plt.subplots(1, 2, figsize=(10, 4))

    loss_axes.plot(epochs, [record.train_loss for record in history], marker="o")
    loss_axes.set(title="Training loss", xlabel="epoch", ylabel="mean cross-entropy")

    for name in ("precision", "recall", "f1"):
        values = [getattr(record, name) for record in history]
        score_axes.plot(
            epochs, values, marker="o", label="macro F1" if name == "f1" else name
        )
    score_axes.set(title="Test scores (macro average)", xlabel="epoch", ylabel="score")
    score_axes.legend()
    for axes in (loss_axes, score_axes):
        axes.set_xticks(epochs)
        axes.grid(alpha=0.3)
    return _save(figure, path)


def plot_confusion_matrix(
    labels: torch.Tensor, predictions: torch.Tensor, path: Path
) -> Path:
    """Plot the 10x10 confusion matrix: rows are true digits, columns predicted digits."""
    pairs = labels.to(torch.int64) * NUM_CLASSES + predictions.to(torch.int64)
    matrix = torch.bincount(pairs, minlength=NUM_CLASSES**2).reshape(
        NUM_CLASSES, NUM_CLASSES
    )
    figure, axes = plt.subplots(figsize=(6.5, 6))
    matrix = matrix.numpy()
    shade = np.log1p(matrix)
    image = axes.imshow(shade, cmap="Blues")
    threshold = shade.max() / 2
    for true_digit in range(NUM_CLASSES):
        for predicted_digit in range(NUM_CLASSES):
            count = int(matrix[true_digit, predicted_digit])
            color = (
                "white" if shade[true_digit, predicted_digit] > threshold else "black"
            )
            axes.text(
                predicted_digit,
                true_digit,
                str(count),
                ha="center",
                va="center",
                fontsize=8,
                color=color,
            )
    axes.set(
        title="Confusion matrix (test set)",
        xlabel="predicted digit",
        ylabel="true digit",
        xticks=range(NUM_CLASSES),
        yticks=range(NUM_CLASSES),
    )
    figure.colorbar(image, ax=axes, label="log(1 + count)", shrink=0.8)
    return _save(figure, path)


def plot_image_grid(
    images: torch.Tensor,
    predicted: Sequence[int],
    path: Path,
    *,
    true_labels: Sequence[int] | None = None,
    probabilities: Sequence[float] | None = None,
    titles: Sequence[str] | None = None,
) -> Path:
    """Draw images of shape (N, 1, 28, 28) or (N, 28, 28) with their predictions.

    A prediction that differs from its true label is drawn in red.
    """
    count = len(images)
    columns = min(count, 8)
    rows = (count + columns - 1) // columns
    figure, axes_grid = plt.subplots(
        rows, columns, figsize=(1.6 * columns, 1.9 * rows), squeeze=False
    )
    for index, axes in enumerate(axes_grid.flat):
        axes.axis("off")
        if index >= count:
            continue
        pixels = images[index].reshape(images.shape[-2], images.shape[-1])
        axes.imshow(pixels.numpy(), cmap="gray")
        text = f"pred {predicted[index]}"
        if probabilities is not None:
            text += f" ({probabilities[index]:.2f})"
        wrong = true_labels is not None and true_labels[index] != predicted[index]
        if true_labels is not None:
            text += f"\ntrue {true_labels[index]}"
        if titles is not None:
            text = f"{titles[index]}\n{text}"
        axes.set_title(text, fontsize=8, color="red" if wrong else "black")
    return _save(figure, path)


def _save(figure: plt.Figure, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
