"""The VAE's bounds and its input checks."""

import pytest
import torch

from vaelib.experiments import get_experiment
from vaelib.model import VAE
from vaelib.nets import BernoulliDecoder, GaussianEncoder
from vaelib.priors import GaussianMixture, StandardNormal


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return get_experiment("mog-z2-m10").build().eval()


def binary(n=8, seed=0):
    return (torch.rand(n, 784, generator=torch.Generator().manual_seed(seed)) < 0.3).float()


def test_elbo_terms_add_up_and_kl_is_the_priors(model):
    x = binary()
    torch.manual_seed(1)
    terms = model.elbo(x)
    assert terms.elbo.shape == terms.kl.shape == terms.reconstruction.shape == (8,)
    torch.testing.assert_close(terms.elbo, terms.reconstruction - terms.kl)
    mu, logvar = model.encode(x)
    torch.testing.assert_close(terms.kl, model.prior.kl(mu, logvar))
    assert (terms.reconstruction < 0).all()


def test_images_in_any_usual_shape_give_the_same_result(model):
    x = binary()
    torch.testing.assert_close(model.encode(x)[0], model.encode(x.view(8, 28, 28))[0])
    torch.testing.assert_close(model.encode(x)[0], model.encode(x.view(8, 1, 28, 28))[0])


@torch.no_grad()
def test_iw_bound_is_above_the_elbo_and_grows_with_k(model):
    x = binary(64, seed=2)
    torch.manual_seed(3)
    elbo = torch.stack([model.elbo(x).elbo for _ in range(50)]).mean(0)
    bounds = {k: torch.stack([model.iw_bound(x, k) for _ in range(10)]).mean(0) for k in (1, 10, 100)}
    se = 2.0  # generous noise allowance in nats for 64 images
    assert bounds[1].mean() == pytest.approx(elbo.mean().item(), abs=se)
    assert bounds[10].mean() >= elbo.mean() - 0.1
    assert bounds[100].mean() >= bounds[10].mean() - 0.1 >= bounds[1].mean() - 0.2


def test_iw_bound_in_chunks_matches_one_pass_for_the_same_samples(model):
    x = binary(4, seed=4)
    torch.manual_seed(5)
    one = model.iw_bound(x, 12)
    torch.manual_seed(5)
    lw = torch.cat([model.log_weights(x, 4) for _ in range(3)])
    torch.testing.assert_close(one.double(), (torch.logsumexp(lw.double(), 0) - torch.log(torch.tensor(12.0)).double()), rtol=0, atol=1e-4)


@pytest.mark.parametrize("k", [0, -3, 2.5])
def test_bad_k_is_refused(model, k):
    with pytest.raises(ValueError, match="positive integer"):
        model.iw_bound(binary(2), k)


def test_bad_images_are_refused_with_a_clear_message(model):
    with pytest.raises(TypeError, match="uint8"):
        model.elbo(torch.zeros(2, 784, dtype=torch.uint8))
    with pytest.raises(ValueError, match="784 pixels"):
        model.elbo(torch.zeros(2, 100))
    with pytest.raises(ValueError, match="784 pixels"):
        model.elbo(torch.zeros(784))
    with pytest.raises(TypeError, match="torch.Tensor"):
        model.elbo([[0.0] * 784])
    with pytest.raises(ValueError, match=r"shape \(N, 2\)"):
        model.decode(torch.zeros(3, 5))


def test_sample_and_reconstruct_give_pixel_probabilities(model):
    torch.manual_seed(0)
    s = model.sample(5)
    r = model.reconstruct(binary(3))
    assert s.shape == (5, 784) and r.shape == (3, 784)
    assert ((s >= 0) & (s <= 1)).all() and ((r >= 0) & (r <= 1)).all()


def test_mismatched_latent_sizes_are_refused():
    with pytest.raises(ValueError, match="disagree on the latent size"):
        VAE(GaussianEncoder(784, 50, 3), BernoulliDecoder(3, 50, 784), StandardNormal(4))
    assert isinstance(VAE(GaussianEncoder(784, 50, 3), BernoulliDecoder(3, 50), GaussianMixture(3, 4)).prior, GaussianMixture)


def with_pixel(value, n=4):
    x = binary(n)
    x[1, 100] = value
    return x


@pytest.mark.parametrize("images,message", [
    (with_pixel(float("nan")), "images contain NaN"),
    (with_pixel(float("inf")), "infinite values"),
    (with_pixel(-float("inf")), "infinite values"),
    (with_pixel(-0.5), "float pixels must lie in \\[0, 1\\].*from -0.5"),
    (binary(4) * 255, "look like 0-255 grey levels.*to_unit_float"),
    (torch.zeros(0, 784), "empty batch"),
    (torch.zeros(0, 28, 28), "empty batch"),
])
def test_every_image_entry_point_refuses_unusable_pixels_by_name(model, images, message):
    for call in (model.elbo, model.loss, model.encode, model.reconstruct, lambda x: model.iw_bound(x, 3),
                 lambda x: model.log_weights(x, 2)):
        with pytest.raises(ValueError, match=message):
            call(images)


def test_mixture_posterior_and_cifar_models_use_the_same_validator():
    from vaelib.cifar import cifar_vae

    torch.manual_seed(0)
    mixture = get_experiment("mogpost-z10-c5").build()
    with pytest.raises(ValueError, match="NaN"):
        mixture.siwae_bound(with_pixel(float("nan")), 2)
    with pytest.raises(ValueError, match="empty batch"):
        mixture.elbo(torch.zeros(0, 784))
    colour = cifar_vae(latent_dim=4, hidden_dim=16)
    assert colour.elbo(torch.rand(2, 3072)).elbo.shape == (2,)
    with pytest.raises(ValueError, match="3072 pixels"):
        colour.elbo(torch.rand(2, 784))
    with pytest.raises(ValueError, match="0-255"):
        colour.elbo(torch.rand(2, 3072) * 200)


def test_images_are_scanned_once_per_call_and_not_per_chunk_or_training_batch(model, monkeypatch):
    from vaelib import model as model_module
    from vaelib.train import TrainConfig, fit

    calls = []
    real = model_module.check_images
    monkeypatch.setattr(model_module, "check_images", lambda *a, **k: (calls.append(1), real(*a, **k))[1])
    model.iw_bound(binary(4), 12, chunk=3)  # four chunks, one check
    assert len(calls) == 1
    calls.clear()
    torch.manual_seed(0)
    fresh = get_experiment("vae-z2").build()
    images = (torch.rand(300, 28, 28) * 255).to(torch.uint8)
    fit(fresh, images, TrainConfig(epochs=2, batch_size=50), test_images=images[:100], progress=False)
    assert calls == []  # 12 training batches and 2 test evaluations: fit checked its uint8 images itself
    with pytest.raises(ValueError, match="NaN"):  # and the check is back on after fit
        fresh.elbo(with_pixel(float("nan")))
    assert len(calls) == 1


def test_trusted_inputs_restores_the_check_even_after_an_error(model):
    with pytest.raises(RuntimeError, match="boom"):
        with model.trusted_inputs():
            model.elbo(with_pixel(float("nan")))  # not checked inside
            raise RuntimeError("boom")
    with pytest.raises(ValueError, match="NaN"):
        model.elbo(with_pixel(float("nan")))
