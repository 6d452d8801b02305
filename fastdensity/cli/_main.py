"""The ``fastdensity`` command line (also ``python -m fastdensity``).

::

    fastdensity demo [--output-dir DIR] [--quick]
    fastdensity fit kde DATA -o MODEL [--bandwidth B] [--kernel K] [--adaptive] [--weights FILE]
    fastdensity fit gmm DATA -o MODEL [--n-components K] [--covariance-type T] [--n-init N] [--seed S]
                          [--batch-size N] [--workers N | --scheduler ADDRESS]   (streamed on Dask)
    fastdensity fit knn DATA -o MODEL [--n-neighbors K] [--algorithm A]
    fastdensity fit normal DATA -o MODEL [--covariance-type T]
    fastdensity score MODEL DATA -o OUT [--batch-size N] [--progress | --no-progress]
                          [--backend cpu|cuda|auto] [--workers N | --scheduler ADDRESS]
    fastdensity sample MODEL -n N -o OUT [--seed S]
    fastdensity train vae|gan DATA -o DIR [--epochs N] [--resume] ...   (needs torch)
    fastdensity evaluate REAL FAKE [--features digits|none|PATH] [--json OUT]
    fastdensity bench [--quick] [--json FILE] [--compare FILE] [--backend cpu|cuda]

DATA files are ``.npy`` (memory-mapped), ``.npz`` (holding exactly one array), ``.csv``
(comma-separated numbers, an optional header row) or Parquet (``.parquet``/``.pq``, numeric
columns; needs ``pip install 'fastdensity[parquet]'``); a 1-D array is one feature. ``score`` and
a streamed ``fit gmm`` read ``.npy``, ``.csv`` and Parquet a batch at a time (``._batches``), so
memory is bounded by the batch size; ``score`` shows a tqdm bar (rows, rate, ETA) on a terminal,
runs on a Dask cluster with ``--workers N`` (a new local one) or ``--scheduler ADDRESS``, and on
the GPU with ``--backend cuda`` (``._score_cuda``: pinned double buffers, copies overlapped with
the kernels). Outputs are
``.npy`` or ``.csv``; model files are written by :func:`fastdensity.io.save` exactly at the given
path (``.npz`` recommended). Every file is written atomically (a temporary file, then a rename).

Errors print one line ``fastdensity: error: ...`` on stderr and exit with status 2 for usage
errors (bad options) and 1 for runtime errors (missing or corrupt files, wrong feature counts,
parameters the estimator rejects).
"""

from __future__ import annotations

import argparse
import inspect
import math
import sys

import numpy as np

from ._argtypes import data_path, output_path, positive_int, seed
from ._files import _one_line, write_array

PROG = "fastdensity"
BANDWIDTH_RULES = ("scott", "silverman", "isj", "cv", "sj", "plugin", "lscv", "lscv_diag", "mlcv", "mlcv_diag")
DEFAULT_BATCH_SIZE = 65536
STREAM_BATCH_SIZE = 1_000_000  # rows per task of a streamed fit: 32 MB at 4 float64 features


class UsageError(Exception):
    """A bad command line: exit status 2."""


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message):  # one line instead of argparse's usage block + exit
        raise UsageError(f"{message} (see '{self.prog} --help')")


# --------------------------------------------------------------------------------------------
# Argument types (their errors are usage errors)


def _bandwidth(text: str):
    """A rule name, a positive float, or comma-separated positive per-feature floats."""
    rule = text.strip().lower()
    if rule in BANDWIDTH_RULES:
        return rule
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        values = []
    if not values or not all(math.isfinite(v) and v > 0 for v in values):
        raise argparse.ArgumentTypeError(
            f"invalid bandwidth {text!r}: expected a positive number, comma-separated positive "
            f"per-feature numbers, or one of {', '.join(BANDWIDTH_RULES)}"
        )
    return values[0] if len(values) == 1 else np.array(values)


# --------------------------------------------------------------------------------------------
# Progress bar (tqdm, in ._score)


def _progress_enabled(flag, stream) -> bool:
    if flag is not None:
        return flag
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


# --------------------------------------------------------------------------------------------
# Commands


def _fit_kde(args):
    from ..kde._kde import KernelDensity

    return KernelDensity(bandwidth=args.bandwidth, kernel=args.kernel, adaptive=args.adaptive)


# Model type on the command line -> (help, function adding its options, builder from args).
def _add_kde_options(parser):
    from ..kde._kernels import KERNELS

    parser.add_argument("--bandwidth", "-b", type=_bandwidth, default="scott", metavar="B",
                        help="a positive number, comma-separated per-feature numbers, or a rule: "
                             f"{', '.join(BANDWIDTH_RULES)} (default: scott)")
    parser.add_argument("--kernel", "-k", choices=KERNELS, default="gaussian", help="kernel (default: gaussian)")
    parser.add_argument("--adaptive", action="store_true", help="Abramson's adaptive bandwidths")


def _add_gmm_options(parser):
    parser.add_argument("--n-components", "-n", type=positive_int, default=1, metavar="K",
                        help="number of mixture components (default: 1)")
    parser.add_argument("--covariance-type", choices=("full", "tied", "diag", "spherical"), default="full",
                        help="covariance structure (default: full)")
    parser.add_argument("--n-init", type=positive_int, default=1, help="EM restarts (default: 1)")
    parser.add_argument("--max-iter", type=positive_int, default=100, help="EM iterations (default: 100)")
    parser.add_argument("--seed", type=int, default=0, help="random_state (default: 0)")
    stream = parser.add_argument_group("streaming (.npy, .csv or Parquet DATA, needs fastdensity[dask])")
    stream.add_argument("--batch-size", type=positive_int, default=None, metavar="N",
                        help="fit through Dask in batches of N rows, each read from the file by its own task: memory "
                             f"bounded by the batches in flight (default with --workers/--scheduler: {STREAM_BATCH_SIZE})")
    stream.add_argument("--workers", type=positive_int, default=None, metavar="N",
                        help="run the batches on a local Dask cluster of N worker processes")
    stream.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="run the batches on an existing Dask scheduler (its workers must see DATA's path)")


def _fit_gmm(args):
    from ..mixture import GaussianMixture

    return GaussianMixture(n_components=args.n_components, covariance_type=args.covariance_type,
                           n_init=args.n_init, max_iter=args.max_iter, random_state=args.seed)


def _add_knn_options(parser):
    parser.add_argument("--n-neighbors", "-k", type=positive_int, default=10, metavar="K",
                        help="neighbours (default: 10)")
    parser.add_argument("--algorithm", choices=("auto", "brute", "kd_tree"), default="auto",
                        help="search engine (default: auto)")


def _fit_knn(args):
    from ..knn import KNNDensity

    return KNNDensity(n_neighbors=args.n_neighbors, algorithm=args.algorithm)


def _add_normal_options(parser):
    parser.add_argument("--covariance-type", choices=("full", "diag", "spherical"), default="full",
                        help="covariance structure of the multivariate normal (default: full)")


def _fit_normal(args):
    from ..parametric import MultivariateNormal

    return MultivariateNormal(covariance_type=args.covariance_type)


FIT_MODELS = {
    "kde": ("kernel density estimate (fastdensity.KernelDensity)", _add_kde_options, _fit_kde),
    "gmm": ("Gaussian mixture fitted by EM (fastdensity.GaussianMixture)", _add_gmm_options, _fit_gmm),
    "knn": ("k-nearest-neighbour density, not normalised (fastdensity.KNNDensity)", _add_knn_options, _fit_knn),
    "normal": ("multivariate normal by maximum likelihood (fastdensity.MultivariateNormal)",
               _add_normal_options, _fit_normal),
}


def _cmd_fit(args, stdout, stderr) -> int:
    from ..io import save

    streamed = any(getattr(args, name, None) is not None for name in ("batch_size", "workers", "scheduler"))
    from ._batches import read_whole

    X = None if streamed else read_whole(args.data, what="DATA")
    weights = None
    if args.weights is not None and not streamed:
        weights = read_whole(args.weights, what="weights file", mmap=False)
        if weights.shape[1] != 1:
            raise ValueError(f"weights file {args.weights!r} must hold one column; got shape {weights.shape}")
        weights = weights[:, 0]
        if weights.shape[0] != X.shape[0]:
            raise ValueError(
                f"weights file {args.weights!r} has {weights.shape[0]} values but DATA has {X.shape[0]} rows"
            )
    _, _, build = FIT_MODELS[args.model]
    estimator = build(args)
    if streamed:
        from ._streaming import fit_streamed

        if args.workers is not None and args.scheduler is not None:
            raise ValueError("give --workers (a new local cluster) or --scheduler (an existing one), not both")
        n, d = fit_streamed(estimator, args.data, args.weights, args.batch_size or STREAM_BATCH_SIZE,
                            address=args.scheduler, workers=args.workers)
        save(estimator, args.output)
        print(f"fitted {type(estimator).__name__} on {n} rows × {d} features in batches of "
              f"{args.batch_size or STREAM_BATCH_SIZE}; wrote {args.output}", file=stdout)
        return 0
    if weights is None:
        estimator.fit(X)
    elif "sample_weight" in inspect.signature(estimator.fit).parameters:
        estimator.fit(X, sample_weight=weights)
    else:
        raise ValueError(f"--weights is not supported by {type(estimator).__name__}")
    save(estimator, args.output)
    print(f"fitted {type(estimator).__name__} on {X.shape[0]} rows × {X.shape[1]} features; "
          f"wrote {args.output}", file=stdout)
    return 0


def _cmd_score(args, stdout, stderr) -> int:
    from ..io import load
    from ._batches import open_rows
    from ._score import progress_bar, score_local, score_on_dask, score_writer

    on_dask = args.workers is not None or args.scheduler is not None
    if args.workers is not None and args.scheduler is not None:
        raise ValueError("give --workers (a new local cluster) or --scheduler (an existing one), not both")
    backend = args.backend
    if on_dask and backend == "cuda":
        raise ValueError("--backend cuda scores in this process; it cannot be combined with --workers/--scheduler")
    if on_dask:
        from ._streaming import _require_dask

        _require_dask("--workers/--scheduler")
    cp = None
    if backend in ("cuda", "auto") and not on_dask:
        from .._backend._cuda import CudaUnavailableError, require_cupy

        try:
            cp = require_cupy("fastdensity score --backend cuda", alternative="--backend cpu")
        except CudaUnavailableError as exc:
            if backend == "cuda":
                raise ValueError(str(exc)) from None
        backend = "cuda" if cp is not None else "cpu"
    elif backend == "auto":
        backend = "cpu"
    estimator = load(args.model)
    source = open_rows(args.data, what="DATA", batch_size=args.batch_size)
    expected = getattr(estimator, "n_features_in_", None)
    if expected is not None and source.n_features != expected:
        raise ValueError(f"DATA {args.data!r} has {source.n_features} features (columns) but the model was "
                         f"fitted on {expected}")
    if "backend" in getattr(estimator, "get_params", dict)():
        estimator.set_params(backend=backend)
    n, batch = source.n_rows, args.batch_size
    where = "this process"
    with progress_bar(n, stderr, _progress_enabled(args.progress, stderr)) as bar, score_writer(args.output, n) as out:
        if on_dask:
            workers = score_on_dask(estimator, source, batch, out, bar, address=args.scheduler, workers=args.workers)
            where = f"{workers} Dask worker{'s' if workers != 1 else ''}"
        elif backend == "cuda":
            from ._score_cuda import gpu_dtype, score_on_gpu

            score_on_gpu(estimator, source.batches(batch), out, bar, min(batch, n), source.n_features,
                         gpu_dtype(source.dtype), cp=cp)
            where = "the GPU"
        else:
            score_local(estimator, source, batch, out, bar)
    print(f"scored {n} rows on {where}; wrote {args.output}", file=stdout)
    return 0


def _cmd_sample(args, stdout, stderr) -> int:
    from ..io import load

    estimator = load(args.model)
    if not callable(getattr(estimator, "sample", None)):
        raise ValueError(f"{type(estimator).__name__} models cannot draw samples (the kNN density is not "
                         "normalised); fit a kde, gmm or normal model to sample")
    samples = estimator.sample(args.n_samples, random_state=args.seed)
    if isinstance(samples, tuple):  # mixtures return (X, component labels), as scikit-learn's do
        samples = samples[0]
    samples = np.asarray(samples)
    names = getattr(estimator, "feature_names_in_", None)
    header = [str(s) for s in names] if names is not None else [f"x{j}" for j in range(samples.shape[1])]
    write_array(args.output, samples, header=header)
    print(f"drew {samples.shape[0]} samples; wrote {args.output}", file=stdout)
    return 0


def _cmd_demo(args, stdout, stderr) -> int:
    from ._demo import run_demo

    run_demo(args.output_dir, quick=args.quick, stream=stdout)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from .._version import __version__

    parser = _ArgumentParser(
        prog=PROG,
        description="Fast density estimation: fit, score and sample models, train and evaluate generative "
                    "models, or run the demo.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    demo = commands.add_parser("demo", help="fit every bandwidth rule on shipped data; print a table, draw plots",
                               description="Fit KernelDensity with every bandwidth rule and a few kernels to "
                                           "Old Faithful and the digits, print held-out log-likelihoods and "
                                           "throughput, and write PNG plots (when matplotlib is installed).")
    demo.add_argument("--output-dir", default="fastdensity-demo", metavar="DIR",
                      help="where to write the plots (default: ./fastdensity-demo)")
    demo.add_argument("--quick", action="store_true", help="fewer fits and a smaller throughput run")
    demo.set_defaults(func=_cmd_demo)

    fit = commands.add_parser("fit", help="fit a model to DATA and save it",
                              description="Fit a model to DATA (.npy, .npz, .csv or Parquet) and save it as a model file.")
    models = fit.add_subparsers(dest="model", metavar="MODEL_TYPE", required=True)
    for name, (help_text, add_options, _) in FIT_MODELS.items():
        sub = models.add_parser(name, help=help_text, description=f"Fit a {help_text}.")
        sub.add_argument("data", type=data_path, metavar="DATA", help="training data: .npy, .npz, .csv or .parquet")
        sub.add_argument("-o", "--output", required=True, metavar="MODEL",
                         help="model file to write (exactly this path; .npz recommended)")
        sub.add_argument("--weights", type=data_path, metavar="FILE",
                         help="sample weights, one per row of DATA (.npy, .npz or .csv)")
        add_options(sub)
        sub.set_defaults(func=_cmd_fit)

    score = commands.add_parser("score", help="write the log density of each row of DATA",
                                description="Write the log density of each row of DATA, streamed in batches: "
                                            ".npy is memory-mapped, .csv and Parquet are read a batch at a "
                                            "time, so memory is bounded by the batch size and files larger "
                                            "than memory work. OUT is written atomically.")
    score.add_argument("model", metavar="MODEL", help="model file written by 'fastdensity fit'")
    score.add_argument("data", type=data_path, metavar="DATA",
                       help="points to score: .npy, .csv, .parquet (streamed) or .npz (read whole)")
    score.add_argument("-o", "--output", required=True, type=output_path, metavar="OUT",
                       help="log densities: .npy or .csv")
    score.add_argument("--batch-size", type=positive_int, default=DEFAULT_BATCH_SIZE, metavar="N",
                       help=f"rows per batch (default: {DEFAULT_BATCH_SIZE})")
    score.add_argument("--backend", choices=("cpu", "cuda", "auto"), default="cpu",
                       help="cpu (default); cuda: stream the batches to the GPU (two pinned host buffers, "
                            "the next copy overlapped with the current batch's kernels; needs CuPy); "
                            "auto: cuda when CuPy finds a GPU, else cpu")
    where = score.add_argument_group("on a Dask cluster (needs fastdensity[dask]; each batch a task)")
    where.add_argument("--workers", type=positive_int, default=None, metavar="N",
                       help="score on a local Dask cluster of N worker processes")
    where.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="score on an existing Dask scheduler (its workers must see DATA's path)")
    group = score.add_mutually_exclusive_group()
    group.add_argument("--progress", dest="progress", action="store_true", default=None,
                       help="show a progress bar (tqdm: rows, rate, ETA) on stderr even when it is not a terminal")
    group.add_argument("--no-progress", dest="progress", action="store_false",
                       help="never show a progress bar (default: only on a terminal)")
    score.set_defaults(func=_cmd_score)

    sample = commands.add_parser("sample", help="draw samples from a model",
                                 description="Draw N samples from a fitted model.")
    sample.add_argument("model", metavar="MODEL", help="model file written by 'fastdensity fit'")
    sample.add_argument("-n", "--n-samples", type=positive_int, required=True, metavar="N",
                        help="number of samples")
    sample.add_argument("-o", "--output", required=True, type=output_path, metavar="OUT",
                        help="samples: .npy or .csv")
    sample.add_argument("--seed", type=seed, default=None, metavar="S", help="random seed (default: fresh entropy)")
    sample.set_defaults(func=_cmd_sample)

    from ._generative import add_evaluate_parser, add_train_parser

    add_train_parser(commands)
    add_evaluate_parser(commands)

    from ._bench import add_bench_parser

    add_bench_parser(commands)
    return parser


def main(argv=None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    from sklearn.exceptions import NotFittedError

    stdout, stderr = sys.stdout, sys.stderr
    try:
        parser = build_parser()
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # --help / --version
            return exc.code if isinstance(exc.code, int) else 0
        return args.func(args, stdout, stderr)
    except UsageError as exc:
        print(f"{PROG}: error: {_one_line(exc)}", file=stderr)
        return 2
    except (ValueError, TypeError, OSError, NotFittedError, NotImplementedError) as exc:
        print(f"{PROG}: error: {_one_line(exc)}", file=stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
