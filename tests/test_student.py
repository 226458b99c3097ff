"""The boundary between checks and student code: plain data, local and remote students."""

from __future__ import annotations

import math
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from grading import plain
from grading.harness import Feedback, NotImplementedFeedback
from grading.student import (
    LocalStudent,
    RemoteStudent,
    StudentProcess,
    run_observer,
)
from mnist_course.contracts import EvaluationResult, Prediction
from mnist_course.implementation import PROJECT_ROOT
from mnist_course.model import MnistNet


class AlwaysEqualInt(int):
    def __eq__(self, other):
        return True

    __hash__ = int.__hash__


class AlwaysEqual:
    def __eq__(self, other):
        return True


class LyingTensor(torch.Tensor):
    """A tensor whose detach() returns a list that equals everything."""

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if func is torch.Tensor.detach:
            return [AlwaysEqual()]
        return super().__torch_function__(func, types, args, kwargs or {})


def test_plain_values_survive_round_trip():
    value = {
        "int": 3,
        "float": 0.25,
        "text": "ü",
        "none": None,
        "flag": True,
        "list": [1, [2, 3]],
        "tuple": (1, (2.5, "x")),
        7: "int key",
    }
    assert plain.round_trip(value) == value
    assert type(plain.round_trip((1, 2))) is tuple


def test_non_finite_floats_survive_round_trip():
    nan, inf, minus_inf = plain.round_trip([math.nan, math.inf, -math.inf])
    assert math.isnan(nan)
    assert inf == math.inf
    assert minus_inf == -math.inf


@pytest.mark.parametrize(
    "tensor",
    [
        torch.arange(6, dtype=torch.float32).reshape(2, 3),
        torch.tensor([1, -2], dtype=torch.int64),
        torch.tensor([True, False]),
        torch.zeros(0, 10),
        torch.tensor(2.5, dtype=torch.float64),
        torch.arange(4, dtype=torch.uint8),
    ],
    ids=["float32", "int64", "bool", "empty", "scalar", "uint8"],
)
def test_tensor_survives_round_trip(tensor):
    copy = plain.round_trip(tensor)
    assert type(copy) is torch.Tensor
    assert copy.dtype == tensor.dtype
    assert copy.shape == tensor.shape
    assert torch.equal(copy, tensor)


def test_non_contiguous_tensor_keeps_values():
    tensor = torch.arange(12).reshape(3, 4).t()
    assert torch.equal(plain.round_trip(tensor), tensor)


def test_numpy_values_survive_round_trip():
    array = np.arange(6, dtype=np.int32).reshape(2, 3)
    copy = plain.round_trip(array)
    assert copy.dtype == np.int32
    assert np.array_equal(copy, array)
    scalar = plain.round_trip(np.float32(0.5))
    assert isinstance(scalar, np.float32)
    assert scalar == np.float32(0.5)


def test_image_and_path_survive_round_trip():
    image = Image.new("RGB", (5, 3), (10, 20, 30))
    copy = plain.round_trip(image)
    assert copy.mode == "RGB"
    assert copy.size == (5, 3)
    assert copy.tobytes() == image.tobytes()
    assert plain.round_trip(Path("/a/b.png")) == Path("/a/b.png")


def test_int_subclass_becomes_opaque():
    copy = plain.round_trip(AlwaysEqualInt(3))
    assert isinstance(copy, plain.Opaque)
    assert copy != 3
    assert plain.type_name(copy) == "AlwaysEqualInt"


def test_always_equal_object_becomes_opaque():
    copy = plain.round_trip([AlwaysEqual()])
    assert copy != [1]
    assert plain.type_name(copy[0]) == "AlwaysEqual"


def test_tensor_subclass_becomes_plain_tensor():
    tensor = torch.tensor([1, 2, 3]).as_subclass(LyingTensor)
    copy = plain.round_trip(tensor)
    assert type(copy) is torch.Tensor
    assert copy.tolist() == [1, 2, 3]


def test_named_tuple_becomes_record():
    record = plain.round_trip(Prediction(3, 0.75))
    assert record.is_a(Prediction)
    assert record.type_name == "Prediction"
    assert record.digit == 3
    digit, probability = record
    assert (digit, probability) == (3, 0.75)
    assert len(record) == 2


def test_dataclass_becomes_record():
    result = EvaluationResult(0.5, 0.25, 0.3, torch.tensor([1]), torch.tensor([2]))
    record = plain.round_trip(result)
    assert record.is_a(EvaluationResult)
    assert record.f1 == 0.3
    assert torch.equal(record.labels, torch.tensor([2]))
    assert not hasattr(record, "missing")


def test_module_becomes_record_with_state():
    model = MnistNet().eval()
    record = plain.round_trip(model)
    assert record.is_a(MnistNet)
    assert record.training is False
    for key, value in model.state_dict().items():
        assert torch.equal(record.state_dict[key], value)


@pytest.mark.parametrize(
    "message",
    [
        b'{"$unknown": 1}',
        b'{"$tensor": {"dtype": "float32", "shape": [3], "data": "AAAA"}}',
        b'{"$tensor": {"dtype": "object", "shape": [0], "data": ""}}',
        b'{"$tensor": {"dtype": "int64", "shape": [1], "data": "not base64!"}}',
        b'{"a": 1, "b": 2}',
        b"not json",
        b"[" * 100 + b"]" * 100,
        b'{"$dict": [[[1, 2], 3]]}',
    ],
    ids=["tag", "size", "dtype", "base64", "untagged-dict", "json", "depth", "key"],
)
def test_malformed_message_rejected(message):
    with pytest.raises(plain.PlainDataError):
        plain.loads(message)


def test_oversized_message_rejected(monkeypatch):
    monkeypatch.setattr(plain, "MAX_MESSAGE_BYTES", 10)
    with pytest.raises(plain.PlainDataError, match="more than 10"):
        plain.loads(b"[" + b"1," * 10 + b"1]")


def module_of(**functions) -> SimpleNamespace:
    return SimpleNamespace(metrics=SimpleNamespace(**functions))


def draw_numbers(implementation, count: int) -> list[float]:
    """Observer that draws from both random generators."""
    return [random.random() for _ in range(count)] + torch.rand(count).tolist()


def return_lying_tensor(implementation):
    return torch.tensor([1.0]).as_subclass(LyingTensor)


def test_local_call_returns_plain_data():
    student = LocalStudent(module_of(digit=lambda: AlwaysEqualInt(4)))
    assert isinstance(student.call("metrics.digit"), plain.Opaque)
    assert type(student.run(return_lying_tensor)) is torch.Tensor


def test_local_call_turns_errors_into_feedback():
    def unfinished():
        raise NotImplementedError

    def broken(value):
        return 1 / value

    student = LocalStudent(module_of(unfinished=unfinished, broken=broken))
    with pytest.raises(NotImplementedFeedback):
        student.call("metrics.unfinished")
    with pytest.raises(Feedback, match="ZeroDivisionError"):
        student.call("metrics.broken", 0)
    with pytest.raises(Feedback, match=r"missing from metrics\.py"):
        student.call("metrics.absent")


def test_observer_runs_seeded_without_touching_checks_random_state():
    student = LocalStudent(module_of())
    random.seed(123)
    torch.manual_seed(123)
    expected_python, expected_torch = random.random(), torch.rand(1)
    random.seed(123)
    torch.manual_seed(123)

    first = student.run(draw_numbers, 3)
    second = student.run(draw_numbers, 3)

    assert first == second
    assert random.random() == expected_python
    assert torch.equal(torch.rand(1), expected_torch)


def test_observer_bug_is_a_grader_error():
    reply = run_observer(None, "tests.test_student", "draw_numbers", ["three"])
    assert set(reply) == {"error"}
    assert "TypeError" in reply["error"]


IMPLEMENTATION = {
    "metrics.py": """
        import os
        import time


        def add(a, b):
            return a + b


        def sleep_forever():
            while True:
                time.sleep(0.1)


        def exit_hard():
            os._exit(3)


        def write_garbage():
            os.write(4, b"garbage that is no frame")
            return 1
        """,
    "training.py": "",
    "classify.py": "",
}
SERVE = (
    "import sys; from pathlib import Path; from grading.student import serve; "
    "serve(int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]))"
)


@pytest.fixture
def remote(tmp_path):
    """A RemoteStudent whose processes are fresh Pythons serving a small implementation."""
    for name, source in IMPLEMENTATION.items():
        (tmp_path / name).write_text(textwrap.dedent(source), encoding="utf-8")
    processes: list[subprocess.Popen] = []

    def spawn() -> StudentProcess:
        requests_read, requests_write = os.pipe()
        replies_read, replies_write = os.pipe()
        # The child's pipes get the numbers 3 and 4, as in batch grading.
        process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import os; os.dup2(int(os.environ['REQUESTS']), 3); "
                "os.dup2(int(os.environ['REPLIES']), 4); " + SERVE,
                "3",
                "4",
                str(tmp_path),
            ],
            cwd=PROJECT_ROOT,
            pass_fds=(requests_read, replies_write),
            env={
                **os.environ,
                "REQUESTS": str(requests_read),
                "REPLIES": str(replies_write),
            },
        )
        os.close(requests_read)
        os.close(replies_write)
        processes.append(process)
        return StudentProcess(requests_write, replies_read, process.kill)

    student = RemoteStudent(spawn, timeout=30)
    yield SimpleNamespace(student=student, processes=processes)
    student.close()
    for process in processes:
        process.kill()
        process.wait()


posix_only = pytest.mark.skipif(
    sys.platform == "win32", reason="remote students run in Linux batch grading"
)


@posix_only
def test_remote_call_returns_result(remote):
    assert remote.student.call("metrics.add", 2, 3) == 5
    assert remote.student.call("metrics.add", [1], [2]) == [1, 2]
    assert len(remote.processes) == 1


@posix_only
def test_remote_hang_fails_check_and_restarts(remote):
    remote.student.timeout = 3
    with pytest.raises(Feedback, match="did not finish this check within 3 seconds"):
        remote.student.call("metrics.sleep_forever")
    assert remote.processes[0].wait(timeout=10) is not None
    remote.student.timeout = 30
    assert remote.student.call("metrics.add", 1, 1) == 2
    assert len(remote.processes) == 2


@posix_only
def test_remote_exit_fails_check_and_restarts(remote):
    with pytest.raises(Feedback, match="ended the process"):
        remote.student.call("metrics.exit_hard")
    assert remote.student.call("metrics.add", 1, 2) == 3
    assert len(remote.processes) == 2


@posix_only
def test_remote_garbage_reply_fails_check(remote):
    with pytest.raises(Feedback, match="cannot read"):
        remote.student.call("metrics.write_garbage")
    assert remote.student.call("metrics.add", 2, 2) == 4
