"""The CUDA KDE engine: the sums of ``_kde_cuda.py`` and the device-side rules, whitening and
sampling of ``_kde_device.py`` on CuPy arrays. CuPy is imported only when this engine runs."""

from __future__ import annotations

import sys

import numpy as np

from .._backend import get_op
from .._backend._convert import from_device_cupy
from .._backend._cuda import require_cupy
from .._backend._validation import check_sample_weight


class CUDAEngine:
    name = "cuda"

    @property
    def xp(self):
        return sys.modules["cupy"]

    def scope(self, X, n_jobs):
        return X.device

    def check_metric(self, est, metric, fitting):
        if metric == "euclidean":
            return
        if fitting:
            raise ValueError(
                f"metric={est.metric!r} runs on the CPU engine only; the GPU engine is euclidean. "
                "Pass NumPy data (or torch CPU tensors) with backend='cpu' or 'auto'"
            )
        raise ValueError(
            f"metric={est.metric!r} runs on the CPU engine only; score NumPy data (or torch "
            "CPU tensors), or use the euclidean metric on the GPU"
        )

    def fit_bandwidth(self, est, X, sample_weight):
        """The data stay on the device: the rules reduce them there to a (d, d) covariance and
        "cv" to (n, g) leave-one-out sums; "isj" and "sj" (1-D only) bin the column on the host and
        "plugin" and the cross-validated matrices ("lscv", "mlcv", …) sum their pairs there."""
        from .._backend._convert import to_device_cupy
        from . import _kde_device

        n, d = X.shape
        weights = (None if sample_weight is None
                   else check_sample_weight(to_device_cupy(sample_weight), n, xp=require_cupy()))
        bw = est.bandwidth
        if isinstance(bw, str) and bw in ("scott", "silverman"):
            H = _kde_device.rule_bandwidth_matrix(X, weights, bw, est.kernel)
            bandwidth_used = float(np.sqrt(H[0, 0])) if d == 1 else H
        elif isinstance(bw, str) and bw == "cv":
            H = _kde_device.cv_bandwidth_matrix(X, weights, est.kernel)
            bandwidth_used = float(np.sqrt(H[0, 0])) if d == 1 else H
        elif isinstance(bw, str) and bw in ("isj", "sj", "plugin", "lscv", "lscv_diag", "mlcv", "mlcv_diag"):
            column = X.get().astype(np.float64) if d == 1 or bw not in ("isj", "sj") else np.empty((0, d))
            bandwidth_used, H = est._bandwidth_matrix(column, None if weights is None else weights.get())
        else:  # numbers, arrays and invalid values: only the number of features is read
            bandwidth_used, H = est._bandwidth_matrix(np.empty((0, d)), None)
        pilot_weights = self.xp.ones(n) if weights is None else weights
        return weights, bandwidth_used, H, pilot_weights, None

    def state(self, est, dtype, device):
        """The CPU engine's state as CuPy arrays on GPU ``device`` (an id)."""
        from . import _kde_device

        cache = est._cache()
        key = (np.dtype(dtype), device)
        if key not in cache:
            cache[key] = _kde_device.engine_state(est, key[0], device)
        return cache[key]

    def log_density(self, est, X):
        """Log densities of a CuPy ``X`` (m, d) on its device, float64 CuPy result."""
        from . import _kde_device

        dtype = np.float32 if X.dtype == np.float32 and est.training_data_.dtype == np.float32 else np.float64
        chol, train_t, log_w, inv_scales, log_norm = self.state(est, dtype, X.device.id)
        centre = self.xp.asarray(est._centre())  # see KernelDensity._centre
        queries = _kde_device.whiten(chol, X.astype(np.float64) - centre).astype(dtype)
        kde_logsum = get_op("kde_logsum", "cuda")
        return kde_logsum(queries, None, log_w, est.kernel, inv_scales, train_t=train_t) + log_norm

    def sample(self, est, n_samples, seed):
        """Draws on the training data's device, with CuPy's generator."""
        from . import _kde_device
        from ._weights import equal_weights

        train = est.training_data_
        with train.device:
            weights = None if equal_weights(est.sample_weight_) else est.sample_weight_
            return _kde_device.sample(train, weights, est.adaptive_factors_, est._bandwidth_cholesky(),
                                      est.kernel, n_samples, seed)

    def to_caller(self, result, kind):
        return from_device_cupy(result, kind)


CUDA_ENGINE = CUDAEngine()
