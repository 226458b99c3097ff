"""Task 2: the training and evaluation cycle.

The steps, in order (``python -m mnist_course train`` calls them like this):

1. :func:`build_data_loaders`: a shuffled loader of training batches and a loader of test
   batches;
2. :func:`build_model`: the given :class:`~mnist_course.model.MnistNet`;
3. :func:`build_optimizer_scheduler_loss`: optimizer, learning-rate scheduler and loss;
4. :func:`fit`: for every epoch, :func:`train_one_epoch` over all training batches, one
   scheduler step, then :func:`evaluate` over all test batches; at the end, save the model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from mnist_course.contracts import EpochRecord, EvaluationResult, TrainingConfig
from mnist_course.model import MnistNet

from .metrics import precision_recall_f1


def build_data_loaders(
    train_set: Dataset, test_set: Dataset, config: TrainingConfig
) -> tuple[DataLoader, DataLoader]:
    """Build the data loaders for training and for evaluation.

    Args:
        train_set, test_set: datasets whose items are ``(image, label)``, with ``image`` a
            float32 tensor of shape (1, 28, 28) and ``label`` an int.
        config: ``batch_size`` and ``test_batch_size`` set the batch sizes; ``seed`` seeds the
            shuffling.

    Returns:
        ``(train_loader, test_loader)``. The train loader shuffles, with a ``torch.Generator``
        seeded from ``config.seed`` so that two runs see the same batches. The test loader
        keeps the order of the test set.
    """
    # TODO: Build and return (train_loader, test_loader), two DataLoaders.
    #   Train: config.batch_size, shuffled, with a torch.Generator seeded with
    #   config.seed so that two runs see the same batches.
    #   Test: config.test_batch_size, not shuffled, so it keeps the test-set order.
    #   Hint: torch.Generator().manual_seed(seed) returns the seeded generator.
    raise NotImplementedError("build_data_loaders() is not implemented yet")


def build_model(config: TrainingConfig) -> MnistNet:
    """Seed torch with ``config.seed`` and return a new MnistNet on ``config.device``."""
    # TODO: Seed torch with config.seed, then return a new MnistNet on config.device.
    #   Seeding first gives the same initial weights in every run.
    #   Hint: torch.manual_seed(seed); module.to(device) returns the module.
    raise NotImplementedError("build_model() is not implemented yet")


def build_optimizer_scheduler_loss(
    model: nn.Module, config: TrainingConfig
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler, nn.Module]:
    """Build the optimizer, the learning-rate scheduler and the loss function.

    Returns:
        ``(optimizer, scheduler, loss_fn)``: an optimizer over ``model.parameters()`` with
        ``config.learning_rate`` and ``config.weight_decay``; a scheduler that multiplies the
        learning rate by ``config.lr_decay`` each time it steps (once per epoch); and a loss
        that takes logits of shape (N, 10) and int64 class indices of shape (N,).
    """
    # TODO: Build and return (optimizer, scheduler, loss_fn).
    #   Optimizer: over model.parameters(), with lr=config.learning_rate and
    #   weight_decay=config.weight_decay.
    #   Scheduler: multiplies the learning rate by config.lr_decay at each step();
    #   fit() calls scheduler.step() once per epoch.
    #   Loss: takes logits of shape (N, 10) and int64 class indices of shape (N,).
    #   Hint: torch.optim.AdamW, torch.optim.lr_scheduler.StepLR with step_size=1
    #   and nn.CrossEntropyLoss fit this contract.
    raise NotImplementedError("build_optimizer_scheduler_loss() is not implemented yet")


def train_one_epoch(
    model: nn.Module,
    loader: Iterable[tuple[torch.Tensor, torch.Tensor]],
    optimizer: torch.optim.Optimizer,
    loss_fn: nn.Module,
    device: str = "cpu",
) -> float:
    """Train ``model`` for one pass over ``loader`` and return the mean loss per image.

    For every batch: move images and labels to ``device``, compute the logits, the loss of
    logits and labels, and let the optimizer improve the model from the loss's gradients.
    The model must be in training mode, and gradients must not carry over from one batch to
    the next.

    Returns:
        The mean loss over all images of the epoch, as a Python float.
    """
    # TODO: Train model for one pass over loader and return the mean loss per image.
    #   Put the model in training mode with model.train() before the first batch.
    #   Per batch: move images and labels to device, call optimizer.zero_grad() once,
    #   compute the loss of model(images) and labels, backpropagate, optimizer.step().
    #   Hint: loss.item() is the mean over the batch; weight it by the batch size,
    #   because the last batch may be smaller. Return a Python float.
    raise NotImplementedError("train_one_epoch() is not implemented yet")


def evaluate(
    model: nn.Module,
    loader: Iterable[tuple[torch.Tensor, torch.Tensor]],
    device: str = "cpu",
) -> EvaluationResult:
    """Predict every test batch and score all predictions at once.

    The model must be in evaluation mode and no gradients are tracked. Precision, recall and
    F1 are the macro averages of :func:`precision_recall_f1` over the whole test set, not
    averages of per-batch scores.

    Returns:
        An :class:`~mnist_course.contracts.EvaluationResult` with the three scores and the
        int64 predictions and labels of all test images, in loader order.
    """
    # TODO: Predict every batch of loader and return an EvaluationResult.
    #   Call model.eval() and run the model under torch.no_grad().
    #   The predicted digit is the argmax of the logits over dim=1.
    #   Collect the predictions and labels of all batches (int64, on the CPU, in
    #   loader order), then call precision_recall_f1(..., average="macro") once
    #   on the whole test set. Never average per-batch scores.
    #   Hint: torch.cat joins the per-batch tensors.
    raise NotImplementedError("evaluate() is not implemented yet")


def fit(
    model: nn.Module,
    train_loader: Iterable[tuple[torch.Tensor, torch.Tensor]],
    test_loader: Iterable[tuple[torch.Tensor, torch.Tensor]],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    loss_fn: nn.Module,
    *,
    epochs: int,
    model_path: Path,
    device: str = "cpu",
    on_epoch_end: Callable[[EpochRecord, EvaluationResult], None] | None = None,
) -> list[EpochRecord]:
    """Train for ``epochs`` epochs, evaluating after each, then save the trained model.

    Each epoch: :func:`train_one_epoch`, one ``scheduler.step()``, then :func:`evaluate`.
    ``on_epoch_end``, if given, is called after each epoch with its record and evaluation.
    After the last epoch, the model's ``state_dict()`` (not the model object) is saved to
    ``model_path`` with ``torch.save``.

    Returns:
        One :class:`~mnist_course.contracts.EpochRecord` per epoch. ``learning_rate`` is the
        rate that the optimizer used during that epoch.
    """
    # TODO: Train and evaluate for `epochs` epochs, then save the model.
    #   Each epoch: train_one_epoch, then scheduler.step() once (after the epoch's
    #   optimizer steps), then evaluate on test_loader.
    #   Make an EpochRecord per epoch, counting epochs from 1, with the learning rate
    #   used during the epoch: read optimizer.param_groups[0]["lr"] before the step.
    #   If on_epoch_end is given, call it with the record and the evaluation.
    #   At the end save model.state_dict(), not the model, to model_path.
    #   Return the list of EpochRecords.
    #   Hint: torch.save(obj, path) writes obj to path.
    raise NotImplementedError("fit() is not implemented yet")
