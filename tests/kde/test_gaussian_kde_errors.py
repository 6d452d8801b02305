"""gaussian_kde's errors: degenerate data, bad arguments, and scipy's messages at the start of ours."""

from __future__ import annotations

import re

import numpy as np
import pytest
from scipy import stats

from fastdensity.kde._gaussian_kde import gaussian_kde

from gaussian_kde_helpers import SCIPY_SINGULAR, _data, _points, _close, _oracle_logpdf, _check_attributes


# ---------------------------------------------------------------------------- errors


def _collinear(seed):
    x = np.random.default_rng(seed).standard_normal(50)
    return np.vstack([x, 0.3 * x - 7.0])


def test_degenerate_data_error():
    # Collinear data: scipy's Cholesky fails or succeeds by rounding (scipy issue #10205);
    # both branches must give our error. Seeds 0 and 5 cover both here.
    for seed in range(8):
        with pytest.raises(np.linalg.LinAlgError, match=SCIPY_SINGULAR + " Here dimension 1 of"):
            gaussian_kde(_collinear(seed))
    # ...and it is a ValueError that names the remedies
    with pytest.raises(ValueError, match="add a little jitter"):
        gaussian_kde(_collinear(0))
    with pytest.raises(np.linalg.LinAlgError, match="lower-dimensional subspace"):
        stats.gaussian_kde(_collinear(0))  # scipy fails on this one too
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal((2, 40))
    with pytest.raises(ValueError, match=r"dimension 2 .* linear function of dimensions \[0, 1\]"):
        gaussian_kde(np.vstack([a, b, a - 2 * b]))
    with pytest.raises(ValueError, match=SCIPY_SINGULAR + r" Here dimension\(s\) \[1\] of `dataset` are constant"):
        gaussian_kde(np.vstack([a, np.full(40, 3.0)]))
    with pytest.raises(ValueError, match=re.escape("Number of dimensions is greater than number of samples.")):
        gaussian_kde(rng.standard_normal((3, 2)))
    with pytest.raises(ValueError, match=SCIPY_SINGULAR + " Here dimension 2 of"):
        gaussian_kde(rng.standard_normal((3, 3)))  # n == d: the points span a plane
    # weighted: only the identical points carry weight
    data = np.vstack([a, b])
    data[:, :3] = 1.0
    with pytest.raises(ValueError, match=SCIPY_SINGULAR + r" Here dimension\(s\) \[0, 1\] of `dataset` are constant"):
        gaussian_kde(data, weights=np.r_[np.ones(3), np.zeros(37)])


def test_bad_dataset_errors():
    with pytest.raises(ValueError, match="`dataset` input should have multiple elements. Got 0"):
        gaussian_kde([])
    with pytest.raises(ValueError, match=re.escape("multiple elements. Got 0 value(s) (shape (2, 0))")):
        gaussian_kde(np.zeros((2, 0)))
    with pytest.raises(ValueError, match="should have multiple elements"):
        gaussian_kde([1.0])
    with pytest.raises(ValueError, match="must be 1-D"):
        gaussian_kde(np.zeros((2, 3, 4)))
    for bad in (np.nan, np.inf, -np.inf):
        with pytest.raises(ValueError, match="`dataset` contains NaN or infinite"):
            gaussian_kde([0.0, 1.0, bad, 2.0])
    with pytest.raises(TypeError, match="`dataset` must contain real numbers"):
        gaussian_kde(np.array([1.0, 2.0, 3.0]) + 1j)
    with pytest.raises(TypeError, match="`dataset` must contain real numbers"):
        gaussian_kde(["a", "b", "c"])
    with pytest.raises(ValueError, match="overflowed"):
        gaussian_kde([1e300, -1e300, 3e300])


def test_bad_weights_errors():
    x = np.random.default_rng(0).standard_normal(10)
    cases = [
        (-np.ones(10), "must be non-negative"),
        (np.r_[np.ones(9), -1.0], "must be non-negative"),
        (np.ones(9), "should be of length n. Got length 9 for n = 10"),
        (np.ones((2, 5)), "should be one-dimensional"),
        (np.zeros(10), "all zero"),
        (np.r_[1.0, np.zeros(9)], "only one positive entry"),
        (np.r_[np.nan, np.ones(9)], "`weights` contains NaN"),
        (np.r_[np.inf, np.ones(9)], "`weights` contains NaN"),
    ]
    for w, msg in cases:
        with pytest.raises(ValueError, match=msg):
            gaussian_kde(x, weights=w)
    # zero weights are fine as long as enough points remain
    w = np.r_[np.zeros(3), np.ones(7)]
    ours, ref = gaussian_kde(x, weights=w), stats.gaussian_kde(x, weights=w)
    _check_attributes(ours, ref)
    pts = _points(1)
    _close(ours(pts), ref(pts))
    # scipy's logpdf returns NaN when some weights are zero (log 0 inside its log-sum-exp); ours
    # is the log of its pdf.
    _close(ours.logpdf(pts), np.log(ref(pts)), atol=1e-12)
    _close(ours.logpdf(pts), _oracle_logpdf(x[None, :], ref.weights, ref.covariance, pts), atol=1e-12)


def test_bad_argument_errors():
    x, _ = _data(2, False)
    kde = gaussian_kde(x)
    with pytest.raises(ValueError, match="should be 'scott', 'silverman', a scalar or a callable"):
        gaussian_kde(x, bw_method=[0.1])
    for bad in (-0.5, np.nan, np.inf):
        with pytest.raises(ValueError, match="positive finite number"):
            gaussian_kde(x, bw_method=bad)
    with pytest.raises(ValueError, match="positive finite number"):
        gaussian_kde(x, bw_method=lambda k: np.array([0.1, 0.2]))
    with pytest.raises(ValueError, match="`points` contains NaN"):
        kde.logpdf([[0.0, np.nan], [1.0, 2.0]])
    with pytest.raises(ValueError, match="`points` contains NaN"):
        kde([np.inf, 0.0])
    with pytest.raises(ValueError, match="cannot be used to seed a numpy.random.RandomState instance; pass None"):
        kde.resample(3, seed="abc")
    with pytest.raises(ValueError, match="negative dimensions are not allowed: `size` must be non-negative"):
        kde.resample(-1)
    with pytest.raises(TypeError, match="`size` must be an integer"):
        kde.resample(2.5)
    with pytest.raises(ValueError, match="mean does not have dimension 2"):
        kde.integrate_gaussian([0.0, 0.0, 0.0], np.eye(2))
    with pytest.raises(ValueError, match="covariance does not have dimension 2"):
        kde.integrate_gaussian([0.0, 0.0], np.eye(3))
    with pytest.raises(ValueError, match="`cov` contains NaN"):
        kde.integrate_gaussian([0.0, 0.0], np.full((2, 2), np.nan))
    with pytest.raises(ValueError, match="1-th leading minor of the array is not positive definite: the sum"):
        kde.integrate_gaussian([0.0, 0.0], -100 * np.eye(2))
    with pytest.raises(ValueError, match="only handles 1D pdfs"):
        kde.integrate_box_1d(0.0, 1.0)
    with pytest.raises(ValueError, match="KDEs are not the same dimensionality"):
        kde.integrate_kde(gaussian_kde(x[0]))
    with pytest.raises(TypeError, match="`other` must be a gaussian_kde"):
        kde.integrate_kde(np.zeros(3))
    with pytest.raises(ValueError, match="must be integers"):
        kde.marginal(0.5)
    with pytest.raises(ValueError, match="must be unique"):
        kde.marginal([0, -2])
    with pytest.raises(ValueError, match=r"Dimensions \[5\] are invalid"):
        kde.marginal([5])


# ---------------------------------------------------------------------------- scipy's error messages


def _error_cases():
    rng = np.random.default_rng(20)
    x2 = rng.standard_normal((2, 40))
    x1 = rng.standard_normal(10)
    return {
        "empty": lambda K: K([]),
        "one element": lambda K: K([1.0]),
        "nan in dataset": lambda K: K([0.0, 1.0, np.nan, 2.0]),
        "inf in dataset": lambda K: K([0.0, 1.0, np.inf, 2.0]),
        "covariance overflows": lambda K: K([1e300, -1e300, 3e300]),
        "d > n": lambda K: K(rng.standard_normal((3, 2))),
        "collinear": lambda K: K(_collinear(0)),  # scipy happens to fail on this one
        "weights 2-D": lambda K: K(x1, weights=np.ones((2, 5))),
        "weights length": lambda K: K(x1, weights=np.ones(9)),
        "bw_method string": lambda K: K(x2, bw_method="bogus"),
        "bw_method list": lambda K: K(x2, bw_method=[0.1]),
        "set_bandwidth": lambda K: K(x2).set_bandwidth("bogus"),
        "points dimension": lambda K: K(x2)(np.zeros((3, 4))),
        "logpdf dimension": lambda K: K(x2).logpdf(np.zeros((3, 4))),
        "row vector": lambda K: K(x2).logpdf([1.0, 2.0, 3.0]),
        "boolean points": lambda K: K(x2)(np.ones((2, 3), dtype=bool)),
        "mean dimension": lambda K: K(x2).integrate_gaussian([0.0, 0.0, 0.0], np.eye(2)),
        "cov dimension": lambda K: K(x2).integrate_gaussian([0.0, 0.0], np.eye(3)),
        "cov not positive definite": lambda K: K(x2).integrate_gaussian([0.0, 0.0], -100 * np.eye(2)),
        "cov not finite": lambda K: K(x2).integrate_gaussian([0.0, 0.0], np.full((2, 2), np.nan)),
        "box_1d in 2-D": lambda K: K(x2).integrate_box_1d(0.0, 1.0),
        "kde dimensions": lambda K: K(x2).integrate_kde(K(x1)),
        "seed string": lambda K: K(x2).resample(3, seed="abc"),
        "seed float": lambda K: K(x2).resample(3, seed=1.5),
        "negative size": lambda K: K(x2).resample(-1, seed=0),
        "marginal float": lambda K: K(x2).marginal(0.5),
        "marginal repeated": lambda K: K(x2).marginal([0, -2]),
        "marginal invalid": lambda K: K(x2).marginal([5]),
        "box dimension": lambda K: K(x2).integrate_box([0, 0, 0], [1, 1, 1], rng=np.random.default_rng(0)),
    }


@pytest.mark.parametrize("case", list(_error_cases()))
def test_errors_begin_with_scipys_message(case):
    """Where scipy raises, we raise the same exception type (or a subclass) with a message that
    begins with scipy's (users match on it); ours goes on to say what to change."""
    make = _error_cases()[case]
    with pytest.raises(Exception) as ref:  # noqa: PT011 - whatever scipy raises is the reference
        with np.errstate(all="ignore"):
            make(stats.gaussian_kde)
    with pytest.raises(type(ref.value), match="^" + re.escape(str(ref.value))):
        make(gaussian_kde)


def test_errors_where_scipy_has_no_message_of_its_own():
    # scipy's errors here are accidents of its implementation ("too many values to unpack",
    # "'float' object is unsliceable", AttributeError: no attribute 'd'); ours say what is wrong.
    x2 = np.random.default_rng(21).standard_normal((2, 40))
    kde = gaussian_kde(x2)
    with pytest.raises(ValueError, match=r"`dataset` must be 1-D \(n,\) or 2-D \(d, n\)"):
        gaussian_kde(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match=r"points must be 1-D or 2-D"):
        kde(np.zeros((2, 2, 2)))
    with pytest.raises(TypeError, match="`size` must be an integer or None; got 2.5"):
        kde.resample(2.5)
    with pytest.raises(TypeError, match="'numpy.ndarray' object has no attribute 'd': `other` must be a gaussian_kde"):
        kde.integrate_kde(np.zeros(3))
    with pytest.raises(ValueError, match=r"`dimensions` must be an int or a 1-D array"):
        kde.marginal([[0]])
    # singular data that scipy accepts by rounding: our error carries scipy's singular-data message
    a, b = np.random.default_rng(4).standard_normal((2, 40))
    with pytest.raises(np.linalg.LinAlgError, match="^" + SCIPY_SINGULAR):
        gaussian_kde(np.vstack([a, b, a - 2 * b]))
