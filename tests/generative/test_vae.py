"""VAE: training improves the bound, IWAE ≥ ELBO and → log p(x), likelihoods, inputs, determinism, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from sklearn.exceptions import NotFittedError  # noqa: E402

from fastdensity.datasets import load_digits  # noqa: E402
from fastdensity.generative import VAE  # noqa: E402
from fastdensity.generative import _vae_score  # noqa: E402
from fastdensity import GaussianMixture, KernelDensity  # noqa: E402

SMALL = {"hidden": (64,), "latent_dim": 4, "batch_size": 64}


@pytest.fixture(scope="module")
def digits():
    return (load_digits(binarize=True, split="train")[:400], load_digits(binarize=True, split="validation"),
            load_digits(binarize=True, split="test")[:100])


@pytest.fixture(scope="module")
def trained(digits):
    Xtr, Xva, _ = digits
    return VAE(max_epochs=40, random_state=0, **SMALL).fit(Xtr, validation_data=Xva)


def test_elbo_improves_over_training(digits):
    Xtr, _, Xte = digits
    short = VAE(max_epochs=1, random_state=0, **SMALL).fit(Xtr)
    long = VAE(max_epochs=30, random_state=0, **SMALL).fit(Xtr)
    assert long.loss_history_[-1] < long.loss_history_[0] - 5
    held_out = [m.elbo(Xte, n_samples=10, random_state=0).mean() for m in (short, long)]
    assert held_out[1] > held_out[0] + 5


def test_history_and_early_stopping_attributes(trained):
    h = trained.history_
    assert {"train_loss", "train_kl", "val_loss", "val_kl", "val_nll", "val_iwae"} <= set(h)
    assert trained.loss_history_ == h["train_loss"] and trained.n_epochs_ == len(h["train_loss"])
    assert h.best_epoch == int(np.argmin(h["val_iwae"])) + 1 == trained.best_epoch_


def test_iwae_at_least_elbo_and_increasing_in_k(trained, digits):
    Xte = digits[2]
    elbo = trained.elbo(Xte, n_samples=64, random_state=1).mean()
    bounds = [trained.score_samples(Xte, n_importance=k, random_state=2).mean() for k in (1, 10, 100, 1000)]
    assert abs(bounds[0] - elbo) < 0.5  # K = 1 is a one-sample ELBO
    assert bounds[0] < bounds[1] < bounds[2] < bounds[3]
    assert bounds[1] > elbo


def test_iwae_converges_to_exact_log_likelihood_in_one_dimension(digits):
    """With latent_dim = 1, log p(x) = log ∫ p(x|z) N(z; 0, 1) dz by quadrature is the oracle."""
    Xtr = digits[0]
    vae = VAE(latent_dim=1, hidden=(64,), max_epochs=60, random_state=0).fit(Xtr)
    x = torch.as_tensor(Xtr[:20])
    z = torch.linspace(-8, 8, 4001)
    model = vae.model_
    with torch.no_grad():
        params = model.decode(z[:, None])
        log_px = torch.stack([model.log_likelihood(params, xi.expand(len(z), 8, 8)) for xi in x]).double()
    log_joint = log_px - 0.5 * z.double() ** 2 - 0.5 * math.log(2 * math.pi)
    exact = (torch.logsumexp(log_joint, dim=1) + math.log(float(z[1] - z[0]))).numpy()
    iwae = vae.score_samples(Xtr[:20], n_importance=2000, random_state=0)
    assert np.all(iwae <= exact + 0.1)  # a lower bound, up to Monte Carlo noise (about 0.02 here)
    assert abs(np.mean(exact - iwae)) < 0.03  # and a tight one with K = 2000
    assert np.mean(exact - vae.elbo(Xtr[:20], n_samples=200, random_state=0)) > np.mean(exact - iwae) + 0.02


def test_score_samples_chunking_does_not_bias(trained, digits, monkeypatch):
    Xte = digits[2][:50]
    whole = trained.score_samples(Xte, n_importance=400, random_state=3)
    monkeypatch.setattr(_vae_score, "_ROWS_PER_CHUNK", 7)
    monkeypatch.setattr(_vae_score, "n_log_weight_chunk", lambda model, n: 33)
    chunked = trained.score_samples(Xte, n_importance=400, random_state=3)
    # other chunks draw other samples: equal up to Monte Carlo noise, with no bias
    assert abs(whole.mean() - chunked.mean()) < 0.05 and np.corrcoef(whole, chunked)[0, 1] > 0.99


@pytest.mark.parametrize("architecture", ["mlp", "conv"])
@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian", "categorical"])
def test_architectures_and_likelihoods_fit_and_score(architecture, likelihood):
    X = load_digits(split="train")[:200]  # grey levels in [0, 1]
    if likelihood == "bernoulli":
        X = (X >= 0.5).astype(np.float32)
    hidden = (8, 16) if architecture == "conv" else (32,)
    vae = VAE(architecture=architecture, likelihood=likelihood, hidden=hidden, latent_dim=3, n_categories=17,
              max_epochs=6, batch_size=50, random_state=0).fit(X)
    assert vae.loss_history_[-1] < vae.loss_history_[0]
    scores = vae.score_samples(X[:10], n_importance=20, random_state=0)
    assert scores.shape == (10,) and scores.dtype == np.float64 and np.isfinite(scores).all()
    assert np.all(scores >= vae.elbo(X[:10], random_state=0) - 5)
    for out in (vae.sample(3, random_state=0), vae.reconstruct(X[:3]), vae.sample(3, random_state=0, mean=False)):
        assert out.shape == (3, 8, 8) and np.isfinite(out).all()
    if likelihood != "gaussian":
        assert vae.sample(5, random_state=0).min() >= 0 and vae.sample(5, random_state=0).max() <= 1
    if likelihood == "bernoulli":
        assert set(np.unique(vae.sample(5, random_state=0, mean=False))) <= {0.0, 1.0}
    if likelihood == "categorical":  # draws are quantised levels
        levels = vae.sample(5, random_state=0, mean=False) * 16
        np.testing.assert_allclose(levels, np.rint(levels), atol=1e-5)


def test_gaussian_log_variance_is_clamped_on_constant_pixels():
    X = load_digits(split="train")[:200]  # the corner pixels are always 0
    vae = VAE(likelihood="gaussian", min_logvar=-3.0, learning_rate=1e-2, max_epochs=30, random_state=0,
              **SMALL).fit(X)
    logvar = vae.model_.gaussian_logvar().detach()
    assert logvar.min().item() == -3.0 and logvar[0, 0].item() == -3.0
    assert np.isfinite(vae.score_samples(X[:5], n_importance=10, random_state=0)).all()


def test_channels_first_images_and_flat_rows(digits):
    Xtr = digits[0][:200]
    conv = VAE(architecture="conv", hidden=(8,), latent_dim=2, max_epochs=2, random_state=0).fit(Xtr[:, None])
    assert conv.sample(2, random_state=0).shape == (2, 1, 8, 8) and conv.model_.data_shape == (1, 8, 8)
    flat = VAE(max_epochs=2, random_state=0, **SMALL).fit(Xtr.reshape(200, 64))
    assert flat.sample(2, random_state=0).shape == (2, 64)
    assert flat.interpolate(Xtr[0].ravel(), Xtr[1].ravel(), steps=3).shape == (3, 64)


def test_encode_decode_reconstruct_interpolate_agree(trained, digits):
    X = digits[2][:5]
    mean, logvar = trained.encode(X, return_logvar=True)
    assert mean.shape == logvar.shape == (5, SMALL["latent_dim"])
    np.testing.assert_array_equal(mean, trained.encode(X))
    np.testing.assert_allclose(trained.decode(mean), trained.reconstruct(X), rtol=1e-6)
    path = trained.interpolate(X[0], X[1], steps=5)
    assert path.shape == (5, 8, 8)
    np.testing.assert_allclose(path[0], trained.reconstruct(X[:1])[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(path[-1], trained.reconstruct(X[1:2])[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(path[2], trained.decode((mean[:1] + mean[1:2]) / 2)[0], rtol=1e-4, atol=1e-6)


def test_numpy_and_torch_inputs_agree(trained, digits):
    X = digits[2][:10]
    t = torch.as_tensor(X)
    s_np = trained.score_samples(X, n_importance=30, random_state=5)
    s_t = trained.score_samples(t, n_importance=30, random_state=5)
    assert isinstance(s_np, np.ndarray) and isinstance(s_t, torch.Tensor) and s_t.dtype == torch.float64
    np.testing.assert_array_equal(s_np, s_t.numpy())
    assert isinstance(trained.reconstruct(t), torch.Tensor) and isinstance(trained.encode(t), torch.Tensor)
    np.testing.assert_array_equal(trained.reconstruct(X), trained.reconstruct(t).numpy())
    # training on a tensor equals training on the array
    a = VAE(max_epochs=2, random_state=1, **SMALL).fit(X)
    b = VAE(max_epochs=2, random_state=1, **SMALL).fit(t)
    assert a.loss_history_ == b.loss_history_
    assert isinstance(b.sample(2, random_state=0), torch.Tensor) and isinstance(a.sample(2), np.ndarray)


def test_deterministic_with_random_state(digits):
    Xtr, Xva, Xte = digits
    fits = [VAE(max_epochs=3, random_state=4, **SMALL).fit(Xtr[:200], validation_data=Xva) for _ in range(2)]
    assert fits[0].history_ == fits[1].history_
    np.testing.assert_array_equal(fits[0].score_samples(Xte, 20, random_state=0), fits[1].score_samples(Xte, 20, 0))
    np.testing.assert_array_equal(fits[0].sample(4, random_state=9), fits[1].sample(4, random_state=9))
    assert not np.array_equal(fits[0].sample(4, random_state=9), fits[0].sample(4, random_state=10))
    other = VAE(max_epochs=3, random_state=5, **SMALL).fit(Xtr[:200], validation_data=Xva)
    assert other.loss_history_ != fits[0].loss_history_


def test_checkpoint_resume_continues_identically(digits, tmp_path):
    Xtr, Xva, Xte = digits
    kw = dict(random_state=2, kl_warmup_epochs=3, **SMALL)  # warm-up: the task's step count must resume too
    full = VAE(max_epochs=5, **kw).fit(Xtr[:200], validation_data=Xva)
    VAE(max_epochs=2, checkpoint_dir=tmp_path, **kw).fit(Xtr[:200], validation_data=Xva)
    resumed = VAE(max_epochs=5, checkpoint_dir=tmp_path, resume=True, **kw).fit(Xtr[:200], validation_data=Xva)
    assert dict(resumed.history_) == dict(full.history_)
    for k, v in full.model_.state_dict().items():
        assert torch.equal(v, resumed.model_.state_dict()[k])


def test_nan_in_training_stops_with_clear_error(digits, monkeypatch):
    from fastdensity.generative._vae_model import VAEModel

    calls = {"n": 0}
    forward = VAEModel.forward

    def poisoned(self, x):  # the 7th forward pass (epoch 2, step 2 of 5) overflows
        calls["n"] += 1
        log_px, kl = forward(self, x)
        return (log_px * math.inf if calls["n"] == 7 else log_px), kl

    monkeypatch.setattr(VAEModel, "forward", poisoned)
    with pytest.raises(FloatingPointError, match=r"non-finite 'loss' \((-)?inf\) at epoch 2, step 2"):
        VAE(max_epochs=3, random_state=0, **SMALL).fit(digits[0][:300])


@pytest.mark.parametrize("estimator", [GaussianMixture(n_components=4, random_state=0),
                                       KernelDensity(bandwidth=0.3)])
def test_fit_latent_density(trained, digits, estimator):
    trained.fit_latent_density(estimator)
    codes = trained.encode(digits[0])
    np.testing.assert_allclose(trained.train_latent_means_, codes, rtol=1e-5, atol=1e-6)
    draws = trained.sample(500, random_state=0, from_latent_density=True)
    assert draws.shape == (500, 8, 8) and np.isfinite(draws).all()
    np.testing.assert_array_equal(draws[:3], trained.sample_latent_density(500, random_state=0)[:3])
    # decoded draws from the fitted code density look like the data more than prior draws do
    # (mean pixel intensity: the aggregate posterior differs from N(0, I))
    data_mean = digits[0].mean()
    prior = trained.sample(500, random_state=0)
    assert abs(draws.mean() - data_mean) < abs(prior.mean() - data_mean) + 0.02


def test_latent_density_on_other_data_and_errors(trained, digits):
    gm = GaussianMixture(n_components=2, random_state=0)
    trained.fit_latent_density(gm, X=digits[2])
    np.testing.assert_allclose(gm.weights_ @ gm.means_, trained.encode(digits[2]).mean(0), rtol=1e-4, atol=1e-4)
    with pytest.raises(TypeError, match="estimator must have fit"):
        trained.fit_latent_density(object())
    fresh = VAE(max_epochs=1, random_state=0, **SMALL).fit(digits[0][:100])
    with pytest.raises(ValueError, match="needs fit_latent_density"):
        fresh.sample(2, from_latent_density=True)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"likelihood": "poisson"}, r"likelihood must be one of \('bernoulli', 'gaussian', 'categorical'\); got 'poisson'"),
        ({"architecture": "resnet"}, r"architecture must be one of \('mlp', 'conv'\)"),
        ({"latent_dim": 0}, "latent_dim must be a positive int"),
        ({"hidden": (64, -1)}, "hidden must be a non-empty tuple of positive ints"),
        ({"beta": -1.0}, "beta must be a non-negative finite number; got -1.0"),
        ({"learning_rate": 0}, "learning_rate must be a positive finite number; got 0"),
        ({"n_categories": 1}, "n_categories must be an integer >= 2; got 1"),
        ({"patience": 0}, "patience must be a positive int"),
        ({"architecture": "conv", "hidden": (8, 8, 8, 8)}, "halves the image 4 times"),
        ({"random_state": "a"}, "random_state must be None"),
    ],
)
def test_parameter_errors(kwargs, match, digits):
    with pytest.raises(ValueError, match=match):
        VAE(max_epochs=1, **kwargs).fit(digits[0][:50])


def test_data_errors(trained, digits):
    X = digits[0][:50]
    with pytest.raises(ValueError, match=r"needs X in \[0, 1\]"):
        VAE(max_epochs=1).fit(X * 2)
    with pytest.raises(ValueError, match="X contains NaN or inf"):
        VAE(max_epochs=1).fit(np.where(X > 0.5, np.nan, X))
    with pytest.raises(ValueError, match=r"architecture='conv' needs images"):
        VAE(architecture="conv", max_epochs=1).fit(X.reshape(50, 64))
    with pytest.raises(TypeError, match="X must hold real numbers"):
        VAE(max_epochs=1).fit(np.array([["a", "b"]]))
    with pytest.raises(ValueError, match="validation_data must have samples of shape"):
        VAE(max_epochs=1).fit(X, validation_data=X.reshape(50, 64))
    with pytest.raises(ValueError, match=r"samples of shape \(8, 8\)"):
        trained.score_samples(X.reshape(50, 64))
    with pytest.raises(ValueError, match=r"Z must have shape \(n, 4\)"):
        trained.decode(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="n_importance must be a positive int"):
        trained.score_samples(X, n_importance=0)
    with pytest.raises(ValueError, match="x0 must be one sample"):
        trained.interpolate(X[:2], X[2])
    with pytest.raises(NotFittedError, match="not fitted"):
        VAE().sample(2)


@pytest.mark.gpu
def test_cuda_tensors_stay_on_the_device(digits):
    X = torch.as_tensor(digits[0][:200]).cuda()
    vae = VAE(max_epochs=2, random_state=0, **SMALL).fit(X)
    assert vae.device_.type == "cuda"
    out = vae.score_samples(X[:10], n_importance=50, random_state=0)
    assert out.is_cuda and out.dtype == torch.float64
    assert vae.sample(3, random_state=0).is_cuda


def test_save_and_load_round_trip(trained, digits, tmp_path):
    path = tmp_path / "vae.pt"
    trained.save(path)
    state = torch.load(path, weights_only=True)  # safe to load: no code in the file
    assert state["format"] == "fastdensity.vae/1"
    loaded = VAE.load(path)
    assert loaded.get_params() == trained.get_params()
    X = digits[2][:10]
    np.testing.assert_array_equal(loaded.score_samples(X, 50, random_state=0), trained.score_samples(X, 50, 0))
    np.testing.assert_array_equal(loaded.sample(3, random_state=1), trained.sample(3, random_state=1))
    np.testing.assert_array_equal(loaded.train_latent_means_, trained.train_latent_means_)
    assert dict(loaded.history_) == dict(trained.history_) and loaded.best_epoch_ == trained.best_epoch_
    assert [p.name for p in tmp_path.iterdir()] == ["vae.pt"]
    torch.save({"format": "other"}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a fastdensity VAE file"):
        VAE.load(tmp_path / "other.pt")


def test_monitor_elbo_and_beta(digits):
    Xtr, Xva, _ = digits
    vae = VAE(monitor="elbo", beta=0.5, max_epochs=8, patience=3, random_state=0, **SMALL).fit(Xtr[:200],
                                                                                               validation_data=Xva)
    h = vae.history_
    assert "val_iwae" not in h and h.best_epoch == int(np.argmin(h["val_loss"])) + 1
    # training minimises -(log p(x|z) - 0.5 KL); validation reports the true ELBO (beta = 1)
    np.testing.assert_allclose(h["val_loss"], np.asarray(h["val_nll"]) + np.asarray(h["val_kl"]), rtol=1e-5)
