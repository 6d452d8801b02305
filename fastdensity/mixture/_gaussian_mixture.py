"""``GaussianMixture``: scikit-learn's estimator on a fused E-step, with sample weights, online EM
and accurate precision factors. The parameter mathematics (M-step, precision factors, checks) is in
``_gaussian_params``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from scipy.linalg import solve_triangular
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from .._backend._dispatch import BACKENDS
from .._backend._threads import resolve_n_jobs
from .._backend._validation import Boolean, Check, Integer, Options, Real, CheckedLater, check_parameter
from ._arrays import host64, publish, space_of, to_caller
from ._base import INIT_PARAMS, BaseMixture, check_verbose
from ._engine import engine_for
from ._gaussian_params import (COVARIANCE_TYPES, Stats, _check_means, _check_precisions, _check_weights,
                               compute_precision_cholesky, covariances_from_precision_cholesky,
                               estimate_gaussian_parameters, overflow_error, precision_cholesky_from_precisions,
                               precisions_from_cholesky)
from ._posterior import labels_from_log_prob, proba_from_log_prob

_PARAMETERS = ("weights_", "means_", "covariances_", "precisions_cholesky_", "precisions_")
_FIT_STATE = ("_shift", "_eps_scale", "_weight_total", "_weights_init", "_means_init", "_precisions_init")


class OnlineState(NamedTuple):
    """Running normalised statistics of online EM, about the fixed point ``centre``."""

    centre: np.ndarray
    s0: np.ndarray
    s1: np.ndarray
    s2: np.ndarray


# ----------------------------------------------------------------------------- estimator
class GaussianMixture(BaseMixture):
    """Gaussian mixture fitted by EM; a superset of scikit-learn's ``GaussianMixture``.

    Same parameters, attributes and methods as scikit-learn's estimator, computed by a fused,
    parallel E-step: one pass over the data per iteration computes the log-densities from the
    precision factors, the log-sum-exp normaliser and the sufficient statistics of the M-step,
    with no (n, k) or (n, k, d) temporaries; results do not depend on the number of threads.
    Fitted from the same initial parameters, it reaches scikit-learn's parameters and
    log-likelihood to about 1e-12 relative (float64, well-conditioned data).

    How it differs from scikit-learn:

    * ``fit(X, sample_weight=...)``: weighted EM (an integer weight is that many copies of the
      row; scaling all weights changes nothing). scikit-learn has no sample weights (#15647).
    * ``partial_fit``: online (mini-batch) EM with the step sizes
      η_t = (t + learning_offset)^(−learning_decay) (scikit-learn #8714; see :meth:`partial_fit`).
    * Covariances are computed from statistics about the current means (no cancellation when
      |μ| ≫ σ, where scikit-learn's diag, spherical and tied formulas lose digits), and the
      precision factors in double-double arithmetic (accurate log-densities for ill-conditioned
      covariances, scikit-learn #29989).
    * dtype and arrays as scikit-learn ≥ 1.8: float32 data give float32 fitted attributes and
      float32 ``score_samples`` / ``predict_proba``, computed in float64 on the CPU (on the GPU
      the kernels run in float32 with float64 sums). torch tensors, CuPy arrays and other
      array-API arrays (``array_api_strict``) are accepted for every covariance type and every
      ``init_params`` (scikit-learn's array-API path allows only "random" and
      "random_from_data"). With ``sklearn.set_config(array_api_dispatch=True)`` the fitted
      attributes are arrays of the training data's namespace on its device; without it they are
      NumPy arrays, as scikit-learn gives for torch input. The results of ``score_samples``,
      ``predict``, ``predict_proba``, ``fit_predict`` and ``sample`` come back in the caller's
      array type and device either way (``sample``: in the namespace of the fitted attributes).
    * Extreme but legal input: a query so far from every component that its squared Mahalanobis
      distances overflow (|x| beyond about 1e154 σ) gets ``score_samples`` −inf, no warning, and
      ``predict`` / ``predict_proba`` give it the component of smallest Mahalanobis distance
      (computed with scaling, probability 1; ties to rounding go to the larger log weight plus
      log-determinant, then the lower index) instead of NaN. A fit whose statistics overflow
      float64 (data spread beyond about 1e154) raises a ``ValueError`` that says to scale the
      data; tiny data (1e-300) fit to finite parameters (the covariances are ``reg_covar``).
    * ``sample(n_samples, random_state=None)`` accepts its own random state; with None it uses
      ``self.random_state`` as scikit-learn does. Labels come grouped by component.
    * With ``precisions_init`` and ``max_iter=0``, ``covariances_`` is set (from the precisions).
    * Progress messages (``verbose``) go to the logger ``"fastdensity.mixture"``, not stdout.
    * A failed Cholesky factorisation names the components and the remedies.

    Parameters
    ----------
    n_components : int, default=1
    covariance_type : {"full", "tied", "diag", "spherical"}, default="full"
    tol : float, default=1e-3
        EM stops when the lower bound (mean log-likelihood) changes by less than ``tol``.
    reg_covar : float, default=1e-6
        Added to the diagonal of every covariance.
    max_iter : int, default=100
    n_init : int, default=1
    init_params : {"kmeans", "k-means++", "random", "random_from_data"}, default="kmeans"
        As scikit-learn, with the same draws from ``random_state``. "kmeans" is fastdensity's own
        k-means (``_kmeans_cpu``): k-means++ seeds from the same draws as scikit-learn's
        ``KMeans(n_init=1)``, then Lloyd steps on the parallel engine with ``KMeans``'s stopping
        rule (tol=1e-4, max_iter=300) and its relocation of empty clusters; its distances are
        computed directly, not as scikit-learn's ‖x‖² − 2x·c + ‖c‖², so a seed gives similar, not
        always identical, labels (identical on well-separated clusters). "k-means++" is
        fastdensity's parallel seeding, which picks the same rows as
        ``sklearn.cluster.kmeans_plusplus``; "random" and "random_from_data" draw as scikit-learn.
        The initial statistics of every method are one or two passes of the fused engine. Sample
        weights are used by every method.
    weights_init, means_init, precisions_init : array-like, default=None
    random_state : int, RandomState instance or None, default=None
    warm_start : bool, default=False
    verbose : int, default=0
    verbose_interval : int, default=10
    learning_decay : float in (0.5, 1], default=0.6
        κ of the online-EM step sizes (``partial_fit`` only).
    learning_offset : float >= 0, default=1.0
        τ₀ of the online-EM step sizes (``partial_fit`` only).
    backend : {"auto", "cpu", "cuda"}, default="auto"
        Where to compute: "auto" follows the data (CuPy arrays and torch CUDA tensors on their
        GPU, host data on the CPU), "cuda" also runs host data on the current GPU; results come
        back in the caller's type. On the GPU, ``fit`` runs every E-step as one fused kernel pass
        (``fastdensity.mixture._mixture_cuda``; float32 data stay float32 there, with float64
        sums) and the M-steps on the host from the (k, d, d)-sized statistics; the fitted
        parameters are NumPy arrays (CuPy / torch CUDA under array-API dispatch). Its
        initialisation runs on the device: "random", "random_from_data" and "k-means++" draw as on
        the CPU, "kmeans" is Lloyd's algorithm on the device from k-means++ seeds (another
        implementation than the CPU's: a seed gives a similar, not always the same, start).
        ``partial_fit`` of GPU data runs each batch's E-step on the device too.
    n_jobs : int or None, default=None
        Threads for the engine (None or -1: all cores).

    Attributes
    ----------
    weights_ : (n_components,)
        Fitted attributes have the training data's float dtype (and, under array-API dispatch,
        its namespace and device).
    means_ : (n_components, n_features)
    covariances_, precisions_, precisions_cholesky_ :
        (n_components, n_features, n_features) full, (n_features, n_features) tied,
        (n_components, n_features) diag, (n_components,) spherical. ``precisions_cholesky_``
        is upper triangular, U Uᵀ = precision.
    converged_ : bool
    n_iter_ : int
    lower_bound_ : float
        Mean (weighted) log-likelihood of the training data at the best run's last E-step.
    lower_bounds_ : list of float
    n_steps_ : int
        Number of ``partial_fit`` steps (only after ``partial_fit``).
    n_features_in_ : int
    feature_names_in_ : ndarray of str
    """

    def __init__(
        self,
        n_components=1,
        *,
        covariance_type="full",
        tol=1e-3,
        reg_covar=1e-6,
        max_iter=100,
        n_init=1,
        init_params="kmeans",
        weights_init=None,
        means_init=None,
        precisions_init=None,
        random_state=None,
        warm_start=False,
        verbose=0,
        verbose_interval=10,
        learning_decay=0.6,
        learning_offset=1.0,
        backend="auto",
        n_jobs=None,
    ):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.learning_decay = learning_decay
        self.learning_offset = learning_offset
        self.backend = backend
        self.n_jobs = n_jobs

    # ------------------------------------------------------------------------- validation
    _constraints = {
        "n_components": Integer(1),
        "covariance_type": Options(COVARIANCE_TYPES),
        "tol": Real(0),
        "reg_covar": Real(0),
        "max_iter": Integer(0),
        "n_init": Integer(1),
        "init_params": Options(INIT_PARAMS),
        "weights_init": CheckedLater("_check_initial_parameters"),
        "means_init": CheckedLater("_check_initial_parameters"),
        "precisions_init": CheckedLater("_check_initial_parameters"),
        "random_state": Check(check_random_state),
        "warm_start": Boolean(),
        "verbose": Check(check_verbose),
        "verbose_interval": Integer(1),
        "learning_decay": Real(0.5, 1.0, low_open=True),
        "learning_offset": Real(0),
        "backend": Options(BACKENDS),
        "n_jobs": Check(resolve_n_jobs),
    }

    def _check_initial_parameters(self, X):
        """Validated copies of weights_init, means_init and precisions_init (the parameters
        themselves are left as given)."""
        k, d = self.n_components, X.shape[1]
        self._weights_init = None if self.weights_init is None else _check_weights(host64(self.weights_init), k)
        self._means_init = None if self.means_init is None else _check_means(host64(self.means_init), k, d)
        self._precisions_init = (
            None if self.precisions_init is None
            else _check_precisions(host64(self.precisions_init), self.covariance_type, k, d)
        )

    def _prepare_fit(self, engine, X, w):
        """Per-fit constants: the centre of the tied statistics and the mean sample weight."""
        self._shift, self._weight_total = engine.centre(X, w)
        self._eps_scale = float(self._weight_total / X.shape[0])

    # --------------------------------------------------------------------- initialisation
    def _initialize_parameters(self, engine, X, w, random_state):
        given = (self._weights_init, self._means_init, self._precisions_init)
        stats = None if all(p is not None for p in given) else engine.initial_stats(self, X, w, random_state)
        self._initialize(X, w, stats)

    def _initialize(self, X, w, stats):
        """The initial parameters from the initial statistics (None: all three inits are given)."""
        weights = means = covariances = None
        if stats is not None:
            nk, means, covariances = estimate_gaussian_parameters(stats, self.reg_covar, self.covariance_type,
                                                                  self._eps_scale)
            weights = nk / (X.shape[0] * self._eps_scale)  # / Σw, as scikit-learn divides by n
        self.weights_ = weights if self._weights_init is None else self._weights_init.copy()
        self.means_ = means if self._means_init is None else self._means_init.copy()
        if self._precisions_init is None:
            self.covariances_ = covariances
            self.precisions_cholesky_ = compute_precision_cholesky(covariances, self.covariance_type, self.reg_covar)
        else:
            self.precisions_cholesky_ = precision_cholesky_from_precisions(self._precisions_init, self.covariance_type)
            self.covariances_ = covariances_from_precision_cholesky(self.precisions_cholesky_, self.covariance_type)

    # ------------------------------------------------------------------------------- EM
    def _e_step(self, engine, X, w):
        """The fused E-step on the engine: (mean log-likelihood, the M-step's statistics)."""
        total, R, Sx, Sxx = engine.e_step(X, w, self.means_, self.precisions_cholesky_, np.log(self.weights_),
                                          self.covariance_type, self._shift)
        lower_bound = total / self._weight_total
        if not math.isfinite(lower_bound):  # a training row's squared distances overflowed
            with np.errstate(over="ignore", invalid="ignore"):
                spread = np.max(np.maximum(host64(X.max(axis=0)) - self._shift, self._shift - host64(X.min(axis=0))))
            raise overflow_error(spread)
        return lower_bound, Stats(R, Sx, Sxx, self.means_, self._shift)

    def _m_step(self, stats, eps_scale=None):
        nk, means, covariances = estimate_gaussian_parameters(
            stats, self.reg_covar, self.covariance_type, self._eps_scale if eps_scale is None else eps_scale
        )
        self.weights_ = nk / np.sum(nk)
        self.means_ = means
        self.covariances_ = covariances
        self.precisions_cholesky_ = compute_precision_cholesky(covariances, self.covariance_type, self.reg_covar)

    def _get_parameters(self):
        return (self.weights_, self.means_, self.covariances_, self.precisions_cholesky_)

    def _set_parameters(self, params):
        self.weights_, self.means_, self.covariances_, self.precisions_cholesky_ = params
        self.precisions_ = precisions_from_cholesky(self.precisions_cholesky_, self.covariance_type)

    def _parameters_as_float64(self):
        """The fitted attributes as float64 NumPy arrays: EM and online EM run on these."""
        for name in _PARAMETERS:
            if getattr(self, name, None) is not None:
                setattr(self, name, host64(getattr(self, name)))

    def _publish_parameters(self, space, dtype, dispatch):
        """The fitted attributes as scikit-learn ≥ 1.8 gives them: in the training data's float dtype
        and, under array-API dispatch, in its namespace and on its device (``_arrays.publish``)."""
        for name in _PARAMETERS:
            if getattr(self, name, None) is not None:
                setattr(self, name, publish(getattr(self, name), space, dtype, dispatch))

    def _forget_fit_state(self):
        """Drop the per-fit arrays (the centre of the tied statistics, the validated initial
        parameters): after fit, every array attribute is a fitted parameter in the caller's
        namespace (scikit-learn's array-API check looks at all of them)."""
        for name in _FIT_STATE:
            self.__dict__.pop(name, None)

    def _engine_parameters(self):
        """(weights, means, precision factors) as float64 NumPy arrays for the engines, from the
        fitted attributes whatever their namespace, device or dtype."""
        return host64(self.weights_), host64(self.means_), host64(self.precisions_cholesky_)

    # ---------------------------------------------------------------------------- online
    def _online_state_from_parameters(self):
        """Running statistics equivalent to the fitted parameters (about the mixture mean)."""
        wts, means, cov, ct = self.weights_, self.means_, self.covariances_, self.covariance_type
        centre = wts @ means
        a = means - centre
        d = means.shape[1]
        if ct == "full":
            s2 = wts[:, None, None] * (cov - self.reg_covar * np.eye(d) + a[:, :, None] * a[:, None, :])
        elif ct == "tied":
            s2 = cov - self.reg_covar * np.eye(d) + (wts[:, None] * a).T @ a
        elif ct == "diag":
            s2 = wts[:, None] * (cov - self.reg_covar + a * a)
        else:
            s2 = wts[:, None] * ((cov - self.reg_covar)[:, None] + a * a)
        return OnlineState(centre, wts.copy(), wts[:, None] * a, s2)

    def _online_step(self, engine, X, w, state, eta):
        total = float(X.shape[0] if w is None else w.sum())
        centre = engine.centre(X, w)[0] if state is None else state.centre
        ll_total, R, Sx, Sxx = engine.e_step(X, w, self.means_, self.precisions_cholesky_, np.log(self.weights_),
                                             self.covariance_type, centre)
        lower_bound = ll_total / total
        # The batch's statistics about the fixed centre, per unit weight.
        a = self.means_ - centre
        s1 = Sx + R[:, None] * a
        if self.covariance_type == "full":
            cross = Sx[:, :, None] * a[:, None, :]
            s2 = Sxx + cross + cross.transpose(0, 2, 1) + R[:, None, None] * a[:, :, None] * a[:, None, :]
        elif self.covariance_type == "tied":
            s2 = Sxx
        else:
            s2 = Sxx + 2.0 * Sx * a + R[:, None] * a * a
        batch = OnlineState(centre, R / total, s1 / total, s2 / total)
        if state is None:
            new = batch
        else:
            new = OnlineState(centre, *[(1.0 - eta) * old + eta * cur for old, cur in zip(state[1:], batch[1:])])
        k = self.n_components
        stats = Stats(new.s0, new.s1, new.s2, np.broadcast_to(centre, (k, centre.shape[0])), centre)
        self._m_step(stats, eps_scale=1.0 / X.shape[0])
        self.precisions_ = precisions_from_cholesky(self.precisions_cholesky_, self.covariance_type)
        return lower_bound, new

    # ------------------------------------------------------------------------ prediction
    def _log_weights(self):
        """(means, precision factors, log weights) as float64 NumPy arrays for the engines."""
        weights, means, prec_chol = self._engine_parameters()
        with np.errstate(divide="ignore"):
            return means, prec_chol, np.log(weights)

    def _weighted_log_prob(self, engine, X):
        """log π_c + log N(x | μ_c, Σ_c): (n, k) float64 in the engine's namespace."""
        means, prec_chol, log_weights = self._log_weights()
        return engine.weighted_log_prob(X, means, prec_chol, self.covariance_type, log_weights)

    def _estimate_weighted_log_prob(self, X):
        """scikit-learn's private method: :meth:`_weighted_log_prob` of validated X."""
        return self._weighted_log_prob(engine_for(X), X)

    def _score_samples(self, engine, X):
        means, prec_chol, log_weights = self._log_weights()
        return engine.log_prob_norm(X, means, prec_chol, log_weights, self.covariance_type)

    def _posterior_args(self):
        means, prec_chol, log_weights = self._log_weights()
        return means, prec_chol, log_weights, self.covariance_type

    def _predict(self, engine, X):
        return labels_from_log_prob(self._weighted_log_prob(engine, X), X, *self._posterior_args(), xp=engine.xp)

    def _predict_proba(self, engine, X):
        return proba_from_log_prob(self._weighted_log_prob(engine, X), X, *self._posterior_args(), xp=engine.xp)

    # -------------------------------------------------------------------------- sampling
    def sample(self, n_samples=1, random_state=None):
        """Draw ``n_samples`` points: (X (n_samples, n_features) float64, labels (n_samples,) int64).

        The number of points per component is multinomial with the mixture weights; the points
        come grouped by component (as in scikit-learn). ``random_state`` None uses
        ``self.random_state`` (scikit-learn's behaviour: an int gives the same draw each call).
        """
        check_is_fitted(self, "means_")
        n_samples = check_parameter("n_samples", n_samples, Integer(1))
        rng = check_random_state(self.random_state if random_state is None else random_state)
        weights, means, prec_chol = self._engine_parameters()
        counts = rng.multinomial(int(n_samples), weights / weights.sum())
        k, d = means.shape
        parts = []
        for c in range(k):
            z = rng.standard_normal(size=(int(counts[c]), d))
            ct = self.covariance_type
            if ct in ("full", "tied"):
                U = prec_chol[c] if ct == "full" else prec_chol
                # x = μ + U⁻ᵀ z has covariance U⁻ᵀ U⁻¹ = (U Uᵀ)⁻¹
                step = solve_triangular(U, z.T, lower=False, trans="T").T
            else:  # diag (per-feature) or spherical (scalar) precision factors
                step = z / prec_chol[c]
            parts.append(means[c] + step)
        X = np.vstack(parts) if parts else np.empty((0, d))
        labels = np.repeat(np.arange(k, dtype=np.int64), counts)
        space = space_of(self.means_)  # the namespace and device of the fitted parameters
        return to_caller(X, space), to_caller(labels, space)

    # ------------------------------------------------------------------ model selection
    def _n_parameters(self):
        """Number of free parameters of the model."""
        k, d = self.means_.shape
        if self.covariance_type == "full":
            cov_params = k * d * (d + 1) / 2.0
        elif self.covariance_type == "diag":
            cov_params = k * d
        elif self.covariance_type == "tied":
            cov_params = d * (d + 1) / 2.0
        else:
            cov_params = k
        return int(cov_params + d * k + k - 1)

    def bic(self, X, sample_weight=None):
        """Bayesian information criterion on X: −2 log L + p log n (lower is better); with
        ``sample_weight``, log L is weighted and n = Σ w."""
        log_l, n = self._total_log_likelihood(X, sample_weight)
        return -2.0 * log_l + self._n_parameters() * math.log(n)

    def aic(self, X, sample_weight=None):
        """Akaike information criterion on X: −2 log L + 2 p (lower is better)."""
        log_l, _ = self._total_log_likelihood(X, sample_weight)
        return -2.0 * log_l + 2.0 * self._n_parameters()


__all__ = ["GaussianMixture"]
