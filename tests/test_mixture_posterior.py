"""The mixture posterior: its ELBO estimators, their gradients for the weights, and its bounds."""

import inspect
import itertools
import math

import pytest
import torch

from vaelib.distributions import gaussian_kl
from vaelib.evaluate import iw_log_likelihood
from vaelib.experiments import get_experiment
from vaelib.mixture_posterior import (
    MixtureEncoder,
    MixturePosteriorVAE,
    logit_gradients,
    toy_mixture_gradients,
    weight_summary,
)
from vaelib.model import VAE
from vaelib.nets import BernoulliDecoder, GaussianEncoder
from vaelib.priors import GaussianMixture, StandardNormal, VampPrior
from vaelib.train import TrainConfig, fit


def tiny(prior=None, c=3, d=2, pixels=12, hidden=8, dtype=torch.float64, seed=0):
    torch.manual_seed(seed)
    prior = prior if prior is not None else StandardNormal(d)
    model = MixturePosteriorVAE(MixtureEncoder(pixels, hidden, d, c), BernoulliDecoder(d, hidden, pixels), prior)
    return model.to(dtype)


def binary(n, pixels=12, seed=0, dtype=torch.float64):
    return (torch.rand(n, pixels, generator=torch.Generator().manual_seed(seed)) < 0.4).to(dtype)


def test_encoder_shapes_and_component_weights():
    enc = MixtureEncoder(784, 30, 4, 3)
    logits, mu, logvar = enc(torch.rand(5, 784))
    assert logits.shape == (5, 3) and mu.shape == logvar.shape == (5, 3, 4)
    model = MixturePosteriorVAE(enc, BernoulliDecoder(4, 30), StandardNormal(4))
    summary = weight_summary(model, torch.rand(5, 784))
    assert 1.0 / 3 <= summary["top_weight"] <= 1.0
    assert 1.0 <= summary["effective_components"] <= 3.0 + 1e-6


@pytest.mark.parametrize("prior", ["normal", "mixture"])
def test_exact_gradient_for_the_weights_matches_finite_differences(prior):
    """With the noise fixed by a seed, the exact ELBO is a smooth function of the logits: check its gradient."""
    model = tiny(StandardNormal(2) if prior == "normal" else GaussianMixture(2, 4).double())
    x = binary(4)
    with torch.no_grad():
        logits, mu, logvar = model.encoder(x)

    def objective(lg):
        torch.manual_seed(123)
        return model.elbo_terms(x, lg, mu, logvar, "exact").elbo.sum()

    leaf = logits.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(objective(leaf), leaf)
    h = 1e-6
    numeric = torch.zeros_like(logits)
    with torch.no_grad():
        for idx in itertools.product(*map(range, logits.shape)):
            up, down = logits.clone(), logits.clone()
            up[idx] += h
            down[idx] -= h
            numeric[idx] = (objective(up) - objective(down)) / (2 * h)
    assert grad.abs().max() > 1e-3  # the weights do get a gradient
    torch.testing.assert_close(grad, numeric, rtol=1e-5, atol=1e-6)


def test_naive_estimator_gives_the_weights_no_gradient_through_the_reconstruction():
    model = tiny()
    x = binary(6)
    naive, _ = logit_gradients(model, x, "naive", n_draws=5, term="reconstruction")
    exact, _ = logit_gradients(model, x, "exact", n_draws=5, term="reconstruction")
    assert torch.equal(naive, torch.zeros_like(naive))
    assert exact.abs().max() > 1e-4


def test_naive_weight_gradient_is_zero_on_average_and_so_biased():
    """Two well separated components: the true gradient for the weights is far from zero, the naive one is not."""
    model = tiny(c=2)
    x = binary(2)
    logits = torch.zeros(2, 2, dtype=torch.float64, requires_grad=True)
    mu = torch.stack([torch.zeros(2, 2), torch.full((2, 2), 3.0)], dim=1).double()  # (B, C, D)
    logvar = torch.full((2, 2, 2), -1.0, dtype=torch.float64)
    torch.manual_seed(0)

    def mean_grad(estimator, n=4000):
        grads = []
        for _ in range(n):
            (g,) = torch.autograd.grad(model.elbo_terms(x, logits, mu, logvar, estimator).elbo.sum(), logits)
            grads.append(g)
        g = torch.stack(grads)
        return g.mean(0), g.std(0) / math.sqrt(n)

    naive, naive_se = mean_grad("naive")
    exact, exact_se = mean_grad("exact")
    assert ((naive - 0.0).abs() < 4 * naive_se + 1e-9).all(), (naive, naive_se)
    assert ((exact - naive).abs() > 10 * (exact_se + naive_se)).all(), (exact, naive)
    # The logits of one image sum to a constant under softmax: their gradients cancel.
    torch.testing.assert_close(exact.sum(-1), torch.zeros(2, dtype=torch.float64), atol=1e-9, rtol=0)


def test_kl_term_averages_to_the_closed_form_when_the_mixture_is_one_gaussian():
    model = tiny(c=2)
    x = binary(3)
    mu = torch.tensor([[0.5, -1.0], [1.5, 0.2], [-0.3, 0.0]], dtype=torch.float64)
    logvar = torch.tensor([[-0.5, 0.3], [0.0, -1.0], [0.4, 0.4]], dtype=torch.float64)
    logits = torch.tensor([[0.3, -0.2]] * 3, dtype=torch.float64)
    both = lambda t: t.unsqueeze(1).expand(3, 2, 2)  # two identical components: q is one Gaussian
    torch.manual_seed(1)
    kls = torch.stack([model.elbo_terms(x, logits, both(mu), both(logvar), "exact").kl for _ in range(4000)])
    se = kls.std(0) / math.sqrt(kls.shape[0])
    assert ((kls.mean(0) - gaussian_kl(mu, logvar)).abs() < 4 * se).all()


def test_moment_matched_encoding_of_identical_components_is_that_component():
    model = tiny(c=2)
    x = binary(3)
    with torch.no_grad():
        model.encoder.out.weight[2:].view(2, -1, 8)[1] = model.encoder.out.weight[2:].view(2, -1, 8)[0]
        model.encoder.out.bias[2:].view(2, -1)[1] = model.encoder.out.bias[2:].view(2, -1)[0]
        _, mu, logvar = model.posterior(x)
        mean, var_log = model.encode(x)
    torch.testing.assert_close(mean, mu[:, 0])
    torch.testing.assert_close(var_log, logvar[:, 0])
    assert model.reconstruct(x).shape == (3, 12)


@torch.no_grad()
@pytest.mark.parametrize("prior", ["normal", "mixture"])
def test_elbo_is_below_the_iw_and_stratified_bounds(prior):
    model = tiny(StandardNormal(2) if prior == "normal" else GaussianMixture(2, 4).double(), c=3)
    x = binary(16, seed=3)
    torch.manual_seed(0)
    elbo = model.elbo(x)
    torch.testing.assert_close(elbo.elbo, elbo.reconstruction - elbo.kl)
    torch.manual_seed(0)
    siwae_one = model.siwae_bound(x, 1)
    assert (elbo.elbo <= siwae_one + 1e-9).all()  # same noise: Jensen's inequality on the sum over components
    mean_elbo = torch.stack([model.elbo(x).elbo for _ in range(200)]).mean(0)
    assert model.iw_bound(x, 500).mean() > mean_elbo.mean()
    assert model.siwae_bound(x, 100, chunk=30).mean() > mean_elbo.mean()
    twin = MixturePosteriorVAE(model.encoder, model.decoder, model.prior, elbo_estimator="naive")
    naive = torch.stack([twin.elbo(x).elbo for _ in range(2000)]).mean(0)
    assert naive.mean() == pytest.approx(mean_elbo.mean().item(), abs=0.1)  # same objective, other noise


def test_iw_log_likelihood_works_on_a_mixture_posterior_model():
    model = get_experiment("mogpost-z10-c5").build()
    images = (torch.rand(6, 28, 28) * 255).to(torch.uint8)
    ll = iw_log_likelihood(model, images, k=20, batch_size=3, max_rows=30)
    assert ll.per_image.shape == (6,) and math.isfinite(ll.nll) and ll.nll > 0


def test_smoke_training_lowers_the_loss():
    torch.manual_seed(0)
    protos = (torch.rand(4, 784) < 0.3).to(torch.uint8) * 255
    images = protos[torch.randint(4, (400,))].reshape(400, 28, 28)
    for prior in (StandardNormal(3), GaussianMixture(3, 8)):
        model = MixturePosteriorVAE(MixtureEncoder(784, 64, 3, 3), BernoulliDecoder(3, 64), prior)
        history = fit(model, images, TrainConfig(epochs=6, batch_size=50, lr=3e-3), progress=False, device="cpu")
        assert history.train_loss[-1] < history.train_loss[0] - 20


def test_registered_chapter_six_experiments():
    both = get_experiment("both-z10-c5-m1000").build()
    assert isinstance(both, MixturePosteriorVAE) and both.n_components == 5
    assert isinstance(both.prior, GaussianMixture) and both.prior.n_components == 1000
    post = get_experiment("mogpost-z10-c5").build()
    assert post.n_components == 5 and isinstance(post.prior, StandardNormal)
    vamp = get_experiment("vamp-z10-k500").build()
    assert isinstance(vamp.prior, VampPrior) and vamp.prior.n_components == 500
    iwae = get_experiment("iwae-z10-k5")
    assert iwae.objective == "iwae" and iwae.iw_samples == 5
    for name in ("fashion-vae-z10", "fashion-mog-z10-m1000", "fashion-vamp-z10-k500"):
        assert get_experiment(name).dataset == "fashion-mnist"


def test_toy_gradients_match_the_closed_form():
    est = toy_mixture_gradients(weight=0.3, a=-1.0, b=2.0, n_samples=200_000, tau=1.0, seed=0)
    true = est["true"].mean
    assert true == pytest.approx(1.0 - 4.0)
    assert est["naive"].mean == 0.0 and est["naive"].std == 0.0
    for name in ("exact", "score function", "implicit"):
        assert abs(est[name].mean - true) < 4 * est[name].stderr, (name, est[name])
    assert abs(est["gumbel-softmax"].mean - true) > 6 * est["gumbel-softmax"].stderr  # relaxed: biased
    assert est["exact"].std < est["score function"].std


@pytest.mark.parametrize(
    "make, error, message",
    [
        (lambda: MixturePosteriorVAE(GaussianEncoder(784, 40, 2), BernoulliDecoder(2, 40), StandardNormal(2)),
         TypeError, "needs a mixture encoder"),
        (lambda: MixturePosteriorVAE(MixtureEncoder(784, 40, 2, 2), BernoulliDecoder(2, 40), StandardNormal(2), "gumbel"),
         ValueError, "unknown elbo_estimator 'gumbel'; choose one of exact, naive"),
        (lambda: MixturePosteriorVAE(MixtureEncoder(784, 40, 2, 2), BernoulliDecoder(3, 40), StandardNormal(2)),
         ValueError, "disagree on the latent size"),
        (lambda: toy_mixture_gradients(weight=1.0), ValueError, r"weight must be in \(0, 1\), got 1.0"),
    ],
)
def test_bad_settings_are_refused_clearly(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_bad_inputs_to_the_bounds_are_refused_clearly():
    model = tiny()
    with pytest.raises(ValueError, match="12 pixels"):
        model.elbo(torch.zeros(2, 5, dtype=torch.float64))
    with pytest.raises(ValueError, match="k must be a positive integer"):
        model.siwae_bound(binary(2), 0)
    with pytest.raises(ValueError, match="positive integer"):
        model.iw_bound(binary(2), -1)
    with pytest.raises(ValueError, match="unknown term 'prior'"):
        logit_gradients(model, binary(2), "exact", term="prior")
    with pytest.raises(ValueError, match="unknown kl_estimate 'exact'"):
        model.elbo(binary(2), kl_estimate="exact")
    assert set(inspect.signature(model.elbo).parameters) == set(inspect.signature(VAE.elbo).parameters) - {"self"}
