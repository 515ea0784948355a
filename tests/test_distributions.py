"""The mixture maths against independent computations (torch.distributions, Monte Carlo, autograd)."""

import math

import pytest
import torch
from torch.distributions import kl_divergence

from vaelib.distributions import (
    diagonal_gaussian,
    gaussian_kl,
    mixture_distribution,
    mixture_kl_approx,
    mixture_log_prob,
    monte_carlo_kl,
    pairwise_gaussian_kl,
    pairwise_gaussian_kl_broadcast,
)


def random_mixture(gen, m, d, spread=2.0):
    means = spread * torch.randn(m, d, generator=gen, dtype=torch.float64)
    logvars = torch.randn(m, d, generator=gen, dtype=torch.float64)
    log_weights = torch.log_softmax(torch.randn(m, generator=gen, dtype=torch.float64), 0)
    return means, logvars, log_weights


def random_posterior(gen, b, d):
    return torch.randn(b, d, generator=gen, dtype=torch.float64), torch.randn(b, d, generator=gen, dtype=torch.float64) - 1


def test_gaussian_kl_matches_torch_distributions():
    gen = torch.Generator().manual_seed(0)
    mu0, lv0 = random_posterior(gen, 5, 4)
    mu1, lv1 = random_posterior(gen, 5, 4)
    expected = kl_divergence(diagonal_gaussian(mu0, lv0), diagonal_gaussian(mu1, lv1))
    torch.testing.assert_close(gaussian_kl(mu0, lv0, mu1, lv1), expected)
    standard = diagonal_gaussian(torch.zeros(4, dtype=torch.float64), torch.zeros(4, dtype=torch.float64))
    torch.testing.assert_close(gaussian_kl(mu0, lv0), kl_divergence(diagonal_gaussian(mu0, lv0), standard))


@pytest.mark.parametrize("m,d", [(1, 1), (7, 3), (50, 10)])
def test_matmul_form_equals_broadcast(m, d):
    gen = torch.Generator().manual_seed(m)
    mu, lv = random_posterior(gen, 9, d)
    means, logvars, _ = random_mixture(gen, m, d)
    torch.testing.assert_close(pairwise_gaussian_kl(mu, lv, means, logvars), pairwise_gaussian_kl_broadcast(mu, lv, means, logvars))


def test_matmul_form_is_accurate_far_from_the_origin():
    """Centring keeps float32 accurate when all means sit near 1000 with small variances."""
    gen = torch.Generator().manual_seed(1)
    offset = 1000.0
    means = offset + torch.randn(20, 10, generator=gen)
    logvars = torch.full((20, 10), -4.0)
    mu, lv = offset + torch.randn(8, 10, generator=gen), torch.full((8, 10), -4.0)
    fast = pairwise_gaussian_kl(mu, lv, means, logvars)
    exact = pairwise_gaussian_kl_broadcast(mu.double(), lv.double(), means.double(), logvars.double())
    assert torch.allclose(fast.double(), exact, rtol=1e-3, atol=1e-2)


@pytest.mark.parametrize("seed", range(6))
def test_approximation_is_an_upper_bound_on_monte_carlo_kl(seed):
    gen = torch.Generator().manual_seed(seed)
    d, m = 1 + seed % 3, 2 + 3 * seed
    means, logvars, log_weights = random_mixture(gen, m, d, spread=0.5 + seed)
    mu, lv = random_posterior(gen, 16, d)
    approx = mixture_kl_approx(mu, lv, means, logvars, log_weights)
    torch.manual_seed(seed)
    mix = mixture_distribution(means, logvars, log_weights)
    mc, stderr = monte_carlo_kl(mu, lv, mix.log_prob, n_samples=20000)
    assert (approx >= mc - 5 * stderr - 1e-6).all(), (approx - mc) / stderr


def test_approximation_is_exact_for_one_component_and_for_identical_components():
    gen = torch.Generator().manual_seed(2)
    mu, lv = random_posterior(gen, 6, 3)
    means, logvars, _ = random_mixture(gen, 1, 3)
    single = gaussian_kl(mu, lv, means[0], logvars[0])
    torch.testing.assert_close(mixture_kl_approx(mu, lv, means, logvars, torch.zeros(1, dtype=torch.float64)), single)
    copies = 5
    same = mixture_kl_approx(
        mu, lv, means.expand(copies, 3), logvars.expand(copies, 3), torch.full((copies,), -math.log(copies), dtype=torch.float64)
    )
    torch.testing.assert_close(same, single)


def test_gradients_match_autograd_and_the_hand_formulas():
    gen = torch.Generator().manual_seed(3)
    means, logvars, log_weights = random_mixture(gen, 6, 4)
    log_weights = torch.full((6,), -math.log(6), dtype=torch.float64)
    mu0, rho0 = random_posterior(gen, 1, 4)
    params = [t.clone().requires_grad_() for t in (mu0, rho0, means, logvars)]
    mixture_kl_approx(params[0], params[1], params[2], params[3], log_weights).sum().backward()
    # Hand formulas (seed notes): w_j = softmax_j(log pi_j - KL_j).
    kl_j = gaussian_kl(mu0, rho0, means, logvars)  # (M,)
    w = torch.softmax(log_weights - kl_j, 0)[:, None]
    d_mu0 = (w * (mu0 - means) * torch.exp(-logvars)).sum(0)
    d_rho0 = (w * (torch.exp(rho0 - logvars) - 1) / 2).sum(0)
    d_mu = w * (means - mu0) * torch.exp(-logvars)
    d_rho = w * (1 - torch.exp(rho0 - logvars) - (mu0 - means) ** 2 * torch.exp(-logvars)) / 2
    for got, want in zip((p.grad for p in params), (d_mu0[None], d_rho0[None], d_mu, d_rho)):
        torch.testing.assert_close(got, want)
    assert torch.autograd.gradcheck(
        lambda a, b, c, e: mixture_kl_approx(a, b, c, e, log_weights), [t.clone().requires_grad_() for t in (mu0, rho0, means, logvars)]
    )


def test_hand_written_backward_matches_autograd_of_the_broadcast_form_for_a_batch():
    """The fast path's custom backward against plain autograd, with learnable mixture weights."""
    gen = torch.Generator().manual_seed(8)
    means, logvars, log_weights = random_mixture(gen, 7, 3)
    mu, logvar = random_posterior(gen, 5, 3)
    inputs = [t.clone().requires_grad_() for t in (mu, logvar, means, logvars, log_weights)]
    assert torch.autograd.gradcheck(lambda *a: mixture_kl_approx(*a), inputs)
    grads = {}
    for fast in (True, False):
        leaves = [t.clone().requires_grad_() for t in (mu, logvar, means, logvars, log_weights)]
        out = mixture_kl_approx(*leaves, fast=fast)
        (out * torch.arange(1.0, 6.0, dtype=out.dtype)).sum().backward()  # unequal weights per row
        grads[fast] = [leaf.grad for leaf in leaves]
    for got, want in zip(grads[True], grads[False]):
        torch.testing.assert_close(got, want)


def test_no_inf_or_nan_for_far_apart_components():
    gen = torch.Generator().manual_seed(4)
    means = 1e3 * (2 * torch.rand(1000, 10, generator=gen) - 1)
    logvars = 40 * torch.rand(1000, 10, generator=gen) - 20
    mu = 1e3 * (2 * torch.rand(64, 10, generator=gen) - 1)
    lv = 40 * torch.rand(64, 10, generator=gen) - 20
    means.requires_grad_()
    kl = mixture_kl_approx(mu, lv, means, logvars, torch.full((1000,), -math.log(1000)))
    assert torch.isfinite(kl).all() and (kl >= 0).all()
    kl.sum().backward()
    assert torch.isfinite(means.grad).all()
    z = 1e3 * torch.randn(32, 10, generator=gen)
    assert torch.isfinite(mixture_log_prob(z, means.detach(), logvars, torch.full((1000,), -math.log(1000)))).all()


def test_mixture_log_prob_matches_mixture_same_family():
    gen = torch.Generator().manual_seed(5)
    means, logvars, log_weights = random_mixture(gen, 30, 5)
    z = 3 * torch.randn(4, 7, 5, generator=gen, dtype=torch.float64)
    expected = mixture_distribution(means, logvars, log_weights).log_prob(z)
    torch.testing.assert_close(mixture_log_prob(z, means, logvars, log_weights), expected)


def test_mixture_log_prob_fast_no_grad_path_matches_the_autograd_path():
    gen = torch.Generator().manual_seed(15)
    means, logvars, log_weights = random_mixture(gen, 200, 10)
    means, logvars = means.float(), logvars.float()
    z = 3 * torch.randn(64, 10, generator=gen)
    with torch.no_grad():
        fast = mixture_log_prob(z, means, logvars, log_weights.float())
    slow = mixture_log_prob(z, means.requires_grad_(), logvars, log_weights.float())
    assert slow.requires_grad and not fast.requires_grad
    expected = mixture_distribution(means.double(), logvars.double(), log_weights).log_prob(z.double())
    torch.testing.assert_close(fast.double(), expected, atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(fast, slow.detach(), atol=1e-4, rtol=1e-5)


def test_monte_carlo_kl_is_unbiased_for_gaussians_and_rejects_one_sample():
    gen = torch.Generator().manual_seed(6)
    mu, lv = random_posterior(gen, 5, 3)
    torch.manual_seed(0)
    est, stderr = monte_carlo_kl(mu, lv, lambda z: diagonal_gaussian(torch.zeros_like(z), torch.zeros_like(z)).log_prob(z), 20000)
    assert ((est - gaussian_kl(mu, lv)).abs() < 5 * stderr).all()
    with pytest.raises(ValueError, match="n_samples"):
        monte_carlo_kl(mu, lv, lambda z: z.sum(-1), n_samples=1)
