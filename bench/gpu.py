"""Check and time fastdensity's CUDA kernels against the CPU engine and torch on the same card.

    python bench/gpu.py [--quick] [--size N] [--out FILE]

For each kernel: correctness against the CPU engine (float64) on a subset of fresh random
queries, then the time of the CUDA launcher measured with CUDA events (warm-up runs, the median of
many runs, sizes that fill the chip), next to torch references on the same GPU in the same run —

* KDE: chunked ``torch.cdist`` + ``logsumexp`` (pair evaluations per second),
* kNN: ``torch.cdist`` + ``topk`` (pair evaluations per second),
* EM: a vectorised torch E-step with the same sufficient statistics (time per iteration),

and the CPU engine on this machine. Each section is guarded: a launcher that is missing or fails
is reported in the table, not a crash. The device name and the date head the output, so that it
can be committed under ``bench/results/``. Exits with a message (status 2) without CuPy or a GPU.

Targets (H100, float32; floors in kernels/*.cu): Gaussian KDE at d ≤ 16 ≥ 2e12 pairs/s and ≥ 10×
the torch reference; kNN ≥ 3× torch; EM ≥ 5× the torch EM.
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import statistics
import sys
import time
import traceback
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _require_gpu():
    try:
        from fastdensity._backend._cuda import require_cupy

        return require_cupy("bench/gpu.py")
    except ImportError as exc:
        sys.stderr.write(f"bench/gpu.py needs an NVIDIA GPU with CuPy: {exc}\n")
        raise SystemExit(2) from None


class Report:
    """Lines to stdout and, with --out, to a file written atomically at the end."""

    def __init__(self):
        self.lines = []

    def __call__(self, text=""):
        self.lines.append(text)
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    def save(self, path):
        tmp = f"{path}.tmp{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write("\n".join(self.lines) + "\n")
        os.replace(tmp, path)


def cuda_time_ms(cp, fn, warmup=3, repeat=20):
    """Median milliseconds of ``fn()`` between CUDA events on the current stream, after warm-up."""
    for _ in range(warmup):
        fn()
    cp.cuda.get_current_stream().synchronize()
    times = []
    for _ in range(repeat):
        start, stop = cp.cuda.Event(), cp.cuda.Event()
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(cp.cuda.get_elapsed_time(start, stop))
    return statistics.median(times), (max(times) - min(times)) / statistics.median(times)


def torch_time_ms(torch, fn, warmup=3, repeat=20):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeat):
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop))
    return statistics.median(times)


def cpu_time_ms(fn, repeat=3):
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def _torch():
    try:
        import torch

        return torch if torch.cuda.is_available() else None
    except ImportError:
        return None


def _guard(report, name, fn):
    try:
        fn()
    except Exception as exc:  # a bench reports a broken or missing section and goes on
        report(f"  {name}: FAILED or missing — {type(exc).__name__}: {exc}")
        for line in traceback.format_exc().splitlines()[-6:]:
            report(f"    {line}")


# --------------------------------------------------------------------------------------- KDE


def bench_kde(report, cp, torch, quick, size=None, seed=None):
    """``seed``: None draws fresh inputs every run (the GPU check's habit); a test passes one, so
    that its error bound is checked on a draw it can reproduce."""
    from fastdensity.kde._kde_cpu import kde_logsum as cpu_logsum
    from fastdensity.kde._kde_cuda import kde_logsum

    m = n = size or 1 << (14 if quick else 16)
    rng = np.random.default_rng(seed)
    report(f"KDE exact sums: m = n = {m}; pairs/s = m·n / median time; error = max |GPU − CPU float64| "
           "on 256 queries")
    report(f"  {'kernel':<13}{'dtype':<9}{'d':>4}{'GPU pairs/s':>14}{'spread':>8}{'torch pairs/s':>15}"
           f"{'GPU/torch':>10}{'CPU pairs/s':>13}{'GPU/CPU':>9}{'max err':>10}")
    cases = [("gaussian", np.float32, d) for d in (1, 2, 4, 8, 16, 32)]
    cases += [("gaussian", np.float64, 4), ("epanechnikov", np.float32, 4), ("exponential", np.float32, 4)]
    for kernel, dtype, d in cases:
        def one():
            train = rng.normal(size=(n, d))
            queries = rng.normal(size=(m, d)) * 1.2
            bw = n ** (-1.0 / (d + 4))
            tq, tt = train / bw, queries / bw
            q_dev = cp.asarray(tt, dtype=dtype)
            x_dev = cp.asarray(tq, dtype=dtype)
            x_t = cp.ascontiguousarray(x_dev.T)
            log_w = cp.asarray(rng.normal(scale=0.3, size=n))
            out = kde_logsum(q_dev, None, log_w, kernel, train_t=x_t)
            ref = cpu_logsum(tt[:256], tq, log_w.get(), kernel)
            got = out[:256].get()
            if np.isnan(got).any():
                raise AssertionError("NaN in the GPU result")
            finite = np.isfinite(ref)
            if not np.array_equal(finite, np.isfinite(got)):
                raise AssertionError("GPU and CPU disagree on which densities are finite")
            err = float(np.max(np.abs(got[finite] - ref[finite]))) if finite.any() else 0.0
            ms, spread = cuda_time_ms(cp, lambda: kde_logsum(q_dev, None, log_w, kernel, train_t=x_t),
                                      repeat=10 if quick else 30)
            rate = m * n / (ms * 1e-3)
            torch_rate = ratio = float("nan")
            if torch is not None and kernel == "gaussian":
                tq_t = torch.from_dlpack(q_dev)
                tx_t = torch.from_dlpack(x_dev)
                lw_t = torch.from_dlpack(log_w).to(tq_t.dtype)
                chunk = max(1, (1 << 28) // n)

                def torch_kde():
                    for s in range(0, m, chunk):
                        d2 = torch.cdist(tq_t[s:s + chunk], tx_t).square_()
                        torch.logsumexp(lw_t - 0.5 * d2, dim=1)

                torch_rate = m * n / (torch_time_ms(torch, torch_kde, repeat=5 if quick else 10) * 1e-3)
                ratio = rate / torch_rate
            m_cpu = min(m, 512)
            cpu_q = tt[:m_cpu].astype(dtype)
            cpu_x = tq.astype(dtype)
            cpu_ms = cpu_time_ms(lambda: cpu_logsum(cpu_q, cpu_x, log_w.get(), kernel), repeat=2)
            cpu_rate = m_cpu * n / (cpu_ms * 1e-3)
            report(f"  {kernel:<13}{np.dtype(dtype).name:<9}{d:>4}{rate:>14.3e}{spread:>8.1%}{torch_rate:>15.3e}"
                   f"{ratio:>10.1f}{cpu_rate:>13.3e}{rate / cpu_rate:>9.0f}{err:>10.1e}")

        _guard(report, f"{kernel} {np.dtype(dtype).name} d={d}", one)
    report("  floor (kernels/kde.cu): ~3.7e12 pairs/s for d <= 2 (SFU ex2 rate), FP32-bound above: "
           "~2.1e12 at d=4, 1.6e12 at d=8, 0.85e12 at d=16")


# --------------------------------------------------------------------------------------- kNN


def bench_knn(report, cp, torch, quick, size=None):
    from fastdensity.knn._knn_cpu import knn_distances as cpu_knn
    from fastdensity.knn._knn_cuda import knn_distances  # the other CUDA helper's launcher

    m = n = size or 1 << (14 if quick else 16)
    rng = np.random.default_rng()
    report(f"kNN brute force: m = n = {m}, float32; pairs/s = m·n / median time; check = distances equal "
           "to the CPU's (rtol 1e-5) on 256 queries")
    report(f"  {'d':>4}{'k':>5}{'GPU pairs/s':>14}{'torch pairs/s':>15}{'GPU/torch':>10}{'CPU pairs/s':>13}"
           f"{'GPU/CPU':>9}{'check':>7}")
    for d, k in [(2, 10), (8, 10), (16, 10), (64, 10), (16, min(100, n))]:
        def one():
            train = rng.normal(size=(n, d)).astype(np.float32)
            queries = rng.normal(size=(m, d)).astype(np.float32)
            q_dev, x_dev = cp.asarray(queries), cp.asarray(train)
            dist, _ = knn_distances(q_dev, x_dev, k)
            ref, _ = cpu_knn(queries[:256], train, k)
            ok = np.allclose(cp.asnumpy(dist[:256]), ref, rtol=1e-5, atol=1e-6)
            ms, _ = cuda_time_ms(cp, lambda: knn_distances(q_dev, x_dev, k), repeat=5 if quick else 20)
            rate = m * n / (ms * 1e-3)
            torch_rate = ratio = float("nan")
            if torch is not None:
                tq, tx = torch.from_dlpack(q_dev), torch.from_dlpack(x_dev)
                chunk = max(1, (1 << 28) // n)

                def torch_knn():
                    for s in range(0, m, chunk):
                        torch.topk(torch.cdist(tq[s:s + chunk], tx), k, dim=1, largest=False, sorted=True)

                torch_rate = m * n / (torch_time_ms(torch, torch_knn, repeat=5 if quick else 10) * 1e-3)
                ratio = rate / torch_rate
            m_cpu = min(m, 2048)
            cpu_ms = cpu_time_ms(lambda: cpu_knn(queries[:m_cpu], train, k), repeat=2)
            cpu_rate = m_cpu * n / (cpu_ms * 1e-3)
            report(f"  {d:>4}{k:>5}{rate:>14.3e}{torch_rate:>15.3e}{ratio:>10.1f}{cpu_rate:>13.3e}"
                   f"{rate / cpu_rate:>9.0f}{'ok' if ok else 'WRONG':>7}")

        _guard(report, f"kNN d={d} k={k}", one)


# ---------------------------------------------------------------------------------------- EM


def _torch_estep(torch, X, means, prec_chol, log_weights):
    """Vectorised full-covariance E-step with the same statistics as gmm_estep (about the means)."""
    y = torch.einsum("nd,kde->kne", X, prec_chol) - torch.einsum("kd,kde->ke", means, prec_chol)[:, None, :]
    log_det = torch.log(torch.diagonal(prec_chol, dim1=1, dim2=2)).sum(dim=1)
    d = X.shape[1]
    log_prob = -0.5 * (d * math.log(2 * math.pi) + y.square().sum(dim=2)) + log_det[:, None] + log_weights[:, None]
    lpn = torch.logsumexp(log_prob, dim=0)
    resp = torch.exp(log_prob - lpn)
    nk = resp.sum(dim=1)
    diff = X[None, :, :] - means[:, None, :]
    sx = torch.einsum("kn,knd->kd", resp, diff)
    sxx = (resp[:, :, None] * diff).transpose(1, 2) @ diff
    return lpn, nk, sx, sxx


def bench_em(report, cp, torch, quick, size=None):
    from scipy.linalg import solve_triangular

    from fastdensity.mixture._mixture_cpu import gmm_estep as cpu_estep
    from fastdensity.mixture._mixture_cuda import gmm_estep  # the other CUDA helper's launcher

    n = size or 1 << (17 if quick else 20)
    rng = np.random.default_rng()
    report(f"GMM E-step (full covariances), n = {n}, float64; time per iteration; check = log-likelihood "
           "and statistics against the CPU (rtol 1e-9)")
    report(f"  {'d':>4}{'K':>5}{'GPU ms':>10}{'torch ms':>10}{'torch/GPU':>10}{'CPU ms':>10}{'CPU/GPU':>9}{'check':>7}")
    for d, K in [(2, 8), (8, 16), (32, 16)]:
        def one():
            X = rng.normal(size=(n, d))
            means = rng.normal(size=(K, d))
            A = rng.normal(size=(K, d, d)) / math.sqrt(d)
            cov = A @ A.transpose(0, 2, 1) + np.eye(d)
            # U = L⁻ᵀ for Σ = L Lᵀ, by triangular solves (as the estimators do).
            prec_chol = np.stack([solve_triangular(L, np.eye(d), lower=True).T for L in np.linalg.cholesky(cov)])
            log_w = np.log(np.full(K, 1.0 / K))
            Xd, md, pd, lwd = (cp.asarray(a) for a in (X, means, prec_chol, log_w))
            gpu = gmm_estep(Xd, None, md, pd, lwd, "full")
            ref = cpu_estep(X[:65536], None, means, prec_chol, log_w, "full")
            sub = gmm_estep(cp.ascontiguousarray(Xd[:65536]), None, md, pd, lwd, "full")
            ok = all(np.allclose(cp.asnumpy(a), b, rtol=1e-9, atol=1e-9) for a, b in zip(sub, ref))
            ms, _ = cuda_time_ms(cp, lambda: gmm_estep(Xd, None, md, pd, lwd, "full"), repeat=5 if quick else 20)
            del gpu
            torch_ms = float("nan")
            if torch is not None:
                tX, tm, tp, tl = (torch.from_dlpack(a) for a in (Xd, md, pd, lwd))
                torch_ms = torch_time_ms(torch, lambda: _torch_estep(torch, tX, tm, tp, tl), repeat=5 if quick else 10)
            cpu_ms = cpu_time_ms(lambda: cpu_estep(X, None, means, prec_chol, log_w, "full"), repeat=2)
            report(f"  {d:>4}{K:>5}{ms:>10.3f}{torch_ms:>10.3f}{torch_ms / ms:>10.1f}{cpu_ms:>10.1f}"
                   f"{cpu_ms / ms:>9.0f}{'ok' if ok else 'WRONG':>7}")

        _guard(report, f"EM d={d} K={K}", one)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes and fewer repeats")
    parser.add_argument("--size", type=int, help="m = n for KDE and kNN, n for EM (default: fills an H100)")
    parser.add_argument("--out", help="also write the report to this file (atomically)")
    args = parser.parse_args(argv)
    cp = _require_gpu()
    torch = _torch()
    report = Report()
    props = cp.cuda.runtime.getDeviceProperties(cp.cuda.runtime.getDevice())
    name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    report(f"# fastdensity bench/gpu.py — {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}")
    report(f"# device: {name}, {props['multiProcessorCount']} SMs, {props['totalGlobalMem'] / 2**30:.0f} GiB; "
           f"CuPy {cp.__version__}; torch {torch.__version__ if torch else 'n/a (no CUDA torch)'}; "
           f"host {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    report()
    for section in (bench_kde, bench_knn, bench_em):
        _guard(report, section.__name__, lambda: section(report, cp, torch, args.quick, args.size))
        report()
    if args.out:
        report.save(args.out)


if __name__ == "__main__":
    main()
