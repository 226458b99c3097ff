"""Mutants and variants of the reference in solutions/, to test the grading suite itself.

A mutant is the reference with exactly one mistake that students make. The grader must take
points from ``task`` and name the mistake in the feedback of at least one lost point of that
task. Every word in ``words`` must occur in that feedback (case-insensitive).

A variant is a correct solution written differently from the reference. It must score 100.

Each replacement is ``(old, new)``, and ``old`` must occur exactly once in the file, so that a
case fails loudly instead of silently grading the unchanged reference when solutions/ changes.
"""

from __future__ import annotations

from dataclasses import dataclass

METRICS = "Task 1: metrics"
TRAINING = "Task 2: training cycle"
CLASSIFICATION = "Task 3: classification"


@dataclass(frozen=True)
class GraderCase:
    """A changed copy of solutions/, given as the file to change and its text replacements."""

    id: str
    file: str
    replacements: tuple[tuple[str, str], ...]
    task: str | None = None
    """The task that must lose points (mutants only)."""
    words: tuple[str, ...] = ()
    """Words that the feedback of one lost point of ``task`` must all contain (mutants)."""


MUTANTS = [
    GraderCase(
        id="precision-recall-swapped",
        file="metrics.py",
        replacements=(
            (
                "    precision = safe_divide(tp, tp + fp)\n"
                "    recall = safe_divide(tp, tp + fn)\n",
                "    precision = safe_divide(tp, tp + fn)\n"
                "    recall = safe_divide(tp, tp + fp)\n",
            ),
        ),
        task=METRICS,
        words=("precision and recall", "swapped"),
    ),
    GraderCase(
        id="labels-predictions-swapped",
        file="metrics.py",
        replacements=(
            (
                "    tp, fp, fn = confusion_counts(labels, predictions, num_classes)\n",
                "    tp, fp, fn = confusion_counts(predictions, labels, num_classes)\n",
            ),
        ),
        task=METRICS,
        words=("labels and predictions", "swapped"),
    ),
    GraderCase(
        id="zero-division-unguarded",
        file="metrics.py",
        replacements=(
            (
                "    zero = denominator == 0\n"
                "    return torch.where(zero, 0.0, numerator / torch.where(zero, 1.0, "
                "denominator))\n",
                "    return numerator / denominator\n",
            ),
        ),
        task=METRICS,
        words=("guard", "0/0"),
    ),
    GraderCase(
        id="integer-division",
        file="metrics.py",
        replacements=(
            (
                "    numerator = torch.as_tensor(numerator, dtype=torch.float64)\n"
                "    denominator = torch.as_tensor(denominator, dtype=torch.float64)\n"
                "    zero = denominator == 0\n"
                "    return torch.where(zero, 0.0, numerator / torch.where(zero, 1.0, "
                "denominator))\n",
                "    zero = denominator == 0\n"
                "    return torch.where(zero, 0, numerator // torch.where(zero, 1, "
                "denominator))\n",
            ),
        ),
        task=METRICS,
        words=("integer division",),
    ),
    GraderCase(
        id="macro-f1-of-mean-precision-recall",
        file="metrics.py",
        replacements=(
            (
                "    return tuple(float(weights @ score) for score in (precision, recall, "
                "f1))\n",
                "    mean_precision = float(weights @ precision)\n"
                "    mean_recall = float(weights @ recall)\n"
                "    total = mean_precision + mean_recall\n"
                "    mean_f1 = 2 * mean_precision * mean_recall / total if total else 0.0\n"
                "    return mean_precision, mean_recall, mean_f1\n",
            ),
        ),
        task=METRICS,
        words=("mean precision and mean recall",),
    ),
    GraderCase(
        id="accuracy-as-macro-f1",
        file="metrics.py",
        replacements=(
            (
                "    return tuple(float(weights @ score) for score in (precision, recall, "
                "f1))\n",
                "    precision, recall, f1 = (\n"
                "        float(weights @ score) for score in (precision, recall, f1)\n"
                "    )\n"
                '    if average == "macro":\n'
                "        f1 = float(safe_divide(tp.sum(), (tp + fn).sum()))\n"
                "    return precision, recall, f1\n",
            ),
        ),
        task=METRICS,
        words=("accuracy",),
    ),
    GraderCase(
        id="f1-averaged-over-batches",
        file="training.py",
        replacements=(
            ("    all_labels = []\n", "    all_labels = []\n    batch_scores = []\n"),
            (
                "            all_labels.append(labels.cpu())\n",
                "            all_labels.append(labels.cpu())\n"
                "            batch_scores.append(\n"
                "                precision_recall_f1(\n"
                '                    labels.cpu(), all_predictions[-1], average="macro"\n'
                "                )\n"
                "            )\n",
            ),
            (
                "    precision, recall, f1 = precision_recall_f1(labels, predictions, "
                'average="macro")\n',
                "    precision, recall, f1 = (\n"
                "        sum(scores[i] for scores in batch_scores) / len(batch_scores)\n"
                "        for i in range(3)\n"
                "    )\n",
            ),
        ),
        task=TRAINING,
        words=("averaged over batches",),
    ),
    GraderCase(
        id="zero-grad-missing",
        file="training.py",
        replacements=(("        optimizer.zero_grad()\n", ""),),
        task=TRAINING,
        words=("zero_grad",),
    ),
    GraderCase(
        id="zero-grad-once-per-epoch",
        file="training.py",
        replacements=(
            (
                "    total_images = 0\n"
                "    for images, labels in loader:\n"
                "        images, labels = images.to(device), labels.to(device)\n"
                "\n"
                "        optimizer.zero_grad()\n",
                "    total_images = 0\n"
                "    optimizer.zero_grad()\n"
                "    for images, labels in loader:\n"
                "        images, labels = images.to(device), labels.to(device)\n"
                "\n",
            ),
        ),
        task=TRAINING,
        words=("zero_grad", "once per epoch"),
    ),
    GraderCase(
        id="scheduler-step-per-batch",
        file="training.py",
        replacements=(
            (
                '    device: str = "cpu",\n) -> float:\n',
                '    device: str = "cpu",\n'
                "    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,\n"
                ") -> float:\n",
            ),
            (
                "        optimizer.step()\n",
                "        optimizer.step()\n"
                "        if scheduler is not None:\n"
                "            scheduler.step()\n",
            ),
            (
                "        train_loss = train_one_epoch(model, train_loader, optimizer, "
                "loss_fn, device)\n"
                "        scheduler.step()\n",
                "        train_loss = train_one_epoch(\n"
                "            model, train_loader, optimizer, loss_fn, device, scheduler\n"
                "        )\n",
            ),
        ),
        task=TRAINING,
        words=("scheduler.step()", "inside the batch loop"),
    ),
    GraderCase(
        id="train-mode-missing",
        file="training.py",
        replacements=(("    model.train()\n", ""),),
        task=TRAINING,
        words=("model.train()",),
    ),
    GraderCase(
        id="no-grad-missing",
        file="training.py",
        replacements=(
            (
                "    with torch.no_grad():\n"
                "        for images, labels in loader:\n"
                "            logits = model(images.to(device))\n"
                "            all_predictions.append(logits.argmax(dim=1).cpu())\n"
                "            all_labels.append(labels.cpu())\n",
                "    for images, labels in loader:\n"
                "        logits = model(images.to(device))\n"
                "        all_predictions.append(logits.argmax(dim=1).cpu())\n"
                "        all_labels.append(labels.cpu())\n",
            ),
        ),
        task=TRAINING,
        words=("no_grad",),
    ),
    GraderCase(
        id="loss-tensor-summed",
        file="training.py",
        replacements=(
            (
                "        total_loss += loss.item() * len(labels)\n",
                "        total_loss += loss\n",
            ),
            (
                "    return total_loss / max(total_images, 1)\n",
                "    return total_loss / len(loader)\n",
            ),
        ),
        task=TRAINING,
        words=("loss tensors added up",),
    ),
    GraderCase(
        id="softmax-before-loss",
        file="training.py",
        replacements=(
            (
                "        loss = loss_fn(model(images), labels)\n",
                "        loss = loss_fn(torch.softmax(model(images), dim=1), labels)\n",
            ),
        ),
        task=TRAINING,
        words=("softmax",),
    ),
    GraderCase(
        id="float-targets",
        file="training.py",
        replacements=(
            (
                "        loss = loss_fn(model(images), labels)\n",
                "        loss = loss_fn(model(images), labels.float())\n",
            ),
        ),
        task=TRAINING,
        words=("float", "target"),
    ),
    GraderCase(
        id="one-hot-targets",
        file="training.py",
        replacements=(
            (
                "        loss = loss_fn(model(images), labels)\n",
                "        loss = loss_fn(\n"
                "            model(images), nn.functional.one_hot(labels, 10).float()\n"
                "        )\n",
            ),
        ),
        task=TRAINING,
        words=("one-hot", "targets"),
    ),
    GraderCase(
        id="weight-decay-missing",
        file="training.py",
        replacements=(
            (
                "        model.parameters(), lr=config.learning_rate, "
                "weight_decay=config.weight_decay\n",
                "        model.parameters(), lr=config.learning_rate\n",
            ),
        ),
        task=TRAINING,
        words=("weight decay",),
    ),
    GraderCase(
        id="model-saved-before-training",
        file="training.py",
        replacements=(
            (
                "    history = []\n",
                "    history = []\n    torch.save(model.state_dict(), model_path)\n",
            ),
            (
                "\n    torch.save(model.state_dict(), model_path)\n    return history\n",
                "\n    return history\n",
            ),
        ),
        task=TRAINING,
        words=("saved before training",),
    ),
    GraderCase(
        id="whole-model-pickled",
        file="training.py",
        replacements=(
            (
                "    torch.save(model.state_dict(), model_path)\n",
                "    torch.save(model, model_path)\n",
            ),
        ),
        task=TRAINING,
        words=("whole model",),
    ),
    GraderCase(
        id="dark-ink-not-inverted",
        file="classify.py",
        replacements=(
            (
                "    if background_level > 0.5:\n"
                "        gray = 1.0 - gray\n"
                "        background_level = 1.0 - background_level\n",
                "",
            ),
        ),
        task=CLASSIFICATION,
        words=("not inverted",),
    ),
    GraderCase(
        id="single-image-without-batch-dimension",
        file="classify.py",
        replacements=(
            (
                "    if images.ndim == 2:\n"
                "        images = images[None, None]\n"
                "    elif images.ndim == 3:\n"
                "        # (1, 28, 28) is one image; (N, 28, 28) is N images without a "
                "channel dim.\n"
                "        images = images.unsqueeze(1)\n",
                "",
            ),
        ),
        task=CLASSIFICATION,
        words=("batch dimension",),
    ),
    GraderCase(
        id="first-channel-as-grayscale",
        file="classify.py",
        replacements=(
            (
                '    gray = np.asarray(image.convert("L"), dtype=np.float32) / 255.0\n',
                "    gray = np.asarray(image, dtype=np.float32) / 255.0\n"
                "    if gray.ndim == 3:\n"
                "        gray = gray[..., 0]\n",
            ),
        ),
        task=CLASSIFICATION,
        words=("grayscale",),
    ),
    GraderCase(
        id="alpha-channel-ignored",
        file="classify.py",
        replacements=(
            (
                '    if image.mode in ("RGBA", "LA", "PA") or "transparency" in '
                "image.info:\n"
                '        rgba = image.convert("RGBA")\n'
                "        opaque = np.asarray(rgba)[..., 3] > 127\n"
                '        gray = np.asarray(rgba.convert("L"), dtype=np.float32)\n'
                "        ink_is_dark = not opaque.any() or gray[opaque].mean() < 128\n"
                '        background = Image.new("RGBA", rgba.size, "white" if '
                'ink_is_dark else "black")\n'
                "        image = Image.alpha_composite(background, rgba)\n",
                "",
            ),
        ),
        task=CLASSIFICATION,
        words=("transparency",),
    ),
    GraderCase(
        id="predict-softmax-over-batch",
        file="classify.py",
        replacements=(
            (
                "        probabilities = torch.softmax(model(images.to(device)), dim=1)\n",
                "        probabilities = torch.softmax(model(images.to(device)), dim=0)\n",
            ),
        ),
        task=CLASSIFICATION,
        words=("softmax", "dim"),
    ),
    GraderCase(
        id="predict-argmax-over-batch",
        file="classify.py",
        replacements=(
            (
                "    best, digits = probabilities.max(dim=1)\n",
                "    best, digits = probabilities.max(dim=0)\n",
            ),
        ),
        task=CLASSIFICATION,
        words=("argmax", "dim"),
    ),
    GraderCase(
        id="load-model-without-eval",
        file="classify.py",
        replacements=(("    model.eval()\n    return model\n", "    return model\n"),),
        task=CLASSIFICATION,
        words=("model.eval()",),
    ),
]

CONFUSION_COUNTS = (
    "    correct = labels[labels == predictions]\n"
    "    tp = torch.bincount(correct, minlength=num_classes)\n"
    "    fp = torch.bincount(predictions, minlength=num_classes) - tp\n"
    "    fn = torch.bincount(labels, minlength=num_classes) - tp\n"
    "    return tp, fp, fn\n"
)

VECTORISED_SCORES = (
    '    if average == "micro":\n'
    "        tp, fp, fn = tp.sum(), fp.sum(), fn.sum()\n"
    "    precision = safe_divide(tp, tp + fp)\n"
    "    recall = safe_divide(tp, tp + fn)\n"
    "    f1 = safe_divide(2 * tp, 2 * tp + fp + fn)\n"
    "    if average is None:\n"
    "        return precision, recall, f1\n"
    '    if average == "micro":\n'
    "        return precision.item(), recall.item(), f1.item()\n"
    "\n"
    '    if average == "macro":\n'
    "        present = (tp + fp + fn) > 0\n"
    "        weights = present.to(torch.float64)\n"
    "    else:\n"
    "        weights = (tp + fn).to(torch.float64)\n"
    "    weights = safe_divide(weights, weights.sum())\n"
    "    return tuple(float(weights @ score) for score in (precision, recall, f1))\n"
)

LOOP_SCORES = """\
    tp, fp, fn = tp.tolist(), fp.tolist(), fn.tolist()

    def ratio(numerator, denominator):
        return numerator / denominator if denominator else 0.0

    if average == "micro":
        all_tp, all_fp, all_fn = sum(tp), sum(fp), sum(fn)
        return (
            ratio(all_tp, all_tp + all_fp),
            ratio(all_tp, all_tp + all_fn),
            ratio(2 * all_tp, 2 * all_tp + all_fp + all_fn),
        )

    precision, recall, f1 = [], [], []
    for c in range(num_classes):
        precision.append(ratio(tp[c], tp[c] + fp[c]))
        recall.append(ratio(tp[c], tp[c] + fn[c]))
        f1.append(ratio(2 * tp[c], 2 * tp[c] + fp[c] + fn[c]))
    if average is None:
        return tuple(
            torch.tensor(scores, dtype=torch.float64)
            for scores in (precision, recall, f1)
        )

    weights = []
    for c in range(num_classes):
        if average == "macro":
            weights.append(1.0 if tp[c] + fp[c] + fn[c] > 0 else 0.0)
        else:
            weights.append(float(tp[c] + fn[c]))
    averages = []
    for scores in (precision, recall, f1):
        weighted_sum = sum(w * s for w, s in zip(weights, scores))
        averages.append(ratio(weighted_sum, sum(weights)))
    return tuple(averages)
"""

PREPROCESS_BODY = (
    '    gray = np.asarray(image.convert("L"), dtype=np.float32) / 255.0\n'
    "\n"
    "    # MNIST is light ink on a dark background: invert when the border is light.\n"
    "    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])\n"
    "    background_level = float(np.median(border))\n"
    "    if background_level > 0.5:\n"
    "        gray = 1.0 - gray\n"
    "        background_level = 1.0 - background_level\n"
    "    ink = np.clip(gray - background_level, 0.0, None)\n"
    "\n"
    "    frame = torch.from_numpy(fit_to_mnist_frame(ink)).unsqueeze(0)\n"
    "    return (frame - MNIST_MEAN) / MNIST_STD\n"
)

TORCHVISION_PREPROCESS_BODY = """\
    to_tensor = transforms.ToTensor()
    grayscale = transforms.Grayscale(num_output_channels=1)
    gray = to_tensor(grayscale(image.convert("RGB")))[0]

    border = torch.cat([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    background_level = float(border.median())
    if background_level > 0.5:
        gray = 1.0 - gray
        background_level = 1.0 - background_level
    ink = (gray - background_level).clamp(min=0.0)

    frame = to_tensor(fit_to_mnist_frame(ink.numpy()))
    normalize = transforms.Normalize((MNIST_MEAN,), (MNIST_STD,))
    return normalize(frame)
"""

VARIANTS = [
    GraderCase(
        id="scores-as-named-tuple",
        file="metrics.py",
        replacements=(
            (
                "    if average is None:\n        return precision, recall, f1\n",
                "    from collections import namedtuple\n\n"
                '    Scores = namedtuple("Scores", "precision recall f1")\n'
                "    if average is None:\n        return Scores(precision, recall, f1)\n",
            ),
            (
                "    return tuple(float(weights @ score) for score in (precision, recall, f1))\n",
                "    return Scores(\n"
                "        *(float(weights @ score) for score in (precision, recall, f1))\n"
                "    )\n",
            ),
        ),
    ),
    GraderCase(
        id="confusion-matrix-index-put",
        file="metrics.py",
        replacements=(
            (
                CONFUSION_COUNTS,
                "    matrix = torch.zeros((num_classes, num_classes), dtype=torch.int64)\n"
                "    matrix.index_put_(\n"
                "        (labels, predictions), torch.ones_like(labels), accumulate=True\n"
                "    )\n"
                "    tp = matrix.diagonal().clone()\n"
                "    fp = matrix.sum(dim=0) - tp\n"
                "    fn = matrix.sum(dim=1) - tp\n"
                "    return tp, fp, fn\n",
            ),
        ),
    ),
    GraderCase(
        id="confusion-matrix-bincount",
        file="metrics.py",
        replacements=(
            (
                CONFUSION_COUNTS,
                "    matrix = torch.bincount(\n"
                "        labels * num_classes + predictions, minlength=num_classes**2\n"
                "    ).reshape(num_classes, num_classes)\n"
                "    tp = matrix.diag()\n"
                "    fp = matrix.sum(dim=0) - tp\n"
                "    fn = matrix.sum(dim=1) - tp\n"
                "    return tp, fp, fn\n",
            ),
        ),
    ),
    GraderCase(
        id="metrics-python-loops",
        file="metrics.py",
        replacements=(
            (
                CONFUSION_COUNTS,
                "    tp = torch.zeros(num_classes, dtype=torch.int64)\n"
                "    fp = torch.zeros(num_classes, dtype=torch.int64)\n"
                "    fn = torch.zeros(num_classes, dtype=torch.int64)\n"
                "    for label, prediction in zip(labels.tolist(), predictions.tolist()):\n"
                "        if label == prediction:\n"
                "            tp[label] += 1\n"
                "        else:\n"
                "            fp[prediction] += 1\n"
                "            fn[label] += 1\n"
                "    return tp, fp, fn\n",
            ),
            (VECTORISED_SCORES, LOOP_SCORES),
        ),
    ),
    GraderCase(
        id="evaluate-inference-mode",
        file="training.py",
        replacements=(
            ("    with torch.no_grad():\n", "    with torch.inference_mode():\n"),
        ),
    ),
    GraderCase(
        id="adam-optimizer",
        file="training.py",
        replacements=(
            (
                "    optimizer = torch.optim.AdamW(\n",
                "    optimizer = torch.optim.Adam(\n",
            ),
        ),
    ),
    GraderCase(
        id="sgd-nesterov-optimizer",
        file="training.py",
        replacements=(
            (
                "    optimizer = torch.optim.AdamW(\n"
                "        model.parameters(), lr=config.learning_rate, "
                "weight_decay=config.weight_decay\n"
                "    )\n",
                "    optimizer = torch.optim.SGD(\n"
                "        model.parameters(),\n"
                "        lr=config.learning_rate,\n"
                "        momentum=0.9,\n"
                "        nesterov=True,\n"
                "        weight_decay=config.weight_decay,\n"
                "    )\n",
            ),
        ),
    ),
    GraderCase(
        id="exponential-lr-scheduler",
        file="training.py",
        replacements=(
            (
                "    scheduler = torch.optim.lr_scheduler.StepLR(\n"
                "        optimizer, step_size=1, gamma=config.lr_decay\n"
                "    )\n",
                "    scheduler = torch.optim.lr_scheduler.ExponentialLR(\n"
                "        optimizer, gamma=config.lr_decay\n"
                "    )\n",
            ),
        ),
    ),
    GraderCase(
        id="lambda-lr-scheduler",
        file="training.py",
        replacements=(
            (
                "    scheduler = torch.optim.lr_scheduler.StepLR(\n"
                "        optimizer, step_size=1, gamma=config.lr_decay\n"
                "    )\n",
                "    scheduler = torch.optim.lr_scheduler.LambdaLR(\n"
                "        optimizer, lr_lambda=lambda epoch: config.lr_decay**epoch\n"
                "    )\n",
            ),
        ),
    ),
    # NOTE: train_one_epoch() must return the mean loss per image. The mean of the batch means
    # agrees with it only when all batches have the same size, as in the grader's check.
    GraderCase(
        id="epoch-loss-mean-over-batches",
        file="training.py",
        replacements=(
            ("    total_images = 0\n", "    batch_count = 0\n"),
            (
                "        total_loss += loss.item() * len(labels)\n"
                "        total_images += len(labels)\n"
                "    return total_loss / max(total_images, 1)\n",
                "        total_loss += loss.item()\n"
                "        batch_count += 1\n"
                "    return total_loss / max(batch_count, 1)\n",
            ),
        ),
    ),
    GraderCase(
        id="evaluate-argmax-of-softmax",
        file="training.py",
        replacements=(
            (
                "            all_predictions.append(logits.argmax(dim=1).cpu())\n",
                "            probabilities = torch.softmax(logits, dim=1)\n"
                "            all_predictions.append(probabilities.argmax(dim=1).cpu())\n",
            ),
        ),
    ),
    GraderCase(
        id="model-zero-grad",
        file="training.py",
        replacements=(
            ("        optimizer.zero_grad()\n", "        model.zero_grad()\n"),
        ),
    ),
    GraderCase(
        id="zero-grad-keeps-tensors",
        file="training.py",
        replacements=(
            (
                "        optimizer.zero_grad()\n",
                "        optimizer.zero_grad(set_to_none=False)\n",
            ),
        ),
    ),
    GraderCase(
        id="evaluate-python-lists",
        file="training.py",
        replacements=(
            (
                "            all_predictions.append(logits.argmax(dim=1).cpu())\n"
                "            all_labels.append(labels.cpu())\n"
                "    predictions = torch.cat(all_predictions)\n"
                "    labels = torch.cat(all_labels).to(torch.int64)\n",
                "            all_predictions.extend(logits.argmax(dim=1).tolist())\n"
                "            all_labels.extend(labels.tolist())\n"
                "    predictions = torch.tensor(all_predictions, dtype=torch.int64)\n"
                "    labels = torch.tensor(all_labels, dtype=torch.int64)\n",
            ),
        ),
    ),
    GraderCase(
        id="preprocess-torchvision-transforms",
        file="classify.py",
        replacements=(
            (
                "from PIL import Image\n",
                "from PIL import Image\nfrom torchvision import transforms\n",
            ),
            (PREPROCESS_BODY, TORCHVISION_PREPROCESS_BODY),
        ),
    ),
    GraderCase(
        id="predict-softmax-topk",
        file="classify.py",
        replacements=(
            ("import torch\n", "import torch\nimport torch.nn.functional as F\n"),
            (
                "    with torch.no_grad():\n"
                "        probabilities = torch.softmax(model(images.to(device)), dim=1)\n"
                "    best, digits = probabilities.max(dim=1)\n"
                "    return digits.cpu(), best.cpu()\n",
                "    with torch.no_grad():\n"
                "        logits = model(images.to(device))\n"
                "    probabilities = F.softmax(logits, dim=1)\n"
                "    best, digits = probabilities.topk(1, dim=1)\n"
                "    return digits.squeeze(1).cpu(), best.squeeze(1).cpu()\n",
            ),
        ),
    ),
    GraderCase(
        id="predict-reshape-batch",
        file="classify.py",
        replacements=(
            (
                "    if images.ndim == 2:\n"
                "        images = images[None, None]\n"
                "    elif images.ndim == 3:\n"
                "        # (1, 28, 28) is one image; (N, 28, 28) is N images without a "
                "channel dim.\n"
                "        images = images.unsqueeze(1)\n",
                "    images = images.reshape(-1, 1, 28, 28)\n",
            ),
        ),
    ),
]
