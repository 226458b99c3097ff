"""Benchmark the project's jobs: each measurement is the median of several runs.

    python benchmarks/benchmark.py [--runs 3] [MEASUREMENT ...]

Measurements:
    training   the main job's training of the reference on the full MNIST: training seconds
               (fit() only), wall seconds of the whole command, final macro F1
    grading    `pytest grading/ --impl solutions`: wall seconds and the points it gives

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


def measure_grading(runs: int) -> dict[str, float]:
    walls, totals = [], []
    for run in range(1, runs + 1):
        with tempfile.TemporaryDirectory() as folder:
            report = Path(folder) / "points.json"
            command = [
                sys.executable,
                "-m",
                "pytest",
                "grading/",
                "--impl",
                "solutions",
                "--grade-json",
                str(report),
                "-q",
                "-p",
                "no:cacheprovider",
            ]
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


MEASUREMENTS = {"training": measure_training, "grading": measure_grading}


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
