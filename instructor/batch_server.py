"""A fork server for batch grading: import torch and pytest once, fork one graded run each.

    python -m instructor.batch_server FD [FD ...]

Linux only, run as root. Starting Python, importing torch and pytest takes several seconds,
which every submission would pay again in a fresh process. This server imports them once,
without running any torch operation (so no thread pool exists yet), then serves requests on
the given file descriptors, each one end of a ``SOCK_SEQPACKET`` socket pair. The grading
suite itself, ``grading/``, is not imported here: each run imports and collects it afresh.

Protocol, one JSON message per packet:

* request: ``{"config": ...}`` with two file descriptors attached: the write ends of the
  result pipe and of the output pipe. ``config`` is the configuration of
  ``instructor/sandbox.py`` with ``pytest_args`` in place of ``command``;
* first reply: ``{"pid": PID}``, the process whose process group the grader kills on a
  timeout;
* second reply: ``{"pid": PID, "exit_code": CODE}`` when that process has ended (128 + the
  signal number if a signal ended it).

Each run is forked twice, as ``instructor/sandbox.py`` does: the first child closes every
descriptor of the server, starts a new session and enters the namespaces; the second child
is process 1 of the new PID namespace and runs :func:`instructor.graded_run.run_checks`,
which forks the spawner of student processes and runs the checks as the sandbox user.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import select
import socket
import sys

from instructor import sandbox

RESULT_DESCRIPTOR = 3
"""The descriptor number of the result pipe in the graded process."""


PRELOADED_MODULES = (
    "numpy",
    "PIL.Image",
    "matplotlib",
    "torch",
    "torchvision",
    "pytest",
    "mnist_course.contracts",
    "mnist_course.data",
    "mnist_course.images",
    "mnist_course.implementation",
    "mnist_course.model",
    "instructor.batch_plugin",
    "instructor.graded_run",
)
"""Modules every graded run imports."""


def preload() -> None:
    """Import the libraries that every graded run needs."""
    for name in PRELOADED_MODULES:
        importlib.import_module(name)


def run_graded(config: dict) -> int:
    """Run the checks in the current process, process 1 of the sandbox; return pytest's code."""
    from instructor import graded_run

    return graded_run.run_checks(config, namespaced=True)


def graded_child(config: dict, descriptors: list[int]) -> None:
    """Set up the descriptors and namespaces of one run and wait for it; never returns."""
    code = 125
    try:
        result_descriptor, output_descriptor = descriptors
        os.setsid()
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(output_descriptor, 1)
        os.dup2(output_descriptor, 2)
        os.dup2(result_descriptor, RESULT_DESCRIPTOR)
        # The server's sockets must not reach student code: through them it could ask
        # for a run as root with any configuration.
        os.closerange(RESULT_DESCRIPTOR + 1, os.sysconf("SC_OPEN_MAX"))
        sandbox.enter_sandbox(config)
        pid = os.fork()
        if pid == 0:
            try:
                code = run_graded(config)
            except (
                BaseException
            ) as error:  # Report, then end the process without cleanup.
                print(f"sandbox error: {error}", file=sys.stderr, flush=True)
                code = 125
            finally:
                with contextlib.suppress(BaseException):
                    sys.stdout.flush()
                    sys.stderr.flush()
                os._exit(code)
        code = sandbox.wait_for(pid)
    except BaseException as error:  # Report any setup failure, then end the child.
        with contextlib.suppress(BaseException):
            print(f"sandbox error: {error}", file=sys.stderr, flush=True)
    finally:
        os._exit(code)


def send(channel: socket.socket, message: dict) -> None:
    with contextlib.suppress(OSError):
        channel.send(json.dumps(message).encode())


def serve(channels: list[socket.socket]) -> None:
    """Serve requests until every channel is closed by the batch grader."""
    running: dict[int, socket.socket] = {}
    open_channels = list(channels)
    while open_channels or running:
        readable, _, _ = select.select(open_channels, [], [], 0.1)
        for channel in readable:
            try:
                message, descriptors, _, _ = socket.recv_fds(channel, 1 << 20, 2)
            except OSError:
                message, descriptors = b"", []
            if not message:
                open_channels.remove(channel)
                continue
            config = json.loads(message)["config"]
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                graded_child(config, descriptors)
            for descriptor in descriptors:
                os.close(descriptor)
            running[pid] = channel
            send(channel, {"pid": pid})
        reap(running)


def reap(running: dict[int, socket.socket]) -> None:
    while running:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        channel = running.pop(pid, None)
        if channel is not None:
            code = os.waitstatus_to_exitcode(status)
            send(channel, {"pid": pid, "exit_code": 128 - code if code < 0 else code})


def main() -> int:
    channels = [
        socket.socket(fileno=int(argument)) for argument in sys.argv[1:] if argument
    ]
    preload()
    for channel in channels:
        send(channel, {"ready": True})
    serve(channels)
    return 0


if __name__ == "__main__":
    sys.exit(main())
