"""``VAE``: a variational autoencoder with the estimator shape, importance-weighted likelihoods and
ex-post density estimation in latent space.

The checks of the parameters are in ``_vae_params.py``, the chunked IWAE and ELBO loops in
``_vae_score.py``, the network and its training step in ``_vae_model.py``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from ._data import as_float_tensor, check_n_samples, resolve_device, to_caller
from ._seeds import seed_from, seed_pair
from ._serialize import load_vae, save_vae
from ._trainer import Trainer
from ._vae_model import VAEModel, VAETask
from .._backend._validation import Integer, check_parameter
from ._vae_params import CONSTRAINTS, validate_params
from ._vae_score import elbo_per_sample, iwae_log_likelihood

__all__ = ["VAE"]


class VAE(BaseEstimator):
    """Variational autoencoder (Kingma & Welling 2014) for images or vectors in [0, 1].

    The encoder gives q(z|x) = N(μ(x), diag σ²(x)), the prior is N(0, I) and the decoder p(x|z) is
    Bernoulli, Gaussian or categorical per pixel. Training maximises the ELBO (β-weighted) with
    Adam through the shared :class:`~fastdensity.generative.Trainer`; with validation data it
    stops early on the validation IWAE bound (or ELBO) and keeps the best weights.

    Parameters
    ----------
    latent_dim : int, default 16
    architecture : {"mlp", "conv"}, default "mlp"
        "mlp" takes any sample shape (flat (n, d) rows or images) and flattens it; "conv" takes
        images (n, H, W) or (n, C, H, W) and halves them once per entry of ``hidden``.
    hidden : tuple of int or None
        mlp: hidden widths of the encoder (the decoder mirrors them), default (256, 256).
        conv: channels per stride-2 level, default (32, 64).
    likelihood : {"bernoulli", "gaussian", "categorical"}, default "bernoulli"
        bernoulli: data in [0, 1] (binary data gives a normalised likelihood). gaussian: any finite
        data; the decoder's mean depends on z and its log-variance is a learned per-pixel
        parameter (the same for every z), initialised at the log of each pixel's variance in the
        training data and clamped below at ``min_logvar`` so that it cannot collapse to 0 (and
        the likelihood to +inf) on pixels that are constant. categorical: data
        in [0, 1] quantised to ``n_categories`` levels (round(x·(K − 1))), a softmax per pixel;
        its likelihoods are probabilities of the quantised data.
    beta : float, default 1.0
        Weight of the KL term in the training loss (β-VAE). Scores always use β = 1.
    n_categories : int, default 256
    activation : {"relu", "elu", "tanh", "gelu"}, default "relu"
    min_logvar : float, default -7.0
        Lower bound of the gaussian decoder's log-variance (σ ≥ e^-3.5 ≈ 0.03).
    kl_warmup_epochs : int, default 0
        Raise β linearly from 0 over this many epochs (KL annealing).
    max_epochs : int, default 300
    batch_size : int, default 128
    learning_rate : float, default 1e-3
        Adam's step size (betas 0.9, 0.999).
    weight_decay : float, default 0.0
    patience : int or None, default 50
        With ``validation_data``: stop after this many epochs without improvement and restore the
        best weights. Ignored without validation data (all ``max_epochs`` run).
    monitor : {"iwae", "elbo"}, default "iwae"
        Validation quantity for early stopping: the IWAE bound with ``eval_importance`` samples
        (less noisy, closer to the test log-likelihood) or the one-sample ELBO (cheaper).
    eval_importance : int, default 50
    random_state : int, numpy Generator or None
        Seeds the initialisation and training (deterministic on the CPU with an int).
    device : str, torch.device or None
        None: the device of the training data (the CPU for numpy input).
    checkpoint_dir, checkpoint_every, resume, progress
        Passed to the :class:`~fastdensity.generative.Trainer`.

    Attributes
    ----------
    model_ : VAEModel
        The trained ``nn.Module`` (``encode``, ``reparameterize``, ``decode``).
    history_ : TrainingHistory
        Per-epoch train and validation averages; ``loss_history_`` is ``history_["train_loss"]``
        (−β-ELBO per sample, nats).
    n_epochs_, best_epoch_ : int
    device_ : torch.device
    sample_shape_ : tuple of int
        One sample's shape as passed to ``fit``; outputs have it.
    train_latent_means_ : ndarray of shape (n_train, latent_dim)
        Posterior means of the training data, for :meth:`fit_latent_density`.

    Notes
    -----
    Results come back in the type of the input (numpy → numpy, torch → torch on the input's
    device); :meth:`sample` and :meth:`decode` answer in the type of the training data.
    """

    def __init__(self, *, latent_dim=16, architecture="mlp", hidden=None, likelihood="bernoulli", beta=1.0,
                 n_categories=256, activation="relu", min_logvar=-7.0, kl_warmup_epochs=0, max_epochs=300,
                 batch_size=128, learning_rate=1e-3, weight_decay=0.0, patience=50, monitor="iwae",
                 eval_importance=50, random_state=None, device=None, checkpoint_dir=None, checkpoint_every=1,
                 resume=False, progress=None):
        self.latent_dim = latent_dim
        self.architecture = architecture
        self.hidden = hidden
        self.likelihood = likelihood
        self.beta = beta
        self.n_categories = n_categories
        self.activation = activation
        self.min_logvar = min_logvar
        self.kl_warmup_epochs = kl_warmup_epochs
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.patience = patience
        self.monitor = monitor
        self.eval_importance = eval_importance
        self.random_state = random_state
        self.device = device
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every = checkpoint_every
        self.resume = resume
        self.progress = progress

    # -- parameters and data --------------------------------------------------------------------
    _constraints = CONSTRAINTS

    def _validate_params(self):
        return validate_params(self)

    def _model_shape(self, sample_shape):
        if self.architecture == "conv":
            if len(sample_shape) == 2:
                return (1, *sample_shape)
            if len(sample_shape) == 3:
                return tuple(sample_shape)
            raise ValueError(f"architecture='conv' needs images (n, H, W) or (n, C, H, W); got samples of shape "
                             f"{tuple(sample_shape)} (use architecture='mlp' for flat rows)")
        if len(sample_shape) == 0:
            raise ValueError("X must be 2-D (n, d) or images (n, H, W) / (n, C, H, W); got a 1-D array")
        return tuple(sample_shape)

    def _check_values(self, t, name):
        if self.likelihood in ("bernoulli", "categorical") and bool(((t < 0) | (t > 1)).any()):
            raise ValueError(f"likelihood={self.likelihood!r} needs {name} in [0, 1]; got values in "
                             f"[{t.min().item():.4g}, {t.max().item():.4g}] (scale images to [0, 1])")

    def _input(self, X, name="X"):
        """Fitted model: X as an internal tensor (n, *model shape) on device_, and the caller's kind."""
        check_is_fitted(self, "model_")
        t, kind = as_float_tensor(X, name, self.device_)
        if tuple(t.shape[1:]) != self.sample_shape_:
            raise ValueError(f"{name} must have samples of shape {self.sample_shape_} (as in fit); "
                             f"got {tuple(t.shape[1:])}")
        self._check_values(t, name)
        return t.reshape(t.shape[0], *self.model_.data_shape), kind

    def _output(self, t, kind=None):
        t = t.reshape(t.shape[0], *self.sample_shape_)
        return to_caller(t, kind if kind is not None else self._fit_kind)

    def _generator(self, random_state):
        return torch.Generator(device=self.device_).manual_seed(seed_from(random_state))

    # -- fit ------------------------------------------------------------------------------------
    def fit(self, X, validation_data=None):
        """Train on ``X`` (numpy array or torch tensor), validating on ``validation_data`` each epoch.

        Returns
        -------
        self
        """
        hidden = self._validate_params()
        device = resolve_device(self.device, X)
        t, kind = as_float_tensor(X, "X", device)
        model_shape = self._model_shape(tuple(t.shape[1:]))
        self._check_values(t, "X")
        t_val = None
        if validation_data is not None:
            t_val, _ = as_float_tensor(validation_data, "validation_data", device)
            if t_val.shape[1:] != t.shape[1:]:
                raise ValueError(f"validation_data must have samples of shape {tuple(t.shape[1:])} like X; "
                                 f"got {tuple(t_val.shape[1:])}")
            self._check_values(t_val, "validation_data")
            t_val = t_val.reshape(t_val.shape[0], *model_shape)

        weights_seed, trainer_seed = seed_pair(self.random_state)
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else [], device_type="cuda"):
            torch.manual_seed(weights_seed)
            model = VAEModel(model_shape, self.latent_dim, self.architecture, hidden, self.likelihood,
                             self.n_categories, self.activation, self.min_logvar).to(device)
        if self.likelihood == "gaussian":
            # start the noise at each pixel's data variance (an upper bound on the residual one):
            # learning it from 0 with Adam's step size would take thousands of steps
            with torch.no_grad():
                var = t.reshape(t.shape[0], *model_shape).var(dim=0, unbiased=False)
                model.decoder_logvar.copy_(torch.log(var + 1e-12).clamp(min=self.min_logvar))
        optimizer = torch.optim.Adam(model.parameters(), lr=self.learning_rate, betas=(0.9, 0.999),
                                     weight_decay=self.weight_decay)
        steps_per_epoch = -(-t.shape[0] // self.batch_size)
        use_iwae = t_val is not None and self.monitor == "iwae"
        task = VAETask(model, optimizer, beta=self.beta, warmup_steps=self.kl_warmup_epochs * steps_per_epoch,
                       eval_importance=self.eval_importance if use_iwae else 0)
        trainer = Trainer(max_epochs=self.max_epochs, batch_size=self.batch_size, device=device,
                          random_state=trainer_seed,
                          monitor="val_iwae" if use_iwae else "val_loss",
                          patience=self.patience if t_val is not None else None,
                          checkpoint_dir=self.checkpoint_dir, checkpoint_every=self.checkpoint_every,
                          resume=self.resume, progress=self.progress)
        history = trainer.fit(task, t.reshape(t.shape[0], *model_shape), t_val)

        model.eval()
        self.model_ = model
        self._hidden = hidden
        self.device_ = device
        self.sample_shape_ = tuple(t.shape[1:])
        self.n_features_in_ = math.prod(self.sample_shape_)
        self._fit_kind = kind
        self.history_ = history
        self.loss_history_ = list(history["train_loss"])
        self.n_epochs_ = history.n_epochs
        self.best_epoch_ = history.best_epoch if history.best_epoch is not None else history.n_epochs
        with torch.no_grad():
            means = torch.cat([model.encode(t[i:i + 1024].reshape(-1, *model_shape))[0]
                               for i in range(0, t.shape[0], 1024)])
        self.train_latent_means_ = means.double().cpu().numpy()
        return self

    # -- likelihoods ----------------------------------------------------------------------------
    def score_samples(self, X, n_importance=1000, random_state=None):
        """Importance-weighted estimate of log p(x) per sample, in nats (float64).

        The IWAE bound (Burda et al. 2016) log (1/K) Σ_k p(x, z_k) / q(z_k|x), z_k ~ q(z|x): a
        lower bound on log p(x) that rises towards it as K grows (K = 1 is a one-sample ELBO).
        The K samples are drawn in chunks so that K = 1000 fits in memory, and the log-mean-exp is
        accumulated in float64.

        Parameters
        ----------
        X : array or tensor with samples of ``sample_shape_``
        n_importance : int, default 1000
            K, the number of importance samples per data point.
        random_state : int, numpy Generator or None
        """
        check_parameter("n_importance", n_importance, Integer(1))
        t, kind = self._input(X)
        gen = self._generator(random_state)
        return to_caller(iwae_log_likelihood(self.model_, t, n_importance, gen), kind)

    def score(self, X, n_importance=1000, random_state=None):
        """Mean of :meth:`score_samples` (nats per sample), as a float."""
        return float(self.score_samples(X, n_importance, random_state).mean())

    def elbo(self, X, n_samples=1, random_state=None):
        """The ELBO E_q[log p(x|z)] − KL(q(z|x) || p(z)) per sample (β = 1, closed-form KL), float64.

        The expectation is averaged over ``n_samples`` draws of z.
        """
        check_parameter("n_samples", n_samples, Integer(1))
        t, kind = self._input(X)
        gen = self._generator(random_state)
        return to_caller(elbo_per_sample(self.model_, t, n_samples, gen), kind)

    # -- codes and images -----------------------------------------------------------------------
    def encode(self, X, return_logvar=False):
        """Posterior means μ(x), (n, latent_dim); with ``return_logvar`` also the log-variances."""
        t, kind = self._input(X)
        with torch.no_grad():
            mean, logvar = self.model_.encode(t)
        return (to_caller(mean, kind), to_caller(logvar, kind)) if return_logvar else to_caller(mean, kind)

    def decode(self, Z):
        """E[x | z] for codes Z (n, latent_dim): pixel probabilities (bernoulli), means (gaussian) or
        expected levels / (K − 1) (categorical), shaped like the training samples."""
        check_is_fitted(self, "model_")
        z, kind = as_float_tensor(Z, "Z", self.device_)
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"Z must have shape (n, {self.latent_dim}) (latent_dim); got {tuple(z.shape)}")
        with torch.no_grad():
            return self._output(self.model_.mean(self.model_.decode(z)), kind)

    def reconstruct(self, X):
        """decode(encode(X)): the decoder's mean at the posterior mean of each sample."""
        t, kind = self._input(X)
        with torch.no_grad():
            return self._output(self.model_.mean(self.model_.decode(self.model_.encode(t)[0])), kind)

    def interpolate(self, x0, x1, steps=8):
        """Decode ``steps`` codes on the line between the posterior means of two samples.

        ``x0`` and ``x1`` are single samples (shape ``sample_shape_``, or with a leading 1). Returns
        (steps, *sample_shape_), starting at x0's reconstruction and ending at x1's.
        """
        check_parameter("steps", steps, Integer(1))
        check_is_fitted(self, "model_")
        pair = []
        for name, x in (("x0", x0), ("x1", x1)):
            t, kind = as_float_tensor(x, name, self.device_)
            if tuple(t.shape) == self.sample_shape_:
                t = t[None]
            if tuple(t.shape) != (1, *self.sample_shape_):
                raise ValueError(f"{name} must be one sample of shape {self.sample_shape_}; got {tuple(t.shape)}")
            self._check_values(t, name)
            pair.append(t)
        t = torch.cat(pair).reshape(2, *self.model_.data_shape)
        with torch.no_grad():
            mean = self.model_.encode(t)[0]
            w = torch.linspace(0.0, 1.0, steps, device=mean.device).unsqueeze(1)
            z = (1 - w) * mean[0] + w * mean[1]
            return self._output(self.model_.mean(self.model_.decode(z)), kind)

    def sample(self, n_samples=1, random_state=None, *, mean=True, from_latent_density=False):
        """Generate ``n_samples`` samples: z from the prior N(0, I) (or from the latent density
        fitted by :meth:`fit_latent_density`), then the decoder.

        Parameters
        ----------
        mean : bool, default True
            Return the decoder's mean E[x|z] (pixel probabilities for bernoulli: smooth images, what
            sample grids show). False: draw x ~ p(x|z) (binary images for bernoulli).
        from_latent_density : bool, default False

        Returns
        -------
        array or tensor of shape (n_samples, *sample_shape_), in the training data's type
        """
        check_is_fitted(self, "model_")
        n = check_n_samples(n_samples)
        gen = self._generator(random_state)
        if from_latent_density:
            z = self._latent_draws(n, gen)
        else:
            z = torch.randn((n, self.latent_dim), generator=gen, device=self.device_)
        with torch.no_grad():
            params = self.model_.decode(z)
            x = self.model_.mean(params) if mean else self.model_.draw(params, gen)
        return self._output(x)

    # -- ex-post density in latent space -------------------------------------------------------
    def fit_latent_density(self, estimator, X=None):
        """Fit ``estimator`` (any fastdensity or scikit-learn density estimator with ``fit`` and
        ``sample``, e.g. GaussianMixture or KernelDensity) to latent codes: the posterior means of
        ``X``, by default of the training data (``train_latent_means_``).

        Ex-post density estimation (Ghosh et al. 2020): the aggregate posterior rarely matches the
        N(0, I) prior, so sampling codes from a density fitted to them gives better samples.

        Returns
        -------
        self
        """
        check_is_fitted(self, "model_")
        if not (callable(getattr(estimator, "fit", None)) and callable(getattr(estimator, "sample", None))):
            raise TypeError(f"estimator must have fit() and sample(); got {type(estimator).__name__}")
        if X is None:
            codes = self.train_latent_means_
        else:
            codes = np.asarray(torch.as_tensor(self.encode(X)).detach().cpu(), dtype=np.float64)
        self.latent_density_ = estimator.fit(codes)
        if self.latent_density_ is None:
            self.latent_density_ = estimator
        return self

    def _latent_draws(self, n, gen):
        if not hasattr(self, "latent_density_"):
            raise ValueError("from_latent_density=True needs fit_latent_density(estimator) first")
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=gen, device=self.device_).item())
        drawn = self.latent_density_.sample(n, random_state=seed)
        if isinstance(drawn, tuple):  # mixtures return (X, labels), grouped by component
            drawn = drawn[0]
        drawn = np.asarray(drawn, dtype=np.float32)[np.random.default_rng(seed).permutation(n)]
        if drawn.shape != (n, self.latent_dim):
            raise ValueError(f"the latent density's sample() gave shape {drawn.shape}; expected {(n, self.latent_dim)}")
        return torch.from_numpy(drawn).to(self.device_)

    def sample_latent_density(self, n_samples=1, random_state=None, *, mean=True):
        """``sample(n_samples, random_state, mean=mean, from_latent_density=True)``."""
        return self.sample(n_samples, random_state, mean=mean, from_latent_density=True)

    # -- files ----------------------------------------------------------------------------------
    def save(self, path):
        """Save the fitted model to ``path`` (weights, parameters, history; written atomically).

        The file is a ``torch.save`` archive of tensors, lists and JSON text that :meth:`load` reads
        with ``torch.load(..., weights_only=True)``: loading runs no code from the file. A latent
        density from :meth:`fit_latent_density` is not saved.
        """
        check_is_fitted(self, "model_")
        save_vae(self, path)

    @classmethod
    def load(cls, path, device=None):
        """Load a model written by :meth:`save`, onto ``device`` (default: the ``device`` parameter
        it was saved with, else the CPU)."""
        return load_vae(cls, path, device)
