"""The ``fastdensity`` command line (also ``python -m fastdensity``).

::

    fastdensity demo [--output-dir DIR] [--quick]
    fastdensity fit kde DATA -o MODEL [--bandwidth B] [--kernel K] [--adaptive] [--weights FILE]
    fastdensity score MODEL DATA -o OUT [--batch-size N] [--progress | --no-progress]
    fastdensity sample MODEL -n N -o OUT [--seed S]

DATA files are ``.npy`` (memory-mapped), ``.npz`` (holding exactly one array) or ``.csv``
(comma-separated numbers, an optional header row); a 1-D array is one feature. Outputs are
``.npy`` or ``.csv``; model files are written by :func:`fastdensity.io.save` exactly at the given
path (``.npz`` recommended). Every file is written atomically (a temporary file, then a rename).

Errors print one line ``fastdensity: error: ...`` on stderr and exit with status 2 for usage
errors (bad options) and 1 for runtime errors (missing or corrupt files, wrong feature counts,
parameters the estimator rejects).
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import sys
import time
import warnings
import zipfile

import numpy as np

PROG = "fastdensity"
DATA_SUFFIXES = (".npy", ".npz", ".csv")
OUTPUT_SUFFIXES = (".npy", ".csv")
BANDWIDTH_RULES = ("scott", "silverman", "isj", "cv")
DEFAULT_BATCH_SIZE = 65536


class UsageError(Exception):
    """A bad command line: exit status 2."""


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message):  # one line instead of argparse's usage block + exit
        raise UsageError(f"{message} (see '{self.prog} --help')")


# --------------------------------------------------------------------------------------------
# Argument types (their errors are usage errors)


def _suffix(path) -> str:
    return os.path.splitext(os.fspath(path))[1].lower()


def _data_path(text: str) -> str:
    if _suffix(text) not in DATA_SUFFIXES:
        raise argparse.ArgumentTypeError(
            f"unsupported data file {text!r}: use one of {', '.join(DATA_SUFFIXES)}"
        )
    return text


def _output_path(text: str) -> str:
    if _suffix(text) not in OUTPUT_SUFFIXES:
        raise argparse.ArgumentTypeError(
            f"unsupported output file {text!r}: use one of {', '.join(OUTPUT_SUFFIXES)}"
        )
    return text


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer; got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer; got {text!r}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer seed; got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer seed; got {text!r}")
    return value


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
# Reading and writing arrays


def read_array(path, *, what: str = "DATA", mmap: bool = True) -> np.ndarray:
    """Read a numeric array from ``.npy`` (memory-mapped when ``mmap``), ``.npz`` (one array) or
    ``.csv``; 1-D arrays become one column. Raises ValueError naming the file; OSError when it
    cannot be opened."""
    path = os.fspath(path)
    suffix = _suffix(path)
    try:
        if suffix == ".npy":
            arr = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
        elif suffix == ".npz":
            with np.load(path, allow_pickle=False) as npz:
                if not hasattr(npz, "files"):
                    raise ValueError("not an .npz archive")
                if len(npz.files) != 1:
                    raise ValueError(
                        f"an .npz data file must hold exactly one array; it holds {len(npz.files)}"
                        + (f" ({', '.join(npz.files[:5])})" if npz.files else "")
                    )
                arr = npz[npz.files[0]]
        elif suffix == ".csv":
            arr = _read_csv(path)
        else:
            raise ValueError(f"unsupported file type {suffix or '(none)'!r}; use one of {', '.join(DATA_SUFFIXES)}")
    except (ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise ValueError(f"cannot read {what} {path!r}: {_one_line(exc)}") from None
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "biuf":
        dtype = getattr(arr, "dtype", type(arr).__name__)
        raise ValueError(f"{what} {path!r} is not a numeric array (dtype {dtype})")
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2:
        raise ValueError(f"{what} {path!r} must be a 2-D array (rows × features); got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{what} {path!r} is empty (shape {arr.shape})")
    return arr


def _read_csv(path: str) -> np.ndarray:
    with open(path, newline="", encoding="utf-8") as fh:
        first = fh.readline()
        if not first.strip():
            raise ValueError("the file is empty")
        try:
            [float(field) for field in first.split(",")]
            header = False
        except ValueError:
            header = True
        fh.seek(0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "input contained no data"
            return np.loadtxt(fh, delimiter=",", skiprows=int(header), dtype=np.float64, ndmin=2)


def write_array(path, arr: np.ndarray, header=None) -> None:
    """Write ``arr`` to ``.npy`` or ``.csv`` atomically. A 1-D array is one CSV column."""
    from .io import atomic_path

    with atomic_path(path) as tmp:
        if _suffix(path) == ".npy":
            with open(tmp, "wb") as fh:
                np.save(fh, arr, allow_pickle=False)
        else:
            with open(tmp, "w", newline="", encoding="utf-8") as fh:
                if header is not None:
                    csv.writer(fh, lineterminator="\n").writerow(header)
                np.savetxt(fh, arr, delimiter=",", fmt="%.17g")


# --------------------------------------------------------------------------------------------
# Progress bar


class Progress:
    """A small progress bar on ``stream`` (carriage returns, redrawn at most 10 times a second)."""

    def __init__(self, total: int, stream, enabled: bool, label: str = "scoring", width: int = 30):
        self.total, self.stream, self.enabled, self.label, self.width = total, stream, enabled, label, width
        self.start = time.perf_counter()
        self._last = -math.inf
        self._drawn = False

    def update(self, done: int) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if done < self.total and now - self._last < 0.1:
            return
        self._last = now
        frac = done / self.total if self.total else 1.0
        filled = int(round(frac * self.width))
        bar = "#" * filled + "-" * (self.width - filled)
        self.stream.write(
            f"\r{self.label} [{bar}] {100 * frac:5.1f}% {done:,}/{self.total:,} rows {now - self.start:6.1f}s"
        )
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False


def _progress_enabled(flag, stream) -> bool:
    if flag is not None:
        return flag
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


# --------------------------------------------------------------------------------------------
# Commands


def _fit_kde(args):
    from .kde._kde import KernelDensity

    return KernelDensity(bandwidth=args.bandwidth, kernel=args.kernel, adaptive=args.adaptive)


# Model type on the command line -> (help, function adding its options, builder from args).
def _add_kde_options(parser):
    from .kde._kernels import KERNELS

    parser.add_argument("--bandwidth", "-b", type=_bandwidth, default="scott", metavar="B",
                        help="a positive number, comma-separated per-feature numbers, or a rule: "
                             f"{', '.join(BANDWIDTH_RULES)} (default: scott)")
    parser.add_argument("--kernel", "-k", choices=KERNELS, default="gaussian", help="kernel (default: gaussian)")
    parser.add_argument("--adaptive", action="store_true", help="Abramson's adaptive bandwidths")


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer; got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer; got {text!r}")
    return value


def _add_gmm_options(parser):
    parser.add_argument("--n-components", "-n", type=_positive_int, default=1, metavar="K",
                        help="number of mixture components (default: 1)")
    parser.add_argument("--covariance-type", choices=("full", "tied", "diag", "spherical"), default="full",
                        help="covariance structure (default: full)")
    parser.add_argument("--n-init", type=_positive_int, default=1, help="EM restarts (default: 1)")
    parser.add_argument("--max-iter", type=_positive_int, default=100, help="EM iterations (default: 100)")
    parser.add_argument("--seed", type=int, default=0, help="random_state (default: 0)")


def _fit_gmm(args):
    from .mixture import GaussianMixture

    return GaussianMixture(n_components=args.n_components, covariance_type=args.covariance_type,
                           n_init=args.n_init, max_iter=args.max_iter, random_state=args.seed)


def _add_normal_options(parser):
    parser.add_argument("--covariance-type", choices=("full", "diag", "spherical"), default="full",
                        help="covariance structure of the multivariate normal (default: full)")


def _fit_normal(args):
    from .parametric import MultivariateNormal

    return MultivariateNormal(covariance_type=args.covariance_type)


FIT_MODELS = {
    "kde": ("kernel density estimate (fastdensity.KernelDensity)", _add_kde_options, _fit_kde),
    "gmm": ("Gaussian mixture fitted by EM (fastdensity.GaussianMixture)", _add_gmm_options, _fit_gmm),
    "normal": ("multivariate normal by maximum likelihood (fastdensity.MultivariateNormal)",
               _add_normal_options, _fit_normal),
}


def _cmd_fit(args, stdout, stderr) -> int:
    from .io import save

    X = read_array(args.data, what="DATA")
    weights = None
    if args.weights is not None:
        weights = read_array(args.weights, what="weights file", mmap=False)
        if weights.shape[1] != 1:
            raise ValueError(f"weights file {args.weights!r} must hold one column; got shape {weights.shape}")
        weights = weights[:, 0]
        if weights.shape[0] != X.shape[0]:
            raise ValueError(
                f"weights file {args.weights!r} has {weights.shape[0]} values but DATA has {X.shape[0]} rows"
            )
    _, _, build = FIT_MODELS[args.model]
    estimator = build(args)
    estimator.fit(X, sample_weight=weights)
    save(estimator, args.output)
    print(f"fitted {type(estimator).__name__} on {X.shape[0]} rows × {X.shape[1]} features; "
          f"wrote {args.output}", file=stdout)
    return 0


def _check_features(estimator, X, path) -> None:
    expected = getattr(estimator, "n_features_in_", None)
    if expected is not None and X.shape[1] != expected:
        raise ValueError(
            f"DATA {path!r} has {X.shape[1]} features (columns) but the model was fitted on {expected}"
        )


def _cmd_score(args, stdout, stderr) -> int:
    from .io import atomic_path, load

    estimator = load(args.model)
    X = read_array(args.data, what="DATA")
    _check_features(estimator, X, args.data)
    m = X.shape[0]
    batch = args.batch_size
    progress = Progress(m, stderr, _progress_enabled(args.progress, stderr))
    as_npy = _suffix(args.output) == ".npy"
    try:
        with atomic_path(args.output) as tmp:
            if as_npy:
                out = None
                for start in range(0, m, batch):
                    stop = min(start + batch, m)
                    result = np.asarray(estimator.score_samples(np.asarray(X[start:stop])))
                    if out is None:
                        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=result.dtype, shape=(m,))
                    out[start:stop] = result
                    progress.update(stop)
                out.flush()
                del out
            else:
                with open(tmp, "w", newline="", encoding="utf-8") as fh:
                    csv.writer(fh, lineterminator="\n").writerow(["log_density"])
                    for start in range(0, m, batch):
                        stop = min(start + batch, m)
                        result = np.asarray(estimator.score_samples(np.asarray(X[start:stop])))
                        np.savetxt(fh, result, fmt="%.17g")
                        progress.update(stop)
    finally:
        progress.close()
    print(f"scored {m} rows; wrote {args.output}", file=stdout)
    return 0


def _cmd_sample(args, stdout, stderr) -> int:
    from .io import load

    estimator = load(args.model)
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
    run_demo(args.output_dir, quick=args.quick, stream=stdout)
    return 0


# --------------------------------------------------------------------------------------------
# The demo


def _standardise(train, test):
    mean, std = train.mean(axis=0), train.std(axis=0)
    return (train - mean) / std, (test - mean) / std


def _format_h(H) -> str:
    """Kernel scales √diag(H): one number for 1-D, a list for 2-D, a range beyond."""
    scales = np.sqrt(np.diag(np.atleast_2d(H)))
    if scales.size == 1:
        return f"{scales[0]:.4g}"
    if scales.size == 2:
        return ", ".join(f"{s:.3g}" for s in scales)
    if np.all(scales == scales[0]):
        return f"{scales[0]:.3g} (each)"
    return f"{scales.min():.3g} .. {scales.max():.3g}"


def _demo_cases(quick: bool):
    """(dataset label, train, test, [(kernel, bandwidth, adaptive)]) for the demo."""
    from .datasets import load_digits_features, load_old_faithful, train_test_split_fixed

    faithful = load_old_faithful()
    train, test = train_test_split_fixed(faithful, test_fraction=0.25, seed=0)
    e_train, e_test = train[:, :1], test[:, :1]
    f_train, f_test = _standardise(train, test)

    digits, _ = load_digits_features()
    d_train, d_test = train_test_split_fixed(digits, test_fraction=0.25, seed=0)
    from sklearn.decomposition import PCA

    n_components = 5
    pca = PCA(n_components=n_components, svd_solver="full").fit(d_train)
    p_train, p_test = _standardise(pca.transform(d_train), pca.transform(d_test))

    rules_1d = [("gaussian", rule, False) for rule in ("scott", "silverman", "isj", "cv", 0.25)]
    rules_nd = [("gaussian", rule, False) for rule in ("scott", "silverman", "cv")]
    if quick:
        cases = [
            ("Old Faithful eruptions (min)", e_train, e_test, rules_1d),
            ("Old Faithful, standardised", f_train, f_test, [("gaussian", "scott", False), ("gaussian", "cv", False)]),
            (f"digits, PCA {n_components}, standardised", p_train, p_test, [("gaussian", "scott", False)]),
        ]
    else:
        cases = [
            ("Old Faithful eruptions (min)", e_train, e_test, rules_1d + [
                ("gaussian", "scott", True),
                ("epanechnikov", "scott", False),
                ("epanechnikov", "cv", False),
                ("exponential", "cv", False),
            ]),
            ("Old Faithful, standardised", f_train, f_test, rules_nd + [
                ("gaussian", 0.3, False),
                ("gaussian", "scott", True),
                ("epanechnikov", "cv", False),
            ]),
            (f"digits, PCA {n_components}, standardised", p_train, p_test, rules_nd + [("gaussian", 0.5, False)]),
            ("digits, PC 1, standardised", p_train[:, :1], p_test[:, :1], rules_1d),
        ]
    return cases, (e_train, e_test, train, test)


def run_demo(output_dir="fastdensity-demo", *, quick: bool = False, stream=None) -> dict:
    """Fit KernelDensity with every bandwidth rule and a few kernels on Old Faithful and the
    digits; print held-out log-likelihoods and throughput to ``stream``; write PNG plots into
    ``output_dir`` when matplotlib is installed. Returns the table as a dict (for tests)."""
    from . import __version__
    from .kde._kde import KernelDensity

    stream = sys.stdout if stream is None else stream

    def say(text=""):
        print(text, file=stream, flush=True)

    say(f"fastdensity {__version__} demo{' (quick)' if quick else ''}: kernel density estimation on data shipped "
        "with the package")
    say("held-out mean log-likelihood per point (train/test split 75/25, seed 0; higher is better)")
    say()
    cases, plot_data = _demo_cases(quick)
    header = f"{'dataset':<32} {'d':>2} {'n_train':>7} {'n_test':>6}  {'kernel':<12} {'bandwidth':<10} " \
             f"{'adaptive':<8} {'fitted h':<16} {'mean log-lik':>12}"
    say(header)
    say("-" * len(header))
    results = {}
    fitted_1d = {}
    for label, train, test, settings in cases:
        for kernel, bandwidth, adaptive in settings:
            bw_text = bandwidth if isinstance(bandwidth, str) else f"{bandwidth:g}"
            try:
                kde = KernelDensity(bandwidth=bandwidth, kernel=kernel, adaptive=adaptive).fit(train)
            except ValueError as exc:
                # A rule that refuses the data (ISJ on rounded values) is a result worth showing.
                say(f"{label:<32} {train.shape[1]:>2} {train.shape[0]:>7} {test.shape[0]:>6}  {kernel:<12} "
                    f"{bw_text:<10} {'yes' if adaptive else 'no':<8} refused: {str(exc).split(':')[0]}")
                continue
            mean_ll = float(np.mean(kde.score_samples(test)))
            results[(label, kernel, bw_text, adaptive)] = mean_ll
            if train.shape[1] == 1 and kernel == "gaussian" and not adaptive:
                fitted_1d[bw_text] = kde
            say(f"{label:<32} {train.shape[1]:>2} {train.shape[0]:>7} {test.shape[0]:>6}  {kernel:<12} "
                f"{bw_text:<10} {'yes' if adaptive else 'no':<8} {_format_h(kde.bandwidth_matrix_):<16} "
                f"{mean_ll:>12.4f}")
    say()
    say("fitted h: the kernel scale(s) √diag(H) of the fitted bandwidth matrix H "
        "(the range over features beyond 2-D).")

    # Throughput of score_samples: n training points × m queries, d = 2.
    n = m = 5_000 if quick else 20_000
    rng = np.random.default_rng(0)
    data = rng.standard_normal((n, 2))
    queries = rng.standard_normal((m, 2))
    kde = KernelDensity(bandwidth=0.5).fit(data)
    kde.score_samples(queries[:10])  # compile / warm up outside the timing
    best = math.inf
    for _ in range(2 if quick else 3):
        t0 = time.perf_counter()
        kde.score_samples(queries)
        best = min(best, time.perf_counter() - t0)
    import numba

    say()
    say(f"throughput: score_samples, gaussian kernel, n = m = {n:,}, d = 2, {numba.get_num_threads()} threads: "
        f"{n * m / best:.3g} pair evaluations/s ({best * 1e3:.1f} ms, best of {2 if quick else 3})")

    try:
        import matplotlib  # noqa: F401
    except ImportError:
        say()
        say("matplotlib is not installed: skipped the plots (pip install matplotlib)")
        return results
    written = _demo_plots(output_dir, fitted_1d, plot_data, cases)
    say()
    for path in written:
        say(f"wrote {path}")
    return results


def _save_figure(fig, path) -> None:
    from .io import atomic_path

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fig.savefig(fh, format="png", dpi=100)


def _demo_plots(output_dir, fitted_1d, plot_data, cases) -> list[str]:
    """PNG plots drawn with the Agg canvas (no pyplot, no global backend change)."""
    from matplotlib.figure import Figure

    from .kde._kde import KernelDensity

    os.makedirs(output_dir, exist_ok=True)
    e_train, e_test, faithful_train, faithful_test = plot_data
    written = []

    # 1-D: a density curve over the histogram of the training data, one panel per rule.
    grid = np.linspace(1.0, 6.0, 500).reshape(-1, 1)
    names = list(fitted_1d)
    ncols = min(3, len(names))
    nrows = math.ceil(len(names) / ncols)
    fig = Figure(figsize=(4.2 * ncols, 3.2 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax, name in zip(axes.ravel(), names):
        kde = fitted_1d[name]
        ax.hist(e_train[:, 0], bins=30, density=True, color="0.85", edgecolor="0.6", label="training data")
        ax.plot(grid[:, 0], np.exp(kde.score_samples(grid)), color="C0", lw=1.8, label="density")
        ax.plot(e_test[:, 0], np.full(len(e_test), -0.02), "|", color="C3", ms=8, label="held-out points")
        ax.set_title(f"bandwidth={name} (h = {_format_h(kde.bandwidth_matrix_)})", fontsize=10)
        ax.set_xlabel("eruption duration (min)")
        ax.set_ylabel("density")
    for ax in axes.ravel()[len(names):]:
        ax.set_visible(False)
    axes[0, 0].legend(fontsize=8, loc="upper left")
    fig.suptitle("Old Faithful eruptions: gaussian KDE with each bandwidth rule")
    path = os.path.join(output_dir, "old_faithful_1d_rules.png")
    _save_figure(fig, path)
    written.append(path)

    # 2-D: contours of the Scott-bandwidth KDE in the original units.
    kde2 = KernelDensity(bandwidth="scott").fit(faithful_train)
    x = np.linspace(1.0, 6.0, 120)
    y = np.linspace(35.0, 105.0, 120)
    xx, yy = np.meshgrid(x, y)
    zz = np.exp(kde2.score_samples(np.column_stack([xx.ravel(), yy.ravel()]))).reshape(xx.shape)
    fig = Figure(figsize=(6.4, 4.8), layout="constrained")
    ax = fig.subplots()
    filled = ax.contourf(xx, yy, zz, levels=12, cmap="viridis")
    fig.colorbar(filled, ax=ax, label="density")
    ax.scatter(faithful_train[:, 0], faithful_train[:, 1], s=6, c="white", edgecolors="k", linewidths=0.3,
               label="training data")
    ax.scatter(faithful_test[:, 0], faithful_test[:, 1], s=10, c="C3", marker="x", linewidths=0.8,
               label="held-out points")
    ax.set_xlabel("eruption duration (min)")
    ax.set_ylabel("waiting time (min)")
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title("Old Faithful: 2-D gaussian KDE, bandwidth='scott' (full matrix)")
    path = os.path.join(output_dir, "old_faithful_2d_contour.png")
    _save_figure(fig, path)
    written.append(path)
    return written


# --------------------------------------------------------------------------------------------
# Parser and entry point


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = _ArgumentParser(
        prog=PROG,
        description="Fast density estimation: fit, score and sample models, or run the demo.",
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
                              description="Fit a model to DATA (.npy, .npz or .csv) and save it as a model file.")
    models = fit.add_subparsers(dest="model", metavar="MODEL_TYPE", required=True)
    for name, (help_text, add_options, _) in FIT_MODELS.items():
        sub = models.add_parser(name, help=help_text, description=f"Fit a {help_text}.")
        sub.add_argument("data", type=_data_path, metavar="DATA", help="training data: .npy, .npz or .csv")
        sub.add_argument("-o", "--output", required=True, metavar="MODEL",
                         help="model file to write (exactly this path; .npz recommended)")
        sub.add_argument("--weights", type=_data_path, metavar="FILE",
                         help="sample weights, one per row of DATA (.npy, .npz or .csv)")
        add_options(sub)
        sub.set_defaults(func=_cmd_fit)

    score = commands.add_parser("score", help="write the log density of each row of DATA",
                                description="Write the log density of each row of DATA, computed in batches "
                                            "(a .npy DATA file is memory-mapped, so files larger than memory work).")
    score.add_argument("model", metavar="MODEL", help="model file written by 'fastdensity fit'")
    score.add_argument("data", type=_data_path, metavar="DATA", help="points to score: .npy, .npz or .csv")
    score.add_argument("-o", "--output", required=True, type=_output_path, metavar="OUT",
                       help="log densities: .npy or .csv")
    score.add_argument("--batch-size", type=_positive_int, default=DEFAULT_BATCH_SIZE, metavar="N",
                       help=f"rows per batch (default: {DEFAULT_BATCH_SIZE})")
    group = score.add_mutually_exclusive_group()
    group.add_argument("--progress", dest="progress", action="store_true", default=None,
                       help="show a progress bar on stderr even when it is not a terminal")
    group.add_argument("--no-progress", dest="progress", action="store_false",
                       help="never show a progress bar (default: only on a terminal)")
    score.set_defaults(func=_cmd_score)

    sample = commands.add_parser("sample", help="draw samples from a model",
                                 description="Draw N samples from a fitted model.")
    sample.add_argument("model", metavar="MODEL", help="model file written by 'fastdensity fit'")
    sample.add_argument("-n", "--n-samples", type=_positive_int, required=True, metavar="N",
                        help="number of samples")
    sample.add_argument("-o", "--output", required=True, type=_output_path, metavar="OUT",
                        help="samples: .npy or .csv")
    sample.add_argument("--seed", type=_seed, default=None, metavar="S", help="random seed (default: fresh entropy)")
    sample.set_defaults(func=_cmd_sample)
    return parser


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror and exc.filename is not None:
        return f"cannot access {os.fspath(exc.filename)!r}: {exc.strerror}"
    text = str(exc) or type(exc).__name__
    return " ".join(text.split())


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
