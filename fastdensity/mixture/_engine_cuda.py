"""The CUDA engine of ``GaussianMixture``: the fused kernels of ``_mixture_cuda`` (``kernels/mixture.cu``)
on CuPy data, and the initialisation on the device. Only (k, d, d)-sized statistics and (d,)
centres come to the host, where the M-step runs. See ``_engine.py`` for the interface.

Not yet run on a GPU: tested in the host emulation of ``tests/cuda_host_emulation.py``.
"""

from __future__ import annotations

import importlib
import sys

import numpy as np

from .._backend import OPS, get_op
from .._backend._cuda import require_cupy
from .._backend._validation import check_sample_weight
from ._gaussian_params import Stats
from ._posterior import clean_log_prob


def _cuda_module():
    return importlib.import_module("fastdensity.mixture._mixture_cuda")


def _cuda_op(name):
    """The CUDA implementation of a mixture op (through the dispatch table where it lists it)."""
    if "cuda" in OPS.get(name, {}):
        return get_op(name, "cuda")
    return getattr(_cuda_module(), name)


class CUDAEngine:
    name = "cuda"

    @property
    def xp(self):
        return sys.modules["cupy"]

    def scope(self, X, n_jobs):
        return X.device

    def compute_array(self, X):
        return X  # float32 stays float32: the float kernels sum in float64

    def check_weights(self, est, sample_weight, X):
        if sample_weight is None:
            return None
        from .._backend._convert import to_device_cupy

        return check_sample_weight(to_device_cupy(sample_weight), X.shape[0], xp=require_cupy())

    def n_positive(self, w, n):
        return n if w is None else int((w > 0).sum())

    def centre(self, X, w):
        """Reduced on the device; the (d,) centre and a scalar come to the host."""
        total = float(X.shape[0] if w is None else w.sum())
        centre = X.mean(axis=0, dtype=np.float64) if w is None else (w @ X.astype(np.float64)) / total
        return self.xp.asnumpy(centre), total

    def initial_stats(self, est, X, w, random_state):
        resp = self._initial_resp(est, X, w, random_state)
        return Stats(*_cuda_module().stats_from_resp(X, w, resp, est.covariance_type, est._shift),
                     np.asarray(est._shift, dtype=np.float64))

    def _initial_resp(self, est, X, w, random_state):
        """The initial responsibilities (n, k) on the device. The same draws as on the CPU for
        "random", "random_from_data" (whose weighted draw copies the weights to the host) and
        "k-means++"; "kmeans" runs Lloyd's algorithm on the device (``_mixture_cuda``)."""
        cp = self.xp
        n, k = X.shape[0], est.n_components
        resp = cp.zeros((n, k))
        if est.init_params == "kmeans":
            labels = _cuda_module().kmeans_labels(X, k, w, random_state)
            resp[cp.arange(n), labels] = 1.0
            return resp
        if est.init_params == "random":
            resp = cp.asarray(random_state.uniform(size=(n, k)))
            return resp / resp.sum(axis=1)[:, None]
        if est.init_params == "random_from_data":
            p = None if w is None else cp.asnumpy(w / w.sum())
            indices = random_state.choice(n, size=k, replace=False, p=p)
        else:
            indices = _cuda_module().kmeans_plusplus(X, k, w, random_state)[1]
        resp[cp.asarray(indices), cp.arange(k)] = 1.0
        return resp

    def e_step(self, X, w, means, prec_chol, log_weights, cov_type, shift):
        lpn, R, Sx, Sxx = _cuda_op("gmm_estep")(X, w, means, prec_chol, log_weights, cov_type, shift=shift)
        total = float(lpn.sum()) if w is None else float((w * lpn).sum())  # reduced on the device
        return (total,) + tuple(self.xp.asnumpy(a) for a in (R, Sx, Sxx))

    def weighted_log_prob(self, X, means, prec_chol, cov_type, log_weights):
        return _cuda_op("gmm_log_prob")(X, means, prec_chol, cov_type, log_weights)

    def log_prob_norm(self, X, means, prec_chol, log_weights, cov_type):
        return clean_log_prob(_cuda_op("gmm_log_prob_norm")(X, means, prec_chol, log_weights, cov_type), self.xp)


CUDA_ENGINE = CUDAEngine()
