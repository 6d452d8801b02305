"""The generative part of ``fastdensity demo``: a VAE and a GAN on the 8×8 digits, and their metrics.

Both models train on the CPU on scikit-learn's shipped digits (the fixed train / validation / test
split of :func:`fastdensity.datasets.load_digits`); their samples are scored against the test
digits through the shipped digits CNN (FID, KID, precision / recall / density / coverage, Inception
Score), next to two baselines that need no training: the validation digits themselves (what a
perfect model scores on this many samples) and draws from a Gaussian KDE of the training digits.
The VAE is also scored by held-out log-likelihood (the importance-weighted bound, K = 1000). Each
part prints its wall and CPU time.
torch is imported here only; without it the section says so and is skipped.
"""

from __future__ import annotations

import os
import time

import numpy as np

# Settings chosen so that the section takes about a minute and a half on two cores (quick: a few seconds).
VAE_SETTINGS = {}  # the defaults: test IWAE −16.58 ± 0.05 nats over 5 seeds (bench/results/generative-vae-cpu-2core-2026-11-24.txt)
VAE_SETTINGS_QUICK = {"latent_dim": 8, "max_epochs": 10}
# GAN(architecture="conv") with its defaults (hinge loss, spectral norm, EMA generator, G/D learning rates
# 7e-4/2.8e-3, batch 64, the last 30 % of steps decaying) for 3000 steps: 69 s on one idle core;
# seed 0 (the demo's) scores FID 6.8. FID, recall and times per seed, and the ablation behind the
# defaults: bench/results/gan-digits-cpu-2026-12-03.txt (bench/generative_gan_digits.py).
GAN_SETTINGS = {"architecture": "conv", "n_steps": 3000}
GAN_SETTINGS_QUICK = {"architecture": "conv", "n_steps": 20}
# One torch thread for the GAN: its small convolutions gain little from a second thread, and on a
# machine whose cores are busy a second thread made a 40-step fit 10× slower (48.8 s of CPU against 4.9 s,
# 2 cores at load average 10, 2026-12-03).
GAN_THREADS = 1
KDE_BANDWIDTH = 0.15
N_SAMPLES = 1000
SEED = 0


def run_generative_demo(say, output_dir, *, quick: bool, plots: bool, clock=None) -> dict:
    """Train, score and plot; print with ``say``; return {row label: metrics dict} (for tests).
    ``clock.done(part)`` (the demo's :class:`fastdensity._demo._Clock`) is called after each part."""
    def done(part):
        if clock is not None:
            clock.done(part)

    try:
        import torch
    except ImportError:
        say()
        say("PyTorch is not installed: skipped the VAE and GAN on digits (pip install torch)")
        return {}

    from ..datasets import load_digits
    from ..generative import GAN, VAE

    say()
    say("generative models on the 8×8 digits (train 1257 / validation 180 / test 360 images; "
        f"{torch.get_num_threads()} torch threads)")
    binary = {s: load_digits(binarize=True, split=s) for s in ("train", "validation", "test")}
    grey = {s: load_digits(split=s) for s in ("train", "validation", "test")}

    t0 = time.perf_counter()
    vae = VAE(**(VAE_SETTINGS_QUICK if quick else VAE_SETTINGS), random_state=SEED)
    vae.fit(binary["train"], validation_data=binary["validation"])
    vae_time = time.perf_counter() - t0
    iwae = float(np.mean(vae.score_samples(binary["test"], n_importance=1000, random_state=SEED)))
    elbo = float(np.mean(vae.elbo(binary["test"], random_state=SEED)))
    say(f"VAE (bernoulli, {vae.architecture}, latent {vae.latent_dim}) on thresholded digits: "
        f"{len(vae.loss_history_)} epochs in {vae_time:.1f} s; test log-likelihood (IWAE, K = 1000) "
        f"{iwae:.2f} nats per image ({-iwae / (64 * np.log(2)):.3f} bits per pixel), test ELBO {elbo:.2f}")
    done("VAE")

    t0, c0 = time.perf_counter(), time.process_time()
    with _torch_threads(torch, GAN_THREADS):
        gan = GAN(**(GAN_SETTINGS_QUICK if quick else GAN_SETTINGS), random_state=SEED).fit(grey["train"])
    gan_time, gan_cpu = time.perf_counter() - t0, time.process_time() - c0
    p = gan._resolved()
    say(f"GAN ({gan.architecture}, {p['loss']} loss, spectral norm {'on' if p['spectral_norm'] else 'off'}, "
        f"EMA {p['ema_decay']:g}, DiffAugment {','.join(p['augment']) or 'none'}) on grey-level digits: "
        f"{gan.n_steps_} generator steps in {gan_time:.1f} s wall, {gan_cpu:.1f} s CPU, {GAN_THREADS} torch thread")
    done("GAN")

    from ..kde._kde import KernelDensity

    # A fixed bandwidth: three pixels are 0 in every training digit, so the data-driven rules refuse.
    kde = KernelDensity(bandwidth=KDE_BANDWIDTH).fit(grey["train"].reshape(len(grey["train"]), -1))
    kde_draws = np.clip(kde.sample(N_SAMPLES, random_state=SEED), 0.0, 1.0).reshape(-1, 8, 8)
    rows = {
        ("thresholded", "validation digits (reference)"): binary["validation"],
        ("thresholded", "VAE samples"): np.asarray(vae.sample(N_SAMPLES, random_state=SEED, mean=False)),
        ("grey-level", "validation digits (reference)"): grey["validation"],
        ("grey-level", "GAN samples"): np.asarray(gan.sample(N_SAMPLES, random_state=SEED)),
        ("grey-level", f"KDE samples (h = {KDE_BANDWIDTH})"): kde_draws.astype(np.float32),
    }
    results = _metrics_table(say, rows, {"thresholded": binary["test"], "grey-level": grey["test"]})
    results["vae_test_iwae"] = iwae
    done("sample metrics")
    if plots:
        for path in _plots(output_dir, vae, gan, grey, binary):
            say(f"wrote {path}")
        done("digit plots")
    return results


class _torch_threads:
    """torch's intra-op thread count set for a block and restored after it."""

    def __init__(self, torch, n):
        self.torch, self.n = torch, n

    def __enter__(self):
        self.old = self.torch.get_num_threads()
        self.torch.set_num_threads(self.n)

    def __exit__(self, *exc):
        self.torch.set_num_threads(self.old)


def _metrics_table(say, rows, references) -> dict:
    from ..metrics import class_probabilities, features, fid, inception_score, kid, prdc

    say()
    say("sample quality against the 360 test digits, on the shipped digits CNN's 64-d features "
        "(FID, KID: lower is better; the rest: higher is better, IS at most 10)")
    header = f"{'digits':<12} {'samples':<30} {'n':>5} {'FID':>8} {'KID':>8} {'prec.':>6} {'recall':>6} " \
             f"{'density':>7} {'cover.':>6} {'IS':>5}"
    say(header)
    say("-" * len(header))
    ref_features = {name: features(x) for name, x in references.items()}
    results = {}
    for (kind, label), samples in rows.items():
        f_real, f_fake = ref_features[kind], features(samples)
        subset = min(len(f_real), len(f_fake)) // 2  # subsets smaller than the sets, so that they differ
        scores = prdc(f_real, f_fake, nearest_k=5)
        row = {
            "fid": float(fid(f_real, f_fake)),
            "kid": float(kid(f_real, f_fake, subsets=50, subset_size=subset, random_state=SEED).mean),
            **{k: float(scores[k]) for k in ("precision", "recall", "density", "coverage")},
            "inception_score": float(inception_score(class_probabilities(samples), splits=1).mean),
        }
        results[(kind, label)] = row
        say(f"{kind:<12} {label:<30} {len(samples):>5} {row['fid']:>8.2f} {row['kid']:>8.3g} "
            f"{row['precision']:>6.3f} {row['recall']:>6.3f} {row['density']:>7.3f} {row['coverage']:>6.3f} "
            f"{row['inception_score']:>5.2f}")
    return results


def _image_grid(ax, images, title, rows=8, cols=8):
    images = np.asarray(images)[: rows * cols].reshape(-1, 8, 8)
    # light grey separators: white would merge with the digits' background, black with their ink
    canvas = np.full((rows * 9 - 1, cols * 9 - 1), 0.2)
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        canvas[r * 9:r * 9 + 8, c * 9:c * 9 + 8] = img
    ax.imshow(canvas, cmap="gray_r", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_title(title, fontsize=10)
    ax.set_axis_off()


def _plots(output_dir, vae, gan, grey, binary) -> list[str]:
    from matplotlib.figure import Figure

    from ._files import save_figure

    os.makedirs(output_dir, exist_ok=True)
    written = []
    fig = Figure(figsize=(12, 4.4), layout="constrained")
    axes = fig.subplots(1, 3)
    _image_grid(axes[0], grey["test"], "test digits")
    _image_grid(axes[1], vae.sample(64, random_state=SEED), "VAE samples (decoder means)")
    _image_grid(axes[2], np.asarray(gan.sample(64, random_state=SEED)), "GAN samples (EMA generator)")
    path = os.path.join(output_dir, "digits_samples.png")
    save_figure(fig, path)
    written.append(path)

    fig = Figure(figsize=(11, 3.8), layout="constrained")
    ax_vae, ax_gan = fig.subplots(1, 2)
    for name, values in sorted(vae.history_.items()):
        if name in ("train_loss", "val_loss", "val_iwae"):
            ax_vae.plot(np.arange(1, len(values) + 1), values, label=name)
    ax_vae.set_xlabel("epoch")
    ax_vae.set_ylabel("nats per image")
    ax_vae.set_title("VAE: negative ELBO (loss) and validation −IWAE")
    ax_vae.legend(fontsize=8)
    for name, values in sorted(gan.loss_history_.items()):
        ax_gan.plot(np.arange(1, len(values) + 1), values, label=name)
    ax_gan.set_xlabel("epoch")
    ax_gan.set_title("GAN losses")
    ax_gan.legend(fontsize=8)
    path = os.path.join(output_dir, "digits_training_curves.png")
    save_figure(fig, path)
    written.append(path)
    return written
