"""Generate the student version in exercises/ from the reference in solutions/.

    python -m instructor.generate_exercises           write exercises/
    python -m instructor.generate_exercises --check   list the files that differ, write nothing

A solution region is the lines from ``### BEGIN SOLUTION`` to ``### END SOLUTION``, the
markers of nbgrader's clear-solutions step. Its first lines are TODO text: comment lines that
start with ``### ``, the first of them with ``### TODO:``. In the exercise the whole region
becomes that text as ordinary comments (``### TODO: x`` becomes ``# TODO: x``), followed by
``raise NotImplementedError("<function>() is not implemented yet")``, where ``<function>`` is
the enclosing ``def``. Lines outside the regions are copied unchanged.

The output is already formatted as ``ruff format`` leaves it (line length 88), and is written
as UTF-8 with "\\n" line endings on every platform.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS_DIR = PROJECT_ROOT / "solutions"
EXERCISES_DIR = PROJECT_ROOT / "exercises"
MODULE_FILES = ("__init__.py", "metrics.py", "training.py", "classify.py")

# The reference's module docstrings that do not fit the student version, by file name.
EXERCISE_DOCSTRINGS = {
    "__init__.py": "Your implementation of the exercise: fill in every TODO.",
}

BEGIN_MARKER = "### BEGIN SOLUTION"
END_MARKER = "### END SOLUTION"
TODO_PREFIX = "### TODO:"
LINE_LENGTH = 88


class MarkerError(ValueError):
    """Error in a solution file, at ``filename`` line ``line`` (1-based)."""

    def __init__(self, filename: str, line: int, message: str) -> None:
        super().__init__(f"{filename}:{line}: {message}")
        self.filename = filename
        self.line = line


@dataclass
class Region:
    """One solution region: the line numbers (1-based) of its markers and its TODO text."""

    begin: int
    end: int
    indent: str
    todo: list[str]
    """The ``### `` lines after the BEGIN marker, stripped of their indentation."""


def find_regions(lines: Sequence[str], filename: str) -> list[Region]:
    """Find the solution regions in ``lines`` and check their markers and TODO text.

    Raises:
        MarkerError: a BEGIN inside an open region, an END without a BEGIN, or a region
            that is still open at the end of the file. Also a region without TODO text, and
            a comment that contains "BEGIN SOLUTION" or "END SOLUTION" but is not exactly
            one of the two markers.
    """
    regions = []
    open_begin = None
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if text == BEGIN_MARKER:
            if open_begin is not None:
                raise MarkerError(
                    filename,
                    number,
                    f"{BEGIN_MARKER} inside the region opened at line {open_begin}; "
                    f"close that region with {END_MARKER} first",
                )
            open_begin = number
        elif text == END_MARKER:
            if open_begin is None:
                raise MarkerError(
                    filename, number, f"{END_MARKER} without a {BEGIN_MARKER} before it"
                )
            regions.append(make_region(lines, open_begin, number, filename))
            open_begin = None
        elif text.startswith("#") and (
            "BEGIN SOLUTION" in text or "END SOLUTION" in text
        ):
            # A misspelt marker would leave solution code in the exercise.
            raise MarkerError(
                filename,
                number,
                f"marker comment {text!r} must read exactly {BEGIN_MARKER!r} "
                f"or {END_MARKER!r}",
            )
    if open_begin is not None:
        raise MarkerError(
            filename, open_begin, f"region is not closed: {END_MARKER} is missing"
        )
    return regions


def make_region(lines: Sequence[str], begin: int, end: int, filename: str) -> Region:
    """Return the region from line ``begin`` to ``end`` with the TODO text after BEGIN."""
    begin_line = lines[begin - 1]
    indent = begin_line[: len(begin_line) - len(begin_line.lstrip())]
    todo = []
    for line in lines[begin : end - 1]:
        text = line.strip()
        if text != "###" and not text.startswith("### "):
            break
        todo.append(text)
    if not todo or not todo[0].startswith(TODO_PREFIX):
        raise MarkerError(
            filename,
            begin,
            f"region has no TODO text: the line after {BEGIN_MARKER} must start with "
            f"{TODO_PREFIX!r} and say what to write",
        )
    return Region(begin, end, indent, todo)


def enclosing_function(tree: ast.Module, line: int, column: int) -> str | None:
    """Return the name of the innermost ``def`` whose body contains ``line``, or None.

    The statements before ``line`` are scanned upwards for the nearest one indented less than
    ``column``: that is the block that contains the line. If it is not a ``def``, the scan
    continues from that block's own indentation.
    """
    statements = sorted(
        (node for node in ast.walk(tree) if isinstance(node, ast.stmt)),
        key=lambda node: (node.lineno, node.col_offset),
    )
    for node in reversed(statements):
        if node.lineno >= line or node.col_offset >= column:
            continue
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return node.name
        column = node.col_offset
    return None


def raise_lines(indent: str, function_name: str) -> list[str]:
    """Return the ``raise NotImplementedError`` statement, wrapped as ruff format wraps it."""
    message = f'"{function_name}() is not implemented yet"'
    line = f"{indent}raise NotImplementedError({message})"
    if len(line) <= LINE_LENGTH:
        return [line]
    return [
        f"{indent}raise NotImplementedError(",
        f"{indent}    {message}",
        f"{indent})",
    ]


def replace_docstring(lines: list[str], tree: ast.Module, docstring: str) -> list[str]:
    """Return ``lines`` with the module docstring replaced by ``docstring`` (or added)."""
    new_docstring = f'"""{docstring}"""'
    first = tree.body[0] if tree.body else None
    if (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        return [*lines[: first.lineno - 1], new_docstring, *lines[first.end_lineno :]]
    return [new_docstring, *lines]


def make_exercise(source: str, filename: str, docstring: str | None = None) -> str:
    """Turn the text of a solution module into the text of its exercise module.

    Args:
        source: the solution module's text.
        filename: the name used in error messages.
        docstring: if given, replaces the module docstring.

    Raises:
        MarkerError: the markers or TODO text are wrong (see :func:`find_regions`), a region
            is outside any function, or either module is not valid Python.
    """
    lines = source.replace("\r\n", "\n").split("\n")
    try:
        tree = ast.parse(source, filename=filename)
    except SyntaxError as error:
        raise MarkerError(
            filename, error.lineno or 1, f"invalid Python: {error.msg}"
        ) from None

    regions = find_regions(lines, filename)
    output = []
    next_line = 1
    for region in regions:
        function_name = enclosing_function(tree, region.begin, len(region.indent))
        if function_name is None:
            raise MarkerError(filename, region.begin, "region is not inside a function")
        output.extend(lines[next_line - 1 : region.begin - 1])
        output.extend(region.indent + "#" + text[3:] for text in region.todo)
        output.extend(raise_lines(region.indent, function_name))
        next_line = region.end + 1
    output.extend(lines[next_line - 1 :])

    if docstring is not None:
        output = replace_docstring(output, ast.parse("\n".join(output)), docstring)
    exercise = "\n".join(output)
    try:
        ast.parse(exercise, filename=filename)
    except SyntaxError as error:
        raise MarkerError(
            filename,
            error.lineno or 1,
            f"the exercise made from this file is not valid Python ({error.msg}); "
            f"a region must cover whole statements",
        ) from None
    return exercise


def display_path(path: Path) -> str:
    """Return ``path`` relative to the working directory where possible, with "/"."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def generate_exercises(solutions_dir: Path) -> dict[str, str]:
    """Return the text of every exercise module, by file name.

    Raises:
        MarkerError: a solution file is missing or its markers are wrong.
    """
    exercises = {}
    for name in MODULE_FILES:
        path = solutions_dir / name
        filename = display_path(path)
        try:
            source = path.read_bytes().decode("utf-8")
        except FileNotFoundError:
            raise MarkerError(filename, 1, "file not found") from None
        exercises[name] = make_exercise(source, filename, EXERCISE_DOCSTRINGS.get(name))
    return exercises


def differing_files(exercises: dict[str, str], exercises_dir: Path) -> list[str]:
    """Return the names of the files in ``exercises_dir`` that differ from ``exercises``.

    Line endings are compared as "\\n", so a checkout with "\\r\\n" endings still matches.
    """
    differing = []
    for name, text in exercises.items():
        path = exercises_dir / name
        try:
            current = path.read_bytes().decode("utf-8").replace("\r\n", "\n")
        except (FileNotFoundError, UnicodeDecodeError):
            current = None
        if current != text:
            differing.append(name)
    return differing


def write_exercises(exercises: dict[str, str], exercises_dir: Path) -> list[str]:
    """Write the files that differ, as UTF-8 with "\\n" endings; return their names."""
    changed = differing_files(exercises, exercises_dir)
    exercises_dir.mkdir(parents=True, exist_ok=True)
    for name in changed:
        (exercises_dir / name).write_bytes(exercises[name].encode("utf-8"))
    return changed


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m instructor.generate_exercises",
        description="Generate exercises/ from solutions/: each solution region becomes a "
        "TODO that raises NotImplementedError.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; list the exercise files that differ and exit with status 1 "
        "if there are any",
    )
    parser.add_argument(
        "--solutions",
        type=Path,
        default=SOLUTIONS_DIR,
        metavar="DIR",
        help="folder of the reference implementation",
    )
    parser.add_argument(
        "--exercises",
        type=Path,
        default=EXERCISES_DIR,
        metavar="DIR",
        help="folder of the generated student version",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        exercises = generate_exercises(args.solutions)
    except MarkerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1

    folder = display_path(args.exercises)
    if args.check:
        differing = differing_files(exercises, args.exercises)
        if not differing:
            print(f"{folder}/ is up to date.")
            return 0
        for name in differing:
            if (args.exercises / name).is_file():
                print(f"{folder}/{name} differs from what the generator makes.")
            else:
                print(f"{folder}/{name} is missing.")
        print("Run `python -m instructor.generate_exercises` to update it.")
        return 1

    for name in write_exercises(exercises, args.exercises):
        print(f"Wrote {folder}/{name}")
    print(f"{folder}/ is up to date.")
    return 0


if __name__ == "__main__":
    # The nbgrader notebook is made from the same solutions/: update or check it as well.
    from instructor.make_notebook import run_with_exercises

    sys.exit(main() or run_with_exercises(sys.argv[1:]))
