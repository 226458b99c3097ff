"""One graded run of batch grading: the checks in one process, student code in another.

Linux only. :func:`run_checks` runs in process 1 of a submission's sandbox (set up by
``instructor/batch_server.py`` or ``instructor/sandbox.py``), still as root:

1. It forks the spawner, which keeps root and starts student processes on request.
2. It drops to the sandbox user and runs ``pytest grading/`` with the batch plugin. This
   process never imports the submission: the ``student`` fixture of the grading suite is a
   :class:`grading.student.RemoteStudent`, and every value that student code computes
   arrives as a JSON message of plain data. The results go to the batch grader through a
   pipe that no student process holds.

Each student process is started by the spawner. It enters a PID and a mount namespace of
its own, so the checks process is out of its reach, and an empty tmpfs covers the checks'
folder (``checks_folder``). It drops to the sandbox user, sets the resource limits, keeps
only its two pipes and serves requests with :func:`grading.student.serve`. When it ends or
hangs, the checks ask the spawner to kill it and start a fresh one for the next check.
Where the batch grader found no namespaces (``allow_fallback`` in the configuration),
student processes are plain children of the spawner, without any of this isolation.

    python -I -S instructor/sandbox.py CONFIG   # runs: python -m instructor.graded_run CONFIG

Started as a command, the module reads the configuration from its argument and does the
same as the fork server's process 1.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import sys
import tempfile
from pathlib import Path

from instructor import sandbox

STUDENT_REQUESTS = 3
STUDENT_REPLIES = 4
"""Descriptor numbers of the request and reply pipes in a student process."""


class Spawner:
    """The checks' side of the spawner: ask for a student process, or for its end."""

    def __init__(self, channel: socket.socket) -> None:
        self.channel = channel

    def spawn(self):
        from grading.student import StudentProcess

        requests_read, requests_write = os.pipe()
        replies_read, replies_write = os.pipe()
        try:
            socket.send_fds(
                self.channel, [b'{"spawn": true}'], [requests_read, replies_write]
            )
            reply = json.loads(self.channel.recv(4096) or b"{}")
        finally:
            os.close(requests_read)
            os.close(replies_write)
        pid = reply.get("pid")
        if type(pid) is not int:
            os.close(requests_write)
            os.close(replies_read)
            raise OSError("the spawner could not start a student process")
        return StudentProcess(requests_write, replies_read, lambda: self.kill(pid))

    def kill(self, pid: int) -> None:
        self.channel.send(json.dumps({"kill": pid}).encode())


class RemoteStudentPlugin:
    """A pytest plugin that makes the grading suite run student code through ``spawner``."""

    def __init__(self, spawner: Spawner) -> None:
        self.spawner = spawner

    def pytest_configure(self, config) -> None:
        from grading.student import REMOTE_STUDENT, RemoteStudent

        config.stash[REMOTE_STUDENT] = lambda: RemoteStudent(self.spawner.spawn)


def start_student(config: dict, descriptors: list[int], namespaced: bool) -> None:
    """Become one student process (through a child that owns its namespaces); never returns."""
    code = 125
    try:
        if namespaced:
            sandbox.checked(
                sandbox.libc.unshare(sandbox.CLONE_NEWPID | sandbox.CLONE_NEWNS),
                "unshare",
            )
            sandbox.mount(None, "/", None, sandbox.MS_REC | sandbox.MS_PRIVATE)
            sandbox.mount(
                "tmpfs",
                config["checks_folder"],
                "tmpfs",
                sandbox.MS_NOSUID | sandbox.MS_NODEV,
                "size=1m,mode=700",
            )
            # The folders that student code may write to live in memory, with a size
            # limit, so a submission cannot fill the host's disk.
            for folder in (config["env"]["HOME"], config["env"]["TMPDIR"]):
                sandbox.mount(
                    "tmpfs",
                    folder,
                    "tmpfs",
                    sandbox.MS_NOSUID | sandbox.MS_NODEV,
                    f"size={config['student_folder_bytes']},mode=700,"
                    f"uid={config['uid']},gid={config['gid']}",
                )
        pid = os.fork()
        if pid == 0:
            serve_student(config, descriptors, namespaced)
        code = sandbox.wait_for(pid)
    except BaseException as error:  # Report any setup failure, then end the child.
        with contextlib.suppress(BaseException):
            print(f"sandbox error: {error}", file=sys.stderr, flush=True)
    finally:
        os._exit(code)


def serve_student(config: dict, descriptors: list[int], namespaced: bool) -> None:
    """Set up the student process and serve the checks' requests; never returns."""
    code = 125
    try:
        # Move the pipes to fixed numbers, then close everything else, the spawner's
        # socket included: through it student code could ask root to kill a process.
        high = [os.dup(descriptor) for descriptor in descriptors]
        os.dup2(high[0], STUDENT_REQUESTS)
        os.dup2(high[1], STUDENT_REPLIES)
        os.closerange(STUDENT_REPLIES + 1, os.sysconf("SC_OPEN_MAX"))
        sandbox.enter_child(
            {**config, "workdir": config["student_folder"]}, namespaced=namespaced
        )
        os.environ.clear()
        os.environ.update(config["env"])
        tempfile.tempdir = None
        from grading.student import serve

        serve(STUDENT_REQUESTS, STUDENT_REPLIES, Path(config["submission"]))
        code = 0
    except BaseException as error:  # Report, then end the process without cleanup.
        with contextlib.suppress(BaseException):
            print(f"student process error: {error}", file=sys.stderr, flush=True)
    finally:
        with contextlib.suppress(BaseException):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def serve_spawns(channel: socket.socket, config: dict, namespaced: bool) -> None:
    """Start and kill student processes as the checks ask; return when they hang up."""
    started: set[int] = set()
    while True:
        readable, _, _ = select.select([channel], [], [], 0.5)
        reap(started)
        if not readable:
            continue
        try:
            message, descriptors, _, _ = socket.recv_fds(channel, 4096, 2)
        except OSError:
            return
        if not message:
            return
        request = json.loads(message)
        if request.get("spawn") and len(descriptors) == 2:
            pid = os.fork()
            if pid == 0:
                channel.close()
                start_student(config, descriptors, namespaced)
            started.add(pid)
            channel.send(json.dumps({"pid": pid}).encode())
        elif request.get("kill") in started:
            with contextlib.suppress(ProcessLookupError):
                os.kill(request["kill"], signal.SIGKILL)
        for descriptor in descriptors:
            os.close(descriptor)


def reap(started: set[int]) -> None:
    while started:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        started.discard(pid)


def run_checks(config: dict, namespaced: bool) -> int:
    """Fork the spawner, then run the checks as the sandbox user; return pytest's code.

    ``namespaced`` is True when this process is process 1 of a sandbox's namespaces. Then
    its ``/proc`` is mounted here, unless ``config["proc_mounted"]`` is True.
    """
    import pytest

    import instructor.batch_plugin

    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        run_spawner(theirs, config, namespaced)
    theirs.close()
    checks_folder = config["checks_folder"]
    sandbox.enter_child(
        {**config, "workdir": checks_folder},
        namespaced=namespaced and not config.get("proc_mounted"),
    )
    os.environ.clear()
    os.environ.update(config["env"])
    os.environ.update({"HOME": checks_folder, "TMPDIR": checks_folder})
    tempfile.tempdir = None
    sys.argv = ["pytest"]
    plugins = [instructor.batch_plugin, RemoteStudentPlugin(Spawner(ours))]
    return int(pytest.main(config["pytest_args"], plugins=plugins))


def run_spawner(channel: socket.socket, config: dict, namespaced: bool) -> None:
    """Serve spawn requests as root until the checks process ends; never returns."""
    code = 0
    try:
        # The result pipe and every other descriptor of the checks stay with the checks.
        keep = channel.fileno()
        os.closerange(3, keep)
        os.closerange(keep + 1, os.sysconf("SC_OPEN_MAX"))
        sandbox.libc.prctl(sandbox.PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        serve_spawns(channel, config, namespaced)
    except BaseException as error:  # Report, then end the spawner.
        with contextlib.suppress(BaseException):
            print(f"spawner error: {error}", file=sys.stderr, flush=True)
        code = 125
    os._exit(code)


def main() -> int:
    """Run the checks of one submission as the command of ``instructor/sandbox.py``."""
    config = json.loads(sys.argv[1])
    return run_checks(config, namespaced=not config.get("allow_fallback"))


if __name__ == "__main__":
    sys.exit(main())
