"""Call student code safely and turn every problem into feedback that teaches.

Every call into the implementation goes through :func:`call`. It runs the function in a daemon
thread with a time limit, so one hung function fails only its own check and the run goes on,
on every operating system (no signals, no fork). What the function returns is checked by the
graders' own code; exceptions become :class:`Feedback` with the student's line, never the
grader's traceback.
"""

from __future__ import annotations

import math
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from grading.plain import type_name

DEFAULT_CALL_TIMEOUT = 60.0
"""Seconds one call into student code may take. The slowest reference call takes about 3 s."""


class Feedback(AssertionError):
    """A failed check, with a message written for the student.

    The message says what was expected, what came back, the likely mistake and what to do.
    """


class NotImplementedFeedback(Feedback):
    """The implementation still raises NotImplementedError: its TODO is not done yet."""


def feedback(
    expected: str, got: str, mistake: str | None = None, fix: str | None = None
) -> Feedback:
    """Build a :class:`Feedback` from its four parts."""
    lines = [f"Expected: {expected}", f"Got: {got}"]
    if mistake:
        lines.append(f"Likely mistake: {mistake}")
    if fix:
        lines.append(f"What to do: {fix}")
    return Feedback("\n".join(lines))


def check(
    condition: bool,
    expected: str,
    got: str,
    mistake: str | None = None,
    fix: str | None = None,
) -> None:
    """Raise :class:`Feedback` unless ``condition`` holds."""
    if not condition:
        raise feedback(expected, got, mistake, fix)


class Implementation:
    """The folder under test, so that tracebacks can be cut to the student's own lines."""

    folder: Path | None = None
    timed_out: bool = False
    """Whether a call into it timed out, leaving its thread running."""


def student_frame(error: BaseException) -> traceback.FrameSummary | None:
    """Return the innermost traceback frame in the student's files, if there is one."""
    frames = traceback.extract_tb(error.__traceback__)
    folder = Implementation.folder
    if folder is None:
        return frames[-1] if frames else None
    inside = [
        frame
        for frame in frames
        if Path(frame.filename).resolve().is_relative_to(folder)
    ]
    return inside[-1] if inside else None


PYTORCH_ERROR_HINTS = (
    (
        ("expected 4D input (got 3D input)", "Expected 3D (unbatched) or 4D (batched)"),
        "an image reached the model without a batch dimension: the model takes a batch "
        "of shape (N, 1, 28, 28)",
        "add the batch dimension, for example image.unsqueeze(0) for one image of shape "
        "(1, 28, 28)",
    ),
    (
        ("mat1 and mat2 shapes cannot be multiplied",),
        "a tensor of the wrong shape reached a linear layer",
        "check the shape that each layer receives, batch dimension first",
    ),
    (
        ("expected target dtype to be Long", "expected scalar type Long"),
        "class targets of the wrong type for the loss",
        "give the loss int64 class indices of shape (N,), as the data loader yields them",
    ),
    (
        ("0D or 1D target tensor expected",),
        "class targets of the wrong shape for the loss, such as (N, 1)",
        "give the loss int64 class indices of shape (N,), as the data loader yields them",
    ),
)
"""Parts of PyTorch's error messages, with the mistake that usually causes them and the
fix. :func:`call` adds them to the feedback of an error whose message contains a part."""


def pytorch_hint(error: BaseException) -> str:
    """Return "Likely mistake" and "What to do" lines for a known PyTorch error, or ""."""
    message = str(error)
    for parts, mistake, fix in PYTORCH_ERROR_HINTS:
        if any(part in message for part in parts):
            return f"\nLikely mistake: {mistake}\nWhat to do: {fix}."
    return ""


MAX_ERROR_TEXT = 300
"""Characters of an error message that feedback quotes. Longer PyTorch messages are rare;
the cut keeps a message written to carry a file's text out of the grader short."""


def describe_error(name: str, error: BaseException) -> str:
    frame = student_frame(error)
    where = ""
    if frame is not None:
        where = (
            f"\n  at {Path(frame.filename).name}, line {frame.lineno}, in {frame.name}"
        )
        if frame.line:
            where += f": {frame.line.strip()}"
    text = str(error).strip().splitlines()
    first = text[0] if text else ""
    if len(first) > MAX_ERROR_TEXT:
        first = first[:MAX_ERROR_TEXT] + " [...]"
    summary = f"{type_name(error)}: {first}" if first else type_name(error)
    return f"{name}() raised {summary}{where}"


def call(
    function: Callable[..., Any],
    *args: Any,
    timeout: float = DEFAULT_CALL_TIMEOUT,
    **kwargs: Any,
) -> Any:
    """Call a student's function and return its result, or raise :class:`Feedback`.

    The call runs in a daemon thread. If it does not finish within ``timeout`` seconds the
    check fails and the thread is left behind; it ends with the process.
    """
    name = getattr(function, "__name__", repr(function))
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = function(*args, **kwargs)
        except BaseException as error:  # Student code may raise anything.
            outcome["error"] = error

    thread = threading.Thread(target=run, name=f"student-{name}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        Implementation.timed_out = True
        raise Feedback(
            f"{name}() did not finish within {timeout:g} seconds.\n"
            f"Likely mistake: an endless loop, or far more work than the task needs.\n"
            f"What to do: run it yourself on a small input and check that every loop ends."
        )
    error = outcome.get("error")
    if isinstance(error, NotImplementedError):
        raise NotImplementedFeedback(
            f"{name}() is not implemented yet: it still raises NotImplementedError.\n"
            f"What to do: replace the raise in its TODO with your code."
        )
    if error is not None:
        hint = pytorch_hint(error)
        raise Feedback(
            describe_error(name, error)
            + (
                hint
                or "\nWhat to do: run the function yourself with this input and fix "
                "the error."
            )
        )
    return outcome.get("value")


def as_float(value: Any, what: str) -> float:
    """Return ``value`` as a plain float if it is a real number (not a tensor), else fail."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        kind = type_name(value)
        hint = (
            "Call .item() on a one-element tensor to get a Python float."
            if isinstance(value, torch.Tensor)
            else "Return a Python float."
        )
        raise feedback(
            f"{what} as a Python float", f"a value of type {kind}", None, hint
        )
    number = float(value)
    check(
        math.isfinite(number),
        f"{what} as a finite number",
        repr(number),
        "a division by zero or a diverging computation",
        "check every division",
    )
    return number


def as_tensor(value: Any, what: str, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Copy ``value`` out as a plain CPU tensor (detached), failing with feedback otherwise."""
    if not isinstance(value, torch.Tensor):
        raise feedback(
            f"{what} as a torch.Tensor", f"a value of type {type_name(value)}"
        )
    # A tensor subclass's __torch_function__ could return any object from detach() or
    # clone(), so the copy is made with that dispatch switched off.
    with torch._C.DisableTorchFunctionSubclass():
        copied = torch.Tensor.detach(value).cpu().clone()
        if type(copied) is not torch.Tensor:
            copied = torch.Tensor.as_subclass(copied, torch.Tensor)
    if type(copied) is not torch.Tensor:
        raise feedback(f"{what} as a torch.Tensor", f"a {type_name(value)}")
    if dtype is not None:
        check(
            copied.dtype == dtype, f"{what} with dtype {dtype}", f"dtype {copied.dtype}"
        )
    return copied
