"""Small datasets for examples, tests and the demo. Nothing is ever downloaded.

* :func:`load_old_faithful`: the Old Faithful geyser data (272 eruptions), packaged with
  fastdensity as ``fastdensity/data/old_faithful.csv``;
* :func:`load_digits_features`: scikit-learn's 8×8 handwritten digits (shipped inside
  scikit-learn) as float64 features;
* :func:`train_test_split_fixed`: a reproducible random train/test split;
* :func:`load_digits`: the same digits as float32 images in [0, 1] (optionally thresholded) with a
  fixed train / validation / test split, for generative models;
* :func:`make_ring`, :func:`make_grid` and :func:`mode_coverage`: the 2-D Gaussian mixtures and the
  mode-collapse measure of VEEGAN / PacGAN;
* :func:`load_mnist`: MNIST from IDX or ``.npz`` files the user already has.
"""

from __future__ import annotations

import gzip
import os
import sys
from dataclasses import dataclass
from importlib import resources

import numpy as np

__all__ = [
    "ModeCoverage",
    "digits_split_indices",
    "grid_centers",
    "load_digits",
    "load_digits_features",
    "load_mnist",
    "load_old_faithful",
    "make_grid",
    "make_ring",
    "mode_coverage",
    "ring_centers",
    "train_test_split_fixed",
]

OLD_FAITHFUL_COLUMNS = ("eruptions", "waiting")


def load_old_faithful(return_frame: bool = False):
    """Return the Old Faithful geyser data: 272 rows of (eruptions, waiting).

    ``eruptions`` is the eruption duration in minutes and ``waiting`` the waiting time to the
    next eruption in minutes (Härdle 1991, as in R's ``datasets::faithful``).

    Parameters
    ----------
    return_frame : bool, default False
        Return a pandas DataFrame with columns ``eruptions`` and ``waiting`` instead of an array
        (needs pandas).

    Returns
    -------
    ndarray of shape (272, 2), float64, or a pandas DataFrame
    """
    source = resources.files("fastdensity").joinpath("data", "old_faithful.csv")
    with source.open("r", encoding="utf-8") as fh:
        data = np.loadtxt(fh, delimiter=",", skiprows=1, dtype=np.float64, ndmin=2)
    if return_frame:
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("load_old_faithful(return_frame=True) needs pandas; pip install pandas") from None
        return pd.DataFrame(data, columns=list(OLD_FAITHFUL_COLUMNS))
    return data


def load_digits_features():
    """Return scikit-learn's 8×8 digits as ``(X, y)``: X float64 of shape (1797, 64) with pixel
    intensities 0–16, y int64 labels 0–9. The data ships with scikit-learn; nothing is downloaded.
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return np.asarray(bunch.data, dtype=np.float64), np.asarray(bunch.target, dtype=np.int64)


def train_test_split_fixed(X, test_fraction: float = 0.25, seed: int = 0):
    """Split the rows of ``X`` into ``(X_train, X_test)`` by a random permutation from
    ``np.random.default_rng(seed)``; the same arguments always give the same split.

    ``test_fraction`` of the rows (rounded, at least one and leaving at least one for training)
    go to the test set. Row order within each part follows the permutation.
    """
    X = np.asarray(X)
    if X.ndim < 1 or X.shape[0] < 2:
        raise ValueError(f"train_test_split_fixed needs at least 2 rows; got shape {X.shape}")
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float, np.floating)) \
            or not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be a number strictly between 0 and 1; got {test_fraction!r}")
    n = X.shape[0]
    n_test = min(max(int(round(n * float(test_fraction))), 1), n - 1)
    order = np.random.default_rng(seed).permutation(n)
    return X[order[n_test:]], X[order[:n_test]]


# --------------------------------------------------------------------------------------------
# 8×8 digits as images, with a fixed train / validation / test split
# --------------------------------------------------------------------------------------------

DIGITS_SPLIT_SEED = 0
DIGITS_SPLIT_SIZES = {"test": 360, "validation": 180}  # the training split gets the remaining 1257
_DIGITS_SPLITS = ("train", "validation", "test", "all")


def digits_split_indices(split: str = "all"):
    """Row indices (into scikit-learn's 1797 digits) of a split of :func:`load_digits`.

    The split comes from one fixed permutation, ``np.random.default_rng(0).permutation(1797)``
    (seed ``DIGITS_SPLIT_SEED``): its first 360 entries are the test split, the next 180 the
    validation split, the remaining 1257 the training split. Each split's indices are returned
    sorted, so that the rows keep scikit-learn's order. The three splits are disjoint and together
    cover every row.

    Parameters
    ----------
    split : {"train", "validation", "test", "all"}, default "all"

    Returns
    -------
    ndarray of int64
    """
    if split not in _DIGITS_SPLITS:
        raise ValueError(f"split must be one of {_DIGITS_SPLITS}; got {split!r}")
    n = 1797
    if split == "all":
        return np.arange(n, dtype=np.int64)
    order = np.random.default_rng(DIGITS_SPLIT_SEED).permutation(n)
    n_test, n_val = DIGITS_SPLIT_SIZES["test"], DIGITS_SPLIT_SIZES["validation"]
    parts = {"test": order[:n_test], "validation": order[n_test:n_test + n_val], "train": order[n_test + n_val:]}
    return np.sort(parts[split]).astype(np.int64)


def load_digits(binarize: bool = False, split: str = "all", return_labels: bool = False, flatten: bool = False):
    """Return scikit-learn's 8×8 handwritten digits as float32 images in [0, 1].

    The data (1797 images, pixel intensities 0–16) ships with scikit-learn; nothing is
    downloaded. Pixels are divided by 16. For a reproducible evaluation the rows are split once
    into test (360), validation (180) and training (1257) rows by a fixed permutation from
    ``np.random.default_rng(0)``; see :func:`digits_split_indices`.

    Parameters
    ----------
    binarize : bool, default False
        Threshold at 0.5 (raw pixel ≥ 8 → 1.0, else 0.0), giving {0, 1} float32 images, the
        usual input of a Bernoulli likelihood.
    split : {"train", "validation", "test", "all"}, default "all"
    return_labels : bool, default False
        Also return the digit labels (int64, 0–9).
    flatten : bool, default False
        Return rows of 64 pixels, shape (n, 64), instead of (n, 8, 8) images.

    Returns
    -------
    X : ndarray of shape (n, 8, 8) or (n, 64), float32
    y : ndarray of shape (n,), int64
        Only with ``return_labels=True``.
    """
    if not isinstance(binarize, (bool, np.bool_)):
        raise TypeError(f"binarize must be True or False; got {binarize!r}")
    index = digits_split_indices(split)
    from sklearn.datasets import load_digits as _sklearn_digits

    bunch = _sklearn_digits()
    raw = np.asarray(bunch.data, dtype=np.float32)[index]
    X = (raw >= 8).astype(np.float32) if binarize else raw / np.float32(16.0)
    if not flatten:
        X = X.reshape(-1, 8, 8)
    if return_labels:
        return X, np.asarray(bunch.target, dtype=np.int64)[index]
    return X


# --------------------------------------------------------------------------------------------
# 2-D Gaussian mixtures for mode-collapse benchmarks (ring of 8, 5×5 grid)
# --------------------------------------------------------------------------------------------

def ring_centers(n_modes: int = 8, radius: float = 1.0):
    """Centres of the ring mixture: ``radius · (cos 2πk/n_modes, sin 2πk/n_modes)``, k = 0..n_modes−1.

    The angles are 2πk/n_modes, not ``linspace(0, 2π, n_modes)``: the latter, used by several
    public implementations, includes both 0 and 2π and so puts two modes on one point.

    Returns
    -------
    ndarray of shape (n_modes, 2), float64
    """
    _check_positive_int(n_modes, "n_modes")
    _check_positive_float(radius, "radius")
    angles = 2.0 * np.pi * np.arange(n_modes) / n_modes
    return float(radius) * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def grid_centers():
    """Centres of the 5×5 grid mixture: {−4, −2, 0, 2, 4}², row-major in (x, y).

    Returns
    -------
    ndarray of shape (25, 2), float64
    """
    ticks = np.arange(-4.0, 5.0, 2.0)
    xx, yy = np.meshgrid(ticks, ticks, indexing="ij")
    return np.stack([xx.ravel(), yy.ravel()], axis=1)


def _sample_mixture(n_samples, centers, std, random_state):
    _check_positive_int(n_samples, "n_samples")
    _check_positive_float(std, "std")
    rng = np.random.default_rng(random_state)
    component = rng.integers(len(centers), size=n_samples)
    return centers[component] + float(std) * rng.standard_normal((n_samples, 2))


def make_ring(n_samples: int, n_modes: int = 8, radius: float = 1.0, std: float = 0.01, random_state=None,
              return_centers: bool = False):
    """Draw from an equal-weight mixture of isotropic Gaussians on a ring (VEEGAN / PacGAN's "2D ring").

    The centres are :func:`ring_centers` ``(n_modes, radius)`` at angles 2πk/n_modes,
    k = 0..n_modes−1 (not ``linspace(0, 2π, n_modes)``, which would put two modes on one point);
    each sample picks a centre uniformly at random and adds N(0, std² I).

    Parameters
    ----------
    n_samples : int
    n_modes : int, default 8
    radius : float, default 1.0
    std : float, default 0.01
        Standard deviation of every component, per coordinate.
    random_state : None, int or numpy.random.Generator
        Passed to ``np.random.default_rng``.
    return_centers : bool, default False
        Also return the centres.

    Returns
    -------
    X : ndarray of shape (n_samples, 2), float64
    centers : ndarray of shape (n_modes, 2), float64
        Only with ``return_centers=True``.
    """
    centers = ring_centers(n_modes, radius)
    X = _sample_mixture(n_samples, centers, std, random_state)
    return (X, centers) if return_centers else X


def make_grid(n_samples: int, std: float = 0.05, random_state=None, return_centers: bool = False):
    """Draw from an equal-weight mixture of 25 isotropic Gaussians on the grid {−4, −2, 0, 2, 4}²
    (VEEGAN / PacGAN's "2D grid"; centres from :func:`grid_centers`).

    Parameters
    ----------
    n_samples : int
    std : float, default 0.05
        Standard deviation of every component, per coordinate.
    random_state : None, int or numpy.random.Generator
        Passed to ``np.random.default_rng``.
    return_centers : bool, default False
        Also return the centres.

    Returns
    -------
    X : ndarray of shape (n_samples, 2), float64
    centers : ndarray of shape (25, 2), float64
        Only with ``return_centers=True``.
    """
    centers = grid_centers()
    X = _sample_mixture(n_samples, centers, std, random_state)
    return (X, centers) if return_centers else X


def _check_positive_int(value, name):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}")


def _check_positive_float(value, name):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number; got {value!r}")


# --------------------------------------------------------------------------------------------
# Mode coverage (VEEGAN / PacGAN protocol)
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class ModeCoverage:
    """Result of :func:`mode_coverage`.

    Attributes
    ----------
    modes_captured : int
        Number of modes with at least ``min_samples`` high-quality samples.
    n_modes : int
        Number of centres.
    high_quality_fraction : float
        Fraction of all samples within ``threshold · std`` of their nearest centre.
    counts : ndarray of shape (n_modes,), int64
        High-quality samples per mode (each sample counts for its nearest centre only).
    n_samples : int
    """

    modes_captured: int
    n_modes: int
    high_quality_fraction: float
    counts: np.ndarray
    n_samples: int

    @property
    def all_captured(self) -> bool:
        """Whether every mode was captured."""
        return self.modes_captured == self.n_modes


def mode_coverage(samples, centers, std, threshold: float = 3.0, min_samples: int = 1, chunk_size: int = 65536):
    """Modes captured and fraction of high-quality samples of a generator on a Gaussian mixture.

    The protocol of VEEGAN (Srivastava et al., 2017, "VEEGAN: Reducing mode collapse in GANs
    using implicit variational learning", §5.1) and PacGAN (Lin et al., 2018, "PacGAN: The power
    of two samples in generative adversarial networks", §5), who evaluate 2,500 samples: each
    sample is assigned to its nearest centre; it is *high quality* when its distance to that
    centre is below ``threshold · std`` (three standard deviations); a mode is *captured* when at
    least ``min_samples`` high-quality samples are assigned to it. ``min_samples=1`` (the default)
    is what PacGAN's published evaluation code does (``MetricLogger`` in
    ``fjxmlzn/PacGAN/synthetic_data_experiments``: a mode counts as covered when its count of
    samples within 3σ is non-zero); raise it for a stricter count that a few stray samples cannot
    satisfy. In 2-D a perfect sampler has an expected high-quality fraction of
    ``1 − exp(−threshold²/2)`` (98.9 % for 3σ): the radius of a 2-D standard normal is Rayleigh.

    Parameters
    ----------
    samples : array-like or torch tensor of shape (n, d)
        Generated samples. torch tensors are evaluated with torch on their own device.
    centers : array-like of shape (n_modes, d)
        Mixture means, e.g. :func:`ring_centers` or :func:`grid_centers`.
    std : float
        Standard deviation of the mixture components (per coordinate, all equal).
    threshold : float, default 3.0
        High-quality radius in units of ``std`` (strict inequality).
    min_samples : int, default 1
        High-quality samples a mode needs to count as captured.
    chunk_size : int, default 65536
        Rows per block, so that memory stays O(n + n_modes).

    Returns
    -------
    ModeCoverage
    """
    _check_positive_float(std, "std")
    _check_positive_float(threshold, "threshold")
    _check_positive_int(min_samples, "min_samples")
    _check_positive_int(chunk_size, "chunk_size")
    centers = np.asarray(centers, dtype=np.float64)
    if centers.ndim != 2 or centers.shape[0] < 1:
        raise ValueError(f"centers must be a non-empty 2-D array (n_modes, d); got shape {centers.shape}")
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(samples, torch.Tensor):
        nearest, dist2 = _nearest_center_torch(torch, samples, centers, chunk_size)
    else:
        nearest, dist2 = _nearest_center_numpy(np.asarray(samples), centers, chunk_size)
    good = dist2 < (float(threshold) * float(std)) ** 2
    counts = np.bincount(nearest[good], minlength=len(centers)).astype(np.int64)
    return ModeCoverage(modes_captured=int(np.count_nonzero(counts >= min_samples)), n_modes=len(centers),
                        high_quality_fraction=float(good.mean()), counts=counts, n_samples=len(nearest))


def _check_samples_shape(shape, centers):
    if len(shape) != 2 or shape[0] == 0 or shape[1] != centers.shape[1]:
        raise ValueError(f"samples must be a non-empty 2-D array with {centers.shape[1]} columns (one per "
                         f"coordinate of the centres); got shape {tuple(shape)}")


def _nearest_center_numpy(samples, centers, chunk_size):
    _check_samples_shape(samples.shape, centers)
    if samples.dtype.kind not in "biuf":
        raise TypeError(f"samples must contain real numbers; got dtype {samples.dtype}")
    samples = samples.astype(np.float64, copy=False)
    nearest = np.empty(len(samples), dtype=np.int64)
    dist2 = np.empty(len(samples), dtype=np.float64)
    for start in range(0, len(samples), chunk_size):
        block = samples[start:start + chunk_size]
        d2 = ((block[:, None, :] - centers[None, :, :]) ** 2).sum(axis=2)
        nearest[start:start + len(block)] = d2.argmin(axis=1)
        dist2[start:start + len(block)] = d2.min(axis=1)
    # NaN samples are never high quality (NaN < r² is False) and count for no mode.
    return nearest, dist2


def _nearest_center_torch(torch, samples, centers, chunk_size):
    _check_samples_shape(tuple(samples.shape), centers)
    if samples.dtype.is_complex:
        raise TypeError(f"samples must contain real numbers; got dtype {samples.dtype}")
    samples = samples.detach().to(torch.float64)
    c = torch.as_tensor(centers, device=samples.device)
    nearest, dist2 = [], []
    for start in range(0, samples.shape[0], chunk_size):
        d2 = ((samples[start:start + chunk_size, None, :] - c[None, :, :]) ** 2).sum(dim=2)
        values, index = d2.min(dim=1)
        nearest.append(index)
        dist2.append(values)
    # Only the per-sample results (n ints and floats) come to the host.
    return torch.cat(nearest).cpu().numpy().astype(np.int64), torch.cat(dist2).cpu().numpy()


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
