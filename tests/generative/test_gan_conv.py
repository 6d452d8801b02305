"""Tests of ``GAN(architecture="conv")`` and its parts: network shapes on 8×8 and 28×28, the EMA
update, DiffAugment (what each policy does, gradients), the hinge loss and R1 penalty against hand
computations, determinism, checkpoint/resume with the EMA, save/load, parameter errors."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from fastdensity.generative import GAN  # noqa: E402
from fastdensity.generative._gan_augment import diff_augment, parse_policy  # noqa: E402
from fastdensity.generative._gan_conv import EMA, ConvDiscriminator, ConvGenerator, conv_doublings  # noqa: E402
from fastdensity.generative._gan_losses import (hinge_discriminator_loss, hinge_generator_loss,  # noqa: E402
                                                r1_penalty)
from fastdensity.generative._gan_networks import pack_samples  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


TINY = dict(architecture="conv", base_channels=4, latent_dim=8, batch_size=16)


def _images(shape, seed=0):
    return np.random.default_rng(seed).random(shape).astype(np.float32)


# ------------------------------------------------------------------------------------------ networks
@pytest.mark.parametrize("shape,doublings", [((1, 8, 8), 2), ((1, 28, 28), 2), ((3, 32, 32), 2), ((1, 6, 6), 1),
                                             ((1, 9, 9), 0)])
@pytest.mark.parametrize("pack", [1, 2])
def test_conv_shapes(shape, doublings, pack):
    assert conv_doublings(shape[1]) == doublings
    G = ConvGenerator(16, shape, base_channels=8)
    D = ConvDiscriminator(shape, base_channels=8, pack=pack, spectral_norm=True)
    x = G(torch.randn(4, 16))
    assert x.shape == (4, *shape)
    assert float(x.detach().abs().max()) < 1.0  # tanh
    assert D(pack_samples(x, pack)).shape == (4 // pack,)


@pytest.mark.parametrize("images,expected", [((40, 8, 8), (5, 8, 8)), ((24, 1, 28, 28), (5, 1, 28, 28))])
def test_conv_estimator_on_8x8_and_synthetic_28x28(images, expected):
    X = _images(images)
    gan = GAN(n_steps=3, random_state=0, **TINY).fit(X)
    s = gan.sample(5, random_state=0)
    assert s.shape == expected and s.dtype == np.float32
    assert s.min() >= 0.0 and s.max() <= 1.0  # back in the pixel units of X
    assert gan.discriminate(X[:3]).shape == (3,)
    assert gan.generator_ema_ is not None and gan.n_steps_ >= 3
    # the defaults of "conv": hinge loss, spectral norm, EMA; no DiffAugment (it hurt on the digits)
    p = gan._resolved()
    assert p["loss"] == "hinge" and p["spectral_norm"] and p["augment"] == () and p["ema_decay"] > 0


@pytest.mark.parametrize("architecture, decay", [("conv", 0.3), ("mlp", 0.6), ("dcgan", 0.6)])
def test_decay_fraction_defaults_per_architecture_and_an_explicit_one_wins(architecture, decay):
    # None: the measured default of the architecture (digits for "conv", the ring for the others)
    assert GAN(architecture=architecture)._resolved()["decay_fraction"] == decay
    assert GAN(architecture=architecture, decay_fraction=0.0)._resolved()["decay_fraction"] == 0.0
    conv = GAN(architecture="conv")._resolved()
    assert (conv["batch_size"], conv["learning_rate"], conv["d_learning_rate"]) == (64, 7e-4, 2.8e-3)


def test_conv_samples_come_from_the_ema_generator():
    gan = GAN(n_steps=4, random_state=0, **TINY).fit(_images((32, 8, 8)))
    z = torch.randn(6, 8, generator=torch.Generator().manual_seed(_seed(0)))
    with torch.no_grad():
        expected = ((gan.generator_ema_(z) + 1) / 2).clamp(0, 1).squeeze(1).numpy()
        trained = ((gan.generator_(z) + 1) / 2).clamp(0, 1).squeeze(1).numpy()
    np.testing.assert_array_equal(gan.sample(6, random_state=0), expected)
    assert not np.array_equal(expected, trained)


def _seed(random_state):
    from fastdensity.generative._gan_params import _seed_from

    return _seed_from(random_state)


# ------------------------------------------------------------------------------------------ EMA
def test_ema_update_matches_hand_computation():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    ema = EMA(net, decay=0.9)
    start = [p.detach().clone() for p in ema.module.parameters()]
    assert all(torch.equal(a, b) for a, b in zip(start, net.parameters()))
    assert not any(p.requires_grad for p in ema.module.parameters())
    expected = start
    for step in range(30):
        with torch.no_grad():
            for p in net.parameters():
                p.add_(torch.randn_like(p))
        net(torch.randn(8, 3))  # moves the batch-norm statistics
        ema.update(step)
        beta = min(0.9, (1 + step) / (10 + step))
        assert ema.beta(step) == pytest.approx(beta)
        expected = [beta * e + (1 - beta) * p.detach() for e, p in zip(expected, net.parameters())]
    for got, want in zip(ema.module.parameters(), expected):
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)
    for got, want in zip(ema.module.buffers(), net.buffers()):
        assert torch.equal(got, want)  # buffers are copied
    # decay 0 follows the source exactly
    zero = EMA(net, 0.0)
    with torch.no_grad():
        net[0].weight.add_(1.0)
    zero.update(100)
    assert torch.equal(zero.module[0].weight, net[0].weight)
    with pytest.raises(ValueError, match="EMA decay"):
        EMA(net, 1.0)


# ---------------------------------------------------------------------------------------- DiffAugment
def test_translation_moves_whole_images_by_at_most_the_radius():
    torch.manual_seed(0)
    x = torch.full((200, 1, 8, 8), -1.0)
    x[:, 0, 3, 4] = 1.0  # one bright pixel
    y = diff_augment(x, ("translation",))
    assert y.shape == x.shape
    bright = (y == 1.0).nonzero()[:, 2:]
    assert bright.shape[0] == 200  # the pixel is never lost (radius 1 on 8×8) and never duplicated
    dy, dx = bright[:, 0] - 3, bright[:, 1] - 4
    assert dy.abs().max() == 1 and dx.abs().max() == 1
    assert len({(int(a), int(b)) for a, b in zip(dy, dx)}) == 9  # every offset occurs
    assert bool(((y == -1.0) | (y == 1.0)).all())  # vacated pixels are background


def test_cutout_blanks_one_square():
    torch.manual_seed(1)
    x = torch.ones(100, 1, 8, 8)
    y = diff_augment(x, ("cutout",))
    blanked = (y == -1.0).sum(dim=(1, 2, 3))
    assert bool((blanked <= 16).all()) and bool((blanked >= 4).all())  # a 4×4 square, maybe cut by the border
    assert (blanked == 16).float().mean() > 0.2


@pytest.mark.parametrize("policy", ["translation", "cutout", "brightness", "contrast",
                                    "translation,cutout,brightness,contrast"])
def test_diff_augment_is_differentiable(policy):
    names = parse_policy(policy)
    x = torch.randn(3, 2, 6, 6, dtype=torch.float64, requires_grad=True)
    seed = 5

    def f(inp):
        torch.manual_seed(seed)  # the same transformation at every evaluation
        return diff_augment(inp, names)

    assert torch.autograd.gradcheck(f, (x,))
    # a generator learns through it: gradients reach its input
    torch.manual_seed(seed)
    diff_augment(x, names).sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0


def test_parse_policy():
    assert parse_policy(None) == () and parse_policy("") == ()
    assert parse_policy(" translation , cutout") == ("translation", "cutout")
    assert parse_policy(["cutout"]) == ("cutout",)
    with pytest.raises(ValueError, match="unknown policy 'rotate'"):
        parse_policy("translation,rotate")


# ------------------------------------------------------------------------------------------ losses
def test_hinge_and_r1_match_hand_computation():
    real = torch.tensor([2.0, 0.5, -1.0], dtype=torch.float64)
    fake = torch.tensor([-3.0, 0.0], dtype=torch.float64)
    # relu(1 - real) = [0, 0.5, 2], relu(1 + fake) = [0, 1]
    assert hinge_discriminator_loss(real, fake).item() == pytest.approx(2.5 / 3 + 0.5)
    assert hinge_generator_loss(fake).item() == pytest.approx(1.5)
    W = torch.tensor([[1.0, -2.0], [0.5, 3.0]], dtype=torch.float64, requires_grad=True)
    x = torch.tensor([[1.0, 2.0], [-1.0, 0.5]], dtype=torch.float64)
    # D(x) = sum(W x) per row: gradient in x is the column sums of W, (1.5, 1.0), |.|² = 3.25
    penalty = r1_penalty(lambda t: (t @ W.T).sum(dim=1), x)
    assert penalty.item() == pytest.approx(3.25)
    (g,) = torch.autograd.grad(penalty, W)  # d/dW of (W00 + W10)² + (W01 + W11)²
    torch.testing.assert_close(g, torch.tensor([[3.0, 2.0], [3.0, 2.0]], dtype=torch.float64))


def test_r1_ttur_and_augment_train():
    X = _images((32, 8, 8))
    gan = GAN(n_steps=3, r1_weight=1.0, augment="translation,cutout", learning_rate=1e-4, d_learning_rate=4e-4, random_state=0, **TINY).fit(X)
    assert "r1_penalty" in gan.loss_history_ and np.isfinite(gan.loss_history_["r1_penalty"]).all()


# ------------------------------------------------------------------------------ determinism and files
def test_conv_deterministic_with_random_state():
    X = _images((48, 8, 8))
    a = GAN(n_steps=6, random_state=3, **TINY).fit(X)
    b = GAN(n_steps=6, random_state=3, **TINY).fit(X)
    np.testing.assert_array_equal(a.sample(10, random_state=1), b.sample(10, random_state=1))
    assert a.loss_history_ == b.loss_history_
    c = GAN(n_steps=6, random_state=4, **TINY).fit(X)
    assert not np.array_equal(a.sample(10, random_state=1), c.sample(10, random_state=1))


def test_conv_checkpoint_resume_continues_identically(tmp_path, monkeypatch):
    X = _images((64, 8, 8))
    params = dict(n_steps=12, random_state=0, progress=False, **TINY)  # 4 steps per epoch, 3 epochs
    full = GAN(**params).fit(X)
    from fastdensity.generative import _gan

    calls = {"n": 0}
    original = _gan._GANTask.train_step

    def interrupted(self, batch):
        calls["n"] += 1
        if calls["n"] == 10:
            raise KeyboardInterrupt
        return original(self, batch)

    monkeypatch.setattr(_gan._GANTask, "train_step", interrupted)
    with pytest.raises(KeyboardInterrupt):
        GAN(checkpoint_dir=tmp_path, **params).fit(X)
    monkeypatch.setattr(_gan._GANTask, "train_step", original)
    resumed = GAN(checkpoint_dir=tmp_path, resume=True, **params).fit(X)
    assert resumed.n_steps_ == full.n_steps_ == 12
    assert resumed.loss_history_ == full.loss_history_
    np.testing.assert_array_equal(resumed.sample(10, random_state=0), full.sample(10, random_state=0))


@pytest.mark.parametrize("params", [dict(TINY), dict(TINY, rejection_sampling=True, ratio_steps=5),
                                    dict(architecture="mlp", hidden=(8,), batch_size=16, ema_decay=0.9)])
def test_save_load_round_trip(tmp_path, params):
    X = _images((32, 8, 8)) if params["architecture"] == "conv" else _images((32, 3))
    gan = GAN(n_steps=3, random_state=0, **params).fit(X)
    path = tmp_path / "gan.pt"
    gan.save(path)
    loaded = GAN.load(path)
    assert loaded.get_params() == gan.get_params()
    np.testing.assert_array_equal(loaded.sample(20, random_state=5), gan.sample(20, random_state=5))
    np.testing.assert_array_equal(loaded.discriminate(X[:4]), gan.discriminate(X[:4]))
    assert loaded.loss_history_ == gan.loss_history_ and loaded.n_steps_ == gan.n_steps_
    if params.get("rejection_sampling"):
        assert loaded.acceptance_rate_ == gan.acceptance_rate_
    state = torch.load(path, weights_only=True)  # no pickled code: plain tensors, lists and text
    assert state["format"] == "fastdensity.gan/1"
    (tmp_path / "other.pt").write_bytes(b"")
    torch.save({"format": "x"}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a fastdensity GAN file"):
        GAN.load(tmp_path / "other.pt")


@pytest.mark.parametrize("params,match", [
    (dict(architecture="mlp", augment="translation"), "augment needs an image architecture"),
    (dict(architecture="conv", augment="flip"), "unknown policy 'flip'"),
    (dict(architecture="conv", ema_decay=1.0), "ema_decay must be"),
    (dict(architecture="conv", r1_weight=-1.0), "r1_weight must be"),
    (dict(architecture="conv", d_learning_rate=0), "d_learning_rate must be"),
    (dict(architecture="conv", loss="hinge", rejection_sampling=True, ratio_steps=0), "needs loss='non_saturating'"),
    (dict(architecture="conv", spectral_norm="yes"), "spectral_norm must be"),
])
def test_conv_parameter_errors(params, match):
    with pytest.raises((ValueError, TypeError), match=match):
        GAN(n_steps=1, **params).fit(_images((8, 8, 8)))


def test_conv_needs_images_in_the_unit_interval():
    with pytest.raises(ValueError, match="needs pixel values in"):
        GAN(n_steps=1, **TINY).fit(_images((8, 8, 8)) * 2)
    with pytest.raises(ValueError, match="needs images of shape"):
        GAN(n_steps=1, **TINY).fit(_images((8, 64)))
