"""Benchmark the project's jobs: each measurement is the median of several runs.

    python benchmarks/benchmark.py [--runs 3] [MEASUREMENT ...]

Measurements:
    training   the main job's training of the reference on the full MNIST: training seconds
               (fit() only), wall seconds of the whole command, final macro F1
    grading    `pytest grading/ --impl solutions`: wall seconds and the points it gives
    batch      `python -m instructor.batch_grade` on 10 copies of the reference, with 1 and
               with 2 workers, and with 2 workers and --no-fork-server: submissions per
               minute, parallel efficiency (speedup divided by the workers), the overhead
               per submission (wall time minus pytest's own session time) and the cost of
               the separate student processes (session time against the same checks in one
               process); needs Linux and root for the sandbox

Every run is a fresh process, as a student or the grader would start it. Timings vary with
the load on the machine, which is why they live here and not in timed tests.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def measure_training(runs: int) -> dict[str, float]:
    seconds, walls, scores = [], [], []
    for run in range(1, runs + 1):
        with tempfile.TemporaryDirectory() as folder:
            model_path = Path(folder) / "model.pt"
            command = [
                sys.executable,
                "-m",
                "mnist_course",
                "train",
                "--impl",
                "solutions",
                "--samples",
                "0",
                "--model-path",
                str(model_path),
                "--report-dir",
                str(Path(folder) / "reports"),
            ]
            started = time.perf_counter()
            subprocess.run(
                command,
                cwd=ROOT,
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            walls.append(time.perf_counter() - started)
            summary = json.loads(model_path.with_suffix(".json").read_text())
        seconds.append(summary["training_seconds"])
        scores.append(summary["history"][-1]["f1"])
        print(
            f"  training run {run}/{runs}: {seconds[-1]:.1f} s training, "
            f"{walls[-1]:.1f} s wall, macro F1 {scores[-1]:.4f}",
            flush=True,
        )
    return {
        "training_seconds_median": statistics.median(seconds),
        "command_wall_seconds_median": statistics.median(walls),
        "final_macro_f1_median": statistics.median(scores),
        "final_macro_f1_min": min(scores),
    }


def grading_command(*options: str) -> list[str]:
    """Return the command of `pytest grading/ --impl solutions -q` with ``options``."""
    return [
        sys.executable,
        "-m",
        "pytest",
        "grading/",
        "--impl",
        "solutions",
        *options,
        "-q",
        "-p",
        "no:cacheprovider",
    ]


def measure_grading(runs: int) -> dict[str, float]:
    """Time `pytest grading/ --impl solutions` in a fresh process, from start to exit."""
    walls, totals = [], []
    for run in range(1, runs + 1):
        with tempfile.TemporaryDirectory() as folder:
            report = Path(folder) / "points.json"
            command = grading_command("--grade-json", str(report))
            started = time.perf_counter()
            subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
            walls.append(time.perf_counter() - started)
            totals.append(json.loads(report.read_text())["total"])
        print(
            f"  grading run {run}/{runs}: {walls[-1]:.1f} s wall, {totals[-1]:g} points",
            flush=True,
        )
    return {
        "grading_wall_seconds_median": statistics.median(walls),
        "points_min": min(totals),
    }


def measure_nbgrader(runs: int) -> dict[str, float]:
    """Time `nbgrader autograde` of the reference notebook in a copy of nbgrader_course/."""
    import os
    import shutil

    from nbgrader.api import Gradebook

    course_dir = ROOT / "nbgrader_course"
    notebook = Path("source") / "mnist_pytorch" / "mnist_pytorch.ipynb"
    walls, scores = [], []
    for run in range(1, runs + 1):
        with tempfile.TemporaryDirectory() as folder:
            course = Path(folder) / "course"
            course.mkdir()
            shutil.copy(course_dir / "nbgrader_config.py", course)
            shutil.copytree(course_dir / "source", course / "source")
            env = {
                **os.environ,
                # nbgrader runs the `alembic` command of its environment.
                "PATH": os.pathsep.join(
                    [str(Path(sys.executable).parent), os.environ["PATH"]]
                ),
                "MNIST_COURSE_ROOT": str(ROOT),
                "JUPYTER_CONFIG_DIR": str(Path(folder) / "jupyter-config"),
                "IPYTHONDIR": str(Path(folder) / "ipython"),
            }
            nbgrader = [sys.executable, "-m", "nbgrader"]
            subprocess.run(
                [*nbgrader, "generate_assignment"],
                cwd=course,
                env=env,
                check=True,
                capture_output=True,
            )
            submitted = course / "submitted" / "reference" / "mnist_pytorch"
            submitted.mkdir(parents=True)
            shutil.copy(course / notebook, submitted)
            started = time.perf_counter()
            subprocess.run(
                [*nbgrader, "autograde"],
                cwd=course,
                env=env,
                check=True,
                capture_output=True,
            )
            walls.append(time.perf_counter() - started)
            with Gradebook(
                f"sqlite:///{course / 'gradebook.db'}", "mnist-pytorch"
            ) as gradebook:
                scores.append(
                    gradebook.find_submission("mnist_pytorch", "reference").score
                )
        print(
            f"  nbgrader run {run}/{runs}: autograde {walls[-1]:.1f} s wall, "
            f"{scores[-1]:g} points",
            flush=True,
        )
    return {
        "autograde_wall_seconds_median": statistics.median(walls),
        "autograde_points_min": min(scores),
    }


BATCH_SUBMISSIONS = 10
BATCH_WORKERS = (1, 2)


def run_batch(workers: int, options: list[str]) -> tuple[float, list[dict]]:
    """Grade BATCH_SUBMISSIONS copies of the reference; return the wall time and results."""
    import shutil

    with tempfile.TemporaryDirectory() as folder:
        submissions = Path(folder) / "submissions"
        for number in range(1, BATCH_SUBMISSIONS + 1):
            copy = submissions / f"reference_{number:02d}"
            copy.mkdir(parents=True)
            for name in ("__init__.py", "metrics.py", "training.py", "classify.py"):
                shutil.copy(ROOT / "solutions" / name, copy / name)
        output = Path(folder) / "grades"
        command = [
            sys.executable,
            "-m",
            "instructor.batch_grade",
            str(submissions),
            "--output",
            str(output),
            "--workers",
            str(workers),
            *options,
        ]
        started = time.perf_counter()
        subprocess.run(
            command,
            cwd=ROOT,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wall = time.perf_counter() - started
        results = [
            json.loads(path.read_text())
            for path in sorted((output / "results").glob("*.json"))
        ]
    return wall, results


def in_process_session_seconds() -> float:
    """Return pytest's session time of `pytest grading/ --impl solutions --hidden`.

    There the checks run student code in their own process, so the difference to a batch
    run's session time is the cost of the separate student processes.
    """
    import os
    import re

    completed = subprocess.run(
        grading_command("--hidden"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    return float(re.findall(r" in ([0-9.]+)s", completed.stdout)[-1])


def measure_batch(runs: int) -> dict[str, float]:
    """Time `python -m instructor.batch_grade` on copies of the reference.

    The per-submission overhead is a submission's wall time minus the time pytest itself
    reports for its session: starting the sandbox (and Python, torch and pytest where no
    fork server is used) and collecting the suite. Starting student processes and sending
    plain data to and fro happens within the session. So the boundary cost is the batch
    session time minus that of the same checks run in one process, with one thread as in
    the sandbox. The last series starts a fresh Python for every submission
    (--no-fork-server), for comparison.
    """
    sessions = [in_process_session_seconds() for _ in range(runs)]
    print(f"  in-process session seconds: {sessions}", flush=True)
    figures: dict[str, float] = {
        "in_process_session_seconds_median": statistics.median(sessions)
    }
    series = [(workers, "", []) for workers in BATCH_WORKERS]
    series.append((BATCH_WORKERS[-1], "_no_fork_server", ["--no-fork-server"]))
    rates: dict[int, float] = {}
    for workers, label, options in series:
        per_minute, overheads, totals, batch_sessions = [], [], [], []
        for run in range(1, runs + 1):
            wall, results = run_batch(workers, options)
            per_minute.append(BATCH_SUBMISSIONS / wall * 60)
            overheads += [
                result["seconds"]["wall"] - result["seconds"]["pytest"]
                for result in results
            ]
            totals += [result["total"] for result in results]
            batch_sessions += [result["seconds"]["pytest"] for result in results]
            print(
                f"  batch run {run}/{runs}, {workers} workers{label.replace('_', ' ')}: "
                f"{wall:.1f} s wall for {BATCH_SUBMISSIONS} submissions, "
                f"{per_minute[-1]:.2f} per minute",
                flush=True,
            )
        name = f"{workers}_workers{label}"
        if not label:
            rates[workers] = statistics.median(per_minute)
        figures[f"submissions_per_minute_{name}_median"] = statistics.median(per_minute)
        figures[f"overhead_seconds_per_submission_{name}_median"] = statistics.median(
            overheads
        )
        figures[f"session_seconds_{name}_median"] = statistics.median(batch_sessions)
        figures[f"boundary_seconds_per_submission_{name}_median"] = statistics.median(
            batch_sessions
        ) - statistics.median(sessions)
        figures[f"points_min_{name}"] = min(totals)
    for workers in BATCH_WORKERS[1:]:
        speedup = rates[workers] / rates[BATCH_WORKERS[0]]
        figures[f"parallel_efficiency_{workers}_workers"] = speedup / workers
    return figures


MEASUREMENTS = {
    "training": measure_training,
    "grading": measure_grading,
    "nbgrader": measure_nbgrader,
    "batch": measure_batch,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "measurements",
        nargs="*",
        metavar="MEASUREMENT",
        help=f"what to measure: {', '.join(MEASUREMENTS)} (default: all)",
    )
    parser.add_argument("--runs", type=int, default=3, help="runs per measurement")
    args = parser.parse_args()
    unknown = [name for name in args.measurements if name not in MEASUREMENTS]
    if unknown:
        parser.error(
            f"unknown measurement {unknown[0]!r}; choose from {', '.join(MEASUREMENTS)}"
        )
    if args.runs < 1:
        parser.error(f"--runs must be at least 1, got {args.runs}")

    print(f"Python {sys.version.split()[0]}, {args.runs} runs per measurement")
    for name in args.measurements or list(MEASUREMENTS):
        print(f"{name}:", flush=True)
        results = MEASUREMENTS[name](args.runs)
        for key, value in results.items():
            print(f"  {key}: {value:.4g}")


if __name__ == "__main__":
    main()
