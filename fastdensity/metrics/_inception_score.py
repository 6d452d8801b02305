"""Inception Score (Salimans et al. 2016, "Improved techniques for training GANs").

IS = exp(E_x KL(p(y|x) ‖ p(y))), with p(y) the mean of the predicted class distributions over the
set; computed on ``splits`` consecutive parts of the rows, reported as the mean and standard
deviation over the parts (as the reference implementation). It lies between 1 (every prediction
equal) and the number of classes (confident, balanced predictions).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .._backend._namespace import array_kind
from .._backend._validation import Integer, check_parameter
from ._fid import _xp, check_features

__all__ = ["InceptionScoreResult", "inception_score"]

# Rows of probabilities must sum to 1 within this (float32 softmax outputs over 1000 classes do
# to ~1e-6); they are then renormalised in float64.
_SUM_TOL = 1e-3


@dataclass(frozen=True)
class InceptionScoreResult:
    """Result of :func:`inception_score`: ``mean`` and ``std`` (ddof = 0) over the splits and the
    score of each split in ``values``."""

    mean: float
    std: float
    values: np.ndarray = field(repr=False)


def inception_score(class_probabilities, splits=10):
    """Inception Score of predicted class probabilities, in float64.

    Parameters
    ----------
    class_probabilities : array of shape (n, n_classes)
        p(y|x) for each generated sample (e.g. the softmax of a classifier); rows non-negative and
        summing to 1 (within 1e-3; renormalised). NumPy, torch (CPU or CUDA) or CuPy; computed
        on the array's device.
    splits : int, default=10
        Number of consecutive parts of the rows (1 ≤ splits ≤ n). The rows are not shuffled:
        shuffle them first if they are ordered (e.g. by class).

    Returns
    -------
    InceptionScoreResult
        ``mean``, ``std`` and ``values`` (one score per split). Terms with p(y|x) = 0 count 0
        (0 log 0 = 0).
    """
    kind = array_kind(class_probabilities)
    P = check_features(class_probabilities, "class_probabilities", min_samples=1, kind=kind)
    xp = _xp(kind)
    n = P.shape[0]
    splits = check_parameter("splits", splits, Integer(1, n))  # at most one split per row
    if float(P.min()) < 0.0:
        raise ValueError(f"class_probabilities must be non-negative; smallest entry {float(P.min()):.3g}")
    sums = P.sum(1)
    worst = float(xp.abs(sums - 1.0).max())
    if worst > _SUM_TOL:
        raise ValueError(
            f"each row of class_probabilities must sum to 1 (within {_SUM_TOL}); the worst row is off by "
            f"{worst:.3g}. Pass probabilities (e.g. a softmax), not logits"
        )
    P = P / sums[:, None]
    values = np.empty(int(splits))
    for s in range(int(splits)):
        part = P[s * n // splits:(s + 1) * n // splits]
        marginal = part.mean(0)
        # 0 log 0 = 0: the log is only taken where p > 0 (then the marginal is > 0 too).
        positive = part > 0
        ratio = xp.where(positive, part, 1.0 + 0.0 * part) / xp.where(positive, marginal[None, :], 1.0 + 0.0 * part)
        kl = (part * xp.log(ratio)).sum(1).mean()
        values[s] = float(np.exp(float(kl)))
    return InceptionScoreResult(mean=float(values.mean()), std=float(values.std()), values=values)
