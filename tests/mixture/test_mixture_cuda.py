"""The CUDA mixture ops (fastdensity.mixture._mixture_cuda) against the CPU engine.

GPU tests (``@pytest.mark.gpu``) skip without a GPU. Without one, the same comparisons run the real
launchers and the real kernels/mixture.cu in the host emulation (tests/cuda_host_emulation.py: one
CPU thread per CUDA thread, real barriers); the CPU-side pieces of the launcher are tested in
test_mixture_cuda_compile.py.
"""

from __future__ import annotations

import cuda_host_emulation
import numpy as np
import pytest
from mixture_helpers import max_rel
from test_mixture_cuda_compile import _random_model

from random_inputs import input_rng, input_seed
from fastdensity.mixture import _mixture_cpu as cpu
from fastdensity.mixture import _mixture_cuda as gpu

COV_TYPES = ("full", "tied", "diag", "spherical")
# float32 runs in float32 per tile (float64 across tiles): normwise relative error allowed
TOL = {np.float32: 3e-5, np.float64: 1e-10}


def _poison_empty(cp, monkeypatch):
    """Make cupy.empty hand out NaN-filled memory, so that an unwritten output shows."""
    real_empty = cp.empty

    def empty(*args, **kwargs):
        a = real_empty(*args, **kwargs)
        a.fill(np.nan if a.dtype.kind == "f" else -7)
        return a

    monkeypatch.setattr(cp, "empty", empty)


def _data(rng, n, d, dtype, offset=5.0):
    return (rng.normal(scale=2.0, size=(n, d)) + offset).astype(dtype)


def _compare(got, want, tol):
    got = np.asarray(got)
    assert got.shape == np.shape(want) and got.dtype == np.float64
    assert not np.isnan(got).any()
    assert max_rel(got, want) <= tol, max_rel(got, want)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cov_type", COV_TYPES)
@pytest.mark.parametrize(("n", "d", "K"), [(1, 1, 1), (31, 3, 2), (1025, 16, 8), (3000, 5, 31), (300, 100, 4)])
def test_every_op_matches_the_cpu_engine(dtype, cov_type, n, d, K):
    _check_every_op(pytest.importorskip("cupy"), dtype, cov_type, n, d, K)


def _check_every_op(cp, dtype, cov_type, n, d, K):
    rng = input_rng(1)
    X = _data(rng, n, d, dtype)
    w = rng.uniform(0.2, 3.0, size=n)
    means, prec_chol, log_weights = _random_model(rng, d, K, cov_type, offset=5.0)
    tol = TOL[dtype]
    Xg = cp.asarray(X)

    with pytest.MonkeyPatch.context() as mp:
        _poison_empty(cp, mp)
        lp = gpu.gmm_log_prob(Xg, means, prec_chol, cov_type, log_weights)
        lpn = gpu.gmm_log_prob_norm(Xg, means, prec_chol, log_weights, cov_type)
        est = gpu.gmm_estep(Xg, cp.asarray(w), means, prec_chol, log_weights, cov_type)

    _compare(cp.asnumpy(lp), cpu.gmm_log_prob(X, means, prec_chol, cov_type, log_weights), tol)
    _compare(cp.asnumpy(lpn), cpu.gmm_log_prob_norm(X, means, prec_chol, log_weights, cov_type), tol)
    want = cpu.gmm_estep(X, w, means, prec_chol, log_weights, cov_type)
    for got_part, want_part in zip(est, want):
        _compare(cp.asnumpy(got_part), want_part, tol)


@pytest.mark.gpu
@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_estep_is_deterministic_and_unweighted_equals_unit_weights(cov_type):
    cp = pytest.importorskip("cupy")
    rng = input_rng(2)
    X = cp.asarray(_data(rng, 300_001, 4, np.float32))
    means, prec_chol, log_weights = _random_model(rng, 4, 5, cov_type, offset=5.0)
    first = gpu.gmm_estep(X, None, means, prec_chol, log_weights, cov_type)
    again = gpu.gmm_estep(X, None, means, prec_chol, log_weights, cov_type)
    ones = gpu.gmm_estep(X, cp.ones(X.shape[0]), means, prec_chol, log_weights, cov_type)
    for a, b, c in zip(first, again, ones):
        np.testing.assert_array_equal(cp.asnumpy(a), cp.asnumpy(b))  # bitwise: no atomics
        np.testing.assert_array_equal(cp.asnumpy(a), cp.asnumpy(c))


@pytest.mark.gpu
def test_tied_shift_is_honoured():
    cp = pytest.importorskip("cupy")
    rng = input_rng(3)
    X = _data(rng, 513, 3, np.float64)
    means, prec_chol, log_weights = _random_model(rng, 3, 3, "tied", offset=5.0)
    shift = rng.normal(size=3)
    got = gpu.gmm_estep(cp.asarray(X), None, means, prec_chol, log_weights, "tied", shift=shift)
    want = cpu.gmm_estep(X, None, means, prec_chol, log_weights, "tied", shift=shift)
    for a, b in zip(got, want):
        _compare(cp.asnumpy(a), b, 1e-10)


@pytest.mark.gpu
def test_far_offset_data_keep_their_accuracy_in_float32():
    _check_far_offset(pytest.importorskip("cupy"))


def _check_far_offset(cp):
    """|μ| ≫ σ in float32 costs no digits: statistics about the current means, each mean passed as
    hi + lo so that x − μ is exact (without the split: 2.5e-4 here; with it: ~3e-7)."""
    rng = input_rng(4)
    X = _data(rng, 20_000, 3, np.float32, offset=1e4)
    means, prec_chol, log_weights = _random_model(rng, 3, 2, "diag", offset=1e4)
    means = means - means.mean(0) + X.astype(np.float64).mean(0)
    got = gpu.gmm_estep(cp.asarray(X), None, means, prec_chol, log_weights, "diag")
    want = cpu.gmm_estep(X, None, means, prec_chol, log_weights, "diag")
    for a, b in zip(got, want):
        _compare(cp.asnumpy(a), b, 1e-5)


@pytest.mark.gpu
def test_torch_cuda_tensors_round_trip():
    cp = pytest.importorskip("cupy")
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch without CUDA")
    rng = input_rng(5)
    X = rng.normal(size=(999, 4)).astype(np.float32)
    means, prec_chol, log_weights = _random_model(rng, 4, 3, "full")
    got = gpu.gmm_log_prob_norm(torch.as_tensor(X, device="cuda"), means, prec_chol, log_weights, "full")
    back = torch.from_dlpack(got)
    assert back.device.type == "cuda" and back.dtype == torch.float64
    _compare(back.cpu().numpy(), cpu.gmm_log_prob_norm(X, means, prec_chol, log_weights, "full"), TOL[np.float32])
    assert isinstance(got, cp.ndarray)


@pytest.mark.gpu
def test_unknown_covariance_type_is_refused():
    cp = pytest.importorskip("cupy")
    with pytest.raises(ValueError, match="unknown covariance type 'banded'"):
        gpu.gmm_log_prob(cp.ones((3, 2)), np.zeros((1, 2)), np.ones(1), "banded")


# ---------------------------------------------------------------- in the host emulation
needs_gxx = pytest.mark.skipif(not cuda_host_emulation.available(), reason="g++ is not installed")


@pytest.fixture
def emulated(monkeypatch):
    """The fake ``cupy`` (NumPy) whose kernels run kernels/mixture.cu in the host emulation."""
    kernels = cuda_host_emulation.fake_cupy(monkeypatch, gpu.SOURCE, gpu.NAME_EXPRESSIONS)
    from fastdensity._backend._cuda import require_cupy

    return require_cupy(), kernels


@needs_gxx
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cov_type", COV_TYPES)
@pytest.mark.parametrize(("n", "d", "K"), [(1, 1, 1), (300, 3, 4), (100, 10, 3)])
def test_emulated_kernels_match_the_cpu_engine(emulated, dtype, cov_type, n, d, K):
    _check_every_op(emulated[0], dtype, cov_type, n, d, K)


@needs_gxx
def test_emulated_far_offset_data_keep_their_accuracy_in_float32(emulated):
    _check_far_offset(emulated[0])


@needs_gxx
@pytest.mark.parametrize("cov_type", ["full", "tied"])
def test_emulated_large_d_uses_opt_in_shared_memory(emulated, cov_type):
    cp, kernels = emulated
    _check_every_op(cp, np.float64, cov_type, 70, 100, 4)
    launches = kernels[gpu.pass_name(np.float64, gpu.FAMILIES[cov_type], gpu.MODE_ESTEP)].launches
    assert launches and all(smem > 48 * 1024 for _, _, smem in launches)


@needs_gxx
@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_emulated_estep_with_several_tiles_per_block_is_deterministic(emulated, cov_type, monkeypatch):
    cp, kernels = emulated
    monkeypatch.setattr(gpu, "MAX_BLOCKS", 2)  # 1025 rows in 32-row tiles: 17 tiles per block
    monkeypatch.setattr(gpu, "ROWS_PER_TILE", (32,))
    rng = input_rng(6)
    X = _data(rng, 1025, 3, np.float32)
    w = rng.uniform(0.2, 3.0, size=1025)
    means, prec_chol, log_weights = _random_model(rng, 3, 3, cov_type, offset=5.0)
    first = gpu.gmm_estep(X, w, means, prec_chol, log_weights, cov_type)
    again = gpu.gmm_estep(X, w, means, prec_chol, log_weights, cov_type)
    (grid, block, _), *_ = kernels[gpu.pass_name(np.float32, gpu.FAMILIES[cov_type], gpu.MODE_ESTEP)].launches
    assert grid[0] == 2 and block[0] == 32
    want = cpu.gmm_estep(X, w, means, prec_chol, log_weights, cov_type)
    for a, b, c in zip(first, again, want):
        np.testing.assert_array_equal(a, b)
        _compare(a, c, TOL[np.float32])


RACE_SCRIPT = """
import sys
sys.path.insert(0, "tests/mixture")
import numpy as np, pytest
import cuda_host_emulation as emu
from fastdensity.mixture import _mixture_cuda as gpu
from test_mixture_cuda_compile import _random_model
mp = pytest.MonkeyPatch()
emu.fake_cupy(mp, gpu.SOURCE, gpu.NAME_EXPRESSIONS)
mp.setattr(gpu, "MAX_BLOCKS", 2)
mp.setattr(gpu, "ROWS_PER_TILE", (64,))
rng = np.random.default_rng(7)
for cov_type in ("full", "tied", "diag", "spherical"):
    for d in (3, 10):
        X = rng.normal(size=(300, d)).astype(np.float32)
        means, prec_chol, log_weights = _random_model(rng, d, 2, cov_type)
        gpu.gmm_estep(X, rng.uniform(size=300), means, prec_chol, log_weights, cov_type)
        gpu.gmm_log_prob(X, means, prec_chol, cov_type, log_weights)
        gpu.gmm_log_prob_norm(X, means, prec_chol, log_weights, cov_type)
print("race check done")
"""


@pytest.mark.slow
@needs_gxx
@pytest.mark.parametrize("sanitizer", ["thread", "address"])
def test_emulated_kernels_are_race_free_and_in_bounds(sanitizer):
    """The emulated kernels under ThreadSanitizer (racecheck: every shared-memory access ordered by
    a barrier) and AddressSanitizer (memcheck: no access out of bounds). Both report the bug when
    a __syncthreads is deleted or an index is shifted by one (checked by hand)."""
    cuda_host_emulation.assert_sanitizer_clean(RACE_SCRIPT, sanitizer)


# ------------------------------------------------------- GaussianMixture scoring on a GPU
def _fitted(cov_type, dtype=np.float64):
    from fastdensity.mixture import GaussianMixture

    rng = input_rng(8)
    X = _data(rng, 600, 3, dtype)
    gm = GaussianMixture(3, covariance_type=cov_type, random_state=int(rng.integers(1000)), max_iter=20, tol=1e-2)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm.fit(X)
    return gm, _data(rng, 257, 3, dtype)


@needs_gxx
@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_emulated_estimator_device_helpers_match_the_host(emulated, cov_type, monkeypatch):
    """The estimator's scoring on the CUDA engine calls the CUDA ops with the right arguments."""
    from fastdensity.mixture._engine_cuda import CUDA_ENGINE

    cp, _ = emulated
    monkeypatch.setitem(__import__("sys").modules, "cupy", cp)
    gm, Q = _fitted(cov_type)
    _compare(gm._score_samples(CUDA_ENGINE, Q), gm.score_samples(Q), 1e-12)
    np.testing.assert_array_equal(gm._predict(CUDA_ENGINE, Q), gm.predict(Q))
    np.testing.assert_allclose(gm._predict_proba(CUDA_ENGINE, Q), gm.predict_proba(Q), atol=1e-12)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_estimator_scores_gpu_data_on_the_gpu(dtype, cov_type):
    _check_estimator_scoring(pytest.importorskip("cupy"), dtype, cov_type)


def _check_estimator_scoring(cp, dtype, cov_type):
    gm, Q = _fitted(cov_type, dtype)
    Qg = cp.asarray(Q)
    got = gm.score_samples(Qg)
    assert isinstance(got, cp.ndarray) and got.dtype == dtype
    tol = TOL[dtype]
    assert max_rel(cp.asnumpy(got), gm.score_samples(Q)) <= tol
    np.testing.assert_array_equal(cp.asnumpy(gm.predict(Qg)), gm.predict(Q))
    np.testing.assert_allclose(cp.asnumpy(gm.predict_proba(Qg)), gm.predict_proba(Q), atol=1e-4)
    w = input_rng(9).uniform(0.5, 2.0, size=len(Q))
    assert gm.score(Qg, sample_weight=cp.asarray(w)) == pytest.approx(gm.score(Q, sample_weight=w), rel=1e-5)


@pytest.mark.gpu
def test_estimator_scores_host_data_with_backend_cuda():
    _check_backend_cuda_on_host_data(pytest.importorskip("cupy"))


def _check_backend_cuda_on_host_data(cp):
    gm, Q = _fitted("full")
    forced = gm.set_params(backend="cuda").score_samples(Q)
    assert isinstance(forced, np.ndarray)
    assert max_rel(forced, gm.set_params(backend="cpu").score_samples(Q)) <= 1e-10


@pytest.mark.gpu
def test_estimator_scores_torch_cuda_tensors():
    pytest.importorskip("cupy")
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch without CUDA")
    gm, Q = _fitted("diag", np.float32)
    got = gm.score_samples(torch.as_tensor(Q, device="cuda"))
    assert isinstance(got, torch.Tensor) and got.device.type == "cuda" and got.dtype == torch.float32
    assert max_rel(got.cpu().numpy(), gm.score_samples(Q)) <= TOL[np.float32]


@pytest.fixture
def emulated_device(monkeypatch):
    """The fake ``cupy`` with fake device arrays: the estimator's GPU path runs in the emulation."""
    cuda_host_emulation.fake_cupy(monkeypatch, gpu.SOURCE, gpu.NAME_EXPRESSIONS, device_arrays=True)
    return __import__("sys").modules["cupy"]


@needs_gxx
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_emulated_estimator_scores_device_data(emulated_device, dtype, cov_type):
    _check_estimator_scoring(emulated_device, dtype, cov_type)


@needs_gxx
def test_emulated_estimator_scores_host_data_with_backend_cuda(emulated_device):
    _check_backend_cuda_on_host_data(emulated_device)


def _check_device_partial_fit(cp, cov_type, dtype, seed=0):
    """partial_fit on device batches follows partial_fit on the same host batches."""
    from mixture_helpers import blobs

    from fastdensity.mixture import GaussianMixture

    seed = input_seed(seed)
    X = blobs(n=600, d=3, k=3, seed=seed)[0].astype(dtype)
    w = np.random.default_rng(seed).uniform(0.5, 2.0, size=600)
    params = dict(covariance_type=cov_type, init_params="k-means++", random_state=seed)
    on_cpu, on_gpu = GaussianMixture(3, **params), GaussianMixture(3, **params)
    for batch in np.array_split(np.arange(600), 4):
        on_cpu.partial_fit(X[batch], sample_weight=w[batch])
        on_gpu.partial_fit(cp.asarray(X[batch]), sample_weight=cp.asarray(w[batch]))
    tol = 1e-8 if dtype == np.float64 else 1e-4
    assert on_gpu.n_steps_ == on_cpu.n_steps_ == 4
    for name in ("weights_", "means_", "covariances_"):
        assert max_rel(getattr(on_gpu, name), getattr(on_cpu, name)) <= tol, name
    assert on_gpu.lower_bound_ == pytest.approx(on_cpu.lower_bound_, rel=tol)


@needs_gxx
@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_emulated_partial_fit_on_device_follows_the_cpu(emulated_device, cov_type):
    _check_device_partial_fit(emulated_device, cov_type, np.float64)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_partial_fit_on_gpu_follows_the_cpu(cov_type, dtype):
    _check_device_partial_fit(pytest.importorskip("cupy"), cov_type, dtype)


# ------------------------------------------------------------ GaussianMixture.fit on a GPU
def _check_device_fit(cp, cov_type, init_params, dtype, weighted, n=400, seed=0):
    """fit on the device against fit on the CPU, both for exactly 8 EM iterations (tol=0) from the
    same seed: the same draws, the same EM path (float64: to rounding; float32: to float32's)."""
    import warnings

    from mixture_helpers import blobs

    from fastdensity.mixture import GaussianMixture

    seed = input_seed(seed)
    X = blobs(n=n, d=3, k=3, seed=seed)[0].astype(dtype)
    w = np.random.default_rng(seed).uniform(0.5, 2.0, size=n) if weighted else None
    params = dict(covariance_type=cov_type, init_params=init_params, random_state=seed, max_iter=8, tol=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        on_cpu = GaussianMixture(3, **params).fit(X, sample_weight=w)
        on_gpu = GaussianMixture(3, **params)
        labels = on_gpu.fit_predict(cp.asarray(X), sample_weight=None if w is None else cp.asarray(w))
    assert isinstance(labels, cp.ndarray) and isinstance(on_gpu.means_, np.ndarray)
    np.testing.assert_array_equal(cp.asnumpy(labels), on_gpu.predict(X))
    if init_params == "kmeans":  # a different k-means: the same clusters on these blobs
        assert on_gpu.lower_bound_ == pytest.approx(on_cpu.lower_bound_, rel=1e-3)
        return
    tol = 1e-8 if dtype == np.float64 else 1e-4
    assert on_gpu.n_iter_ == on_cpu.n_iter_ == 8
    for name in ("weights_", "means_", "covariances_"):
        assert max_rel(getattr(on_gpu, name), getattr(on_cpu, name)) <= tol, name
    _assert_same_precision_factors(on_gpu, on_cpu, tol, dtype)
    assert on_gpu.lower_bound_ == pytest.approx(on_cpu.lower_bound_, rel=tol)


def _assert_same_precision_factors(on_gpu, on_cpu, tol, dtype):
    """Inverting a covariance multiplies its relative rounding error by up to its condition number
    (seed 909's third blob: cond 4.5e4, so float32 precision factors differ by 1.3e-4 while the
    covariances agree to 3e-7). Each component is held to max(tol, 10·eps·cond)."""
    eps = np.finfo(dtype).eps
    covariances = on_cpu.covariances_
    if on_cpu.covariance_type in ("full", "tied"):
        blocks = covariances[None] if on_cpu.covariance_type == "tied" else covariances
        cond = np.array([np.linalg.cond(block) for block in blocks])
    elif on_cpu.covariance_type == "diag":
        cond = covariances.max(axis=1) / covariances.min(axis=1)
    else:
        cond = np.ones(len(covariances))
    ours, theirs = np.asarray(on_gpu.precisions_cholesky_), np.asarray(on_cpu.precisions_cholesky_)
    if on_cpu.covariance_type == "tied":
        ours, theirs = ours[None], theirs[None]
    for k, condition in enumerate(cond):
        allowed = max(tol, 10 * eps * condition)
        assert max_rel(ours[k], theirs[k]) <= allowed, ("precisions_cholesky_", k, condition)


@needs_gxx
@pytest.mark.parametrize("cov_type", COV_TYPES)
@pytest.mark.parametrize("init_params", ["random", "random_from_data", "k-means++", "kmeans"])
def test_emulated_fit_on_device_follows_the_cpu(emulated_device, cov_type, init_params):
    _check_device_fit(emulated_device, cov_type, init_params, np.float64, weighted=cov_type in ("full", "diag"))


@needs_gxx
@pytest.mark.parametrize("seed", [0, 909])  # 909: one blob with covariance condition number 4.5e4
@pytest.mark.parametrize("cov_type", ["full", "spherical"])
def test_emulated_fit_on_device_in_float32(emulated_device, cov_type, seed):
    _check_device_fit(emulated_device, cov_type, "k-means++", np.float32, weighted=True, seed=seed)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cov_type", COV_TYPES)
@pytest.mark.parametrize("init_params", ["random", "random_from_data", "k-means++", "kmeans"])
def test_fit_on_gpu_follows_the_cpu(cov_type, init_params, dtype):
    _check_device_fit(pytest.importorskip("cupy"), cov_type, init_params, dtype, weighted=True, n=5000)


# --------------------------------------------- array-API dispatch and far queries on a GPU
_ATTRIBUTES = ("weights_", "means_", "covariances_", "precisions_cholesky_", "precisions_")


def _check_device_dispatch(cp, cov_type, init_params, dtype, monkeypatch, make=None, is_device=None):
    """Under scikit-learn's array-API dispatch a fit of GPU data keeps its fitted attributes on the
    device (CuPy, or torch CUDA with ``make``), in the data's dtype, with the values of the
    dispatch-off fit; the results stay on the device."""
    import warnings

    import sklearn
    from mixture_helpers import blobs

    from fastdensity.mixture import GaussianMixture

    make = cp.asarray if make is None else make
    is_device = (lambda a: isinstance(a, cp.ndarray)) if is_device is None else is_device
    X = blobs(n=400, d=3, k=3, seed=input_seed(10))[0].astype(dtype)
    params = dict(covariance_type=cov_type, init_params=init_params, random_state=0, max_iter=5, tol=0.0)
    monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = GaussianMixture(3, **params).fit(make(X))
        with sklearn.config_context(array_api_dispatch=True):
            model = GaussianMixture(3, **params)
            labels = model.fit_predict(make(X))
            outputs = {m: getattr(model, m)(make(X)) for m in ("score_samples", "predict_proba", "predict")}
    assert is_device(labels)
    for name in _ATTRIBUTES:
        value = getattr(model, name)
        assert is_device(value) and str(value.dtype).endswith(np.dtype(dtype).name), name
        assert type(getattr(reference, name)) is np.ndarray or not is_device(getattr(reference, name)), name
        np.testing.assert_array_equal(cp.asnumpy(cp.asarray(value)), getattr(reference, name))
    for method, out in outputs.items():
        assert is_device(out), method
        np.testing.assert_array_equal(cp.asnumpy(cp.asarray(out)), cp.asnumpy(cp.asarray(getattr(reference, method)(make(X)))))


@needs_gxx
@pytest.mark.parametrize("cov_type", COV_TYPES)
@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random", "random_from_data"])
def test_emulated_dispatch_keeps_attributes_on_the_device(emulated_device, cov_type, init_params, monkeypatch):
    _check_device_dispatch(emulated_device, cov_type, init_params, np.float64, monkeypatch)


@needs_gxx
def test_emulated_dispatch_float32(emulated_device, monkeypatch):
    _check_device_dispatch(emulated_device, "full", "kmeans", np.float32, monkeypatch)


def _check_far_queries_on_device(cp, cov_type):
    import warnings

    gm, Q = _fitted(cov_type)
    far = np.array([[1e300, 1e300, 1e300], [-1.7e308, 1.7e308, 0.0], [1.0, 2.0, 3.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scores = cp.asnumpy(gm.score_samples(cp.asarray(far)))
        proba = cp.asnumpy(gm.predict_proba(cp.asarray(far)))
        labels = cp.asnumpy(gm.predict(cp.asarray(far)))
    assert np.all(scores[:2] == -np.inf) and np.isfinite(scores[2])
    np.testing.assert_array_equal(labels, gm.predict(far))
    np.testing.assert_allclose(proba, gm.predict_proba(far), atol=1e-12)


@needs_gxx
@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_emulated_far_queries_score_minus_inf_and_get_a_component(emulated_device, cov_type):
    _check_far_queries_on_device(emulated_device, cov_type)


@pytest.mark.gpu
@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_far_queries_on_gpu(cov_type):
    _check_far_queries_on_device(pytest.importorskip("cupy"), cov_type)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cov_type", COV_TYPES)
@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random", "random_from_data"])
def test_dispatch_keeps_attributes_on_the_gpu(cov_type, init_params, dtype, monkeypatch):
    _check_device_dispatch(pytest.importorskip("cupy"), cov_type, init_params, dtype, monkeypatch)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_dispatch_keeps_attributes_on_the_gpu_as_torch_tensors(cov_type, dtype, monkeypatch):
    cp = pytest.importorskip("cupy")
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch without CUDA")
    _check_device_dispatch(cp, cov_type, "kmeans", dtype, monkeypatch,
                           make=lambda a: torch.as_tensor(a, device="cuda"),
                           is_device=lambda a: isinstance(a, torch.Tensor) and a.device.type == "cuda")
