"""Load an implementation of the exercise: ``solutions/``, ``exercises/`` or any folder like them.

An implementation is a folder with ``metrics.py``, ``training.py`` and ``classify.py``. It is
imported as a package under a private name, so that its modules can import each other with
relative imports (``from .metrics import precision_recall_f1``) and two implementations can be
loaded side by side.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.machinery
import re
import sys
from pathlib import Path
from types import ModuleType

from mnist_course.errors import CourseError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MODULES = ("metrics", "training", "classify")
NAMED_IMPLEMENTATIONS = ("solutions", "exercises")


def resolve_implementation(spec: str | Path) -> Path:
    """Turn ``solutions``, ``exercises`` or a folder path into the folder of an implementation."""
    spec_text = str(spec)
    if spec_text in NAMED_IMPLEMENTATIONS:
        folder = PROJECT_ROOT / spec_text
    else:
        folder = Path(spec_text).expanduser().resolve()
    if not folder.is_dir():
        raise CourseError(
            f"Implementation folder {folder} not found. Pass --impl solutions, --impl "
            f"exercises, or the path of a folder laid out like exercises/."
        )
    missing = [name for name in MODULES if not (folder / f"{name}.py").is_file()]
    if missing:
        raise CourseError(
            f"Implementation folder {folder} is missing "
            + ", ".join(f"{name}.py" for name in missing)
            + ". It must be laid out like exercises/."
        )
    return folder


def load_implementation(spec: str | Path) -> ModuleType:
    """Import an implementation and return its package, with the three modules as attributes.

    Errors raised while importing the implementation's own code (a SyntaxError, say) propagate
    unchanged, so the student sees the traceback of their own file.
    """
    folder = resolve_implementation(spec)
    digest = hashlib.sha1(str(folder).encode()).hexdigest()[:12]
    package_name = "_implementation_" + re.sub(r"\W", "_", folder.name) + "_" + digest
    if package_name in sys.modules:
        return sys.modules[package_name]

    # The package is built by hand, so a folder without __init__.py loads too. Its
    # __init__.py, if any, is not run: only the three modules matter.
    package = ModuleType(package_name, f"Implementation in {folder}")
    package.__path__ = [str(folder)]
    package.__spec__ = importlib.machinery.ModuleSpec(
        package_name, None, is_package=True
    )
    package.__spec__.submodule_search_locations = [str(folder)]
    sys.modules[package_name] = package
    try:
        for name in MODULES:
            setattr(package, name, importlib.import_module(f"{package_name}.{name}"))
    except BaseException:
        for key in [k for k in sys.modules if k.split(".")[0] == package_name]:
            del sys.modules[key]
        raise
    return package
