"""The grading harness: time limits, errors in student code, and plain-data checks."""

from __future__ import annotations

import pytest
import torch

from grading.harness import (
    Feedback,
    NotImplementedFeedback,
    as_float,
    as_tensor,
    call,
)
from mnist_course.model import MnistNet


def spin_forever() -> None:
    while True:
        pass


def not_done() -> None:
    raise NotImplementedError


def divide_by_zero() -> float:
    return 1 / 0


def exit_program() -> None:
    raise SystemExit(3)


def test_call_hung_function_times_out():
    with pytest.raises(
        Feedback, match=r"spin_forever\(\) did not finish within 0.5 seconds"
    ):
        call(spin_forever, timeout=0.5)


def test_call_reports_not_implemented():
    with pytest.raises(
        NotImplementedFeedback, match=r"not_done\(\) is not implemented yet"
    ):
        call(not_done)


def test_call_names_error_and_line():
    with pytest.raises(Feedback) as raised:
        call(divide_by_zero)

    message = str(raised.value)
    assert "divide_by_zero() raised ZeroDivisionError: division by zero" in message
    assert "return 1 / 0" in message


@pytest.mark.parametrize(
    ("shape", "mistake"),
    [
        ((1, 28, 28), "without a batch dimension"),
        ((28, 28), "without a batch dimension"),
        ((2, 1, 14, 14), "the wrong shape reached a linear layer"),
    ],
)
def test_call_explains_pytorch_shape_errors(shape, mistake):
    model = MnistNet().eval()

    def predict(images: torch.Tensor) -> torch.Tensor:
        return model(images).argmax(dim=1)

    with pytest.raises(Feedback) as raised:
        call(predict, torch.zeros(shape))

    message = str(raised.value)
    assert "predict() raised" in message, message
    assert mistake in message.split("Likely mistake:")[1], message
    assert "What to do:" in message


@pytest.mark.parametrize(
    ("targets", "mistake"),
    [
        (torch.zeros(4, dtype=torch.int32), "class targets of the wrong type"),
        (torch.zeros(4), "class targets of the wrong type"),
        (torch.zeros(4, 1, dtype=torch.int64), "class targets of the wrong shape"),
    ],
)
def test_call_explains_loss_target_errors(targets, mistake):
    loss = torch.nn.CrossEntropyLoss()

    with pytest.raises(Feedback, match=mistake):
        call(loss, torch.zeros(4, 10), targets)


def test_call_contains_system_exit():
    with pytest.raises(Feedback, match=r"exit_program\(\) raised SystemExit: 3"):
        call(exit_program)


def test_call_returns_value():
    assert call(max, 2, 5) == 5


def test_as_float_rejects_tensor():
    with pytest.raises(Feedback, match=r"Call \.item\(\)"):
        as_float(torch.tensor(0.5), "the loss")


def test_as_float_rejects_nan():
    with pytest.raises(Feedback, match="finite"):
        as_float(float("nan"), "the loss")


def test_as_tensor_copies_subclass_out():
    class Sneaky(torch.Tensor):
        def __eq__(self, other):
            return True

    value = torch.arange(3).as_subclass(Sneaky)

    copied = as_tensor(value, "digits")

    assert type(copied) is torch.Tensor
    assert copied.tolist() == [0, 1, 2]


def test_as_tensor_bypasses_torch_function():
    class AlwaysEqual:
        def __eq__(self, other):
            return True

        def tolist(self):
            return self

    class Forging(torch.Tensor):
        @classmethod
        def __torch_function__(cls, func, types, args=(), kwargs=None):
            return AlwaysEqual()

    value = torch.arange(3).as_subclass(Forging)

    copied = as_tensor(value, "counts")

    assert type(copied) is torch.Tensor
    assert copied.tolist() == [0, 1, 2]
