"""The VAE's pure loss functions against independent oracles (torch.distributions, scipy, Monte Carlo)."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from scipy import stats  # noqa: E402
from scipy.special import logsumexp  # noqa: E402

from fastdensity.generative import _losses as L  # noqa: E402


def test_gaussian_kl_matches_torch_distributions():
    g = torch.Generator().manual_seed(0)
    mean = torch.randn(7, 5, generator=g, dtype=torch.float64)
    logvar = torch.randn(7, 5, generator=g, dtype=torch.float64)
    q = torch.distributions.Normal(mean, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(torch.zeros_like(mean), torch.ones_like(mean))
    expected = torch.distributions.kl_divergence(q, p).sum(dim=1)
    torch.testing.assert_close(L.gaussian_kl(mean, logvar), expected, rtol=1e-12, atol=1e-12)


def test_gaussian_kl_equals_monte_carlo_estimate():
    g = torch.Generator().manual_seed(1)
    mean = torch.tensor([[0.5, -1.0, 2.0]], dtype=torch.float64)
    logvar = torch.tensor([[-1.0, 0.3, 0.0]], dtype=torch.float64)
    n = 400_000
    z = mean + torch.exp(0.5 * logvar) * torch.randn(n, 3, generator=g, dtype=torch.float64)
    terms = L.log_normal_diag(z, mean, logvar) - L.log_normal_standard(z)
    mc, se = terms.mean().item(), terms.std().item() / math.sqrt(n)
    assert abs(mc - L.gaussian_kl(mean, logvar).item()) < 4 * se


def test_log_normals_match_scipy():
    rng = np.random.default_rng(2)
    z, m, lv = rng.normal(size=(3, 4, 6))
    expected = stats.norm(m, np.exp(0.5 * lv)).logpdf(z).sum(axis=1)
    got = L.log_normal_diag(torch.as_tensor(z), torch.as_tensor(m), torch.as_tensor(lv)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    np.testing.assert_allclose(L.log_normal_standard(torch.as_tensor(z)).numpy(), stats.norm.logpdf(z).sum(1),
                               rtol=1e-12)


def test_bernoulli_log_likelihood_matches_scipy_and_is_exact_for_large_logits():
    rng = np.random.default_rng(3)
    logits = rng.normal(scale=3, size=(5, 2, 3))
    x = (rng.random(size=(5, 2, 3)) < 0.5).astype(np.float64)
    p = 1 / (1 + np.exp(-logits))
    expected = stats.bernoulli(p).logpmf(x).reshape(5, -1).sum(1)
    got = L.bernoulli_log_likelihood(torch.as_tensor(logits), torch.as_tensor(x)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-10)
    # sigmoid(60) rounds to 1 in float32; the log-likelihood of x = 0 must still be -60, not -inf
    big = L.bernoulli_log_likelihood(torch.tensor([[60.0]]), torch.tensor([[0.0]]))
    assert torch.isfinite(big).all() and abs(big.item() + 60.0) < 1e-4


def test_gaussian_log_likelihood_matches_scipy():
    rng = np.random.default_rng(4)
    x, m = rng.random(size=(2, 6, 4))
    lv = rng.normal(size=4)
    expected = stats.norm(m, np.exp(0.5 * lv)).logpdf(x).sum(1)
    got = L.gaussian_log_likelihood(torch.as_tensor(m), torch.as_tensor(lv), torch.as_tensor(x)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_categorical_log_likelihood_and_quantize():
    rng = np.random.default_rng(5)
    logits = rng.normal(size=(3, 4, 2, 2))  # (n, K, h, w)
    x = rng.random(size=(3, 2, 2))
    levels = L.quantize(torch.as_tensor(x), 4)
    np.testing.assert_array_equal(levels.numpy(), np.rint(x * 3).astype(int))
    logp = logits - logsumexp(logits, axis=1, keepdims=True)
    lv = levels.numpy()
    expected = np.array([sum(logp[i, lv[i, a, b], a, b] for a in range(2) for b in range(2)) for i in range(3)])
    got = L.categorical_log_likelihood(torch.as_tensor(logits), levels).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_logmeanexp_is_float64_and_stable():
    log_w = torch.tensor([[-1000.0, -2.0], [-1001.0, -3.0]], dtype=torch.float32)
    out = L.logmeanexp(log_w, dim=0)
    assert out.dtype == torch.float64
    np.testing.assert_allclose(out.numpy(), logsumexp(log_w.double().numpy(), axis=0) - math.log(2), rtol=1e-14)


def test_elbo_beta():
    ll, kl = torch.tensor([-3.0, -4.0]), torch.tensor([1.0, 2.0])
    torch.testing.assert_close(L.elbo(ll, kl), torch.tensor([-4.0, -6.0]))
    torch.testing.assert_close(L.elbo(ll, kl, beta=0.5), torch.tensor([-3.5, -5.0]))
