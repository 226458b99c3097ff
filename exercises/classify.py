"""Task 3: classify new images with the trained model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from mnist_course.contracts import Prediction
from mnist_course.data import MNIST_MEAN, MNIST_STD
from mnist_course.images import fit_to_mnist_frame, open_image
from mnist_course.model import MnistNet


def load_model(path: Path, device: str = "cpu") -> MnistNet:
    """Load a saved state_dict into a new MnistNet and return it in evaluation mode.

    The file is read with ``torch.load(..., weights_only=True)``, which loads tensors and
    plain containers only and never runs code from the file.
    """
    # TODO: Load the state_dict at path into a new MnistNet and return the model.
    #   Read it with torch.load(path, map_location=device, weights_only=True).
    #   Return the model on device and in evaluation mode (model.eval()).
    #   Hint: model.load_state_dict(state_dict) copies the weights in.
    raise NotImplementedError("load_model() is not implemented yet")


def preprocess_image(image: str | Path | Image.Image) -> torch.Tensor:
    """Turn any image of one digit into the MNIST input format.

    Args:
        image: a path to a PNG or JPEG file, or a PIL image. Any size; grayscale, RGB or
            with transparency (RGBA); dark ink on light paper or light ink on dark.

    Returns:
        float32 tensor of shape (1, 28, 28): white digit on black, cropped and centred by
        :func:`~mnist_course.images.fit_to_mnist_frame`, then normalised with the MNIST mean
        and std, so that the background is about -0.4242.

    Hint: transparent pixels are background. Decide which colour is the background from the
    border of the image.
    """
    image = open_image(image)
    # TODO: Convert image (a PIL image at this point) to the MNIST input tensor.
    #   Transparent pixels are background: with an alpha channel (modes RGBA, LA,
    #   PA, or "transparency" in image.info) lay the image on a background colour
    #   that contrasts with its ink.
    #   Convert to grayscale in [0, 1]. Invert dark-on-light drawings, deciding from
    #   the border pixels which colour is the background, so the digit is light.
    #   Subtract the background level (clip at 0), fit the ink into the 28x28 frame
    #   with fit_to_mnist_frame, then normalise with MNIST_MEAN and MNIST_STD.
    #   Return a float32 tensor of shape (1, 28, 28).
    #   Hint: Image.alpha_composite, np.median of the border, torch.from_numpy.
    raise NotImplementedError("preprocess_image() is not implemented yet")


def predict(
    model: torch.nn.Module, images: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Predict the digit of each preprocessed image.

    Args:
        model: the trained network.
        images: one image of shape (28, 28) or (1, 28, 28), or a batch of shape
            (N, 1, 28, 28), normalised like MNIST.

    Returns:
        ``(digits, probabilities)``: an int64 tensor of shape (N,) with the predicted digit of
        each image, and a float tensor of shape (N,) with the model's probability for that
        digit. One image gives N = 1. Each image's result is independent of the others.
    """
    # TODO: Return (digits, probabilities) for one image or a batch.
    #   Reshape (28, 28) and (1, 28, 28) to (1, 1, 28, 28); a batch is (N, 1, 28, 28).
    #   Run the model in evaluation mode under torch.no_grad(), on the model's device.
    #   digits: int64 argmax of the logits over dim=1; probabilities: the softmax
    #   probability of that digit. Both of shape (N,), on the CPU.
    #   Hint: next(model.parameters()).device; probabilities.max(dim=1).
    raise NotImplementedError("predict() is not implemented yet")


def classify(
    model: torch.nn.Module, images: str | Path | Image.Image | list
) -> Prediction | list[Prediction]:
    """Classify one image, or a list of images, given as paths or PIL images.

    Returns:
        For one image, a :class:`~mnist_course.contracts.Prediction` ``(digit, probability)``
        with a Python int and float. For a list, one Prediction per image, in order.
    """
    # TODO: Classify one image or a list of images (paths or PIL images).
    #   Preprocess each with preprocess_image, stack them into one batch and call
    #   predict once. Return a Prediction(int digit, float probability) for one
    #   image, or a list of Predictions in input order (empty list for empty input).
    #   Hint: torch.stack joins the (1, 28, 28) tensors into (N, 1, 28, 28).
    raise NotImplementedError("classify() is not implemented yet")
