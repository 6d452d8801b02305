"""MNIST from the original IDX files or an ``.npz`` the user already has (never downloaded)."""

from __future__ import annotations

import gzip
import os

import numpy as np

# --------------------------------------------------------------------------------------------
# MNIST from files the user already has (never downloaded)
# --------------------------------------------------------------------------------------------

_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_MNIST_HELP = ("fastdensity never downloads data: get the four IDX files (train-images-idx3-ubyte.gz, "
               "train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz) from the "
               "MNIST distribution (e.g. https://yann.lecun.com/exdb/mnist/ or a mirror), or keras' mnist.npz, "
               "and pass their directory or file path")
_IDX_IMAGES_MAGIC, _IDX_LABELS_MAGIC = 0x00000803, 0x00000801


def load_mnist(path, split=None):
    """Read MNIST (or an MNIST-format set such as Fashion-MNIST) from files you already have.

    Nothing is ever downloaded. Accepted layouts:

    * a directory holding the original IDX files ``train-images-idx3-ubyte``,
      ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each
      either plain or gzipped (``.gz``); the variant names ``train-images.idx3-ubyte`` etc.
      (as some archive tools unpack them) are found too;
    * the path of one IDX image file: its labels file is looked for next to it (``images-idx3``
      → ``labels-idx1`` in the name);
    * an ``.npz`` file with the arrays ``x_train``, ``y_train``, ``x_test``, ``y_test`` (keras'
      ``mnist.npz``), read with ``allow_pickle=False``.

    Magic numbers, dimensions, file lengths and label ranges are checked.

    Parameters
    ----------
    path : str or os.PathLike
    split : {"train", "test", "all"} or None, default None
        Which rows to return from a directory or an ``.npz`` (None means "train"; "all" is train
        followed by test). Must be None for a single IDX file, whose rows are returned.

    Returns
    -------
    X : ndarray of shape (n, 28, 28), float32 in [0, 1] (pixel / 255)
    y : ndarray of shape (n,), int64

    Raises
    ------
    FileNotFoundError
        When the path or a needed file does not exist (the message says where to get MNIST).
    ValueError
        When a file is not a valid IDX/npz MNIST file.
    """
    path = os.fspath(path)
    if split is not None and split not in ("train", "test", "all"):
        raise ValueError(f"split must be None, 'train', 'test' or 'all'; got {split!r}")
    if not os.path.exists(path):
        raise FileNotFoundError(f"load_mnist: {path!r} does not exist. {_MNIST_HELP}")
    if os.path.isdir(path):
        parts = ("train", "test") if split == "all" else (split or "train",)
        arrays = [_read_idx_pair(_find_idx(path, images), _find_idx(path, labels))
                  for images, labels in (_MNIST_FILES[p] for p in parts)]
        return np.concatenate([a[0] for a in arrays]), np.concatenate([a[1] for a in arrays])
    if path.endswith(".npz"):
        return _read_mnist_npz(path, split or "train")
    if split is not None:
        raise ValueError(f"split must be None when path is a single IDX file; got split={split!r} for {path!r}")
    name = os.path.basename(path)
    for tag in ("images-idx3", "images.idx3"):
        if tag in name:
            labels = os.path.join(os.path.dirname(path), name.replace(tag, tag.replace("images", "labels")
                                                                       .replace("idx3", "idx1")))
            stem = labels[:-3] if labels.endswith(".gz") else labels
            for candidate in (stem, stem + ".gz"):
                if os.path.isfile(candidate):
                    return _read_idx_pair(path, candidate)
            raise FileNotFoundError(f"load_mnist: no labels file {stem!r}[.gz] next to {path!r}. {_MNIST_HELP}")
    raise ValueError(f"load_mnist: {path!r} is neither a directory, an .npz file nor an IDX image file "
                     f"(a name containing 'images-idx3')")


def _find_idx(directory, stem):
    candidates = [stem, stem.replace("-idx", ".idx")]
    for name in candidates:
        for suffix in ("", ".gz"):
            full = os.path.join(directory, name + suffix)
            if os.path.isfile(full):
                return full
    raise FileNotFoundError(f"load_mnist: no {stem!r} (or {stem}.gz) in {directory!r}. {_MNIST_HELP}")


def _read_idx(path, magic, ndim):
    """Read one IDX file of unsigned bytes after checking its header and length."""
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            data = fh.read()
    except (OSError, EOFError) as exc:  # e.g. a truncated or non-gzip ".gz"
        raise ValueError(f"load_mnist: cannot read {path!r}: {exc}") from exc
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"load_mnist: {path!r} is too short ({len(data)} bytes) to be an IDX file")
    found = int.from_bytes(data[:4], "big")
    if found != magic:
        kind = "images (2051 = 0x803)" if magic == _IDX_IMAGES_MAGIC else "labels (2049 = 0x801)"
        raise ValueError(f"load_mnist: {path!r} has magic number {found} (0x{found:x}); expected IDX {kind}")
    dims = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(dims, dtype=np.int64))
    if len(data) != expected:
        raise ValueError(f"load_mnist: {path!r} has {len(data)} bytes; its header (dims {dims}) says {expected}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def _read_idx_pair(images_path, labels_path):
    images = _read_idx(images_path, _IDX_IMAGES_MAGIC, 3)
    labels = _read_idx(labels_path, _IDX_LABELS_MAGIC, 1)
    return _check_mnist_arrays(images, labels, f"{images_path!r} / {labels_path!r}")


def _read_mnist_npz(path, split):
    keys = ("x_train", "y_train", "x_test", "y_test")
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ValueError(f"load_mnist: cannot read {path!r} as an .npz file: {exc}") from exc
    with archive:
        missing = [k for k in keys if k not in archive.files]
        if missing:
            raise ValueError(f"load_mnist: {path!r} lacks the arrays {missing}; expected {list(keys)} "
                             f"(keras' mnist.npz layout), found {archive.files}")
        parts = ("train", "test") if split == "all" else (split,)
        arrays = [_check_mnist_arrays(archive[f"x_{p}"], archive[f"y_{p}"], f"{path!r} [{p}]") for p in parts]
    return np.concatenate([a[0] for a in arrays]), np.concatenate([a[1] for a in arrays])


def _check_mnist_arrays(images, labels, where):
    if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise ValueError(f"load_mnist: {where}: expected images (n, h, w) and labels (n,); got shapes "
                         f"{images.shape} and {labels.shape}")
    if images.dtype != np.uint8:
        raise ValueError(f"load_mnist: {where}: expected uint8 pixels 0–255; got dtype {images.dtype}")
    if labels.dtype.kind not in "iu" or (labels.size and (labels.min() < 0 or labels.max() > 9)):
        raise ValueError(f"load_mnist: {where}: labels must be integers 0–9")
    return images.astype(np.float32) / np.float32(255.0), labels.astype(np.int64)
