"""The generator of exercises/: TODO regions, marker errors and the committed output."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from instructor.generate_exercises import (
    EXERCISE_DOCSTRINGS,
    EXERCISES_DIR,
    MODULE_FILES,
    SOLUTIONS_DIR,
    MarkerError,
    differing_files,
    generate_exercises,
    main,
    make_exercise,
)
from mnist_course.contracts import TrainingConfig
from mnist_course.implementation import PROJECT_ROOT, load_implementation

SOLUTION_NAMES = [name for name in MODULE_FILES if name != "__init__.py"]

EXAMPLE_SOLUTION = '''\
"""Example module."""

import math


def area(radius: float) -> float:
    """Return the area of a circle."""
    if radius < 0:
        raise ValueError("radius must not be negative")
    ### BEGIN SOLUTION
    ### TODO: Return pi times the squared radius.
    ###   Hint: math.pi.
    squared = radius**2
    return math.pi * squared
    ### END SOLUTION


def unchanged() -> int:
    return 1
'''

EXAMPLE_EXERCISE = '''\
"""Example module."""

import math


def area(radius: float) -> float:
    """Return the area of a circle."""
    if radius < 0:
        raise ValueError("radius must not be negative")
    # TODO: Return pi times the squared radius.
    #   Hint: math.pi.
    raise NotImplementedError("area() is not implemented yet")


def unchanged() -> int:
    return 1
'''


def function(body: str, name: str = "work") -> str:
    """Return the source of a function ``name`` whose body is ``body`` (4-space lines)."""
    return f"def {name}():\n{body}"


def solution_regions(source: str) -> list[dict]:
    """Find the regions of a valid solution module, independently of the generator.

    Each region is a dict with ``function`` (the innermost enclosing def), ``todo`` (its
    ``### `` lines, stripped), ``code`` (the other lines inside it) and ``begin``/``end``
    (0-based line indices of its markers).
    """
    lines = source.split("\n")
    functions = [
        node
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef)
    ]
    regions = []
    begin = None
    for index, line in enumerate(lines):
        if line.strip() == "### BEGIN SOLUTION":
            begin = index
        elif line.strip() == "### END SOLUTION":
            inside = lines[begin + 1 : index]
            todo = []
            for text in inside:
                if not text.strip().startswith("###"):
                    break
                todo.append(text.strip())
            containing = [
                node
                for node in functions
                if node.lineno <= begin + 1 <= node.end_lineno
            ]
            innermost = max(containing, key=lambda node: node.lineno)
            regions.append(
                {
                    "function": innermost.name,
                    "todo": todo,
                    "code": inside[len(todo) :],
                    "begin": begin,
                    "end": index,
                }
            )
    return regions


def read_solution(name: str) -> str:
    return (SOLUTIONS_DIR / name).read_bytes().decode("utf-8")


def read_exercise(name: str) -> str:
    return (EXERCISES_DIR / name).read_bytes().decode("utf-8").replace("\r\n", "\n")


@pytest.fixture(scope="module")
def generated() -> dict[str, str]:
    return generate_exercises(SOLUTIONS_DIR)


@pytest.fixture(scope="module")
def exercises():
    return load_implementation("exercises")


def write_solutions(folder: Path, metrics_source: str) -> Path:
    """Write a solutions folder whose metrics.py is ``metrics_source``."""
    folder.mkdir()
    for name in MODULE_FILES:
        (folder / name).write_bytes(EXAMPLE_SOLUTION.encode("utf-8"))
    (folder / "metrics.py").write_bytes(metrics_source.encode("utf-8"))
    return folder


# The committed exercises/


def test_committed_exercises_up_to_date(generated):
    differing = differing_files(generated, EXERCISES_DIR)

    assert differing == [], (
        f"exercises/ differs from solutions/ in {differing}. "
        f"Run `python -m instructor.generate_exercises` and commit the result."
    )


def test_module_files_cover_solutions():
    solution_files = {path.name for path in SOLUTIONS_DIR.glob("*.py")}

    assert set(MODULE_FILES) == solution_files


@pytest.mark.parametrize("name", SOLUTION_NAMES)
def test_each_region_becomes_todo_and_raise(generated, name):
    regions = solution_regions(read_solution(name))
    exercise = generated[name]

    assert regions, f"solutions/{name} has no solution region"
    for region in regions:
        comments = "".join(
            re.escape(f"#{text[3:]}".rstrip()) + r"\n\s*" for text in region["todo"]
        )
        message = re.escape(f'"{region["function"]}() is not implemented yet"')
        pattern = comments + r"raise NotImplementedError\(\s*" + message + r"\s*\)"
        assert re.search(pattern, exercise), (
            f"exercises/{name}: no TODO text plus raise for {region['function']}()"
        )


@pytest.mark.parametrize("name", SOLUTION_NAMES)
def test_raise_count_matches_regions(generated, name):
    regions = solution_regions(read_solution(name))

    assert generated[name].count("raise NotImplementedError(") == len(regions)


@pytest.mark.parametrize("name", MODULE_FILES)
def test_no_markers_in_exercises(generated, name):
    assert "SOLUTION" not in generated[name]


@pytest.mark.parametrize("name", SOLUTION_NAMES)
def test_no_solution_code_in_exercises(generated, name):
    source = read_solution(name)
    regions = solution_regions(source)
    lines = source.split("\n")
    inside = {index for r in regions for index in range(r["begin"], r["end"] + 1)}
    outside_lines = {line for index, line in enumerate(lines) if index not in inside}
    exercise_lines = set(generated[name].split("\n"))
    code_lines = [
        line
        for region in regions
        for line in region["code"]
        if line.strip() and not line.strip().startswith("#")
    ]

    # A line such as "    )" may also occur outside the regions, where it is kept.
    leaked = [
        line
        for line in code_lines
        if line in exercise_lines and line not in outside_lines
    ]
    assert code_lines, f"solutions/{name} has regions without code"
    assert leaked == [], f"solution code copied into exercises/{name}"


@pytest.mark.parametrize("name", SOLUTION_NAMES)
def test_unmarked_code_copied_verbatim(generated, name):
    lines = read_solution(name).split("\n")
    exercise = generated[name]
    chunks = []
    start = 0
    for region in solution_regions(read_solution(name)):
        chunks.append("\n".join(lines[start : region["begin"]]))
        start = region["end"] + 1
    chunks.append("\n".join(lines[start:]))

    position = 0
    for chunk in chunks:
        found = exercise.find(chunk, position)
        assert found >= 0, f"exercises/{name} lacks this unmarked code:\n{chunk}"
        position = found + len(chunk)


def test_init_gets_exercise_docstring(generated):
    module = ast.parse(generated["__init__.py"])

    assert ast.get_docstring(module) == EXERCISE_DOCSTRINGS["__init__.py"]


def test_init_keeps_no_reference_wording(generated):
    assert "Reference" not in generated["__init__.py"]


@pytest.mark.parametrize("name", SOLUTION_NAMES)
def test_region_functions_raise_by_name(name):
    functions = {region["function"] for region in solution_regions(read_solution(name))}
    tree = ast.parse(read_exercise(name))
    raised = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name in functions:
            raised[node.name] = [
                ast.unparse(statement.exc)
                for statement in node.body
                if isinstance(statement, ast.Raise) and statement.exc is not None
            ]

    for function_name in functions:
        expected = f"NotImplementedError('{function_name}() is not implemented yet')"
        assert expected in raised.get(function_name, []), function_name


@pytest.mark.parametrize(
    ("module", "function_name", "arguments"),
    [
        ("metrics", "confusion_counts", ([0], [0])),
        ("metrics", "safe_divide", (1, 1)),
        ("training", "build_model", (TrainingConfig(),)),
        ("training", "evaluate", (None, [])),
        ("classify", "load_model", (Path("model.pt"),)),
        ("classify", "preprocess_image", (Image.new("L", (28, 28)),)),
    ],
)
def test_exercise_raises_not_implemented(exercises, module, function_name, arguments):
    function_object = getattr(getattr(exercises, module), function_name)

    with pytest.raises(NotImplementedError, match=rf"^{function_name}\(\) is not"):
        function_object(*arguments)


# make_exercise on small synthetic sources


def test_example_exercise_exact():
    assert make_exercise(EXAMPLE_SOLUTION, "example.py") == EXAMPLE_EXERCISE


def test_crlf_source_gives_lf_output():
    exercise = make_exercise(EXAMPLE_SOLUTION.replace("\n", "\r\n"), "example.py")

    assert exercise == EXAMPLE_EXERCISE


def test_docstring_replaced():
    exercise = make_exercise(EXAMPLE_SOLUTION, "example.py", "New text.")

    assert exercise.startswith('"""New text."""\n\nimport math\n')


def test_method_region_names_method():
    source = (
        "class Model:\n"
        "    def fit(self):\n"
        "        ### BEGIN SOLUTION\n"
        "        ### TODO: Fit.\n"
        "        return 1\n"
        "        ### END SOLUTION\n"
    )

    assert 'NotImplementedError("fit() is' in make_exercise(source, "model.py")


def test_nested_block_names_function():
    source = function(
        "    def helper():\n"
        "        return 0\n"
        "    for step in range(3):\n"
        "        ### BEGIN SOLUTION\n"
        "        ### TODO: Step.\n"
        "        print(step)\n"
        "        ### END SOLUTION\n",
        name="outer",
    )

    assert 'NotImplementedError("outer() is' in make_exercise(source, "nested.py")


def test_long_name_raise_wrapped():
    name = "a_function_with_a_rather_long_name_that_needs_wrapping"
    source = function(
        "    ### BEGIN SOLUTION\n    ### TODO: Work.\n    return 1\n    ### END SOLUTION\n",
        name=name,
    )

    exercise = make_exercise(source, "long.py")

    assert f'    raise NotImplementedError(\n        "{name}() is' in exercise


def test_long_name_raise_formatted():
    pytest.importorskip("ruff")
    name = "a_function_with_a_rather_long_name_that_needs_wrapping"
    source = function(
        "    ### BEGIN SOLUTION\n    ### TODO: Work.\n    return 1\n    ### END SOLUTION\n",
        name=name,
    )
    exercise = make_exercise(source, "long.py")

    formatted = subprocess.run(
        [
            sys.executable,
            "-m",
            "ruff",
            "format",
            "--isolated",
            "--line-length",
            "88",
            "-",
        ],
        input=exercise,
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    assert formatted == exercise


# Marker errors


MARKER_ERRORS = {
    "nested begin": (
        function(
            "    ### BEGIN SOLUTION\n"
            "    ### TODO: Work.\n"
            "    ### BEGIN SOLUTION\n"
            "    ### TODO: Work.\n"
            "    return 1\n"
            "    ### END SOLUTION\n"
        ),
        4,
        "inside the region opened at line 2",
    ),
    "end without begin": (
        function("    return 1\n    ### END SOLUTION\n"),
        3,
        "without a ### BEGIN SOLUTION",
    ),
    "unclosed region": (
        function("    ### BEGIN SOLUTION\n    ### TODO: Work.\n    return 1\n"),
        2,
        "not closed",
    ),
    "region without todo": (
        function("    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION\n"),
        2,
        "no TODO text",
    ),
    "comment before todo": (
        function(
            "    ### BEGIN SOLUTION\n"
            "    ###   Hint: first.\n"
            "    return 1\n"
            "    ### END SOLUTION\n"
        ),
        2,
        "no TODO text",
    ),
    "misspelt marker": (
        function("    ## BEGIN SOLUTION\n    ### TODO: Work.\n    return 1\n"),
        2,
        "must read exactly",
    ),
    "region outside function": (
        "### BEGIN SOLUTION\n### TODO: Work.\nVALUE = 1\n### END SOLUTION\n",
        1,
        "not inside a function",
    ),
}


@pytest.mark.parametrize("case", MARKER_ERRORS)
def test_marker_error_names_line(case):
    source, line, _ = MARKER_ERRORS[case]

    with pytest.raises(MarkerError) as raised:
        make_exercise(source, "broken.py")

    assert raised.value.line == line


@pytest.mark.parametrize("case", MARKER_ERRORS)
def test_marker_error_names_file(case):
    source, line, _ = MARKER_ERRORS[case]

    with pytest.raises(MarkerError) as raised:
        make_exercise(source, "broken.py")

    assert str(raised.value).startswith(f"broken.py:{line}: ")


@pytest.mark.parametrize("case", MARKER_ERRORS)
def test_marker_error_explains(case):
    source, _, explanation = MARKER_ERRORS[case]

    with pytest.raises(MarkerError, match=re.escape(explanation)):
        make_exercise(source, "broken.py")


def test_partial_statement_rejected():
    source = function(
        "    ### BEGIN SOLUTION\n"
        "    ### TODO: Work.\n"
        "    if True:\n"
        "        x = 1\n"
        "        ### END SOLUTION\n"
        "        return x\n"
    )

    with pytest.raises(MarkerError, match="not valid Python"):
        make_exercise(source, "partial.py")


# The command line


def test_main_writes_lf_files(tmp_path):
    solutions = write_solutions(
        tmp_path / "solutions", EXAMPLE_SOLUTION.replace("\n", "\r\n")
    )
    exercises = tmp_path / "exercises"

    code = main(["--solutions", str(solutions), "--exercises", str(exercises)])

    assert code == 0
    assert (exercises / "metrics.py").read_bytes() == EXAMPLE_EXERCISE.encode("utf-8")


def test_check_lists_differing_file(tmp_path, capsys):
    solutions = write_solutions(tmp_path / "solutions", EXAMPLE_SOLUTION)
    exercises = tmp_path / "exercises"
    main(["--solutions", str(solutions), "--exercises", str(exercises)])
    (exercises / "training.py").write_text("# edited\n")
    capsys.readouterr()

    code = main(
        ["--check", "--solutions", str(solutions), "--exercises", str(exercises)]
    )
    out = capsys.readouterr().out

    assert code == 1
    assert "training.py differs" in out
    assert "metrics.py" not in out
    assert (exercises / "training.py").read_text() == "# edited\n"


def test_check_passes_when_current(tmp_path):
    solutions = write_solutions(tmp_path / "solutions", EXAMPLE_SOLUTION)
    exercises = tmp_path / "exercises"
    main(["--solutions", str(solutions), "--exercises", str(exercises)])

    code = main(
        ["--check", "--solutions", str(solutions), "--exercises", str(exercises)]
    )

    assert code == 0


def test_check_writes_nothing(tmp_path):
    solutions = write_solutions(tmp_path / "solutions", EXAMPLE_SOLUTION)
    exercises = tmp_path / "exercises"

    code = main(
        ["--check", "--solutions", str(solutions), "--exercises", str(exercises)]
    )

    assert code == 1
    assert not exercises.exists()


def test_command_reports_marker_error(tmp_path):
    broken = function("    return 1\n    ### END SOLUTION\n")
    solutions = write_solutions(tmp_path / "solutions", broken)

    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "instructor.generate_exercises",
            "--solutions",
            str(solutions),
            "--exercises",
            str(tmp_path / "exercises"),
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )

    assert completed.returncode == 1
    assert "metrics.py:3: " in completed.stderr
    assert "Traceback" not in completed.stderr
    assert not (tmp_path / "exercises").exists()
