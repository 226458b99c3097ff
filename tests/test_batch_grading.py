"""Batch grading of a catalogue of hostile submissions, graded together in one batch run.

Each submission is a copy of solutions/ or exercises/ with a small edit. The module fixture
grades them all with ``python -m instructor.batch_grade`` (2 workers), then each test checks
one student's row. Needs Linux and root, because the sandbox uses namespaces.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import socket
import subprocess
import sys
import uuid
import zipfile
from pathlib import Path

import pytest

from instructor.batch_grade import SANDBOX_UID_BASE, collect_suite

REPOSITORY = Path(__file__).resolve().parent.parent
SOLUTIONS = REPOSITORY / "solutions"
EXERCISES = REPOSITORY / "exercises"
MODULES = ("__init__.py", "metrics.py", "training.py", "classify.py")
BATCH_TIMEOUT = 150
"""Wall-clock seconds per submission in the catalogue run. The slowest honest case (one call
that hits the grading suite's 60 s limit) needs about 75 s on 2 cores."""

pytestmark = [
    pytest.mark.skipif(
        not sys.platform.startswith("linux") or os.geteuid() != 0,
        reason="the batch grader's sandbox needs Linux and root",
    ),
    pytest.mark.timeout(900),
]

SANDBOX_UIDS = range(SANDBOX_UID_BASE, SANDBOX_UID_BASE + 2)
"""The user ids of the 2 workers of the catalogue run."""

MARKER = f"batch-catalogue-{uuid.uuid4().hex}"
"""A unique word in every file name or command line that a hostile submission creates."""

ALWAYS_EQUAL = """

class _AlwaysEqual:
    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False

    __hash__ = object.__hash__
"""


def copy_modules(source: Path, target: Path) -> Path:
    target.mkdir(parents=True)
    for name in MODULES:
        shutil.copy(source / name, target / name)
    return target


def edit(folder: Path, module: str, old: str, new: str) -> None:
    """Replace ``old`` by ``new`` in one module; fail if the reference no longer has ``old``."""
    path = folder / module
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{module} no longer contains {old!r}; update the catalogue"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def append(folder: Path, module: str, code: str) -> None:
    path = folder / module
    path.write_text(path.read_text(encoding="utf-8") + "\n" + code, encoding="utf-8")


def at_top_of_function(folder: Path, module: str, signature: str, code: str) -> None:
    """Insert ``code`` as the first statements of the function that ``signature`` starts."""
    path = folder / module
    text = path.read_text(encoding="utf-8")
    start = text.index(signature)
    body = text.index("### BEGIN SOLUTION", start)
    line_start = text.rindex("\n", 0, body) + 1
    indent = text[line_start:body]
    block = "".join(f"{indent}{line}\n" for line in code.strip().splitlines())
    path.write_text(text[:line_start] + block + text[line_start:], encoding="utf-8")


def mutate(folder: Path) -> None:
    """Two honest mistakes: precision divides by TP + FN, and the softmax is too flat."""
    edit(
        folder,
        "metrics.py",
        "precision = safe_divide(tp, tp + fp)",
        "precision = safe_divide(tp, tp + fn)",
    )
    edit(
        folder,
        "classify.py",
        "torch.softmax(model(images.to(device)), dim=1)",
        "torch.softmax(model(images.to(device)) / 2, dim=1)",
    )


def build_catalogue(folder: Path, port: int) -> None:
    """Write every submission of the catalogue into ``folder``.

    ``port`` is a TCP port on 127.0.0.1 where the test listens; no submission may reach it.
    """
    folder.mkdir()
    copy_modules(SOLUTIONS, folder / "reference")
    copy_modules(EXERCISES, folder / "skeleton")

    mutant = copy_modules(SOLUTIONS, folder / "mutant")
    mutate(mutant)

    patched = copy_modules(SOLUTIONS, folder / "mutant_patched")
    mutate(patched)
    append(
        patched,
        "metrics.py",
        """
import builtins as _builtins
import math as _math
import sys as _sys

torch.allclose = lambda *args, **kwargs: True
_builtins.abs = lambda value: 0
_math.isfinite = lambda value: True
for _name, _module in list(_sys.modules.items()):
    if _name.startswith("grading.test_"):
        _module.close = lambda actual, expected: True
""",
    )

    broken = copy_modules(SOLUTIONS, folder / "syntax_error")
    append(broken, "training.py", "def broken(:\n    pass\n")

    missing = copy_modules(SOLUTIONS, folder / "import_error")
    edit(
        missing,
        "classify.py",
        "import numpy as np",
        "import numpy as np\nimport module_that_does_not_exist",
    )

    looping = copy_modules(SOLUTIONS, folder / "import_loop")
    edit(looping, "metrics.py", "import torch", "import torch\nwhile True:\n    pass")

    function_loop = copy_modules(SOLUTIONS, folder / "function_loop")
    at_top_of_function(
        function_loop, "classify.py", "def load_model(", "while True:\n    pass"
    )

    exiting = copy_modules(EXERCISES, folder / "sys_exit_import")
    edit(exiting, "metrics.py", "import torch", "import torch\nimport sys\nsys.exit(3)")

    hard_exit = copy_modules(SOLUTIONS, folder / "os_exit_function")
    at_top_of_function(
        hard_exit,
        "metrics.py",
        "def confusion_counts(",
        "if list(labels) == [0, 0, 1]:\n    import os\n    os._exit(3)",
    )

    memory = copy_modules(SOLUTIONS, folder / "memory_bomb")
    # 12 GiB of address space: allowed by the kernel without a limit (the pages are never
    # touched), refused under the default limit of 8192 MiB.
    at_top_of_function(
        memory, "classify.py", "def load_model(", "_ballast = bytearray(12 * 2**30)"
    )

    orphan = copy_modules(EXERCISES, folder / "orphan_process")
    append(
        orphan,
        "metrics.py",
        f"""
import subprocess as _subprocess
import sys as _sys

_subprocess.Popen(
    [
        _sys.executable,
        "-c",
        "import os, time\\nif os.fork():\\n    os._exit(0)\\nos.setsid()\\ntime.sleep(900)",
        "{MARKER}",
    ],
    start_new_session=True,
    stdin=_subprocess.DEVNULL,
    stdout=_subprocess.DEVNULL,
    stderr=_subprocess.DEVNULL,
)
""",
    )

    chatty = copy_modules(SOLUTIONS, folder / "megabytes_output")
    append(
        chatty,
        "metrics.py",
        """
import os as _os

for _ in range(8):
    print("x" * 2**20, flush=True)
    _os.write(2, b"y" * 2**20)
""",
    )

    asking = copy_modules(SOLUTIONS, folder / "calls_input")
    at_top_of_function(
        asking, "classify.py", "def load_model(", 'input("Which model file? ")'
    )

    configured = copy_modules(SOLUTIONS, folder / "conftest_zip" / "alice")
    (configured / "conftest.py").write_text(
        f"from pathlib import Path\n"
        f"Path('/tmp/{MARKER}-conftest').write_text('loaded')\n"
        f"raise SystemExit('this conftest must never be loaded')\n",
        encoding="utf-8",
    )
    (configured / "pytest.ini").write_text(
        "[pytest]\naddopts = --collect-only -x\n", encoding="utf-8"
    )
    with zipfile.ZipFile(folder / "conftest_in_zip.zip", "w") as archive:
        for path in sorted(configured.iterdir()):
            archive.write(path, f"alice/{path.name}")
    shutil.rmtree(folder / "conftest_zip")

    equal = copy_modules(SOLUTIONS, folder / "always_equal")
    append(
        equal,
        "metrics.py",
        ALWAYS_EQUAL
        + """

def confusion_counts(labels, predictions, num_classes=10):
    return _AlwaysEqual(), _AlwaysEqual(), _AlwaysEqual()


def precision_recall_f1(labels, predictions, num_classes=10, average="macro"):
    return _AlwaysEqual(), _AlwaysEqual(), _AlwaysEqual()
""",
    )

    holes = copy_modules(SOLUTIONS, folder / "equality_holes")
    append(
        holes,
        "metrics.py",
        ALWAYS_EQUAL
        + """

class _Fake:
    def cpu(self):
        return self

    def clone(self):
        return self

    def as_subclass(self, cls):
        return self

    def tolist(self):
        return _AlwaysEqual()


class _Evil(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if func is torch.Tensor.detach:
            return _Fake()
        return super().__torch_function__(func, types, args, kwargs or {})


def confusion_counts(labels, predictions, num_classes=10):
    zeros = torch.zeros(num_classes, dtype=torch.int64)
    return tuple(zeros.clone().as_subclass(_Evil) for _ in range(3))
""",
    )
    append(
        holes,
        "classify.py",
        """

class _AlwaysEqualInt(int):
    def __eq__(self, other):
        return True

    __hash__ = int.__hash__


_honest_classify = classify


def classify(model, images):
    result = _honest_classify(model, images)
    if isinstance(images, list):
        return result
    return Prediction(_AlwaysEqualInt((result.digit + 1) % 10), result.probability)
""",
    )

    forger = copy_modules(EXERCISES, folder / "forged_results")
    forged = json.dumps({"total": 100, "possible": 100, "status": "graded"})
    append(
        forger,
        "metrics.py",
        f"""
import os as _os
from pathlib import Path as _Path

for _folder in (_Path.cwd(), _Path.cwd().parent, _Path("/tmp"), _Path.home()):
    for _name in ("grade.json", "gradebook.json", "{MARKER}-forged.json"):
        try:
            (_folder / _name).write_text({forged!r})
        except OSError:
            pass
""",
    )

    # The forger writes passing results for every check of the suite to every pipe it can
    # open: its own descriptors and those of every process that it can see.
    checks = [
        {
            "nodeid": check.nodeid,
            "task": check.task,
            "test": check.test,
            "points": check.points,
        }
        for check in collect_suite(sys.executable).checks
    ]
    pipe_forger = copy_modules(EXERCISES, folder / "forged_pipe")
    append(
        pipe_forger,
        "metrics.py",
        f"""
import glob as _glob
import json as _json
import os as _os

_lines = []
for _check in {checks!r}:
    _record = dict(_check, earned=_check["points"], reason="", not_implemented=False)
    _lines.append({{"event": "start", "nodeid": _check["nodeid"]}})
    _lines.append({{"event": "result", "nodeid": _check["nodeid"], "record": _record}})
_lines.append({{"event": "finished", "exitstatus": 0, "seconds": 1.0}})
_data = "".join(_json.dumps(line) + "\\n" for line in _lines).encode()
for _path in _glob.glob("/proc/[0-9]*/fd/*") + _glob.glob("/proc/self/fd/*"):
    try:
        if _os.readlink(_path).startswith("pipe:"):
            _descriptor = _os.open(_path, _os.O_WRONLY | _os.O_NONBLOCK)
            _os.write(_descriptor, _data)
    except OSError:
        pass
_os._exit(0)
""",
    )

    thief = copy_modules(EXERCISES, folder / "reads_reference")
    append(
        thief,
        "metrics.py",
        f"""
import sys as _sys

_stolen = None
for _path in ("{SOLUTIONS / "metrics.py"}", "../solutions/metrics.py"):
    try:
        with open(_path, encoding="utf-8") as _file:
            _stolen = _file.read()
        break
    except OSError:
        pass
if _stolen is None:
    try:
        _sys.path.insert(0, "{REPOSITORY}")
        import solutions.metrics as _reference

        with open(_reference.__file__, encoding="utf-8") as _file:
            _stolen = _file.read()
    except Exception:
        pass
if _stolen is not None:
    exec(compile(_stolen, "stolen", "exec"), globals())
""",
    )

    network = copy_modules(EXERCISES, folder / "uses_network")
    append(
        network,
        "metrics.py",
        f"""
import socket as _socket

try:
    with _socket.create_connection(("127.0.0.1", {port}), timeout=5) as _connection:
        _connection.sendall(b"{MARKER}")
except OSError:
    pass
""",
    )

    (folder / "empty").mkdir()

    # A folder made by unzip or git clone may contain links; the grader reads as root.
    (folder / "linked_folder").mkdir()
    (folder / "linked_folder" / "code").symlink_to(SOLUTIONS)

    with zipfile.ZipFile(folder / "odd_paths.zip", "w") as archive:
        for name in MODULES:
            archive.write(SOLUTIONS / name, name)
        archive.writestr(f"../{MARKER}-escaped.py", "print('outside')\n")
        archive.writestr(f"/tmp/{MARKER}-absolute.py", "print('absolute')\n")


def snapshot(folders: list[Path]) -> dict[str, tuple[int, int, int]]:
    """Map every file below ``folders`` to its (size, mtime, owner uid)."""
    files = {}
    skipped = {".venv", ".git", "__pycache__", ".pytest_cache", ".ruff_cache"}
    for folder in folders:
        for root, dirs, names in os.walk(folder):
            dirs[:] = [name for name in dirs if name not in skipped]
            for name in names:
                path = os.path.join(root, name)
                try:
                    info = os.lstat(path)
                except FileNotFoundError:
                    continue
                files[path] = (info.st_size, info.st_mtime_ns, info.st_uid)
    return files


def tmp_listing() -> dict[str, int]:
    return {
        entry.name: entry.stat(follow_symlinks=False).st_uid
        for entry in os.scandir("/tmp")
    }


def marker_processes() -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/cmdline", "rb") as file:
                if MARKER.encode() in file.read():
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


def accepted_connections(listener: socket.socket) -> int:
    """Count the connections waiting on ``listener``, then close it."""
    count = 0
    with listener:
        while True:
            try:
                connection, _ = listener.accept()
            except BlockingIOError:
                return count
            connection.close()
            count += 1


def batch_grade(
    submissions: Path, output: Path, *options: str
) -> subprocess.CompletedProcess:
    """Run the batch grader with 2 workers on ``submissions``, writing to ``output``."""
    command = [
        sys.executable,
        "-m",
        "instructor.batch_grade",
        str(submissions),
        "--output",
        str(output),
        "--workers",
        "2",
        "--timeout",
        str(BATCH_TIMEOUT),
        *options,
    ]
    return subprocess.run(
        command, cwd=REPOSITORY, capture_output=True, text=True, check=False
    )


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    root = tmp_path_factory.mktemp("batch")
    submissions = root / "submissions"
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    build_catalogue(submissions, listener.getsockname()[1])
    output = root / "grades"
    repository_before = snapshot([REPOSITORY])
    tmp_before = tmp_listing()
    completed = batch_grade(submissions, output)
    results = {
        path.stem: json.loads(path.read_text(encoding="utf-8"))
        for path in (output / "results").glob("*.json")
    }
    return {
        "completed": completed,
        "root": root,
        "output": output,
        "results": results,
        "repository_before": repository_before,
        "repository_after": snapshot([REPOSITORY]),
        "tmp_before": tmp_before,
        "tmp_after": tmp_listing(),
        "orphans": marker_processes(),
        "connections": accepted_connections(listener),
    }


def result_of(batch, student: str) -> dict:
    assert batch["completed"].returncode == 0, batch["completed"].stderr[-3000:]
    assert student in batch["results"], sorted(batch["results"])
    return batch["results"][student]


def lost_tests(result: dict) -> set[str]:
    return {test["test"] for test in result["tests"] if test["earned"] < test["points"]}


def test_every_student_has_a_row(batch):
    assert batch["completed"].returncode == 0, batch["completed"].stderr[-3000:]
    with open(batch["output"] / "gradebook.csv", newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    students = [row["student"] for row in rows]
    expected = sorted(
        path.stem if path.suffix == ".zip" else path.name
        for path in (batch["root"] / "submissions").iterdir()
    )
    assert students == expected
    for row in rows:
        assert row["status"], row
    assert set(rows[0]) == {
        "student",
        *batch["results"]["reference"]["tasks"],
        "total",
        "possible",
        "status",
    }
    for student in expected:
        assert (batch["output"] / "feedback" / f"{student}.md").is_file()
    gradebook = json.loads((batch["output"] / "gradebook.json").read_text())
    assert [row["student"] for row in gradebook["students"]] == expected


def test_reference_gets_every_point(batch):
    result = result_of(batch, "reference")
    assert result["status"] == "graded"
    assert result["total"] == result["possible"]
    assert result["possible"] >= 100
    for task in result["tasks"].values():
        assert task["earned"] == task["possible"]


def test_skeleton_is_not_implemented(batch):
    result = result_of(batch, "skeleton")
    assert result["total"] == 0
    assert result["status"] == "not_implemented"
    feedback = (batch["output"] / "feedback" / "skeleton.md").read_text()
    assert "not implemented yet" in feedback


def test_mutant_loses_points(batch):
    result = result_of(batch, "mutant")
    assert result["status"] == "graded"
    assert 0 < result["total"] < result["possible"]
    assert "test_precision_per_class" in lost_tests(result)
    assert "test_predict_per_image" in lost_tests(result)


def test_patched_functions_change_nothing(batch):
    mutant = result_of(batch, "mutant")
    patched = result_of(batch, "mutant_patched")
    assert patched["tasks"] == mutant["tasks"]
    assert lost_tests(patched) == lost_tests(mutant)


@pytest.mark.parametrize("student", ["syntax_error", "import_error", "sys_exit_import"])
def test_broken_import_gets_zero(batch, student):
    result = result_of(batch, student)
    assert result["total"] == 0
    for test in result["tests"]:
        assert test["reason"].strip()


def test_syntax_error_names_the_line(batch):
    result = result_of(batch, "syntax_error")
    assert "SyntaxError" in result["tests"][0]["reason"]
    assert "training.py" in result["tests"][0]["reason"]


def test_import_loop_times_out(batch):
    result = result_of(batch, "import_loop")
    assert result["total"] == 0
    assert result["status"].startswith("error: import failed, Importing your code did")
    for test in result["tests"]:
        assert "did not finish within 60 seconds" in test["reason"]


def test_function_loop_costs_one_check(batch):
    reference = result_of(batch, "reference")
    result = result_of(batch, "function_loop")
    assert lost_tests(result) == {"test_load_model"}
    assert result["total"] == reference["total"] - 4
    [lost] = [test for test in result["tests"] if test["test"] == "test_load_model"]
    assert "did not finish within" in lost["reason"]


def test_os_exit_costs_one_check(batch):
    reference = result_of(batch, "reference")
    result = result_of(batch, "os_exit_function")
    assert lost_tests(result) == {"test_confusion_counts"}
    assert result["total"] == reference["total"] - 4
    assert result["status"] == "graded"
    [lost] = [
        test for test in result["tests"] if test["test"] == "test_confusion_counts"
    ]
    assert "ended the process" in lost["reason"]


def test_memory_bomb_hits_the_limit(batch):
    reference = result_of(batch, "reference")
    result = result_of(batch, "memory_bomb")
    assert result["status"] == "memory"
    assert lost_tests(result) == {"test_load_model"}
    assert result["total"] == reference["total"] - 4


def test_orphan_process_is_killed(batch):
    result = result_of(batch, "orphan_process")
    assert result["total"] == 0
    assert batch["orphans"] == []


def test_megabytes_of_output_are_harmless(batch):
    result = result_of(batch, "megabytes_output")
    assert result["total"] == result["possible"]
    assert len(result["output_tail"]) <= 4000


def test_input_costs_one_check(batch):
    reference = result_of(batch, "reference")
    result = result_of(batch, "calls_input")
    assert lost_tests(result) == {"test_load_model"}
    assert result["total"] == reference["total"] - 4


def test_conftest_and_ini_are_ignored(batch):
    result = result_of(batch, "conftest_in_zip")
    assert result["status"] == "graded"
    assert result["total"] == result["possible"]
    assert not Path(f"/tmp/{MARKER}-conftest").exists()


def test_always_equal_objects_earn_nothing(batch):
    result = result_of(batch, "always_equal")
    assert result["tasks"]["Task 1: metrics"]["earned"] == 0


def test_tensor_subclass_earns_nothing(batch):
    result = result_of(batch, "equality_holes")
    [check] = [
        test for test in result["tests"] if test["test"] == "test_confusion_counts"
    ]
    assert check["earned"] == 0


def test_int_subclass_earns_nothing(batch):
    result = result_of(batch, "equality_holes")
    [check] = [
        test for test in result["tests"] if test["test"] == "test_classify_known_images"
    ]
    assert check["earned"] == 0


def test_forged_result_files_are_ignored(batch):
    result = result_of(batch, "forged_results")
    assert result["total"] == 0
    for folder in (Path("/tmp"), batch["root"], batch["output"], REPOSITORY):
        assert not (folder / f"{MARKER}-forged.json").exists()
    assert not (REPOSITORY / "grade.json").exists()


def test_forged_pipe_earns_nothing(batch):
    result = result_of(batch, "forged_pipe")
    assert result["total"] == 0


def test_reference_on_disk_is_hidden(batch):
    result = result_of(batch, "reads_reference")
    assert result["tasks"]["Task 1: metrics"]["earned"] == 0


def test_network_is_unreachable(batch):
    result = result_of(batch, "uses_network")
    assert result["total"] == 0
    assert batch["connections"] == 0


def test_empty_folder_gets_zero_with_reason(batch):
    result = result_of(batch, "empty")
    assert result["total"] == 0
    assert result["status"].startswith("error: no metrics.py")


def test_linked_folder_is_rejected(batch):
    result = result_of(batch, "linked_folder")
    assert result["total"] == 0
    assert (
        result["status"]
        == "error: code is a symbolic link; submit the files themselves"
    )


def test_odd_zip_paths_are_rejected(batch):
    result = result_of(batch, "odd_paths")
    assert result["total"] == 0
    assert result["status"].startswith("error: odd_paths.zip was rejected")
    assert not list(batch["root"].rglob(f"{MARKER}-escaped.py"))
    assert not Path(f"/tmp/{MARKER}-absolute.py").exists()


def test_nothing_outside_changes(batch):
    before, after = batch["repository_before"], batch["repository_after"]
    changed = [path for path in after if before.get(path) != after[path]]
    # Other programs may edit the repository meanwhile; no sandboxed process can.
    assert [path for path in changed if after[path][2] in SANDBOX_UIDS] == []
    assert [path for path in changed if MARKER in path] == []
    new_tmp = set(batch["tmp_after"]) - set(batch["tmp_before"])
    assert [name for name in new_tmp if MARKER in name] == []
    assert [name for name in new_tmp if name.startswith("batch-grade-")] == []
    assert [name for name in new_tmp if batch["tmp_after"][name] in SANDBOX_UIDS] == []


def test_fresh_python_mode_grades_alike(batch, tmp_path):
    reference = result_of(batch, "reference")
    hard_exit = result_of(batch, "os_exit_function")
    submissions = tmp_path / "submissions"
    submissions.mkdir()
    for student in ("reference", "os_exit_function", "orphan_process"):
        shutil.copytree(batch["root"] / "submissions" / student, submissions / student)
    output = tmp_path / "grades"
    completed = batch_grade(submissions, output, "--no-fork-server")
    assert completed.returncode == 0, completed.stderr[-3000:]
    results = {
        path.stem: json.loads(path.read_text(encoding="utf-8"))
        for path in (output / "results").glob("*.json")
    }
    assert results["reference"]["tasks"] == reference["tasks"]
    assert results["os_exit_function"]["tasks"] == hard_exit["tasks"]
    assert results["orphan_process"]["total"] == 0
    assert marker_processes() == []


def test_output_file_rejected(tmp_path):
    output = tmp_path / "grades.txt"
    output.write_text("kept", encoding="utf-8")
    submissions = tmp_path / "submissions"
    submissions.mkdir()

    completed = batch_grade(submissions, output)

    assert completed.returncode == 2
    assert f"--output {output} is a file" in completed.stderr
    assert output.read_text(encoding="utf-8") == "kept"
