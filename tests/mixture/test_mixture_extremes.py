"""Extreme but legal inputs: queries and training data with magnitudes from 1e-300 to 1.8e308.

Scoring never raises or warns: score_samples is finite or −inf, predict_proba is a probability
vector (a query beyond every component's reach goes, with probability 1, to the component of
smallest Mahalanobis distance; see fastdensity.mixture._posterior), predict is predict_proba's
argmax. A fit gives finite parameters or a ValueError that says to scale the data.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastdensity.mixture import GaussianMixture
from mixture_helpers import COVARIANCE_TYPES, blobs, fit_quietly

BIG = np.finfo(np.float64).max  # 1.797e308


def _models():
    X, _ = blobs(n=400, d=3, k=2, seed=70, separation=5.0)
    return {ct: fit_quietly(GaussianMixture(2, covariance_type=ct, random_state=0), X) for ct in COVARIANCE_TYPES}


MODELS = _models()


def _check_scores(model, Q):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning, no ZeroDivisionError
        scores = model.score_samples(Q)
        proba = model.predict_proba(Q)
        labels = model.predict(Q)
        mean = model.score(Q)
    assert not np.isnan(scores).any() and not (scores == np.inf).any()
    assert np.all(np.isfinite(proba)) and np.allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(labels, np.argmax(proba, axis=1))
    assert not np.isnan(mean)
    return scores, proba, labels


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("value", [BIG, -BIG, 1e300, -1e300, 1e200, 1e-300, 0.0])
def test_far_queries_score_minus_inf_and_get_a_component(covariance_type, value):
    model = MODELS[covariance_type]
    Q = np.array([[value, value, value], [value, -value, 0.0], [BIG, -BIG, BIG], [1.0, 2.0, 3.0]])
    scores, proba, labels = _check_scores(model, Q)
    far = [0, 1, 2] if abs(value) >= 1e200 else [2]
    assert np.all(scores[far] == -np.inf)
    assert np.all(proba[far].max(axis=1) == 1.0)  # one component, probability 1
    assert np.all(np.isfinite(np.delete(scores, far)))


def test_far_query_goes_to_the_component_of_smallest_mahalanobis_distance():
    """Two components on the x axis, the wide one at +10: far out along +x (where every
    log-density underflows) the wide one is nearer in Mahalanobis distance, far along −x too."""
    rng = np.random.default_rng(71)
    X = np.vstack([rng.normal(size=(300, 2)) * 0.1 - 10.0, rng.normal(size=(300, 2)) * 3.0 + 10.0])
    model = fit_quietly(GaussianMixture(2, random_state=0), X)
    wide = int(np.argmax(model.covariances_[:, 0, 0]))
    Q = np.array([[1e300, 0.0], [-1e300, 0.0], [0.0, BIG]])
    _, proba, labels = _check_scores(model, Q)
    np.testing.assert_array_equal(labels, [wide, wide, wide])


def test_tied_far_query_is_decided_by_the_log_weights_when_distances_tie():
    """With one shared covariance the scaled distances of a far query agree to rounding; the
    larger log weight wins (the component with weight 0.7 here)."""
    rng = np.random.default_rng(72)
    X = np.vstack([rng.normal(size=(700, 2)) - 3.0, rng.normal(size=(300, 2)) + 3.0])
    model = fit_quietly(GaussianMixture(2, covariance_type="tied", random_state=0), X)
    heavy = int(np.argmax(model.weights_))
    _, _, labels = _check_scores(model, np.array([[1e300, 1e300], [-BIG, BIG]]))
    np.testing.assert_array_equal(labels, [heavy, heavy])


_magnitudes = st.floats(min_value=-300.0, max_value=float(np.log10(BIG))).map(
    lambda e: float(min(10.0 ** min(e, 308.0) * 10.0 ** max(e - 308.0, 0.0), BIG)))


@settings(derandomize=True, max_examples=60, deadline=None)
@given(magnitude=_magnitudes, signs=st.lists(st.sampled_from([-1.0, 1.0]), min_size=3, max_size=3),
       covariance_type=st.sampled_from(COVARIANCE_TYPES), fraction=st.floats(0.0, 1.0))
def test_property_scoring_any_magnitude(magnitude, signs, covariance_type, fraction):
    Q = np.array([np.array(signs) * magnitude, np.array(signs) * magnitude * fraction, [magnitude, 0.0, 0.0]])
    _check_scores(MODELS[covariance_type], Q)


@settings(derandomize=True, max_examples=30, deadline=None)
@given(magnitude=_magnitudes, offset=st.sampled_from([0.0, 1.0, -1.0]),
       covariance_type=st.sampled_from(COVARIANCE_TYPES), init_params=st.sampled_from(["kmeans", "k-means++"]))
def test_property_fit_any_magnitude_is_finite_or_names_the_remedy(magnitude, offset, covariance_type, init_params):
    with np.errstate(over="ignore"):
        X = np.clip(blobs(n=120, d=2, k=2, seed=73)[0] * (magnitude / 10.0) + offset * magnitude, -BIG, BIG)
    model = GaussianMixture(2, covariance_type=covariance_type, init_params=init_params, random_state=0, max_iter=10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.simplefilter("ignore", category=__import__("sklearn").exceptions.ConvergenceWarning)
        try:
            model.fit(X)
        except ValueError as exc:
            assert "scale the" in str(exc).lower(), str(exc)
            assert not hasattr(model, "means_")  # nothing half-written
            return
        scores = model.score_samples(X)
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        assert np.all(np.isfinite(getattr(model, name))), name
    assert np.isfinite(model.lower_bound_)
    assert not np.isnan(scores).any()


def test_tiny_data_fits_to_finite_parameters():
    X = blobs(n=300, d=2, k=2, seed=74)[0] * 1e-300
    model = fit_quietly(GaussianMixture(2, random_state=0), X)
    assert np.all(np.isfinite(model.means_)) and np.isfinite(model.lower_bound_)
    np.testing.assert_allclose(model.covariances_[:, [0, 1], [0, 1]], 1e-6)  # reg_covar: the spread underflows


def test_huge_spread_raises_an_error_naming_the_remedy():
    X = blobs(n=300, d=2, k=2, seed=75)[0] * 1e300
    with pytest.raises(ValueError, match="Scale the data"):
        GaussianMixture(2, random_state=0).fit(X)


def test_data_near_the_top_of_the_range_with_small_spread_in_relative_terms():
    """1e150-scale data: squares near 1e300 still fit in float64 (the double-double Cholesky is
    scaled, so its splitting does not overflow)."""
    X = blobs(n=300, d=2, k=2, seed=76)[0] * 1e150
    model = fit_quietly(GaussianMixture(2, random_state=0, reg_covar=1e-6 * 1e300), X)
    assert np.all(np.isfinite(model.precisions_cholesky_)) and np.isfinite(model.lower_bound_)
    reference = fit_quietly(GaussianMixture(2, random_state=0), X / 1e150)  # the same fit, scaled
    np.testing.assert_allclose(model.means_ / 1e150, reference.means_, rtol=1e-10)
    assert model.lower_bound_ == pytest.approx(reference.lower_bound_ - 2 * np.log(1e150), rel=1e-10)
