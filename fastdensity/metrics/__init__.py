"""Evaluation metrics for density models and generative models.

* :func:`log_likelihood`: held-out log-likelihood in nats and bits per dimension;
* :func:`fid`, :func:`frechet_distance`, :class:`FeatureStatistics`: Fréchet (Inception) distance
  in float64 from symmetric eigendecompositions, with statistics accumulated in batches;
* :func:`kid`: Kernel Inception Distance (unbiased polynomial-kernel MMD²);
* :func:`inception_score`;
* :func:`prdc`: precision, recall, density and coverage in O(N) memory through the kNN engine;
* :func:`features`, :func:`class_probabilities`: images → features / class probabilities through
  the shipped 8×8-digits CNN (:class:`DigitsClassifier`), the FID Inception-v3
  (:class:`InceptionV3Features`, weights from a file you provide) or any callable / torch module.

Importing this module imports neither torch nor CuPy; torch tensors and CuPy arrays passed in are
computed on their device.
"""

from ._features import class_probabilities, features, load_digits_classifier
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
    "features",
    "class_probabilities",
    "load_digits_classifier",
    "DigitsClassifier",
    "InceptionV3Features",
]


def __getattr__(name):
    # The torch classes are built on first access, so that importing this module never imports torch.
    if name in ("DigitsClassifier", "InceptionV3Features"):
        from . import _features

        return getattr(_features, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
