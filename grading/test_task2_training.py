"""Task 2: the training and evaluation cycle (exercises/training.py), 45 points.

Each check runs an observer next to student code (:meth:`grading.student.Student.run`).
The observer hands the student's functions instrumented parts (an optimizer that records
the gradients and learning rate at each step, a loss that records its inputs, forward hooks
that record the mode) and returns what they recorded as plain data. The check then judges
that data with its own computation of what the cycle must do: the expected gradients,
losses, F1 and initial weights are computed here, never taken from the observer.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Subset, TensorDataset

from grading.checks import (
    F1_EPOCHS,
    F1_TEST_SUBSET,
    F1_THRESHOLD,
    F1_TRAIN_SUBSET,
    SCORE_TOLERANCE,
    attempt,
    epoch_loss_at_rate_zero,
    grading_split,
    own_metric_agrees,
    true_macro_f1,
)
from grading.harness import as_float, as_tensor, call, check, feedback
from grading.plain import Record, type_name
from grading.student import unpack
from mnist_course.contracts import TrainingConfig
from mnist_course.model import MnistNet

TASK = "Task 2: training cycle"


class RecordingSGD(torch.optim.SGD):
    """SGD that records, at every step, the learning rate and a copy of each gradient."""

    def __init__(self, params, lr: float) -> None:
        super().__init__(params, lr=lr)
        self.rates: list[float] = []
        self.gradients: list[list[torch.Tensor | None]] = []

    def step(self, closure=None):
        self.rates.append(self.param_groups[0]["lr"])
        self.gradients.append(
            [
                None if p.grad is None else p.grad.detach().clone()
                for group in self.param_groups
                for p in group["params"]
            ]
        )
        return super().step(closure)


class RecordingLoss(nn.Module):
    """Cross-entropy that records the input and target of every call."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[torch.Tensor, torch.Tensor]] = []

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        self.calls.append((logits.detach().clone(), target.detach().clone()))
        return nn.functional.cross_entropy(logits, target)


class ModeRecorder:
    """Records ``module.training`` and the grad mode at every forward pass of a model."""

    def __init__(self, model: nn.Module) -> None:
        self.calls: list[tuple[bool, bool]] = []
        self.outputs: list[torch.Tensor] = []
        model.register_forward_hook(self.hook)

    def hook(self, module, inputs, output) -> None:
        self.calls.append((module.training, torch.is_grad_enabled()))
        self.outputs.append(output.detach().clone())


class LinearNet(nn.Module):
    """A deterministic model without dropout or batch norm, so gradients can be compared."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(28 * 28, 10)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.linear(images.flatten(1))


class EncodedNet(nn.Module):
    """A model whose prediction for each image is written in the image's first pixel."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(10.0))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        classes = images[:, 0, 0, 0].round().long()
        return nn.functional.one_hot(classes, 10).float() * self.scale


def encoded_set(predictions: list[int], labels: list[int]) -> TensorDataset:
    images = torch.zeros(len(labels), 1, 28, 28)
    images[:, 0, 0, 0] = torch.tensor(predictions, dtype=torch.float32)
    return TensorDataset(images, torch.tensor(labels))


def random_batches(
    count: int, size: int, seed: int
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    return [
        (
            torch.randn(size, 1, 28, 28, generator=generator),
            torch.randint(0, 10, (size,), generator=generator),
        )
        for _ in range(count)
    ]


def true_gradient(model: nn.Module, batch) -> list[torch.Tensor]:
    model.zero_grad()
    nn.functional.cross_entropy(model(batch[0]), batch[1]).backward()
    gradients = [p.grad.detach().clone() for p in model.parameters()]
    model.zero_grad()
    return gradients


def seeded_state(seed: int) -> dict[str, torch.Tensor]:
    """Return the weights of a new MnistNet built right after torch.manual_seed(seed)."""
    torch.manual_seed(seed)
    return dict(MnistNet().state_dict())


def checked_history(history, epochs: int):
    check(
        isinstance(history, list) and len(history) == epochs,
        f"fit() to return a list with one EpochRecord per epoch ({epochs})",
        f"{type_name(history)} of length {len(history) if isinstance(history, list) else '?'}",
    )
    return history


def load_saved_state(path: Path) -> dict:
    """Observer side: load the file that fit() saved, as a plain dict of tensors."""
    check(
        path.is_file(),
        f"fit() to save the model to model_path ({path.name})",
        "no file at model_path",
        "torch.save was not called, or with another path",
        "end fit() with torch.save(model.state_dict(), model_path)",
    )
    try:
        state = torch.load(path, weights_only=True)
    except Exception as error:  # Any reason the file does not load.
        raise feedback(
            "a state_dict that torch.load(path, weights_only=True) loads",
            f"loading failed ({type_name(error)})",
            "the whole model object was pickled with torch.save(model, path)",
            "save model.state_dict(), not the model",
        ) from None
    check(
        isinstance(state, dict)
        and all(isinstance(v, torch.Tensor) for v in state.values()),
        "a state_dict: a dict of parameter names to tensors",
        type_name(state),
        None,
        "save model.state_dict()",
    )
    return dict(state)


def observe_data_loaders(implementation, fields: dict) -> dict:
    """Observer: return the labels of every batch of the loaders, built twice from one config."""
    training = implementation.training
    train_set = TensorDataset(torch.zeros(200, 1, 28, 28), torch.arange(200))
    test_set = TensorDataset(torch.zeros(160, 1, 28, 28), torch.arange(160))
    config = TrainingConfig(**fields)
    loaders = call(training.build_data_loaders, train_set, test_set, config)
    check(
        isinstance(loaders, tuple | list) and len(loaders) == 2,
        "(train_loader, test_loader)",
        type_name(loaders),
    )
    train_loader, test_loader = loaders
    train = [labels for _, labels in train_loader]
    test = [labels for _, labels in test_loader]
    again, _ = call(training.build_data_loaders, train_set, test_set, config)
    return {"train": train, "test": test, "again": [labels for _, labels in again]}


@pytest.mark.points(3)
def test_data_loaders(student):
    config = TrainingConfig(batch_size=50, test_batch_size=80, seed=3)
    batches = student.run(observe_data_loaders, dataclasses.asdict(config))
    train_order = [as_tensor(labels, "labels").tolist() for labels in batches["train"]]
    test_order = [as_tensor(labels, "labels").tolist() for labels in batches["test"]]
    train_flat = [index for batch in train_order for index in batch]
    test_flat = [index for batch in test_order for index in batch]

    check(
        [len(batch) for batch in train_order] == [50] * 4,
        "training batches of config.batch_size (4 batches of 50 from 200 images)",
        f"batch sizes {[len(b) for b in train_order]}",
        None,
        "pass batch_size=config.batch_size to the training DataLoader",
    )
    check(
        sorted(train_flat) == list(range(200)),
        "every training image exactly once per epoch",
        "some images missing or repeated",
    )
    check(
        train_flat != list(range(200)),
        "a shuffled training loader",
        "the training images in their stored order",
        "shuffle is off",
        "pass shuffle=True for the training loader",
    )
    check(
        [len(batch) for batch in test_order] == [80, 80],
        "test batches of config.test_batch_size (2 batches of 80)",
        f"batch sizes {[len(b) for b in test_order]}",
    )
    check(
        test_flat == list(range(160)),
        "the test loader in the stored order",
        "a shuffled test loader",
        None,
        "do not shuffle the test loader",
    )

    again_order = [as_tensor(labels, "labels").tolist() for labels in batches["again"]]
    check(
        again_order == train_order,
        "the same shuffled order for the same config.seed",
        "a different order",
        "the shuffling is not seeded",
        "pass generator=torch.Generator().manual_seed(config.seed) to the DataLoader",
    )


def observe_build_model(implementation, fields: dict) -> list:
    """Observer: return the two models that build_model() returns for the same config."""
    config = TrainingConfig(**fields)
    training = implementation.training
    return [call(training.build_model, config), call(training.build_model, config)]


@pytest.mark.points(2)
def test_build_model(student):
    config = TrainingConfig(seed=5)
    first, second = student.run(observe_build_model, dataclasses.asdict(config))
    check(
        isinstance(first, Record) and first.is_a(MnistNet),
        "an instance of the given MnistNet",
        type_name(first),
    )
    same = isinstance(second, Record) and all(
        torch.equal(a, b)
        for a, b in zip(
            first.state_dict.values(), second.state_dict.values(), strict=True
        )
    )
    check(
        same,
        "identical initial weights for the same config.seed",
        "different weights",
        "torch is not seeded",
        "call torch.manual_seed(config.seed) before MnistNet()",
    )


def snapshot(value):
    """Return ``value``, copied if it is a tensor, because a scheduler may change that in place."""
    return value.detach().clone() if isinstance(value, torch.Tensor) else value


def rate_after_one_step(optimizer, scheduler) -> float:
    """Step the optimizer once, then the scheduler, and return the new learning rate."""
    optimizer.zero_grad()
    optimizer.step()
    call(scheduler.step)
    return optimizer.param_groups[0]["lr"]


def observe_optimizer_scheduler_loss(
    implementation, fields: dict, logits: torch.Tensor, targets: torch.Tensor
) -> dict:
    """Observer: return the optimizer's settings, its rate after one step, and a loss.

    The learning rate and weight decay are read before the scheduler steps. The loss is
    that of ``logits`` and ``targets``. The feedback of a step that fails is returned, so
    the check raises it only after judging the steps before.
    """
    config = TrainingConfig(**fields)
    model = MnistNet()
    parts = call(implementation.training.build_optimizer_scheduler_loss, model, config)
    check(
        isinstance(parts, tuple | list) and len(parts) == 3,
        "(optimizer, scheduler, loss_fn)",
        type_name(parts),
    )
    optimizer, scheduler, loss_fn = parts
    check(
        isinstance(optimizer, torch.optim.Optimizer),
        "a torch.optim optimizer",
        type_name(optimizer),
    )
    optimized = {id(p) for group in optimizer.param_groups for p in group["params"]}
    parameters = list(model.parameters())
    group = optimizer.param_groups[0]
    return {
        "parameters": len(parameters),
        "optimized": len(optimized),
        "in_optimizer": [id(p) in optimized for p in parameters],
        "lr": snapshot(group["lr"]),
        "weight_decay": snapshot(group.get("weight_decay")),
        "lr_after_step": attempt(rate_after_one_step, optimizer, scheduler),
        "loss": attempt(call, loss_fn, logits, targets),
    }


def fixed_logits() -> torch.Tensor:
    """Return the logits of the loss check, drawn after a new MnistNet with torch seeded with 0."""
    torch.manual_seed(0)
    MnistNet()
    return torch.randn(6, 10)


@pytest.mark.points(3)
def test_optimizer_scheduler_loss(student):
    config = TrainingConfig(learning_rate=0.01, lr_decay=0.5, weight_decay=0.003)
    logits = fixed_logits()
    targets = torch.tensor([0, 3, 9, 1, 1, 4])
    facts = student.run(
        observe_optimizer_scheduler_loss, dataclasses.asdict(config), logits, targets
    )
    in_optimizer = facts["in_optimizer"]
    check(
        len(in_optimizer) == facts["parameters"] == facts["optimized"]
        and all(in_optimizer),
        "an optimizer over all of model.parameters()",
        "some parameters missing",
    )
    rate = facts["lr"]
    check(
        abs(rate - 0.01) < 1e-12,
        "the learning rate config.learning_rate (0.01)",
        f"{rate}",
    )
    weight_decay = facts["weight_decay"]
    check(
        weight_decay == config.weight_decay,
        "the weight decay config.weight_decay (0.003)",
        f"{weight_decay}",
        "the weight decay is left at the optimizer's default",
        "pass weight_decay=config.weight_decay to the optimizer",
    )

    rate = unpack(facts["lr_after_step"])
    check(
        abs(rate - 0.005) < 1e-12,
        "learning rate 0.01 * config.lr_decay (0.5) = 0.005 after one scheduler step",
        f"{rate}",
        None,
        "use a scheduler that multiplies the rate by config.lr_decay per step, e.g. "
        "StepLR(optimizer, step_size=1, gamma=config.lr_decay)",
    )

    value = as_float(float(unpack(facts["loss"])), "the loss")
    expected = float(nn.functional.cross_entropy(logits, targets))
    check(
        abs(value - expected) < 1e-5,
        f"cross-entropy of logits and class indices ({expected:.5f})",
        f"{value:.5f}",
        None,
        "use nn.CrossEntropyLoss()",
    )


def observe_three_epochs(implementation) -> list:
    """Observer: return the losses of three train_one_epoch() calls on the same 512 images."""
    mnist_train = grading_split(True, F1_TRAIN_SUBSET)
    torch.manual_seed(0)
    model = MnistNet()
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    loader = DataLoader(Subset(mnist_train, range(512)), batch_size=64, shuffle=False)
    return [
        call(
            implementation.training.train_one_epoch,
            model,
            loader,
            optimizer,
            nn.CrossEntropyLoss(),
        )
        for _ in range(3)
    ]


@pytest.mark.points(3)
def test_train_epoch_loss_goes_down(student):
    losses = [
        as_float(value, "the epoch loss") for value in student.run(observe_three_epochs)
    ]
    check(
        losses[2] < 0.8 * losses[0],
        "the epoch loss to fall over three epochs on the same 512 images",
        f"losses {[round(x, 4) for x in losses]}",
        "the optimizer never steps, or the loss is not backpropagated",
        "for each batch: zero_grad(), loss.backward(), optimizer.step()",
    )


def zero_grad_batch():
    """Return the LinearNet and the batch of the zero_grad check, for observer and check."""
    torch.manual_seed(0)
    return LinearNet(), random_batches(1, 16, seed=1)[0]


def observe_gradients_at_steps(implementation) -> list:
    """Observer: return the gradients at each optimizer step of an epoch of one batch thrice."""
    model, batch = zero_grad_batch()
    optimizer = RecordingSGD(model.parameters(), lr=0.0)
    call(
        implementation.training.train_one_epoch,
        model,
        [batch] * 3,
        optimizer,
        nn.CrossEntropyLoss(),
    )
    return optimizer.gradients


@pytest.mark.points(4)
def test_train_epoch_zero_grad(student):
    model, batch = zero_grad_batch()
    expected = true_gradient(model, batch)
    steps = student.run(observe_gradients_at_steps)

    check(
        len(steps) == 3,
        "one optimizer.step() per batch (3 batches)",
        f"{len(steps)} steps",
    )
    for step, gradients in enumerate(steps, start=1):
        weight = gradients[0]
        check(
            weight is not None and weight.abs().sum() > 0,
            f"the batch's gradient at optimizer step {step}",
            "zero or missing gradients",
            "zero_grad() called between loss.backward() and optimizer.step()",
            "order per batch: zero_grad(), forward, loss, backward(), step()",
        )
        ratio = float(
            weight.flatten()
            @ expected[0].flatten()
            / (expected[0].flatten() @ expected[0].flatten())
        )
        check(
            abs(ratio - 1) < 1e-4,
            f"at step {step} the gradient of that batch alone (the same batch thrice, lr 0)",
            f"{ratio:.3g} times that gradient",
            "gradients add up across batches: zero_grad() missing or once per epoch"
            if ratio > 1.5
            else None,
            "call optimizer.zero_grad() once at the start of every batch",
        )


def observe_training_modes(implementation) -> list:
    """Observer: return the modes of an MnistNet, left in eval mode, during an epoch."""
    model = MnistNet()
    model.eval()
    recorder = ModeRecorder(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    call(
        implementation.training.train_one_epoch,
        model,
        random_batches(2, 8, seed=2),
        optimizer,
        nn.CrossEntropyLoss(),
    )
    return recorder.calls


@pytest.mark.points(3)
def test_train_epoch_train_mode(student):
    calls = student.run(observe_training_modes)
    check(bool(calls), "forward passes of the model", "none")
    check(
        all(mode is True for mode, _ in calls),
        "the model in training mode during every training forward pass",
        "evaluation mode (dropout off, batch norm frozen)",
        "model.train() is not called, so after evaluate() the model stays in eval mode",
        "call model.train() at the start of train_one_epoch()",
    )


def epoch_loss_batches():
    """Return the LinearNet and the batches of the epoch loss check, for observer and check."""
    torch.manual_seed(0)
    return LinearNet(), random_batches(3, 10, seed=3)


def observe_epoch_loss(implementation):
    """Observer: return the loss of train_one_epoch() on three batches with learning rate 0."""
    return epoch_loss_at_rate_zero(implementation, *epoch_loss_batches())


@pytest.mark.points(2)
def test_train_epoch_returns_float(student):
    model, batches = epoch_loss_batches()
    with torch.no_grad():
        losses = [float(nn.functional.cross_entropy(model(x), y)) for x, y in batches]
    expected = sum(losses) / 3
    result = student.run(observe_epoch_loss)
    if isinstance(result, torch.Tensor):
        raise feedback(
            "the mean epoch loss as a Python float",
            "a tensor",
            "loss tensors added up (total += loss): that keeps every graph alive",
            "add loss.item() instead of loss",
        )
    value = as_float(result, "the epoch loss")
    check(
        abs(value - expected) < 1e-4,
        f"the mean loss over the epoch's images ({expected:.5f} with lr 0)",
        f"{value:.5f}",
        "the sum instead of the mean, or only the last batch's loss",
        "add loss.item() * batch size per batch, divide by the number of images",
    )


def observe_loss_inputs(implementation) -> dict:
    """Observer: return the inputs of every loss call and the model's outputs in one epoch."""
    torch.manual_seed(0)
    model = MnistNet()
    recorder = ModeRecorder(model)
    loss_fn = RecordingLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    call(
        implementation.training.train_one_epoch,
        model,
        random_batches(2, 8, seed=4),
        optimizer,
        loss_fn,
    )
    return {"calls": loss_fn.calls, "outputs": recorder.outputs}


@pytest.mark.points(3)
def test_train_epoch_loss_inputs(student):
    recorded = student.run(observe_loss_inputs)
    calls = recorded["calls"]

    check(
        len(calls) == 2,
        "one loss call per batch (2 batches)",
        f"{len(calls)} calls",
    )
    for (logits, target), output in zip(calls, recorded["outputs"], strict=False):
        check(
            target.dtype == torch.int64 and target.shape == (8,),
            "targets as int64 class indices of shape (N,)",
            f"dtype {target.dtype}, shape {tuple(target.shape)}",
            "float, one-hot or (N, 1) targets",
            "pass the labels as they come from the loader",
        )
        check(
            logits.shape == output.shape and torch.allclose(logits, output),
            "the model's raw output (logits) as the loss input",
            "a transformed output"
            + (
                " (rows sum to 1: softmax)"
                if torch.allclose(logits.sum(dim=1), torch.ones(len(logits)))
                else ""
            ),
            "softmax before CrossEntropyLoss, which applies log-softmax itself",
            "pass model(images) straight to the loss",
        )


def observe_evaluation_modes(implementation) -> list:
    """Observer: return the training flag and grad mode at each forward pass of evaluate()."""
    model = EncodedNet()
    model.train()
    recorder = ModeRecorder(model)
    dataset = encoded_set([0, 1, 2, 3] * 5, [0, 1, 2, 3] * 5)
    call(implementation.training.evaluate, model, DataLoader(dataset, batch_size=4))
    return recorder.calls


@pytest.mark.points(4)
def test_evaluate_modes(student):
    calls = student.run(observe_evaluation_modes)
    check(bool(calls), "forward passes of the model", "none")
    check(
        all(mode is False for mode, _ in calls),
        "the model in evaluation mode during evaluation",
        "training mode",
        "model.eval() is not called",
        "call model.eval() at the start of evaluate()",
    )
    check(
        all(grad is False for _, grad in calls),
        "no gradient tracking during evaluation",
        "gradients tracked",
        "no torch.no_grad(): graphs are built for nothing and memory grows",
        "wrap the loop in `with torch.no_grad():` (or torch.inference_mode())",
    )


def observe_encoded_evaluation(
    implementation, predictions: list[int], labels: list[int], batch_size: int
):
    """Observer: return evaluate() of an EncodedNet that predicts ``predictions``."""
    loader = DataLoader(encoded_set(predictions, labels), batch_size=batch_size)
    return call(implementation.training.evaluate, EncodedNet(), loader)


@pytest.mark.points(4)
def test_evaluate_whole_set(student):
    # Two batches of two: F1 over the whole set is 1/2, the mean of the batch F1s is 1/3.
    predictions = [0, 1, 0, 1]
    labels = [0, 0, 1, 1]
    expected = true_macro_f1(labels, predictions)
    for batch_size in (2, 1, 3, 4):
        result = student.run(
            observe_encoded_evaluation, predictions, labels, batch_size
        )
        f1 = as_float(getattr(result, "f1", None), "EvaluationResult.f1")
        check(
            abs(f1 - expected) <= SCORE_TOLERANCE
            or own_metric_agrees(student, labels, predictions, f1),
            f"macro F1 {expected} over the whole test set, with any batch size",
            f"{f1:.6g} with batch size {batch_size}",
            "F1 averaged over batches instead of computed once on all predictions",
            "collect all predictions and labels, then call precision_recall_f1 once",
        )

        got = as_tensor(result.predictions, "EvaluationResult.predictions").tolist()
        check(
            got == predictions,
            "the predictions of all test images in loader order",
            f"{got}",
            None,
            "argmax over dim=1 of each batch, then torch.cat",
        )
        got = as_tensor(result.labels, "EvaluationResult.labels").tolist()
        check(got == labels, "the labels of all test images in loader order", f"{got}")


def observe_scheduled_fit(implementation) -> dict:
    """Observer: return fit()'s history for 2 epochs of 3 batches and the rate at each step."""
    torch.manual_seed(0)
    model = LinearNet()
    optimizer = RecordingSGD(model.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.7)
    batches = random_batches(3, 4, seed=5)
    with tempfile.TemporaryDirectory() as folder:
        history = call(
            implementation.training.fit,
            model,
            batches,
            batches[:1],
            optimizer,
            scheduler,
            nn.CrossEntropyLoss(),
            epochs=2,
            model_path=Path(folder) / "model.pt",
        )
    return {"history": history, "rates": optimizer.rates}


@pytest.mark.points(4)
def test_fit_scheduler_per_epoch(student):
    observed = student.run(observe_scheduled_fit)
    checked_history(observed["history"], 2)
    rates = [round(rate, 6) for rate in observed["rates"]]
    check(
        rates == [1.0, 1.0, 1.0, 0.7, 0.7, 0.7],
        "learning rates [1, 1, 1, 0.7, 0.7, 0.7] at the optimizer steps of 2 epochs of 3 "
        "batches (lr 1, StepLR gamma 0.7)",
        f"{rates}",
        "scheduler.step() inside the batch loop"
        if len(set(rates)) > 2
        else "scheduler.step() before the epoch's optimizer steps"
        if rates[:1] == [0.7]
        else None,
        "call scheduler.step() once per epoch, after train_one_epoch()",
    )


SMALL_FIT_SEED = 0
"""The seed of torch before the small fit's MnistNet is built."""


def small_fit_test_loader() -> DataLoader:
    """Return the test loader of the small fit: the first 500 test images in batches of 250."""
    test_set = Subset(grading_split(False, F1_TEST_SUBSET), range(500))
    return DataLoader(test_set, batch_size=250)


def observe_small_fit(implementation) -> dict:
    """Observer: run fit() with MnistNet on 1000 images for one epoch.

    Returns the history, the model's weights at the end of fit(), and the saved file's
    state_dict, or the feedback why it does not load, for the checks to raise.
    """
    mnist_train = grading_split(True, F1_TRAIN_SUBSET)
    config = TrainingConfig(epochs=1, batch_size=100, test_batch_size=250, seed=0)
    torch.manual_seed(SMALL_FIT_SEED)
    model = MnistNet()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate)
    scheduler = torch.optim.lr_scheduler.StepLR(
        optimizer, step_size=1, gamma=config.lr_decay
    )
    train_loader = DataLoader(
        Subset(mnist_train, range(1000)),
        batch_size=100,
        shuffle=True,
        generator=torch.Generator().manual_seed(0),
    )
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.pt"
        history = call(
            implementation.training.fit,
            model,
            train_loader,
            small_fit_test_loader(),
            optimizer,
            scheduler,
            nn.CrossEntropyLoss(),
            epochs=1,
            model_path=path,
        )
        saved = attempt(load_saved_state, path)
    return {
        "history": history,
        "final": {key: value.clone() for key, value in model.state_dict().items()},
        "saved": saved,
    }


@pytest.fixture(scope="module")
def small_fit(student):
    """One run of the student's fit() with MnistNet on 1000 images, shared by two checks."""
    observed = student.run(observe_small_fit)
    checked_history(observed["history"], 1)
    return observed


@pytest.mark.points(3)
def test_fit_saves_state_dict(small_fit):
    state = unpack(small_fit["saved"])
    try:
        MnistNet().load_state_dict(state)
    except RuntimeError:
        raise feedback(
            "the state_dict of the trained MnistNet",
            "other keys or shapes",
            None,
            "save model.state_dict() of the model passed to fit()",
        ) from None


def observe_saved_model_evaluation(implementation, state: dict):
    """Observer: return evaluate() of an MnistNet with ``state`` on the small fit's test set."""
    model = MnistNet()
    model.load_state_dict(state)
    return call(implementation.training.evaluate, model, small_fit_test_loader())


@pytest.mark.points(3)
def test_fit_saved_model_matches(small_fit, student):
    state = unpack(small_fit["saved"])
    initial = seeded_state(SMALL_FIT_SEED)
    changed = any(
        not torch.equal(value, initial[key])
        for key, value in state.items()
        if value.is_floating_point()
    )
    check(
        changed,
        "the trained weights in the model file",
        "the initial weights",
        "the model was saved before training",
        "save after the last epoch",
    )

    final = small_fit["final"]
    same_as_final = all(torch.equal(value, final[key]) for key, value in state.items())
    check(
        same_as_final,
        "the model file to hold the weights of the model at the end of fit()",
        "other weights",
        "a 'best' state kept as model.state_dict() is only a reference to the changing "
        "weights, or the file was written before the last epoch",
        "save model.state_dict() after the last epoch; copy.deepcopy a state you keep",
    )

    # Other keys or shapes fail here, in the checks' process, not in the observer.
    MnistNet().load_state_dict(state)
    result = student.run(observe_saved_model_evaluation, state)
    reported = as_float(getattr(small_fit["history"][-1], "f1", None), "EpochRecord.f1")
    saved = as_float(getattr(result, "f1", None), "EvaluationResult.f1")
    check(
        abs(saved - reported) <= SCORE_TOLERANCE,
        f"the saved model to reproduce the reported F1 ({reported:.6f})",
        f"{saved:.6f} from evaluate() on the saved weights",
        "evaluate() gives different scores for the same weights: the model is not in "
        "evaluation mode, so dropout and batch norm change the results",
        "call model.eval() in evaluate()",
    )


def observe_own_training(implementation, fields: dict) -> dict:
    """Observer: run the cycle with the student's own functions, return the saved state_dict."""
    training = implementation.training
    config = TrainingConfig(**fields)
    train_set = Subset(grading_split(True, F1_TRAIN_SUBSET), range(F1_TRAIN_SUBSET))
    test_set = Subset(grading_split(False, F1_TEST_SUBSET), range(F1_TEST_SUBSET))
    train_loader, test_loader = call(
        training.build_data_loaders, train_set, test_set, config
    )
    model = call(training.build_model, config)
    optimizer, scheduler, loss_fn = call(
        training.build_optimizer_scheduler_loss, model, config
    )
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.pt"
        call(
            training.fit,
            model,
            train_loader,
            test_loader,
            optimizer,
            scheduler,
            loss_fn,
            epochs=config.epochs,
            model_path=path,
        )
        return load_saved_state(path)


@pytest.mark.points(4)
def test_f1_after_training(student, mnist_test):
    config = TrainingConfig(epochs=F1_EPOCHS, seed=0)
    state = student.run(observe_own_training, dataclasses.asdict(config))

    trained = MnistNet()
    trained.load_state_dict(state)
    trained.eval()
    with torch.no_grad():
        predictions = trained(mnist_test.images[:F1_TEST_SUBSET]).argmax(dim=1)
    f1 = true_macro_f1(
        mnist_test.targets[:F1_TEST_SUBSET].tolist(), predictions.tolist()
    )
    check(
        f1 >= F1_THRESHOLD,
        f"macro F1 of at least {F1_THRESHOLD} on {F1_TEST_SUBSET} test images after "
        f"{F1_EPOCHS} epochs on {F1_TRAIN_SUBSET} training images with your own functions "
        f"and {dataclasses.asdict(config)}",
        f"{f1:.4f}",
        "one of the steps of the cycle does not do its job (see the other checks)",
    )
