"""Sample quality of ``GAN(architecture="conv")`` on the shipped 8×8 digits, as the demo scores it.

Usage (from the repository root)::

    python bench/generative_gan_digits.py --set n_steps=3000 --jobs 3   # the demo's GAN, seeds 0-2
    python bench/generative_gan_digits.py --set ema_decay=0 --seeds 0   # one change
    python bench/generative_gan_digits.py --ablation --seeds 0     # each choice switched off in turn

Each run fits a GAN on the 1,257 training digits of :func:`fastdensity.datasets.load_digits`
(``random_state`` = the seed), draws 1,000 samples (``random_state`` = the seed) and scores them
against the 360 test digits on the shipped digits CNN's 64-d features exactly as ``fastdensity
demo`` does (FID; KID over 50 subsets of 180; precision / recall / density / coverage with k = 5).
Each run prints the CPU time (``time.process_time`` of this process: with one torch thread, what a
quiet core would take) and the wall time of the fit (which on a shared machine also counts the time
other jobs held the cores), and the machine's load average at the start.
"""

from __future__ import annotations

import argparse
import ast
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

N_SAMPLES = 1000
# GAN(architecture="conv") with its defaults (the demo adds n_steps=3000); the ablation changes one entry at a time.
BASE = {"architecture": "conv"}
ABLATION = [
    ("no EMA (ema_decay=0)", {"ema_decay": 0.0}),
    ("DiffAugment trans.+cutout", {"augment": "translation,cutout"}),
    ("DiffAugment translation", {"augment": "translation"}),
    ("non-saturating loss", {"loss": "non_saturating"}),
    ("no spectral norm", {"spectral_norm": False}),
    ("R1, gamma = 0.1", {"r1_weight": 0.1}),
    ("one learning rate, 5e-4", {"d_learning_rate": 5e-4}),
    ("no lr decay", {"decay_fraction": 0.0}),
]


def run(job):
    import torch

    from fastdensity.datasets import load_digits
    from fastdensity.generative import GAN
    from fastdensity.metrics import features, fid, kid, prdc

    params, seed, threads = job
    torch.set_num_threads(threads)
    train, test = load_digits(split="train"), load_digits(split="test")
    c0, w0 = time.process_time(), time.perf_counter()
    gan = GAN(random_state=seed, progress=False, **params).fit(train)
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    samples = np.asarray(gan.sample(N_SAMPLES, random_state=seed))
    f_real, f_fake = features(test), features(samples)
    scores = prdc(f_real, f_fake, nearest_k=5)
    return {"fid": float(fid(f_real, f_fake)),
            "kid": float(kid(f_real, f_fake, subsets=50, subset_size=180, random_state=0).mean),
            **{k: float(scores[k]) for k in ("precision", "recall", "density", "coverage")},
            "cpu": cpu, "wall": wall, "steps": gan.n_steps_}


def parse_set(items):
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = value
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="change a GAN parameter")
    parser.add_argument("--ablation", action="store_true", help="also each row of ABLATION")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per fit (default 1)")
    parser.add_argument("--jobs", type=int, default=1, help="fits at a time (default 1)")
    args = parser.parse_args(argv)
    import torch

    base = {**BASE, **parse_set(args.set)}
    configs = [("settings", base)]
    if args.ablation:
        configs += [(label, {**base, **change}) for label, change in ABLATION]
    print(f"# fastdensity GAN on the shipped digits, {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, "
          f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, {args.threads} torch "
          f"thread(s) per fit, {args.jobs} fit(s) at a time, load average at start "
          f"{os.getloadavg()[0]:.1f}")
    print(f"# base settings: {base}; {N_SAMPLES} samples against the 360 test digits; seeds {args.seeds}")
    print(f"# cpu: process CPU seconds of the fit; wall: its wall seconds (includes other jobs' share)")
    print(f"{'settings':<28} {'FID':>6} {'KID':>7} {'prec':>5} {'rec':>5} {'dens':>5} {'cov':>5} "
          f"{'cpu s':>6} {'wall s':>6}  per seed FID/recall")
    jobs = [(params, seed, args.threads) for _, params in configs for seed in args.seeds]
    with ProcessPoolExecutor(args.jobs) as pool:
        results = list(pool.map(run, jobs))
    for i, (label, _) in enumerate(configs):
        rows = results[i * len(args.seeds):(i + 1) * len(args.seeds)]
        mean = {k: np.mean([r[k] for r in rows]) for k in rows[0]}
        per_seed = "  ".join(f"{r['fid']:.1f}/{r['recall']:.2f}" for r in rows)
        print(f"{label:<28} {mean['fid']:>6.2f} {mean['kid']:>7.4f} {mean['precision']:>5.3f} "
              f"{mean['recall']:>5.3f} {mean['density']:>5.3f} {mean['coverage']:>5.3f} {mean['cpu']:>6.1f} "
              f"{mean['wall']:>6.1f}  {per_seed}", flush=True)
        for seed, r in zip(args.seeds, rows):
            print(f"#   seed {seed}: FID {r['fid']:.2f}  KID {r['kid']:.4f}  precision {r['precision']:.3f}  "
                  f"recall {r['recall']:.3f}  density {r['density']:.3f}  coverage {r['coverage']:.3f}  "
                  f"{r['steps']} steps, cpu {r['cpu']:.1f} s, wall {r['wall']:.1f} s")


if __name__ == "__main__":
    main()
