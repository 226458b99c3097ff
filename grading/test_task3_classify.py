"""Task 3: classification with a trained model (exercises/classify.py), 25 points.

The checks use a model trained by the reference (grading/data/reference_model.pt) and label
the student's preprocessed images with the graders' own inference, so a mistake in one
function costs points only in its own check.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from grading.checks import REFERENCE_MODEL
from grading.harness import as_float, as_tensor, call, check, feedback
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


@pytest.fixture
def classify(implementation):
    return implementation.classify


@pytest.fixture(scope="module")
def reference_model() -> MnistNet:
    model = MnistNet()
    model.load_state_dict(torch.load(REFERENCE_MODEL, weights_only=True))
    return model.eval()


@pytest.fixture(scope="module")
def digits(mnist_test) -> list[tuple[Image.Image, int]]:
    """The first MNIST test images as grayscale PIL images (white on black), with labels."""
    return [
        (Image.fromarray(mnist_test.data[i].numpy()), int(mnist_test.targets[i]))
        for i in range(20)
    ]


def preprocessed(classify, image, what: str) -> torch.Tensor:
    tensor = as_tensor(
        call(classify.preprocess_image, image), f"preprocess_image({what})"
    )
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


def label_of(model: MnistNet, tensor: torch.Tensor) -> int:
    with torch.no_grad():
        return int(model(tensor.unsqueeze(0)).argmax(dim=1))


def agreeing(classify, model, digits, transform, what: str) -> tuple[int, list[str]]:
    """Count digits whose label stays the same after ``transform`` changes their format."""
    count, misses = 0, []
    for image, _ in digits[:SAMPLE_COUNT]:
        plain = label_of(model, preprocessed(classify, image, "an MNIST image"))
        changed = label_of(model, preprocessed(classify, transform(image), what))
        count += plain == changed
        if plain != changed:
            misses.append(f"{plain} became {changed}")
    return count, misses


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
def test_load_model(classify):
    model = call(classify.load_model, REFERENCE_MODEL)
    check(isinstance(model, MnistNet), "an MnistNet", type(model).__name__)
    check(
        not model.training,
        "the loaded model in evaluation mode",
        "training mode",
        "model.eval() is not called",
        "call model.eval() before returning the model",
    )
    expected = torch.load(REFERENCE_MODEL, weights_only=True)
    state = model.state_dict()
    same = all(torch.equal(state[key].cpu(), value) for key, value in expected.items())
    check(
        same,
        "the weights stored in the file",
        "other weights",
        "the state_dict was not loaded",
        "model.load_state_dict(torch.load(path, ...))",
    )


@pytest.mark.points(3)
def test_preprocess_mnist_format(classify, digits, reference_model):
    image, _ = digits[0]
    tensor = preprocessed(classify, image, "an MNIST image")
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
        label_of(reference_model, preprocessed(classify, image, "an MNIST image"))
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
def test_preprocess_inverts_dark_ink(classify, digits, reference_model):
    image, _ = digits[0]
    drawing = Image.fromarray(255 - np.asarray(image))
    tensor = preprocessed(classify, drawing, "a dark digit on white paper")
    corner = float(tensor[0, 0, 0])
    check(
        abs(corner - BACKGROUND) < 0.05,
        f"a dark-on-white drawing inverted to MNIST's white on black: background "
        f"{BACKGROUND:.4f}",
        f"{corner:.4f}",
        "the drawing was not inverted"
        if abs(corner - INVERTED_BACKGROUND) < 0.3
        else None,
        "invert (1 - pixel) when the border of the image is light",
    )
    count, misses = agreeing(
        classify,
        reference_model,
        digits,
        lambda im: Image.fromarray(255 - np.asarray(im)),
        "a dark digit on white paper",
    )
    check(
        count >= MIN_AGREEING,
        f"dark-on-white drawings to get their MNIST labels ({MIN_AGREEING} of "
        f"{SAMPLE_COUNT} at least)",
        f"{count} of {SAMPLE_COUNT} ({', '.join(misses)})",
    )


def to_rgba_with_transparent_background(image: Image.Image) -> Image.Image:
    ink = np.asarray(image)
    rgba = np.zeros((*ink.shape, 4), dtype=np.uint8)
    rgba[..., 3] = ink  # black strokes whose opacity is the ink
    return Image.fromarray(rgba)


@pytest.mark.points(4)
def test_preprocess_color_modes(classify, digits, reference_model):
    modes = {
        "an RGB image": lambda im: im.convert("RGB"),
        "an opaque RGBA image": lambda im: im.convert("RGBA"),
        "a palette (P) image": lambda im: im.convert("P"),
        "a grayscale image with alpha (LA)": lambda im: im.convert("LA"),
        "black strokes on a transparent background (RGBA)": to_rgba_with_transparent_background,
    }
    for what, transform in modes.items():
        count, misses = agreeing(classify, reference_model, digits, transform, what)
        check(
            count >= MIN_AGREEING,
            f"{what} to get the same labels as the grayscale version ({MIN_AGREEING} of "
            f"{SAMPLE_COUNT} at least)",
            f"{count} of {SAMPLE_COUNT} ({', '.join(misses)})",
            "colour channels or transparency fed to the one-channel model",
            "convert to grayscale ('L'); treat transparent pixels as background",
        )


@pytest.mark.points(3)
def test_preprocess_other_sizes(classify, digits, reference_model):
    cases = {
        "a 112x112 digit off-centre on a 200x160 black canvas": lambda im: on_canvas(
            im, (200, 160), (10, 40), 4
        ),
        "a 56x56 digit on a 300x300 white canvas, dark ink": lambda im: Image.fromarray(
            255 - np.asarray(on_canvas(im, (300, 300), (200, 30), 2))
        ),
    }
    for what, transform in cases.items():
        count, misses = agreeing(classify, reference_model, digits, transform, what)
        check(
            count >= MIN_AGREEING,
            f"{what} to keep its label ({MIN_AGREEING} of {SAMPLE_COUNT} at least)",
            f"{count} of {SAMPLE_COUNT} ({', '.join(misses)})",
            "the image is squeezed to 28x28 without cropping to the digit",
            "crop, scale and centre the digit with fit_to_mnist_frame()",
        )


@pytest.mark.points(3)
def test_predict_shapes(classify, reference_model, mnist_test):
    single = mnist_test.images[0]
    result = call(classify.predict, reference_model, single.clone())
    check(
        isinstance(result, tuple | list) and len(result) == 2,
        "(digits, probabilities)",
        type(result).__name__,
    )
    digits = as_tensor(result[0], "digits")
    check(
        tuple(digits.shape) == (1,),
        "one digit for one image of shape (1, 28, 28)",
        f"shape {tuple(digits.shape)}",
        "the image was given to the model without a batch dimension",
        "add one with image.unsqueeze(0) when the input has 3 dims",
    )

    batch = mnist_test.images[:5].clone()
    digits, probabilities = call(classify.predict, reference_model, batch)
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
def test_predict_per_image(classify, reference_model, mnist_test):
    batch = mnist_test.images[:6].clone()
    with torch.no_grad():
        softmax = torch.softmax(reference_model(batch), dim=1)
    expected_digits = softmax.argmax(dim=1).tolist()
    digits, probabilities = call(classify.predict, reference_model, batch)
    digits = as_tensor(digits, "digits").tolist()
    probabilities = as_tensor(probabilities, "probabilities").to(torch.float64)
    check(
        digits == expected_digits,
        f"digits {expected_digits}",
        f"{digits}",
        "argmax over the wrong dimension",
        "argmax(dim=1): one class per image",
    )
    expected = softmax.max(dim=1).values.to(torch.float64)
    check(
        torch.allclose(probabilities, expected, atol=1e-5),
        "each digit's probability from softmax over the classes (dim=1)",
        f"{[round(float(p), 4) for p in probabilities]}",
        "softmax over dim 0",
        "torch.softmax(logits, dim=1)",
    )
    one_by_one = [
        as_tensor(
            call(classify.predict, reference_model, image.clone())[0], "digits"
        ).tolist()
        for image in batch
    ]
    check(
        one_by_one == [[digit] for digit in expected_digits],
        "each image's digit independent of the other images in the batch",
        f"{one_by_one}",
    )


@pytest.mark.points(2)
def test_classify_known_images(classify, digits, reference_model, tmp_path):
    paths = []
    for index, (image, _) in enumerate(digits):
        paths.append(tmp_path / f"digit_{index}.png")
        image.save(paths[-1])
    labels = [label for _, label in digits]

    predictions = call(classify.classify, reference_model, paths)
    check(
        isinstance(predictions, list) and len(predictions) == len(paths),
        f"a list of {len(paths)} predictions for {len(paths)} files",
        f"{type(predictions).__name__}",
    )
    got = [int(prediction[0]) for prediction in predictions]
    right = sum(a == b for a, b in zip(got, labels, strict=True))
    check(
        right >= len(labels) - 1,
        f"the right digits for MNIST test images: {labels}",
        f"{got}",
    )

    single = call(classify.classify, reference_model, paths[0])
    if not (isinstance(single, tuple) and len(single) == 2):
        raise feedback(
            "one Prediction(digit, probability) for one image",
            f"{type(single).__name__}",
            None,
            "for one image return predictions[0], not the list",
        )
    check(
        isinstance(single[0], int) and single[0] == labels[0],
        f"digit {labels[0]} as a Python int",
        repr(single[0]),
    )
    probability = as_float(single[1], "the probability")
    check(0.0 < probability <= 1.0, "a probability in (0, 1]", f"{probability}")
    again = call(classify.classify, reference_model, paths[0])
    check(
        tuple(again) == tuple(single),
        "the same answer when called again",
        f"{tuple(single)} then {tuple(again)}",
        "the model is left in training mode",
        "call model.eval() before predicting",
    )
