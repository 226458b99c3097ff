"""Grade a folder of submissions, each in its own sandboxed pytest process (Linux only).

    python -m instructor.batch_grade SUBMISSIONS_DIR [--output grades] [--workers N]
        [--force] [--timeout 600] [--memory-mb 8192] [--no-fork-server]

Each entry of SUBMISSIONS_DIR is one student's submission: a folder, or a ``.zip`` file,
laid out like ``exercises/`` (the modules may sit in one folder inside the zip). The name of
the folder, or of the zip without ``.zip``, is the student's name. The output folder gets:

* ``gradebook.csv`` and ``gradebook.json``: one row per student with the points per task,
  the total, the possible points and a status (``graded``, ``not_implemented``, ``timeout``,
  ``memory`` or ``error: <reason>``);
* ``feedback/<student>.md``: the points per task and the reason for each lost point;
* ``results/<student>.json``: everything above for one student. A submission whose result
  file is there, for the same files and the same grading suite, is not graded again unless
  ``--force`` is given, so an interrupted run continues where it stopped.

Each submission is graded by ``pytest grading/`` in a sandbox of its own: only the module
files are copied into a fresh folder, and the sandbox has no network, cannot read
``solutions/``, ``tests/`` or ``.git``, runs as the unprivileged user ``nobody`` with limits
on wall time and address space, and everything it starts is killed when it ends. Inside,
``instructor/graded_run.py`` runs the checks in one process and the submission's code in
separate student processes, which send back plain data only. The sandbox is forked from
``instructor/batch_server.py``, which has imported torch and pytest once, or with
``--no-fork-server`` started as a fresh Python by ``instructor/sandbox.py``; both set up the
same sandbox. The results come back through a pipe that no student process can reach and are
checked against the suite that this process collected itself. The README section "Batch
grading" describes the measures and what they do not cover.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import hashlib
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from instructor import batch_server
from instructor.batch_report import feedback_markdown, write_atomically, write_gradebook
from instructor.batch_submissions import (
    Submission,
    SubmissionError,
    find_submissions,
    fingerprint_entry,
    prepare,
)

REPOSITORY = Path(__file__).resolve().parent.parent
GRADING = REPOSITORY / "grading"
SANDBOX = Path(__file__).resolve().parent / "sandbox.py"
PLUGIN = Path(__file__).resolve().parent / "batch_plugin.py"
PLUGIN_MODULE = "batch_grade_plugin"

VISIBLE_IN_SANDBOX = (
    "grading",
    "mnist_course",
    "data",
    ".venv",
    "pyproject.toml",
    "instructor/__init__.py",
    "instructor/sandbox.py",
    "instructor/batch_plugin.py",
    "instructor/graded_run.py",
)
"""The repository entries the sandbox can see; everything else there is hidden."""

SANDBOX_UID_BASE = 60100
SANDBOX_GID = 65534
"""Worker ``i`` grades as the user ``SANDBOX_UID_BASE + i`` and the group ``nogroup``
(65534 on most Linux systems). A user of its own per worker keeps the process limit
(``RLIMIT_NPROC`` counts all processes of a user) of one submission from starving the
submissions graded beside it. No account exists for these user ids, and they own no files
outside the batch grader's temporary folders."""

DEFAULT_TIMEOUT = 600.0
DEFAULT_MEMORY_MB = 8192
"""The address-space limit (RLIMIT_AS) of the graded process, in MiB. A grading run of the
reference maps about 4.0 GiB of address space (VmPeak; torch 2.14.1 with its CUDA libraries,
on a machine without a GPU) but uses about 0.9 GiB of memory (VmHWM). So 8192 MiB leaves
room for correct but wasteful code."""
FILE_SIZE_LIMIT = 256 * 2**20
STUDENT_FOLDER_BYTES = 512 * 2**20
"""Size of each of the two in-memory folders a student process may write to (its home and
its temporary folder)."""
MAX_PROCESSES = 1024
"""RLIMIT_NPROC, counted over all processes of the sandbox user, threads included."""

SERVER_START_TIMEOUT = 300.0
"""Seconds the fork server may take to import torch and pytest."""
MAX_ATTEMPTS = 4
"""pytest runs per submission: after a run that ended inside a check (``os._exit``, a
crash), the next run continues with the checks that remain."""
OUTPUT_TAIL_BYTES = 64 * 1024
RESULT_CHANNEL_BYTES = 8 * 2**20
IMPORT_FAILURE = "Your code could not be imported, so nothing can be graded."
"""The first line of the grading suite's feedback when the implementation fails to import."""
MEMORY_MESSAGES = (
    "MemoryError",
    "can't allocate memory",
    "Cannot allocate memory",
    "std::bad_alloc",
    "out of memory",
)


@dataclass(frozen=True)
class Check:
    nodeid: str
    task: str
    test: str
    points: float

    @property
    def hidden(self) -> bool:
        return self.nodeid.startswith("grading/hidden/")


@dataclass
class Suite:
    """The graded checks, as collected by the instructor's own pytest run."""

    checks: list[Check]
    hidden_option: bool

    @property
    def tasks(self) -> list[str]:
        return list(dict.fromkeys(check.task for check in self.checks))

    @property
    def possible(self) -> float:
        return sum(check.points for check in self.checks)

    @property
    def digest(self) -> str:
        text = json.dumps([vars(check) for check in self.checks], sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class Settings:
    output: Path
    workers: int
    force: bool
    timeout: float
    memory_mb: int
    python: str = sys.executable
    namespaces: bool = True
    server: ForkServer | None = None
    uids: queue.Queue[int] = field(default_factory=queue.Queue)
    """The user ids of the workers that are not grading at the moment."""

    def __post_init__(self) -> None:
        for worker in range(self.workers):
            self.uids.put(SANDBOX_UID_BASE + worker)


@dataclass
class Attempt:
    """The outcome of one pytest run in the sandbox: exit status, events and output."""

    exit_code: int | None = None
    timed_out: bool = False
    events: list[dict] = field(default_factory=list)
    corrupt: str = ""
    output_tail: str = ""
    seconds: float = 0.0


def hidden_option_available() -> bool:
    """Return True if the grading plugin has the ``--hidden`` option."""
    conftest = GRADING / "conftest.py"
    return '"--hidden"' in conftest.read_text(encoding="utf-8")


def pytest_arguments(suite_hidden: bool, plugin_by_name: bool = True) -> list[str]:
    """Return pytest's arguments; without ``plugin_by_name`` the caller passes the plugin."""
    arguments = [
        str(GRADING),
        "-c",
        str(REPOSITORY / "pyproject.toml"),
        "--rootdir",
        str(REPOSITORY),
        "--confcutdir",
        str(GRADING),
        "-p",
        "no:cacheprovider",
        "-q",
        "--no-header",
    ]
    if plugin_by_name:
        arguments += ["-p", PLUGIN_MODULE]
    if suite_hidden:
        arguments.append("--hidden")
    return arguments


def read_pipe(descriptor: int, limit: int, sink: dict) -> None:
    """Read ``descriptor`` to its end; keep at most ``limit`` bytes and note any overflow."""
    chunks, size = [], 0
    with open(descriptor, "rb", buffering=0) as pipe:
        while True:
            chunk = pipe.read(65536)
            if not chunk:
                break
            if size + len(chunk) > limit:
                sink["overflow"] = True
                continue
            chunks.append(chunk)
            size += len(chunk)
    sink["data"] = b"".join(chunks)


def read_tail(descriptor: int, limit: int, sink: dict) -> None:
    """Read ``descriptor`` to its end and keep only the last ``limit`` bytes."""
    tail: collections.deque[bytes] = collections.deque()
    size = 0
    with open(descriptor, "rb", buffering=0) as stream:
        while True:
            chunk = stream.read(65536)
            if not chunk:
                break
            tail.append(chunk)
            size += len(chunk)
            while size - len(tail[0]) >= limit:
                size -= len(tail.popleft())
    sink["data"] = b"".join(tail)[-limit:]


def parse_events(data: bytes) -> tuple[list[dict], str]:
    """Return the JSON events of a result channel, and a reason if it was not well formed."""
    events = []
    for line in data.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            return events, "a line on the result channel is not JSON"
        if not isinstance(event, dict) or not isinstance(event.get("event"), str):
            return events, "an entry on the result channel is not an event"
        events.append(event)
    return events, ""


def collect_suite(python: str) -> Suite:
    """Collect the grading suite with the instructor's pytest, outside any sandbox."""
    hidden = hidden_option_available()
    with tempfile.TemporaryDirectory(prefix="batch-grade-collect-") as folder:
        shutil.copy(PLUGIN, Path(folder) / f"{PLUGIN_MODULE}.py")
        (Path(folder) / "tmp").mkdir()
        read_end, write_end = os.pipe()
        sink: dict = {}
        reader = threading.Thread(
            target=read_pipe, args=(read_end, RESULT_CHANNEL_BYTES, sink), daemon=True
        )
        reader.start()
        command = [
            python,
            "-m",
            "pytest",
            *pytest_arguments(hidden),
            "--collect-only",
            "--batch-result-fd",
            str(write_end),
        ]
        completed = subprocess.run(
            command,
            cwd=folder,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            pass_fds=(write_end,),
            env=sandbox_environment(Path(folder), Path(folder)),
            check=False,
        )
        os.close(write_end)
        reader.join()
    events, problem = parse_events(sink.get("data", b""))
    collected = [event for event in events if event["event"] == "collected"]
    if completed.returncode != 0 or problem or not collected:
        output = (completed.stdout + completed.stderr).decode(errors="replace")
        raise SystemExit(
            f"Collecting the grading suite failed (exit status {completed.returncode})."
            f"\n{output[-4000:]}"
        )
    checks = [
        Check(test["nodeid"], test["task"], test["test"], float(test["points"]))
        for test in collected[0]["tests"]
    ]
    return Suite(checks, hidden)


def sandbox_environment(workdir: Path, home: Path) -> dict[str, str]:
    """Return the environment of a graded process: no PYTHONPATH, one thread per library."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "TMPDIR": str(workdir / "tmp"),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": "0",
        "PYTHONNOUSERSITE": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "CUDA_VISIBLE_DEVICES": "",
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": str(home / ".matplotlib"),
    }


@dataclass
class Workspace:
    """The fresh folder of one submission: its modules, a home and a temporary folder."""

    root: Path
    uid: int
    """The user id that grades the submission."""

    @property
    def submission(self) -> Path:
        return self.root / "submission"

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    @property
    def checks(self) -> Path:
        """The folder of the checks process, hidden from student processes."""
        return self.root / "checks"

    def create_private_folders(self, owned: bool) -> None:
        for folder in (self.home, self.tmp, self.checks):
            folder.mkdir(mode=0o700)
            if owned:
                os.chown(folder, self.uid, SANDBOX_GID)


class ForkServer:
    """A running ``instructor.batch_server`` with one socket per worker."""

    def __init__(self, python: str, workers: int) -> None:
        pairs = [
            socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            for _ in range(workers)
        ]
        self.folder = tempfile.mkdtemp(prefix="batch-grade-server-")
        environment = sandbox_environment(Path(self.folder), Path(self.folder))
        Path(self.folder, "tmp").mkdir()
        self.process = subprocess.Popen(
            [python, "-m", "instructor.batch_server"]
            + [str(theirs.fileno()) for _, theirs in pairs],
            cwd=REPOSITORY,
            stdin=subprocess.DEVNULL,
            pass_fds=[theirs.fileno() for _, theirs in pairs],
            env=environment,
        )
        self.channels: queue.Queue[socket.socket] = queue.Queue()
        for ours, theirs in pairs:
            theirs.close()
            ours.settimeout(SERVER_START_TIMEOUT)
            if receive(ours).get("ready") is not True:
                raise OSError("the fork server did not start")
            ours.settimeout(None)
            self.channels.put(ours)

    def close(self) -> None:
        while not self.channels.empty():
            self.channels.get().close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


def receive(channel: socket.socket) -> dict:
    message = channel.recv(65536)
    if not message:
        raise OSError("the fork server closed its socket")
    return json.loads(message)


def start_process(
    settings: Settings, config: dict, result_end: int, output_end: int
) -> tuple[int, object]:
    """Start one graded run; return the process group to kill and a handle to wait on."""
    if settings.server is None:
        process = subprocess.Popen(
            [sys.executable, "-I", "-S", str(SANDBOX), json.dumps(config)],
            cwd=config["workdir"],
            stdin=subprocess.DEVNULL,
            stdout=output_end,
            stderr=output_end,
            pass_fds=(result_end,),
            start_new_session=True,
            env={"PATH": "/usr/bin:/bin"},
        )
        return process.pid, process
    channel = settings.server.channels.get()
    socket.send_fds(
        channel, [json.dumps({"config": config}).encode()], [result_end, output_end]
    )
    return receive(channel)["pid"], channel


def wait_process(settings: Settings, handle, timeout: float) -> int:
    """Return the exit code of a graded run; raise TimeoutError after ``timeout`` s."""
    if settings.server is None:
        try:
            return handle.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise TimeoutError from None
    handle.settimeout(timeout)
    try:
        return receive(handle)["exit_code"]
    except TimeoutError:
        raise
    finally:
        handle.settimeout(None)


def finish_process(settings: Settings, handle) -> int:
    """Wait for a killed run to end and hand its socket back to the server's pool."""
    if settings.server is None:
        return handle.wait()
    try:
        return receive(handle)["exit_code"]
    finally:
        settings.server.channels.put(handle)


def sandbox_config(
    settings: Settings,
    suite: Suite,
    workspace: Workspace,
    skip_file: Path,
    result_descriptor: int,
) -> dict:
    """Return the configuration of one run for the fork server or ``instructor/sandbox.py``.

    ``result_descriptor`` is the number of the result pipe in the checks process.
    """
    config = {
        "workdir": str(workspace.root),
        "repository": str(REPOSITORY),
        "visible": list(VISIBLE_IN_SANDBOX),
        "expose": sorted({sys.base_prefix, sys.prefix}),
        "uid": workspace.uid,
        "gid": SANDBOX_GID,
        "memory_bytes": settings.memory_mb * 2**20,
        "file_size_bytes": FILE_SIZE_LIMIT,
        "max_processes": MAX_PROCESSES,
        "allow_fallback": not settings.namespaces,
        "env": sandbox_environment(workspace.root, workspace.home),
        "checks_folder": str(workspace.checks),
        "student_folder": str(workspace.tmp),
        "student_folder_bytes": STUDENT_FOLDER_BYTES,
        "submission": str(workspace.submission),
        "pytest_args": [
            *pytest_arguments(suite.hidden_option, plugin_by_name=False),
            "--impl",
            str(workspace.submission),
            "--basetemp",
            str(workspace.checks / "pytest"),
            "--batch-skip",
            str(skip_file),
            "--batch-result-fd",
            str(result_descriptor),
        ],
    }
    if settings.server is None:
        # sandbox.py keeps root for graded_run, which forks the spawner before it drops
        # to the sandbox user itself.
        config["command"] = [
            settings.python,
            "-m",
            "instructor.graded_run",
            json.dumps({**config, "proc_mounted": True}),
        ]
        config["uid"] = None
        config["env"] = {**config["env"], "PYTHONPATH": str(REPOSITORY)}
    return config


def run_attempt(
    settings: Settings,
    suite: Suite,
    workspace: Workspace,
    skipped: list[str],
    timeout: float,
) -> Attempt:
    """Run pytest once in the sandbox, for at most ``timeout`` seconds."""
    attempt = Attempt()
    skip_file = workspace.root / "skip.json"
    skip_file.write_text(json.dumps(skipped), encoding="utf-8")
    skip_file.chmod(0o644)
    result_read, result_write = os.pipe()
    config = sandbox_config(
        settings,
        suite,
        workspace,
        skip_file,
        batch_server.RESULT_DESCRIPTOR if settings.server else result_write,
    )
    output_read, output_write = os.pipe()
    results: dict = {}
    output: dict = {}
    readers = [
        threading.Thread(
            target=read_pipe,
            args=(result_read, RESULT_CHANNEL_BYTES, results),
            daemon=True,
        ),
        threading.Thread(
            target=read_tail,
            args=(output_read, OUTPUT_TAIL_BYTES, output),
            daemon=True,
        ),
    ]
    started = time.perf_counter()
    try:
        group, handle = start_process(settings, config, result_write, output_write)
    finally:
        os.close(result_write)
        os.close(output_write)
    for reader in readers:
        reader.start()
    try:
        attempt.exit_code = wait_process(settings, handle, max(timeout, 0.1))
    except TimeoutError:
        attempt.timed_out = True
    finally:
        # Kills the launcher's group; the PID namespace then takes everything else down.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
        if attempt.exit_code is None:
            attempt.exit_code = finish_process(settings, handle)
        elif settings.server is not None:
            settings.server.channels.put(handle)
    for reader in readers:
        reader.join(timeout=10)
    attempt.seconds = time.perf_counter() - started
    attempt.output_tail = output.get("data", b"").decode(errors="replace")
    attempt.events, attempt.corrupt = parse_events(results.get("data", b""))
    if results.get("overflow"):
        attempt.corrupt = (
            "the result channel received more data than any grading run sends"
        )
    return attempt


def plain_exit(exit_code: int) -> str:
    if exit_code > 128:
        number = exit_code - 128
        try:
            return f"was killed by signal {signal.Signals(number).name}"
        except ValueError:
            return f"was killed by signal {number}"
    return f"exited with status {exit_code}"


def validate_result(event: dict, expected: dict[str, Check], done: dict) -> str:
    """Return why a result event does not fit the collected suite, or an empty string."""
    nodeid = event.get("nodeid")
    if nodeid not in expected:
        return f"a result names {nodeid!r}, which is not a check of the suite"
    if nodeid in done:
        return f"the check {nodeid} was reported twice"
    record = event.get("record")
    if record is None:
        return ""
    check = expected[nodeid]
    if not isinstance(record, dict):
        return f"the result of {nodeid} is not a record"
    if record.get("test") != check.test or record.get("task") != check.task:
        return f"the result of {nodeid} names another test or task"
    if record.get("points") != check.points:
        return f"the result of {nodeid} claims other points than the suite"
    if record.get("earned") not in (0.0, check.points):
        return f"the result of {nodeid} claims a part of the points"
    if not isinstance(record.get("reason"), str):
        return f"the result of {nodeid} has no reason"
    return ""


def lost(check: Check, reason: str, not_implemented: bool = False) -> dict:
    return {
        "nodeid": check.nodeid,
        "task": check.task,
        "test": check.test,
        "points": check.points,
        "earned": 0.0,
        "reason": reason,
        "not_implemented": not_implemented,
        "hidden": check.hidden,
    }


def grade(settings: Settings, suite: Suite, submission: Submission) -> dict:
    """Grade one submission in its own workspace and return its result."""
    started = time.perf_counter()
    expected = {check.nodeid: check for check in suite.checks}
    done: dict[str, dict] = {}
    notes: list[str] = []
    status = ""
    output_tail = ""
    pytest_seconds = 0.0
    completed_checks = 0
    root = Path(tempfile.mkdtemp(prefix=f"batch-grade-{submission.key}-"))
    uid = settings.uids.get()
    try:
        root.chmod(0o755)
        workspace = Workspace(root, uid)
        try:
            notes += prepare(submission, workspace.submission)
        except SubmissionError as error:
            status = f"error: {error}"
        if not status:
            workspace.create_private_folders(owned=os.getuid() == 0)
            deadline = started + settings.timeout
            previous_finished = None
            for _ in range(MAX_ATTEMPTS):
                attempt = run_attempt(
                    settings,
                    suite,
                    workspace,
                    sorted(done),
                    deadline - time.perf_counter(),
                )
                output_tail = attempt.output_tail
                status, finished = absorb(attempt, expected, done, notes)
                pytest_seconds += sum(
                    event.get("seconds", 0.0)
                    for event in attempt.events
                    if event["event"] == "finished"
                    and isinstance(event.get("seconds"), int | float)
                )
                completed_checks += finished
                if status or len(done) == len(expected):
                    break
                # Two runs in a row that finished no check point to a crash at import
                # time, which every further run would repeat.
                started_any = any(event["event"] == "start" for event in attempt.events)
                if finished == 0 and (previous_finished == 0 or not started_any):
                    break
                previous_finished = finished
            if not status and completed_checks == 0:
                status = (
                    f"error: the grading process {plain_exit(attempt.exit_code or 0)} "
                    "before any check finished"
                )
    finally:
        shutil.rmtree(root, ignore_errors=True)
        settings.uids.put(uid)
    return summarize(
        submission,
        suite,
        done,
        status,
        notes,
        output_tail,
        {"wall": time.perf_counter() - started, "pytest": pytest_seconds},
    )


def grade_safely(settings: Settings, suite: Suite, submission: Submission) -> dict:
    """Grade one submission; an unexpected error of the grader becomes its status."""
    try:
        return grade(settings, suite, submission)
    except Exception as error:  # Every student gets a row, whatever went wrong.
        return summarize(
            submission,
            suite,
            {},
            f"error: the batch grader failed ({type(error).__name__}: {error})",
            [],
            "",
            {"wall": 0.0, "pytest": 0.0},
        )


def absorb(
    attempt: Attempt,
    expected: dict[str, Check],
    done: dict[str, dict],
    notes: list[str],
) -> tuple[str, int]:
    """Add one attempt's results to ``done``; return a final status, if any, and the count."""
    if attempt.timed_out:
        return "timeout", 0
    if attempt.corrupt:
        return f"error: {attempt.corrupt}", 0
    started = None
    finished = 0
    for event in attempt.events:
        kind = event["event"]
        if kind == "collected":
            collected = {
                test.get("nodeid")
                for test in event.get("tests", [])
                if isinstance(test, dict)
            }
            if collected != set(expected) - set(done):
                return (
                    "error: the grading suite collected other checks in the sandbox",
                    0,
                )
        elif kind == "start":
            if started is not None:
                return f"error: the check {started} started twice or never ended", 0
            started = event.get("nodeid")
        elif kind == "result":
            problem = validate_result(event, expected, done)
            if not problem and event.get("nodeid") != started:
                problem = (
                    f"a result for {event.get('nodeid')} arrived before it started"
                )
            if problem:
                return f"error: {problem}", 0
            check = expected[event["nodeid"]]
            record = event.get("record")
            if record is None:
                done[check.nodeid] = lost(check, "The check did not run.")
            else:
                done[check.nodeid] = {
                    **lost(
                        check, record["reason"], bool(record.get("not_implemented"))
                    ),
                    "earned": float(record["earned"]),
                }
            finished += 1
            started = None
        elif kind != "finished":
            return f"error: unknown event {kind!r} on the result channel", 0
    ended_normally = any(event["event"] == "finished" for event in attempt.events)
    if ended_normally and attempt.exit_code in (0, 1):
        return "", finished
    how = plain_exit(attempt.exit_code or 0)
    if started in expected and started not in done:
        done[started] = lost(
            expected[started],
            f"The grading process {how} during this check, so it earns no points.\n"
            "Likely mistake: sys.exit(), os._exit(), a crash in native code or a signal.",
        )
        notes.append(f"The grading process {how} during {expected[started].test}.")
        return "", finished
    if sandbox_failed(attempt):
        return f"error: the sandbox could not start ({attempt.output_tail[-300:]})", 0
    return "", finished


def sandbox_failed(attempt: Attempt) -> bool:
    return attempt.exit_code == 125 and "sandbox error:" in attempt.output_tail


def overall_status(status: str, tests: list[dict], output_tail: str) -> str:
    if status:
        return status
    reasons = "\n".join(test["reason"] for test in tests) + output_tail
    if any(message in reasons for message in MEMORY_MESSAGES):
        return "memory"
    if tests and all(test["not_implemented"] for test in tests):
        return "not_implemented"
    first = tests[0]["reason"].splitlines() if tests else []
    if (
        len(first) > 1
        and first[0] == IMPORT_FAILURE
        and all(test["reason"] == tests[0]["reason"] for test in tests)
    ):
        return f"error: import failed, {first[1]}"
    return "graded"


def summarize(
    submission: Submission,
    suite: Suite,
    done: dict[str, dict],
    status: str,
    notes: list[str],
    output_tail: str,
    seconds: dict[str, float],
) -> dict:
    """Build the result of one student, with a record for every check of the suite."""
    if status:
        # A final error or a timeout costs every point, so the grade never depends on how
        # far a run got before it was stopped.
        reason = status_reason(status, seconds)
        tests = [lost(check, reason) for check in suite.checks]
    else:
        tests = [
            done.get(check.nodeid)
            or lost(
                check,
                "The check did not run, because the grading process ended before it.",
            )
            for check in suite.checks
        ]
    status = overall_status(status, tests, output_tail)
    tasks = {}
    for task in suite.tasks:
        task_tests = [test for test in tests if test["task"] == task]
        tasks[task] = {
            "earned": sum(test["earned"] for test in task_tests),
            "possible": sum(test["points"] for test in task_tests),
        }
    return {
        "student": submission.student,
        "sources": [entry.name for entry in submission.entries],
        "fingerprint": submission.fingerprint,
        "status": status,
        "total": sum(task["earned"] for task in tasks.values()),
        "possible": suite.possible,
        "tasks": tasks,
        "tests": tests,
        "notes": notes,
        "output_tail": output_tail[-4000:],
        "seconds": seconds,
    }


def status_reason(status: str, seconds: dict[str, float]) -> str:
    if status == "timeout":
        return (
            f"Not graded: the submission did not finish within the time limit "
            f"({seconds['wall']:.0f} s).\nLikely mistake: an endless loop when the "
            "module is imported, or far more work than the task needs."
        )
    return f"Not graded: {status.removeprefix('error: ')}."


def load_finished(path: Path, fingerprint: str) -> dict | None:
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if isinstance(result, dict) and result.get("fingerprint") == fingerprint:
        return result
    return None


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m instructor.batch_grade",
        description=__doc__.splitlines()[0],
    )
    parser.add_argument(
        "submissions",
        type=Path,
        metavar="SUBMISSIONS_DIR",
        help="folder with one folder or .zip file per student",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=Path("grades"),
        help="folder for the gradebook, feedback and results (default: grades)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="submissions graded at the same time (default: the number of CPUs)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="grade again even where a result of the same files is already there",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help=f"wall-clock seconds per submission (default: {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument(
        "--memory-mb",
        type=int,
        default=DEFAULT_MEMORY_MB,
        help=f"address-space limit of each graded process in MiB (default: "
        f"{DEFAULT_MEMORY_MB})",
    )
    parser.add_argument(
        "--no-fork-server",
        action="store_true",
        help="start a fresh Python for every submission instead of forking it from a "
        "server that has imported torch and pytest once (slower, simpler)",
    )
    args = parser.parse_args(argv)
    if not args.submissions.is_dir():
        parser.error(f"submissions folder {args.submissions} not found")
    if args.workers < 1:
        parser.error(f"--workers must be at least 1, got {args.workers}")
    if args.timeout <= 0:
        parser.error(f"--timeout must be positive, got {args.timeout:g}")
    if args.memory_mb < 1024:
        parser.error(f"--memory-mb must be at least 1024, got {args.memory_mb}")
    return args


def namespaces_available() -> bool:
    completed = subprocess.run(
        [sys.executable, "-I", "-S", str(SANDBOX), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        print(
            "Warning: the sandbox cannot create namespaces here "
            f"({completed.stderr.strip() or 'not permitted'}). Submissions will run "
            "without network isolation, without hiding solutions/, and can leave "
            "processes behind. Run batch grading as root on Linux for full isolation.",
            file=sys.stderr,
        )
        return False
    return True


def split_finished(
    settings: Settings, suite: Suite, submissions: list[Submission]
) -> tuple[dict[str, dict], list[Submission]]:
    """Return the results that can be reused, and the submissions still to grade."""
    results: dict[str, dict] = {}
    pending = []
    for submission in submissions:
        submission.fingerprint = hashlib.sha256(
            (
                suite.digest
                + "".join(fingerprint_entry(entry) for entry in submission.entries)
            ).encode()
        ).hexdigest()
        finished = None
        if not settings.force:
            finished = load_finished(
                settings.output / "results" / f"{submission.key}.json",
                submission.fingerprint,
            )
        if finished is None:
            pending.append(submission)
        else:
            results[submission.key] = finished
    return results, pending


def grade_all(
    settings: Settings,
    suite: Suite,
    pending: list[Submission],
    results: dict[str, dict],
) -> None:
    """Grade ``pending`` in parallel and write each result file as soon as it is ready."""
    with (
        ThreadPoolExecutor(max_workers=settings.workers) as pool,
        tqdm(total=len(pending), unit="submission") as progress,
    ):
        futures = {
            pool.submit(grade_safely, settings, suite, submission): submission
            for submission in pending
        }
        try:
            collect_results(settings, futures, results, progress)
        except KeyboardInterrupt:
            # The submissions being graded finish (and clean up) first; the rest waits.
            for future in futures:
                future.cancel()
            print(
                "Interrupted: the finished results are saved; run the same command "
                "again to grade the rest.",
                file=sys.stderr,
            )
            raise


def collect_results(settings: Settings, futures: dict, results: dict, progress) -> None:
    """Write each result file as soon as its submission is graded."""
    for future in as_completed(futures):
        submission = futures[future]
        result = future.result()
        write_atomically(
            settings.output / "results" / f"{submission.key}.json",
            json.dumps(result, indent=2, ensure_ascii=False) + "\n",
        )
        results[submission.key] = result
        progress.update()
        progress.set_postfix_str(f"{submission.student}: {result['status']}")


def start_fork_server(settings: Settings) -> ForkServer | None:
    """Start the fork server, or return None (with a warning) where it cannot run."""
    if not settings.namespaces or os.getuid() != 0:
        return None
    try:
        return ForkServer(settings.python, settings.workers)
    except (OSError, ValueError) as error:
        print(
            f"Warning: the fork server failed to start ({error}); every submission "
            "starts a fresh Python instead, which takes a few seconds longer.",
            file=sys.stderr,
        )
        return None


def main(argv: list[str] | None = None) -> int:
    if not sys.platform.startswith("linux"):
        print("Batch grading needs Linux (namespaces and resource limits).")
        return 1
    args = parse_arguments(argv)
    if args.output.exists() and not args.output.is_dir():
        print(
            f"error: --output {args.output} is a file; give a folder for the gradebook "
            "(it is created if missing)",
            file=sys.stderr,
        )
        return 2
    # SIGTERM ends the batch like Ctrl-C, so the temporary folders are removed.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    settings = Settings(
        output=args.output.resolve(),
        workers=args.workers,
        force=args.force,
        timeout=args.timeout,
        memory_mb=args.memory_mb,
    )
    settings.namespaces = namespaces_available()
    suite = collect_suite(settings.python)
    submissions = find_submissions(args.submissions)
    results, pending = split_finished(settings, suite, submissions)
    print(
        f"{len(submissions)} submissions, {len(submissions) - len(pending)} already "
        f"graded, {len(pending)} to grade with {settings.workers} workers.",
        flush=True,
    )
    if pending and not args.no_fork_server:
        settings.server = start_fork_server(settings)
    try:
        grade_all(settings, suite, pending, results)
    finally:
        if settings.server is not None:
            settings.server.close()
    for submission in submissions:
        write_atomically(
            settings.output / "feedback" / f"{submission.key}.md",
            feedback_markdown(results[submission.key]),
        )
    write_gradebook(settings.output, suite, list(results.values()))
    print(f"Gradebook written to {settings.output / 'gradebook.csv'}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
