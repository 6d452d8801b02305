"""``KNNDensity``: the k-nearest-neighbour density estimate, exact and fast."""

from __future__ import annotations

import math
import warnings

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from .._backend import array_kind, common_kind, resolve_n_jobs, threads
from .._backend._convert import float64_total
from .._backend._dask import fitted_on_dask, rows_accept_dask
from .._backend._dispatch import BACKENDS
from .._backend._validation import Check, Integer, Options, check_parameter, validate_parameters
from .._backend._estimator_input import check_estimator_X
from ._engine import engine_for

_ALGORITHMS = ("auto", "brute", "kd_tree")

# algorithm="auto" (``_auto_algorithm``): the k-d tree for n >= 1,000 and k <= 128 when d <= 3,
# or d <= 4 with n >= 10,000, or d <= 6 with n >= 50,000 and k <= 64; brute force otherwise.
# Measured on this project's 2-core machine (Xeon, AVX-512; load 2-3 from other jobs), fit +
# score_samples with n = m, standard normal data, medians of 3 interleaved runs
# (bench/compare_knn.py --crossover gives the k = 10 table): k-d tree time / brute time
#
#   k = 10       d=2    d=3    d=4    d=5    d=6    d=8    d=10
#   n = 2e3     0.37   0.42   0.65   0.78   1.00   1.48   1.84     (both 2-10 ms)
#   n = 1e4     0.76   0.82   0.95   1.13   1.33   2.19   3.17
#   n = 1e5     0.34   0.33   0.37   0.43   0.72   1.56   4.75
#   k = 100
#   n = 1e4     0.62   0.71   0.94          1.26
#   n = 1e5     0.66   0.64   0.70          1.13
#
# The tree's cost per query grows slowly with n and fast with d and k; the brute screen's
# (which skips whole panels by ball bounds up to d = 12) linearly with n and slowly with d.
_TREE_MIN_N = 1_000
_TREE_MAX_K = 128


def _auto_algorithm(n, d, k):
    if n < _TREE_MIN_N or k > _TREE_MAX_K:
        return "brute"
    if d <= 3 or (d <= 4 and n >= 10_000) or (d <= 6 and n >= 50_000 and k <= 64):
        return "kd_tree"
    return "brute"


def _check_X(est, X, reset):
    """``check_estimator_X`` without warnings for data near ±1.8e308 (scikit-learn's finiteness
    check sums X first, which overflows harmlessly there: it then checks element-wise). Dask
    arrays are checked without computing (their values by the Dask engine's tasks)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return check_estimator_X(est, X, reset=reset, allow_dask=True)


def _log_density(engine, dist, const, d, k, dtype, first_row=0):
    """log p̂ = const − d log r_k from the (m, k) distances ``dist`` of ``engine``; rows at
    distance 0 get +inf with a RuntimeWarning naming them (counted from ``first_row``)."""
    # Computed where the distances are; only the rows at distance 0 come to the host.
    r_k = dist[:, -1].astype(np.float64)
    with np.errstate(divide="ignore"):  # log 0 = -inf, density +inf: warned below
        log_density = const - d * engine.xp.log(r_k)
    is_zero = r_k == 0.0
    zero = engine.to_host(is_zero.nonzero()[0]) if bool(is_zero.any()) else np.empty(0, np.int64)
    if zero.size:
        shown = ", ".join(str(i + first_row) for i in zero[:10]) + (", ..." if zero.size > 10 else "")
        warnings.warn(
            f"{zero.size} of {r_k.size} rows have their k-th nearest neighbour (k = {k}) at "
            f"distance 0 (at least {k} training points coincide with them: duplicates); their "
            f"log density is +inf (rows {shown}). Increase n_neighbors or remove duplicate points",
            RuntimeWarning,
            stacklevel=4,
        )
    if dtype == np.float32:
        log_density = log_density.astype(np.float32)
    return log_density


def _log_unit_ball_volume(d):
    """log V_d, V_d = π^(d/2) / Γ(d/2 + 1): the volume of the unit ball in d dimensions."""
    return 0.5 * d * math.log(math.pi) - math.lgamma(0.5 * d + 1.0)


class KNNDensity(BaseEstimator):
    """Density estimation by the k-th nearest neighbour distance.

    The estimate at x is

        p̂(x) = k / (n · V_d · r_k(x)^d),

    with r_k(x) the distance from x to its k-th nearest training point, n the number of
    training points and V_d = π^(d/2) / Γ(d/2 + 1) the volume of the unit ball in d dimensions:
    the fraction k/n of the data divided by the volume of the smallest ball around x that holds
    it. Everything is computed in log space, log p̂ = log k − log n − log V_d − d log r_k, so
    large d cannot overflow.

    **This estimate is not normalised**: it does not integrate to 1 (its integral diverges in
    every dimension, since p̂ decays like r^-d far from the data). Use it to rank points by
    density (outlier scores, density ratios between sets scored by the same estimator), not as a
    likelihood to compare with normalised models.

    Neighbours are exact (no approximate search): brute force with a float32 screen and float64
    verification, or a k-d tree in low dimension; ties go to the smaller training index and the
    results do not depend on the thread count.

    Parameters
    ----------
    n_neighbors : int, default=10
        k, the neighbour whose distance sets the density. Must not exceed the number of training
        points (n − 1 for the leave-one-out scores of ``score_samples()``).
    algorithm : {"auto", "brute", "kd_tree"}, default="auto"
        The search engine (results are identical): "brute" screens every pair (any d); "kd_tree"
        is a k-d tree written for this library, several times faster than brute force in low
        dimension (and faster than ``scipy.spatial.cKDTree``); "auto" picks the tree for
        d ≤ 3 (d ≤ 4 from n = 10,000, d ≤ 6 from n = 50,000), n ≥ 1,000 and k ≤ 128, brute
        force otherwise, from measurements recorded in ``fastdensity/knn/_knn.py``.
    backend : {"auto", "cpu", "cuda"}, default="auto"
        Where to compute: "auto" follows the data (NumPy arrays and torch CPU tensors run on the
        CPU, CuPy arrays and torch CUDA tensors on their GPU); "cuda" also runs host data on the
        current GPU. Results come back in the caller's array type. The GPU engine is brute force
        (whatever ``algorithm`` says) with a float32 or float64 screen and exact float64
        distances; it takes k ≤ 1024 and may exchange neighbours whose distances tie to within
        rounding (see ``fastdensity.knn._knn_cuda``). Training data fitted on one device moves
        once (cached) when queries come from the other. Needs CuPy (``pip install
        fastdensity[cuda12]`` or ``[cuda13]``).
    n_jobs : int or None, default=None
        Threads (None or -1: all cores; per task on Dask).

    Attributes
    ----------
    training_data_ : ndarray of shape (n, d), or the dask array fitted on
    n_samples_fit_ : int
    n_features_in_ : int
    effective_algorithm_ : str
        "brute" or "kd_tree", the engine chosen at ``fit``.
    feature_names_in_ : ndarray of str
        Only when fitted on data with string column names.

    Notes
    -----
    A query with r_k = 0 (at least k training points coincide with it) has density +inf; those
    log densities are returned as +inf and a ``RuntimeWarning`` names the rows. ``score`` is the
    *sum* of the log densities, as in ``KernelDensity`` (scikit-learn has no kNN density).

    **Dask.** ``fit`` on a dask array (NumPy chunks, known chunk sizes) keeps the training set
    sharded: its rows are never gathered. Each query's neighbours are searched per row block by
    the CPU engine and the per-block lists merged (``fastdensity.knn._sharded``), so every result
    equals the in-memory fit's. NumPy queries give NumPy results; dask queries and the
    leave-one-out scores (``X=None``) give lazy dask arrays with the queries' (training set's) row
    chunks; ``score`` reduces on the workers. Each computation builds the blocks' search indexes
    once (persist the array to keep its rows in worker memory); such a model cannot be saved with
    ``fastdensity.save`` (compute the array and fit again). A model fitted in memory scores dask
    queries per chunk, and its ``kneighbors`` takes them too.

    Examples
    --------
    >>> import numpy as np
    >>> from fastdensity.knn import KNNDensity
    >>> X = np.random.default_rng(0).standard_normal((1000, 2))
    >>> est = KNNDensity(n_neighbors=10).fit(X)
    >>> est.score_samples(X[:3]).shape
    (3,)
    """

    def __init__(self, n_neighbors=10, *, algorithm="auto", backend="auto", n_jobs=None):
        self.n_neighbors = n_neighbors
        self.algorithm = algorithm
        self.backend = backend
        self.n_jobs = n_jobs

    # ----------------------------------------------------------------------------- validation
    _constraints = {
        "n_neighbors": Integer(1),
        "algorithm": Options(_ALGORITHMS),
        "backend": Options(BACKENDS),
        "n_jobs": Check(resolve_n_jobs),
    }

    def _validate_params(self):
        validate_parameters(self)

    def _choose_algorithm(self, n, d):
        if self.algorithm != "auto":
            return self.algorithm
        return _auto_algorithm(n, d, self.n_neighbors)

    # ------------------------------------------------------------------------------------ fit
    def fit(self, X, y=None):
        """Store ``X`` (n, d) and build the search structure. Returns ``self``.

        A dask array stays sharded (see the class notes): one pass checks that its values are
        finite, and the search indexes are built per block by each computation."""
        self._validate_params()
        X, kind, backend = _check_X(self, X, reset=True)
        n, d = X.shape
        if self.n_neighbors > n:
            raise ValueError(
                f"n_neighbors = {self.n_neighbors} is larger than the number of training points "
                f"(n_samples = {n}); use n_neighbors <= {n}"
            )
        self._fit_kind = kind
        self._engine_states = {}
        self._host_algorithm = self._choose_algorithm(n, d)
        self.training_data_ = X
        self.n_samples_fit_ = n
        # The GPU engine is brute force whatever ``algorithm`` says.
        self.effective_algorithm_ = "brute" if backend == "cuda" else self._host_algorithm
        self._state(engine_for(X))  # the search index is built here, not at the first query
        return self

    # ------------------------------------------------------------------------------ neighbours
    def _state(self, engine):
        """The engine's state over ``training_data_``, prepared once per engine and cached (a
        model fitted on one device moves its data once when queries come from the other)."""
        states = self.__dict__.setdefault("_engine_states", {})
        state = states.get(engine.name)
        if state is None or not engine.is_prepared_for(state, self.training_data_):
            # A GPU-fitted model's "effective_algorithm_" is the GPU's brute force; its host
            # searches use the algorithm chosen for the data.
            algorithm = getattr(self, "_host_algorithm", None) or self.effective_algorithm_
            with threads(self.n_jobs):
                state = states[engine.name] = engine.prepare(self.training_data_, algorithm)
        return state

    def _neighbors(self, X, k):
        """(engine, distances, indices) on the engine of ``X`` (of the training data for X None:
        the training points, each without itself)."""
        # A sharded (dask) training set answers every query on the Dask engine.
        on_train = X is None or fitted_on_dask(self)
        engine = engine_for(self.training_data_ if on_train else X)
        dist, ind = engine.kneighbors(self._state(engine), X, k, self.n_jobs)
        return engine, dist, ind

    def _check_k(self, k, loo):
        n = self.n_samples_fit_
        k = check_parameter("n_neighbors", k, Integer(1))
        limit = n - 1 if loo else n
        if k > limit:
            if loo:
                raise ValueError(
                    f"leave-one-out (X=None) needs n_neighbors <= n_samples - 1 = {limit}; got "
                    f"n_neighbors = {k}"
                )
            raise ValueError(f"n_neighbors = {k} is larger than n_samples = {n}")
        return int(k)

    def kneighbors(self, X=None, n_neighbors=None, return_distance=True):
        """The ``n_neighbors`` nearest training points of each row of ``X``.

        As scikit-learn's ``NearestNeighbors.kneighbors``: ``X=None`` returns the neighbours of
        the training points, each point excluded from its own list. Returns ``(distances,
        indices)`` of shape (m, k), sorted by distance (ties: smaller index first), or only the
        indices with ``return_distance=False``. Distances are float32 for float32 data, else
        float64; they are exact (float64 sums), whichever engine found them.
        """
        check_is_fitted(self, "training_data_")
        k = self.n_neighbors if n_neighbors is None else n_neighbors
        k = self._check_k(k, loo=X is None)
        if X is None:
            kind = self._result_kind_loo()
        else:
            X, kind, _ = _check_X(self, X, reset=False)
        engine, dist, ind = self._neighbors(X, k)
        if return_distance:
            return engine.to_caller(dist, kind), engine.to_caller(ind, kind)
        return engine.to_caller(ind, kind)

    def _result_kind_loo(self):
        """Leave-one-out results come back as the training data's type when it is on a GPU
        (NumPy otherwise, as before the GPU existed)."""
        kind = getattr(self, "_fit_kind", None)
        on_gpu = array_kind(self.training_data_).namespace in ("cupy", "dask")  # dask: lazy results
        return kind if on_gpu and kind is not None else common_kind(None)

    # ---------------------------------------------------------------------------- scoring
    @rows_accept_dask
    def score_samples(self, X=None):
        """Log density log p̂(x) of each row of ``X`` (m, d); float32 in → float32 out.

        ``X=None`` scores the training points leave-one-out: each point's own entry is
        excluded from its neighbours and the estimate uses the remaining n − 1 points,
        log p̂ = log k − log(n − 1) − log V_d − d log r_k. Rows whose k-th distance is 0 get
        +inf, with a ``RuntimeWarning``. The estimate is not normalised (see the class notes).
        """
        check_is_fitted(self, "training_data_")
        loo = X is None
        k = self._check_k(self.n_neighbors, loo=loo)
        if loo:
            kind = self._result_kind_loo()
            dtype = self.training_data_.dtype
        else:
            X, kind, _ = _check_X(self, X, reset=False)
            dtype = X.dtype
        engine, dist, _ = self._neighbors(X, k)
        n_eff = self.n_samples_fit_ - 1 if loo else self.n_samples_fit_
        d = self.n_features_in_
        const = math.log(k) - math.log(n_eff) - _log_unit_ball_volume(d)
        log_density = engine.rows(_log_density, dist, const, d, k, dtype)
        return engine.to_caller(log_density, kind)

    def score(self, X=None, y=None):
        """Total log density of ``X`` (a sum, as ``KernelDensity.score``); ``X=None``:
        leave-one-out on the training points."""
        return float64_total(self.score_samples(X))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags


__all__ = ["KNNDensity"]
