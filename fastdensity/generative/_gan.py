"""``GAN``: a generative adversarial network (MLP, DCGAN or SN-DCGAN) trained by the shared :class:`Trainer`.

The estimator shell: the constructor, ``fit`` and the public methods. The checks and defaults of the
parameters are in ``_gan_params.py``, sampling (rejection sampling included) and ``discriminate`` in
``_gan_sampling.py``, one training step in ``_gan_task.py``, the file format in ``_serialize.py``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from ._gan_conv import ConvDiscriminator, ConvGenerator
from ._gan_networks import DCGANDiscriminator, DCGANGenerator, MLPDiscriminator, MLPGenerator
from ._gan_params import _IMAGE_ARCHITECTURES, CONSTRAINTS, resolve_params
from ._gan_sampling import discriminator_outputs, draw_samples, fit_rejection
from ._gan_task import _GANTask
from ._serialize import load_gan, save_gan
from ._trainer import Trainer

__all__ = ["GAN"]


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
        ``_CONV_DEFAULTS``, ``_gan_params.py``).
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
    _constraints = CONSTRAINTS

    def _resolved(self):
        """Validated parameters with the None defaults filled in."""
        return resolve_params(self)

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
            fit_rejection(self, T, p)
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

    def _discriminator(self, shape, p, hidden, pack, spectral_norm):
        """A fresh discriminator of this architecture for samples of network-space ``shape`` (``hidden``:
        "mlp" only)."""
        if self.architecture == "mlp":
            return MLPDiscriminator(shape[0], hidden, pack, spectral_norm)
        if self.architecture == "conv":
            return ConvDiscriminator(shape, p["base_channels"], pack, spectral_norm)
        return DCGANDiscriminator(shape, p["base_channels"], pack, spectral_norm)

    # -------------------------------------------------------------------------------- sampling
    def sample(self, n_samples=1, random_state=None):
        """Draw ``n_samples`` samples: G(z) with z ~ N(0, I) from a ``torch.Generator`` seeded by
        ``random_state`` (None: fresh entropy), or by discriminator rejection sampling when
        ``rejection_sampling=True``. Returns an array (NumPy in at ``fit`` → NumPy out) of shape
        (n_samples, *sample_shape_), in the units of the training data."""
        check_is_fitted(self, "generator_")
        return draw_samples(self, n_samples, random_state)

    def discriminate(self, X):
        """The discriminator's output for each sample of ``X``: a logit (non-saturating loss) or a
        critic value (WGAN-GP, hinge); higher means "looks real".

        With ``pack > 1`` the discriminator only judges packs; each sample is then judged in a
        pack with the same ``pack − 1`` training samples (drawn once at ``fit``, in
        ``reference_``), so that scores of different samples are comparable. Returns shape (n,).
        """
        check_is_fitted(self, "generator_")
        return discriminator_outputs(self, X)

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
