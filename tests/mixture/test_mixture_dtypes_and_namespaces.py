"""float32 in → float32 fitted attributes (as scikit-learn ≥ 1.8), and array-API inputs (torch CPU,
array_api_strict on two devices) in → fitted attributes in that namespace and on that device under
``array_api_dispatch``, NumPy attributes without it, results in the caller's type either way.

CuPy and torch CUDA are in test_mixture_cuda.py (host emulation and GPU-marked tests).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import sklearn
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from fastdensity.mixture import GaussianMixture
from mixture_helpers import COVARIANCE_TYPES, blobs, fit_quietly, max_rel, sklearn_init

INIT_PARAMS = ("kmeans", "k-means++", "random", "random_from_data")
ATTRIBUTES = ("weights_", "means_", "covariances_", "precisions_cholesky_", "precisions_")
OUTPUTS = ("score_samples", "predict", "predict_proba")


def _condition_numbers(model):
    cov = np.asarray(model.covariances_, dtype=np.float64)
    if model.covariance_type == "full":
        return np.array([np.linalg.cond(c) for c in cov])
    if model.covariance_type == "tied":
        return np.array([np.linalg.cond(cov)])
    if model.covariance_type == "diag":
        return cov.max(axis=1) / cov.min(axis=1)
    return np.ones(len(cov))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_float32_fit_has_float32_attributes_like_sklearn(covariance_type):
    X, _ = blobs(n=800, d=3, k=3, seed=60)
    X32 = X.astype(np.float32)
    # float32 initial parameters (scikit-learn's attributes take the float64 of float64 inits)
    init = {key: value.astype(np.float32) for key, value in sklearn_init(X, 3, covariance_type).items()}
    params = dict(covariance_type=covariance_type, max_iter=8, tol=0.0, **init)
    ours32 = fit_quietly(GaussianMixture(3, **params), X32)
    ours64 = fit_quietly(GaussianMixture(3, **params), X)
    theirs32 = fit_quietly(SkGaussianMixture(3, **params), X32)
    for name in ATTRIBUTES:
        assert getattr(ours32, name).dtype == getattr(theirs32, name).dtype == np.float32, name
        assert getattr(ours64, name).dtype == np.float64, name
    # Computed in float64 then rounded once: float32's rounding of the float64 fit, times the
    # condition number for the precisions (inversion multiplies relative errors by up to cond).
    eps = np.finfo(np.float32).eps
    for name in ("weights_", "means_", "covariances_"):
        assert max_rel(getattr(ours32, name), getattr(ours64, name)) <= 1e-5, name
    cond = _condition_numbers(ours64)
    for name in ("precisions_cholesky_", "precisions_"):
        ours, ref = np.asarray(getattr(ours32, name)), np.asarray(getattr(ours64, name))
        if covariance_type == "tied":
            ours, ref = ours[None], ref[None]
        for c, condition in enumerate(cond):
            assert max_rel(ours[c], ref[c]) <= max(1e-5, 10 * eps * condition), (name, c, condition)
    assert ours32.lower_bound_ == pytest.approx(ours64.lower_bound_, rel=1e-6)
    for method in OUTPUTS:
        got, ref = getattr(ours32, method)(X32), getattr(ours64, method)(X)
        assert got.dtype == getattr(theirs32, method)(X32).dtype, method
        if method == "predict":
            assert np.mean(got == ref) > 0.99
        else:
            np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)
    samples, labels = ours32.sample(50, random_state=0)
    assert samples.dtype == np.float64 and labels.dtype == np.int64  # scikit-learn's sample dtype


def test_float32_partial_fit_and_warm_start_keep_float32():
    X32 = blobs(n=600, d=2, k=2, seed=61)[0].astype(np.float32)
    online = GaussianMixture(2, random_state=0)
    for batch in np.array_split(X32, 3):
        online.partial_fit(batch)
    assert all(getattr(online, name).dtype == np.float32 for name in ATTRIBUTES)
    warm = GaussianMixture(2, random_state=0, warm_start=True, max_iter=3, tol=0.0)
    fit_quietly(warm, X32)
    first = warm.means_.copy()
    fit_quietly(warm, X32)  # continues from the float32 attributes
    assert warm.means_.dtype == np.float32 and max_rel(warm.means_, first) < 1e-2


# ------------------------------------------------------------------------------ namespaces
def _strict():
    return pytest.importorskip("array_api_strict")


def _torch():
    return pytest.importorskip("torch")


def _namespaces():
    """(id, make(X numpy) -> caller array, namespace check(array) -> bool)."""
    cases = []
    cases.append(pytest.param("torch-cpu", id="torch-cpu"))
    cases.append(pytest.param("strict-cpu", id="array_api_strict-CPU_DEVICE"))
    cases.append(pytest.param("strict-device1", id="array_api_strict-device1"))
    return cases


def _space(name):
    if name == "torch-cpu":
        torch = _torch()

        def make(a):
            return torch.asarray(a)

        def is_ours(x, dtype):
            return isinstance(x, torch.Tensor) and x.device.type == "cpu" and x.dtype == getattr(torch, dtype)

        def to_numpy(x):
            return x.numpy()

        return make, is_ours, to_numpy
    xp = _strict()
    device = xp.Device("device1") if name == "strict-device1" else xp.Device("CPU_DEVICE")

    def make(a):
        return xp.asarray(a, device=device)

    def is_ours(x, dtype):
        return isinstance(x, type(xp.asarray(0.0))) and x.device == device and x.dtype == getattr(xp, dtype)

    return make, is_ours, np.from_dlpack


@pytest.fixture
def dispatch(monkeypatch):
    """scikit-learn's array-API dispatch; it needs SCIPY_ARRAY_API=1 only for its own check (the
    engines never hand an array-API array to SciPy)."""
    monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    with sklearn.config_context(array_api_dispatch=True):
        yield


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("init_params", INIT_PARAMS)
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("name", _namespaces())
def test_array_api_dispatch_gives_attributes_in_the_callers_namespace(name, covariance_type, init_params, dtype,
                                                                      dispatch):
    make, is_ours, to_numpy = _space(name)
    X = blobs(n=300, d=3, k=2, seed=62)[0].astype(dtype)
    params = dict(covariance_type=covariance_type, init_params=init_params, random_state=0, max_iter=5)
    reference = fit_quietly(GaussianMixture(2, **params), X)
    model = GaussianMixture(2, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        labels = model.fit_predict(make(X)) if init_params == "kmeans" else model.fit(make(X)).predict(make(X))
    assert is_ours(labels, "int64")
    for attribute in ATTRIBUTES:
        value = getattr(model, attribute)
        assert is_ours(value, dtype), attribute
        np.testing.assert_array_equal(to_numpy(value), getattr(reference, attribute))
    for method in OUTPUTS:
        out = getattr(model, method)(make(X))
        assert is_ours(out, "int64" if method == "predict" else dtype), method
        np.testing.assert_array_equal(to_numpy(out), getattr(reference, method)(X))
    assert model.score(make(X)) == reference.score(X)
    samples, sample_labels = model.sample(20, random_state=1)
    assert is_ours(samples, "float64") and is_ours(sample_labels, "int64")
    np.testing.assert_array_equal(to_numpy(samples), reference.sample(20, random_state=1)[0])


@pytest.mark.parametrize("name", _namespaces())
def test_without_dispatch_attributes_are_numpy_and_results_the_callers(name):
    """As scikit-learn without dispatch (it converts torch input to NumPy attributes); results
    follow the caller's array type (fastdensity's rule; scikit-learn would give NumPy)."""
    make, is_ours, to_numpy = _space(name)
    X = blobs(n=300, d=2, k=2, seed=63)[0]
    model = fit_quietly(GaussianMixture(2, random_state=0), make(X))
    theirs = fit_quietly(SkGaussianMixture(2, random_state=0), make(X) if name == "torch-cpu" else X)
    for attribute in ATTRIBUTES:
        assert type(getattr(model, attribute)) is np.ndarray is type(getattr(theirs, attribute)), attribute
    assert is_ours(model.score_samples(make(X)), "float64")
    assert is_ours(model.predict(make(X)), "int64")


def test_dispatch_with_numpy_input_keeps_numpy(dispatch):
    X = blobs(n=200, d=2, k=2, seed=64)[0].astype(np.float32)
    model = fit_quietly(GaussianMixture(2, random_state=0), X)
    assert type(model.means_) is np.ndarray and model.means_.dtype == np.float32
    assert type(model.predict_proba(X)) is np.ndarray


def test_dispatch_accepts_initial_parameters_in_the_namespace(dispatch):
    torch = _torch()
    X, _ = blobs(n=400, d=3, k=2, seed=65)
    with sklearn.config_context(array_api_dispatch=False):  # scikit-learn's kmeans init needs it off
        init = sklearn_init(X, 2, "full")
    as_torch = {key: torch.asarray(value) for key, value in init.items()}
    ours = fit_quietly(GaussianMixture(2, max_iter=4, tol=0.0, **as_torch), torch.asarray(X))
    ref = fit_quietly(GaussianMixture(2, max_iter=4, tol=0.0, **init), X)
    np.testing.assert_array_equal(ours.means_.numpy(), ref.means_)


@pytest.mark.parametrize(
    "array_namespace, device_name, dtype_name",
    [("array_api_strict", None, "float64"), ("array_api_strict", "device1", "float32"), ("torch", "cpu", "float32"),
     ("torch", "cpu", "float64")],
)
@pytest.mark.parametrize("init_params", ["kmeans", "random"])
def test_sklearn_array_api_check(array_namespace, device_name, dtype_name, init_params, monkeypatch):
    """scikit-learn's own check: attributes and outputs have the input's namespace, device, shape
    and dtype, and (check_values) the values of the NumPy fit."""
    pytest.importorskip(array_namespace)
    from sklearn.utils.estimator_checks import check_array_api_input

    monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    estimator = GaussianMixture(2, init_params=init_params, random_state=0, max_iter=20, tol=1e-6)
    check_array_api_input("GaussianMixture", estimator, array_namespace=array_namespace, device_name=device_name,
                          dtype_name=dtype_name, check_values=True)
