"""Train the digits CNN whose weights ship as ``fastdensity/data/digits_cnn.pt``.

Reproducible: one thread, ``torch.use_deterministic_algorithms(True)``, seeds from
``torch.Generator`` / ``torch.manual_seed``; the same torch version on the same CPU gives the same
weights. Trains :class:`fastdensity.metrics._features.DigitsClassifier` on
``load_digits(split="train")`` with Adam, light augmentation (random shifts of up to one pixel),
and early stopping on the validation split (the weights of the epoch with the lowest validation
loss are kept); reports the accuracy on the test split, which is written into the
``DigitsClassifier`` docstring by hand. Takes well under a minute on one core.

Usage (from the repository root)::

    python scripts/train_digits_cnn.py [-o fastdensity/data/digits_cnn.pt] [--seed 0]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile

logger = logging.getLogger("train_digits_cnn")


def _shift(x, generator, torch):
    """Shift each image by up to one pixel in each direction (zero fill), a cheap augmentation."""
    n = x.shape[0]
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1))
    dy = torch.randint(0, 3, (n,), generator=generator)
    dx = torch.randint(0, 3, (n,), generator=generator)
    rows = (dy[:, None] + torch.arange(8)[None, :])  # (n, 8)
    cols = (dx[:, None] + torch.arange(8)[None, :])
    index = torch.arange(n)[:, None, None]
    return padded[index, 0, rows[:, :, None], cols[:, None, :]].unsqueeze(1)


def accuracy(model, X, y):
    """Fraction of correct predictions of ``model`` on images ``X`` (n, 1, 8, 8) with labels ``y``."""
    import torch

    with torch.no_grad():
        return float((model(X).argmax(dim=1) == y).double().mean())


def train(seed: int = 0, max_epochs: int = 200, patience: int = 30, batch_size: int = 64, lr: float = 1e-3):
    """Train a DigitsClassifier; return ``(model, info)`` with the test accuracy in ``info``."""
    import torch

    from fastdensity.datasets import load_digits
    from fastdensity.metrics._features import _digits_classifier_class

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)

    def split(name):
        X, y = load_digits(split=name, return_labels=True)
        return torch.from_numpy(X).unsqueeze(1), torch.from_numpy(y)

    X_train, y_train = split("train")
    X_val, y_val = split("validation")
    X_test, y_test = split("test")

    model = _digits_classifier_class()()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=1e-4)
    loss_fn = torch.nn.CrossEntropyLoss()
    best = (float("inf"), None, -1)
    for epoch in range(max_epochs):
        model.train()
        order = torch.randperm(len(X_train), generator=generator)
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            optimizer.zero_grad()
            loss = loss_fn(model(_shift(X_train[idx], generator, torch)), y_train[idx])
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            val_loss = float(loss_fn(model(X_val), y_val))
        if val_loss < best[0]:
            best = (val_loss, {k: v.clone() for k, v in model.state_dict().items()}, epoch)
        elif epoch - best[2] >= patience:
            break
    model.load_state_dict(best[1])
    model.eval()
    info = {
        "best_epoch": best[2],
        "epochs_run": epoch + 1,
        "validation_loss": best[0],
        "train_accuracy": accuracy(model, X_train, y_train),
        "validation_accuracy": accuracy(model, X_val, y_val),
        "test_accuracy": accuracy(model, X_test, y_test),
    }
    return model, info


def save_weights(model, path):
    """Write the float32 state dict to ``path`` atomically (temporary file, then ``os.replace``)."""
    import torch

    state = {k: v.detach().to(torch.float32).contiguous() for k, v in model.state_dict().items()}
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".digits_cnn-", suffix=".pt", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(state, fh)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def main(argv=None):
    """Command-line entry point: train, log the accuracies, write the weights."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", default=os.path.join(root, "fastdensity", "data", "digits_cnn.pt"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    sys.path.insert(0, root)
    model, info = train(seed=args.seed)
    for key, value in info.items():
        logger.info("%s: %s", key, f"{value:.4f}" if isinstance(value, float) else value)
    save_weights(model, args.output)
    logger.info("wrote %s (%d bytes)", args.output, os.path.getsize(args.output))
    return info


if __name__ == "__main__":
    main()
