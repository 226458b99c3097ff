"""Generate the nbgrader source notebook of the exercise from the sources of exercises/.

    python -m instructor.make_notebook           write the notebook
    python -m instructor.make_notebook --check   write nothing; exit 1 if the notebook differs

The notebook, ``nbgrader_course/source/mnist_pytorch/mnist_pytorch.ipynb``, is made from:

- ``solutions/*.py``: each function with a solution region becomes a solution cell that
  contains the whole function. nbgrader replaces the region with ``# YOUR CODE HERE`` and
  ``raise NotImplementedError()``, so the region's TODO text moves above
  ``### BEGIN SOLUTION`` as comments (``### TODO: x`` becomes ``# TODO: x``, as in
  exercises/). The other code of a module (imports, constants, given functions) becomes
  read-only cells. Relative imports are left out: the notebook defines those names itself.
- ``docs/exercise-sheet.md``: its introduction and its "Task" sections become markdown
  cells, each subsection on a function right before that function's cell.
- ``grading/test_task*.py`` and ``grading/hidden/test_hidden_task*.py``: each test
  function becomes an autograder test cell worth the points of its
  ``@pytest.mark.points(n)`` marker. The cell calls the check through
  :func:`grading.notebook.run_check`. The instructor-only checks of ``grading/hidden/``
  sit between nbgrader's hidden-test markers.

The output is deterministic: fixed cell ids, sorted keys, no outputs or execution counts,
UTF-8 with "\\n" line endings.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from grading.notebook import GradedCheck, graded_checks
from instructor.generate_exercises import (
    EXERCISES_DIR,
    SOLUTIONS_DIR,
    MarkerError,
    Region,
    display_path,
    find_regions,
)
from instructor.generate_exercises import build_parser as build_exercise_parser

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHEET_PATH = PROJECT_ROOT / "docs" / "exercise-sheet.md"
COURSE_DIR = PROJECT_ROOT / "nbgrader_course"
ASSIGNMENT = "mnist_pytorch"
NOTEBOOK_PATH = COURSE_DIR / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"

BEGIN_HIDDEN = "### BEGIN HIDDEN TESTS"
END_HIDDEN = "### END HIDDEN TESTS"
NBGRADER_SCHEMA_VERSION = 3
MAX_CELL_ID_LENGTH = 64
"""nbformat 4.5 allows cell ids of 1 to 64 letters, digits, "-" and "_"."""

SETUP_SOURCE = '''\
from __future__ import annotations

import os
import sys
from pathlib import Path


def find_repository_root() -> Path:
    """Return the folder that contains mnist_course/, grading/ and data/.

    That is $MNIST_COURSE_ROOT if it is set, else the nearest folder at or above the
    working directory (the notebook's folder) that contains mnist_course/ and grading/.
    """
    configured = os.environ.get("MNIST_COURSE_ROOT")
    candidates = [Path(configured)] if configured else [Path.cwd(), *Path.cwd().parents]
    for folder in candidates:
        if (folder / "mnist_course").is_dir() and (folder / "grading").is_dir():
            return folder.resolve()
    raise FileNotFoundError(
        f"No folder with mnist_course/ and grading/ found at {candidates[0]}"
        + ("" if configured else " or above it")
        + ". Set the environment variable MNIST_COURSE_ROOT to the repository folder."
    )


REPOSITORY_ROOT = find_repository_root()
if str(REPOSITORY_ROOT) not in sys.path:
    sys.path.insert(0, str(REPOSITORY_ROOT))

from grading.notebook import run_check  # noqa: E402'''

WORKING_TEXT = """\
## Working in this notebook

Run the cells from top to bottom, and after a change restart the kernel and run all cells
again. The first code cell finds the repository folder, which contains the given packages
`mnist_course` and `grading` and the MNIST data in `data/`: it is the folder named by the
environment variable `MNIST_COURSE_ROOT`, else the nearest folder at or above the
notebook's folder that contains `mnist_course/` and `grading/`.

Write your code in each cell that contains `# YOUR CODE HERE`, in place of
`raise NotImplementedError()`. The `# TODO` comments above it say what to write and give a
hint. Keep the function names and signatures, and keep the given code before a TODO. The
cells that you cannot edit contain the given code and the checks.

Each check cell runs one check of the grading suite (`grading/`) against the functions in
this notebook and is worth the points in its comment. A failed check prints what was
expected, what came back, the likely mistake and what to do. Hidden checks run only when
the notebook is graded, and add their points to their task."""

CHECKS_TEXT = """\
### Checks of {task}

Each cell below runs one check against your functions above. A cell that runs without an
error earns its points."""


class NotebookError(ValueError):
    """The sources do not fit together: the sheet, the solutions or the grading suite."""


@dataclass
class SheetTask:
    """One "## Task N" section of the exercise sheet."""

    number: int
    title: str
    points: float | None
    module: str
    intro: str
    functions: dict[str, str] = field(default_factory=dict)
    """Subsection text by the name of the function that it describes."""


@dataclass
class Sheet:
    title: str
    intro: str
    tasks: dict[int, SheetTask]


@dataclass
class ModuleCell:
    """A code cell made from a solution module: given code, or one solution function."""

    source: str
    function: str | None = None
    """The function of a solution cell; None for read-only given code."""


TASK_HEADING = re.compile(r"^## (Task (\d+): .*?)(?: \((\d+(?:\.\d+)?) points\))?$")
FILE_SENTENCE = re.compile(r"File: `exercises/(\w+)\.py`\.[ \t]*")
FUNCTION_HEADING = re.compile(r"^### `(\w+)\(")
CHECK_MODULE = re.compile(r"^(?:test|hidden/test_hidden)_task(\d+)_(\w+)$")


def split_sections(lines: list[str], prefix: str) -> list[list[str]]:
    """Split ``lines`` before every line that starts with ``prefix``."""
    sections: list[list[str]] = [[]]
    for line in lines:
        if line.startswith(prefix):
            sections.append([])
        sections[-1].append(line)
    return sections


def parse_sheet(text: str) -> Sheet:
    """Read the title, the introduction and the task sections of the exercise sheet.

    Raises:
        NotebookError: the sheet has no "# " title, or a task section names no file
            ``exercises/<module>.py``.
    """
    lines = text.replace("\r\n", "\n").split("\n")
    head, *sections = split_sections(lines, "## ")
    titles = [line for line in head if line.startswith("# ")]
    if not titles:
        raise NotebookError("the exercise sheet has no '# ' title line")
    intro = "\n".join(line for line in head if not line.startswith("# ")).strip()

    tasks = {}
    for section in sections:
        match = TASK_HEADING.match(section[0])
        if not match:
            continue
        body, *subsections = split_sections(section[1:], "### ")
        body_text = "\n".join(body)
        file_match = FILE_SENTENCE.search(body_text)
        if not file_match:
            raise NotebookError(
                f"the sheet's section {section[0]!r} names no file `exercises/<module>.py`"
            )
        task = SheetTask(
            number=int(match.group(2)),
            title=match.group(1),
            points=float(match.group(3)) if match.group(3) else None,
            module=file_match.group(1),
            # The notebook has no files to edit, so the "File: ..." sentence goes.
            intro=FILE_SENTENCE.sub("", body_text, count=1).strip(),
        )
        for subsection in subsections:
            text_block = "\n".join(subsection).strip()
            function = FUNCTION_HEADING.match(subsection[0])
            if function:
                task.functions[function.group(1)] = text_block
            else:
                task.intro += "\n\n" + text_block
        tasks[task.number] = task
    return Sheet(titles[0].removeprefix("# ").strip(), intro, tasks)


def is_left_out(node: ast.stmt, index: int) -> bool:
    """Tell whether a module's top-level statement has no place in the notebook.

    Those are the module docstring, ``from __future__`` imports (the setup cell has one)
    and relative imports of the other modules, whose names earlier cells define.
    """
    if (
        index == 0
        and isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    ):
        return True
    return isinstance(node, ast.ImportFrom) and (
        node.level > 0 or node.module == "__future__"
    )


def leading_blank_count(lines: list[str]) -> int:
    count = 0
    while count < len(lines) and not lines[count].strip():
        count += 1
    return count


def strip_blank_lines(lines: list[str]) -> list[str]:
    start = leading_blank_count(lines)
    end = len(lines)
    while end > start and not lines[end - 1].strip():
        end -= 1
    return lines[start:end]


def solution_cell_lines(
    lines: list[str], regions: list[Region], first: int, last: int
) -> list[str]:
    """Return lines ``first`` to ``last`` (1-based) with each region's TODO text moved.

    The TODO lines go above the BEGIN marker as comments, indented like the marker, so
    they stay in the released notebook when nbgrader clears the region.
    """
    todo_lines = {}
    begins = {}
    for region in regions:
        begins[region.begin] = region
        for offset in range(1, len(region.todo) + 1):
            todo_lines[region.begin + offset] = region
    output = []
    for number in range(first, last + 1):
        if number in todo_lines:
            continue
        region = begins.get(number)
        if region is not None:
            output.extend(region.indent + "#" + text[3:] for text in region.todo)
        output.append(lines[number - 1])
    return output


def end_of_statement(lines: list[str], node: ast.stmt) -> int:
    """Return the last line (1-based) of a top-level statement, with its own comments.

    ast ends a function at its last statement, but indented comments after it, such as
    ``### END SOLUTION``, belong to the function too.
    """
    last = node.end_lineno
    following = last
    while following < len(lines):
        line = lines[following]
        if line.strip() and not (line[:1].isspace() and line.lstrip().startswith("#")):
            break
        following += 1
        if line.strip():
            last = following
    return last


def module_cells(source: str, filename: str) -> list[ModuleCell]:
    """Split a solution module into read-only code cells and one cell per solution function.

    Each top-level statement takes the lines from the end of the statement before it, so
    comments above a statement stay with it. Consecutive given statements share a cell.

    Raises:
        MarkerError: the markers or TODO text are wrong, or a region is outside a
            top-level function.
    """
    lines = source.replace("\r\n", "\n").split("\n")
    try:
        tree = ast.parse(source, filename=filename)
    except SyntaxError as error:
        raise MarkerError(
            filename, error.lineno or 1, f"invalid Python: {error.msg}"
        ) from None
    regions = find_regions(lines, filename)

    cells: list[ModuleCell] = []
    given_lines: list[str] = []
    previous_end = 0
    for index, node in enumerate(tree.body):
        first, last = previous_end + 1, end_of_statement(lines, node)
        previous_end = last
        if is_left_out(node, index):
            continue
        inside = [region for region in regions if first <= region.begin <= last]
        span = lines[first - 1 : last]
        if not inside:
            if given_lines:
                # Keep the blank lines before the statement, at most two as ruff does.
                given_lines.extend([""] * min(leading_blank_count(span), 2))
            given_lines.extend(strip_blank_lines(span))
            continue
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            raise MarkerError(
                filename,
                inside[0].begin,
                "region is not inside a top-level function, so it cannot become a "
                "solution cell of the notebook",
            )
        if given_lines:
            cells.append(ModuleCell("\n".join(given_lines)))
            given_lines = []
        cell_lines = solution_cell_lines(lines, inside, first, last)
        cells.append(ModuleCell("\n".join(strip_blank_lines(cell_lines)), node.name))
    if given_lines:
        cells.append(ModuleCell("\n".join(given_lines)))
    return cells


def checks_by_task(checks: Sequence[GradedCheck]) -> dict[int, list[GradedCheck]]:
    """Group the grading suite's checks by task number (``test_task<N>_<module>.py``)."""
    tasks: dict[int, list[GradedCheck]] = {}
    for check in checks:
        match = CHECK_MODULE.match(check.module)
        if not match:
            raise NotebookError(
                f"grading/{check.module}.py is not named test_task<N>_<module>.py"
            )
        tasks.setdefault(int(match.group(1)), []).append(check)
    return tasks


def nbgrader_metadata(
    cell_id: str, *, solution: bool, locked: bool, points: float | None = None
) -> dict:
    metadata = {
        "grade": points is not None,
        "grade_id": cell_id,
        "locked": locked,
        "schema_version": NBGRADER_SCHEMA_VERSION,
        "solution": solution,
        "task": False,
    }
    if points is not None:
        metadata["points"] = int(points) if points == int(points) else points
    return {"nbgrader": metadata}


def check_cell_id(cell_id: str) -> str:
    if not re.fullmatch(rf"[A-Za-z0-9_-]{{1,{MAX_CELL_ID_LENGTH}}}", cell_id):
        raise NotebookError(
            f"cell id {cell_id!r} is invalid: use 1 to {MAX_CELL_ID_LENGTH} letters, "
            f"digits, '-' and '_'"
        )
    return cell_id


def markdown_cell(cell_id: str, text: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_markdown_cell(text, id=check_cell_id(cell_id))


def code_cell(cell_id: str, source: str, metadata: dict) -> nbformat.NotebookNode:
    return nbformat.v4.new_code_cell(
        source, id=check_cell_id(cell_id), metadata=nbformat.from_dict(metadata)
    )


def format_points(points: float) -> str:
    return f"{points:g} point" + ("" if points == 1 else "s")


def check_source(task_number: int, check: GradedCheck) -> str:
    """Return the source of a check's test cell: a comment and the call of the check."""
    heading = f"# Task {task_number}, {format_points(check.points)}"
    call = f'run_check("{check.name}", globals())'
    if not check.hidden:
        return f"{heading}.\n{call}"
    return (
        f"{heading}: a hidden check that runs when the notebook is graded.\n"
        f"{BEGIN_HIDDEN}\n{call}\n{END_HIDDEN}"
    )


def check_cells(
    task_number: int, checks: Sequence[GradedCheck]
) -> list[nbformat.NotebookNode]:
    """Return one autograder test cell per check of a task.

    A visible check's cell id and grade id are its name. A hidden check's are
    ``task<N>-hidden-<k>``, because nbgrader's feedback shows the grade id of every cell.
    """
    cells = []
    hidden_count = 0
    for check in checks:
        cell_id = check.name
        if check.hidden:
            hidden_count += 1
            cell_id = f"task{task_number}-hidden-{hidden_count}"
        metadata = nbgrader_metadata(
            cell_id, solution=False, locked=True, points=check.points
        )
        cells.append(code_cell(cell_id, check_source(task_number, check), metadata))
    return cells


def points_table(sheet: Sheet, suite: dict[int, list[GradedCheck]]) -> str:
    """Return a Markdown table of each task's points: visible checks, hidden ones, both."""
    rows = [
        "| task | visible checks | hidden checks | points |",
        "| --- | --- | --- | --- |",
    ]
    totals = [0.0, 0.0]
    for number, task in sorted(sheet.tasks.items()):
        visible = sum(check.points for check in suite[number] if not check.hidden)
        hidden = sum(check.points for check in suite[number] if check.hidden)
        totals = [totals[0] + visible, totals[1] + hidden]
        rows.append(
            f"| {task.title} | {visible:g} | {hidden:g} | {visible + hidden:g} |"
        )
    rows.append(
        f"| total | {totals[0]:g} | {totals[1]:g} | {totals[0] + totals[1]:g} |"
    )
    return "\n".join(rows)


def check_sources_fit(sheet: Sheet, suite: dict[int, list[GradedCheck]]) -> None:
    """Raise NotebookError unless the sheet's tasks and the grading suite's tasks match."""
    if sorted(sheet.tasks) != sorted(suite):
        raise NotebookError(
            f"the exercise sheet has tasks {sorted(sheet.tasks)} but grading/ has "
            f"test modules for tasks {sorted(suite)}"
        )
    for number, task in sheet.tasks.items():
        module = CHECK_MODULE.match(suite[number][0].module).group(2)
        if module != task.module:
            raise NotebookError(
                f"{task.title}: the sheet names exercises/{task.module}.py, but "
                f"grading/{suite[number][0].module}.py grades {module}"
            )
        points = sum(check.points for check in suite[number] if not check.hidden)
        if task.points is not None and task.points != points:
            raise NotebookError(
                f"{task.title}: the sheet gives {task.points:g} points, the grading "
                f"suite {points:g}; correct the sheet or the points markers"
            )
        if not any(check.hidden for check in suite[number]):
            raise NotebookError(
                f"{task.title} has no hidden check in grading/hidden/; the notebook "
                f"needs one per task"
            )


def make_notebook(
    solutions_dir: Path = SOLUTIONS_DIR, sheet_path: Path = SHEET_PATH
) -> nbformat.NotebookNode:
    """Build the source notebook from the solutions, the sheet and the grading suite.

    Raises:
        MarkerError: a solution file is missing or its markers are wrong.
        NotebookError: the sheet, the solutions and the grading suite do not fit together.
    """
    sheet = parse_sheet(sheet_path.read_text(encoding="utf-8"))
    suite = checks_by_task(graded_checks())
    check_sources_fit(sheet, suite)

    cells = [
        markdown_cell("introduction", f"# {sheet.title}\n\n{sheet.intro}"),
        markdown_cell(
            "working-in-the-notebook",
            f"{WORKING_TEXT}\n\n{points_table(sheet, suite)}",
        ),
        code_cell(
            "setup",
            SETUP_SOURCE,
            nbgrader_metadata("setup", solution=False, locked=True),
        ),
    ]
    for number, task in sorted(sheet.tasks.items()):
        heading = f"## {task.title}"
        cells.append(
            markdown_cell(
                f"task{number}", f"{heading}\n\n{task.intro}" if task.intro else heading
            )
        )
        cells.extend(task_code_cells(task, solutions_dir))
        cells.append(
            markdown_cell(f"task{number}-checks", CHECKS_TEXT.format(task=task.title))
        )
        cells.extend(check_cells(number, suite[number]))

    notebook = nbformat.v4.new_notebook(
        cells=cells,
        metadata={
            "kernelspec": {
                "display_name": "Python 3 (ipykernel)",
                "language": "python",
                "name": "python3",
            },
            "language_info": {"name": "python"},
        },
    )
    ids = [cell.id for cell in notebook.cells]
    duplicates = sorted({cell_id for cell_id in ids if ids.count(cell_id) > 1})
    if duplicates:
        raise NotebookError(f"cell ids used twice: {duplicates}")
    nbformat.validate(notebook)
    return notebook


def task_code_cells(
    task: SheetTask, solutions_dir: Path
) -> list[nbformat.NotebookNode]:
    """Return the code cells of one task's module, each function after its subsection.

    Raises:
        MarkerError: the module is missing or its markers are wrong.
        NotebookError: the sheet describes a function that has no solution cell.
    """
    path = solutions_dir / f"{task.module}.py"
    filename = display_path(path)
    try:
        source = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise MarkerError(filename, 1, "file not found") from None

    module = module_cells(source, filename)
    undescribed = sorted(set(task.functions) - {cell.function for cell in module})
    if undescribed:
        raise NotebookError(
            f"{task.title}: the sheet describes {', '.join(undescribed)}, but "
            f"{filename} has no solution region in a function of that name"
        )

    cells = []
    given_count = 0
    for cell in module:
        if cell.function is None:
            given_count += 1
            cell_id = f"{task.module}-given" + (
                f"-{given_count}" if given_count > 1 else ""
            )
            metadata = nbgrader_metadata(cell_id, solution=False, locked=True)
            cells.append(code_cell(cell_id, cell.source, metadata))
            continue
        description = task.functions.get(cell.function)
        if description is not None:
            cells.append(markdown_cell(f"description-{cell.function}", description))
        cell_id = f"solution-{cell.function}"
        metadata = nbgrader_metadata(cell_id, solution=True, locked=False)
        cells.append(code_cell(cell_id, cell.source, metadata))
    return cells


def notebook_text(notebook: nbformat.NotebookNode) -> str:
    """Serialize as Jupyter does (nbformat's JSON, keys sorted, indent 1), ending in "\\n"."""
    return nbformat.writes(notebook) + "\n"


def read_text(path: Path) -> str | None:
    try:
        return path.read_bytes().decode("utf-8").replace("\r\n", "\n")
    except (FileNotFoundError, UnicodeDecodeError):
        return None


def run(*, check: bool, solutions_dir: Path, sheet_path: Path, output: Path) -> int:
    """Write or check the notebook; return the exit status."""
    try:
        text = notebook_text(make_notebook(solutions_dir, sheet_path))
    except (MarkerError, NotebookError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1

    shown_path = display_path(output)
    current = read_text(output)
    if current == text:
        print(f"{shown_path} is up to date.")
        return 0
    if check:
        state = (
            "is missing" if current is None else "differs from what the generator makes"
        )
        print(f"{shown_path} {state}.")
        print("Run `python -m instructor.make_notebook` to update it.")
        return 1
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(text.encode("utf-8"))
    print(f"Wrote {shown_path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m instructor.make_notebook",
        description="Generate the nbgrader source notebook from solutions/, the "
        "exercise sheet and the points of the grading suite.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit with status 1 if the notebook differs from what the "
        "generator makes",
    )
    parser.add_argument(
        "--solutions",
        type=Path,
        default=SOLUTIONS_DIR,
        metavar="DIR",
        help="folder of the reference implementation",
    )
    parser.add_argument(
        "--sheet",
        type=Path,
        default=SHEET_PATH,
        metavar="FILE",
        help="exercise sheet whose task sections become the markdown cells",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=NOTEBOOK_PATH,
        metavar="FILE",
        help="the nbgrader source notebook to write",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run(
        check=args.check,
        solutions_dir=args.solutions,
        sheet_path=args.sheet,
        output=args.output,
    )


def run_with_exercises(argv: Sequence[str]) -> int:
    """Write or check the notebook for ``python -m instructor.generate_exercises ARGV``.

    That command's ``--check`` and ``--solutions`` apply to the notebook as well. With an
    ``--exercises`` folder other than exercises/ the notebook is left alone, so a trial
    run into another folder never rewrites the committed notebook.
    """
    args = build_exercise_parser().parse_args(argv)
    if args.exercises.resolve() != EXERCISES_DIR.resolve():
        return 0
    return run(
        check=args.check,
        solutions_dir=args.solutions,
        sheet_path=SHEET_PATH,
        output=NOTEBOOK_PATH,
    )


if __name__ == "__main__":
    sys.exit(main())
