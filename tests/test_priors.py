"""Priors: one interface, densities against torch.distributions, sampling that really samples the mixture."""

import copy
import math

import pytest
import torch
from torch.distributions import Independent, MixtureSameFamily, Normal, Categorical

from vaelib.distributions import monte_carlo_kl
from vaelib.priors import FactorizedMixture, GaussianMixture, StandardNormal


def test_standard_normal_log_prob_and_kl():
    prior = StandardNormal(3)
    z = torch.randn(5, 3)
    ref = Independent(Normal(torch.zeros(3), torch.ones(3)), 1)
    torch.testing.assert_close(prior.log_prob(z), ref.log_prob(z))
    mu, lv = torch.randn(4, 3), torch.randn(4, 3)
    torch.manual_seed(0)
    mc, se = monte_carlo_kl(mu, lv, prior.log_prob, 20000)
    assert ((prior.kl(mu, lv) - mc).abs() < 5 * se).all()
    assert prior.sample(7).shape == (7, 3)


def test_mixture_sampling_follows_the_weights_and_components():
    prior = GaussianMixture(1, 2, learn_weights=True)
    with torch.no_grad():
        prior.means.copy_(torch.tensor([[-10.0], [10.0]]))
        prior.logvars.fill_(0.0)
        prior.logits.copy_(torch.log(torch.tensor([0.2, 0.8])))
    torch.manual_seed(0)
    z = prior.sample(20000)[:, 0]
    right = (z > 0).float().mean().item()
    assert abs(right - 0.8) < 0.02
    assert abs(z[z > 0].mean().item() - 10) < 0.05 and abs(z[z > 0].std().item() - 1) < 0.05
    assert abs(z[z < 0].mean().item() + 10) < 0.1


def test_uniform_mixture_log_prob_matches_mixture_same_family():
    torch.manual_seed(1)
    prior = GaussianMixture(4, 25)
    with torch.no_grad():
        prior.logvars.normal_()
    ref = MixtureSameFamily(Categorical(logits=torch.zeros(25)), Independent(Normal(prior.means, torch.exp(0.5 * prior.logvars)), 1))
    z = 2 * torch.randn(30, 4)
    torch.testing.assert_close(prior.log_prob(z), ref.log_prob(z), rtol=1e-5, atol=1e-4)
    assert prior.log_weights.exp().sum().item() == pytest.approx(1.0)
    assert [n for n, _ in prior.named_parameters()] == ["means", "logvars"]


def test_factorized_mixture_is_a_product_of_one_dimensional_mixtures():
    torch.manual_seed(2)
    prior = FactorizedMixture(3, 4)
    with torch.no_grad():
        prior.logvars.normal_(0, 0.5)
    z = torch.randn(10, 3)
    expected = sum(
        MixtureSameFamily(Categorical(logits=torch.zeros(4)), Normal(prior.means[d], torch.exp(0.5 * prior.logvars[d]))).log_prob(z[:, d])
        for d in range(3)
    )
    torch.testing.assert_close(prior.log_prob(z), expected, rtol=1e-5, atol=1e-5)
    mu, lv = torch.randn(6, 3), torch.randn(6, 3) - 1
    torch.manual_seed(3)
    mc, se = monte_carlo_kl(mu, lv, prior.log_prob, 20000)
    assert (prior.kl(mu, lv) >= mc - 5 * se).all()  # still an upper bound


def test_factorized_mixture_no_grad_path_matches_the_autograd_path_across_chunks():
    torch.manual_seed(4)
    prior = FactorizedMixture(3, 50)
    with torch.no_grad():
        prior.logvars.uniform_(-6, 1)  # narrow components too: the (z - mean)^2 form must stay exact
    z = 3 * torch.randn(7, 100, 3)  # 700 rows: several chunks of the in-place path, the last one partial
    with_grad = prior.log_prob(z)
    assert with_grad.requires_grad and with_grad.shape == (7, 100)
    exact = copy.deepcopy(prior).double().log_prob(z.double()).detach()  # the autograd path in float64
    with torch.no_grad():
        fast = prior.log_prob(z)
    assert not fast.requires_grad
    torch.testing.assert_close(fast.double(), exact, rtol=0, atol=1e-4)
    torch.testing.assert_close(with_grad.detach().double(), exact, rtol=0, atol=1e-4)


def test_factorized_kl_is_the_sum_of_one_dimensional_mixture_kls_with_their_gradients():
    """The batched fast path against the definition, written out by broadcasting (float64)."""
    torch.manual_seed(4)
    prior = FactorizedMixture(3, 5).double()
    with torch.no_grad():
        prior.logvars.normal_(0, 0.7)
        prior.means.mul_(3.0)
    mu = torch.randn(7, 3, dtype=torch.float64, requires_grad=True)
    lv = (torch.randn(7, 3, dtype=torch.float64) - 1).requires_grad_()

    def reference(mu, lv, means, logvars):
        s2, v = torch.exp(lv).unsqueeze(-1), torch.exp(logvars)  # (B, D, 1), (D, M)
        kl = 0.5 * (logvars - lv.unsqueeze(-1) + (s2 + (mu.unsqueeze(-1) - means) ** 2) / v - 1)  # (B, D, M)
        return -torch.logsumexp(-math.log(5) - kl, dim=-1).sum(-1)

    fast = prior.kl(mu, lv)
    slow = reference(mu, lv, prior.means, prior.logvars)
    torch.testing.assert_close(fast, slow)
    weights = torch.arange(1.0, 8.0, dtype=torch.float64)
    grads_fast = torch.autograd.grad((fast * weights).sum(), [mu, lv, prior.means, prior.logvars])
    grads_slow = torch.autograd.grad((slow * weights).sum(), [mu, lv, prior.means, prior.logvars])
    for got, want in zip(grads_fast, grads_slow):
        torch.testing.assert_close(got, want)


def test_factorized_sampling_picks_a_component_per_dimension():
    prior = FactorizedMixture(2, 2)
    with torch.no_grad():
        prior.means.copy_(torch.tensor([[-5.0, 5.0], [-5.0, 5.0]]))
        prior.logvars.fill_(-4.0)
    torch.manual_seed(0)
    z = prior.sample(8000)
    quadrants = ((z[:, 0] > 0).long() * 2 + (z[:, 1] > 0).long()).bincount(minlength=4).float() / 8000
    assert torch.allclose(quadrants, torch.full((4,), 0.25), atol=0.02)  # all four grid corners, equally


@pytest.mark.parametrize("make", [lambda: StandardNormal(0), lambda: GaussianMixture(2, 0), lambda: GaussianMixture(-1, 3),
                                  lambda: FactorizedMixture(2, 0)])
def test_bad_sizes_are_refused(make):
    with pytest.raises(ValueError, match="must be a positive integer"):
        make()


def test_wrong_latent_size_and_sample_count_are_refused():
    prior = GaussianMixture(3, 5)
    with pytest.raises(ValueError, match="latent vectors of size 3"):
        prior.log_prob(torch.randn(2, 4))
    with pytest.raises(ValueError, match="latent vectors of size 3"):
        prior.kl(torch.randn(2, 2), torch.randn(2, 2))
    with pytest.raises(ValueError, match="n must be a positive integer"):
        prior.sample(0)


@pytest.mark.parametrize(
    "prior,label,n,full",
    [
        (StandardNormal(3), "N(0, I)", 1, True),
        (GaussianMixture(3, 7), "MoG, M=7", 7, True),
        (FactorizedMixture(3, 7), "factorised MoG, M=7 per dimension", 7, False),
    ],
)
def test_every_prior_describes_itself(prior, label, n, full):
    assert prior.label == label and prior.n_components == n
    weights = prior.log_weights.exp()
    torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[:-1]))
    parts = prior.components()
    assert (parts is not None) == full
    if full:
        means, logvars = parts
        assert means.shape == logvars.shape == (n, 3)
        # A full mixture's components and weights give back its log-density.
        z = torch.randn(5, 3)
        from vaelib.distributions import mixture_log_prob

        torch.testing.assert_close(mixture_log_prob(z, means, logvars, prior.log_weights), prior.log_prob(z))
