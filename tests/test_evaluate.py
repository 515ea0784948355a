"""vaelib.evaluate: the importance-weighted log-likelihood, the ELBO terms, codes, active units, component
usage, nearest neighbours, the comparison statistics and the score card.

The estimators are random, so the statistical tests compare means over many images with a
tolerance taken from the measured standard error (fixed seeds keep them reproducible).
One test checks the estimator against log p(x) computed independently by quadrature.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

from vaelib.evaluate import (
    active_units,
    binary_test_set,
    component_assignments,
    component_usage,
    dataset_elbo,
    encode_dataset,
    evaluate_elbo,
    independent_difference,
    iw_log_likelihood,
    knn_accuracy,
    mean_and_stderr,
    neighbor_purity,
    neighbor_votes,
    paired_difference,
    scorecard,
    two_se_sign,
    verdict,
)
from vaelib.model import VAE
from vaelib.nets import BernoulliDecoder, GaussianEncoder
from vaelib.priors import FactorizedMixture, GaussianMixture, StandardNormal, VampPrior


def uint8_images(n: int, seed: int = 0) -> Tensor:
    """Random grey-level images (N, 28, 28) in the uint8 format vaelib.data returns."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 28, 28), generator=gen, dtype=torch.uint8)


def tiny_vae(latent_dim: int = 2, hidden: int = 32, seed: int = 0) -> VAE:
    torch.manual_seed(seed)
    return VAE(GaussianEncoder(784, hidden, latent_dim), BernoulliDecoder(latent_dim, hidden, 784), StandardNormal(latent_dim))


class FixedEncoder(nn.Module):
    """q(z|x) whose mean is a chosen function of x and whose log-variance is a constant."""

    def __init__(self, latent_dim: int, mean_fn, logvar: float = 0.0) -> None:
        super().__init__()
        self.input_dim, self.latent_dim = 784, latent_dim
        self.mean_fn, self.logvar = mean_fn, logvar
        self.anchor = nn.Parameter(torch.zeros(()))  # gives the model a device

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mu = self.mean_fn(x) + 0.0 * self.anchor
        return mu, torch.full_like(mu, self.logvar)


# -- iw_log_likelihood ------------------------------------------------------------------------


def test_iw_log_likelihood_reports_the_mean_and_standard_error_of_its_per_image_estimates():
    model, images = tiny_vae(), uint8_images(40)
    ll = iw_log_likelihood(model, images, k=16, batch_size=16)
    assert (ll.k, ll.n_images) == (16, 40)
    assert ll.per_image.shape == (40,) and ll.per_image.dtype == torch.float64
    assert torch.isfinite(ll.per_image).all() and (ll.per_image < 0).all()  # log-probabilities of binary images
    assert ll.nll == pytest.approx(-ll.per_image.mean().item())
    assert ll.stderr == pytest.approx(ll.per_image.std().item() / math.sqrt(40))
    again = iw_log_likelihood(model, images, k=16, batch_size=16)
    torch.testing.assert_close(again.per_image, ll.per_image)  # same seed, same numbers
    other = iw_log_likelihood(model, images, k=16, batch_size=16, seed=1)
    assert not torch.equal(other.per_image, ll.per_image)


@torch.no_grad()
def test_iw_bound_is_above_the_elbo_and_grows_with_k_beyond_noise():
    model, images = tiny_vae(seed=1), uint8_images(300, seed=1)
    with torch.no_grad():  # make p(x|z) depend strongly on z, so the untrained q is a poor proposal
        model.decoder.hidden.weight.mul_(3.0)
    bounds = {k: iw_log_likelihood(model, images, k=k, seed=k).per_image for k in (1, 10, 100)}
    elbo = -dataset_elbo(model, images)["neg_elbo"]
    # k = 1 is the ELBO itself: same expectation, so the means agree within the Monte-Carlo noise.
    noise = (bounds[1] - iw_log_likelihood(model, images, k=1, seed=99).per_image).std().item() / math.sqrt(2 * 300)
    assert abs(bounds[1].mean().item() - elbo) < 5 * noise + 1e-6
    # An untrained encoder is a poor proposal, so more samples help clearly (paired over the same images).
    for small, large in ((1, 10), (10, 100)):
        gain = bounds[large] - bounds[small]
        se = gain.std().item() / math.sqrt(gain.numel())
        assert gain.mean().item() > 3 * se > 0
    assert bounds[100].mean().item() > elbo


def test_chunking_the_samples_changes_nothing_in_expectation():
    model, images = tiny_vae(seed=2), uint8_images(200, seed=2)
    one_pass = iw_log_likelihood(model, images, k=32, batch_size=50).per_image  # all 32 samples at once
    chunked = iw_log_likelihood(model, images, k=32, batch_size=50, max_rows=50, seed=5).per_image  # one at a time
    diff = chunked - one_pass
    assert abs(diff.mean().item()) < 4 * diff.std().item() / math.sqrt(diff.numel())


@pytest.mark.parametrize("k", [0, -5, 2.5, "10"])
def test_a_bad_number_of_samples_is_refused(k):
    with pytest.raises(ValueError, match="positive integer"):
        iw_log_likelihood(tiny_vae(), uint8_images(2), k=k)


@pytest.mark.parametrize("settings", [dict(batch_size=0), dict(max_rows=0), dict(max_rows=-8)])
def test_bad_chunk_settings_are_refused(settings):
    with pytest.raises(ValueError, match="(batch_size|max_rows) must be a positive integer"):
        iw_log_likelihood(tiny_vae(), uint8_images(2), k=4, **settings)


def test_float_images_are_refused_with_a_message_naming_uint8():
    with pytest.raises(TypeError, match="uint8"):
        iw_log_likelihood(tiny_vae(), torch.rand(2, 28, 28), k=4)


def _bernoulli_log_lik(logits: Tensor, x: Tensor) -> Tensor:
    """log p(x|z) for every image (rows of x) and every z (rows of logits): (N, G), as a matrix product."""
    return x @ logits.T - nn.functional.softplus(logits).sum(-1)


@torch.no_grad()
def test_iw_estimate_converges_to_the_exact_log_likelihood_of_a_one_dimensional_model():
    """With a 1-d latent, log p(x) = log of an integral over z that quadrature computes exactly."""
    torch.manual_seed(3)
    decoder = BernoulliDecoder(1, 8, 784)
    decoder.out.weight.mul_(0.3)  # a decoder with some, but not overwhelming, dependence on z
    encoder = FixedEncoder(1, lambda x: torch.zeros(x.shape[0], 1))  # q(z|x) = N(0, 1), the prior itself
    model = VAE(encoder, decoder, StandardNormal(1)).eval()
    images = uint8_images(20, seed=3)
    x = binary_test_set(model, images)

    grid = torch.linspace(-10, 10, 4001, dtype=torch.float64)
    log_px_z = _bernoulli_log_lik(decoder(grid.float()[:, None]).double(), x.double())  # (N, G)
    log_prior = -0.5 * (grid**2 + math.log(2 * math.pi))
    step = grid[1] - grid[0]
    exact = torch.logsumexp(log_px_z + log_prior, dim=1) + torch.log(step)  # (N,): the Riemann sum

    ll = iw_log_likelihood(model, images, k=8000)
    error = ll.per_image - exact
    assert error.abs().max().item() < 0.05  # converged image by image
    assert error.mean().item() < 0.01  # and never above log p(x) beyond noise
    elbo = -dataset_elbo(model, images)["neg_elbo"]
    assert elbo < exact.mean().item() - 0.1  # the ELBO leaves a visible gap


def test_knn_accuracy_is_high_for_separated_classes_and_near_chance_for_shuffled_labels():
    gen = torch.Generator().manual_seed(6)
    labels = torch.arange(4).repeat_interleave(50)
    codes = 10.0 * labels[:, None].float() + torch.randn(200, 2, generator=gen)
    assert knn_accuracy(codes, labels, k=5) == 1.0
    shuffled = labels[torch.randperm(200, generator=gen)]
    assert knn_accuracy(codes, shuffled, k=5) < 0.5
    with pytest.raises(ValueError, match="k must be an integer"):
        knn_accuracy(codes, labels, k=200)
    with pytest.raises(ValueError, match=r"expected codes \(N, D\) and labels \(N,\)"):
        knn_accuracy(codes, labels[:10])


# -- dataset_elbo -------------------------------------------------------------------------------


def test_dataset_elbo_terms_add_up():
    terms = dataset_elbo(tiny_vae(), uint8_images(30), batch_size=7)
    assert set(terms) == {"neg_elbo", "kl", "distortion"}
    assert terms["kl"] > 0 and terms["distortion"] > 0
    assert terms["neg_elbo"] == pytest.approx(terms["kl"] + terms["distortion"], rel=1e-6)


# -- active_units --------------------------------------------------------------------------------


def test_active_units_counts_only_dimensions_whose_mean_moves_with_the_image():
    def mean(x: Tensor) -> Tensor:
        return torch.stack(
            [
                2.0 * x[:, 300],  # varies with a pixel: active (variance about 1)
                3.0 * x[:, 400] - 1.0,  # active
                torch.full_like(x[:, 0], 0.7),  # ignores x: inactive
                0.01 * x[:, 500],  # moves, but by far less than the threshold: inactive
            ],
            dim=-1,
        )

    model = VAE(FixedEncoder(4, mean), BernoulliDecoder(4, 8, 784), StandardNormal(4))
    images = uint8_images(500, seed=4)
    assert active_units(model, images, batch_size=128) == 2
    assert active_units(model, images, threshold=1e-6) == 3  # the small one counts under a tiny threshold


# -- component_usage ---------------------------------------------------------------------------


def test_component_usage_is_the_share_of_images_nearest_each_component():
    # Two binary pixels put each posterior mean on one of four corners; components sit on the
    # corners (and one far away), so usage must equal the share of images with each pixel pattern.
    model = VAE(FixedEncoder(2, lambda x: 10.0 * x[:, [300, 301]], logvar=-2.0), BernoulliDecoder(2, 8, 784),
                GaussianMixture(2, 5))
    with torch.no_grad():
        model.prior.means.copy_(torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0], [50.0, 50.0]]))
        model.prior.logvars.zero_()
    images = uint8_images(400, seed=5)
    usage = component_usage(model, images, batch_size=64)
    x = binary_test_set(model, images)
    pattern = (x[:, 300] + 2 * x[:, 301]).long()
    expected = torch.bincount(pattern, minlength=5).float() / 400
    torch.testing.assert_close(usage, expected)
    assert usage.sum().item() == pytest.approx(1.0)
    assert usage[4] == 0  # nobody uses the far-away component


def test_component_usage_of_a_large_random_mixture_sums_to_one():
    torch.manual_seed(6)
    model = VAE(GaussianEncoder(784, 32, 3), BernoulliDecoder(3, 32, 784), GaussianMixture(3, 50))
    usage = component_usage(model, uint8_images(100, seed=6))
    assert usage.shape == (50,) and (usage >= 0).all()
    assert usage.sum().item() == pytest.approx(1.0)


def test_component_usage_refuses_a_prior_that_is_no_mixture_over_the_whole_latent_space():
    model = VAE(GaussianEncoder(784, 16, 2), BernoulliDecoder(2, 16, 784), FactorizedMixture(2, 10))
    with pytest.raises(TypeError, match="factorised MoG, M=10 per dimension is not"):
        component_usage(model, uint8_images(4))


def test_component_usage_reads_the_prior_interface_for_every_mixture():
    """N(0, I) is one component; a VampPrior's components are the encoder's posteriors at its pseudo-inputs."""
    torch.manual_seed(0)
    plain = VAE(GaussianEncoder(784, 16, 2), BernoulliDecoder(2, 16, 784), StandardNormal(2))
    assert component_usage(plain, uint8_images(8)).tolist() == [1.0]
    encoder = GaussianEncoder(784, 16, 2)
    images = uint8_images(30, seed=4)
    pseudo = binary_test_set(plain, images[:3]).cpu().clamp(0.01, 0.99)  # three pseudo-inputs: the first images
    vamp = VAE(encoder, BernoulliDecoder(2, 16, 784), VampPrior(encoder, 3, init=pseudo))
    winners = component_assignments(vamp, images)
    assert winners.shape == (30,) and winners.dtype == torch.long
    assert winners[:3].tolist() == [0, 1, 2]  # each of those images fits its own component best
    usage = component_usage(vamp, images)
    torch.testing.assert_close(usage, torch.bincount(winners, minlength=3).float() / 30)



# -- the codes ---------------------------------------------------------------------------------


def test_encode_dataset_gives_the_posterior_of_the_fixed_binarisation_batch_by_batch():
    model, images = tiny_vae(latent_dim=3), uint8_images(25)
    mu, logvar = encode_dataset(model, images, batch_size=7)
    assert mu.shape == logvar.shape == (25, 3) and mu.device.type == "cpu"
    expected_mu, expected_logvar = model.encode(binary_test_set(model, images))
    torch.testing.assert_close(mu, expected_mu.detach())
    torch.testing.assert_close(logvar, expected_logvar.detach())
    empty_mu, _ = encode_dataset(model, images[:0])
    assert empty_mu.shape == (0, 3)
    with pytest.raises(TypeError, match="uint8"):
        encode_dataset(model, torch.rand(4, 28, 28))


def test_evaluate_elbo_averages_the_terms_over_model_inputs():
    model = tiny_vae()
    x = binary_test_set(model, uint8_images(30))
    torch.manual_seed(0)
    terms = evaluate_elbo(model, x, batch_size=7)
    torch.manual_seed(0)
    parts = [model.elbo(x[s : s + 7]) for s in range(0, 30, 7)]
    elbo = torch.cat([p.elbo for p in parts]).double().mean().item()
    assert terms["neg_elbo"] == pytest.approx(-elbo, rel=1e-6)
    assert terms["neg_elbo"] == pytest.approx(terms["kl"] - terms["reconstruction"], rel=1e-6)


# -- nearest neighbours -------------------------------------------------------------------------


def test_neighbor_votes_and_purity_count_the_labels_of_the_nearest_codes():
    codes = torch.tensor([[0.0], [1.0], [2.0], [10.0], [11.0]])
    labels = torch.tensor([0, 0, 1, 2, 2])
    queries = torch.tensor([[0.4], [10.6], [1.6]])
    votes = neighbor_votes(queries, codes, labels, k=3)
    assert votes.tolist() == [[2, 1, 0], [0, 1, 2], [2, 1, 0]]
    purity = neighbor_purity(queries, codes, labels, k=3)
    torch.testing.assert_close(purity, torch.tensor([2 / 3, 2 / 3, 2 / 3]))
    own = neighbor_votes(codes, codes, labels, k=1, leave_one_out=True)
    assert own.argmax(1).tolist() == [0, 0, 0, 2, 2]  # each code's nearest other code
    chunked = neighbor_votes(codes, codes, labels, k=2, leave_one_out=True, chunk=2)
    assert torch.equal(chunked, neighbor_votes(codes, codes, labels, k=2, leave_one_out=True))
    with pytest.raises(ValueError, match="k must be an integer between 1 and 4"):
        neighbor_votes(codes, codes, labels, k=5, leave_one_out=True)


# -- comparing two measurements ---------------------------------------------------------------


def test_paired_difference_is_the_mean_and_standard_error_of_the_differences():
    a = torch.tensor([1.0, 2.0, 4.0, 7.0], dtype=torch.float64)
    b = torch.tensor([0.5, 2.5, 3.0, 6.0], dtype=torch.float64)
    mean, se = paired_difference(a, b)
    diff = a - b  # 0.5, -0.5, 1, 1
    assert mean == pytest.approx(0.5)
    assert se == pytest.approx(diff.std().item() / 2)
    assert paired_difference(b, a) == pytest.approx((-mean, se))
    assert mean_and_stderr(diff) == pytest.approx((mean, se))
    with pytest.raises(ValueError, match="paired"):
        paired_difference(a, b[:3])


def test_the_verdict_counts_a_difference_only_beyond_two_standard_errors():
    assert independent_difference((0.30, 0.03), (0.20, 0.04)) == pytest.approx((0.10, 0.05))
    assert [two_se_sign(d, 0.05) for d in (0.11, 0.10, 0.0, -0.10, -0.11)] == [1, 0, 0, 0, -1]
    words = dict(above="more", below="fewer", within="about as many")
    assert verdict(0.11, 0.05, **words) == "more"
    assert verdict(-0.2, 0.05, **words) == "fewer"
    assert verdict(0.09, 0.05, **words) == "about as many"


# -- the score card -----------------------------------------------------------------------------


def test_scorecard_gathers_the_numbers_of_its_parts():
    torch.manual_seed(7)
    model = VAE(GaussianEncoder(784, 32, 3), BernoulliDecoder(3, 32, 784), GaussianMixture(3, 20))
    images = uint8_images(60, seed=7)
    torch.manual_seed(1)
    card = scorecard(model, images, k=8, iw_images=20)
    torch.manual_seed(1)
    elbo, elbo_iw = dataset_elbo(model, images), dataset_elbo(model, images[:20])
    ll = iw_log_likelihood(model, images[:20], 8)
    assert (card.neg_elbo, card.kl, card.distortion) == (elbo["neg_elbo"], elbo["kl"], elbo["distortion"])
    assert (card.ll.nll, card.ll.k, card.ll.n_images, card.n_images) == (ll.nll, 8, 20, 60)
    assert card.elbo_gap == pytest.approx(elbo_iw["neg_elbo"] - ll.nll)
    assert card.active_units == active_units(model, images)
    assert card.components_used == int((component_usage(model, images) > 0).sum())
    assert (card.label, card.latent_dim, card.n_components) == ("MoG, M=20", 3, 20)
    metrics = card.metrics()
    assert metrics["test_nll"] == ll.nll and metrics["iw_images"] == 20 and metrics["components_used"] >= 1
    plain = scorecard(tiny_vae(), images, k=4)  # N(0, I): one component, no usage column
    assert plain.components_used is None and plain.ll.n_images == 60
