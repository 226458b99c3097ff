"""Read submissions for batch grading: find them, check zip files, copy the module files.

A submission is a folder or a ``.zip`` file laid out like ``exercises/``; the modules may
also sit in one folder inside it. Zip files are read member by member, never extracted as
a whole, and rejected if a member could land outside the target folder.
"""

from __future__ import annotations

import hashlib
import re
import stat
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
SKELETON = REPOSITORY / "exercises"
MODULE_FILES = ("__init__.py", "metrics.py", "training.py", "classify.py")
REQUIRED_MODULES = ("metrics.py", "training.py", "classify.py")
MAX_MODULE_BYTES = 2 * 2**20
MAX_ZIP_MEMBERS = 2000
MAX_ZIP_BYTES = 100 * 2**20
"""Limits on a zip submission: members, and their total size once uncompressed."""


class SubmissionError(Exception):
    """A submission that cannot be graded; the message is the student's reason."""


@dataclass
class Submission:
    student: str
    key: str
    entries: list[Path]
    fingerprint: str = ""


def safe_key(student: str) -> str:
    """Return a file name for ``student``: letters, digits, ``.``, ``_``, ``-``, ``@``, ``+``."""
    key = re.sub(r"[^\w.@+-]", "_", student).lstrip(".")
    return key or "_"


def find_submissions(folder: Path) -> list[Submission]:
    """List the submissions in ``folder``: each folder and each ``.zip``, by student name."""
    by_student: dict[str, list[Path]] = {}
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith((".", "__MACOSX")):
            continue
        if entry.is_dir() and not entry.is_symlink():
            by_student.setdefault(entry.name, []).append(entry)
        elif (
            entry.suffix.lower() == ".zip"
            and entry.is_file()
            and not entry.is_symlink()
        ):
            by_student.setdefault(entry.stem, []).append(entry)
        else:
            print(
                f"Skipping {entry}: a submission is a folder or a .zip file.",
                file=sys.stderr,
            )
    submissions, keys = [], set()
    for student in sorted(by_student):
        key = safe_key(student)
        while key in keys:
            key += "_"
        keys.add(key)
        submissions.append(Submission(student, key, by_student[student]))
    return submissions


def fingerprint_entry(entry: Path) -> str:
    digest = hashlib.sha256()
    if entry.is_file():
        with entry.open("rb") as file:
            for block in iter(lambda: file.read(2**20), b""):
                digest.update(block)
        return digest.hexdigest()
    for path in sorted(entry.rglob("*")):
        if path.is_file() and not path.is_symlink():
            digest.update(str(path.relative_to(entry)).encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def zip_member_problem(info: zipfile.ZipInfo) -> str:
    """Return why a zip member is unsafe to extract, or an empty string."""
    name = info.filename
    parts = re.split(r"[/\\]", name)
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return f"it contains the absolute path {name!r}"
    if ".." in parts:
        return f"it contains the path {name!r}, which leads out of its folder"
    if stat.S_ISLNK(info.external_attr >> 16):
        return f"it contains the symbolic link {name!r}"
    return ""


def module_folder(names: list[str]) -> str:
    """Return the folder ('' or 'name/') of the module files among the paths ``names``.

    The modules may sit at the top level or in one folder, as when a folder was zipped.
    """
    folders = {}
    for name in names:
        parts = name.split("/")
        if parts[-1] in MODULE_FILES and len(parts) <= 2:
            folder = "/".join(parts[:-1])
            folders.setdefault(folder, set()).add(parts[-1])
    if "" in folders:
        return ""
    found = [f for f in folders if folders[f] & set(REQUIRED_MODULES)]
    if len(found) > 1:
        raise SubmissionError(
            f"the module files appear in several folders ({', '.join(sorted(found))}); "
            "submit one folder laid out like exercises/"
        )
    return found[0] + "/" if found else ""


def read_zip_modules(path: Path) -> dict[str, bytes]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise SubmissionError(
            f"{path.name} is not a valid zip file ({error})"
        ) from None
    with archive:
        members = archive.infolist()
        if len(members) > MAX_ZIP_MEMBERS:
            raise SubmissionError(
                f"{path.name} has {len(members)} files; at most {MAX_ZIP_MEMBERS} are accepted"
            )
        total = sum(info.file_size for info in members)
        if total > MAX_ZIP_BYTES:
            raise SubmissionError(
                f"{path.name} unpacks to {total} bytes; at most {MAX_ZIP_BYTES} are accepted"
            )
        for info in members:
            problem = zip_member_problem(info)
            if problem:
                raise SubmissionError(f"{path.name} was rejected because {problem}")
        files = [info for info in members if not info.is_dir()]
        folder = module_folder([info.filename for info in files])
        modules = {}
        for info in files:
            if info.filename in {folder + name for name in MODULE_FILES}:
                if info.file_size > MAX_MODULE_BYTES:
                    raise SubmissionError(
                        f"{info.filename} is larger than {MAX_MODULE_BYTES} bytes"
                    )
                with archive.open(info) as member:
                    data = member.read(MAX_MODULE_BYTES + 1)
                if len(data) > MAX_MODULE_BYTES:
                    raise SubmissionError(
                        f"{info.filename} is larger than {MAX_MODULE_BYTES} bytes"
                    )
                modules[info.filename.rsplit("/", 1)[-1]] = data
        return modules


def read_folder_modules(path: Path) -> dict[str, bytes]:
    names = [
        str(child.relative_to(path))
        for child in path.glob("*")
        if child.name in MODULE_FILES
    ] + [
        str(child.relative_to(path))
        for child in path.glob("*/*")
        if child.name in MODULE_FILES
    ]
    folder = module_folder(names)
    # The batch grader reads as root, so a link anywhere on the way (the submission itself,
    # its subfolder or a module file) could point at files that the student may not read.
    for link in (path, path / folder):
        if link.is_symlink():
            raise SubmissionError(
                f"{link.name} is a symbolic link; submit the files themselves"
            )
    modules = {}
    for name in MODULE_FILES:
        file = path / (folder + name)
        if not file.exists() and not file.is_symlink():
            continue
        if file.is_symlink() or not file.is_file():
            raise SubmissionError(f"{folder + name} is not a regular file")
        if not file.resolve().is_relative_to(path.resolve()):
            raise SubmissionError(f"{folder + name} lies outside the submission")
        if file.stat().st_size > MAX_MODULE_BYTES:
            raise SubmissionError(
                f"{folder + name} is larger than {MAX_MODULE_BYTES} bytes"
            )
        modules[name] = file.read_bytes()
    return modules


def prepare(submission: Submission, target: Path) -> list[str]:
    """Write the submission's module files into ``target``; return notes for the student.

    Raises :class:`SubmissionError` when there is nothing to grade.
    """
    if len(submission.entries) > 1:
        names = ", ".join(entry.name for entry in submission.entries)
        raise SubmissionError(
            f"there are several submissions named {submission.student} ({names}); "
            "keep only one"
        )
    entry = submission.entries[0]
    modules = read_folder_modules(entry) if entry.is_dir() else read_zip_modules(entry)
    present = [name for name in REQUIRED_MODULES if name in modules]
    if not present:
        raise SubmissionError(
            "no metrics.py, training.py or classify.py found; the submission must be "
            "laid out like exercises/"
        )
    notes = []
    for name in REQUIRED_MODULES:
        if name not in modules:
            modules[name] = (SKELETON / name).read_bytes()
            notes.append(
                f"{name} was missing, so its task was graded as the unchanged exercise."
            )
    target.mkdir(mode=0o755)
    for name, data in modules.items():
        path = target / name
        path.write_bytes(data)
        path.chmod(0o644)
    return notes
