"""Task 3: classification with a trained model (exercises/classify.py), 25 points.

The checks use a model trained by the reference (grading/data/reference_model.pt). Student
code runs behind the ``student`` fixture (grading/student.py) and hands back plain data
(grading/plain.py):

* ``student.call`` calls load_model and preprocess_image with plain arguments;
* the observers below run next to student code. They give the student's predict and
  classify a fresh copy of the reference model, write the image files that classify reads,
  rebuild a palette image that plain data cannot carry, and return what the student's
  functions returned. They decide nothing.

The test functions judge that data with their own computation. They label the student's
preprocessed tensors with their own copy of the reference model, so a mistake in one
function costs points only in its own check. They compare predict's digits and
probabilities with their own softmax of the reference model's logits, and classify's
digits with the MNIST labels.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from grading.checks import (
    REFERENCE_MODEL,
    attempt,
    label_of,
    load_reference_model,
)
from grading.harness import as_float, as_tensor, call, check, feedback
from grading.plain import Opaque, Record, is_tuple, type_name
from grading.student import unpack
from mnist_course.data import MNIST_MEAN, MNIST_STD
from mnist_course.model import MnistNet

TASK = "Task 3: classification"

BACKGROUND = (0 - MNIST_MEAN) / MNIST_STD
"""A black MNIST pixel after normalisation: about -0.4242."""
INVERTED_BACKGROUND = (1 - MNIST_MEAN) / MNIST_STD
"""A white pixel after normalisation, about 2.8215: the background of an uninverted drawing."""
SAMPLE_COUNT = 10
MIN_AGREEING = 9
"""Of SAMPLE_COUNT digits, how many must keep their label after a change of format. The
reference keeps all ten; one is allowed to differ, because a thin digit can change class
after resampling."""


def preprocess_palette_image(implementation, indices: Image.Image, palette: list):
    """Observer: preprocess the palette (P) image with these pixel indices and palette.

    Plain data carries an image's pixels but not its palette, so the check sends both.
    """
    image = indices.copy()
    image.putpalette(palette)
    return call(implementation.classify.preprocess_image, image)


def predict_with_reference(implementation, images: torch.Tensor):
    """Observer: call the student's predict(model, images) with a fresh reference model."""
    return call(implementation.classify.predict, load_reference_model(), images)


def classify_files(implementation, images: list, single: bool, times: int) -> list:
    """Observer: save ``images`` as PNG files and classify them with the reference model.

    Calls classify(model, paths), or classify(model, first path) if ``single``, up to
    ``times`` times with the same model, and stops after a call that fails. Returns one
    :func:`~grading.checks.attempt` per call; the check unpacks each where it judges it.
    """
    model = load_reference_model()
    attempts = []
    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for index, image in enumerate(images):
            paths.append(Path(folder) / f"digit_{index}.png")
            image.save(paths[-1])
        target = paths[0] if single else paths
        for _ in range(times):
            attempts.append(
                attempt(call, implementation.classify.classify, model, target)
            )
            if "value" not in attempts[-1]:
                break
    return attempts


@pytest.fixture(scope="module")
def reference_model() -> MnistNet:
    """The judge's own copy of the reference model. Student code never receives it."""
    return load_reference_model()


@pytest.fixture(scope="module")
def digits(mnist_test) -> list[tuple[Image.Image, int]]:
    """The first MNIST test images as grayscale PIL images (white on black), with labels."""
    return [
        (Image.fromarray(mnist_test.data[i].numpy()), int(mnist_test.targets[i]))
        for i in range(20)
    ]


def preprocessed(student, image, what: str) -> torch.Tensor:
    """Return the student's preprocess_image(image) as a checked plain tensor.

    A palette image goes to the student as its pixel indices and palette, which an
    observer puts back together.
    """
    if isinstance(image, Image.Image) and image.mode == "P":
        result = student.run(
            preprocess_palette_image,
            Image.fromarray(np.asarray(image)),
            image.getpalette(),
        )
    else:
        result = student.call("classify.preprocess_image", image)
    tensor = as_tensor(result, f"preprocess_image({what})")
    check(
        tuple(tensor.shape) == (1, 28, 28),
        f"a tensor of shape (1, 28, 28) for {what}",
        f"shape {tuple(tensor.shape)}",
        None,
        "return one channel of 28x28 pixels: (1, 28, 28)",
    )
    check(tensor.dtype == torch.float32, "dtype float32", f"dtype {tensor.dtype}")
    check(bool(torch.isfinite(tensor).all()), "finite values", "NaN or infinity")
    return tensor


def digits_and_probabilities(result) -> tuple:
    """Return the two items of what predict returned, or fail if it is not a pair."""
    check(
        (is_tuple(result) or isinstance(result, list)) and len(result) == 2,
        "(digits, probabilities)",
        type_name(result),
    )
    return result[0], result[1]


NOT_INVERTED = (
    "the image was not inverted: MNIST digits are white on black, so dark ink on light "
    "paper must become light ink on a dark background"
)


def light_share(tensor: torch.Tensor) -> float:
    """The share of pixels lighter than halfway between black and white."""
    return float((tensor > (BACKGROUND + INVERTED_BACKGROUND) / 2).float().mean())


def symptom(changed: torch.Tensor, plain: torch.Tensor) -> str | None:
    """Compare the preprocessed ``changed`` image with ``plain``, the same digit in MNIST
    format: "blank" if its ink is gone, "light" if far more of it is light (paper kept
    light), else None."""
    if light_share(changed) == 0 < light_share(plain):
        return "blank"
    if light_share(changed) > light_share(plain) + 0.2:
        return "light"
    return None


def agreeing(
    student, model, digits, transform, what: str
) -> tuple[int, list[str], str | None]:
    """Count digits whose label stays the same after ``transform`` changes their format.

    ``model`` is the judge's reference model. Returns the count, a note for each changed
    label, and the :func:`symptom` of the last changed label (None if there is none or it
    shows no symptom).
    """
    count, misses, found = 0, [], None
    for image, _ in digits[:SAMPLE_COUNT]:
        plain_tensor = preprocessed(student, image, "an MNIST image")
        changed_tensor = preprocessed(student, transform(image), what)
        plain = label_of(model, plain_tensor)
        changed = label_of(model, changed_tensor)
        count += plain == changed
        if plain != changed:
            misses.append(f"{plain} became {changed}")
            found = symptom(changed_tensor, plain_tensor) or found
    return count, misses, found


def dark_on_white(image: Image.Image) -> Image.Image:
    """The MNIST digit as a drawing: dark ink on white paper."""
    return Image.fromarray(255 - np.asarray(image))


def on_canvas(
    image: Image.Image,
    size: tuple[int, int],
    offset: tuple[int, int],
    scale: int,
    background: int = 0,
) -> Image.Image:
    big = image.resize((28 * scale, 28 * scale), Image.Resampling.BILINEAR)
    canvas = Image.new("L", size, background)
    canvas.paste(big, offset)
    return canvas


@pytest.mark.points(4)
def test_load_model(student):
    model = student.call("classify.load_model", REFERENCE_MODEL)
    check(
        isinstance(model, Record) and model.is_a(MnistNet),
        "an MnistNet",
        type_name(model),
    )
    check(
        not model.training,
        "the loaded model in evaluation mode",
        "training mode",
        "model.eval() is not called",
        "call model.eval() before returning the model",
    )
    expected = torch.load(REFERENCE_MODEL, weights_only=True)
    state = model.state_dict
    same = isinstance(state, dict) and all(
        isinstance(state.get(key), torch.Tensor) and torch.equal(state[key], value)
        for key, value in expected.items()
    )
    check(
        same,
        "the weights stored in the file",
        "other weights",
        "the state_dict was not loaded",
        "model.load_state_dict(torch.load(path, ...))",
    )


@pytest.mark.points(3)
def test_preprocess_mnist_format(student, digits, reference_model):
    image, _ = digits[0]
    tensor = preprocessed(student, image, "an MNIST image")
    corner = float(tensor[0, 0, 0])
    check(
        abs(corner - BACKGROUND) < 0.05,
        f"background {BACKGROUND:.4f} after Normalize((0.1307,), (0.3081,))",
        f"{corner:.4f}",
        "no normalisation, or another mean and std",
        "subtract 0.1307 and divide by 0.3081 after scaling pixels to [0, 1]",
    )
    peak = float(tensor.max())
    check(
        abs(peak - INVERTED_BACKGROUND) < 0.3,
        f"the brightest ink at about {INVERTED_BACKGROUND:.4f} (pixel 1.0 normalised)",
        f"{peak:.4f}",
        "pixels not scaled to [0, 1] before normalising" if peak > 10 else None,
        "ToTensor() or dividing by 255 scales the pixels",
    )
    right = sum(
        label_of(reference_model, preprocessed(student, image, "an MNIST image"))
        == label
        for image, label in digits
    )
    check(
        right >= len(digits) - 1,
        f"MNIST test images to keep their digits after preprocessing ({len(digits) - 1} "
        f"of {len(digits)} at least)",
        f"{right} of {len(digits)}",
    )


@pytest.mark.points(4)
def test_preprocess_inverts_dark_ink(student, digits, reference_model):
    image, _ = digits[0]
    plain = preprocessed(student, image, "an MNIST image")
    drawing = dark_on_white(image)
    tensor = preprocessed(student, drawing, "a dark digit on white paper")
    difference = float((tensor - plain).abs().max())
    check(
        difference < 0.1,
        "the same tensor for a digit drawn dark on white as for the same digit in "
        "MNIST's white on black (largest difference below 0.1)",
        f"a largest difference of {difference:.4f}; {light_share(tensor):.0%} of the "
        f"pixels are light, against {light_share(plain):.0%} for the MNIST image",
        NOT_INVERTED if symptom(tensor, plain) else None,
        "invert (1 - pixel) when the border of the image is light",
    )
    count, misses, found = agreeing(
        student, reference_model, digits, dark_on_white, "a dark digit on white paper"
    )
    check(
        count >= MIN_AGREEING,
        f"dark-on-white drawings to get their MNIST labels ({MIN_AGREEING} of "
        f"{SAMPLE_COUNT} at least)",
        f"{count} of {SAMPLE_COUNT} ({', '.join(misses)})",
        NOT_INVERTED if found else None,
    )


def to_rgba_with_transparent_background(image: Image.Image) -> Image.Image:
    ink = np.asarray(image)
    rgba = np.zeros((*ink.shape, 4), dtype=np.uint8)
    rgba[..., 3] = ink  # black strokes whose opacity is the ink
    return Image.fromarray(rgba)


def in_colour(image: Image.Image, ink: tuple[int, int, int], paper: int) -> Image.Image:
    """The digit drawn in the colour ``ink`` on white (255) or black (0) paper, as RGB."""
    strength = np.asarray(image, dtype=np.float32)[..., None] / 255.0
    colour = np.array(ink, dtype=np.float32)
    rgb = paper + strength * (colour - paper)
    return Image.fromarray(rgb.round().astype(np.uint8), "RGB")


ONE_CHANNEL = (
    "one colour channel read as the grayscale image: a digit in another colour vanishes "
    "in that channel"
)
CHANNELS_OR_ALPHA = "colour channels or transparency fed to the one-channel model"


@pytest.mark.points(4)
def test_preprocess_color_modes(student, digits, reference_model):
    # Each format with the likely mistake when it loses its labels.
    modes = {
        "an RGB image": (lambda im: im.convert("RGB"), CHANNELS_OR_ALPHA),
        "an opaque RGBA image": (lambda im: im.convert("RGBA"), CHANNELS_OR_ALPHA),
        "a palette (P) image": (lambda im: im.convert("P"), CHANNELS_OR_ALPHA),
        "a grayscale image with alpha (LA)": (
            lambda im: im.convert("LA"),
            CHANNELS_OR_ALPHA,
        ),
        "black strokes on a transparent background (RGBA)": (
            to_rgba_with_transparent_background,
            "transparency ignored: transparent pixels must count as background",
        ),
        "a red digit on white paper (RGB)": (
            lambda im: in_colour(im, (255, 0, 0), 255),
            ONE_CHANNEL,
        ),
        "a green digit on black paper (RGB)": (
            lambda im: in_colour(im, (0, 255, 0), 0),
            ONE_CHANNEL,
        ),
    }
    for what, (transform, likely) in modes.items():
        count, misses, _ = agreeing(student, reference_model, digits, transform, what)
        if count < MIN_AGREEING and transform is to_rgba_with_transparent_background:
            # Black strokes on a transparent sheet are dark ink on light paper: if plain
            # dark-on-white drawings fail too, the missing inversion is the mistake.
            inverted, _, _ = agreeing(
                student, reference_model, digits, dark_on_white, "dark on white"
            )
            if inverted < MIN_AGREEING:
                likely = NOT_INVERTED
        check(
            count >= MIN_AGREEING,
            f"{what} to get the same labels as the grayscale version ({MIN_AGREEING} of "
            f"{SAMPLE_COUNT} at least)",
            f"{count} of {SAMPLE_COUNT} ({', '.join(misses)})",
            likely,
            "convert to grayscale with image.convert('L'), which weighs all three "
            "channels; treat transparent pixels as background",
        )


@pytest.mark.points(3)
def test_preprocess_other_sizes(student, digits, reference_model):
    cases = {
        "a 112x112 digit off-centre on a 200x160 black canvas": lambda im: on_canvas(
            im, (200, 160), (10, 40), 4
        ),
        "a 56x56 digit on a 300x300 white canvas, dark ink": lambda im: Image.fromarray(
            255 - np.asarray(on_canvas(im, (300, 300), (200, 30), 2))
        ),
    }
    for what, transform in cases.items():
        count, misses, found = agreeing(
            student, reference_model, digits, transform, what
        )
        check(
            count >= MIN_AGREEING,
            f"{what} to keep its label ({MIN_AGREEING} of {SAMPLE_COUNT} at least)",
            f"{count} of {SAMPLE_COUNT} ({', '.join(misses)})",
            NOT_INVERTED
            if found and "dark ink" in what
            else "the image is squeezed to 28x28 without cropping to the digit",
            "crop, scale and centre the digit with fit_to_mnist_frame()",
        )


@pytest.mark.points(3)
def test_predict_shapes(student, mnist_test):
    single = mnist_test.images[0]
    digits, _ = digits_and_probabilities(
        student.run(predict_with_reference, single.clone())
    )
    digits = as_tensor(digits, "digits")
    check(
        tuple(digits.shape) == (1,),
        "one digit for one image of shape (1, 28, 28)",
        f"shape {tuple(digits.shape)}",
        "the image was given to the model without a batch dimension",
        "add one with image.unsqueeze(0) when the input has 3 dims",
    )

    batch = mnist_test.images[:5].clone()
    digits, probabilities = digits_and_probabilities(
        student.run(predict_with_reference, batch)
    )
    digits = as_tensor(digits, "digits")
    probabilities = as_tensor(probabilities, "probabilities")
    check(
        tuple(digits.shape) == (5,),
        "five digits for a batch of five",
        f"shape {tuple(digits.shape)}",
        "argmax over dim 0 (the batch) instead of dim 1 (the classes)",
        "use argmax(dim=1)",
    )
    check(
        tuple(probabilities.shape) == (5,),
        "five probabilities for a batch of five",
        f"shape {tuple(probabilities.shape)}",
    )


@pytest.mark.points(2)
def test_predict_per_image(student, reference_model, mnist_test):
    batch = mnist_test.images[:6].clone()
    with torch.no_grad():
        logits = reference_model(batch)
    softmax = torch.softmax(logits, dim=1)
    expected_digits = softmax.argmax(dim=1).tolist()
    over_batch = torch.softmax(logits, dim=0).argmax(dim=1).tolist()
    digits, probabilities = digits_and_probabilities(
        student.run(predict_with_reference, batch)
    )
    digits = as_tensor(digits, "digits").tolist()
    probabilities = as_tensor(probabilities, "probabilities").to(torch.float64)
    check(
        digits == expected_digits,
        f"digits {expected_digits}",
        f"{digits}",
        "softmax over dim 0 (the batch), so each image's answer depends on the others"
        if digits == over_batch
        else "argmax over the wrong dimension",
        "torch.softmax(logits, dim=1), then argmax(dim=1): one class per image",
    )
    expected = softmax.max(dim=1).values.to(torch.float64)
    check(
        torch.allclose(probabilities, expected, atol=1e-5),
        "each digit's probability from softmax over the classes (dim=1)",
        f"{[round(float(p), 4) for p in probabilities]}",
        "no softmax: these are raw logits, not probabilities"
        if bool((probabilities > 1).any())
        else "softmax over dim 0",
        "torch.softmax(logits, dim=1)",
    )
    one_by_one = []
    for image in batch:
        alone, _ = digits_and_probabilities(
            student.run(predict_with_reference, image.clone())
        )
        one_by_one.append(as_tensor(alone, "digits").tolist())
    check(
        one_by_one == [[digit] for digit in expected_digits],
        "each image's digit independent of the other images in the batch",
        f"{one_by_one}",
    )


def digit_of(prediction) -> int | str:
    """Return the digit of one item of classify's list as an int.

    If the item has no digit that converts to an int, return the type name of the item or
    of its digit in angle brackets, such as ``<str>``.
    """
    try:
        digit = prediction[0]
    except (TypeError, IndexError, KeyError):
        return f"<{type_name(prediction)}>"
    try:
        return int(digit)
    except (TypeError, ValueError, OverflowError, RuntimeError):
        return f"<{type_name(digit)}>"


@pytest.mark.points(2)
def test_classify_known_images(student, digits):
    images = [image for image, _ in digits]
    labels = [label for _, label in digits]

    [listed] = student.run(classify_files, images, False, 1)
    predictions = unpack(listed)
    check(
        isinstance(predictions, list) and len(predictions) == len(images),
        f"a list of {len(images)} predictions for {len(images)} files",
        f"{type_name(predictions)}",
    )
    got = [digit_of(prediction) for prediction in predictions]
    right = sum(type(a) is int and a == b for a, b in zip(got, labels, strict=True))
    check(
        right >= len(labels) - 1,
        f"the right digits for MNIST test images: {labels}",
        f"[{', '.join(str(digit) for digit in got)}]",
    )

    first, *rest = student.run(classify_files, images[:1], True, 2)
    digit, probability = plain_prediction(unpack(first))
    check(
        digit == labels[0],
        f"digit {labels[0]} for the first MNIST test image",
        repr(digit),
    )
    check(0.0 < probability <= 1.0, "a probability in (0, 1]", f"{probability}")
    again = plain_prediction(unpack(rest[0]))
    check(
        again == (digit, probability),
        "the same answer when called again",
        f"{(digit, probability)} then {again}",
        "the model is left in training mode",
        "call model.eval() before predicting",
    )


def plain_prediction(prediction) -> tuple[int, float]:
    """Return a Prediction(digit, probability) as a plain int and float, else fail.

    The digit must be exactly a Python int, because a subclass could redefine equality.
    Plain data turns such a subclass into an :class:`Opaque` that records only its type.
    """
    if not (is_tuple(prediction) and len(prediction) == 2):
        raise feedback(
            "one Prediction(digit, probability) for one image",
            f"{type_name(prediction)}",
            None,
            "for one image return predictions[0], not the list",
        )
    digit = prediction[0]
    check(
        type(digit) is int,
        "the digit as a Python int",
        type_name(digit)
        if isinstance(digit, Opaque)
        else f"{type_name(digit)} {digit!r}",
        None,
        "int(tensor.item()) turns a one-element tensor into a Python int",
    )
    return digit, as_float(prediction[1], "the probability")
