"""Small launches of every CUDA kernel in kernels/*.cu through the real launchers (for compute-sanitizer).

    python scripts/gpu_sanitize_launches.py [--no-compare] [--no-pool] [--seed N]
    compute-sanitizer --tool racecheck python scripts/gpu_sanitize_launches.py --no-compare --no-pool
    python scripts/gpu_sanitize_launches.py --list        # what must be covered; needs no GPU
    python scripts/gpu_sanitize_launches.py --only knn.cu  # one source file's kernels

Every name expression the launchers hand to the module loader (``KDE_NAME_EXPRESSIONS`` of
fastdensity/kde/_kde_cuda.py, ``NAME_EXPRESSIONS`` of the kNN and mixture launchers: each kernel
profile, dtype, compiled dimension, adaptive flag, family and mode) is launched at least once, on
inputs of a few hundred points, through the public ops (``kde_logsum``, ``kde_loo_logsum_grid``,
``knn_distances``, ``gmm_log_prob`` / ``gmm_log_prob_norm`` / ``gmm_estep``), plus the paths that
only small limits reach: several tiles per block, the slow path's block stride, the opt-in shared
memory of large k and large d. Each result is compared with the CPU engine (``--no-compare`` skips
that, for the slow sanitizer runs). Launches are counted where the loader hands out kernels, so
the closing coverage check sees what really ran: it fails (exit 1) when a listed name expression
was not launched, or when a ``__global__`` name declared in kernels/*.cu (macro-generated ones
included) is the base of no listed name expression. ``--no-pool`` turns CuPy's memory pool off,
so that memcheck/initcheck see each array as its own allocation.

Exit status: 0 all launched and matching, 1 a mismatch, an error or a coverage gap, 2 no GPU.
``launch_every_kernel(cp)`` is what tests/test_gpu_check.py runs in the host emulation.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import math
import re
import sys
import traceback
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

KERNELS_DIR = ROOT / "kernels"
_DEFINE = re.compile(r"^[ \t]*#[ \t]*define[ \t]+(\w+)\(([^)]*)\)(.*)$", re.M)
_GLOBAL = re.compile(r"__global__\s+void\s+(?:__launch_bounds__\s*\([^)]*\)\s*)?(\w+)\s*\(")


# ------------------------------------------------------------------------------- what to cover
def declared_kernels(folder: Path = KERNELS_DIR) -> dict[str, str]:
    """``{kernel name: file}`` of every ``__global__`` function in ``folder``/*.cu and *.cuh, the
    names that a ``#define`` macro generates included (its invocations' arguments)."""
    found = {}
    for path in sorted(folder.glob("*.cu")) + sorted(folder.glob("*.cuh")):
        text = re.sub(r"/\*.*?\*/|//[^\n]*", "", path.read_text(encoding="utf-8"), flags=re.S)
        text = text.replace("\\\n", " ")
        macros = {}
        for match in _DEFINE.finditer(text):
            params = [p.strip() for p in match.group(2).split(",")]
            for name in _GLOBAL.findall(match.group(3)):
                if name in params:
                    macros[match.group(1)] = params.index(name)
        plain = _DEFINE.sub("", text)
        names = _GLOBAL.findall(plain)
        for macro, index in macros.items():
            for args in re.findall(rf"\b{macro}\s*\(([^)]*)\)", plain):
                names.append(args.split(",")[index].strip())
        found.update({name: path.name for name in names})
    return found


def listed_name_expressions() -> dict[str, tuple[str, ...]]:
    """``{source file: name expressions}`` as the launchers list them for the module loader."""
    from fastdensity.kde import _kde_cuda
    from fastdensity.knn import _knn_cuda
    from fastdensity.mixture import _mixture_cuda

    return {_kde_cuda.SOURCE: _kde_cuda.KDE_NAME_EXPRESSIONS, _knn_cuda.SOURCE: _knn_cuda.NAME_EXPRESSIONS,
            _mixture_cuda.SOURCE: _mixture_cuda.NAME_EXPRESSIONS}


def base_name(name_expression: str) -> str:
    return name_expression.split("<", 1)[0].strip()


def coverage_gaps(launched, folder: Path = KERNELS_DIR, sources=None) -> list[str]:
    """What the launches ``launched`` (name expressions) leave out of ``sources`` (default: every
    .cu file); [] when everything ran."""
    listed = listed_name_expressions()
    gaps = [f"not launched: {name} ({source})" for source, names in listed.items() for name in names
            if name not in launched and (sources is None or source in sources)]
    bases = {base_name(name) for names in listed.values() for name in names}
    gaps += [f"declared in kernels/{source} but in no launcher's name expressions: {name}"
             for name, source in sorted(declared_kernels(folder).items())
             if name not in bases and (sources is None or source in sources)]
    return gaps


# ------------------------------------------------------------------------------- counting launches
class _CountedKernel:
    """A kernel from the loader that counts its launches; attributes pass through."""

    def __init__(self, kernel, name, counts):
        object.__setattr__(self, "_kernel", kernel)
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_counts", counts)

    def __call__(self, *args, **kwargs):
        self._counts[self._name] += 1
        return self._kernel(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._kernel, name)

    def __setattr__(self, name, value):
        setattr(self._kernel, name, value)


class _CountedModule:
    def __init__(self, module, counts):
        self._module = module
        self._counts = counts

    def get_function(self, name):
        return _CountedKernel(self._module.get_function(name), name, self._counts)


@contextlib.contextmanager
def counting_launches():
    """Count, by name expression, every kernel launch made through fastdensity._backend._cuda."""
    from fastdensity._backend import _cuda as loader

    counts = collections.Counter()
    real = loader._module
    loader._module = lambda *key: _CountedModule(real(*key), counts)
    try:
        yield counts
    finally:
        loader._module = real


@contextlib.contextmanager
def _setting(module, name, value):
    """``module.name = value`` for the block (a launch-plan limit, to reach a path with small inputs)."""
    old = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, old)


# ------------------------------------------------------------------------------- checks
def _close(got, want, atol, rtol):
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        return f"shape {got.shape}, expected {want.shape}"
    if not (np.array_equal(np.isnan(got), np.isnan(want)) and np.array_equal(np.isneginf(got), np.isneginf(want))):
        return (f"NaN/-inf pattern differs from the CPU engine: {np.isnan(got).sum()} NaN, "
                f"{np.isneginf(got).sum()} -inf (CPU: {np.isnan(want).sum()}, {np.isneginf(want).sum()})")
    finite = np.isfinite(want)
    err = np.abs(got[finite] - want[finite]) - rtol * np.abs(want[finite])
    if err.size and err.max() > atol:
        return f"max |difference| {np.abs(got[finite] - want[finite]).max():.3g} (atol {atol}, rtol {rtol})"
    return None


def _normwise(got, want, tol, what=""):
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    if got.shape != want.shape or np.isnan(got).any():
        return f"{what}shape {got.shape} (expected {want.shape}) or NaN"
    scale = np.max(np.abs(want)) if want.size else 1.0
    err = float(np.max(np.abs(got - want)) / scale) if want.size else 0.0
    return None if err <= tol else f"{what}normwise relative difference {err:.3g} > {tol}"


class _Run:
    """Runs cases, keeps going after a failure, and collects what went wrong."""

    def __init__(self, cp, compare, out):
        self.cp, self.compare, self.out = cp, compare, out
        self.problems = []
        self.cases = 0

    def host(self, a):
        return self.cp.asnumpy(a) if hasattr(self.cp, "asnumpy") else np.asarray(a)

    def case(self, what, launch, reference=None, check=None):
        """``launch()`` on the device; with comparison on, ``check(result, reference())`` -> problem or None."""
        self.cases += 1
        try:
            got = launch()
            problem = check(got, reference()) if self.compare and check is not None else None
        except Exception:  # a launch error is a finding: record it and go on with the next case
            problem = f"raised\n{traceback.format_exc()}"
        problem = problem and f"{what}: {problem}"
        if problem:
            self.problems.append(problem)
            self.out(f"FAIL {problem}")


# ------------------------------------------------------------------------------- the launches
def _dyadic(rng, shape, spread=2.0):
    # Multiples of 1/64: exact squared distances in float32 and float64, so that compact kernels
    # see the same support edge on both engines.
    return np.round(rng.normal(scale=spread, size=shape) * 64.0) / 64.0


def _kde_cases(run, rng):
    from fastdensity.kde import _kde_cuda as gpu
    from fastdensity.kde._kde_cpu import kde_logsum as cpu_logsum
    from fastdensity.kde._kde_cv_cpu import kde_loo_logsum_grid as cpu_grid
    from fastdensity.kde._kernels import COMPACT_KERNELS, KERNELS

    cp = run.cp
    tol = {np.float32: (1e-4, 2e-6), np.float64: (1e-9, 1e-12)}
    dims = {}  # compiled D -> the smallest d that compiles to it (most zero padding); 0 -> 17
    previous = 0
    for D in gpu.SPECIALISED_D:
        dims[D] = previous + 1
        previous = D
    dims[0] = previous + 1
    m, n = 37, 300
    for kernel in KERNELS:
        for dtype in (np.float32, np.float64):
            for D, d in dims.items():
                assert gpu._compiled_d(d) == D
                train, queries = _dyadic(rng, (n, d)), _dyadic(rng, (m, d))
                queries[: m // 4] *= 20.0  # far queries: underflow, or outside a compact support
                log_w = rng.normal(size=n)
                for inv in (None, 2.0 ** rng.integers(-1, 2, size=n)):
                    run.case(
                        f"kde_logsum {kernel} {np.dtype(dtype).name} d={d} adaptive={inv is not None}",
                        lambda: gpu.kde_logsum(cp.asarray(queries, dtype=dtype), cp.asarray(train, dtype=dtype),
                                               cp.asarray(log_w), kernel, None if inv is None else cp.asarray(inv)),
                        lambda: cpu_logsum(queries, train, log_w, kernel, inv),
                        lambda got, want: _close(run.host(got), want, *tol[dtype]))
            if kernel in COMPACT_KERNELS:  # sums too small to trust: the float64 slow path
                # One heavy point far away, the others e^-700 of it: below tiny in float64, 0 in
                # float32. (Not e^-750: there the CPU engine's float64 weights are 0 and it answers -inf.)
                train, queries = _dyadic(rng, (n, 2), 1.0), _dyadic(rng, (40, 2), 1.0)
                train[0] = 100.0
                log_w = np.full(n, -700.0) + rng.normal(scale=0.1, size=n)
                log_w[0] = 0.0
                for blocks in (2, gpu.MAX_SLOW_BLOCKS):  # 2: each block takes several rows in turn
                    def slow(blocks=blocks, train=train, queries=queries, log_w=log_w):
                        with _setting(gpu, "MAX_SLOW_BLOCKS", blocks):
                            return gpu.kde_logsum(cp.asarray(queries, dtype=dtype), cp.asarray(train, dtype=dtype),
                                                  cp.asarray(log_w), kernel)
                    run.case(f"kde_logsum slow path {kernel} {np.dtype(dtype).name} blocks<={blocks}", slow,
                             lambda: cpu_logsum(queries, train, log_w, kernel),
                             lambda got, want: _close(run.host(got), want, 1e-9, 1e-12))
    train, queries = _dyadic(rng, (300, 3)), _dyadic(rng, (70, 3))
    log_w = rng.normal(size=300)

    def one_split():  # one split: every block walks all the tiles (the tile loop's barriers)
        with _setting(gpu, "MAX_SPLITS", 1):
            return gpu.kde_logsum(cp.asarray(queries, dtype=np.float32), cp.asarray(train, dtype=np.float32),
                                  cp.asarray(log_w), "gaussian")
    run.case("kde_logsum one split", one_split, lambda: cpu_logsum(queries, train, log_w, "gaussian"),
             lambda got, want: _close(run.host(got), want, *tol[np.float32]))
    train = _dyadic(rng, (150, 3), 1.0)
    log_w = rng.normal(size=150)
    log_w[3] = -np.inf
    inv = np.array([2.0, 0.5])
    for kernel in ("gaussian", "epanechnikov"):  # leave-one-out (exclude_self)
        run.case(f"kde_loo_logsum_grid {kernel}",
                 lambda: gpu.kde_loo_logsum_grid(cp.asarray(train), cp.asarray(log_w), kernel, inv),
                 lambda: cpu_grid(train, log_w, kernel, inv),
                 lambda got, want: _close(run.host(got), want, 1e-9, 1e-12))


def _knn_check(run, queries, train, k, exclude_self):
    def check(got, want):
        got_d, got_i = (run.host(a) for a in got)
        want_d, want_i = want
        if got_d.shape != want_d.shape or got_i.shape != want_i.shape:
            return f"shapes {got_d.shape}, {got_i.shape}, expected {want_d.shape}"
        if not (np.diff(got_d.astype(np.float64), axis=1) >= 0).all():
            return "distances not sorted"
        exact = np.sqrt(np.sum((train[got_i].astype(np.float64) - queries[:, None].astype(np.float64)) ** 2, axis=2))
        rtol = 4e-7 if got_d.dtype == np.float32 else 1e-14
        if not np.allclose(got_d, exact, rtol=rtol, atol=0):
            return "a distance is not the exact one of its index"
        same = (got_i == want_i).mean()  # near-ties within the screen's rounding may differ
        return None if same >= 0.99 else f"only {same:.1%} of the indices match the CPU"
    return check


def _knn_cases(run, rng):
    from fastdensity.knn import _knn_cpu as cpu
    from fastdensity.knn import _knn_cuda as gpu

    cp = run.cp
    cases = [  # (queries dtype, train dtype, m, n, d, k, exclude_self)
        (np.float32, np.float32, 37, 700, 5, 40, False),  # 8 warps, several flushes per query
        (np.float64, np.float64, 5, 3000, 3, 7, False),  # few queries: the training set is split
        (np.float32, np.float32, 9, 1000, 40, 33, False),  # two dimension chunks
        (np.float32, np.float64, 9, 500, 6, 12, False),  # float64 screen, float32 output
        (np.float64, np.float64, 300, 300, 4, 9, True),  # leave-one-out
        (np.float32, np.float32, 3, 1100, 2, 1024, False),  # k at the maximum: opt-in shared memory
    ]
    for qt, xt, m, n, d, k, exclude_self in cases:
        train = (rng.normal(size=(n, d)) * rng.uniform(0.5, 3.0, size=d) + 10.0).astype(xt)
        queries = train[:m].astype(qt) if exclude_self else (rng.normal(size=(m, d)) * 2.0 + 10.0).astype(qt)
        run.case(f"knn_distances {np.dtype(qt).name}/{np.dtype(xt).name} m={m} n={n} d={d} k={k}",
                 lambda: gpu.knn_distances(cp.asarray(queries), cp.asarray(train), k, exclude_self),
                 lambda: cpu.knn_distances(queries, train, k, exclude_self),
                 _knn_check(run, queries, train, k, exclude_self))


def _mixture_model(rng, d, K, cov_type):
    """(means, prec_chol, log_weights) in scikit-learn's layouts, random SPD covariances."""
    from fastdensity.mixture._cholesky_dd import precision_cholesky_full

    means = rng.normal(scale=3.0, size=(K, d)) + 5.0
    A = rng.normal(size=(K, d, d)) / np.sqrt(d) + np.eye(d)
    cov = A @ A.transpose(0, 2, 1) + 0.1 * np.eye(d)
    prec_chol = {
        "full": lambda: precision_cholesky_full(cov)[0],
        "tied": lambda: precision_cholesky_full(cov[:1])[0][0],
        "diag": lambda: 1.0 / np.sqrt(rng.uniform(0.5, 2.0, size=(K, d))),
        "spherical": lambda: 1.0 / np.sqrt(rng.uniform(0.5, 2.0, size=K)),
    }[cov_type]()
    return means, prec_chol, np.log(rng.dirichlet(np.ones(K)))


def _mixture_cases(run, rng):
    from fastdensity.mixture import _mixture_cpu as cpu
    from fastdensity.mixture import _mixture_cuda as gpu

    cp = run.cp
    tol = {np.float32: 3e-5, np.float64: 1e-10}

    def ops(X, w, model, cov_type, dtype, what):
        means, prec_chol, log_w = model
        Xg = cp.asarray(X)
        run.case(f"gmm_log_prob {what}", lambda: gpu.gmm_log_prob(Xg, means, prec_chol, cov_type, log_w),
                 lambda: cpu.gmm_log_prob(X, means, prec_chol, cov_type, log_w),
                 lambda got, want: _normwise(run.host(got), want, tol[dtype]))
        run.case(f"gmm_log_prob_norm {what}", lambda: gpu.gmm_log_prob_norm(Xg, means, prec_chol, log_w, cov_type),
                 lambda: cpu.gmm_log_prob_norm(X, means, prec_chol, log_w, cov_type),
                 lambda got, want: _normwise(run.host(got), want, tol[dtype]))
        run.case(f"gmm_estep {what}",
                 lambda: gpu.gmm_estep(Xg, cp.asarray(w), means, prec_chol, log_w, cov_type),
                 lambda: cpu.gmm_estep(X, w, means, prec_chol, log_w, cov_type),
                 lambda got, want: next(filter(None, (_normwise(run.host(a), b, tol[dtype], f"part {i}: ")
                                                      for i, (a, b) in enumerate(zip(got, want)))), None))

    for dtype in (np.float32, np.float64):
        for cov_type in ("full", "tied", "diag", "spherical"):
            X = (rng.normal(scale=2.0, size=(300, 3)) + 5.0).astype(dtype)
            ops(X, rng.uniform(0.2, 3.0, size=300), _mixture_model(rng, 3, 4, cov_type), cov_type, dtype,
                f"{cov_type} {np.dtype(dtype).name}")
    for cov_type in ("full", "tied"):  # d = 100: past 48 KB, the opt-in shared memory
        X = rng.normal(scale=2.0, size=(70, 100)) + 5.0
        ops(X, rng.uniform(0.2, 3.0, size=70), _mixture_model(rng, 100, 4, cov_type), cov_type, np.float64,
            f"{cov_type} float64 d=100")
    X = (rng.normal(scale=2.0, size=(1025, 3)) + 5.0).astype(np.float32)
    with _setting(gpu, "MAX_BLOCKS", 2), _setting(gpu, "ROWS_PER_TILE", (32,)):  # 17 tiles per block
        for cov_type in ("full", "diag"):
            ops(X, rng.uniform(0.2, 3.0, size=1025), _mixture_model(rng, 3, 3, cov_type), cov_type, np.float32,
                f"{cov_type} float32 several tiles per block")


SECTIONS = {"kde.cu": _kde_cases, "knn.cu": _knn_cases, "mixture.cu": _mixture_cases}


def launch_every_kernel(cp, compare=True, sources=tuple(SECTIONS), seed=0, out=print):
    """Run the cases of ``sources`` on ``cp`` (CuPy, or the emulation's stand-in) through the real
    launchers: (launches by name expression, list of problems: mismatches and errors)."""
    rng = np.random.default_rng(seed)
    with counting_launches() as counts:
        run = _Run(cp, compare, out)
        for source in sources:
            SECTIONS[source](run, rng)
            launched = sum(v for k, v in counts.items() if k in listed_name_expressions()[source])
            out(f"{source}: {run.cases} cases so far, {launched} launches")
    return dict(counts), run.problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-compare", action="store_true", help="skip the comparison with the CPU engine")
    parser.add_argument("--no-pool", action="store_true", help="turn CuPy's memory pool off (for memcheck)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")
    parser.add_argument("--list", action="store_true", help="print the kernels and name expressions to cover; no GPU")
    parser.add_argument("--only", action="append", choices=tuple(SECTIONS), metavar="SOURCE",
                        help="launch only the kernels of this file (repeatable; default: all of kernels/*.cu)")
    args = parser.parse_args(argv)
    if args.list:
        for name, source in sorted(declared_kernels().items()):
            print(f"kernel {name} ({source})")
        for source, names in listed_name_expressions().items():
            print(f"{source}: {len(names)} name expressions")
        return 0
    from fastdensity._backend._cuda import require_cupy

    try:
        cp = require_cupy("scripts/gpu_sanitize_launches.py")
    except ImportError as exc:
        sys.stderr.write(f"{exc}\n")
        return 2
    if args.no_pool:
        cp.cuda.set_allocator(None)
    sources = tuple(args.only or SECTIONS)
    counts, problems = launch_every_kernel(cp, compare=not args.no_compare, sources=sources, seed=args.seed)
    cp.cuda.runtime.deviceSynchronize()  # a pending launch error surfaces here, inside the sanitizer
    gaps = coverage_gaps(counts, sources=sources)
    listed = sum(len(v) for k, v in listed_name_expressions().items() if k in sources)
    kernels = sum(1 for source in declared_kernels().values() if source in sources)
    print(f"launched {sum(1 for k in counts if counts[k])} of {listed} name expressions of the "
          f"{kernels} kernels in kernels/{{{','.join(sources)}}} ({sum(counts.values())} launches); "
          f"{len(problems)} problems; comparison {'off' if args.no_compare else 'on'}")
    for gap in gaps:
        print(f"MISSING {gap}")
    if gaps or problems:
        print("FAILED", file=sys.stderr)
        return 1
    print("all kernels launched" + ("" if args.no_compare else " and matching the CPU engine"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
