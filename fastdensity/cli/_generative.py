"""``fastdensity train vae|gan`` and ``fastdensity evaluate``: the generative-model commands.

::

    fastdensity train vae DATA -o DIR [--epochs N] [--batch-size N] [--latent-dim D] [--architecture A]
                                     [--likelihood L] [--beta B] [--validation-fraction F] [--seed S]
                                     [--resume] [--n-samples N] [--device DEV] [--progress | --no-progress]
    fastdensity train gan DATA -o DIR [--steps N | --epochs N] [--loss L] [--pack P] [--[no-]spectral-norm]
                                      [--rejection-sampling] ...
    fastdensity evaluate REAL FAKE [--features digits|none|PATH] [--nearest-k K] [--kid-subsets N]
                                   [--kid-subset-size N] [--seed S] [--json OUT]

``train`` writes into DIR: ``checkpoints/checkpoint.pt`` (the Trainer's atomic checkpoint, loaded with
``weights_only=True``; ``--resume`` continues from it), ``config.json`` (the command's settings, so
that ``--resume`` can refuse a different model), ``history.csv`` (per-epoch losses),
``samples.npy`` (``--n-samples`` draws in the data's shape), for a VAE ``vae.pt``
(:meth:`fastdensity.generative.VAE.load`) and, with matplotlib, ``training.png``.

``evaluate`` reads two arrays of images ((n, h, w) or (n, c, h, w) in [0, 1]) or of features
((n, d)), turns images into features (``--features digits``: the shipped 8×8-digits CNN;
``PATH``: the FID Inception-v3 with weights from that file; ``none``: the arrays already are
features) and prints FID, KID and precision / recall / density / coverage.
torch is imported only by these commands.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import math
import os

import numpy as np

from ._argtypes import data_path, fraction, positive_float, positive_int, seed

GENERATIVE_MODELS = ("vae", "gan")
CONFIG_NAME = "config.json"
CHECKPOINT_DIR = "checkpoints"


def add_train_parser(commands) -> None:
    """Register ``train vae`` and ``train gan`` on the CLI's sub-command parser."""
    train = commands.add_parser("train", help="train a VAE or a GAN on DATA (needs torch)",
                                description="Train a VAE or a GAN (PyTorch) on DATA with checkpoints, resume "
                                            "and a progress bar; write samples and the loss history into DIR.")
    models = train.add_subparsers(dest="model", metavar="MODEL_TYPE", required=True)
    for name in GENERATIVE_MODELS:
        sub = models.add_parser(name, help=f"train a {name.upper()}", description=f"Train a {name.upper()}.")
        sub.add_argument("data", type=data_path, metavar="DATA",
                         help="training data: .npy or .npz of rows (n, d) or images (n, h, w) / (n, c, h, w) "
                              "in [0, 1] (or .csv rows)")
        sub.add_argument("-o", "--output-dir", required=True, metavar="DIR", help="folder for checkpoints and results")
        sub.add_argument("--architecture", choices=("mlp", "conv") if name == "vae" else ("mlp", "dcgan", "conv"),
                         default="mlp", help="network family (default: mlp)")
        sub.add_argument("--latent-dim", type=positive_int, default=None, metavar="D",
                         help="latent dimension (default: the model's)")
        sub.add_argument("--batch-size", type=positive_int, default=None, metavar="N",
                         help="batch size (default: the model's)")
        sub.add_argument("--learning-rate", type=positive_float, default=None, metavar="LR",
                         help="Adam step size (default: the model's)")
        sub.add_argument("--seed", type=seed, default=0, metavar="S", help="random_state (default: 0)")
        sub.add_argument("--device", default=None, metavar="DEV", help="torch device, e.g. cpu or cuda (default: cpu)")
        sub.add_argument("--resume", action="store_true",
                         help="continue from DIR/checkpoints (same settings as the interrupted run)")
        sub.add_argument("--n-samples", type=positive_int, default=1000, metavar="N",
                         help="samples to write to DIR/samples.npy after training (default: 1000)")
        group = sub.add_mutually_exclusive_group()
        group.add_argument("--progress", dest="progress", action="store_true", default=None,
                           help="show the progress bar even when stderr is not a terminal")
        group.add_argument("--no-progress", dest="progress", action="store_false", help="never show it")
        if name == "vae":
            sub.add_argument("--epochs", type=positive_int, default=None, metavar="N",
                             help="maximum epochs (default: the model's)")
            sub.add_argument("--likelihood", choices=("bernoulli", "gaussian", "categorical"), default="bernoulli",
                             help="decoder likelihood (default: bernoulli)")
            sub.add_argument("--beta", type=positive_float, default=1.0, help="weight of the KL term (default: 1)")
            sub.add_argument("--validation-fraction", type=fraction, default=0.1, metavar="F",
                             help="rows held out for early stopping (default: 0.1; 0 trains on all)")
        else:
            steps = sub.add_mutually_exclusive_group()
            steps.add_argument("--steps", type=positive_int, default=None, metavar="N",
                               help="generator steps (default: the model's)")
            steps.add_argument("--epochs", type=positive_int, default=None, metavar="N",
                               help="passes over the data instead of --steps")
            sub.add_argument("--loss", choices=("non_saturating", "wgan_gp", "hinge"), default=None,
                             help="GAN loss (default: the architecture's: hinge for conv, else non_saturating)")
            sub.add_argument("--pack", type=positive_int, default=1, help="PacGAN packing degree (default: 1)")
            sub.add_argument("--spectral-norm", action=argparse.BooleanOptionalAction, default=None,
                             help="spectral normalisation in the discriminator (default: the architecture's: "
                                  "on for conv, else off)")
            sub.add_argument("--rejection-sampling", action="store_true",
                             help="train a density-ratio classifier after the GAN and draw samples.npy by "
                                  "discriminator rejection sampling (fewer samples off the data)")
            sub.add_argument("--ratio-steps", type=positive_int, default=None, metavar="N",
                             help="training steps of that classifier (default: the model's)")
        sub.set_defaults(func=cmd_train)


def add_evaluate_parser(commands) -> None:
    """Register ``evaluate`` on the CLI's sub-command parser."""
    evaluate = commands.add_parser("evaluate", help="FID, KID and precision/recall/density/coverage of FAKE vs REAL",
                                   description="Compare generated samples FAKE with real samples REAL: FID, KID and "
                                               "precision, recall, density and coverage, on features.")
    evaluate.add_argument("real", type=data_path, metavar="REAL", help="real images or features (.npy, .npz, .csv)")
    evaluate.add_argument("fake", type=data_path, metavar="FAKE", help="generated images or features")
    evaluate.add_argument("--features", default="auto", metavar="EXTRACTOR",
                          help="'digits' (the shipped 8×8-digits CNN; needs torch), 'none' (the inputs are "
                               "features), a path to FID Inception-v3 weights (pt_inception-2015-12-05-*.pth), "
                               "or 'auto' (default: digits for 8×8 images, none for 2-D arrays)")
    evaluate.add_argument("--nearest-k", type=positive_int, default=5, metavar="K",
                          help="k of precision/recall/density/coverage (default: 5)")
    evaluate.add_argument("--kid-subsets", type=positive_int, default=100, metavar="N", help="KID subsets (default: 100)")
    evaluate.add_argument("--kid-subset-size", type=positive_int, default=1000, metavar="N",
                          help="KID subset size, clamped to the smaller set (default: 1000)")
    evaluate.add_argument("--seed", type=seed, default=0, metavar="S", help="seed of the KID subsets (default: 0)")
    evaluate.add_argument("--batch-size", type=positive_int, default=256, metavar="N",
                          help="images per feature-extraction batch (default: 256)")
    evaluate.add_argument("--json", default=None, metavar="OUT", help="also write the metrics as JSON to OUT")
    evaluate.set_defaults(func=cmd_evaluate)


# --------------------------------------------------------------------------------------------
# train


def _train_config(args) -> dict:
    """The settings of a training run: recorded in DIR/config.json and compared on --resume."""
    params = {"architecture": args.architecture, "random_state": args.seed}
    for option, param in (("latent_dim", "latent_dim"), ("batch_size", "batch_size"),
                          ("learning_rate", "learning_rate"), ("epochs", "max_epochs")):
        value = getattr(args, option)
        if value is not None:
            params[param] = value
    if args.model == "vae":
        params.update(likelihood=args.likelihood, beta=args.beta)
    else:
        params.update(loss=args.loss, pack=args.pack, spectral_norm=args.spectral_norm,
                      rejection_sampling=args.rejection_sampling)
        if args.ratio_steps is not None:
            params["ratio_steps"] = args.ratio_steps
        if args.steps is not None:
            params["n_steps"] = args.steps
    return {"model": args.model, "params": params, "data": os.path.abspath(args.data),
            "validation_fraction": getattr(args, "validation_fraction", 0.0)}


# The training length may grow on --resume (train longer); every other setting must match.
_LENGTH_PARAMS = ("max_epochs", "n_steps")


def _check_resume(config_path, config) -> None:
    if not os.path.exists(config_path):
        raise ValueError(f"--resume: {config_path} does not exist; nothing to resume (train without --resume)")
    with open(config_path, encoding="utf-8") as fh:
        previous = json.load(fh)

    def without_length(c):
        return {**c, "params": {k: v for k, v in c.get("params", {}).items() if k not in _LENGTH_PARAMS}}

    if without_length(previous) != without_length(config):
        previous, config = without_length(previous), without_length(config)
        changed = sorted(k for k in set(previous) | set(config) if previous.get(k) != config.get(k))
        changed += sorted(f"--{k.replace('_', '-')}" for k in set(previous["params"]) | set(config["params"])
                          if previous["params"].get(k) != config["params"].get(k))
        raise ValueError(f"--resume needs the settings of the interrupted run; these differ: {', '.join(changed)} "
                         f"(see {config_path})")


def _write_json(path, obj) -> None:
    from ..io import atomic_path

    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(obj, fh, indent=2, sort_keys=True)
            fh.write("\n")


def _write_history(path, history) -> None:
    from ..io import atomic_path

    names = sorted(history)
    rows = max((len(history[k]) for k in names), default=0)
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(["epoch", *names])
            for i in range(rows):
                writer.writerow([i + 1, *(repr(float(history[k][i])) if i < len(history[k]) else "" for k in names)])


def _split_validation(X, fraction, seed):
    if fraction == 0.0:
        return X, None
    n_val = int(round(fraction * X.shape[0]))
    if n_val < 1 or n_val >= X.shape[0]:
        raise ValueError(f"--validation-fraction {fraction} leaves no rows for training or validation "
                         f"({X.shape[0]} rows)")
    order = np.random.default_rng(seed).permutation(X.shape[0])
    return X[np.sort(order[n_val:])], X[np.sort(order[:n_val])]


def cmd_train(args, stdout, stderr) -> int:
    from ._files import read_array

    try:
        import fastdensity.generative as generative
    except ImportError as exc:
        raise ValueError(str(exc)) from None
    X = np.ascontiguousarray(read_array(args.data, mmap=False, max_ndim=4), dtype=np.float32)
    os.makedirs(args.output_dir, exist_ok=True)
    config = _train_config(args)
    config_path = os.path.join(args.output_dir, CONFIG_NAME)
    if args.resume:
        _check_resume(config_path, config)
    _write_json(config_path, config)
    cls = generative.VAE if args.model == "vae" else generative.GAN
    model = cls(**config["params"], device=args.device, checkpoint_dir=os.path.join(args.output_dir, CHECKPOINT_DIR),
                resume=args.resume, progress=args.progress)
    if args.model == "vae":
        X_train, X_val = _split_validation(X, args.validation_fraction, args.seed)
        model.fit(X_train, validation_data=X_val)
    else:
        model.fit(X)
    history = {k: list(v) for k, v in model.history_.items()}
    _write_history(os.path.join(args.output_dir, "history.csv"), history)
    samples = np.asarray(model.sample(args.n_samples, random_state=args.seed))
    from ._files import write_array

    write_array(os.path.join(args.output_dir, "samples.npy"), samples)
    saved = ""
    if hasattr(model, "save"):  # VAE.save and GAN.save: weights_only model files
        model.save(os.path.join(args.output_dir, f"{args.model}.pt"))
        saved = f", {args.model}.pt"
    plot = _training_plot(os.path.join(args.output_dir, "training.png"), history, args.model)
    epochs = max((len(v) for v in history.values()), default=0)
    last = ", ".join(f"{k} {v[-1]:.4g}" for k, v in sorted(history.items()) if v)
    print(f"trained a {args.model.upper()} for {epochs} epochs on {X.shape[0]} rows of shape {X.shape[1:]}; {last}",
          file=stdout)
    print(f"wrote {args.output_dir}/: {CONFIG_NAME}, {CHECKPOINT_DIR}/, history.csv{saved}, samples.npy "
          f"({args.n_samples} samples){', training.png' if plot else ''}", file=stdout)
    return 0


def _training_plot(path, history, title) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    from ._files import save_figure

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, values in sorted(history.items()):
        if values and all(math.isfinite(v) for v in values):
            ax.plot(np.arange(1, len(values) + 1), values, label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title(f"{title.upper()} training")
    ax.legend(fontsize=8)
    save_figure(fig, path)
    plt.close(fig)
    return True


# --------------------------------------------------------------------------------------------
# evaluate


def _features_of(X, extractor_name, batch_size, what):
    """``X`` as an (n, d) float64 feature matrix, through the chosen extractor."""
    images = X.ndim > 2
    if extractor_name == "auto":
        extractor_name = "digits" if images and X.shape[-2:] == (8, 8) else "none"
    if extractor_name == "none":
        if images:
            raise ValueError(f"{what} holds images of shape {X.shape[1:]}; choose --features digits or the path "
                             "of Inception-v3 weights (or pass features)")
        return np.asarray(X, dtype=np.float64)
    from ..metrics import features

    if importlib.util.find_spec("torch") is None:
        raise ValueError("--features digits / Inception needs PyTorch: pip install torch")
    if extractor_name == "digits":
        if X.ndim == 2 and X.shape[1] == 64:
            X = X.reshape(-1, 8, 8)  # flat 8×8 digits, as load_digits(flatten=True) gives them
        return np.asarray(features(np.asarray(X, dtype=np.float32), extractor="digits", batch_size=batch_size))
    if not os.path.exists(extractor_name):
        raise ValueError(f"--features must be 'auto', 'digits', 'none' or an existing weights file; "
                         f"got {extractor_name!r}")
    from ..metrics import InceptionV3Features

    return np.asarray(features(np.asarray(X, dtype=np.float32), extractor=InceptionV3Features(extractor_name),
                               batch_size=batch_size))


def cmd_evaluate(args, stdout, stderr) -> int:
    from ._files import read_array
    from ..metrics import fid, kid, prdc

    real = read_array(args.real, what="REAL", mmap=False, max_ndim=4)
    fake = read_array(args.fake, what="FAKE", mmap=False, max_ndim=4)
    if real.shape[1:] != fake.shape[1:]:
        raise ValueError(f"REAL and FAKE must have the same sample shape; got {real.shape[1:]} and {fake.shape[1:]}")
    f_real = _features_of(real, args.features, args.batch_size, "REAL")
    f_fake = _features_of(fake, args.features, args.batch_size, "FAKE")
    subset = min(args.kid_subset_size, f_real.shape[0], f_fake.shape[0])
    kid_result = kid(f_real, f_fake, subsets=args.kid_subsets, subset_size=subset, random_state=args.seed)
    scores = prdc(f_real, f_fake, nearest_k=args.nearest_k)
    metrics = {
        "n_real": int(real.shape[0]), "n_fake": int(fake.shape[0]), "feature_dim": int(f_real.shape[1]),
        "fid": float(fid(f_real, f_fake)),
        "kid_mean": float(kid_result.mean), "kid_std": float(kid_result.std), "kid_subset_size": int(subset),
        **{name: float(scores[name]) for name in ("precision", "recall", "density", "coverage")},
    }
    print(f"{'metric':<12} {'value':>12}", file=stdout)
    print("-" * 25, file=stdout)
    for name in ("fid", "kid_mean", "kid_std", "precision", "recall", "density", "coverage"):
        print(f"{name:<12} {metrics[name]:>12.6g}", file=stdout)
    print(f"({metrics['n_real']} real, {metrics['n_fake']} fake, {metrics['feature_dim']}-d features, "
          f"KID subsets of {subset}, k = {args.nearest_k})", file=stdout)
    if args.json:
        _write_json(args.json, metrics)
    return 0
