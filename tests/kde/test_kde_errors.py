"""Bad input to KernelDensity gets a clear error naming what is wrong (DESIGN.md, "Errors")."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from fastdensity import KernelDensity


@pytest.fixture
def X():
    return np.random.default_rng(0).normal(size=(20, 2))


# --------------------------------------------------------------------------------- data
@pytest.mark.parametrize(("value", "match"), [(np.nan, "contains NaN"), (np.inf, "contains infinity"),
                                              (-np.inf, "contains infinity")])
def test_non_finite_X(X, value, match):
    bad = X.copy()
    bad[3, 1] = value
    with pytest.raises(ValueError, match=match):
        KernelDensity().fit(bad)
    kde = KernelDensity().fit(X)
    with pytest.raises(ValueError, match=match):
        kde.score_samples(bad)


def test_one_dimensional_X(X):
    with pytest.raises(ValueError, match="Expected 2D array, got 1D array"):
        KernelDensity().fit(X[:, 0])
    kde = KernelDensity().fit(X)
    with pytest.raises(ValueError, match="Expected 2D array, got 1D array"):
        kde.score_samples(X[:, 0])


def test_three_dimensional_X(X):
    with pytest.raises(ValueError, match="Found array with dim 3"):
        KernelDensity().fit(X[:, :, None])
    kde = KernelDensity().fit(X)
    with pytest.raises(ValueError, match="Found array with dim 3"):
        kde.score_samples(X[:, :, None])


@pytest.mark.parametrize(("shape", "match"), [((0, 2), "0 sample"), ((5, 0), "0 feature")])
def test_empty_X(shape, match):
    with pytest.raises(ValueError, match=match):
        KernelDensity().fit(np.empty(shape))


def test_wrong_number_of_features_at_score_time(X):
    kde = KernelDensity().fit(X)
    with pytest.raises(ValueError, match="X has 3 features, but KernelDensity is expecting 2 features"):
        kde.score_samples(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="X has 1 features, but KernelDensity is expecting 2 features"):
        kde.score(np.zeros((4, 1)))


def test_non_numeric_X():
    with pytest.raises(ValueError, match="could not convert string to float"):
        KernelDensity().fit([["a", "b"], ["c", "d"]])
    with pytest.raises(ValueError, match="Complex data not supported"):
        KernelDensity().fit(np.ones((3, 2)) + 1j)


# ------------------------------------------------------------------------------ weights
def test_negative_weights(X):
    w = np.ones(len(X))
    w[4] = -0.5
    with pytest.raises(ValueError, match="Negative values in data passed to `sample_weight`"):
        KernelDensity().fit(X, sample_weight=w)


@pytest.mark.parametrize("length", [19, 21])
def test_mismatched_weight_length(X, length):
    with pytest.raises(ValueError, match=rf"sample_weight.shape == \({length},\), expected \(20,\)"):
        KernelDensity().fit(X, sample_weight=np.ones(length))


def test_all_zero_weights(X):
    with pytest.raises(ValueError, match="non-zero|positive sum"):
        KernelDensity().fit(X, sample_weight=np.zeros(len(X)))


@pytest.mark.parametrize(("value", "match"), [(np.nan, "sample_weight contains NaN"),
                                              (np.inf, "sample_weight contains infinity")])
def test_non_finite_weights(X, value, match):
    w = np.ones(len(X))
    w[2] = value
    with pytest.raises(ValueError, match=match):
        KernelDensity().fit(X, sample_weight=w)


def test_two_dimensional_weights(X):
    with pytest.raises(ValueError, match="Sample weights must be 1D array"):
        KernelDensity().fit(X, sample_weight=np.ones((len(X), 1)))


def test_failed_fit_leaves_a_fitted_estimator_unchanged(X):
    kde = KernelDensity(bandwidth=0.5).fit(X)
    before = kde.score_samples(X[:3])
    with pytest.raises(ValueError, match="Negative values"):
        kde.fit(X[:10] + 5.0, sample_weight=-np.ones(10))
    np.testing.assert_array_equal(kde.score_samples(X[:3]), before)
    assert kde.training_data_.shape == X.shape


# --------------------------------------------------------------------------- parameters
def test_bad_kernel(X):
    with pytest.raises(ValueError, match=r"kernel must be one of \('gaussian'.*'triweight'\); got 'gauss'"):
        KernelDensity(kernel="gauss").fit(X)
    with pytest.raises(ValueError, match="kernel must be one of"):
        KernelDensity(kernel=None).fit(X)


def test_bad_algorithm(X):
    with pytest.raises(ValueError, match=r"algorithm must be one of \('auto', 'exact', 'tree', 'kd_tree', 'ball_tree', 'fft'\); got 'brute'"):
        KernelDensity(algorithm="brute").fit(X)


@pytest.mark.parametrize("bandwidth", [-1.0, 0.0, 0, -3, np.nan, np.inf, np.float64(-2.0), np.array(-2.0)],
                         ids=["negative", "zero", "int-zero", "int-negative", "nan", "inf", "np-negative", "0d-array"])
def test_bad_scalar_bandwidth(X, bandwidth):
    with pytest.raises(ValueError, match="bandwidth must be positive and finite"):
        KernelDensity(bandwidth=bandwidth).fit(X)


def test_bool_bandwidth(X):
    with pytest.raises(TypeError, match=r"bandwidth must be a positive number, a \(d,\) or \(d, d\) array.*got True"):
        KernelDensity(bandwidth=True).fit(X)


@pytest.mark.parametrize("shape", [(3,), (1,), (2, 3), (3, 3), (2, 2, 2)])
def test_wrong_shape_bandwidth_array(X, shape):
    with pytest.raises(ValueError, match=r"bandwidth array must have shape \(2,\) .* or \(2, 2\) .*got shape"):
        KernelDensity(bandwidth=np.ones(shape)).fit(X)


def test_non_positive_per_feature_bandwidth(X):
    with pytest.raises(ValueError, match="per-feature bandwidths must all be positive"):
        KernelDensity(bandwidth=np.array([1.0, 0.0])).fit(X)
    with pytest.raises(ValueError, match="per-feature bandwidths must all be positive"):
        KernelDensity(bandwidth=[1.0, -1.0]).fit(X)


@pytest.mark.parametrize("bandwidth", [np.array([1.0, np.nan]), np.array([[1.0, np.inf], [np.inf, 1.0]])])
def test_non_finite_bandwidth_array(X, bandwidth):
    with pytest.raises(ValueError, match="bandwidth array must be finite"):
        KernelDensity(bandwidth=bandwidth).fit(X)


def test_non_symmetric_bandwidth_matrix(X):
    with pytest.raises(ValueError, match="bandwidth matrix must be symmetric"):
        KernelDensity(bandwidth=np.array([[1.0, 0.5], [0.4, 1.0]])).fit(X)


@pytest.mark.parametrize("H", [np.array([[1.0, 2.0], [2.0, 1.0]]), np.array([[1.0, 1.0], [1.0, 1.0]]),
                               -np.eye(2), np.zeros((2, 2))], ids=["indefinite", "singular", "negative", "zero"])
def test_non_positive_definite_bandwidth_matrix(X, H):
    with pytest.raises(ValueError, match="bandwidth matrix is not positive definite"):
        KernelDensity(bandwidth=H).fit(X)


def test_unknown_bandwidth_string(X):
    with pytest.raises(ValueError, match=r"one of \('scott', 'silverman', 'isj', 'cv'.*\); got 'foo'"):
        KernelDensity(bandwidth="foo").fit(X)


def test_non_numeric_bandwidth(X):
    with pytest.raises(TypeError, match="bandwidth must be a number, an array or a string"):
        KernelDensity(bandwidth={"h": 1.0}).fit(X)


def test_isj_on_two_dimensional_data(X):
    with pytest.raises(ValueError, match=r'bandwidth="isj" is for 1-D data; X has 2 features'):
        KernelDensity(bandwidth="isj").fit(X)


@pytest.mark.parametrize("metric", ["cosine", "pyfunc", "wminkowski", "Euclidean"])
def test_unsupported_metric(X, metric):
    """Metrics outside scikit-learn's KernelDensity list (and "pyfunc") name the allowed ones."""
    with pytest.raises(ValueError, match=rf"metric must be one of \('euclidean', 'l2', .*'sokalsneath'\); got '{metric}'"):
        KernelDensity(metric=metric).fit(X)


def test_minkowski_with_p_one_is_manhattan(X):
    a = KernelDensity(metric="minkowski", metric_params={"p": 1}).fit(X).score_samples(X[:3])
    np.testing.assert_array_equal(a, KernelDensity(metric="manhattan").fit(X).score_samples(X[:3]))


def test_euclidean_aliases_are_accepted(X):
    a = KernelDensity(metric="euclidean").fit(X).score_samples(X[:3])
    for metric, params in [("l2", None), ("minkowski", None), ("minkowski", {"p": 2})]:
        b = KernelDensity(metric=metric, metric_params=params).fit(X).score_samples(X[:3])
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(("kwargs", "exc", "match"), [
    ({"metric": 3}, TypeError, "metric must be a string"),
    ({"metric_params": [1]}, TypeError, "metric_params must be a dict or None"),
    ({"atol": -1}, ValueError, "atol must be a non-negative finite number"),
    ({"rtol": np.nan}, ValueError, "rtol must be a non-negative finite number"),
    ({"leaf_size": 0}, ValueError, "leaf_size must be a positive integer"),
    ({"breadth_first": 1}, TypeError, "breadth_first must be a bool"),
    ({"adaptive": "yes"}, TypeError, "adaptive must be a bool"),
    ({"n_jobs": 0}, ValueError, "n_jobs must not be 0"),
    ({"n_jobs": 1.5}, TypeError, "n_jobs must be an int or None"),
])
def test_other_bad_parameters(X, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        KernelDensity(**kwargs).fit(X)


# ------------------------------------------------------------------------------ backend
# Explicit ids: a test id "gpu" would be taken for the gpu marker by conftest's keyword check.
@pytest.mark.parametrize("backend", ["gpu", "CPU", "numba", None], ids=["str-gpu", "str-CPU", "str-numba", "None"])
def test_bad_backend(X, backend):
    with pytest.raises(ValueError, match=r"backend must be one of \('auto', 'cpu', 'cuda'\)"):
        KernelDensity(backend=backend).fit(X)


def test_cuda_backend_names_the_cpu_alternative(X):
    with pytest.raises(NotImplementedError, match="backend='cuda' is not available.*use backend='cpu'"):
        KernelDensity(backend="cuda").fit(X)


def test_cpu_backend_works(X):
    a = KernelDensity(backend="cpu").fit(X).score_samples(X)
    b = KernelDensity(backend="auto").fit(X).score_samples(X)
    np.testing.assert_array_equal(a, b)


# ----------------------------------------------------------------------------- not fitted
@pytest.mark.parametrize("method", ["score_samples", "score", "sample"])
def test_not_fitted(X, method):
    kde = KernelDensity()
    args = () if method == "sample" else (X,)
    with pytest.raises(NotFittedError, match="This KernelDensity instance is not fitted yet"):
        getattr(kde, method)(*args)


# ------------------------------------------------------------------------------ sampling
@pytest.mark.parametrize("n_samples", [-1, 1.5, True, "3", None, np.float64(2.0)])
def test_bad_n_samples(X, n_samples):
    kde = KernelDensity().fit(X)
    with pytest.raises(ValueError, match="n_samples must be a non-negative integer"):
        kde.sample(n_samples)


def test_bad_random_state(X):
    kde = KernelDensity().fit(X)
    with pytest.raises(ValueError, match="cannot be used to seed"):
        kde.sample(3, random_state="seed")


def test_bandwidth_none_is_a_type_error():
    X = np.random.default_rng(0).normal(size=(10, 2))
    with pytest.raises(TypeError, match="bandwidth must be a positive number, a \\(d,\\) or \\(d, d\\) array"):
        KernelDensity(bandwidth=None).fit(X)


@pytest.mark.parametrize("bandwidth", [1e155, 1e-155, np.array(1e200), [1.0, 1e160], [1e-170, 1.0]],
                         ids=["huge", "tiny", "0d-huge", "per-feature-huge", "per-feature-tiny"])
def test_bandwidth_whose_square_leaves_float64_is_refused(bandwidth):
    X = np.random.default_rng(3).normal(size=(20, 2))
    with pytest.raises(ValueError, match="outside the range whose square float64 holds"):
        KernelDensity(bandwidth=bandwidth).fit(X)


@pytest.mark.parametrize("metric", ["manhattan"])
def test_metric_bandwidth_whose_square_overflows_is_refused(metric):
    X = np.random.default_rng(4).normal(size=(20, 2))
    with pytest.raises(ValueError, match="outside the range whose square float64 holds"):
        KernelDensity(metric=metric, bandwidth=1e200).fit(X)
