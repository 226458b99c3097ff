"""The given network for MNIST. Students use it as it is and do not edit it."""

from __future__ import annotations

import torch
from torch import nn

from mnist_course.data import IMAGE_SIZE, NUM_CLASSES


class MnistNet(nn.Module):
    """A small CNN for 28x28 grayscale digits: two conv blocks with batch norm, then dropout.

    Input: float32 tensor of shape (N, 1, 28, 28), normalised with the MNIST mean and std.
    Output: logits of shape (N, 10), one raw score per digit. There is no softmax at the end,
    because ``nn.CrossEntropyLoss`` applies log-softmax itself.

    Batch norm and dropout act differently in training and evaluation mode, so forgetting
    ``model.train()`` or ``model.eval()`` changes the results. Each block pools before its batch
    norm: that computes the same kind of features at a quarter of the cost. An epoch over
    the 60,000 training images takes about 10 s on a 2-core CPU (benchmarks/RESULTS.md).
    """

    def __init__(self, channels: tuple[int, int] = (16, 32), hidden: int = 64) -> None:
        super().__init__()
        first, second = channels
        self.features = nn.Sequential(
            nn.Conv2d(1, first, kernel_size=5, padding=2, bias=False),
            nn.MaxPool2d(2),
            nn.BatchNorm2d(first),
            nn.ReLU(),
            nn.Conv2d(first, second, kernel_size=5, padding=2, bias=False),
            nn.MaxPool2d(2),
            nn.BatchNorm2d(second),
            nn.ReLU(),
        )
        flat = second * (IMAGE_SIZE // 4) ** 2
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(0.25),
            nn.Linear(flat, hidden),
            nn.ReLU(),
            nn.Dropout(0.25),
            nn.Linear(hidden, NUM_CLASSES),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(images))
