"""Types passed between the given code and the functions that students write."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch


@dataclass
class TrainingConfig:
    """Hyperparameters of one training run. Saved as JSON beside the model file."""

    epochs: int = 3
    batch_size: int = 128
    test_batch_size: int = 1000
    learning_rate: float = 0.005
    weight_decay: float = 1e-4
    lr_decay: float = 0.4
    """Factor by which the scheduler multiplies the learning rate after each epoch."""
    seed: int = 0
    device: str = "cpu"

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(dataclasses.asdict(self), indent=2) + "\n")


@dataclass
class EvaluationResult:
    """Macro-averaged scores over a whole test set, and the predictions they came from."""

    precision: float
    recall: float
    f1: float
    predictions: torch.Tensor
    """int64 tensor of shape (N,): the predicted digit for every test image, in loader order."""
    labels: torch.Tensor
    """int64 tensor of shape (N,): the true digit for every test image, in loader order."""


@dataclass
class EpochRecord:
    """Loss, scores and learning rate of one epoch of ``fit()``."""

    epoch: int
    train_loss: float
    precision: float
    recall: float
    f1: float
    learning_rate: float


class Prediction(NamedTuple):
    """The classification of one image: the digit and the model's probability for it."""

    digit: int
    probability: float
