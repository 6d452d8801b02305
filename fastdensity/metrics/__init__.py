"""Evaluation metrics for density models and generative models.

* :func:`log_likelihood`: held-out log-likelihood in nats and bits per dimension;
* :func:`fid`, :func:`frechet_distance`, :class:`FeatureStatistics`: Fréchet (Inception) distance
  in float64 from symmetric eigendecompositions, with statistics accumulated in batches;
* :func:`kid`: Kernel Inception Distance (unbiased polynomial-kernel MMD²);
* :func:`inception_score`;
* :func:`prdc`: precision, recall, density and coverage in O(N) memory through the kNN engine.

Importing this module imports neither torch nor CuPy; torch tensors and CuPy arrays passed in are
computed on their device.
"""

# The feature extractors (``features`` and friends, in ``_features.py``) are re-exported here by
# the lead when they are integrated.
from ._fid import FeatureStatistics, fid, frechet_distance
from ._inception_score import InceptionScoreResult, inception_score
from ._kid import KIDResult, kid, polynomial_mmd2
from ._likelihood import LikelihoodResult, log_likelihood
from ._prdc import prdc

__all__ = [
    "FeatureStatistics",
    "InceptionScoreResult",
    "KIDResult",
    "LikelihoodResult",
    "fid",
    "frechet_distance",
    "inception_score",
    "kid",
    "log_likelihood",
    "polynomial_mmd2",
    "prdc",
]
