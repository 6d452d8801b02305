"""Tests of the GAN: losses against hand computations, the gradient penalty against finite differences,
packing, training that moves samples toward the data, determinism, checkpoint/resume, DCGAN shapes,
errors and the NaN guard."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402

from fastdensity.generative import _gan  # noqa: E402
from fastdensity.generative._gan import GAN  # noqa: E402
from fastdensity.generative._gan_losses import (discriminator_loss, generator_loss, gradient_penalty,  # noqa: E402
                                                wgan_critic_loss, wgan_generator_loss)
from fastdensity.generative._gan_networks import (DCGANDiscriminator, DCGANGenerator, MLPDiscriminator,  # noqa: E402
                                                  pack_samples)


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _two_modes(n, seed=0):
    """A 1-D mixture of N(-2, 0.1²) and N(2, 0.1²), equal weights."""
    rng = np.random.default_rng(seed)
    return (np.where(rng.random(n) < 0.5, -2.0, 2.0) + 0.1 * rng.standard_normal(n))[:, None]


SMALL = dict(hidden=(32, 32), batch_size=64, decay_fraction=0.3)


# ------------------------------------------------------------------------------------------ losses
def test_losses_match_hand_computation():
    real = torch.tensor([2.0, -1.0], dtype=torch.float64)
    fake = torch.tensor([0.5, -3.0, 1.0], dtype=torch.float64)
    sigmoid = lambda t: 1.0 / (1.0 + math.exp(-t))  # noqa: E731
    expected_d = (-math.log(sigmoid(2.0)) - math.log(sigmoid(-1.0))) / 2 \
        + (-math.log(1 - sigmoid(0.5)) - math.log(1 - sigmoid(-3.0)) - math.log(1 - sigmoid(1.0))) / 3
    expected_g = (-math.log(sigmoid(0.5)) - math.log(sigmoid(-3.0)) - math.log(sigmoid(1.0))) / 3
    assert discriminator_loss(real, fake).item() == pytest.approx(expected_d, rel=1e-12)
    assert generator_loss(fake).item() == pytest.approx(expected_g, rel=1e-12)
    assert discriminator_loss(torch.zeros(4), torch.zeros(4)).item() == pytest.approx(2 * math.log(2), rel=1e-6)
    assert wgan_critic_loss(real, fake).item() == pytest.approx((0.5 - 3.0 + 1.0) / 3 - (2.0 - 1.0) / 2, rel=1e-12)
    assert wgan_generator_loss(fake).item() == pytest.approx(-(0.5 - 3.0 + 1.0) / 3, rel=1e-12)


def test_losses_finite_for_extreme_logits():
    # -log σ(-1000) = 1000 exactly in the limit; a naive log(sigmoid) gives inf
    assert generator_loss(torch.tensor([-1000.0])).item() == pytest.approx(1000.0)
    assert discriminator_loss(torch.tensor([1000.0]), torch.tensor([-1000.0])).item() == pytest.approx(0.0, abs=1e-6)


def _tiny_critic(seed=0):
    gen = torch.Generator().manual_seed(seed)
    W = torch.randn(5, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    b = torch.randn(5, generator=gen, dtype=torch.float64, requires_grad=True)
    v = torch.randn(5, generator=gen, dtype=torch.float64, requires_grad=True)
    return (lambda x: torch.tanh(x @ W.T + b) @ v), (W, b, v)


def test_gradient_penalty_matches_finite_differences():
    critic, params = _tiny_critic()
    gen = torch.Generator().manual_seed(1)
    real = torch.randn(4, 3, generator=gen, dtype=torch.float64)
    fake = torch.randn(4, 3, generator=gen, dtype=torch.float64)
    alpha = torch.rand(4, generator=gen, dtype=torch.float64)
    got = gradient_penalty(critic, real, fake, alpha)

    # the input gradient by central differences, the penalty from it
    h = 1e-6
    mixed = alpha[:, None] * real + (1 - alpha[:, None]) * fake
    penalty = 0.0
    with torch.no_grad():
        for i in range(4):
            grad = np.empty(3)
            for j in range(3):
                e = torch.zeros(3, dtype=torch.float64)
                e[j] = h
                grad[j] = (critic(mixed[i:i + 1] + e) - critic(mixed[i:i + 1] - e)).item() / (2 * h)
            penalty += (np.linalg.norm(grad) - 1.0) ** 2 / 4
    assert got.item() == pytest.approx(penalty, rel=1e-7)

    # differentiable in the critic's weights (create_graph): d penalty / d W[0, 0] by differences
    (gW,) = torch.autograd.grad(got, params[0])
    W = params[0]
    with torch.no_grad():
        W[0, 0] += h
    up = gradient_penalty(critic, real, fake, alpha).item()
    with torch.no_grad():
        W[0, 0] -= 2 * h
    down = gradient_penalty(critic, real, fake, alpha).item()
    assert gW[0, 0].item() == pytest.approx((up - down) / (2 * h), rel=1e-5)


# ----------------------------------------------------------------------------------------- packing
def test_pack_samples_vectors_and_images():
    x = torch.arange(12.0).reshape(6, 2)
    p = pack_samples(x, 3)
    assert p.shape == (2, 6)
    assert torch.equal(p[1], torch.cat([x[3], x[4], x[5]]))
    imgs = torch.arange(4 * 2 * 3 * 3, dtype=torch.float32).reshape(4, 2, 3, 3)
    q = pack_samples(imgs, 2)
    assert q.shape == (2, 4, 3, 3)
    assert torch.equal(q[1, 2:], imgs[3]) and torch.equal(q[1, :2], imgs[2])
    with pytest.raises(ValueError, match="multiple of pack"):
        pack_samples(x, 4)


def test_packed_discriminator_judges_whole_packs():
    D = MLPDiscriminator(2, (8,), pack=3)
    x = torch.randn(6, 2)
    out = D(pack_samples(x, 3))
    assert out.shape == (2,)
    # changing one member of the first pack changes its score and leaves the second alone
    y = x.clone()
    y[1] += 1.0
    out2 = D(pack_samples(y, 3))
    assert out2[0] != out[0] and out2[1] == out[1]


# ----------------------------------------------------------------------------------------- dcgan
@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32), (1, 9, 9)])
@pytest.mark.parametrize("pack", [1, 2])
def test_dcgan_shapes(shape, pack):
    G = DCGANGenerator(16, shape, base_channels=8)
    D = DCGANDiscriminator(shape, base_channels=8, pack=pack)
    x = G(torch.randn(4, 16))
    assert x.shape == (4, *shape)
    assert float(x.detach().min()) >= 0.0 and float(x.detach().max()) <= 1.0
    assert D(pack_samples(x, pack)).shape == (4 // pack,)


@pytest.mark.parametrize("images,expected", [((24, 8, 8), (5, 8, 8)), ((24, 1, 28, 28), (5, 1, 28, 28))])
def test_dcgan_estimator_round_trip(images, expected):
    X = np.random.default_rng(0).random(images)
    gan = GAN(architecture="dcgan", base_channels=8, latent_dim=8, batch_size=8, pack=2, n_steps=2,
              random_state=0).fit(X)
    assert gan.sample(5, random_state=0).shape == expected
    assert gan.discriminate(X[:3]).shape == (3,)


def test_dcgan_rejection_sampling_with_packing():
    X = np.random.default_rng(0).random((24, 8, 8))
    gan = GAN(architecture="dcgan", base_channels=8, latent_dim=8, batch_size=8, pack=2, n_steps=2, ratio_steps=3,
              rejection_sampling=True, random_state=0).fit(X)
    first = next(m for m in gan.ratio_classifier_.modules() if isinstance(m, torch.nn.Conv2d))
    assert first.in_channels == 1  # one image per input, whatever the GAN's packing
    s = gan.sample(4, random_state=0)
    assert s.shape == (4, 8, 8) and 0 < gan.acceptance_rate_ <= 1
    np.testing.assert_array_equal(s, gan.sample(4, random_state=0))


# -------------------------------------------------------------------------------------- training
def _near_modes(samples):
    """Fractions of 1-D samples within 0.5 of -2 and of +2."""
    s = np.asarray(samples).ravel()
    return np.mean(np.abs(s + 2) < 0.5), np.mean(np.abs(s - 2) < 0.5)


@pytest.mark.parametrize("pack", [1, 2])
def test_training_moves_samples_to_both_modes(pack):
    X = _two_modes(2000)
    base = GAN(n_steps=1, pack=pack, random_state=0, **SMALL).fit(X)
    left0, right0 = _near_modes(base.sample(2000, random_state=1))
    gan = GAN(n_steps=400, pack=pack, learning_rate=1e-3, random_state=0, **SMALL).fit(X)
    left, right = _near_modes(gan.sample(2000, random_state=1))
    # the untrained generator sits between the modes; the trained one puts most mass on both
    assert left0 + right0 < 0.5
    assert left + right > 0.7 and min(left, right) > 0.2, (left, right)
    hist = gan.loss_history_
    assert len(hist["generator_loss"]) == len(hist["discriminator_loss"]) == gan.history_.n_epochs
    assert gan.n_steps_ >= 400 and "gradient_penalty" not in hist


@pytest.mark.parametrize("ratio_steps", [0, 300])
def test_rejection_sampling_removes_samples_between_modes(ratio_steps):
    X = _two_modes(2000)
    params = dict(n_steps=400, learning_rate=1e-3, random_state=0, **SMALL)
    plain = GAN(**params).fit(X)
    drs = GAN(rejection_sampling=True, ratio_steps=ratio_steps, **params).fit(X)
    np.testing.assert_array_equal(plain.sample(50, random_state=2), GAN(**params).fit(X).sample(50, random_state=2))
    assert np.isfinite(drs.max_logit_) and 0 < drs.acceptance_rate_ <= 1
    assert (drs.ratio_classifier_ is None) == (ratio_steps == 0)
    s = drs.sample(2000, random_state=1)
    assert s.shape == (2000, 1)
    np.testing.assert_array_equal(s, drs.sample(2000, random_state=1))
    # same generator and discriminator (rejection only changes sampling), fewer samples off the modes
    z = torch.zeros(1, 2)
    np.testing.assert_array_equal(drs.generator_(z).detach(), plain.generator_(z).detach())
    np.testing.assert_array_equal(drs.discriminate(X[:5]), plain.discriminate(X[:5]))
    off_plain = 1 - sum(_near_modes(plain.sample(2000, random_state=1)))
    off_drs = 1 - sum(_near_modes(s))
    assert off_drs < 0.5 * off_plain, (off_plain, off_drs)


def test_ratio_classifier_learns_the_density_ratio():
    # A generator that puts 3/4 of its mass on the mode at +2 (the data put 1/2): the classifier's
    # logit estimates log p_data/p_G = log(1/2 / 3/4) there and log(1/2 / 1/4) at -2.
    from fastdensity.generative._gan_networks import MLPDiscriminator
    from fastdensity.generative._gan_ratio import fit_ratio_classifier

    class Lopsided(torch.nn.Module):
        def forward(self, z):
            return (torch.where(z[:, :1] < -0.6745, -2.0, 2.0) + 0.1 * z[:, 1:]).to(torch.float32)

    torch.manual_seed(0)
    data = torch.from_numpy(_two_modes(4000).astype(np.float32))
    clf = fit_ratio_classifier(MLPDiscriminator(1, (32, 32)), Lopsided(), data, latent_dim=2, n_steps=1500,
                               batch_size=256, learning_rate=2e-3, seed=0, device=torch.device("cpu"))
    with torch.no_grad():
        logits = clf(torch.tensor([[-2.0], [2.0]]))
    np.testing.assert_allclose(logits.numpy(), [math.log(2.0), math.log(2 / 3)], atol=0.15)
    assert not clf.training


def test_wgan_gp_with_rejection_sampling_uses_the_ratio_classifier():
    X = _two_modes(1000)
    gan = GAN(loss="wgan_gp", rejection_sampling=True, ratio_steps=100, ratio_hidden=(16,), n_steps=30, random_state=0,
              **SMALL).fit(X)
    assert [m.out_features for m in gan.ratio_classifier_.modules() if isinstance(m, torch.nn.Linear)] == [16, 1]
    assert gan.sample(20, random_state=0).shape == (20, 1)


def test_rejection_sampling_switched_on_after_fit_asks_for_a_refit():
    gan = GAN(n_steps=5, random_state=0, **SMALL).fit(_two_modes(200))
    gan.set_params(rejection_sampling=True)
    with pytest.raises(ValueError, match="rejection_sampling=True was set after fit"):
        gan.sample(3)
    gan.fit(_two_modes(200))
    assert gan.sample(3, random_state=0).shape == (3, 1)
    gan.set_params(rejection_sampling=False).fit(_two_modes(200))
    assert not hasattr(gan, "max_logit_") and not hasattr(gan, "ratio_classifier_")


def test_wgan_gp_moves_samples_to_the_data():
    # 2-D: in 1-D the two-sided penalty traps the critic at slope -1 (|slope| = 1 on both sides of
    # a barrier at 0), so the generator can run away; in 2-D the gradient can turn
    rng = np.random.default_rng(0)
    X = np.c_[np.where(rng.random(2000) < 0.5, -2.0, 2.0), np.zeros(2000)] + 0.1 * rng.standard_normal((2000, 2))

    def median_distance(gan):
        s = gan.sample(2000, random_state=1)
        return np.median(np.minimum(np.hypot(s[:, 0] + 2, s[:, 1]), np.hypot(s[:, 0] - 2, s[:, 1])))

    base = GAN(loss="wgan_gp", n_steps=1, random_state=0, **SMALL).fit(X)
    gan = GAN(loss="wgan_gp", n_steps=400, random_state=0, **SMALL).fit(X)
    assert median_distance(gan) < 0.35 * median_distance(base)
    assert gan.loss_history_["gradient_penalty"][-1] < gan.loss_history_["gradient_penalty"][0]


def test_discriminate_prefers_data_over_gaps():
    X = _two_modes(2000)
    for pack in (1, 3):
        gan = GAN(n_steps=400, pack=pack, learning_rate=1e-3, random_state=0, batch_size=63,
                  hidden=(32, 32)).fit(X)
        scores = gan.discriminate(np.array([[-2.0], [2.0], [0.0]]))
        assert scores.shape == (3,)
        assert min(scores[0], scores[1]) > scores[2], (pack, scores)


def test_deterministic_with_random_state():
    X = _two_modes(500)
    a = GAN(n_steps=30, pack=2, random_state=3, **SMALL).fit(X)
    b = GAN(n_steps=30, pack=2, random_state=3, **SMALL).fit(X)
    c = GAN(n_steps=30, pack=2, random_state=4, **SMALL).fit(X)
    assert a.loss_history_ == b.loss_history_
    np.testing.assert_array_equal(a.sample(50, random_state=0), b.sample(50, random_state=0))
    assert not np.array_equal(a.sample(50, random_state=0), c.sample(50, random_state=0))
    assert not np.array_equal(a.sample(50, random_state=0), a.sample(50, random_state=1))


@pytest.mark.parametrize("loss", ["non_saturating", "wgan_gp"])
def test_checkpoint_resume_continues_identically(tmp_path, monkeypatch, loss):
    X = _two_modes(640)
    params = dict(max_epochs=4, loss=loss, pack=2, random_state=5, n_critic=2, **SMALL)
    full = GAN(**params).fit(X)

    # the same run, interrupted in epoch 3 (after the checkpoint of epoch 2), then resumed
    original = _gan._GANTask.train_step
    calls = {"n": 0}

    def failing(self, batch):
        calls["n"] += 1
        if calls["n"] == 2 * 5 + 2:  # 5 steps per epoch (640 / (64 · 2))
            raise KeyboardInterrupt
        return original(self, batch)

    monkeypatch.setattr(_gan._GANTask, "train_step", failing)
    with pytest.raises(KeyboardInterrupt):
        GAN(checkpoint_dir=tmp_path, **params).fit(X)
    monkeypatch.setattr(_gan._GANTask, "train_step", original)
    resumed = GAN(checkpoint_dir=tmp_path, resume=True, **params).fit(X)
    assert resumed.n_steps_ == full.n_steps_ == 20
    assert resumed.loss_history_ == full.loss_history_
    np.testing.assert_array_equal(resumed.sample(20, random_state=0), full.sample(20, random_state=0))


# ------------------------------------------------------------------------------------ array types
def test_array_types_and_dtypes():
    X = _two_modes(300).astype(np.float32)
    gan = GAN(n_steps=2, random_state=0, **SMALL).fit(X)
    s = gan.sample(7, random_state=0)
    assert isinstance(s, np.ndarray) and s.dtype == np.float32 and s.shape == (7, 1)
    gan64 = GAN(n_steps=2, random_state=0, **SMALL).fit(X.astype(np.float64))
    assert gan64.sample(3).dtype == np.float64 and gan64.discriminate(X[:4]).dtype == np.float64
    gant = GAN(n_steps=2, random_state=0, **SMALL).fit(torch.from_numpy(X))
    t = gant.sample(7, random_state=0)
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float32
    # Same weights and noise as the NumPy fit, and the same batch of 7: exactly equal. (4 rows
    # against s[:4] held only where the float32 GEMM of 4 and of 7 rows sums in the same order.)
    np.testing.assert_array_equal(t.numpy(), s)
    # MLP on images: flattened for the networks, samples in the input's shape
    imgs = GAN(n_steps=1, random_state=0, **SMALL).fit(np.random.default_rng(0).random((64, 4, 4)))
    assert imgs.sample(3).shape == (3, 4, 4) and imgs.n_features_in_ == 16
    assert clone(gan).get_params() == gan.get_params()


# ---------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize("params,match", [
    (dict(architecture="cnn"), "architecture must be one of"),
    (dict(loss="least_squares"), "loss must be one of"),
    (dict(pack=0), "pack must be a positive int"),
    (dict(pack=3, batch_size=64), r"batch_size \(64\) must be a multiple of pack \(3\)"),
    (dict(max_epochs=2), "n_steps or max_epochs, not both"),
    (dict(learning_rate=-1.0), "learning_rate must be a positive finite number or None; got -1.0"),
    (dict(betas=(0.5,)), "betas must be a pair"),
    (dict(decay_fraction=1.0), r"decay_fraction must be a finite number in \[0, 1\) or None; got 1.0"),
    (dict(hidden=(32, 0)), "hidden must be a positive int or a sequence"),
    (dict(gp_weight=-1), "gp_weight must be a non-negative finite number or None; got -1"),
    (dict(random_state=-1), "random_state must be None"),
    (dict(loss="wgan_gp", rejection_sampling=True, ratio_steps=0),
     "rejection_sampling=True with ratio_steps=0 needs loss='non_saturating'"),
    (dict(pack=2, rejection_sampling=True, ratio_steps=0), "rejection_sampling=True with ratio_steps=0 needs pack=1"),
    (dict(ratio_steps=-1), "ratio_steps must be a non-negative int"),
    (dict(ratio_steps=2.5), "ratio_steps must be a non-negative int"),
    (dict(ratio_hidden=()), "ratio_hidden must hold at least one layer width"),
    (dict(ratio_hidden=(8, -1)), "ratio_hidden must be a positive int or a sequence"),
])
def test_parameter_errors(params, match):
    with pytest.raises(ValueError, match=match):
        GAN(**{"n_steps": 1, **params}).fit(_two_modes(100))


def test_data_errors():
    with pytest.raises(ValueError, match="NaN or inf"):
        GAN(n_steps=1).fit(np.array([[0.0], [np.nan]]))
    with pytest.raises(ValueError, match=r"shape \(n_samples, ...\)"):
        GAN(n_steps=1).fit(np.zeros(10))
    with pytest.raises(ValueError, match=r"pixel values in \[0, 1\]"):
        GAN(architecture="dcgan", n_steps=1).fit(np.full((4, 8, 8), 2.0))
    with pytest.raises(ValueError, match=r"images of shape \(n, h, w\)"):
        GAN(architecture="dcgan", n_steps=1).fit(np.zeros((4, 64)))
    with pytest.raises(TypeError, match="numeric array"):
        GAN(n_steps=1).fit(np.array([["a"], ["b"]]))
    with pytest.raises(NotFittedError, match="not fitted"):
        GAN().sample(3)
    gan = GAN(n_steps=1, **SMALL).fit(_two_modes(100))
    with pytest.raises(ValueError, match=r"fitted on \(1,\)"):
        gan.discriminate(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="n_samples must be a positive int"):
        gan.sample(0)


def test_nan_guard_raises_floating_point_error():
    with pytest.raises(FloatingPointError, match="non-finite"):
        GAN(n_steps=200, learning_rate=1e30, random_state=0, **SMALL).fit(_two_modes(640))


@pytest.mark.slow
def test_ring_benchmark_one_seed():
    # bench/generative_gan.py in small: over 5 seeds the defaults gave 7.8/8 modes at 84 % high quality
    # plainly; pack=2 gave 8/8 at 72 % plainly and 8/8 at 98.0 % (97.4-98.8 %) with rejection sampling
    # (bench/results/gan-modes-cpu-2026-11-24.txt)
    from fastdensity.datasets import make_ring, mode_coverage, ring_centers

    X = make_ring(20_000, random_state=0)
    gan = GAN(random_state=0, pack=2, rejection_sampling=True, progress=False).fit(X)
    drs = mode_coverage(gan.sample(2500, random_state=0), ring_centers(), 0.01)
    gan.set_params(rejection_sampling=False)
    plain = mode_coverage(gan.sample(2500, random_state=0), ring_centers(), 0.01)
    assert drs.modes_captured == 8 and drs.high_quality_fraction > 0.96, drs
    assert plain.modes_captured == 8 and plain.high_quality_fraction > 0.6, plain
    assert drs.high_quality_fraction > plain.high_quality_fraction + 0.15


@pytest.mark.gpu
@pytest.mark.parametrize("architecture", ["mlp", "dcgan"])
def test_cuda_tensors_stay_on_the_device(architecture):
    if architecture == "mlp":
        X, params = torch.as_tensor(_two_modes(512), dtype=torch.float32).cuda(), SMALL
    else:
        X, params = torch.rand(64, 8, 8).cuda(), dict(base_channels=8, latent_dim=8, batch_size=16)
    gan = GAN(architecture=architecture, n_steps=20, pack=2, rejection_sampling=True, ratio_steps=20, random_state=0,
              **params).fit(X)
    assert gan.device_.type == "cuda"
    assert next(gan.ratio_classifier_.parameters()).is_cuda
    s = gan.sample(7, random_state=0)
    assert s.is_cuda and s.shape == (7, *X.shape[1:]) and s.dtype == torch.float32
    assert gan.discriminate(X[:5]).is_cuda
