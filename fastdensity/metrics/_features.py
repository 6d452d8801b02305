"""Feature extractors for FID, KID, precision/recall and the Inception Score.

* :func:`features` turns images into a float64 feature matrix through any callable or
  ``torch.nn.Module``, or a named extractor: ``"digits"`` (the small CNN below, whose weights ship
  with fastdensity) or an :class:`InceptionV3Features` instance (the FID Inception-v3; weights from
  a file the user provides).
* :func:`class_probabilities` gives the softmax class probabilities the Inception Score needs.
* :class:`DigitsClassifier` is a small CNN for scikit-learn's 8×8 digits; its trained weights are
  ``fastdensity/data/digits_cnn.pt`` (trained by ``scripts/train_digits_cnn.py``), so that FID, KID
  and IS on digits work offline.

torch is imported only when a function needs it: importing this module never imports torch.
Nothing here ever downloads anything.
"""

from __future__ import annotations

import functools
import sys
from importlib import resources

import numpy as np

from .._backend._validation import Integer, check_parameter

__all__ = [
    "DigitsClassifier",
    "InceptionV3Features",
    "class_probabilities",
    "features",
    "load_digits_classifier",
]

DIGITS_WEIGHTS_FILE = "digits_cnn.pt"
DIGITS_FEATURE_DIM = 64


def _import_torch():
    try:
        import torch
    except ImportError:
        raise ImportError("fastdensity's feature extractors need PyTorch: pip install torch "
                          "(or pip install fastdensity[torch])") from None
    return torch


@functools.lru_cache(maxsize=1)
def _digits_classifier_class():
    """Define :class:`DigitsClassifier` on first use, so that importing this module needs no torch."""
    torch = _import_torch()
    nn = torch.nn

    class DigitsClassifier(nn.Module):
        """A small CNN classifier for scikit-learn's 8×8 digits; its 64-d penultimate layer is the
        feature space for FID / KID / precision-recall on digits.

        Architecture: conv 3×3 1→32, ReLU, max-pool 2 (→ 4×4), conv 3×3 32→64, ReLU, max-pool 2
        (→ 2×2), fully connected 256→64 (the *features*: :meth:`extract_features`), ReLU, fully connected
        64→10 (the logits).
        About 36 000 parameters.

        The shipped weights (``fastdensity/data/digits_cnn.pt``, loaded by
        :func:`load_digits_classifier`) were trained by ``scripts/train_digits_cnn.py`` on
        ``load_digits(split="train")`` (1257 images) with early stopping on the validation split.
        **Accuracy on the test split** (``load_digits(split="test")``, 360 images): 98.9 % (356 of 360);
        validation 99.4 %, training 99.8 % (selected by validation loss, epoch 103 of 133).

        Input: float images in [0, 1] of shape (n, 1, 8, 8) (pixel / 16, as :func:`load_digits`).
        """

        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 32, kernel_size=3, padding=1)
            self.conv2 = nn.Conv2d(32, 64, kernel_size=3, padding=1)
            self.fc1 = nn.Linear(64 * 2 * 2, DIGITS_FEATURE_DIM)
            self.fc2 = nn.Linear(DIGITS_FEATURE_DIM, 10)

        def extract_features(self, x):
            """The 64-d penultimate layer of images ``x`` (n, 1, 8, 8), before its ReLU.

            Before the ReLU because some units of a small ReLU layer are inactive on every digit
            (27 of 64 for the shipped weights): after it they would be constant zero columns and
            the feature covariance singular; before it every column varies.
            """
            F = torch.nn.functional
            x = F.max_pool2d(F.relu(self.conv1(x)), 2)
            x = F.max_pool2d(F.relu(self.conv2(x)), 2)
            return self.fc1(torch.flatten(x, 1))

        def forward(self, x):
            """The 10 class logits of images ``x`` (n, 1, 8, 8)."""
            return self.fc2(torch.nn.functional.relu(self.extract_features(x)))

        def class_logits(self, x):
            """Same as ``forward``: the 10 class logits."""
            return self(x)

    DigitsClassifier.__module__ = __name__
    DigitsClassifier.__qualname__ = "DigitsClassifier"
    DigitsClassifier._fastdensity_input = "digits"
    return DigitsClassifier


def __getattr__(name):
    # The torch classes are built on first access (PEP 562), so that this module imports without torch.
    if name == "DigitsClassifier":
        return _digits_classifier_class()
    if name == "InceptionV3Features":
        _import_torch()
        from ._inception import InceptionV3Features

        return InceptionV3Features
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def digits_weights_path():
    """The path of the shipped digits CNN weights, ``fastdensity/data/digits_cnn.pt``."""
    return resources.files("fastdensity").joinpath("data", DIGITS_WEIGHTS_FILE)


def load_digits_classifier(device=None):
    """Return a :class:`DigitsClassifier` with the shipped weights, in eval mode.

    Parameters
    ----------
    device : str or torch.device, optional
        Where to put it (default: the CPU).

    Returns
    -------
    DigitsClassifier
        A new instance on each call.
    """
    torch = _import_torch()
    model = _digits_classifier_class()()
    with resources.as_file(digits_weights_path()) as path:
        state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    return model.to(device if device is not None else "cpu").eval()


@functools.lru_cache(maxsize=8)
def _cached_digits_classifier(device_str):
    model = load_digits_classifier(device_str)
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def _resolve(extractor, role):
    """Return ``(function, owner_module_or_None, expects)`` for a named extractor or a callable.

    ``role`` is "features" or "logits"; ``expects`` is "digits", "inception" or None (any input).
    """
    if isinstance(extractor, str):
        if extractor != "digits":
            param = "extractor" if role == "features" else "classifier"
            raise ValueError(f"{param} must be 'digits', an InceptionV3Features instance, a torch.nn.Module or a "
                             f"callable; got {extractor!r} (the Inception network needs the weights file: "
                             f"InceptionV3Features(weights_path))")
        return "digits", None, "digits"
    if not callable(extractor):
        param = "extractor" if role == "features" else "classifier"
        raise TypeError(f"{param} must be 'digits' or a callable / torch.nn.Module; got {type(extractor).__name__}")
    method = "extract_features" if role == "features" else "class_logits"
    fn = getattr(extractor, method, None) or extractor
    torch = sys.modules.get("torch")
    owner = extractor if torch is not None and isinstance(extractor, torch.nn.Module) else None
    return fn, owner, getattr(extractor, "_fastdensity_input", None)


def _module_device_dtype(module, torch):
    for tensor in module.parameters():
        return tensor.device, tensor.dtype
    for tensor in module.buffers():
        return tensor.device, (tensor.dtype if tensor.is_floating_point() else torch.float32)
    return None, torch.float32


def _prepare_batch(batch, expects, torch):
    """Shape (and check the range of) one batch for the extractor."""
    if expects == "digits":
        n = batch.shape[0]
        if tuple(batch.shape[1:]) in ((64,), (8, 8), (1, 8, 8)):
            batch = batch.reshape(n, 1, 8, 8)
        else:
            raise ValueError(f"the digits extractor needs 8×8 images: (n, 8, 8), (n, 1, 8, 8) or (n, 64); "
                             f"got shape (n, {', '.join(map(str, batch.shape[1:]))})")
    elif batch.ndim == 3:
        batch = batch.unsqueeze(1)  # (n, h, w) → (n, 1, h, w): one grey channel
    if expects is not None:
        lo, hi = float(batch.min()), float(batch.max())
        if not (np.isfinite(lo) and np.isfinite(hi)) or lo < -1e-3 or hi > 1 + 1e-3:
            raise ValueError(f"images must hold finite values in [0, 1] (e.g. pixel / 16 for digits, pixel / 255); "
                             f"got values in [{lo:g}, {hi:g}]")
    return batch


def _run(images, extractor, role, batch_size, device):
    torch = _import_torch()
    batch_size = check_parameter("batch_size", batch_size, Integer(1))
    fn, owner, expects = _resolve(extractor, role)
    is_torch = isinstance(images, torch.Tensor)
    if is_torch:
        data = images.detach()
    else:
        data = np.asarray(images)
        if data.dtype.kind not in "biuf":
            raise TypeError(f"images must be real numbers; got dtype {data.dtype}")
    if data.ndim not in (2, 3, 4) or data.shape[0] == 0:
        raise ValueError(f"images must be a non-empty array of shape (n, h, w) or (n, c, h, w) (or (n, d) for a "
                         f"callable that takes vectors); got shape {tuple(data.shape)}")
    if device is None:
        device = data.device if is_torch else None
    if isinstance(fn, str):  # "digits"
        owner = _cached_digits_classifier(str(torch.device(device if device is not None else "cpu")))
        fn = owner.extract_features if role == "features" else owner.class_logits
    if owner is not None:
        module_device, dtype = _module_device_dtype(owner, torch)
        if device is None:
            device = module_device if module_device is not None else "cpu"
        elif module_device is not None and module_device != torch.device(device):
            raise ValueError(f"the extractor's parameters are on {module_device} but the images go to {device}; "
                             f"move it first (extractor.to({str(device)!r})) or pass device={str(module_device)!r}")
    else:
        dtype = torch.float32
    device = torch.device(device if device is not None else "cpu")
    was_training = owner.training if owner is not None else None
    outputs = []
    try:
        if owner is not None:
            owner.eval()
        with torch.no_grad():
            for start in range(0, data.shape[0], batch_size):
                chunk = data[start:start + batch_size]
                batch = chunk.to(device=device, dtype=dtype) if is_torch else \
                    torch.from_numpy(np.ascontiguousarray(chunk)).to(device=device, dtype=dtype)
                out = fn(_prepare_batch(batch, expects, torch))
                out = out if isinstance(out, torch.Tensor) else torch.as_tensor(np.asarray(out))
                out = out.reshape(out.shape[0], -1).to(torch.float64)
                # numpy callers get numpy: bring each batch home at once (GPU memory stays one batch).
                outputs.append(out if is_torch else out.cpu())
    finally:
        if owner is not None:
            owner.train(was_training)
    result = torch.cat(outputs)
    if is_torch:
        return result.to(images.device) if result.device != images.device else result
    return result.numpy()


def features(images, extractor="digits", batch_size: int = 256, device=None):
    """Feature matrix of ``images`` through a feature extractor, in float64.

    Parameters
    ----------
    images : ndarray or torch tensor of shape (n, h, w) or (n, c, h, w)
        Pixel values in [0, 1] (checked for the named extractors). (n, h, w) gains one channel.
        For the digits extractor (n, 64) rows are accepted too; a callable also accepts (n, d).
    extractor : "digits", InceptionV3Features, torch.nn.Module or callable, default "digits"
        ``"digits"``: the 64-d penultimate layer of the shipped :class:`DigitsClassifier`.
        An object with an ``extract_features`` method (:class:`DigitsClassifier`,
        :class:`InceptionV3Features`) is called through that method; any other callable is called
        on batches of shape (b, c, h, w) (or (b, d)) and must return (b, ...) outputs, flattened
        to rows. A ``torch.nn.Module`` runs in eval mode (its mode is restored afterwards), always
        under ``torch.no_grad()``.
    batch_size : int, default 256
        Images per call; it changes the result only by rounding.
    device : str or torch.device, optional
        Where batches are computed. Default: the input tensor's device, else the module's device,
        else the CPU. A module is never moved: it must already be on ``device``.

    Returns
    -------
    ndarray or torch tensor of shape (n, n_features), float64
        numpy in → numpy out; torch in → torch out on the input's device.
    """
    return _run(images, extractor, "features", batch_size, device)


def class_probabilities(images, classifier="digits", batch_size: int = 256, device=None):
    """Softmax class probabilities of ``images``, for the Inception Score, in float64.

    Parameters
    ----------
    images : ndarray or torch tensor of shape (n, h, w) or (n, c, h, w), values in [0, 1]
    classifier : "digits", InceptionV3Features, torch.nn.Module or callable, default "digits"
        ``"digits"``: the shipped :class:`DigitsClassifier` (10 classes). An object with a
        ``class_logits`` method (:class:`DigitsClassifier`; :class:`InceptionV3Features`, 1008
        classes as in the FID/IS TensorFlow graph) is called through it; any other callable must
        return logits (b, n_classes). The softmax is taken in float64.
    batch_size : int, default 256
    device : str or torch.device, optional
        As in :func:`features`.

    Returns
    -------
    ndarray or torch tensor of shape (n, n_classes), float64; rows sum to 1
    """
    logits = _run(images, classifier, "logits", batch_size, device)
    if isinstance(logits, np.ndarray):
        shifted = logits - logits.max(axis=1, keepdims=True)
        probs = np.exp(shifted)
        return probs / probs.sum(axis=1, keepdims=True)
    return _import_torch().softmax(logits, dim=1)
