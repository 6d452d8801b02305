"""The EM loop, written once: ``n_init`` restarts, ``tol``, ``warm_start``, ``ConvergenceWarning``,
a final E-step, and online (mini-batch) EM for ``partial_fit``.

The loop follows scikit-learn's ``BaseMixture.fit_predict`` step for step (so that a fit from
the same initial parameters takes the same iterations and ends in the same place), with one
structural difference: each iteration is one fused pass over the data (``_e_step`` returns the
sufficient statistics, ``_m_step`` turns them into parameters) instead of an (n, k)
responsibility matrix handed from the E-step to the M-step.

Progress messages (``verbose``) go to the ``logging`` logger ``"fastdensity.mixture"`` at INFO
level, never to stdout: ``logging.basicConfig(level=logging.INFO)`` shows them.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from time import perf_counter

import numpy as np
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from .._backend._dask import rows_accept_dask, total_log_likelihood_accepts_dask
from .._backend._validation import Integer, check_parameter, validate_parameters
from .._backend._estimator_input import check_estimator_X
from ._arrays import dispatch_on, host, space_of, to_caller
from ._engine import engine_for

logger = logging.getLogger("fastdensity.mixture")

INIT_PARAMS = ("kmeans", "k-means++", "random", "random_from_data")


def check_verbose(verbose):
    """``verbose``: a bool or a non-negative integer (scikit-learn's mixtures take both)."""
    if isinstance(verbose, (bool, np.bool_)):
        return int(verbose)
    return check_parameter("verbose", verbose, Integer(0))


def _finite_check_quietly():
    """scikit-learn's finiteness check first sums X, which overflows (inf − inf: "invalid value")
    for legal data near ±1.8e308 before its exact element-wise check; no warning for that."""
    return np.errstate(over="ignore", invalid="ignore")


@contextlib.contextmanager
def _restored_on_error(estimator):
    """Leave nothing half-written: on an error, put back the attributes the estimator had."""
    saved = dict(estimator.__dict__)
    try:
        yield
    except BaseException:
        estimator.__dict__.clear()
        estimator.__dict__.update(saved)
        raise


class BaseMixture(DensityMixin, BaseEstimator):
    """EM for mixture models. Subclasses provide the initialisation, the fused E-step that
    returns the sufficient statistics, the M-step from them and the scoring."""

    # ------------------------------------------------------------------------- validation
    def _check_params(self):
        """Every constructor parameter, by the subclass's ``_constraints`` table."""
        validate_parameters(self)

    def _check_data(self, X, *, reset, min_samples=1):
        """(validated X, its engine): NumPy float64/float32 (C order) for the CPU, a CuPy array
        (float32/float64 kept) for GPU data or backend="cuda"; foreign array-API arrays come to
        the host through DLPack first (``_arrays.host``)."""
        with _finite_check_quietly():
            X, _, _ = check_estimator_X(self, host(X), reset=reset, ensure_min_samples=min_samples, allow_dask=True)
        return X, engine_for(X)

    def _check_fit_data(self, X, sample_weight, *, reset, min_samples=2):
        """(X, weights or None in the engine's namespace, the engine). ``min_samples=1``: a batch
        for a fitted model (no check of n_samples against n_components)."""
        X, engine = self._check_data(X, reset=reset, min_samples=min_samples)
        with engine.scope(X, self.n_jobs):
            w = engine.check_weights(self, sample_weight, X)
        if min_samples > 1 and engine.n_positive(w, X.shape[0]) < self.n_components:
            raise ValueError(
                "Expected n_samples >= n_components but got "
                f"n_components = {self.n_components}, n_samples = {engine.n_positive(w, X.shape[0])}"
                + ("" if w is None else " (rows with a positive sample_weight)")
            )
        return X, w, engine

    # ------------------------------------------------------------------------------- fit
    def fit(self, X, y=None, sample_weight=None):
        """Estimate the parameters with the EM algorithm; returns ``self``.

        The model is fitted ``n_init`` times and the parameters of the largest lower bound
        (mean log-likelihood) are kept. Each run iterates E- and M-steps until the change of the
        lower bound is below ``tol`` or ``max_iter`` iterations are done (then a
        ``ConvergenceWarning`` is issued). With ``warm_start=True`` a fitted model continues from
        its parameters, with one initialisation only.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights; an integer weight acts as that many copies of the row.
        """
        self._fit(X, sample_weight, want_labels=False)
        return self

    def fit_predict(self, X, y=None, sample_weight=None):
        """Fit as :meth:`fit` does and return the labels of X (equal to ``fit(X).predict(X)``)."""
        labels, space = self._fit(X, sample_weight, want_labels=True)
        return to_caller(labels, space)

    def _fit(self, X, sample_weight, want_labels):
        self._check_params()
        space, dispatch = space_of(X), dispatch_on()
        with _restored_on_error(self):
            X, w, engine = self._check_fit_data(X, sample_weight, reset=True)
            self._check_initial_parameters(X)
            with engine.scope(X, self.n_jobs):  # E-steps on the engine, M-steps on the host
                labels = self._em(engine, engine.compute_array(X), w, space, dispatch, want_labels, X.dtype)
            self._online = None  # partial_fit after fit starts from the fitted parameters
        return labels, space

    def _em(self, engine, X, w, space, dispatch, want_labels, dtype):
        """EM on the engine's X (``engine.compute_array``); the parameters are float64 NumPy arrays
        while it runs and are published (``_publish_parameters``: the data's ``dtype``, and namespace
        under array-API dispatch) at the end. Returns the labels of the final E-step when asked."""
        do_init = not (self.warm_start and hasattr(self, "converged_"))
        if not do_init:
            self._parameters_as_float64()
        n_init = self.n_init if do_init else 1
        max_lower_bound = -np.inf
        best_lower_bounds = []
        best_params = None
        best_n_iter = 0
        converged_best = False
        random_state = check_random_state(self.random_state)
        self._prepare_fit(engine, X, w)

        for init in range(n_init):
            self._log_init_begin(init)
            if do_init:
                self._initialize_parameters(engine, X, w, random_state)
            lower_bound = -np.inf if do_init else self.lower_bound_
            current_lower_bounds = []

            if self.max_iter == 0:
                best_params = self._get_parameters()
                best_n_iter = 0
            else:
                converged = False
                for n_iter in range(1, self.max_iter + 1):
                    prev_lower_bound = lower_bound
                    lower_bound, stats = self._e_step(engine, X, w)
                    self._m_step(stats)
                    current_lower_bounds.append(lower_bound)
                    change = lower_bound - prev_lower_bound
                    self._log_iter_end(n_iter, change)
                    if abs(change) < self.tol:
                        converged = True
                        break
                self._log_init_end(lower_bound, converged)
                if lower_bound > max_lower_bound or max_lower_bound == -np.inf:
                    max_lower_bound = lower_bound
                    best_params = self._get_parameters()
                    best_n_iter = n_iter
                    best_lower_bounds = current_lower_bounds
                    converged_best = converged

        self.converged_ = converged_best
        # As scikit-learn: no warning for max_iter=0, which asks for the initial parameters.
        if not self.converged_ and self.max_iter > 0:
            warnings.warn(
                "Best performing initialization did not converge. Try different init parameters, "
                "or increase max_iter, tol, or check for degenerate data.",
                ConvergenceWarning,
            )
        self._set_parameters(best_params)
        self._publish_parameters(space, dtype, dispatch)
        self._forget_fit_state()
        self.n_iter_ = best_n_iter
        self.lower_bound_ = max_lower_bound
        self.lower_bounds_ = best_lower_bounds
        if not want_labels:
            return None
        # A final E-step (from the published parameters, as predict uses them), so that
        # fit(X).predict(X) == fit_predict(X) for any max_iter and tol.
        return self._predict(engine, X)

    # ------------------------------------------------------------------------ partial_fit
    def partial_fit(self, X, y=None, sample_weight=None):
        """One step of online EM on the mini-batch ``X``; returns ``self``.

        Online EM (Cappé & Moulines, 2009) keeps running averages of the normalised sufficient
        statistics s = (Σ w r, Σ w r x, Σ w r x xᵀ) / Σ w. The t-th call (t = 0, 1, …) runs the
        E-step on its batch with the current parameters, giving the batch's statistics ŝ_t, and
        moves the running ones by the step size η_t::

            s ← (1 − η_t) s + η_t ŝ_t,     η_0 = 1,   η_t = (t + learning_offset)^(−learning_decay)

        then sets the parameters from s (the M-step, with ``reg_covar``). With
        ``learning_decay`` in (0.5, 1] the steps satisfy Σ η_t = ∞, Σ η_t² < ∞ and the
        parameters converge to a stationary point of the expected log-likelihood;
        ``learning_decay=1, learning_offset=1`` average the batches' statistics with equal
        weights. The statistics are stored about a fixed centre (the first batch's mean), so
        that data far from the origin loses no precision.

        The first call on an unfitted model initialises the parameters on its batch as ``fit``
        does (``init_params``, ``weights_init``, …; the batch needs at least ``n_components``
        rows). After :meth:`fit`, the fitted parameters act as the running statistics at t = 1.
        ``lower_bound_`` is the mean log-likelihood of the last batch before its step,
        ``n_steps_`` counts the steps; ``converged_`` is False (online EM has no stopping rule).
        """
        self._check_params()
        with _restored_on_error(self):
            self._partial_fit(X, sample_weight)
        return self

    def _partial_fit(self, X, sample_weight):
        fitted = hasattr(self, "means_")
        space, dispatch = space_of(X), dispatch_on()
        X, w, engine = self._check_fit_data(X, sample_weight, reset=not fitted, min_samples=1 if fitted else 2)
        dtype = X.dtype
        if fitted:
            self._parameters_as_float64()
        with engine.scope(X, self.n_jobs):  # the E-step on the engine, the rest on the host
            X = engine.compute_array(X)
            if not fitted:
                self._check_initial_parameters(X)
                self._prepare_fit(engine, X, w)
                self._initialize_parameters(engine, X, w, check_random_state(self.random_state))
                state, t = None, 0
            elif getattr(self, "_online", None) is None:
                state, t = self._online_state_from_parameters(), 1
            else:
                state, t = self._online, self.n_steps_
            eta = 1.0 if state is None else float((t + self.learning_offset) ** (-self.learning_decay))
            lower_bound, self._online = self._online_step(engine, X, w, state, eta)
        self._publish_parameters(space, dtype, dispatch)
        self._forget_fit_state()
        self.n_steps_ = t + 1
        self.n_iter_ = self.n_steps_
        self.converged_ = False
        self.lower_bound_ = lower_bound
        self.lower_bounds_ = [lower_bound]

    # ----------------------------------------------------------------------- prediction
    @rows_accept_dask
    def score_samples(self, X):
        """Log-likelihood of each row of X under the mixture: (n_samples,), float32 for float32
        input (computed in float64), else float64."""
        check_is_fitted(self, "means_")
        space = space_of(X)
        X, engine = self._check_data(X, reset=False)
        with engine.scope(X, self.n_jobs):
            out = self._score_samples(engine, engine.compute_array(X))
            return to_caller(out.astype(X.dtype, copy=False), space)

    def score(self, X, y=None, sample_weight=None):
        """Mean log-likelihood per sample of X (weighted by ``sample_weight`` when given), as
        scikit-learn's mixtures define it (a mean, not the sum that ``KernelDensity.score`` is)."""
        total, n = self._total_log_likelihood(X, sample_weight)
        return total / n

    @total_log_likelihood_accepts_dask
    def _total_log_likelihood(self, X, sample_weight):
        """(Σ w log p(x), Σ w) over the rows of X (w = 1 without weights)."""
        check_is_fitted(self, "means_")
        X, engine = self._check_data(X, reset=False)
        with engine.scope(X, self.n_jobs):
            w = engine.check_weights(self, sample_weight, X)
            log_p = self._score_samples(engine, engine.compute_array(X))
            if w is None:
                return float(log_p.sum()), float(X.shape[0])
            return float((w * log_p).sum()), float(w.sum())

    @rows_accept_dask
    def predict(self, X):
        """The most probable component of each row of X: (n_samples,) int64."""
        check_is_fitted(self, "means_")
        space = space_of(X)
        X, engine = self._check_data(X, reset=False)
        with engine.scope(X, self.n_jobs):
            return to_caller(self._predict(engine, engine.compute_array(X)), space)

    @rows_accept_dask
    def predict_proba(self, X):
        """Posterior probability of each component for each row: (n_samples, n_components), in X's
        float dtype. A row so far from every component that all its log-densities underflow gets
        probability 1 for the component of smallest Mahalanobis distance (``_posterior``)."""
        check_is_fitted(self, "means_")
        space = space_of(X)
        X, engine = self._check_data(X, reset=False)
        with engine.scope(X, self.n_jobs):
            proba = self._predict_proba(engine, engine.compute_array(X))
            return to_caller(proba.astype(X.dtype, copy=False), space)

    # --------------------------------------------------------------------------- logging
    def _log_init_begin(self, n_init):
        if self.verbose:
            logger.info("Initialization %d", n_init)
            self._init_prev_time = self._iter_prev_time = perf_counter()

    def _log_iter_end(self, n_iter, change):
        if self.verbose and n_iter % self.verbose_interval == 0:
            if self.verbose == 1:
                logger.info("  Iteration %d", n_iter)
            else:
                now = perf_counter()
                logger.info("  Iteration %d\t time lapse %.5fs\t ll change %.5f", n_iter,
                            now - self._iter_prev_time, change)
                self._iter_prev_time = now

    def _log_init_end(self, lower_bound, converged):
        if not self.verbose:
            return
        msg = "converged" if converged else "did not converge"
        if self.verbose == 1:
            logger.info("Initialization %s.", msg)
        else:
            logger.info("Initialization %s. time lapse %.5fs\t lower bound %.5f.", msg,
                        perf_counter() - self._init_prev_time, lower_bound)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.array_api_support = True  # every covariance type and init_params (_arrays.py)
        return tags
