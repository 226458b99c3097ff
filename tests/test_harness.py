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
