"""Hidden checks of Task 3 (exercises/classify.py): a photographed page, edge-case inputs.

Student code runs behind the ``student`` fixture (grading/student.py) and hands back plain
data. The observers below run next to student code: one saves a photo as a JPEG file and
preprocesses that file, one gives the student's predict or classify a fresh copy of the
reference model. They return what the student's functions returned and decide nothing.
The test functions judge that data with their own computation: their own copy of the
reference model labels every preprocessed tensor and predicted image.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from grading.checks import label_of, load_reference_model
from grading.harness import as_tensor, call, check
from grading.plain import is_tuple, type_name
from mnist_course.model import MnistNet

TASK = "Task 3: classification"
pytestmark = pytest.mark.hidden

SAMPLE_COUNT = 10
MIN_AGREEING = 9
"""Of SAMPLE_COUNT digits, how many must keep their label. The public checks use the same
limit."""
PAPER = np.array([214, 208, 196], dtype=np.float32)
"""Off-white paper, as a phone photo of a page shows it."""
INK = np.array([24, 36, 110], dtype=np.float32)
"""Dark blue ballpoint ink."""


def preprocess_jpeg(implementation, image: Image.Image, name: str, quality: int):
    """Observer: save ``image`` as the JPEG file ``name`` and preprocess that file."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        image.save(path, quality=quality)
        return call(implementation.classify.preprocess_image, path)


def with_reference(implementation, function: str, images):
    """Observer: call the student's ``function`` (predict or classify) with a fresh
    reference model and ``images``."""
    model = load_reference_model()
    return call(getattr(implementation.classify, function), model, images)


@pytest.fixture(scope="module")
def reference_model() -> MnistNet:
    """The judge's own copy of the reference model. Student code never receives it."""
    return load_reference_model()


def as_preprocessed(result, what: str) -> torch.Tensor:
    tensor = as_tensor(result, f"preprocess_image({what})")
    check(
        tuple(tensor.shape) == (1, 28, 28),
        f"a tensor of shape (1, 28, 28) for {what}",
        f"shape {tuple(tensor.shape)}",
    )
    return tensor.to(torch.float32)


def photographed(digit: np.ndarray) -> Image.Image:
    """Draw an MNIST digit three times larger in blue ink on a 150x120 sheet of paper."""
    big = Image.fromarray(digit).resize((84, 84), Image.Resampling.BICUBIC)
    ink = np.zeros((120, 150), dtype=np.float32)
    ink[12:96, 50:134] = np.asarray(big, dtype=np.float32) / 255.0
    ink = np.clip(ink, 0.0, 1.0)[..., None]
    pixels = PAPER * (1.0 - ink) + INK * ink
    return Image.fromarray(np.rint(pixels).astype(np.uint8), mode="RGB")


@pytest.mark.points(3)
def test_hidden_photographed_page(student, reference_model, mnist_test):
    agreeing, misses = 0, []
    for index in range(SAMPLE_COUNT):
        digit = mnist_test.data[index].numpy()
        plain = label_of(
            reference_model,
            as_preprocessed(
                student.call("classify.preprocess_image", Image.fromarray(digit)),
                "an MNIST image",
            ),
        )
        photo = label_of(
            reference_model,
            as_preprocessed(
                student.run(
                    preprocess_jpeg, photographed(digit), f"photo_{index}.jpg", 85
                ),
                "a JPEG of blue ink on off-white paper",
            ),
        )
        agreeing += plain == photo
        if plain != photo:
            misses.append(f"{plain} became {photo}")
    check(
        agreeing >= MIN_AGREEING,
        f"JPEG files of blue ink on off-white paper, the digit off-centre, to keep their "
        f"labels ({MIN_AGREEING} of {SAMPLE_COUNT} at least)",
        f"{agreeing} of {SAMPLE_COUNT} ({', '.join(misses)})",
        "the paper's grey level left in as faint ink, or colour fed to the model",
        "convert to grayscale, invert by the border, subtract the background level",
    )


@pytest.mark.points(2)
def test_hidden_single_image_and_empty_list(student, reference_model, mnist_test):
    image = mnist_test.images[0, 0].clone()
    expected = label_of(reference_model, image.unsqueeze(0))
    result = student.run(with_reference, "predict", image)
    check(
        (is_tuple(result) or isinstance(result, list)) and len(result) == 2,
        "(digits, probabilities)",
        type_name(result),
    )
    digits = as_tensor(result[0], "digits")
    check(
        tuple(digits.shape) == (1,) and int(digits[0]) == expected,
        f"one digit ({expected}) for one image of shape (28, 28), without a channel dim",
        f"digits {digits.tolist()} of shape {tuple(digits.shape)}",
        None,
        "reshape a (28, 28) image to (1, 1, 28, 28) before the model",
    )

    predictions = student.run(with_reference, "classify", [])
    check(
        predictions == [],
        "an empty list of predictions for an empty list of images",
        repr(predictions),
        None,
        "return [] before stacking: torch.stack cannot stack an empty list",
    )
