"""The grading plugin: which implementation is graded, the points, and the report.

    pytest grading/                      grade exercises/
    pytest grading/ --impl solutions     grade the reference
    pytest grading/ --impl PATH          grade any folder laid out like exercises/
    pytest grading/ --grade-json FILE    also write the points as JSON
    pytest grading/ --hidden             also run the instructor's hidden tests

Each test module grades one task (its ``TASK`` constant) and each test carries points
(``@pytest.mark.points(n)``). A failed test prints only its feedback, never the grader's
traceback; the end of the run shows a table of points per task and one line for each lost
point.

Checks reach student code only through the ``student`` fixture (``grading/student.py``),
which returns plain data. Here it runs student code in this process; batch grading puts a
separate process behind it.

The hidden tests in ``grading/hidden/`` are collected only with ``--hidden``. They carry
their own points under the same tasks, so the points possible grow by theirs. Each of their
lost points is marked ``"hidden": true`` in the JSON and ``[hidden]`` in the table. The
student release leaves them out.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from grading.checks import F1_TEST_SUBSET, F1_TRAIN_SUBSET, load_grading_split
from grading.harness import Feedback, Implementation, NotImplementedFeedback
from grading.student import (
    REMOTE_STUDENT,
    LocalStudent,
    Student,
    import_implementation,
)
from mnist_course.errors import CourseError
from mnist_course.implementation import resolve_implementation

TASK_ORDER = ("Task 1: metrics", "Task 2: training cycle", "Task 3: classification")
HIDDEN_DIR = Path(__file__).resolve().parent / "hidden"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("grading")
    group.addoption(
        "--impl",
        default="exercises",
        help="implementation to grade: exercises (default), solutions, or a folder path",
    )
    group.addoption(
        "--grade-json", metavar="FILE", help="write the points as JSON to FILE"
    )
    group.addoption(
        "--hidden",
        action="store_true",
        help="also run the instructor's hidden tests in grading/hidden/",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "points(n): points that a graded test is worth")
    config.addinivalue_line(
        "markers", "hidden: an instructor-only test, collected only with --hidden"
    )
    config.stash[RESULTS] = []


RESULTS = pytest.StashKey[list]()


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Skip grading/hidden/ unless --hidden is given. Other paths follow pytest's rules."""
    if config.getoption("--hidden"):
        return None
    if collection_path.resolve().is_relative_to(HIDDEN_DIR):
        return True
    return None


@pytest.fixture(scope="session")
def implementation(request: pytest.FixtureRequest):
    """The graded implementation. An import error fails every test with the same feedback.

    In batch grading this process never imports student code, and the fixture is None.
    """
    if REMOTE_STUDENT in request.config.stash:
        return None
    spec = request.config.getoption("--impl")
    try:
        folder = resolve_implementation(spec)
    except CourseError as error:
        raise Feedback(str(error)) from None
    return import_implementation(folder)


@pytest.fixture(scope="session")
def student(request: pytest.FixtureRequest, implementation) -> Student:
    """Where the checks run student code: this process, or a separate one in batch grading."""
    factory = request.config.stash.get(REMOTE_STUDENT, None)
    if factory is None:
        return LocalStudent(implementation)
    remote = factory()
    request.addfinalizer(remote.close)
    return remote


@pytest.fixture(scope="session")
def mnist_train():
    """The first MNIST training images, in memory (prepared offline if needed)."""
    return load_grading_split(train=True, count=F1_TRAIN_SUBSET)


@pytest.fixture(scope="session")
def mnist_test():
    """The first MNIST test images, in memory (prepared offline if needed)."""
    return load_grading_split(train=False, count=F1_TEST_SUBSET)


@pytest.fixture(autouse=True)
def seeded() -> None:
    """Seed every random generator before each test, so a grade never changes between runs."""
    torch.manual_seed(0)
    random.seed(0)


TEST_TIMEOUT = 180
"""Seconds a whole graded test may take (pytest-timeout), a net behind harness.call's limit."""


def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> None:
    # pytest_ignore_collect does not stop a file named on the command line (pytest 9.2).
    hidden = [item for item in items if item.get_closest_marker("hidden")]
    if hidden and not config.getoption("--hidden"):
        raise pytest.UsageError(
            f"{hidden[0].nodeid} is a hidden test; add --hidden to run it"
        )
    for item in items:
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(TEST_TIMEOUT))
    # Hidden tests run after all public ones, so the table lists them after each task's
    # public checks.
    items.sort(key=lambda item: item.get_closest_marker("hidden") is not None)


def task_of(item: pytest.Item) -> str:
    return getattr(item.module, "TASK", "Other")


def points_of(item: pytest.Item) -> float:
    marker = item.get_closest_marker("points")
    return float(marker.args[0]) if marker else 0.0


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if report.when == "call" or (report.when == "setup" and report.failed):
        reason = ""
        if report.failed:
            error = call.excinfo.value if call.excinfo else None
            if isinstance(error, Feedback):
                reason = str(error)
            else:
                reason = (
                    f"The grader could not finish this check ({type(error).__name__}: "
                    f"{error}). Please tell your instructor."
                )
            report.longrepr = reason
        item.config.stash[RESULTS].append(
            {
                "task": task_of(item),
                "test": item.name,
                "points": points_of(item),
                "earned": points_of(item) if report.passed else 0.0,
                "reason": reason,
                "not_implemented": isinstance(
                    call.excinfo.value if call.excinfo else None, NotImplementedFeedback
                ),
                "hidden": item.get_closest_marker("hidden") is not None,
            }
        )
    return report


def summarize(results: list[dict]) -> dict:
    tasks: dict[str, dict] = {}
    for name in TASK_ORDER:
        tasks[name] = {"earned": 0.0, "possible": 0.0, "lost": []}
    for result in results:
        task = tasks.setdefault(
            result["task"], {"earned": 0.0, "possible": 0.0, "lost": []}
        )
        task["possible"] += result["points"]
        task["earned"] += result["earned"]
        if result["earned"] < result["points"]:
            entry = {
                "test": result["test"],
                "points": result["points"],
                "reason": result["reason"],
                "not_implemented": result["not_implemented"],
            }
            if result.get("hidden"):
                entry["hidden"] = True
            task["lost"].append(entry)
    for task in tasks.values():
        lost = task["lost"]
        task["not_implemented"] = bool(lost) and all(
            entry["not_implemented"] for entry in lost
        )
        task["not_implemented"] = task["not_implemented"] and task["earned"] == 0
    return {
        "total": sum(task["earned"] for task in tasks.values()),
        "possible": sum(task["possible"] for task in tasks.values()),
        "tasks": tasks,
    }


def short_reason(reason: str) -> str:
    """Return the line of a feedback that says why: the likely mistake, else the first line."""
    lines = reason.splitlines()
    for line in lines:
        if line.startswith("Likely mistake: "):
            return line.removeprefix("Likely mistake: ")
    return lines[0] if lines else "failed"


def pytest_terminal_summary(
    terminalreporter, exitstatus, config: pytest.Config
) -> None:
    results = config.stash.get(RESULTS, [])
    if not results:
        return
    summary = summarize(results)
    summary["implementation"] = str(Implementation.folder or config.getoption("--impl"))
    write = terminalreporter.write_line
    terminalreporter.section("points")
    write(f"Implementation: {summary['implementation']}")
    for name, task in summary["tasks"].items():
        if not task["possible"]:
            continue
        status = "  (not implemented yet)" if task["not_implemented"] else ""
        write(f"{name:<28} {task['earned']:>5g} / {task['possible']:g}{status}")
        for entry in task["lost"]:
            reason = short_reason(entry["reason"])
            test = f"[hidden] {entry['test']}" if entry.get("hidden") else entry["test"]
            write(f"    -{entry['points']:g}  {test}: {reason}")
    write(f"{'Total':<28} {summary['total']:>5g} / {summary['possible']:g}")

    json_path = config.getoption("--grade-json")
    if json_path:
        Path(json_path).write_text(
            json.dumps(summary, indent=2) + "\n", encoding="utf-8"
        )
        write(f"Points written to {json_path}")
