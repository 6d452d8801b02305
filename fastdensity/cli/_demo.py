"""``fastdensity demo``: the main job, on data shipped with the package.

Kernel density estimates with every bandwidth rule on Old Faithful and scikit-learn's digits, a
table of held-out log-likelihood, the engine's throughput, a model comparison, a VAE and a GAN
on the digits with their sample-quality metrics (``_demo_generative.py``; needs torch), and PNG
plots when matplotlib is installed (imported here, lazily: ``import fastdensity`` never imports it).
"""

from __future__ import annotations

import importlib.util
import math
import os
import sys
import time

import numpy as np

from ._files import save_figure

ERUPTIONS = "Old Faithful eruptions (min)"

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
    from ..datasets import load_digits_features, load_old_faithful, train_test_split_fixed

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

    rules_1d = [("gaussian", rule, False) for rule in ("scott", "silverman", "isj", "sj", "plugin", "cv", 0.25)]
    rules_nd = [("gaussian", rule, False) for rule in ("scott", "silverman", "plugin", "cv")]
    if quick:
        cases = [
            (ERUPTIONS, e_train, e_test, rules_1d),
            ("Old Faithful, standardised", f_train, f_test, [("gaussian", "scott", False), ("gaussian", "cv", False)]),
            (f"digits, PCA {n_components}, standardised", p_train, p_test, [("gaussian", "scott", False)]),
        ]
    else:
        cases = [
            (ERUPTIONS, e_train, e_test, rules_1d + [
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


class _Clock:
    """Wall and CPU time (this process, all threads) of each part of the demo, printed as it ends."""

    def __init__(self, say):
        self.say, self.parts = say, []
        self.start_wall, self.start_cpu = time.perf_counter(), time.process_time()
        self.wall, self.cpu = self.start_wall, self.start_cpu

    def done(self, part):
        wall, cpu = time.perf_counter(), time.process_time()
        self.parts.append((part, wall - self.wall, cpu - self.cpu))
        self.say(f"[{part}: {wall - self.wall:.1f} s wall, {cpu - self.cpu:.1f} s CPU]")
        self.wall, self.cpu = wall, cpu

    def total(self):
        return time.perf_counter() - self.start_wall, time.process_time() - self.start_cpu


def run_demo(output_dir="fastdensity-demo", *, quick: bool = False, stream=None) -> dict:
    """Fit KernelDensity with every bandwidth rule and a few kernels on Old Faithful and the
    digits; print held-out log-likelihoods and throughput to ``stream``; write PNG plots into
    ``output_dir`` when matplotlib is installed. Each part prints its wall and CPU time; the demo
    ends with a summary of what the plots show and where they are. Returns the table as a dict
    (for tests; ``results["timings"]`` holds (part, wall s, CPU s) per part)."""
    from .._version import __version__
    from ..kde._kde import KernelDensity

    stream = sys.stdout if stream is None else stream

    def say(text=""):
        print(text, file=stream, flush=True)

    clock = _Clock(say)

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
            if label == ERUPTIONS and kernel == "gaussian" and not adaptive:
                fitted_1d[bw_text] = kde  # the 1-D plot shows the eruption-time fits
            say(f"{label:<32} {train.shape[1]:>2} {train.shape[0]:>7} {test.shape[0]:>6}  {kernel:<12} "
                f"{bw_text:<10} {'yes' if adaptive else 'no':<8} {_format_h(kde.bandwidth_matrix_):<16} "
                f"{mean_ll:>12.4f}")
    say()
    say("fitted h: the kernel scale(s) √diag(H) of the fitted bandwidth matrix H "
        "(the range over features beyond 2-D).")
    clock.done("KDE table")

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
    clock.done("throughput")

    mixtures = _model_comparison(say, cases, quick)
    clock.done("model comparison")

    have_matplotlib = importlib.util.find_spec("matplotlib") is not None
    from ._demo_generative import run_generative_demo

    results["generative"] = run_generative_demo(say, output_dir, quick=quick, plots=have_matplotlib,
                                                clock=clock)
    if have_matplotlib:
        written = _demo_plots(output_dir, fitted_1d, plot_data, cases)
        written.append(_mixture_plot(output_dir, *mixtures["Old Faithful, standardised"]))
        say()
        for path in written:
            say(f"wrote {path}")
        clock.done("plots")
    results["timings"] = list(clock.parts)
    _summary(say, clock, output_dir, have_matplotlib, results["generative"])
    return results


# What each plot shows, by file name (the summary lists those that were written).
_PLOTS = {
    "old_faithful_1d_rules.png": "the eruption-time KDE with each bandwidth rule over the histogram",
    "old_faithful_2d_contour.png": "contours of the 2-D Scott-bandwidth KDE with the training and held-out points",
    "old_faithful_gmm_clusters.png": "the BIC-chosen Gaussian mixture's clusters and 1σ/2σ ellipses",
    "digits_samples.png": "test digits next to VAE and GAN samples",
    "digits_training_curves.png": "the VAE's loss and validation IWAE, and the GAN's losses, per epoch",
}


def _summary(say, clock, output_dir, have_matplotlib, generative):
    wall, cpu = clock.total()
    say()
    say(f"summary: the demo took {wall:.1f} s wall, {cpu:.1f} s CPU (this process, all threads); per part: "
        + ", ".join(f"{part} {w:.1f} s" for part, w, _ in clock.parts))
    if have_matplotlib:
        say(f"plots in {os.path.abspath(output_dir)}:")
        for name, what in _PLOTS.items():
            if os.path.exists(os.path.join(output_dir, name)):
                say(f"  {name}: {what}")
    else:
        say("matplotlib is not installed: skipped the plots (pip install matplotlib)")
    table = {key[1]: row for key, row in generative.items() if isinstance(key, tuple) and key[0] == "grey-level"}
    gan = table.get("GAN samples")
    kde = next((row for label, row in table.items() if label.startswith("KDE samples")), None)
    if gan is not None and kde is not None:
        say(f"GAN vs KDE samples on the grey-level digits: FID {gan['fid']:.2f} vs {kde['fid']:.2f}, recall "
            f"{gan['recall']:.3f} vs {kde['recall']:.3f} (lower FID, higher recall are better)")


def _demo_plots(output_dir, fitted_1d, plot_data, cases) -> list[str]:
    """PNG plots drawn with the Agg canvas (no pyplot, no global backend change)."""
    from matplotlib.figure import Figure

    from ..kde._kde import KernelDensity

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
    save_figure(fig, path)
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
    save_figure(fig, path)
    written.append(path)
    return written


# --------------------------------------------------------------------------------------------
# Parser and entry point




def _model_comparison(say, cases, quick):
    """Held-out log-likelihood of KDE vs kNN vs a Gaussian mixture vs one Gaussian, per dataset.

    Returns {dataset label: (fitted mixture, training data)} for the cluster plot.
    """
    from ..kde._kde import KernelDensity
    from ..mixture import select_n_components
    from ..parametric import MultivariateNormal, compare

    try:
        from ..knn import KNNDensity
    except ImportError:  # kNN density arrives with its own module
        KNNDensity = None

    mixtures = {}
    for label, train, test, _ in cases:
        if train.shape[1] < 2:
            continue
        gmm, _ = select_n_components(train, n_components=range(1, 5 if quick else 9),
                                     covariance_types=("full",) if quick else ("full", "diag"),
                                     criterion="bic", random_state=0, n_init=1 if quick else 3)
        models = {
            "KDE, scott": KernelDensity(bandwidth="scott").fit(train),
            "KDE, cv": KernelDensity(bandwidth="cv").fit(train),
            f"GMM, BIC-chosen ({gmm.n_components} {gmm.covariance_type})": gmm,
            "one Gaussian": MultivariateNormal().fit(train),
        }
        mixtures[label] = (gmm, train)
        say()
        say(f"model comparison on {label} (d = {train.shape[1]}): held-out mean log-likelihood, "
            "higher is better; AIC/BIC on the training data, lower is better")
        say(str(compare(models, train, test)))
        if KNNDensity is not None:
            # k / (n V_d r_k^d) does not integrate to 1 (its integral diverges), so its mean log score
            # is not a log-likelihood and is not ranked with the models above.
            knn = KNNDensity(n_neighbors=10).fit(train)
            score = float(np.mean(knn.score_samples(test)))
            say(f"kNN density, k = 10, apart: held-out mean log score {score:.4f}; not normalised (its integral "
                "diverges), so not a log-likelihood and not comparable with the table above: use it to rank "
                "points, not models")
    return mixtures


def _mixture_plot(output_dir, gmm, X):
    """Old Faithful coloured by GMM cluster, with each component's 1σ and 2σ covariance ellipses."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Ellipse

    labels = gmm.predict(X)
    fig = Figure(figsize=(6.0, 5.0), layout="constrained")
    ax = fig.subplots()
    ax.scatter(X[:, 0], X[:, 1], c=labels, cmap="tab10", vmin=0, vmax=9, s=12, alpha=0.8)
    covariances = _full_covariances(gmm)
    for k in range(gmm.n_components):
        values, vectors = np.linalg.eigh(covariances[k])
        angle = math.degrees(math.atan2(vectors[1, -1], vectors[0, -1]))
        for n_sigma in (1.0, 2.0):
            width, height = 2.0 * n_sigma * np.sqrt(values[::-1])
            ax.add_patch(Ellipse(gmm.means_[k], width, height, angle=angle, fill=False,
                                 color=f"C{k}", lw=1.5 if n_sigma == 1.0 else 0.8))
    ax.set_xlabel("eruption duration (standardised)")
    ax.set_ylabel("waiting time (standardised)")
    ax.set_title(f"Old Faithful: {gmm.n_components}-component Gaussian mixture (1σ, 2σ ellipses)")
    path = os.path.join(output_dir, "old_faithful_gmm_clusters.png")
    save_figure(fig, path)
    return path


def _full_covariances(gmm):
    """(k, d, d) covariance matrices whatever the mixture's covariance type."""
    k, d = gmm.means_.shape
    cov = np.asarray(gmm.covariances_)
    if gmm.covariance_type == "full":
        return cov
    if gmm.covariance_type == "tied":
        return np.broadcast_to(cov, (k, d, d))
    if gmm.covariance_type == "diag":
        return np.stack([np.diag(c) for c in cov])
    return np.stack([np.eye(d) * c for c in cov])
