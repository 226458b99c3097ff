"""The command line: a quick real run, and one clear message for each kind of bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
import torch
from PIL import Image

from mnist_course.cli import main
from mnist_course.implementation import PROJECT_ROOT
from mnist_course.model import MnistNet

QUICK_TRAIN = ["--train-subset", "1000", "--test-subset", "200", "--epochs", "1"]


@pytest.fixture(scope="module")
def quick_model(tmp_path_factory, data_root):
    """A model trained by the real command on 1000 images, with its report folder."""
    folder = tmp_path_factory.mktemp("quick")
    arguments = ["train", "--impl", "solutions", "--data-root", str(data_root)]
    arguments += ["--model-path", str(folder / "model.pt"), "--report-dir", str(folder)]
    assert main([*arguments, *QUICK_TRAIN, "--samples", "3"]) == 0
    return folder


def run_main(capsys, *arguments) -> tuple[int, str, str]:
    code = main([str(argument) for argument in arguments])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_train_writes_model_summary_and_pictures(quick_model):
    summary = json.loads((quick_model / "model.json").read_text())

    assert (quick_model / "model.pt").is_file()
    assert summary["config"]["epochs"] == 1
    assert summary["train_images"] == 1000
    assert len(summary["history"]) == 1
    for picture in (
        "training_curves.png",
        "confusion_matrix.png",
        "test_predictions.png",
    ):
        with Image.open(quick_model / picture) as image:
            assert image.size[0] > 100


def test_classify_files_and_picture(quick_model, data_root, tmp_path, capsys):
    image_path = tmp_path / "digit.png"
    Image.new("L", (60, 60), 255).save(image_path)
    picture = tmp_path / "out.png"

    code, out, err = run_main(
        capsys,
        "classify",
        image_path,
        "--model-path",
        quick_model / "model.pt",
        "--impl",
        "solutions",
        "--picture",
        picture,
    )

    assert code == 0, err
    assert f"{image_path}: digit" in out
    assert "probability" in out
    assert picture.is_file()


def test_classify_samples_print_true_labels(quick_model, data_root, capsys):
    code, out, err = run_main(
        capsys,
        "classify",
        "--samples",
        "3",
        "--model-path",
        quick_model / "model.pt",
        "--data-root",
        data_root,
        "--impl",
        "solutions",
    )

    assert code == 0, err
    assert out.count(", true ") == 3


def test_missing_model_file(tmp_path, capsys):
    missing = tmp_path / "nothing.pt"

    code, _, err = run_main(
        capsys, "classify", "--samples", "1", "--model-path", missing
    )

    assert code == 1
    assert f"Model file {missing} not found" in err
    assert "python -m mnist_course train" in err
    assert "Traceback" not in err


def test_pickled_model_object_rejected(tmp_path, capsys):
    path = tmp_path / "whole.pt"
    torch.save(MnistNet(), path)
    content = path.read_bytes()

    code, _, err = run_main(capsys, "classify", "--samples", "1", "--model-path", path)

    assert code == 1
    assert "is not a state_dict" in err
    assert "torch.save(model.state_dict(), path)" in err
    assert path.read_bytes() == content


def test_wrong_architecture_rejected(tmp_path, capsys):
    path = tmp_path / "other.pt"
    torch.save(torch.nn.Linear(784, 10).state_dict(), path)

    code, _, err = run_main(capsys, "classify", "--samples", "1", "--model-path", path)

    assert code == 1
    assert "weights of another architecture" in err
    assert "Missing key(s)" in err


@pytest.mark.parametrize(
    "content", [b"", b"not a zip file at all"], ids=["empty", "junk"]
)
def test_damaged_model_file_rejected(tmp_path, capsys, content):
    path = tmp_path / "broken.pt"
    path.write_bytes(content)

    code, _, err = run_main(capsys, "classify", "--samples", "1", "--model-path", path)

    assert code == 1
    assert "is damaged or not a PyTorch file" in err


def test_unreadable_image_rejected(quick_model, tmp_path, capsys):
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"\x89PNG but not really")

    code, _, err = run_main(
        capsys, "classify", junk, "--model-path", quick_model / "model.pt"
    )

    assert code == 1
    assert f"Cannot read {junk} as an image" in err


def test_classify_needs_images_or_samples(capsys):
    code, _, err = run_main(capsys, "classify")

    assert code == 1
    assert "Give either image files or --samples N" in err


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["train", "--epochs", "0"], "expected a number of at least 1, got 0"),
        (["train", "--learning-rate", "-1"], "expected a number above 0, got -1.0"),
        (["train", "--batch-size", "many"], "expected a whole number, got 'many'"),
        (["fly"], "invalid choice: 'fly'"),
    ],
)
def test_invalid_options_rejected(capsys, arguments, expected):
    with pytest.raises(SystemExit) as raised:
        main(arguments)

    assert raised.value.code == 2
    assert expected in capsys.readouterr().err


def test_missing_implementation_folder(tmp_path, capsys):
    code, _, err = run_main(capsys, "train", "--impl", tmp_path / "absent")

    assert code == 1
    assert "Implementation folder" in err
    assert "not found" in err


def copy_reference_with(tmp_path, old: str, new: str):
    """Copy solutions/ to tmp_path with one piece of training.py replaced."""
    folder = tmp_path / "variant"
    shutil.copytree(PROJECT_ROOT / "solutions", folder)
    training = folder / "training.py"
    source = training.read_text()
    assert old in source
    training.write_text(source.replace(old, new, 1))
    return folder


def test_todo_reported_as_not_implemented(tmp_path, data_root, capsys):
    folder = copy_reference_with(
        tmp_path,
        "    torch.manual_seed(config.seed)\n",
        "    raise NotImplementedError\n",
    )

    code, _, err = run_main(
        capsys,
        "train",
        "--impl",
        folder,
        "--data-root",
        data_root,
        *QUICK_TRAIN,
        "--model-path",
        tmp_path / "model.pt",
    )

    assert code == 1
    assert "build_model() in" in err
    assert "is not implemented yet" in err


def test_failed_training_keeps_previous_model(tmp_path, data_root, capsys):
    model_path = tmp_path / "model.pt"
    model_path.write_bytes(b"previous model")
    folder = copy_reference_with(
        tmp_path,
        "    torch.save(model.state_dict(), model_path)\n",
        "    torch.save(model.state_dict(), model_path)\n    raise RuntimeError('crash')\n",
    )

    with pytest.raises(RuntimeError, match="crash"):
        main(
            [
                "train",
                "--impl",
                str(folder),
                "--data-root",
                str(data_root),
                *QUICK_TRAIN,
                "--model-path",
                str(model_path),
            ]
        )

    assert model_path.read_bytes() == b"previous model"
    assert [path.name for path in tmp_path.iterdir() if "partial" in path.name] == []


def test_module_runs_as_command(quick_model):
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "mnist_course",
            "classify",
            "--samples",
            "2",
            "--model-path",
            str(quick_model / "model.pt"),
            "--impl",
            "solutions",
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.count("digit") == 2
