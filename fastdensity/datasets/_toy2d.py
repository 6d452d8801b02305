"""The 2-D Gaussian-mixture benchmarks of VEEGAN / PacGAN (ring, grid) and their mode-coverage measure."""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from .._backend._validation import Integer, Real, check_parameter

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
    return check_parameter(name, value, Integer(1))


def _check_positive_float(value, name):
    return check_parameter(name, value, Real(0, low_open=True))


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
