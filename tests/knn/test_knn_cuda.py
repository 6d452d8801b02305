"""The CUDA kNN engine (fastdensity.knn._knn_cuda) against the CPU engine.

GPU tests (``@pytest.mark.gpu``) skip without a GPU. Without one, the same checks run the real
launcher and the real kernels/knn.cu in the host emulation (tests/cuda_host_emulation.py: one CPU
thread per CUDA thread, real barriers and ballots), and the CPU-side tests check the launch plan
and a NumPy transcription of the kernels' selection (candidate buffers, bitonic flushes, splits,
exact merge).
"""

from __future__ import annotations

import numpy as np
import pytest

import cuda_host_emulation
from random_inputs import input_rng
from fastdensity.knn import _knn_cpu as cpu
from fastdensity.knn import _knn_cuda as gpu


# ------------------------------------------------------------------ transcription of knn.cu
def _before(ka, ia, kb, ib):
    return ka < kb or (ka == kb and (ia & 0xFFFFFFFF) < (ib & 0xFFFFFFFF))


def _compare_swap(key, idx, lo, hi, ascending):
    swap = _before(key[hi], idx[hi], key[lo], idx[lo]) if ascending else _before(key[lo], idx[lo], key[hi], idx[hi])
    if swap:
        key[lo], key[hi] = key[hi], key[lo]
        idx[lo], idx[hi] = idx[hi], idx[lo]


def _bitonic_sort(key, idx, off, n, descending):
    size = 2
    while size <= n:
        stride = size >> 1
        while stride > 0:
            for t in range(n >> 1):
                lo = ((t & ~(stride - 1)) << 1) | (t & (stride - 1))
                up = ((lo & size) == 0) != descending
                _compare_swap(key, idx, off + lo, off + lo + stride, up)
            stride >>= 1
        size <<= 1


def _bitonic_merge(key, idx, n):
    stride = n >> 1
    while stride > 0:
        for t in range(n >> 1):
            lo = ((t & ~(stride - 1)) << 1) | (t & (stride - 1))
            _compare_swap(key, idx, lo, lo + stride, True)
        stride >>= 1


def _flush(key, idx, k2, count, k):
    for e in range(count, k2):
        key[k2 + e] = np.inf
        idx[k2 + e] = -1
    _bitonic_sort(key, idx, k2, k2, True)
    _bitonic_merge(key, idx, 2 * k2)
    return key[k - 1]


def _topk_tiles(screen, q, k, k2, j_begin, j_end, exclude_self):
    """knn_topk_tiles for one query: screen[j] is its screen value of training point j."""
    key = [np.inf] * (2 * k2)
    idx = [-1] * (2 * k2)
    thr, count = np.inf, 0
    for j0 in range(j_begin, j_end, gpu.TILE):
        for r in range(gpu.TILE // 32):
            lanes = [j0 + lane + 32 * r for lane in range(32)]
            cand = [j < j_end and not (exclude_self and j == q) and screen[j] <= thr for j in lanes]
            added = sum(cand)
            if added == 0:
                continue
            if count + added > k2:
                thr = _flush(key, idx, k2, count, k)
                count = 0
            pos = k2 + count
            for j, c in zip(lanes, cand):  # ballot order: lane order
                if c:
                    key[pos], idx[pos] = screen[j], j
                    pos += 1
            count += added
    if count > 0:
        _flush(key, idx, k2, count, k)
    return idx[:k]


def _simulate(queries, train, k, exclude_self, n_splits_wanted):
    """The two kernels for every query, with the float64 squared distances as the screen."""
    m, n = len(queries), len(train)
    geo = gpu.plan(m, n, k, 8, sm_count=1, smem_optin=227 * 1024)
    n_tiles = -(-n // gpu.TILE)
    split_len = -(-n_tiles // n_splits_wanted) * gpu.TILE
    n_splits = -(-n // split_len)
    out_d = np.empty((m, k))
    out_i = np.empty((m, k), dtype=np.int64)
    for q in range(m):
        screen = np.sum((train - queries[q]) ** 2, axis=1)
        cands = []
        for s in range(n_splits):
            cands += _topk_tiles(screen, q, k, geo.k2, s * split_len, min(n, (s + 1) * split_len), exclude_self)
        keyed = sorted((screen[j] if j >= 0 else np.inf, j & 0xFFFFFFFF) for j in cands)  # the merge
        out_d[q] = np.sqrt([kd for kd, _ in keyed[:k]])
        out_i[q] = [j for _, j in keyed[:k]]
    return out_d, out_i


@pytest.mark.parametrize("n2", [32, 64, 256])
def test_bitonic_flush_keeps_the_best_sorted(n2):
    rng = input_rng(1)
    key = list(np.sort(rng.integers(0, 50, size=n2).astype(float))) + list(rng.integers(0, 50, size=n2).astype(float))
    idx = list(range(n2)) + list(range(n2, 2 * n2))
    count = int(rng.integers(1, n2 + 1))
    want = sorted(zip(key[:n2] + key[n2:n2 + count], idx[:n2] + idx[n2:n2 + count]))[:n2]
    _flush(key, idx, n2, count, 1)
    assert list(zip(key[:n2], idx[:n2])) == want


@pytest.mark.parametrize(("n", "k", "splits", "exclude_self"),
                         [(5, 5, 1, False), (300, 1, 2, False), (300, 33, 3, True), (700, 100, 2, False)])
def test_selection_transcription_matches_the_cpu_engine(n, k, splits, exclude_self):
    rng = input_rng(2)
    # Integer coordinates and repeated rows: many exact ties, which go to the smaller index.
    train = rng.integers(-3, 4, size=(n, 2)).astype(np.float64)
    train[n // 2:] = train[: n - n // 2]
    queries = train[:7] if exclude_self else rng.integers(-3, 4, size=(7, 2)).astype(np.float64)
    if exclude_self:  # leave-one-out needs the full training set as queries; check its first rows
        want_d, want_i = cpu.knn_distances(train, train, k, True)
        got_d, got_i = _simulate(train, train, k, True, splits)
        want_d, want_i, got_d, got_i = want_d[:7], want_i[:7], got_d[:7], got_i[:7]
    else:
        want_d, want_i = cpu.knn_distances(queries, train, k)
        got_d, got_i = _simulate(queries, train, k, False, splits)
    np.testing.assert_array_equal(got_i, want_i)
    np.testing.assert_array_equal(got_d, want_d)


# ------------------------------------------------------------------------------ launch plan
@pytest.mark.parametrize("itemsize", [4, 8])
def test_plan_fits_and_covers(itemsize):
    for m, n, k in [(1, 1, 1), (31, 1025, 31), (1025, 31, 5), (5, 10**6, 10), (10**6, 10**5, 64), (3, 5000, 1024)]:
        geo = gpu.plan(m, n, k, itemsize, sm_count=132, smem_optin=227 * 1024)
        assert geo.k2 >= max(k, 32) and geo.k2 & (geo.k2 - 1) == 0
        assert geo.smem_topk == gpu.topk_smem_bytes(itemsize, geo.warps, geo.k2) <= 227 * 1024
        assert geo.grid_x * geo.warps * gpu.QPW >= m > (geo.grid_x - 1) * geo.warps * gpu.QPW
        assert geo.split_len % gpu.TILE == 0
        assert geo.n_splits * geo.split_len >= n > (geo.n_splits - 1) * geo.split_len  # no empty split
        assert geo.n_splits * k <= geo.p2 <= gpu.MAX_MERGE and geo.smem_merge <= 48 * 1024


def test_plan_splits_the_training_set_for_few_queries():
    assert gpu.plan(4, 10**6, 10, 4, sm_count=132, smem_optin=227 * 1024).n_splits > 100
    assert gpu.plan(10**6, 10**6, 10, 4, sm_count=132, smem_optin=227 * 1024).n_splits == 1


def test_plan_refuses_k_above_the_maximum():
    with pytest.raises(ValueError, match="at most 1024 on the GPU.*backend='cpu'"):
        gpu.plan(10, 5000, gpu.MAX_K + 1, 4, sm_count=132, smem_optin=227 * 1024)


# ------------------------------------------------------------------------------- on a GPU
def _poison_empty(cp, monkeypatch):
    """Make cupy.empty hand out poisoned memory (NaN, or −7 for integers) during the test."""
    real_empty = cp.empty

    def empty(*args, **kwargs):
        a = real_empty(*args, **kwargs)
        a.fill(np.nan if a.dtype.kind == "f" else -7)
        return a

    monkeypatch.setattr(cp, "empty", empty)


def _screen_bound(queries, train, dtype):
    """The accuracy contract's bound on |d_gpu² − d_cpu²| at each rank, per query (original units)."""
    q = queries.astype(np.float64)
    x = train.astype(np.float64)
    c = x.mean(0)
    R = np.sqrt(np.max(np.sum((x - c) ** 2, axis=1)))
    qn = np.sqrt(np.sum((q - c) ** 2, axis=1))
    u = 2.0**-24 if dtype == np.float32 else 2.0**-53
    return 4.0 * (x.shape[1] + 4) * u * (qn + R) ** 2


def _check_against_cpu(cp, queries, train, k, exclude_self):
    with pytest.MonkeyPatch.context() as mp:
        _poison_empty(cp, mp)
        got_d, got_i = gpu.knn_distances(cp.asarray(queries), cp.asarray(train), k, exclude_self)
    got_d, got_i = cp.asnumpy(got_d), cp.asnumpy(got_i)
    want_d, want_i = cpu.knn_distances(queries, train, k, exclude_self)
    assert got_d.dtype == want_d.dtype and got_i.dtype == np.int64
    assert not np.isnan(got_d).any()
    assert ((got_i >= 0) & (got_i < len(train))).all()
    assert all(len(set(row)) == k for row in got_i)
    if exclude_self:
        assert (got_i != np.arange(len(queries))[:, None]).all()
    # Sorted by (distance, index); each distance is exact for its index (bit-identical to the CPU's
    # where the two engines picked the same neighbour).
    assert (np.diff(got_d, axis=1) >= 0).all()
    same = got_i == want_i
    np.testing.assert_array_equal(got_d[same], want_d[same])
    exact = np.sqrt(np.sum((train[got_i].astype(np.float64) - queries[:, None].astype(np.float64)) ** 2, axis=2))
    np.testing.assert_allclose(got_d, exact.astype(got_d.dtype), rtol=4e-7 if got_d.dtype == np.float32 else 1e-14)
    # The set: rank by rank within the screen's error of the CPU's exact top-k.
    bound = _screen_bound(queries, train, train.dtype)
    gap = np.abs(got_d.astype(np.float64) ** 2 - want_d.astype(np.float64) ** 2)
    assert (gap <= bound[:, None] + 4 * np.finfo(got_d.dtype).eps * want_d.astype(np.float64) ** 2).all()
    assert same.mean() >= (0.99 if train.dtype == np.float32 else 0.999)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("m", "n", "d", "k"), [(1, 1, 1, 1), (31, 1025, 3, 7), (1025, 31, 16, 31),
                                                (257, 3000, 33, 100), (64, 20000, 70, 10), (5, 2000, 8, 1024)])
def test_matches_the_cpu_engine(dtype, m, n, d, k):
    cp = pytest.importorskip("cupy")
    rng = input_rng(3)
    train = (rng.normal(size=(n, d)) * rng.uniform(0.5, 3.0, size=d) + 10.0).astype(dtype)
    queries = (rng.normal(size=(m, d)) * 2.0 + 10.0).astype(dtype)
    _check_against_cpu(cp, queries, train, k, False)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k", [1, 32, 33])
def test_leave_one_out_matches_the_cpu_engine(dtype, k):
    cp = pytest.importorskip("cupy")
    train = input_rng(4).normal(size=(1025, 5)).astype(dtype)
    _check_against_cpu(cp, train, train, k, True)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ties_go_to_the_smaller_index(dtype):
    cp = pytest.importorskip("cupy")
    rng = input_rng(5)
    base = rng.normal(size=(40, 4))
    train = base[rng.integers(0, 40, size=3000)].astype(dtype)  # every distance is shared by several rows
    queries = rng.normal(size=(31, 4)).astype(dtype)
    got_d, got_i = gpu.knn_distances(cp.asarray(queries), cp.asarray(train), 50)
    want_d, want_i = cpu.knn_distances(queries, train, 50)
    np.testing.assert_array_equal(cp.asnumpy(got_i), want_i)
    np.testing.assert_array_equal(cp.asnumpy(got_d), want_d)


@pytest.mark.gpu
def test_mixed_dtypes_and_far_queries():
    cp = pytest.importorskip("cupy")
    rng = input_rng(6)
    train = rng.normal(size=(500, 6))
    queries = (rng.normal(size=(9, 6)) * 1e3).astype(np.float32)  # far outside the data
    _check_against_cpu(cp, queries, train, 12, False)


@pytest.mark.gpu
def test_torch_cuda_tensors_round_trip():
    cp = pytest.importorskip("cupy")
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch without CUDA")
    rng = input_rng(7)
    train = torch.as_tensor(rng.normal(size=(777, 9)).astype(np.float32), device="cuda")
    queries = torch.as_tensor(rng.normal(size=(33, 9)).astype(np.float32), device="cuda")
    got_d, got_i = gpu.knn_distances(queries, train, 5)
    back_d, back_i = torch.from_dlpack(got_d), torch.from_dlpack(got_i)
    assert back_d.device.type == "cuda" and back_d.dtype == torch.float32 and back_i.dtype == torch.int64
    want_d, want_i = cpu.knn_distances(queries.cpu().numpy(), train.cpu().numpy(), 5)
    np.testing.assert_array_equal(back_i.cpu().numpy(), want_i)
    np.testing.assert_allclose(back_d.cpu().numpy(), want_d, rtol=1e-6)
    assert cp.asnumpy(got_d).shape == (33, 5)


@pytest.mark.gpu
def test_k_above_the_maximum_is_refused():
    cp = pytest.importorskip("cupy")
    x = cp.asarray(input_rng(8).normal(size=(1100, 2)))
    with pytest.raises(ValueError, match="at most 1024 on the GPU"):
        gpu.knn_distances(x, x, 1025)


# ---------------------------------------------------------------- in the host emulation
needs_gxx = pytest.mark.skipif(not cuda_host_emulation.available(), reason="g++ is not installed")


@pytest.fixture
def emulated(monkeypatch):
    """The fake ``cupy`` (NumPy) whose kernels run kernels/knn.cu in the host emulation."""
    kernels = cuda_host_emulation.fake_cupy(monkeypatch, gpu.SOURCE, gpu.NAME_EXPRESSIONS, sm_count=4)
    from fastdensity._backend._cuda import require_cupy

    return require_cupy(), kernels


@needs_gxx
@pytest.mark.parametrize(("dtype", "m", "n", "d", "k"), [
    (np.float32, 37, 700, 5, 40),  # one split, 8 warps, several flushes per query
    (np.float64, 5, 3000, 3, 7),  # few queries: the training set is split (grid.y > 1)
    (np.float32, 9, 1000, 40, 33),  # two dimension chunks, k2 = 64
    (np.float64, 1, 1, 1, 1),
    (np.float32, 3, 1100, 2, 1024),  # k at the maximum: one warp, 2048-entry lists
])
def test_emulated_kernels_match_the_cpu_engine(emulated, dtype, m, n, d, k):
    cp, kernels = emulated
    rng = input_rng(9)
    train = (rng.normal(size=(n, d)) * rng.uniform(0.5, 3.0, size=d) + 10.0).astype(dtype)
    queries = (rng.normal(size=(m, d)) * 2.0 + 10.0).astype(dtype)
    _check_against_cpu(cp, queries, train, k, False)
    (grid, _, _), = kernels[gpu.TOPK_NAMES[np.dtype(dtype)]].launches
    if n == 3000:
        assert grid[1] > 1


@needs_gxx
def test_emulated_leave_one_out_and_ties(emulated):
    cp, _ = emulated
    rng = input_rng(10)
    train = rng.normal(size=(300, 4))[rng.integers(0, 60, size=300)]  # repeated rows: exact ties
    _check_against_cpu(cp, train, train, 9, True)
    queries = rng.normal(size=(20, 4))
    got_d, got_i = gpu.knn_distances(queries, train, 50)
    want_d, want_i = cpu.knn_distances(queries, train, 50)
    np.testing.assert_array_equal(got_i, want_i)
    np.testing.assert_array_equal(got_d, want_d)


@needs_gxx
def test_emulated_mixed_dtypes_and_far_queries(emulated):
    cp, _ = emulated
    rng = input_rng(11)
    train = rng.normal(size=(500, 6))
    queries = (rng.normal(size=(9, 6)) * 1e3).astype(np.float32)
    _check_against_cpu(cp, queries, train, 12, False)


RACE_SCRIPT = """
import numpy as np, pytest
import cuda_host_emulation as emu
from fastdensity.knn import _knn_cpu as cpu, _knn_cuda as gpu
mp = pytest.MonkeyPatch()
emu.fake_cupy(mp, gpu.SOURCE, gpu.NAME_EXPRESSIONS, sm_count=4)
rng = np.random.default_rng(12)
for dtype, m, n, d, k in [(np.float32, 6, 900, 3, 20), (np.float64, 9, 300, 37, 33)]:
    x = rng.normal(size=(n, d)).astype(dtype)
    q = rng.normal(size=(m, d)).astype(dtype)
    got = gpu.knn_distances(q, x, k)
    assert (got[1] == cpu.knn_distances(q, x, k)[1]).all()
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


# ------------------------------------------------------------- KNNDensity on a GPU
def _estimator_pair(dtype, n=1500, d=4, k=10, m=77):
    from fastdensity.knn import KNNDensity

    rng = input_rng(13)
    X = rng.normal(size=(n, d)).astype(dtype)
    Q = rng.normal(size=(m, d)).astype(dtype)
    return KNNDensity(n_neighbors=k), KNNDensity(n_neighbors=k, algorithm="brute"), X, Q


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_estimator_on_cupy_matches_the_cpu(dtype):
    _check_estimator_on_device(pytest.importorskip("cupy"), dtype)


def _check_estimator_on_device(cp, dtype, n=1500, m=77):
    gpu_est, cpu_est, X, Q = _estimator_pair(dtype, n=n, m=m)
    gpu_est.fit(cp.asarray(X))
    cpu_est.fit(X)
    assert gpu_est.effective_algorithm_ == "brute" and isinstance(gpu_est.training_data_, cp.ndarray)
    got = gpu_est.score_samples(cp.asarray(Q))
    assert isinstance(got, cp.ndarray) and got.dtype == dtype
    np.testing.assert_allclose(cp.asnumpy(got), cpu_est.score_samples(Q), rtol=1e-5 if dtype == np.float32 else 1e-12)
    loo = gpu_est.score_samples()  # leave-one-out on the device, returned as the training data's type
    assert isinstance(loo, cp.ndarray)
    np.testing.assert_allclose(cp.asnumpy(loo), cpu_est.score_samples(), rtol=1e-5 if dtype == np.float32 else 1e-12)
    dist, ind = gpu_est.kneighbors(cp.asarray(Q), 5)
    want_d, want_i = cpu_est.kneighbors(Q, 5)
    np.testing.assert_array_equal(cp.asnumpy(ind), want_i)
    np.testing.assert_allclose(cp.asnumpy(dist), want_d, rtol=1e-6)
    assert gpu_est.score(cp.asarray(Q)) == pytest.approx(cpu_est.score(Q), rel=1e-5)


@pytest.mark.gpu
def test_estimator_moves_fitted_data_once_between_host_and_device():
    _check_estimator_moves_data(pytest.importorskip("cupy"))


def _check_estimator_moves_data(cp, n=1500, m=77):
    host_fit, _, X, Q = _estimator_pair(np.float64, n=n, m=m)
    host_fit.fit(X)
    on_device = host_fit.score_samples(cp.asarray(Q))  # host-fitted, device queries
    assert isinstance(on_device, cp.ndarray)
    np.testing.assert_allclose(cp.asnumpy(on_device), host_fit.score_samples(Q), rtol=1e-12)
    from fastdensity.knn import KNNDensity

    dev_fit = KNNDensity(n_neighbors=10).fit(cp.asarray(X))
    on_host = dev_fit.score_samples(Q)  # device-fitted, host queries run on the CPU
    assert isinstance(on_host, np.ndarray)
    np.testing.assert_allclose(on_host, host_fit.score_samples(Q), rtol=1e-12)
    host_state = dev_fit._engine_states["cpu"]
    dev_fit.score_samples(Q)
    assert dev_fit._engine_states["cpu"] is host_state  # copied to the host once
    forced = KNNDensity(n_neighbors=10, backend="cuda").fit(X).score_samples(Q)  # host data on the GPU
    assert isinstance(forced, np.ndarray)
    np.testing.assert_allclose(forced, host_fit.score_samples(Q), rtol=1e-12)


@pytest.mark.gpu
def test_estimator_with_torch_cuda_tensors():
    pytest.importorskip("cupy")
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch without CUDA")
    est, cpu_est, X, Q = _estimator_pair(np.float32)
    est.fit(torch.as_tensor(X, device="cuda"))
    got = est.score_samples(torch.as_tensor(Q, device="cuda"))
    assert isinstance(got, torch.Tensor) and got.device.type == "cuda" and got.dtype == torch.float32
    np.testing.assert_allclose(got.cpu().numpy(), cpu_est.fit(X).score_samples(Q), rtol=1e-5)


@pytest.mark.slow  # 1030 merge blocks of 128 host threads: ~30 s
@needs_gxx
def test_emulated_leave_one_out_with_split_training_set(monkeypatch):
    """exclude_self where each query's own row lies in one of several training splits."""
    kernels = cuda_host_emulation.fake_cupy(monkeypatch, gpu.SOURCE, gpu.NAME_EXPRESSIONS, sm_count=132)
    from fastdensity._backend._cuda import require_cupy

    train = input_rng(14).normal(size=(1030, 3)).astype(np.float32)
    _check_against_cpu(require_cupy(), train, train, 6, True)
    (grid, _, _), = kernels[gpu.TOPK_NAMES[np.dtype(np.float32)]].launches
    assert grid[1] == 2


@pytest.fixture
def emulated_device(monkeypatch):
    """The fake ``cupy`` with fake device arrays: the estimator's GPU path runs in the emulation."""
    cuda_host_emulation.fake_cupy(monkeypatch, gpu.SOURCE, gpu.NAME_EXPRESSIONS, device_arrays=True)
    return __import__("sys").modules["cupy"]


@needs_gxx
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_emulated_estimator_on_device_matches_the_cpu(emulated_device, dtype):
    _check_estimator_on_device(emulated_device, dtype, n=200, m=9)  # small: one host thread per CUDA thread


@needs_gxx
def test_emulated_estimator_moves_fitted_data_once(emulated_device):
    _check_estimator_moves_data(emulated_device, n=200, m=9)
