"""Command line: prepare the data, train an implementation, classify images.

    python -m mnist_course prepare-data
    python -m mnist_course train [--impl solutions|exercises|PATH] [--epochs 3] ...
    python -m mnist_course classify IMAGE [IMAGE ...] | --samples N [--picture FILE]

Problems with input (files, options, a TODO not done yet) end with one line on stderr and exit
status 1. Exceptions raised by the implementation's own code keep their traceback, because it
points into the student's file.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image
from tqdm import tqdm

from mnist_course import plots
from mnist_course.checkpoint import DEFAULT_MODEL_PATH, check_model_file
from mnist_course.contracts import EpochRecord, EvaluationResult, TrainingConfig
from mnist_course.data import DEFAULT_DATA_ROOT, load_mnist, prepare_mnist, raw_folder
from mnist_course.errors import CourseError
from mnist_course.implementation import PROJECT_ROOT, load_implementation

DEFAULT_REPORT_DIR = Path("reports")


def default_implementation() -> str:
    """Return ``solutions`` where the reference is present (instructors), else ``exercises``."""
    return "solutions" if (PROJECT_ROOT / "solutions").is_dir() else "exercises"


class ProgressLoader:
    """A data loader that shows a tqdm progress bar each time it is iterated."""

    def __init__(self, loader: torch.utils.data.DataLoader, description: str) -> None:
        self.loader = loader
        self.dataset = loader.dataset
        self.description = description

    def __iter__(self):
        return iter(tqdm(self.loader, desc=self.description, unit="batch", leave=False))

    def __len__(self) -> int:
        return len(self.loader)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a whole number, got {text!r}"
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"expected a number of at least 1, got {value}"
        )
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number above 0, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mnist_course",
        description="Train a CNN on MNIST and classify digits with it.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    defaults = TrainingConfig()

    def add_common(command: argparse.ArgumentParser) -> None:
        command.add_argument(
            "--impl",
            default=default_implementation(),
            help="implementation to run: solutions, exercises, or a folder laid out like them",
        )
        command.add_argument(
            "--data-root",
            type=Path,
            default=DEFAULT_DATA_ROOT,
            help="folder for MNIST; the raw files go to DATA_ROOT/MNIST/raw",
        )
        command.add_argument(
            "--model-path",
            type=Path,
            default=DEFAULT_MODEL_PATH,
            help="model file (a state_dict) that train writes and classify reads",
        )

    prepare = commands.add_parser(
        "prepare-data",
        help="put the raw MNIST files in place",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    prepare.add_argument(
        "--data-root",
        type=Path,
        default=DEFAULT_DATA_ROOT,
        help="folder for MNIST; the raw files go to DATA_ROOT/MNIST/raw",
    )
    prepare.add_argument(
        "--no-download", action="store_true", help="never try torchvision's download"
    )

    train = commands.add_parser(
        "train",
        help="train, evaluate, save the model and draw the report pictures",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_common(train)
    train.add_argument("--epochs", type=positive_int, default=defaults.epochs)
    train.add_argument("--batch-size", type=positive_int, default=defaults.batch_size)
    train.add_argument(
        "--learning-rate", type=positive_float, default=defaults.learning_rate
    )
    train.add_argument("--seed", type=int, default=defaults.seed)
    train.add_argument(
        "--train-subset",
        type=positive_int,
        metavar="N",
        help="train on the first N training images only (quick runs)",
    )
    train.add_argument(
        "--test-subset",
        type=positive_int,
        metavar="N",
        help="evaluate on the first N test images only (quick runs)",
    )
    train.add_argument(
        "--report-dir",
        type=Path,
        default=DEFAULT_REPORT_DIR,
        help="folder for the pictures of the run",
    )
    train.add_argument(
        "--samples",
        type=int,
        default=8,
        metavar="N",
        help="classify N test images with the saved model at the end (0: none)",
    )

    classify = commands.add_parser(
        "classify",
        help="classify image files or test images with a saved model",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_common(classify)
    classify.add_argument(
        "images",
        nargs="*",
        type=Path,
        metavar="IMAGE",
        help="PNG or JPEG files, each showing one digit",
    )
    classify.add_argument(
        "--samples",
        type=positive_int,
        metavar="N",
        help="classify the first N MNIST test images instead of files",
    )
    classify.add_argument(
        "--picture",
        type=Path,
        metavar="FILE",
        help="also write a PNG with each image and its prediction",
    )
    return parser


def run_prepare_data(args: argparse.Namespace) -> None:
    root = prepare_mnist(args.data_root, allow_download=not args.no_download)
    print(f"MNIST is ready in {raw_folder(root)}")


def run_train(args: argparse.Namespace) -> None:
    config = TrainingConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        seed=args.seed,
    )
    implementation = load_implementation(args.impl)
    print(f"Implementation: {Path(implementation.__path__[0])}")

    train_indices = list(range(args.train_subset)) if args.train_subset else None
    test_indices = list(range(args.test_subset)) if args.test_subset else None
    train_set = load_mnist(args.data_root, train=True, indices=train_indices)
    test_set = load_mnist(args.data_root, train=False, indices=test_indices)
    print(f"Data: {len(train_set)} training and {len(test_set)} test images")

    # The cycle: loaders, model, optimizer/scheduler/loss, then epochs of training and testing.
    training = implementation.training
    train_loader, test_loader = training.build_data_loaders(train_set, test_set, config)
    model = training.build_model(config)
    optimizer, scheduler, loss_fn = training.build_optimizer_scheduler_loss(
        model, config
    )

    # fit() writes a temporary file, renamed only once training has finished, so a failed or
    # interrupted run leaves the previous model in place.
    args.model_path.parent.mkdir(parents=True, exist_ok=True)
    temporary_path = args.model_path.with_name(f".{args.model_path.name}.partial")
    evaluations: list[EvaluationResult] = []
    started = time.perf_counter()

    def report(record: EpochRecord, evaluation: EvaluationResult) -> None:
        evaluations.append(evaluation)
        print(
            f"epoch {record.epoch}/{config.epochs}  loss {record.train_loss:.4f}  "
            f"precision {record.precision:.4f}  recall {record.recall:.4f}  "
            f"macro F1 {record.f1:.4f}  lr {record.learning_rate:.2g}  "
            f"[{time.perf_counter() - started:.1f} s]",
            flush=True,
        )

    try:
        history = training.fit(
            model,
            ProgressLoader(train_loader, "train"),
            test_loader,
            optimizer,
            scheduler,
            loss_fn,
            epochs=config.epochs,
            model_path=temporary_path,
            device=config.device,
            on_epoch_end=report,
        )
        if not temporary_path.is_file():
            raise CourseError(
                f"fit() returned without saving the model to model_path ({temporary_path}). "
                f"Save it with torch.save(model.state_dict(), model_path)."
            )
        check_model_file(temporary_path)
        os.replace(temporary_path, args.model_path)
    finally:
        if temporary_path.exists():
            temporary_path.unlink()
    seconds = time.perf_counter() - started

    summary = {
        "implementation": str(Path(implementation.__path__[0])),
        "config": dataclasses.asdict(config),
        "train_images": len(train_set),
        "test_images": len(test_set),
        "training_seconds": round(seconds, 2),
        "history": [dataclasses.asdict(record) for record in history],
    }
    summary_path = args.model_path.with_suffix(".json")
    summary_path.write_text(json.dumps(summary, indent=2) + "\n")
    final = history[-1] if history else None
    if final is not None:
        print(
            f"Final macro F1 on {len(test_set)} test images: {final.f1:.4f} "
            f"(training took {seconds:.1f} s)"
        )
    print(
        f"Saved the model to {args.model_path} and its configuration to {summary_path}"
    )

    if history and evaluations:
        args.report_dir.mkdir(parents=True, exist_ok=True)
        last = evaluations[-1]
        pictures = [
            plots.plot_training_curves(
                history, args.report_dir / "training_curves.png"
            ),
            plots.plot_confusion_matrix(
                last.labels, last.predictions, args.report_dir / "confusion_matrix.png"
            ),
            plot_test_predictions(
                last, test_set, args.report_dir / "test_predictions.png"
            ),
        ]
        print("Pictures: " + ", ".join(str(path) for path in pictures))

    if args.samples > 0:
        classify_samples(
            implementation, args.model_path, args.data_root, args.samples, None
        )


def plot_test_predictions(evaluation: EvaluationResult, test_set, path: Path) -> Path:
    """Draw the first 24 test images and up to 8 misclassified ones, with their labels."""
    wrong = torch.nonzero(evaluation.predictions != evaluation.labels).flatten()
    first = torch.arange(min(24, len(evaluation.labels)))
    indices = torch.cat([first, wrong[~torch.isin(wrong, first)][:8]])
    return plots.plot_image_grid(
        test_set.images[indices],
        evaluation.predictions[indices].tolist(),
        path,
        true_labels=evaluation.labels[indices].tolist(),
    )


def mnist_test_images(
    data_root: Path, count: int
) -> tuple[list[Image.Image], list[int]]:
    """Return the first ``count`` MNIST test images as PIL images, with their labels."""
    test_set = load_mnist(
        data_root, train=False, indices=list(range(min(count, 10_000)))
    )
    images = [Image.fromarray(array.numpy()) for array in test_set.data]
    return images, test_set.targets.tolist()


def classify_samples(
    implementation, model_path: Path, data_root: Path, count: int, picture: Path | None
) -> None:
    images, labels = mnist_test_images(data_root, count)
    names = [f"test image {index}" for index in range(len(images))]
    classify_and_print(implementation, model_path, images, names, picture, labels)


def classify_and_print(
    implementation,
    model_path: Path,
    images: Sequence,
    names: Sequence[str],
    picture: Path | None,
    true_labels: Sequence[int] | None = None,
) -> None:
    check_model_file(model_path)
    classify = implementation.classify
    model = classify.load_model(model_path)
    predictions = classify.classify(model, list(images))
    for index, (name, prediction) in enumerate(zip(names, predictions, strict=True)):
        line = f"{name}: digit {prediction.digit} (probability {prediction.probability:.3f})"
        if true_labels is not None:
            line += f", true {true_labels[index]}"
        print(line)
    if picture is not None:
        frames = torch.stack([classify.preprocess_image(image) for image in images])
        plots.plot_image_grid(
            frames,
            [p.digit for p in predictions],
            picture,
            probabilities=[p.probability for p in predictions],
            true_labels=true_labels,
            titles=[Path(name).name for name in names],
        )
        print(f"Picture: {picture}")


def run_classify(args: argparse.Namespace) -> None:
    if bool(args.images) == bool(args.samples):
        raise CourseError(
            "Give either image files or --samples N, for example "
            "`python -m mnist_course classify my_digit.png` or "
            "`python -m mnist_course classify --samples 8`."
        )
    implementation = load_implementation(args.impl)
    check_model_file(args.model_path)
    if args.samples:
        classify_samples(
            implementation, args.model_path, args.data_root, args.samples, args.picture
        )
        return
    from mnist_course.images import open_image

    images = [open_image(path) for path in args.images]
    classify_and_print(
        implementation,
        args.model_path,
        images,
        [str(p) for p in args.images],
        args.picture,
    )


def describe_not_implemented(error: NotImplementedError) -> str:
    """Name the function and file of the TODO that raised ``error``."""
    frames = traceback.extract_tb(error.__traceback__)
    where = frames[-1] if frames else None
    if where is None:
        return "A function is not implemented yet."
    return (
        f"{where.name}() in {where.filename} is not implemented yet. Fill in its TODO, then "
        f"run this command again."
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    commands = {
        "prepare-data": run_prepare_data,
        "train": run_train,
        "classify": run_classify,
    }
    try:
        commands[args.command](args)
    except CourseError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except NotImplementedError as err:
        print(f"error: {describe_not_implemented(err)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            "Interrupted; files saved before this run are unchanged.", file=sys.stderr
        )
        return 130
    return 0
