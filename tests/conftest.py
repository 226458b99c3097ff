"""Shared fixtures: the real MNIST files, small fixed subsets and the reference implementation."""

from __future__ import annotations

from pathlib import Path

import pytest

from mnist_course.data import load_mnist, prepare_mnist
from mnist_course.implementation import PROJECT_ROOT, load_implementation

DATA_ROOT = PROJECT_ROOT / "data"
SMALL_TRAIN_SIZE = 2000
SMALL_TEST_SIZE = 500


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The project's MNIST folder, prepared offline if it is not there yet."""
    return prepare_mnist(DATA_ROOT, allow_download=False)


@pytest.fixture(scope="session")
def small_train_set(data_root):
    return load_mnist(data_root, train=True, indices=list(range(SMALL_TRAIN_SIZE)))


@pytest.fixture(scope="session")
def small_test_set(data_root):
    return load_mnist(data_root, train=False, indices=list(range(SMALL_TEST_SIZE)))


@pytest.fixture(scope="session")
def reference():
    """The reference implementation in solutions/, loaded as a package."""
    return load_implementation("solutions")
