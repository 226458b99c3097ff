"""The boundary between the checks and student code.

A check never calls a student's function itself. It goes through the ``student`` fixture,
an instance of :class:`Student`, which runs the student's code and returns plain data
(:mod:`grading.plain`):

* ``student.call("metrics.confusion_counts", labels, predictions, 2)`` calls one function
  with plain arguments and returns its result as plain data;
* ``student.run(observer, *args)`` runs an observer, a function of a test module that
  takes the implementation and plain arguments. It hands the student's functions the
  objects they work on (a model, an optimizer that records its steps, a data loader) and
  returns what it observed, as plain data, for the check to judge.

Observers run next to student code, so what they return is as trustworthy as student code
and the check decides everything with its own computation. Where student code runs depends
on the fixture:

* :class:`LocalStudent` (``pytest grading/``, the nbgrader notebook): in the process of the
  checks, every call in a thread with a time limit. This works on every operating system.
* :class:`RemoteStudent` (batch grading, Linux only): in a separate sandboxed process,
  reached over a pair of pipes that carry one JSON message per request and per reply.

Both seed torch and ``random`` with 0 before each observer and send the result through the
same JSON round trip, so a submission gets the same points either way.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import random
import select
import struct
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from grading import plain
from grading.harness import (
    DEFAULT_CALL_TIMEOUT,
    Feedback,
    Implementation,
    NotImplementedFeedback,
    call,
    describe_error,
)
from grading.plain import type_name
from mnist_course.implementation import load_implementation

OBSERVER_SEED = 0
"""The seed of torch and ``random`` before each observer runs."""
IMPORT_FAILURE = "Your code could not be imported, so nothing can be graded."


class GraderError(RuntimeError):
    """An observer failed in the grader's own code, or the student process broke."""


def import_implementation(folder: Path):
    """Import the implementation in ``folder``; raise :class:`Feedback` if it does not import."""
    Implementation.folder = folder
    try:
        return load_implementation(folder)
    except BaseException as error:  # Student code may raise anything, SystemExit too.
        if isinstance(error, NotImplementedError):
            raise NotImplementedFeedback(
                "Importing your code raised NotImplementedError."
            ) from None
        raise Feedback(
            f"{IMPORT_FAILURE}\n"
            + describe_error("import", error)
            + "\nWhat to do: fix that line; each file must import without errors."
        ) from None


def call_function(implementation, target: str, args: list, kwargs: dict) -> Any:
    """Call the student's ``module.function``; the observer behind :meth:`Student.call`."""
    module_name, _, function_name = target.partition(".")
    module = getattr(implementation, module_name)
    function = getattr(module, function_name, None)
    if function is None:
        raise Feedback(
            f"{function_name}() is missing from {module_name}.py.\n"
            f"What to do: keep the function with the name and arguments of the skeleton."
        )
    return call(function, *args, **kwargs)


def run_observer(implementation, module: str, name: str, args: list) -> dict:
    """Run one observer and return the reply: its value, a feedback or a grader error."""
    try:
        observer = getattr(importlib.import_module(module), name)
        torch.manual_seed(OBSERVER_SEED)
        random.seed(OBSERVER_SEED)
        return {"value": observer(implementation, *args)}
    except NotImplementedFeedback as error:
        return {"feedback": feedback_text(error), "not_implemented": True}
    except Feedback as error:
        return {"feedback": feedback_text(error), "not_implemented": False}
    except Exception as error:  # A bug in the observer, or student objects it used.
        frame = traceback.extract_tb(error.__traceback__)[-1:]
        where = f" at {Path(frame[0].filename).name}:{frame[0].lineno}" if frame else ""
        return {"error": f"{type(error).__name__}: {error}{where}"}


def feedback_text(error: Feedback) -> str:
    text = str(error)
    return text if type(text) is str else "The check failed."


def encode_reply(reply: dict) -> bytes:
    """Return a reply of :func:`run_observer` as a JSON message of plain data."""
    try:
        return plain.dumps(reply)
    except Exception as error:  # Converting student objects may raise anything.
        return plain.dumps(
            {
                "feedback": "Expected: values that the grader can read (numbers, lists, "
                f"tensors)\nGot: an object that failed to convert ({type_name(error)}: "
                f"{error})",
                "not_implemented": False,
            }
        )


def unpack(reply: Any) -> Any:
    """Return the value of a reply of :func:`run_observer`, or raise what it reports."""
    if type(reply) is not dict:
        raise GraderError("the student process sent a reply that is not a dict")
    if "value" in reply:
        return reply["value"]
    if type(reply.get("feedback")) is str:
        if reply.get("not_implemented") is True:
            raise NotImplementedFeedback(reply["feedback"])
        raise Feedback(reply["feedback"])
    raise GraderError(f"an observer failed: {reply.get('error')}")


class Student:
    """Runs student code for the checks and returns plain data."""

    def run(self, observer: Callable[..., Any], *args: Any) -> Any:
        """Run ``observer(implementation, *args)`` next to student code; return its value."""
        raise NotImplementedError

    def call(self, target: str, *args: Any, **kwargs: Any) -> Any:
        """Call the student's ``module.function`` (``"metrics.confusion_counts"``)."""
        return self.run(call_function, target, list(args), kwargs)


class LocalStudent(Student):
    """Student code in the checks' own process, as in ``pytest grading/`` and notebooks."""

    def __init__(self, implementation) -> None:
        self.implementation = implementation

    def run(self, observer: Callable[..., Any], *args: Any) -> Any:
        # The checks' own random state stays as it was, as with a separate process.
        state = random.getstate()
        with torch.random.fork_rng(devices=[]):
            reply = run_observer(
                self.implementation,
                observer.__module__,
                observer.__qualname__,
                plain.round_trip(list(args)),
            )
        random.setstate(state)
        return unpack(plain.loads(encode_reply(reply)))


FRAME_HEADER = struct.Struct(">Q")


def write_frame(descriptor: int, payload: bytes) -> None:
    data = FRAME_HEADER.pack(len(payload)) + payload
    view = memoryview(data)
    while view:
        written = os.write(descriptor, view)
        view = view[written:]


def read_exactly(descriptor: int, size: int, deadline: float | None) -> bytes:
    chunks = []
    while size:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            ready, _, _ = select.select([descriptor], [], [], remaining)
            if not ready:
                raise TimeoutError
        chunk = os.read(descriptor, min(size, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def read_frame(descriptor: int, deadline: float | None = None) -> bytes:
    """Read one message; raise EOFError, TimeoutError or PlainDataError (too large)."""
    (size,) = FRAME_HEADER.unpack(read_exactly(descriptor, FRAME_HEADER.size, deadline))
    if size > plain.MAX_MESSAGE_BYTES:
        raise plain.PlainDataError(
            f"message too large: {size} bytes, more than {plain.MAX_MESSAGE_BYTES}"
        )
    return read_exactly(descriptor, size, deadline)


REPLY_TIMEOUT = 170.0
"""Seconds one observer may take in the student process. After that the check fails and
the process is ended. It is shorter than the 180 s after which pytest-timeout ends a check."""


class StudentProcess:
    """A running student process: its request and reply pipes and a way to end it."""

    def __init__(self, requests: int, replies: int, kill: Callable[[], None]) -> None:
        self.requests = requests
        self.replies = replies
        self.kill = kill

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.kill()
        for descriptor in (self.requests, self.replies):
            with contextlib.suppress(OSError):
                os.close(descriptor)


class RemoteStudent(Student):
    """Student code in a separate process started by ``spawn``, one request at a time.

    A process that ends, sends anything but a plain reply, or takes longer than
    :data:`REPLY_TIMEOUT` fails the current check and is replaced for the next one. A
    process whose student code timed out inside a call is replaced as well, so the thread
    left running there does not slow the next checks.
    """

    def __init__(
        self, spawn: Callable[[], StudentProcess], timeout: float = REPLY_TIMEOUT
    ) -> None:
        self.spawn = spawn
        self.timeout = timeout
        self.process: StudentProcess | None = None

    def close(self) -> None:
        if self.process is not None:
            self.process.close()
            self.process = None

    def run(self, observer: Callable[..., Any], *args: Any) -> Any:
        if self.process is None:
            self.process = self.spawn()
        request = plain.dumps(
            {
                "module": observer.__module__,
                "name": observer.__qualname__,
                "args": list(args),
            }
        )
        try:
            write_frame(self.process.requests, request)
            message = read_frame(self.process.replies, time.monotonic() + self.timeout)
            reply = plain.loads(message)
        except TimeoutError:
            self.close()
            raise Feedback(
                f"Your code did not finish this check within {self.timeout:g} seconds.\n"
                "Likely mistake: an endless loop, or far more work than the task needs.\n"
                "What to do: run your functions yourself on a small input and check that "
                "every loop ends."
            ) from None
        except (EOFError, OSError):
            self.close()
            raise Feedback(
                "Your code ended the process that ran it during this check (for example "
                "with sys.exit() or os._exit(), or by crashing).\n"
                "What to do: remove exit calls from your functions and run them yourself "
                "on a small input."
            ) from None
        except plain.PlainDataError as error:
            self.close()
            raise Feedback(
                f"Your code sent data that the grader cannot read ({error}).\n"
                "What to do: return plain values: numbers, lists, tensors."
            ) from None
        if type(reply) is dict and reply.pop("restart", False) is True:
            self.close()
        return unpack(reply)


IMPORT_TIMEOUT = DEFAULT_CALL_TIMEOUT
"""Seconds the import of the implementation may take in the student process."""


def import_with_limit(folder: Path) -> tuple[Any, Feedback | None]:
    """Import the implementation in a thread; return it, or None and the feedback why not."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["implementation"] = import_implementation(folder)
        except Feedback as error:
            outcome["feedback"] = error

    thread = threading.Thread(target=run, name="student-import", daemon=True)
    thread.start()
    thread.join(IMPORT_TIMEOUT)
    if thread.is_alive():
        return None, Feedback(
            f"{IMPORT_FAILURE}\n"
            f"Importing your code did not finish within {IMPORT_TIMEOUT:g} seconds.\n"
            "Likely mistake: an endless loop or a long computation at the top level of a "
            "file.\n"
            "What to do: put all work inside functions; importing a file must be quick."
        )
    return outcome.get("implementation"), outcome.get("feedback")


REMOTE_STUDENT = pytest.StashKey[Callable[[], RemoteStudent]]()
"""Set by batch grading in the pytest config's stash: a factory of the
:class:`RemoteStudent` that runs student code in a separate process. Without it, the
``student`` fixture runs student code in the checks' own process."""


def serve(requests: int, replies: int, folder: Path) -> None:
    """Serve the requests of a :class:`RemoteStudent` until its pipe closes.

    Runs in the student process. If the submission does not import, every request gets the
    same feedback.
    """
    implementation, failure = import_with_limit(folder)
    while True:
        try:
            request = plain.loads(read_frame(requests))
        except EOFError:
            return
        if failure is not None:
            reply = {
                "feedback": feedback_text(failure),
                "not_implemented": isinstance(failure, NotImplementedFeedback),
            }
        else:
            reply = run_observer(
                implementation,
                str(request["module"]),
                str(request["name"]),
                request["args"],
            )
        if Implementation.timed_out:
            reply["restart"] = True
        write_frame(replies, encode_reply(reply))
