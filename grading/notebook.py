"""Run one graded check of the pytest suite against the functions defined in a notebook.

The nbgrader notebook (nbgrader_course/) has one autograder test cell per check, and each
cell calls::

    run_check("test_confusion_counts", globals())

:func:`run_check` runs that test function of ``grading/`` (a public check, or a hidden one
of ``grading/hidden/``) with pytest, in the notebook's kernel, with the notebook's functions
in place of an implementation folder. Direct parametrization overrides the fixtures
``implementation``, ``mnist_train`` and ``mnist_test``. Everything else works as in
``pytest grading/``: ``tmp_path``, the seeding, the time limits and the feedback of
``grading/conftest.py``. A failed check raises
:class:`CheckFailed`, whose notebook output is the feedback message alone, never the
grader's code or traceback.
"""

from __future__ import annotations

import ast
import contextlib
import inspect
import io
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from grading.checks import F1_TEST_SUBSET, F1_TRAIN_SUBSET, load_grading_split
from grading.harness import Feedback, Implementation
from mnist_course.implementation import MODULES, PROJECT_ROOT

GRADING_DIR = Path(__file__).resolve().parent
CHECK_MODULE_PATTERN = "test_task*.py"
HIDDEN_MODULE_PATTERN = "hidden/test_hidden_task*.py"
POINTS_MARKER = "pytest.mark.points"


class RenderedMessage(Exception):
    """An exception that IPython shows as its message alone.

    IPython prints the lines of ``_render_traceback_()`` in place of the traceback, so the
    cell output shows no line of the grader's code, nor of the cell that called it.
    """

    def _render_traceback_(self) -> list[str]:
        return str(self).splitlines()


class CheckFailed(RenderedMessage, AssertionError):
    """A failed check, with the feedback message for the student."""


class GraderError(RenderedMessage, RuntimeError):
    """pytest could not run a check: the grading suite or its data is broken."""


@dataclass(frozen=True)
class GradedCheck:
    """One test function of the grading suite and the points that it is worth."""

    task: str
    """The ``TASK`` constant of its module, such as "Task 1: metrics"."""
    module: str
    """The module's path in grading/ without ".py", such as "test_task1_metrics" or
    "hidden/test_hidden_task1_metrics"."""
    name: str
    points: float
    hidden: bool = False
    """Whether the check is an instructor-only test of grading/hidden/."""


@cache
def graded_checks() -> tuple[GradedCheck, ...]:
    """Return every check of the grading suite, in module order and source order.

    The public checks come first, then the hidden ones of grading/hidden/. The modules are
    parsed, not imported, so that listing the checks needs no torch. The points are the
    literal argument of each test's ``@pytest.mark.points(n)``.

    Raises:
        ValueError: a test function has no points marker, or two have the same name.
    """
    checks: list[GradedCheck] = []
    modules = [
        *((path, False) for path in sorted(GRADING_DIR.glob(CHECK_MODULE_PATTERN))),
        *((path, True) for path in sorted(GRADING_DIR.glob(HIDDEN_MODULE_PATTERN))),
    ]
    for path, hidden in modules:
        module = path.relative_to(GRADING_DIR).with_suffix("").as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        task = module_task(tree) or path.stem
        for node in tree.body:
            if not (
                isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
            ):
                continue
            points = points_marker(node)
            if points is None:
                raise ValueError(
                    f"grading/{module}.py: {node.name}() has no @{POINTS_MARKER}(n) "
                    f"marker with a number"
                )
            if any(check.name == node.name for check in checks):
                raise ValueError(
                    f"grading/{module}.py: a check named {node.name}() exists in "
                    f"another module too; give it a name of its own"
                )
            checks.append(GradedCheck(task, module, node.name, points, hidden))
    return tuple(checks)


def module_task(tree: ast.Module) -> str | None:
    """Return the value of a test module's ``TASK = "..."`` constant, or None."""
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and any(
                isinstance(target, ast.Name) and target.id == "TASK"
                for target in node.targets
            )
            and isinstance(node.value, ast.Constant)
        ):
            return str(node.value.value)
    return None


def points_marker(node: ast.FunctionDef) -> float | None:
    """Return the number n of a ``@pytest.mark.points(n)`` decorator, or None."""
    for decorator in node.decorator_list:
        if (
            isinstance(decorator, ast.Call)
            and ast.unparse(decorator.func) == POINTS_MARKER
            and len(decorator.args) == 1
            and isinstance(decorator.args[0], ast.Constant)
            and isinstance(decorator.args[0].value, int | float)
        ):
            return float(decorator.args[0].value)
    return None


def find_check(name: str) -> GradedCheck:
    for graded in graded_checks():
        if graded.name == name:
            return graded
    names = ", ".join(graded.name for graded in graded_checks())
    raise GraderError(f"No graded check is named {name!r}. The checks are: {names}")


class NotebookModule:
    """The notebook's global names, read like the attributes of an implementation module.

    A missing name fails the check with feedback: the cell that defines it was not run, or
    the function was renamed.
    """

    def __init__(self, namespace: Mapping[str, Any]) -> None:
        self._namespace = namespace

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._namespace[name]
        except KeyError:
            raise Feedback(
                f"{name}() is not defined in the notebook.\n"
                f"What to do: run the cell that defines {name}() and keep its name."
            ) from None


@cache
def grading_split(train: bool, count: int):
    """Return the MNIST images that the checks use, loaded once per kernel.

    Observers load their own copy (:func:`grading.checks.grading_split`), so student code
    cannot change the images that the checks judge with.
    """
    return load_grading_split(train=train, count=count)


class NotebookPlugin:
    """A pytest plugin that grades the notebook's functions and records the reports."""

    def __init__(self, namespace: Mapping[str, Any]) -> None:
        module = NotebookModule(namespace)
        self.implementation = SimpleNamespace(**dict.fromkeys(MODULES, module))
        self.reports: list[pytest.TestReport] = []

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        # Direct parametrization overrides the fixture of the same name, also where the
        # test reaches it only through another fixture (metrics -> implementation).
        values = {
            "implementation": lambda: self.implementation,
            "mnist_train": lambda: grading_split(True, F1_TRAIN_SUBSET),
            "mnist_test": lambda: grading_split(False, F1_TEST_SUBSET),
        }
        for name, value in values.items():
            if name in metafunc.fixturenames:
                metafunc.parametrize(name, [value()], ids=[name], scope="session")

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.failed or report.when == "call":
            self.reports.append(report)


def run_check(name: str, namespace: Mapping[str, Any]) -> None:
    """Run the graded check ``name`` against the functions in ``namespace``.

    Args:
        name: a test function of ``grading/test_task*.py`` or
            ``grading/hidden/test_hidden_task*.py``, such as ``"test_confusion_counts"``.
        namespace: the notebook's ``globals()``.

    Raises:
        CheckFailed: the check failed; its message is the feedback for the student.
        GraderError: pytest could not run the check; the message has pytest's output.
    """
    graded = find_check(name)
    plugin = NotebookPlugin(namespace)
    arguments = [
        f"{GRADING_DIR / graded.module}.py::{graded.name}",
        f"--rootdir={PROJECT_ROOT}",
        "-c",
        str(PROJECT_ROOT / "pyproject.toml"),
        # No report options from the configuration, no cache files in the repository,
        # and no faulthandler, whose file descriptors a Jupyter kernel does not have.
        "-o",
        "addopts=",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:faulthandler",
        "--capture=sys",
        "-q",
        *(["--hidden"] if graded.hidden else []),
    ]
    output = io.StringIO()
    folder = Implementation.folder
    Implementation.folder = code_folder(namespace)
    try:
        with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
            exit_code = pytest.main(arguments, plugins=[plugin])
    finally:
        Implementation.folder = folder

    failures = [report for report in plugin.reports if report.failed]
    if failures:
        # The message is the feedback alone, without the check's name, so the output of
        # a hidden check does not tell which check of grading/ it is.
        raise CheckFailed(str(failures[0].longrepr).strip())
    passed = [report for report in plugin.reports if report.when == "call"]
    if exit_code != pytest.ExitCode.OK or not passed:
        raise GraderError(
            f"pytest could not run the check {name} (exit code {exit_code}). "
            f"Please tell your instructor. pytest's output:\n{output.getvalue()}"
        )


def code_folder(namespace: Mapping[str, Any]) -> Path | None:
    """Return the folder of the files that the notebook's cells were compiled from.

    The harness cuts tracebacks to the frames in that folder, so an error in a student's
    function names the student's line. IPython compiles each cell to a file of its own in
    one temporary folder per kernel.
    """
    module_name = namespace.get("__name__")
    for value in namespace.values():
        if inspect.isfunction(value) and value.__module__ == module_name:
            return Path(value.__code__.co_filename).resolve().parent
    return None
