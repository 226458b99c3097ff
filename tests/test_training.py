"""The reference training cycle on a small fixed subset of the real MNIST."""

from __future__ import annotations

import pytest
import torch

from mnist_course.contracts import TrainingConfig
from mnist_course.model import MnistNet

QUICK_CONFIG = TrainingConfig(epochs=2, batch_size=64, test_batch_size=250, seed=0)


@pytest.fixture(scope="module")
def trained(reference, small_train_set, small_test_set, tmp_path_factory):
    """Train the reference for two epochs on 2000 images, saving to a temporary file."""
    training = reference.training
    train_loader, test_loader = training.build_data_loaders(
        small_train_set, small_test_set, QUICK_CONFIG
    )
    model = training.build_model(QUICK_CONFIG)
    initial_state = {key: value.clone() for key, value in model.state_dict().items()}
    optimizer, scheduler, loss_fn = training.build_optimizer_scheduler_loss(
        model, QUICK_CONFIG
    )
    model_path = tmp_path_factory.mktemp("model") / "model.pt"
    history = training.fit(
        model,
        train_loader,
        test_loader,
        optimizer,
        scheduler,
        loss_fn,
        epochs=QUICK_CONFIG.epochs,
        model_path=model_path,
    )
    return {
        "model": model,
        "history": history,
        "model_path": model_path,
        "initial_state": initial_state,
        "test_loader": test_loader,
    }


def test_loss_goes_down_on_fixed_batch(reference, small_train_set):
    training = reference.training
    config = TrainingConfig(seed=0)
    model = training.build_model(config)
    optimizer, _, loss_fn = training.build_optimizer_scheduler_loss(model, config)
    images = torch.stack([small_train_set[i][0] for i in range(256)])
    labels = torch.tensor([small_train_set[i][1] for i in range(256)])
    loader = [(images, labels)]

    losses = [
        training.train_one_epoch(model, loader, optimizer, loss_fn) for _ in range(15)
    ]

    assert losses[-1] < 0.5 * losses[0], losses


def test_epoch_loss_is_plain_float(trained):
    for record in trained["history"]:
        assert type(record.train_loss) is float
        assert record.train_loss > 0


def test_history_learning_rate_per_epoch(trained):
    rates = [record.learning_rate for record in trained["history"]]

    assert rates == pytest.approx(
        [QUICK_CONFIG.learning_rate, QUICK_CONFIG.learning_rate * 0.4]
    )


def test_f1_after_short_training(trained):
    assert trained["history"][-1].f1 > 0.9


def test_saved_file_is_loadable_state_dict(trained):
    state_dict = torch.load(trained["model_path"], weights_only=True)
    model = MnistNet()

    model.load_state_dict(state_dict)

    assert set(state_dict) == set(trained["model"].state_dict())


def test_saved_model_reproduces_reported_f1(reference, trained):
    model = MnistNet()
    model.load_state_dict(torch.load(trained["model_path"], weights_only=True))

    result = reference.training.evaluate(model, trained["test_loader"])

    assert result.f1 == trained["history"][-1].f1


def test_saved_model_differs_from_initial(trained):
    state_dict = torch.load(trained["model_path"], weights_only=True)
    changed = [
        key
        for key, value in state_dict.items()
        if value.is_floating_point()
        and not torch.equal(value, trained["initial_state"][key])
    ]

    assert "features.0.weight" in changed
    assert "classifier.5.weight" in changed


def test_same_seed_same_losses(reference, small_train_set, small_test_set):
    training = reference.training
    config = TrainingConfig(batch_size=100, seed=3)
    subset = torch.utils.data.Subset(small_train_set, range(600))

    def one_epoch_loss() -> float:
        train_loader, _ = training.build_data_loaders(subset, small_test_set, config)
        model = training.build_model(config)
        optimizer, _, loss_fn = training.build_optimizer_scheduler_loss(model, config)
        return training.train_one_epoch(model, train_loader, optimizer, loss_fn)

    assert one_epoch_loss() == one_epoch_loss()


def test_evaluate_restores_no_grad_and_eval(reference, trained):
    model = trained["model"]
    model.train()
    grad_modes = []
    handle = model.register_forward_hook(
        lambda module, inputs, output: grad_modes.append(torch.is_grad_enabled())
    )
    try:
        reference.training.evaluate(model, trained["test_loader"])
    finally:
        handle.remove()

    assert grad_modes
    assert not any(grad_modes)
    assert not model.training


def test_grading_reference_model_scores(data_root):
    from grading.checks import REFERENCE_MODEL
    from mnist_course.data import load_mnist
    from mnist_course.implementation import load_implementation

    metrics = load_implementation("solutions").metrics
    test_set = load_mnist(data_root, train=False)
    model = MnistNet()
    model.load_state_dict(torch.load(REFERENCE_MODEL, weights_only=True))
    model.eval()

    with torch.no_grad():
        predictions = torch.cat(
            [model(batch).argmax(dim=1) for batch in test_set.images.split(2000)]
        )
    _, _, f1 = metrics.precision_recall_f1(test_set.targets, predictions)

    assert f1 >= 0.99
