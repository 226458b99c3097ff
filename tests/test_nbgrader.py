"""The nbgrader assignment: the generated notebook, its checks, and the real nbgrader commands.

The end-to-end tests run nbgrader's command line (generate_assignment, autograde,
generate_feedback) in a copy of nbgrader_course/, on two submissions: the source notebook
with the reference solution, and the untouched released notebook. They start no Jupyter
server; on POSIX the kernel talks to nbgrader over Unix domain sockets (see
nbgrader_course/nbgrader_config.py), so no network port is opened.
"""

from __future__ import annotations

import html
import importlib
import os
import re
import shutil
import subprocess
import sys
from collections import defaultdict
from functools import cache
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook
from traitlets.config.loader import PyFileConfigLoader

from grading.notebook import (
    CheckFailed,
    GraderError,
    graded_checks,
    run_check,
)
from instructor.make_notebook import (
    ASSIGNMENT,
    COURSE_DIR,
    NOTEBOOK_PATH,
    SHEET_PATH,
    NotebookError,
    main,
    make_notebook,
    notebook_text,
    run_with_exercises,
)
from mnist_course.implementation import PROJECT_ROOT, load_implementation

BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"
BEGIN_HIDDEN = "### BEGIN HIDDEN TESTS"
END_HIDDEN = "### END HIDDEN TESTS"
CHECK_CALL = re.compile(r'run_check\("(\w+)", globals\(\)\)')
STUDENTS = ("reference", "release")
COMMAND_TIMEOUT = 600
"""Seconds one nbgrader command may take; autograding both notebooks takes about 60 s on
a 2-core CPU."""


# The grading suite's points, read from the imported test modules


@pytest.fixture(scope="module", autouse=True)
def points_marker_registered(pytestconfig) -> None:
    """Register the ``points`` and ``hidden`` markers, as grading/conftest.py does, so
    that the grading modules import under --strict-markers."""
    pytestconfig.addinivalue_line("markers", "points(n): points that a check is worth")
    pytestconfig.addinivalue_line("markers", "hidden: an instructor-only check")


@cache
def marker_points() -> dict[str, tuple[str, float]]:
    """Return (task, points) for every graded check, from the ``points`` marks at run time."""
    points = {}
    grading = PROJECT_ROOT / "grading"
    paths = [
        *sorted(grading.glob("test_task*.py")),
        *sorted(grading.glob("hidden/test_hidden_task*.py")),
    ]
    for path in paths:
        package = ".".join(path.relative_to(PROJECT_ROOT).parent.parts)
        module = importlib.import_module(f"{package}.{path.stem}")
        for name, function in vars(module).items():
            if not name.startswith("test_") or not callable(function):
                continue
            marks = [
                m for m in getattr(function, "pytestmark", []) if m.name == "points"
            ]
            points[name] = (module.TASK, float(marks[0].args[0]))
    return points


def hidden_checks() -> set[str]:
    """Return the names of the instructor-only checks in grading/hidden/."""
    names = set()
    for path in (PROJECT_ROOT / "grading" / "hidden").glob("test_hidden_task*.py"):
        module = importlib.import_module(f"grading.hidden.{path.stem}")
        names |= {name for name in vars(module) if name.startswith("test_")}
    return names


def points_per_task(points: dict[str, float]) -> dict[str, float]:
    tasks = {name: task for name, (task, _) in marker_points().items()}
    totals: dict[str, float] = defaultdict(float)
    for name, value in points.items():
        totals[tasks[name]] += value
    return dict(totals)


# Cells of a notebook


def read_notebook(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def check_of(cell: nbformat.NotebookNode) -> str | None:
    match = CHECK_CALL.search(cell.source)
    return match.group(1) if match else None


def grade_cells(notebook: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [
        cell
        for cell in notebook.cells
        if cell.metadata.get("nbgrader", {}).get("grade", False)
    ]


def solution_cells(notebook: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [
        cell
        for cell in notebook.cells
        if cell.metadata.get("nbgrader", {}).get("solution", False)
    ]


def region_lines(source: str, begin: str, end: str) -> tuple[list[str], list[str]]:
    """Split a cell's lines into those inside ``begin``..``end`` regions and the rest."""
    inside, outside = [], []
    in_region = False
    for line in source.split("\n"):
        if line.strip() == begin:
            in_region = True
        elif line.strip() == end:
            in_region = False
        elif in_region:
            inside.append(line)
        else:
            outside.append(line)
    return inside, outside


def is_code(line: str) -> bool:
    return bool(line.strip()) and not line.strip().startswith("#")


def solution_code_lines(notebook: nbformat.NotebookNode) -> list[str]:
    """Return the code lines inside solution regions that occur nowhere outside them."""
    inside, outside = [], set()
    for cell in notebook.cells:
        cell_inside, cell_outside = region_lines(
            cell.source, BEGIN_SOLUTION, END_SOLUTION
        )
        inside.extend(line for line in cell_inside if is_code(line))
        outside.update(cell_outside)
    return [line for line in inside if line not in outside]


def hidden_lines(notebook: nbformat.NotebookNode) -> list[str]:
    lines = []
    for cell in notebook.cells:
        lines.extend(region_lines(cell.source, BEGIN_HIDDEN, END_HIDDEN)[0])
    return [line for line in lines if line.strip()]


def all_lines(notebook: nbformat.NotebookNode) -> set[str]:
    return {line for cell in notebook.cells for line in cell.source.split("\n")}


@pytest.fixture(scope="module")
def source_notebook() -> nbformat.NotebookNode:
    return read_notebook(NOTEBOOK_PATH)


# The generator


def test_committed_notebook_current():
    expected = notebook_text(make_notebook())
    committed = NOTEBOOK_PATH.read_bytes().decode("utf-8").replace("\r\n", "\n")

    assert committed == expected, (
        f"{NOTEBOOK_PATH.relative_to(PROJECT_ROOT)} differs from what the generator "
        f"makes. Run `python -m instructor.make_notebook` and commit the result."
    )


def test_generator_deterministic():
    assert notebook_text(make_notebook()) == notebook_text(make_notebook())


def test_check_flags_edited_notebook(tmp_path, capsys):
    edited = tmp_path / "edited.ipynb"
    edited.write_text(NOTEBOOK_PATH.read_text(encoding="utf-8") + " ", encoding="utf-8")

    code = main(["--check", "--output", str(edited)])

    assert code == 1
    assert "differs" in capsys.readouterr().out


def test_check_writes_nothing(tmp_path):
    missing = tmp_path / "missing.ipynb"

    code = main(["--check", "--output", str(missing)])

    assert code == 1
    assert not missing.exists()


def test_main_writes_current_notebook(tmp_path):
    output = tmp_path / "course" / "notebook.ipynb"

    code = main(["--output", str(output)])

    assert code == 0
    assert output.read_bytes() == NOTEBOOK_PATH.read_bytes()


def test_command_regenerates_with_exercises():
    completed = subprocess.run(
        [sys.executable, "-m", "instructor.generate_exercises", "--check"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )

    assert f"{ASSIGNMENT}.ipynb is up to date" in completed.stdout


def test_other_exercises_folder_skips_notebook(tmp_path, capsys):
    code = run_with_exercises(["--check", "--exercises", str(tmp_path)])

    assert code == 0
    assert capsys.readouterr().out == ""


def test_sheet_function_without_cell_rejected(tmp_path):
    sheet = SHEET_PATH.read_text(encoding="utf-8").replace(
        "### `safe_divide(", "### `unknown_function(safe_divide("
    )
    edited = tmp_path / "sheet.md"
    edited.write_text(sheet, encoding="utf-8")

    with pytest.raises(NotebookError, match="describes unknown_function"):
        make_notebook(sheet_path=edited)


def test_sheet_points_must_match_suite(tmp_path):
    sheet = SHEET_PATH.read_text(encoding="utf-8").replace(
        "## Task 1: metrics (30 points)", "## Task 1: metrics (31 points)"
    )
    edited = tmp_path / "sheet.md"
    edited.write_text(sheet, encoding="utf-8")

    with pytest.raises(NotebookError, match="the sheet gives 31 points"):
        make_notebook(sheet_path=edited)


def test_notebook_has_no_outputs(source_notebook):
    code_cells = [cell for cell in source_notebook.cells if cell.cell_type == "code"]

    assert all(not cell.outputs for cell in code_cells)
    assert all(cell.execution_count is None for cell in code_cells)


# The notebook's cells against the grading suite and solutions/


def test_one_cell_per_check(source_notebook):
    checks = [check_of(cell) for cell in grade_cells(source_notebook)]

    assert sorted(checks) == sorted(marker_points())


def test_cell_points_match_markers(source_notebook):
    expected = {name: points for name, (_, points) in marker_points().items()}
    cell_points = {
        check_of(cell): float(cell.metadata.nbgrader.points)
        for cell in grade_cells(source_notebook)
    }

    assert cell_points == expected


def test_task_points_match_suite(source_notebook):
    cell_points = {
        check_of(cell): float(cell.metadata.nbgrader.points)
        for cell in grade_cells(source_notebook)
    }
    expected = points_per_task(
        {name: points for name, (_, points) in marker_points().items()}
    )

    assert points_per_task(cell_points) == expected


def test_ast_points_match_markers():
    expected = {name: points for name, (_, points) in marker_points().items()}

    assert {check.name: check.points for check in graded_checks()} == expected


def test_hidden_check_in_every_task(source_notebook):
    hidden = {
        check_of(cell)
        for cell in grade_cells(source_notebook)
        if BEGIN_HIDDEN in cell.source
    }
    tasks = {task for task, _ in marker_points().values()}
    hidden_tasks = {marker_points()[name][0] for name in hidden}

    assert hidden == hidden_checks()
    assert hidden_tasks == tasks


def test_hidden_cell_ids_neutral(source_notebook):
    hidden_cells = [
        cell for cell in grade_cells(source_notebook) if BEGIN_HIDDEN in cell.source
    ]

    for cell in hidden_cells:
        assert check_of(cell) not in cell.metadata.nbgrader.grade_id


def test_todo_comments_before_markers(source_notebook):
    for cell in solution_cells(source_notebook):
        lines = cell.source.split("\n")
        begin = next(
            i for i, line in enumerate(lines) if line.strip() == BEGIN_SOLUTION
        )

        assert lines[begin - 1].strip().startswith("#"), cell.id
        assert any(line.strip().startswith("# TODO:") for line in lines[:begin]), (
            cell.id
        )


def test_no_todo_text_inside_regions(source_notebook):
    for cell in solution_cells(source_notebook):
        inside, _ = region_lines(cell.source, BEGIN_SOLUTION, END_SOLUTION)

        assert not any(line.strip().startswith("###") for line in inside), cell.id


def test_regions_contain_reference_code(source_notebook):
    reference = "\n".join(
        (PROJECT_ROOT / "solutions" / name).read_text(encoding="utf-8")
        for name in ("metrics.py", "training.py", "classify.py")
    )
    reference_lines = set(reference.split("\n"))
    region_code = [
        line
        for cell in solution_cells(source_notebook)
        for line in region_lines(cell.source, BEGIN_SOLUTION, END_SOLUTION)[0]
    ]

    assert region_code
    assert [line for line in region_code if line not in reference_lines] == []


def test_solution_cell_per_function(source_notebook):
    functions = {
        cell.metadata.nbgrader.grade_id.removeprefix("solution-")
        for cell in solution_cells(source_notebook)
    }
    regions = {
        name
        for module in ("metrics", "training", "classify")
        for name in re.findall(
            r"^def (\w+)\((?:(?!^def ).)*?### BEGIN SOLUTION",
            (PROJECT_ROOT / "solutions" / f"{module}.py").read_text(encoding="utf-8"),
            flags=re.MULTILINE | re.DOTALL,
        )
    }

    assert functions == regions


# run_check, called as a notebook's test cell calls it


@pytest.fixture(scope="module")
def reference_namespace() -> dict:
    """The reference's functions in one namespace, like the globals of a notebook."""
    reference = load_implementation("solutions")
    namespace = {"__name__": "__main__"}
    for module in (reference.metrics, reference.training, reference.classify):
        namespace.update(
            (name, value) for name, value in vars(module).items() if name[0] != "_"
        )
    return namespace


def test_run_check_passes_reference(reference_namespace):
    run_check("test_confusion_counts", reference_namespace)


def test_run_check_uses_mnist_fixture(reference_namespace):
    run_check("test_predict_shapes", reference_namespace)


def test_run_check_reports_feedback(reference_namespace):
    def confusion_counts(labels, predictions, num_classes=10):
        raise NotImplementedError

    namespace = {**reference_namespace, "confusion_counts": confusion_counts}

    with pytest.raises(CheckFailed, match=r"^confusion_counts\(\) is not implemented"):
        run_check("test_confusion_counts", namespace)


def test_run_check_names_missing_function(reference_namespace):
    namespace = dict(reference_namespace)
    del namespace["confusion_counts"]

    with pytest.raises(CheckFailed, match=r"confusion_counts\(\) is not defined"):
        run_check("test_confusion_counts", namespace)


def test_run_check_rejects_unknown_name(reference_namespace):
    with pytest.raises(GraderError, match="No graded check is named 'test_nothing'"):
        run_check("test_nothing", reference_namespace)


def test_failed_check_renders_message_only():
    failure = CheckFailed("Expected: 1\nGot: 2")

    assert failure._render_traceback_() == ["Expected: 1", "Got: 2"]


# The nbgrader configuration


def course_config(folder: Path):
    return PyFileConfigLoader("nbgrader_config.py", path=str(folder)).load_config()


@pytest.mark.skipif(os.name != "posix", reason="the ipc transport exists on POSIX only")
def test_kernel_uses_ipc_transport():
    assert course_config(COURSE_DIR).KernelManager.transport == "ipc"


@pytest.mark.skipif(os.name != "posix", reason="the ipc transport exists on POSIX only")
def test_ipc_prefix_absolute():
    assert Path(course_config(COURSE_DIR).KernelManager.ip).is_absolute()


def test_gradebook_inside_course():
    db_url = course_config(COURSE_DIR).CourseDirectory.db_url

    assert db_url == f"sqlite:///{COURSE_DIR.resolve() / 'gradebook.db'}"


# The real nbgrader command line


def nbgrader(command: list[str], course: Path, env: dict[str, str]) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "nbgrader", *command],
        cwd=course,
        env=env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )
    if completed.returncode != 0:
        pytest.fail(
            f"nbgrader {' '.join(command)} failed with status {completed.returncode}:\n"
            + completed.stderr[-5000:]
        )


@pytest.fixture(scope="module")
def graded_course(tmp_path_factory) -> Path:
    """A copy of the course folder after generate_assignment, autograde, generate_feedback.

    The submissions are the source notebook (student "reference") and the released
    notebook as it is (student "release").
    """
    root = tmp_path_factory.mktemp("nbgrader")
    course = root / "course"
    course.mkdir()
    shutil.copy(COURSE_DIR / "nbgrader_config.py", course)
    shutil.copytree(COURSE_DIR / "source", course / "source")
    env = {
        **os.environ,
        # nbgrader runs the `alembic` command of its environment.
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]),
        # The notebook's setup cell imports mnist_course and grading from here.
        "MNIST_COURSE_ROOT": str(PROJECT_ROOT),
        # No configuration or state of the user's Jupyter and IPython.
        "JUPYTER_CONFIG_DIR": str(root / "jupyter-config"),
        "JUPYTER_DATA_DIR": str(root / "jupyter-data"),
        "JUPYTER_RUNTIME_DIR": str(root / "jupyter-runtime"),
        "IPYTHONDIR": str(root / "ipython"),
    }

    nbgrader(["generate_assignment"], course, env)
    notebooks = {
        "reference": course / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb",
        "release": course / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb",
    }
    for student, notebook in notebooks.items():
        submitted = course / "submitted" / student / ASSIGNMENT
        submitted.mkdir(parents=True)
        shutil.copy(notebook, submitted)
    nbgrader(["autograde"], course, env)
    nbgrader(["generate_feedback"], course, env)
    return course


@pytest.fixture(scope="module")
def released(graded_course) -> nbformat.NotebookNode:
    return read_notebook(graded_course / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")


@pytest.fixture(scope="module")
def grades(graded_course, source_notebook) -> dict[str, dict[str, float]]:
    """Points per check and student, from nbgrader's gradebook."""
    config = course_config(graded_course)
    check_by_cell = {
        cell.metadata.nbgrader.grade_id: check_of(cell)
        for cell in grade_cells(source_notebook)
    }
    points: dict[str, dict[str, float]] = {}
    with Gradebook(
        config.CourseDirectory.db_url, config.CourseDirectory.course_id
    ) as gradebook:
        for student in STUDENTS:
            notebook = gradebook.find_submission_notebook(
                ASSIGNMENT, ASSIGNMENT, student
            )
            points[student] = {
                check_by_cell[grade.name]: grade.score for grade in notebook.grades
            }
    return points


def feedback_text(course: Path, student: str) -> str:
    """Return the feedback page of a student as plain text, without tags and entities."""
    page = course / "feedback" / student / ASSIGNMENT / f"{ASSIGNMENT}.html"
    return html.unescape(re.sub(r"<[^>]+>", "", page.read_text(encoding="utf-8")))


def test_release_has_no_solution_code(source_notebook, released):
    code = solution_code_lines(source_notebook)
    leaked = [line for line in code if line in all_lines(released)]

    assert code
    assert leaked == []


def test_release_has_no_hidden_tests(source_notebook, released):
    hidden = hidden_lines(source_notebook)
    leaked = [line for line in hidden if line in all_lines(released)]

    assert hidden
    assert leaked == []


def test_release_keeps_todo_comments(source_notebook, released):
    todo = [
        line
        for cell in solution_cells(source_notebook)
        for line in cell.source.split("\n")
        if line.strip().startswith("# TODO:")
    ]
    missing = [line for line in todo if line not in all_lines(released)]

    assert todo
    assert missing == []


def test_release_has_code_stubs(source_notebook, released):
    stubs = sum(
        cell.source.count("raise NotImplementedError()")
        for cell in solution_cells(released)
    )

    assert stubs == len(solution_cells(source_notebook))


def test_reference_full_points(grades):
    expected = sum(points for _, points in marker_points().values())

    assert sum(grades["reference"].values()) == expected


def test_reference_points_per_task(grades):
    expected = points_per_task(
        {name: points for name, (_, points) in marker_points().items()}
    )

    assert points_per_task(grades["reference"]) == expected


def test_release_zero_points(grades):
    assert sum(grades["release"].values()) == 0


def test_every_check_graded(grades):
    assert set(grades["release"]) == set(marker_points())


@pytest.mark.parametrize("student", STUDENTS)
def test_feedback_hides_hidden_code(graded_course, source_notebook, student):
    text = feedback_text(graded_course, student)
    visible = [line for line in hidden_lines(source_notebook) if line in text]

    assert visible == []


@pytest.mark.parametrize("student", STUDENTS)
def test_feedback_hides_hidden_names(graded_course, student):
    text = feedback_text(graded_course, student)

    assert [name for name in hidden_checks() if name in text] == []


def test_feedback_shows_messages(graded_course):
    text = feedback_text(graded_course, "release")

    assert "is not implemented yet: it still raises NotImplementedError" in text


def test_feedback_shows_no_traceback(graded_course):
    text = feedback_text(graded_course, "release")

    assert "Traceback (most recent call last)" not in text
    assert "grading/test_task" not in text
    assert "grading/hidden" not in text
