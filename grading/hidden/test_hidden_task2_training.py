"""Hidden checks of Task 2 (exercises/training.py): uneven batches and a whole fit() run.

As in the public checks, observers run the student's functions next to student code and
return what they recorded as plain data. The checks compute the expected losses,
predictions and F1 themselves.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Subset

from grading.checks import (
    F1_TEST_SUBSET,
    F1_TRAIN_SUBSET,
    SCORE_TOLERANCE,
    attempt,
    epoch_loss_at_rate_zero,
    grading_split,
    own_metric_agrees,
    true_macro_f1,
)
from grading.harness import as_float, as_tensor, call, check, feedback
from grading.plain import type_name
from grading.student import unpack
from mnist_course.model import MnistNet

TASK = "Task 2: training cycle"
pytestmark = pytest.mark.hidden

BATCH_SIZES = (7, 7, 2)
"""A last batch smaller than the others, as a DataLoader gives when the sizes do not divide."""
LEARNING_RATE = 0.003
LR_DECAY = 0.5


class FlatLinearNet(nn.Module):
    """A deterministic linear model, so the loss with learning rate 0 is known in advance."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(28 * 28, 10)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.linear(images.flatten(1))


def uneven_batches(seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    return [
        (
            torch.randn(size, 1, 28, 28, generator=generator),
            torch.randint(0, 10, (size,), generator=generator),
        )
        for size in BATCH_SIZES
    ]


def saved_state(path: Path) -> dict:
    """Observer side: load the file that fit() saved, as a plain dict of tensors."""
    check(
        path.is_file(),
        "fit() to save the model to model_path",
        "no file at model_path",
        None,
        "end fit() with torch.save(model.state_dict(), model_path)",
    )
    try:
        state = torch.load(path, weights_only=True)
    except Exception as error:  # Any reason the file does not load.
        raise feedback(
            "a state_dict that torch.load(path, weights_only=True) loads",
            f"loading failed ({type_name(error)})",
            None,
            "save model.state_dict(), not the model",
        ) from None
    check(
        isinstance(state, dict)
        and all(isinstance(value, torch.Tensor) for value in state.values()),
        "a state_dict: a dict of parameter names to tensors",
        type_name(state),
    )
    return dict(state)


def all_close(values: list[float], expected: list[float]) -> bool:
    return len(values) == len(expected) and all(
        math.isclose(value, target, rel_tol=1e-9)
        for value, target in zip(values, expected, strict=True)
    )


def uneven_epoch():
    """Return the model and the batches of the uneven-batch check, for observer and check."""
    torch.manual_seed(1)
    return FlatLinearNet(), uneven_batches(seed=11)


def observe_uneven_epoch(implementation):
    """Observer: return the loss of train_one_epoch() on uneven batches with learning rate 0."""
    return epoch_loss_at_rate_zero(implementation, *uneven_epoch())


@pytest.mark.points(2)
def test_hidden_train_epoch_uneven_batches(student):
    model, batches = uneven_epoch()
    with torch.no_grad():
        losses = [float(nn.functional.cross_entropy(model(x), y)) for x, y in batches]
    per_image = sum(
        loss * size for loss, size in zip(losses, BATCH_SIZES, strict=True)
    ) / sum(BATCH_SIZES)
    per_batch = sum(losses) / len(losses)

    value = as_float(student.run(observe_uneven_epoch), "the epoch loss")
    check(
        abs(value - per_image) < 1e-4,
        f"the mean loss per image ({per_image:.5f}) over batches of {list(BATCH_SIZES)} "
        f"images with lr 0",
        f"{value:.5f}",
        "the mean of the batch losses, which gives the small last batch too much weight"
        if abs(value - per_batch) < 1e-4
        else None,
        "add loss.item() * batch size per batch and divide by the number of images",
    )


def observe_two_epoch_fit(implementation) -> dict:
    """Observer: run fit() with MnistNet for two epochs on 600 other training images.

    Returns the history and the saved file's state_dict, or the feedback why it does not
    load, for the check to raise after judging the history.
    """
    mnist_train = grading_split(True, F1_TRAIN_SUBSET)
    mnist_test = grading_split(False, F1_TEST_SUBSET)
    torch.manual_seed(3)
    model = MnistNet()
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=LR_DECAY)
    train_loader = DataLoader(
        Subset(mnist_train, range(1000, 1600)),
        batch_size=100,
        shuffle=True,
        generator=torch.Generator().manual_seed(3),
    )
    test_loader = DataLoader(Subset(mnist_test, range(500, 900)), batch_size=128)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "weights.pt"
        history = call(
            implementation.training.fit,
            model,
            train_loader,
            test_loader,
            optimizer,
            scheduler,
            nn.CrossEntropyLoss(),
            epochs=2,
            model_path=path,
        )
        return {"history": history, "saved": attempt(saved_state, path)}


def observe_unseen_evaluation(implementation, state: dict):
    """Observer: return evaluate() of an MnistNet in eval mode with ``state`` on 100 images."""
    model = MnistNet()
    model.load_state_dict(state)
    model.eval()
    test_set = Subset(grading_split(False, F1_TEST_SUBSET), range(900, 1000))
    return call(
        implementation.training.evaluate, model, DataLoader(test_set, batch_size=33)
    )


@pytest.mark.points(3)
def test_hidden_fit_history_and_weights(student, mnist_test):
    observed = student.run(observe_two_epoch_fit)
    history = observed["history"]

    check(
        isinstance(history, list) and len(history) == 2,
        "fit() to return a list of two EpochRecords for two epochs",
        f"{type_name(history)}",
    )
    epochs = [getattr(record, "epoch", None) for record in history]
    check(
        epochs == [1, 2],
        "EpochRecord.epoch counted from 1: [1, 2]",
        f"{epochs}",
    )
    rates = [
        as_float(getattr(record, "learning_rate", None), "EpochRecord.learning_rate")
        for record in history
    ]
    expected_rates = [LEARNING_RATE, LEARNING_RATE * LR_DECAY]
    rates_after_step = [LEARNING_RATE * LR_DECAY, LEARNING_RATE * LR_DECAY**2]
    check(
        all_close(rates, expected_rates),
        f"EpochRecord.learning_rate {expected_rates}: the rate used during each epoch "
        f"(lr {LEARNING_RATE}, StepLR gamma {LR_DECAY})",
        f"{rates}",
        "the rate read after scheduler.step()"
        if all_close(rates, rates_after_step)
        else None,
        'read optimizer.param_groups[0]["lr"] before the epoch\'s scheduler step',
    )
    for record in history:
        as_float(getattr(record, "train_loss", None), "EpochRecord.train_loss")

    state = unpack(observed["saved"])
    not_finite = [
        key
        for key, value in state.items()
        if value.is_floating_point() and not bool(torch.isfinite(value).all())
    ]
    check(
        not not_finite,
        "finite weights in the model file",
        f"NaN or infinity in {', '.join(not_finite)}",
        "the training diverged",
    )
    trained = MnistNet()
    try:
        trained.load_state_dict(state)
    except RuntimeError:
        raise feedback(
            "the state_dict of the trained MnistNet",
            "other keys or shapes",
            None,
            "save model.state_dict() of the model passed to fit()",
        ) from None

    # Images that neither training nor the evaluation inside fit() has seen.
    images = mnist_test.images[900:1000]
    labels = mnist_test.targets[900:1000].tolist()
    trained.eval()
    with torch.no_grad():
        expected = trained(images).argmax(dim=1).tolist()
    result = student.run(observe_unseen_evaluation, state)
    got = as_tensor(
        getattr(result, "predictions", None), "EvaluationResult.predictions"
    ).tolist()
    if len(got) == len(expected):
        differing = sum(a != b for a, b in zip(got, expected, strict=True))
        got_text = f"{differing} of {len(expected)} predictions differ"
    else:
        got_text = f"{len(got)} predictions for {len(expected)} images"
    check(
        got == expected,
        "evaluate() on 100 other test images to predict what the saved weights predict",
        got_text,
        "the model is not in evaluation mode during evaluate()",
        "call model.eval() in evaluate()",
    )
    f1 = as_float(getattr(result, "f1", None), "EvaluationResult.f1")
    expected_f1 = true_macro_f1(labels, expected)
    check(
        math.isclose(f1, expected_f1, abs_tol=SCORE_TOLERANCE)
        or own_metric_agrees(student, labels, expected, f1),
        f"macro F1 {expected_f1:.6f} of those predictions, batches of 33 images",
        f"{f1:.6f}",
        "F1 averaged over batches instead of computed once on all predictions",
    )
