"""Check a saved model file before anyone's code loads it, and explain what is wrong with it."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import torch

from mnist_course.errors import CourseError
from mnist_course.model import MnistNet

DEFAULT_MODEL_PATH = Path("models") / "mnist_cnn.pt"


def check_model_file(path: Path) -> dict[str, torch.Tensor]:
    """Return the state_dict in ``path`` after checking that it fits :class:`MnistNet`.

    The file is read with ``torch.load(..., weights_only=True)``, so nothing in it runs.

    Raises:
        CourseError: the file is missing, damaged, a pickled model object instead of a
            state_dict, or the weights of another architecture.
    """
    path = Path(path)
    train_hint = "Train a model first with `python -m mnist_course train`."
    if not path.is_file():
        raise CourseError(f"Model file {path} not found. {train_hint}")
    # torch.save writes a zip archive, so anything else is damaged or another kind of file.
    if not zipfile.is_zipfile(path):
        raise CourseError(
            f"Model file {path} is damaged or not a PyTorch file (not a torch.save archive). "
            f"{train_hint}"
        )
    try:
        state_dict = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise CourseError(
            f"Model file {path} is not a state_dict: it contains pickled objects that "
            f"torch.load(..., weights_only=True) does not load. Save the weights with "
            f"torch.save(model.state_dict(), path), not the model object."
        ) from err
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as err:
        raise CourseError(
            f"Model file {path} is damaged or not a PyTorch file ({err}). {train_hint}"
        ) from err

    if not isinstance(state_dict, dict) or not all(
        isinstance(key, str) and isinstance(value, torch.Tensor)
        for key, value in state_dict.items()
    ):
        raise CourseError(
            f"Model file {path} contains a {type(state_dict).__name__}, not a state_dict "
            f"(a dict of parameter names to tensors). Save it with "
            f"torch.save(model.state_dict(), path)."
        )
    try:
        MnistNet().load_state_dict(state_dict)
    except RuntimeError as err:
        details = " ".join(line.strip() for line in str(err).splitlines()[1:])
        raise CourseError(
            f"Model file {path} holds weights of another architecture, not MnistNet "
            f"({details[:300]}). {train_hint}"
        ) from err
    return state_dict
