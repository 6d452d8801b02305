"""``GAN``: a generative adversarial network (MLP, DCGAN or SN-DCGAN) trained by the shared :class:`Trainer`."""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from ._gan_augment import parse_policy
from ._gan_conv import ConvDiscriminator, ConvGenerator
from ._gan_networks import DCGANDiscriminator, DCGANGenerator, MLPDiscriminator, MLPGenerator, pack_samples
from ._gan_ratio import fit_ratio_classifier
from ._gan_task import _GANTask
from ._seeds import seed63, seed_from
from ._serialize import load_gan, save_gan
from ._trainer import Trainer

__all__ = ["GAN"]

_ARCHITECTURES = ("mlp", "dcgan", "conv")
_LOSSES = ("non_saturating", "wgan_gp", "hinge")
_IMAGE_ARCHITECTURES = ("dcgan", "conv")
# The defaults of architecture="conv", chosen by the ablation on the shipped digits
# (bench/generative_gan_digits.py; bench/results/gan-digits-cpu-2026-12-03.txt).
_CONV_DEFAULTS = {"loss": "hinge", "spectral_norm": True, "ema_decay": 0.999, "augment": (),
                  "learning_rate": 7e-4, "d_learning_rate": 2.8e-3, "batch_size": 64, "latent_dim": 64,
                  "base_channels": 8, "betas": (0.5, 0.999), "decay_fraction": 0.3}
_DEFAULT_DECAY_FRACTION = 0.6  # "mlp" and "dcgan": measured on the ring benchmark
_DEFAULT_STEPS = 8000
_SAMPLE_BATCH = 4096
# Rejection sampling: draws per batch (small vectors are cheap; images are not), draws that set ℓ* at
# fit, and the Adam step size of the density-ratio classifier (measured on the grid benchmark for "mlp").
_REJECTION_BATCH = {"mlp": 65536, "dcgan": 4096, "conv": 4096}
_MAX_LOGIT_DRAWS = 10 * _SAMPLE_BATCH
_RATIO_LEARNING_RATE = {"mlp": 5e-3, "dcgan": 2e-4, "conv": 2e-4}


def _seed_from(random_state):
    """The GAN's 63-bit seed (weights, references): salted, so not the Trainer's stream for the same int."""
    return seed_from(random_state, salt=0x6A4)


class GAN(BaseEstimator):
    """A generative adversarial network: an MLP pair for vectors, convolutional pairs for images.

    For images, use ``architecture="conv"``: its defaults (hinge loss, spectral normalisation, an
    EMA generator, DiffAugment, batches of 64) were chosen by measurement on the shipped 8×8 digits
    (see Notes); the same networks take 28×28 and 32×32 images.

    Parameters
    ----------
    architecture : {"mlp", "dcgan", "conv"}, default "mlp"
        "mlp": fully connected networks on rows of ``X`` (any sample shape, flattened; the data
        are standardised per feature for training and sampled back in the original units).
        "dcgan": convolutional networks (Radford et al. 2016) on images (n, h, w) or (n, c, h, w)
        with values in [0, 1]; small sizes such as 8×8 work, as do 28×28 and 32×32.
        "conv": the SN-DCGAN layout of Miyato et al. 2018 scaled to small images
        (``fastdensity/generative/_gan_conv.py``), on the same images; the networks work in
        [−1, 1] (tanh output) and samples come back in [0, 1].
    loss : {"non_saturating", "wgan_gp", "hinge"} or None, default None
        The non-saturating GAN loss (Goodfellow et al. 2014), the Wasserstein loss with a
        gradient penalty (Gulrajani et al. 2017) or the hinge loss (Lim and Ye 2017, Miyato et al.
        2018); see ``fastdensity/generative/_gan_losses.py``. None: "hinge" for "conv",
        "non_saturating" otherwise.
    latent_dim : int or None, default None
        Dimension of the Gaussian noise z. None: 2 for "mlp", 64 for "dcgan" and "conv".
    hidden : tuple of int, default (128, 128, 128)
        Hidden widths of both MLPs ("mlp" only).
    base_channels : int or None, default None
        Channels of the first discriminator / last generator convolution ("dcgan", "conv"). None:
        64 for "dcgan", 32 for "conv".
    pack : int, default 1
        PacGAN packing (Lin et al. 2018): the discriminator judges ``pack`` samples at once.
    spectral_norm : bool or None, default None
        Spectral normalisation of every discriminator layer (Miyato et al. 2018). None: True for
        "conv", False otherwise.
    gp_weight : float or None, default None
        λ of the gradient penalty. None: 10 for "wgan_gp", 0 (none) for "non_saturating"; a
        positive value with "non_saturating" adds the same penalty to the discriminator.
    n_critic : int or None, default None
        Discriminator steps per generator step. None: 5 for "wgan_gp", 1 otherwise.
    learning_rate : float or None, default None
        Adam step size of the generator (and of the discriminator unless ``d_learning_rate`` is
        given). None: 5e-4 for "mlp" with "non_saturating" (measured on the ring/grid benchmarks,
        ``bench/generative_gan.py``), 2e-4 for "dcgan" (Radford et al.), 7e-4 for "conv" (with
        the discriminator at 2.8e-3; measured on the digits), 1e-4 with "wgan_gp" (Gulrajani et al.).
    d_learning_rate : float or None, default None
        Adam step size of the discriminator, for two time-scale updates (TTUR, Heusel et al.
        2017). None: ``learning_rate`` (the "conv" default when neither is given is in
        ``_CONV_DEFAULTS``).
    betas : tuple of float or None, default None
        Adam's β₁, β₂. None: (0.5, 0.999) for "non_saturating", (0.5, 0.9) for "wgan_gp" (as
        Gulrajani et al.).
    decay_fraction : float or None, default None
        The learning rates decay linearly to 0 over this final fraction of the generator steps
        (0: constant). Sharpens the generator. None: 0.6 (on the ring benchmark 0.6 beat 0.3 and
        0.9), 0.3 for "conv" (on the digits 0.3 beat 0.6: FID 12.0 against 13.8, seeds 0-1).
    batch_size : int or None, default None
        Real samples per discriminator step (as many generated ones), i.e. ``batch_size // pack``
        packs; must be a multiple of ``pack``. None: 64 for "conv", 512 otherwise.
    ema_decay : float or None, default None
        β of the exponential moving average of the generator's weights that samples (Yazıcı et al.
        2019), ramped up as min(β, (1 + t)/(10 + t)); 0: sample from the trained generator. None:
        0.999 for "conv", 0 otherwise. The average is ``generator_ema_``.
    augment : str, sequence or None, default None
        DiffAugment (Zhao et al. 2020) of everything the discriminator sees, real and generated, in
        both players' steps: a comma-separated choice of "translation", "cutout", "brightness",
        "contrast" (``fastdensity/generative/_gan_augment.py``); "" for none. Image architectures
        only. None: none (for "conv" too: on the digits at the demo's budget it made the
        generator give every z nearly the same digit).
    r1_weight : float, default 0
        γ of the R1 penalty (γ/2) E‖∇D(x)‖² on real (augmented) samples (Mescheder et al. 2018).
    n_steps : int or None, default None
        Generator steps. The Trainer runs whole epochs (of ``ceil(n / (batch_size · n_critic))``
        steps), so training runs ``ceil(n_steps / steps_per_epoch)`` epochs. None: 8000 unless
        ``max_epochs`` is given. Give at most one of ``n_steps`` and ``max_epochs``.
    max_epochs : int or None, default None
        Passes over the data instead of ``n_steps``.
    random_state : int, numpy Generator or None, default None
        Seeds the weights, the Trainer (shuffling, noise) and the reference packs of
        ``discriminate``; with an int, training on the CPU is deterministic.
    device : str, torch.device or None, default None
        Where to train; None: the device of ``X`` (CPU for NumPy arrays).
    checkpoint_dir : str, os.PathLike or None, default None
        Folder for the Trainer's checkpoints.
    resume : bool, default False
        Continue from the checkpoint in ``checkpoint_dir``.
    progress : bool or None, default None
        Progress bar; None: only on a terminal.
    rejection_sampling : bool, default False
        ``sample()`` by discriminator rejection sampling (Azadi et al. 2019, "Discriminator
        rejection sampling", ICLR): a generated x is kept with probability exp(ℓ(x) − ℓ*), ℓ(x) an
        estimate of log p_data(x)/p_G(x) and ℓ* the largest ℓ seen, which removes samples that are
        off the data (e.g. between modes) and evens out the weights of the modes. ℓ is the logit of
        a classifier trained after the GAN (see ``ratio_steps``). ℓ* is fixed at ``fit``; draws
        with ℓ(x) > ℓ* are kept. Costs 1/``acceptance_rate_`` generator and classifier
        evaluations per sample.
    ratio_steps : int, default 12000
        With ``rejection_sampling=True``: steps of the density-ratio classifier that ``fit`` trains
        after the GAN — a fresh discriminator (one sample per input, no spectral normalisation)
        that learns to tell the training data from the final generator's samples, batches of
        2 · ``batch_size`` of each, Adam at 5e-3 ("mlp") or 2e-4 ("dcgan") decaying to 0
        (``fastdensity/generative/_gan_ratio.py``). 0: use the GAN's own discriminator (as Azadi
        et al.), which needs the non-saturating loss and ``pack=1``.
    ratio_hidden : tuple of int or None, default None
        Hidden widths of the density-ratio classifier ("mlp" only). None: as ``hidden``.

    Attributes
    ----------
    generator_, discriminator_ : torch.nn.Module
    generator_ema_ : torch.nn.Module or None
        The EMA of the generator's weights, which ``sample`` uses (None with ``ema_decay=0``).
    network_shape_ : tuple
        Shape of one sample inside the networks ((d,) for "mlp", (c, h, w) for images).
    loss_history_ : dict of lists
        Per-epoch means of ``generator_loss``, ``discriminator_loss`` (and ``gradient_penalty``).
    history_ : TrainingHistory
        The Trainer's full history.
    n_steps_ : int
        Generator steps taken.
    sample_shape_ : tuple
        Shape of one sample, as in ``X``.
    n_features_in_ : int
        Values per sample.
    ratio_classifier_ : torch.nn.Module or None
        The density-ratio classifier of rejection sampling (None with ``ratio_steps=0``; only with
        ``rejection_sampling=True``).
    max_logit_ : float
        ℓ* of rejection sampling: the largest ℓ over 40,960 samples drawn at the end of ``fit``
        (only with ``rejection_sampling=True``).
    acceptance_rate_ : float
        The fraction of generated samples that rejection sampling keeps, estimated on those 40,960
        draws (only with ``rejection_sampling=True``).

    Notes
    -----
    Mode coverage on the ring of 8 (``make_ring``, σ = 0.01) and the 5×5 grid (``make_grid``,
    σ = 0.05): 2,500 samples, mean of 5 seeds (``bench/generative_gan.py``; the runs are in
    ``bench/results/gan-modes-cpu-2026-11-24.txt``); "at" gives the fraction of samples within 3σ
    of a mode (98.9 % for a perfect sampler)::

        settings                                  ring             grid
        defaults, plain sampling                  7.8/8 at 84 %    20.6/25 at 62 %
        rejection_sampling=True                   8/8 at 97.2 %    24.6/25 at 97.0 %
        pack=2, plain sampling                    8/8 at 72 %      24.0/25 at 34 %
        pack=2, rejection_sampling=True           8/8 at 98.0 %    25/25 at 97.0 %
        rejection by the GAN's own discriminator  8/8 at 95.6 %    24.6/25 at 76 %
          (ratio_steps=0, as Azadi et al.)

    Packing keeps modes that plain training drops (on the grid 24/25 against 20.6/25) but blurs
    them; rejection through the density-ratio classifier removes the blur and the samples between
    modes, so ``pack=2, rejection_sampling=True`` is the setting for mode coverage (every seed 8/8
    at ≥ 97.4 % and 25/25 at ≥ 95.8 %). Without rejection the defaults (``pack=1``) give the
    sharper samples. Spectral normalisation (1/8 modes on the ring) and a gradient penalty on the
    non-saturating loss were worse than neither, so both are off by default; without the final
    learning-rate decay the ring drops to 34 %; 16,000 steps sharpen the modes but drop some.

    ``architecture="conv"`` on the shipped 8×8 digits (``bench/generative_gan_digits.py``; the runs
    are in ``bench/results/gan-digits-cpu-2026-12-03.txt``): with its defaults and ``n_steps=3000``
    (the demo's GAN: 69 s on one idle core, 80 s of CPU with three fits on two cores), 1,000 samples against the 360 test digits
    on the digits CNN's features score FID 9.2 and recall 0.91 (mean of seeds 0–2; FID 6.8, 12.4,
    8.3; KDE samples score 9.6, the VAE 8.0). The way there, one change at a time (seeds 0-1
    unless noted): DiffAugment (translation and cutout) made the generator give every z nearly the
    same digit (FID 303, recall 0; translation alone 181; seed 0), the non-saturating loss 268
    against the hinge loss's 101 (seed 0), no spectral normalisation 20.6 against 18.1 (seed 0);
    the learning rates mattered most (both 2e-4: 101; 5e-4: 52; 1e-3: 27; generator 5e-4 with
    discriminator 1e-3: 18, with 2e-3: 16; seed 0), then smaller batches for more steps at the
    same cost (batch 128 × 1500 steps: 18.4; 64 × 2500: 13.8) and a shorter final decay (0.3 of
    the steps: 12.0; 64 × 3000: 10.4; with learning rates 7e-4 / 2.8e-3: 9.6). R1 (γ = 0.1) gave
    9.4 at 2500 steps for 35 % more time per step. The EMA generator scored better than the
    trained one in every run.
    """

    def __init__(self, *, architecture="mlp", loss=None, latent_dim=None, hidden=(128, 128, 128),
                 base_channels=None, pack=1, spectral_norm=None, gp_weight=None, n_critic=None,
                 learning_rate=None, d_learning_rate=None, betas=None, decay_fraction=None, batch_size=None,
                 ema_decay=None, augment=None, r1_weight=0.0, n_steps=None,
                 max_epochs=None, random_state=None, device=None, checkpoint_dir=None, resume=False,
                 progress=None, rejection_sampling=False, ratio_steps=12000,
                 ratio_hidden=None):
        self.architecture = architecture
        self.loss = loss
        self.latent_dim = latent_dim
        self.hidden = hidden
        self.base_channels = base_channels
        self.pack = pack
        self.spectral_norm = spectral_norm
        self.gp_weight = gp_weight
        self.n_critic = n_critic
        self.learning_rate = learning_rate
        self.d_learning_rate = d_learning_rate
        self.ema_decay = ema_decay
        self.augment = augment
        self.r1_weight = r1_weight
        self.betas = betas
        self.decay_fraction = decay_fraction
        self.batch_size = batch_size
        self.n_steps = n_steps
        self.max_epochs = max_epochs
        self.random_state = random_state
        self.device = device
        self.checkpoint_dir = checkpoint_dir
        self.resume = resume
        self.progress = progress
        self.rejection_sampling = rejection_sampling
        self.ratio_steps = ratio_steps
        self.ratio_hidden = ratio_hidden

    # ----------------------------------------------------------------------------- validation
    def _resolved(self):
        """Validated parameters with the None defaults filled in."""
        def positive_int(name, value, allow_none=False):
            if value is None and allow_none:
                return None
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"{name} must be a positive int{' or None' if allow_none else ''}; got {value!r}")
            return int(value)

        def positive_float(name, value, allow_zero=False):
            ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
            if not ok or value < 0 or (value == 0 and not allow_zero):
                bound = ">= 0" if allow_zero else "> 0"
                raise ValueError(f"{name} must be a finite number {bound}; got {value!r}")
            return float(value)

        if self.architecture not in _ARCHITECTURES:
            raise ValueError(f"architecture must be one of {_ARCHITECTURES}; got {self.architecture!r}")
        conv = self.architecture == "conv"
        loss = (_CONV_DEFAULTS["loss"] if conv else "non_saturating") if self.loss is None else self.loss
        if loss not in _LOSSES:
            raise ValueError(f"loss must be one of {_LOSSES} or None; got {self.loss!r}")
        wgan = loss == "wgan_gp"
        if self.learning_rate is None:
            lr = 1e-4 if wgan else _CONV_DEFAULTS["learning_rate"] if conv else 5e-4 if self.architecture == "mlp" \
                else 2e-4
        else:
            lr = positive_float("learning_rate", self.learning_rate)
        if self.d_learning_rate is None:
            d_lr = _CONV_DEFAULTS["d_learning_rate"] if conv and not wgan and self.learning_rate is None else lr
        else:
            d_lr = positive_float("d_learning_rate", self.d_learning_rate)
        p = {
            "loss": loss,
            "latent_dim": positive_int("latent_dim", self.latent_dim, allow_none=True)
            or (2 if self.architecture == "mlp" else _CONV_DEFAULTS["latent_dim"] if conv else 64),
            "base_channels": positive_int("base_channels", self.base_channels, allow_none=True)
            or (_CONV_DEFAULTS["base_channels"] if conv else 64),
            "pack": positive_int("pack", self.pack),
            "n_critic": positive_int("n_critic", self.n_critic, allow_none=True) or (5 if wgan else 1),
            "gp_weight": (10.0 if wgan else 0.0) if self.gp_weight is None
            else positive_float("gp_weight", self.gp_weight, allow_zero=True),
            "r1_weight": positive_float("r1_weight", self.r1_weight, allow_zero=True),
            "learning_rate": lr,
            "d_learning_rate": d_lr,
            "batch_size": positive_int("batch_size", self.batch_size, allow_none=True)
            or (_CONV_DEFAULTS["batch_size"] if conv else 512),
        }
        ema = (_CONV_DEFAULTS["ema_decay"] if conv else 0.0) if self.ema_decay is None else self.ema_decay
        if not isinstance(ema, numbers.Real) or isinstance(ema, bool) or not 0 <= ema < 1:
            raise ValueError(f"ema_decay must be None or a number in [0, 1) (0: no average); got {self.ema_decay!r}")
        p["ema_decay"] = float(ema)
        if self.augment is None:
            p["augment"] = _CONV_DEFAULTS["augment"] if conv else ()
        else:
            p["augment"] = parse_policy(self.augment)
            if p["augment"] and self.architecture not in _IMAGE_ARCHITECTURES:
                raise ValueError(f"augment needs an image architecture {_IMAGE_ARCHITECTURES}; got "
                                 f"architecture={self.architecture!r} with augment={self.augment!r}")
        sn = (_CONV_DEFAULTS["spectral_norm"] if conv else False) if self.spectral_norm is None else self.spectral_norm
        def widths(name, value):
            if isinstance(value, numbers.Integral) and not isinstance(value, bool):
                value = (value,)
            try:
                value = tuple(positive_int(name, h) for h in value)
            except (TypeError, ValueError):
                raise ValueError(f"{name} must be a positive int or a sequence of positive ints; got {value!r}") \
                    from None
            if not value:
                raise ValueError(f"{name} must hold at least one layer width; got ()")
            return value

        p["hidden"] = widths("hidden", self.hidden)
        p["ratio_hidden"] = p["hidden"] if self.ratio_hidden is None else widths("ratio_hidden", self.ratio_hidden)
        if not isinstance(sn, (bool, np.bool_)):
            raise TypeError(f"spectral_norm must be None, True or False; got {self.spectral_norm!r}")
        p["spectral_norm"] = bool(sn)
        if not isinstance(self.rejection_sampling, (bool, np.bool_)):
            raise TypeError(f"rejection_sampling must be True or False; got {self.rejection_sampling!r}")
        rs = self.ratio_steps
        if isinstance(rs, bool) or not isinstance(rs, numbers.Integral) or rs < 0:
            raise ValueError(f"ratio_steps must be a non-negative int; got {rs!r}")
        p["ratio_steps"] = int(rs)
        if self.rejection_sampling and rs == 0 and loss != "non_saturating":
            raise ValueError("rejection_sampling=True with ratio_steps=0 needs loss='non_saturating' (a WGAN "
                             "critic's or a hinge discriminator's values are not log density ratios); use "
                             "ratio_steps > 0")
        if self.rejection_sampling and rs == 0 and p["pack"] > 1:
            raise ValueError("rejection_sampling=True with ratio_steps=0 needs pack=1 (a packed discriminator "
                             "judges packs, not samples); use ratio_steps > 0")
        default_betas = (0.5, 0.9) if wgan else _CONV_DEFAULTS["betas"] if conv else (0.5, 0.999)
        betas = default_betas if self.betas is None else self.betas
        if (not isinstance(betas, (tuple, list)) or len(betas) != 2
                or not all(isinstance(b, numbers.Real) and 0 <= b < 1 for b in betas)):
            raise ValueError(f"betas must be a pair of numbers in [0, 1); got {betas!r}")
        p["betas"] = (float(betas[0]), float(betas[1]))
        d = self.decay_fraction
        if d is None:
            d = _CONV_DEFAULTS["decay_fraction"] if conv else _DEFAULT_DECAY_FRACTION
        if not isinstance(d, numbers.Real) or isinstance(d, bool) or not 0 <= d < 1:
            raise ValueError(f"decay_fraction must be a number in [0, 1); got {d!r}")
        p["decay_fraction"] = float(d)
        if p["batch_size"] % p["pack"]:
            raise ValueError(f"batch_size ({p['batch_size']}) must be a multiple of pack ({p['pack']})")
        if self.n_steps is not None and self.max_epochs is not None:
            raise ValueError(f"give n_steps or max_epochs, not both; got n_steps={self.n_steps!r}, "
                             f"max_epochs={self.max_epochs!r}")
        p["n_steps"] = positive_int("n_steps", self.n_steps, allow_none=True)
        p["max_epochs"] = positive_int("max_epochs", self.max_epochs, allow_none=True)
        if p["n_steps"] is None and p["max_epochs"] is None:
            p["n_steps"] = _DEFAULT_STEPS
        p["seed"] = _seed_from(self.random_state)
        return p

    def _to_tensor(self, X, *, fitting):
        """X as a float32 tensor (n, *sample_shape) for the networks, and its kind (numpy/torch, dtype)."""
        if isinstance(X, torch.Tensor):
            kind = ("torch", X.dtype if X.is_floating_point() else torch.float32, X.device)
            T = X.detach().to(torch.float32)
        else:
            A = np.asarray(X)
            if A.dtype == object or not (np.issubdtype(A.dtype, np.number) or A.dtype == bool):
                raise TypeError(f"X must be a numeric array or tensor; got dtype {A.dtype}")
            kind = ("numpy", A.dtype if np.issubdtype(A.dtype, np.floating) else np.dtype(np.float64), None)
            T = torch.from_numpy(np.ascontiguousarray(A, dtype=np.float32))
        if T.dim() < 2 or T.shape[0] == 0:
            raise ValueError(f"X must have shape (n_samples, ...) with n_samples >= 1; got shape {tuple(T.shape)}")
        if not bool(torch.isfinite(T).all()):
            raise ValueError("X contains NaN or inf")
        shape = tuple(T.shape[1:])
        if self.architecture in _IMAGE_ARCHITECTURES:
            if T.dim() not in (3, 4):
                raise ValueError(f"architecture={self.architecture!r} needs images of shape (n, h, w) or "
                                 f"(n, c, h, w); got shape {tuple(T.shape)}")
            if bool((T < 0).any()) or bool((T > 1).any()):
                raise ValueError(f"architecture={self.architecture!r} needs pixel values in [0, 1]; scale the "
                                 "images first")
            if T.dim() == 3:
                T = T.unsqueeze(1)
        else:
            T = T.reshape(T.shape[0], -1)
        if not fitting and shape != self.sample_shape_:
            raise ValueError(f"X has samples of shape {shape}; the GAN was fitted on {self.sample_shape_}")
        return T, kind, shape

    def _output(self, T):
        kind, dtype, _ = self.input_kind_
        if kind == "numpy":
            return T.detach().cpu().numpy().astype(dtype, copy=False)
        return T.detach().to(dtype)

    # ------------------------------------------------------------------------------------ fit
    def fit(self, X, y=None):
        """Train on ``X`` (rows are samples; images (n, h, w) or (n, c, h, w) in [0, 1] for
        "dcgan" and "conv"). Returns ``self``.

        Raises
        ------
        FloatingPointError
            When a loss becomes NaN or inf (from the Trainer's guard; lower ``learning_rate``).
        """
        p = self._resolved()
        T, kind, shape = self._to_tensor(X, fitting=True)
        device = torch.device(self.device) if self.device is not None else T.device
        n = T.shape[0]
        if self.architecture == "mlp":
            mean = T.mean(dim=0)
            scale = T.std(dim=0, unbiased=False)
            scale = torch.where(scale > 0, scale, torch.ones_like(scale))
            T = (T - mean) / scale
        elif self.architecture == "conv":
            T = 2.0 * T - 1.0  # the conv networks work in [-1, 1] (tanh output)
        G, D = self._networks(p, tuple(T.shape[1:]))
        G, D = G.to(device), D.to(device)
        steps_per_epoch = math.ceil(n / (p["batch_size"] * p["n_critic"]))
        max_epochs = p["max_epochs"] or math.ceil(p["n_steps"] / steps_per_epoch)
        task = _GANTask(G, D, loss=p["loss"], latent_dim=p["latent_dim"], pack=p["pack"],
                        batch_size=p["batch_size"], n_critic=p["n_critic"], gp_weight=p["gp_weight"],
                        learning_rate=p["learning_rate"], betas=p["betas"], decay_fraction=p["decay_fraction"],
                        total_steps=max_epochs * steps_per_epoch, d_learning_rate=p["d_learning_rate"],
                        r1_weight=p["r1_weight"], augment=p["augment"], ema_decay=p["ema_decay"])
        trainer = Trainer(max_epochs=max_epochs, batch_size=p["batch_size"] * p["n_critic"], device=device,
                          random_state=p["seed"], patience=None, checkpoint_dir=self.checkpoint_dir,
                          resume=self.resume, progress=self.progress)
        history = trainer.fit(task, T)
        G.eval()
        D.eval()
        self.generator_, self.discriminator_ = G, D
        self.generator_ema_ = task.ema.module.eval() if task.ema is not None else None
        self.history_ = history
        self.loss_history_ = {k[len("train_"):]: list(v) for k, v in history.items() if k.startswith("train_")}
        self.n_steps_ = task.step
        self.latent_dim_ = p["latent_dim"]
        self.pack_ = p["pack"]
        self.device_ = device
        self.sample_shape_ = shape
        self.network_shape_ = tuple(T.shape[1:])
        self.n_features_in_ = int(np.prod(shape))
        self.input_kind_ = kind
        if self.architecture == "mlp":
            self.data_mean_, self.data_scale_ = mean.to(device), scale.to(device)
        # discriminate() packs each sample with the same pack - 1 training samples
        ref = np.random.default_rng(p["seed"]).choice(n, size=p["pack"] - 1, replace=n < p["pack"] - 1)
        self.reference_ = T[torch.from_numpy(ref)].to(device)
        for name in ("ratio_classifier_", "max_logit_", "acceptance_rate_"):
            self.__dict__.pop(name, None)  # from an earlier fit
        if self.rejection_sampling:
            self._fit_rejection(T, p)
        return self

    def _networks(self, p, shape):
        """A fresh (generator, discriminator) pair for samples of network-space ``shape``, from ``p["seed"]``."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(p["seed"])
            if self.architecture == "mlp":
                G = MLPGenerator(p["latent_dim"], shape[0], p["hidden"])
            elif self.architecture == "conv":
                G = ConvGenerator(p["latent_dim"], shape, p["base_channels"])
            else:
                G = DCGANGenerator(p["latent_dim"], shape, p["base_channels"])
            D = self._discriminator(shape, p, p["hidden"], p["pack"], p["spectral_norm"])
        return G, D

    def _fit_rejection(self, T, p):
        """The density-ratio classifier, ℓ* and the acceptance rate of rejection sampling."""
        seed = seed63([p["seed"], 0x4A7])
        self.ratio_classifier_ = None
        if p["ratio_steps"]:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                classifier = self._discriminator(tuple(T.shape[1:]), p, p["ratio_hidden"], 1, False)
            self.ratio_classifier_ = fit_ratio_classifier(
                classifier.to(self.device_), self._sampler(), T, latent_dim=p["latent_dim"],
                n_steps=p["ratio_steps"], batch_size=2 * p["batch_size"],
                learning_rate=_RATIO_LEARNING_RATE[self.architecture], seed=seed, device=self.device_)
        gen = torch.Generator(device="cpu").manual_seed(seed)
        with torch.no_grad():
            logits = torch.cat([self._log_ratio(self._generate(_SAMPLE_BATCH, gen)).double()
                                for _ in range(_MAX_LOGIT_DRAWS // _SAMPLE_BATCH)])
        if not bool(torch.isfinite(logits).all()):
            raise FloatingPointError("the density-ratio classifier of rejection sampling gives non-finite logits")
        self.max_logit_ = float(logits.max())
        self.acceptance_rate_ = float(torch.exp(logits - self.max_logit_).mean())

    def _discriminator(self, shape, p, hidden, pack, spectral_norm):
        """A fresh discriminator of this architecture for samples of network-space ``shape`` (``hidden``:
        "mlp" only)."""
        if self.architecture == "mlp":
            return MLPDiscriminator(shape[0], hidden, pack, spectral_norm)
        if self.architecture == "conv":
            return ConvDiscriminator(shape, p["base_channels"], pack, spectral_norm)
        return DCGANDiscriminator(shape, p["base_channels"], pack, spectral_norm)

    def _log_ratio(self, T):
        """ℓ(x) of rejection sampling, for samples in network space."""
        if self.ratio_classifier_ is None:
            return self._logits(T)
        return self.ratio_classifier_(T)

    # -------------------------------------------------------------------------------- sampling
    def _sampler(self):
        """The generator that samples: the EMA of the weights when there is one, else the trained one."""
        return self.generator_ema_ if getattr(self, "generator_ema_", None) is not None else self.generator_

    def _generate(self, n, gen):
        """n generated samples in network space (standardised for "mlp", [-1, 1] for "conv"), noise
        from ``gen``."""
        return self._sampler()(torch.randn(n, self.latent_dim_, generator=gen).to(self.device_))

    def _logits(self, T):
        """Discriminator outputs of samples in network space (single samples packed with ``reference_``)."""
        if self.pack_ > 1:
            ref = self.reference_.unsqueeze(0).expand(T.shape[0], *self.reference_.shape)
            T = pack_samples(torch.cat([T.unsqueeze(1), ref], dim=1).reshape(-1, *T.shape[1:]), self.pack_)
        return self.discriminator_(T)

    def sample(self, n_samples=1, random_state=None):
        """Draw ``n_samples`` samples: G(z) with z ~ N(0, I) from a ``torch.Generator`` seeded by
        ``random_state`` (None: fresh entropy), or by discriminator rejection sampling when
        ``rejection_sampling=True``. Returns an array (NumPy in at ``fit`` → NumPy out) of shape
        (n_samples, *sample_shape_), in the units of the training data."""
        check_is_fitted(self, "generator_")
        if isinstance(n_samples, bool) or not isinstance(n_samples, numbers.Integral) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive int; got {n_samples!r}")
        if self.rejection_sampling and not hasattr(self, "max_logit_"):
            raise ValueError("rejection_sampling=True was set after fit; fit again with it (fit trains the "
                             "density-ratio classifier that rejection sampling needs)")
        gen = torch.Generator(device="cpu").manual_seed(_seed_from(random_state))
        self._sampler().eval()
        self.discriminator_.eval()
        out, have, drawn = [], 0, 0
        batch = _REJECTION_BATCH[self.architecture] if self.rejection_sampling else _SAMPLE_BATCH
        with torch.no_grad():
            while have < n_samples:
                if self.rejection_sampling and drawn > 100 * n_samples / self.acceptance_rate_ + 10 * batch:
                    raise RuntimeError(
                        f"rejection sampling kept {have} of {drawn} draws, far below the rate of "
                        f"{self.acceptance_rate_:.2g} estimated at fit; sample with rejection_sampling=False, or refit")
                m = batch if self.rejection_sampling else min(batch, n_samples - have)
                x = self._generate(m, gen)
                drawn += m
                if self.rejection_sampling:
                    # ℓ* stays at its value from fit: a draw above it is kept (probability clipped at 1).
                    # Azadi et al. raise ℓ* instead, but one draw from a mode that the generator
                    # almost never reaches can raise it so far that hardly anything is kept again.
                    logits = self._log_ratio(x)
                    u = torch.rand(m, generator=gen).to(self.device_)
                    x = x[torch.log(u) < logits - self.max_logit_]
                out.append(x)
                have += x.shape[0]
        T = torch.cat(out)[:n_samples]
        if self.architecture == "mlp":
            T = T * self.data_scale_ + self.data_mean_
        elif self.architecture == "conv":
            T = ((T + 1.0) / 2.0).clamp(0.0, 1.0)
        return self._output(T.reshape(n_samples, *self.sample_shape_))

    def discriminate(self, X):
        """The discriminator's output for each sample of ``X``: a logit (non-saturating loss) or a
        critic value (WGAN-GP, hinge); higher means "looks real".

        With ``pack > 1`` the discriminator only judges packs; each sample is then judged in a
        pack with the same ``pack − 1`` training samples (drawn once at ``fit``, in
        ``reference_``), so that scores of different samples are comparable. Returns shape (n,).
        """
        check_is_fitted(self, "generator_")
        T, _, _ = self._to_tensor(X, fitting=False)
        T = T.to(self.device_)
        if self.architecture == "mlp":
            T = (T - self.data_mean_) / self.data_scale_
        elif self.architecture == "conv":
            T = 2.0 * T - 1.0
        self.discriminator_.eval()
        with torch.no_grad():
            return self._output(torch.cat([self._logits(batch) for batch in T.split(_SAMPLE_BATCH)]))

    # -------------------------------------------------------------------------------------- files
    def save(self, path):
        """Save the fitted GAN to ``path`` (parameters, the generator and its EMA, the discriminator,
        the density-ratio classifier of rejection sampling, the history; written atomically).

        The file is a ``torch.save`` archive of tensors, lists and JSON text that :meth:`load` reads
        with ``torch.load(..., weights_only=True)``: loading runs no code from the file.
        """
        check_is_fitted(self, "generator_")
        save_gan(self, path)

    @classmethod
    def load(cls, path, device=None):
        """Load a GAN written by :meth:`save`, onto ``device`` (default: the ``device`` parameter it
        was saved with, else the CPU). Sampling from it gives the saved model's samples."""
        return load_gan(cls, path, device)
