"""A pytest plugin that batch grading loads next to the grading suite, in the graded process.

The batch grader loads it with ``-p batch_grade_plugin`` from a copy in the work folder, or
the fork server passes it to ``pytest.main``. It does three things:

* It streams one JSON line per event to the file descriptor given by ``--batch-result-fd``.
  The events are ``collected`` (the tests with their task and points), ``start`` before
  each test, ``result`` with the grading suite's own record after each test, ``tampered``
  when the guard below restored something, and ``finished`` at the end. The batch grader
  reads the pipe as it fills, so a process that dies in the middle still leaves the results
  of the tests before.
* It deselects the node ids listed in the JSON file given by ``--batch-skip``, which lets the
  batch grader continue after a test that ended the process.
* It guards the functions the checks rely on. After collection, before any student code
  runs, it records the callables of ``builtins``, ``math``, ``operator``, ``json``, ``os``,
  ``fractions``, ``torch``, ``torch.nn.functional``, ``numpy``, the ``grading``, ``_pytest``
  and ``pluggy`` modules and this plugin, and the attributes of ``torch.Tensor`` and
  ``Fraction``. Whatever the import of the implementation or a call through
  ``grading.harness.call`` replaces there (``torch.allclose = ...``) is put back as soon as
  it returns, and anything else changed is put back after each test. So the checks compare
  with the real functions, and a ``tampered`` event names what was replaced.

NOTE: student code runs in this same process, so it can still reach this module, the pipe
and pytest's internals. The guard raises the cost of cheating; it is no security boundary.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

import pytest

GUARDED_MODULES = (
    "builtins",
    "math",
    "operator",
    "json",
    "os",
    "fractions",
    "torch",
    "torch.nn.functional",
    "numpy",
)
GUARDED_MODULE_PREFIXES = ("grading.", "_pytest.", "pluggy.")
_MISSING = object()


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


class Guard:
    """Snapshots of the guarded namespaces, and a way to put a snapshot back."""

    def __init__(self) -> None:
        self.modules: list[Any] = []
        self.classes: list[type] = []
        self.baseline: tuple[list, list] | None = None

    def record(self) -> None:
        """Choose the namespaces to guard and take the baseline snapshot."""
        names = set(GUARDED_MODULES) | {
            name
            for name in list(sys.modules)
            if name.startswith(GUARDED_MODULE_PREFIXES) or name == __name__
        }
        self.modules = [
            sys.modules[name] for name in sorted(names) if name in sys.modules
        ]
        torch = sys.modules.get("torch")
        fractions = sys.modules.get("fractions")
        self.classes = [
            module.Tensor if module is torch else module.Fraction
            for module in (torch, fractions)
            if module is not None
        ]
        self.baseline = self.snapshot()

    def snapshot(self) -> tuple[list, list]:
        modules = [
            {
                key: value
                for key, value in list(vars(module).items())
                if callable(value) and not isinstance(value, type(sys))
            }
            for module in self.modules
        ]
        classes = [dict(vars(cls)) for cls in self.classes]
        return modules, classes

    def restore(self, snapshot: tuple[list, list] | None) -> list[str]:
        """Put back every callable that differs from ``snapshot``; return their names."""
        if snapshot is None:
            return []
        restored = []
        modules, classes = snapshot
        for module, originals in zip(self.modules, modules, strict=True):
            namespace = vars(module)
            for key, value in originals.items():
                if namespace.get(key, _MISSING) is not value:
                    namespace[key] = value
                    restored.append(f"{module.__name__}.{key}")
        for cls, originals in zip(self.classes, classes, strict=True):
            current = dict(vars(cls))
            for key, value in originals.items():
                if current.get(key, _MISSING) is not value:
                    try:
                        setattr(cls, key, value)
                    except (AttributeError, TypeError):
                        continue
                    restored.append(f"{cls.__qualname__}.{key}")
            added = [key for key in current if key not in originals]
            for key in added:
                # Plain data that Python caches on a class (copyreg's __slotnames__) stays.
                value = current[key]
                if not callable(value) and not hasattr(value, "__get__"):
                    continue
                try:
                    delattr(cls, key)
                except (AttributeError, TypeError):
                    continue
                restored.append(f"{cls.__qualname__}.{key}")
        return restored


class BatchReporter:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.descriptor = config.getoption("--batch-result-fd")
        self.guard = Guard()
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

    def restore(self, snapshot) -> None:
        restored = self.guard.restore(snapshot)
        if restored:
            self.send({"event": "tampered", "names": sorted(set(restored))})

    def guarded(self, function):
        """Wrap ``function`` so that whatever it replaces in a guarded namespace is put back."""
        reporter = self

        def wrapper(*args, **kwargs):
            snapshot = reporter.guard.snapshot() if reporter.guard.modules else None
            try:
                return function(*args, **kwargs)
            finally:
                reporter.restore(snapshot)

        wrapper.__name__ = getattr(function, "__name__", "wrapper")
        wrapper.__doc__ = function.__doc__
        wrapper.__wrapped__ = function
        return wrapper

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.started = time.perf_counter()
        # Test modules import call by name while being collected, after this hook.
        harness = sys.modules.get("grading.harness")
        if harness is not None:
            harness.call = self.guarded(harness.call)
        conftest = sys.modules.get("grading.conftest")
        if conftest is not None:
            self.results_key = getattr(conftest, "RESULTS", None)
            if hasattr(conftest, "load_implementation"):
                conftest.load_implementation = self.guarded(
                    conftest.load_implementation
                )

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
        self.guard.record()

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        self.send({"event": "start", "nodeid": nodeid})

    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        # Function-scoped fixtures are torn down by now, so any difference from the
        # baseline comes from student code (a daemon thread, or a method the checks called).
        self.restore(self.guard.baseline)
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
