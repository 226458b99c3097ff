"""The grading suite in grading/, run for real on changed copies of the reference.

Every case in grader_cases.py is a copy of solutions/ with text replacements. Mutants hold
one real student mistake and must lose points with feedback that names the mistake.
Variants are correct solutions written differently and must score 100. The untouched
exercises/, the reference itself and a copy that does not import are graded too.

Each grading run is a separate ``python -m pytest grading/`` process that takes about 10 s,
so one session fixture runs them all, two at a time, and the tests read its results.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from mnist_course.implementation import PROJECT_ROOT
from tests.grader_cases import MUTANTS, VARIANTS, GraderCase

SOLUTIONS = PROJECT_ROOT / "solutions"
EXERCISES = PROJECT_ROOT / "exercises"
IMPLEMENTATION_FILES = ("__init__.py", "metrics.py", "training.py", "classify.py")
TASKS = ("Task 1: metrics", "Task 2: training cycle", "Task 3: classification")
FULL_MARKS = 100.0
REFERENCE_RUNS = 5
PARALLEL_RUNS = 2
THREADS_PER_RUN = "1"
"""Torch threads per grading run. Two runs with one thread each use two CPU cores without
oversubscribing them."""
GRADING_TIMEOUT = 900
"""Seconds one grading run may take. The reference takes about 10 s on a 2-core CPU."""

# pytest exits with 0 when all tests pass and with 1 when some fail. Codes 2 to 4 mean
# that the run itself broke (interrupted, internal error, usage error).
EXIT_ALL_PASSED = 0
EXIT_TESTS_FAILED = 1

BROKEN_IMPORT = GraderCase(
    id="syntax-error-in-metrics",
    file="metrics.py",
    replacements=(
        (
            "def safe_divide(numerator: torch.Tensor, denominator: torch.Tensor) -> "
            "torch.Tensor:\n",
            "def safe_divide(numerator: torch.Tensor, denominator: torch.Tensor) -> "
            "torch.Tensor\n",
        ),
    ),
)

# The session fixture below grades every case before the first test that uses it can
# finish, so that test's timeout must cover all grading runs (5 to 8 minutes on a
# 2-core CPU).
pytestmark = pytest.mark.timeout(1800)


@dataclass(repr=False)
class GradingRun:
    """The outcome of one ``pytest grading/`` process."""

    returncode: int | None
    report: dict | None
    """The JSON written by ``--grade-json``, or None if the run wrote none."""
    output: str
    seconds: float

    def __repr__(self) -> str:
        total = None if self.report is None else self.report["total"]
        return f"GradingRun(returncode={self.returncode}, total={total})"

    def describe(self) -> str:
        return (
            f"exit code {self.returncode} after {self.seconds:.0f} s; output ends "
            f"with:\n{self.output[-3000:]}"
        )


def occurrence_counts(case: GraderCase) -> list[int]:
    """Count each ``old`` text in the file as it is when that replacement is applied."""
    text = (SOLUTIONS / case.file).read_text(encoding="utf-8")
    counts = []
    for old, new in case.replacements:
        counts.append(text.count(old))
        text = text.replace(old, new, 1)
    return counts


def make_copy(case: GraderCase, root: Path) -> Path | None:
    """Copy solutions/ to ``root / case.id`` with the replacements applied.

    Returns None without copying when some ``old`` does not occur exactly once, so that
    the case's own test reports it instead of grading the wrong code.
    """
    if any(count != 1 for count in occurrence_counts(case)):
        return None
    folder = root / case.id
    folder.mkdir()
    for name in IMPLEMENTATION_FILES:
        shutil.copy(SOLUTIONS / name, folder / name)
    path = folder / case.file
    text = path.read_text(encoding="utf-8")
    for old, new in case.replacements:
        text = text.replace(old, new, 1)
    path.write_text(text, encoding="utf-8")
    return folder


def grade(folder: Path, json_path: Path) -> GradingRun:
    command = [
        sys.executable,
        "-m",
        "pytest",
        "grading/",
        "--impl",
        str(folder),
        "--grade-json",
        str(json_path),
        "-q",
        "-p",
        "no:cacheprovider",
    ]
    environment = {
        **os.environ,
        "OMP_NUM_THREADS": THREADS_PER_RUN,
        "MKL_NUM_THREADS": THREADS_PER_RUN,
    }
    start = time.monotonic()
    try:
        completed = subprocess.run(
            command,
            cwd=PROJECT_ROOT,
            env=environment,
            capture_output=True,
            text=True,
            timeout=GRADING_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        output = error.stdout or ""
        if isinstance(output, bytes):
            output = output.decode(errors="replace")
        output = f"timed out after {GRADING_TIMEOUT} s\n{output}"
        return GradingRun(None, None, output, time.monotonic() - start)
    report = None
    if json_path.is_file():
        report = json.loads(json_path.read_text(encoding="utf-8"))
    output = completed.stdout + completed.stderr
    return GradingRun(completed.returncode, report, output, time.monotonic() - start)


@pytest.fixture(scope="session")
def grading_runs(tmp_path_factory) -> dict[str, GradingRun]:
    """Grade every case once. The keys are case ids, "skeleton" and "reference-<n>"."""
    root = tmp_path_factory.mktemp("graded")
    reports = tmp_path_factory.mktemp("reports")
    folders: dict[str, Path] = {}
    for case in [*MUTANTS, *VARIANTS, BROKEN_IMPORT]:
        folder = make_copy(case, root)
        if folder is not None:
            folders[case.id] = folder
    if EXERCISES.is_dir():
        folders["skeleton"] = Path(shutil.copytree(EXERCISES, root / "skeleton"))

    # One copy graded five times, so that edits to solutions/ during the session cannot
    # make the runs differ.
    reference = make_copy(
        GraderCase(id="reference", file="metrics.py", replacements=()), root
    )
    for run in range(1, REFERENCE_RUNS + 1):
        folders[f"reference-{run}"] = reference

    with ThreadPoolExecutor(max_workers=PARALLEL_RUNS) as pool:
        futures = {
            key: pool.submit(grade, folder, reports / f"{key}.json")
            for key, folder in folders.items()
        }
        return {key: future.result() for key, future in futures.items()}


def graded_report(case: GraderCase, grading_runs: dict[str, GradingRun]) -> dict:
    """Check that the case applies and its grading run wrote a report, and return it."""
    counts = occurrence_counts(case)
    assert counts == [1] * len(counts), (
        f"each replaced text must occur exactly once in solutions/{case.file}; "
        f"found {counts} times: update the case to the current reference"
    )
    run = grading_runs[case.id]
    assert run.report is not None, f"the grading run wrote no JSON: {run.describe()}"
    return run.report


def lost_reasons(report: dict) -> str:
    lines = []
    for name, task in report["tasks"].items():
        for entry in task["lost"]:
            lines.append(f"{name} / {entry['test']} (-{entry['points']:g}):")
            lines.append("    " + entry["reason"].replace("\n", "\n    "))
    return "\n".join(lines) or "(no lost points)"


def case_id(case: GraderCase) -> str:
    return case.id


@pytest.mark.parametrize("case", MUTANTS, ids=case_id)
def test_grader_catches_mutant(case, grading_runs):
    report = graded_report(case, grading_runs)
    run = grading_runs[case.id]
    task = report["tasks"][case.task]
    reasons = [entry["reason"] for entry in task["lost"]]

    assert task["earned"] < task["possible"], (
        f"{case.task} must lose points for this mistake, but earned "
        f"{task['earned']:g} of {task['possible']:g}\n{lost_reasons(report)}"
    )
    assert any(
        all(word.lower() in reason.lower() for word in case.words) for reason in reasons
    ), (
        f"no lost point of {case.task} names the mistake with {list(case.words)}; "
        f"the feedback was:\n{lost_reasons(report)}"
    )
    assert report["total"] < FULL_MARKS, f"total {report['total']:g} for a mistake"
    assert run.returncode == EXIT_TESTS_FAILED, (
        f"expected exit code 1 (some checks failed): {run.describe()}"
    )


@pytest.mark.parametrize("case", VARIANTS, ids=case_id)
def test_grader_accepts_variant(case, grading_runs):
    report = graded_report(case, grading_runs)
    run = grading_runs[case.id]

    assert report["total"] == FULL_MARKS, (
        f"a correct variant scored {report['total']:g}; lost points:\n"
        f"{lost_reasons(report)}"
    )
    assert run.returncode == EXIT_ALL_PASSED, run.describe()


def test_grader_skeleton_not_implemented(grading_runs):
    if not EXERCISES.is_dir():
        pytest.skip(
            "exercises/ does not exist; generate it with "
            "`python -m instructor.generate_exercises`"
        )
    run = grading_runs["skeleton"]
    assert run.report is not None, f"the grading run wrote no JSON: {run.describe()}"
    report = run.report
    reasons = [
        entry["reason"] for task in report["tasks"].values() for entry in task["lost"]
    ]

    assert run.returncode == EXIT_TESTS_FAILED, run.describe()
    assert report["total"] == 0, lost_reasons(report)
    assert sorted(report["tasks"]) == sorted(TASKS)
    for name, task in report["tasks"].items():
        assert task["not_implemented"] is True, f"{name}: {task}"
    assert reasons, "the skeleton lost no points"
    for reason in reasons:
        assert "not implemented yet" in reason, reason


def test_grader_reference_repeatable(grading_runs):
    runs = [grading_runs[f"reference-{run}"] for run in range(1, REFERENCE_RUNS + 1)]
    for run in runs:
        assert run.report is not None, (
            f"the grading run wrote no JSON: {run.describe()}"
        )
    first = runs[0].report

    assert first["total"] == FULL_MARKS, lost_reasons(first)
    assert first["possible"] == FULL_MARKS, first
    for number, run in enumerate(runs[1:], start=2):
        assert run.report == first, f"run {number} differs from run 1"
    for run in runs:
        assert run.returncode == EXIT_ALL_PASSED, run.describe()


def test_grader_broken_import(grading_runs):
    report = graded_report(BROKEN_IMPORT, grading_runs)
    run = grading_runs[BROKEN_IMPORT.id]
    reasons = [
        entry["reason"] for task in report["tasks"].values() for entry in task["lost"]
    ]

    assert run.returncode == EXIT_TESTS_FAILED, run.describe()
    assert report["total"] == 0, lost_reasons(report)
    assert reasons, "a submission that does not import lost no points"
    for reason in reasons:
        assert "could not be imported" in reason, reason
