"""A pytest plugin that batch grading loads next to the grading suite, in the checks process.

The batch grader loads it with ``-p batch_grade_plugin`` from a copy in a temporary folder
to collect the suite, and ``instructor/graded_run.py`` passes it to ``pytest.main``. It:

* streams one JSON line per event to the file descriptor given by ``--batch-result-fd``.
  The events are ``collected`` (the tests with their task and points), ``start`` before
  each test, ``result`` with the grading suite's own record after each test, and
  ``finished`` at the end. The batch grader reads the pipe as it fills, so a process that
  dies in the middle still leaves the results of the tests before;
* deselects the node ids listed in the JSON file given by ``--batch-skip``, which lets the
  batch grader continue after a test that ended the process.

Student code never runs in this process (see ``instructor/graded_run.py``), so it can
neither write to the pipe nor change what the checks compare with.
"""

from __future__ import annotations

import json
import os
import sys
import time

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("batch grading")
    group.addoption(
        "--batch-result-fd",
        type=int,
        default=None,
        help="file descriptor to stream the results to, one JSON object a line",
    )
    group.addoption(
        "--batch-skip",
        default=None,
        metavar="FILE",
        help="JSON file with a list of node ids not to run",
    )


class BatchReporter:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.descriptor = config.getoption("--batch-result-fd")
        self.results_key = None
        self.reported = 0
        self.write = os.write
        self.dumps = json.dumps
        self.started = time.perf_counter()

    def send(self, event: dict) -> None:
        if self.descriptor is None:
            return
        data = (self.dumps(event) + "\n").encode()
        while data:
            written = self.write(self.descriptor, data)
            data = data[written:]

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.started = time.perf_counter()
        conftest = sys.modules.get("grading.conftest")
        if conftest is not None:
            self.results_key = getattr(conftest, "RESULTS", None)

    def pytest_collection_modifyitems(
        self, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        skip_file = config.getoption("--batch-skip")
        if not skip_file:
            return
        with open(skip_file, encoding="utf-8") as file:
            skipped = set(json.load(file))
        kept = [item for item in items if item.nodeid not in skipped]
        deselected = [item for item in items if item.nodeid in skipped]
        if deselected:
            config.hook.pytest_deselected(items=deselected)
        items[:] = kept

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        tests = []
        for item in session.items:
            marker = item.get_closest_marker("points")
            tests.append(
                {
                    "nodeid": item.nodeid,
                    "task": getattr(item.module, "TASK", "Other"),
                    "test": item.name,
                    "points": float(marker.args[0]) if marker else 0.0,
                }
            )
        self.send({"event": "collected", "tests": tests})

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        self.send({"event": "start", "nodeid": nodeid})

    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        results = (
            self.config.stash.get(self.results_key, []) if self.results_key else []
        )
        new = results[self.reported :]
        self.reported = len(results)
        record = new[-1] if new else None
        self.send({"event": "result", "nodeid": nodeid, "record": record})

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        seconds = time.perf_counter() - self.started
        self.send(
            {"event": "finished", "exitstatus": int(exitstatus), "seconds": seconds}
        )


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(BatchReporter(config), "batch-reporter")
