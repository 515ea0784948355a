"""CIFAR-10 path: the loader (no download here: torchvision's dataset is replaced) and the Gaussian decoder."""

import math
import sys
import urllib.error

import numpy as np
import pytest
import torch
import torchvision.datasets

from vaelib.cifar import (CIFAR_DIM, GaussianDecoder, cifar_vae, load_cifar10, missing_cifar_message,
                          to_channels_first)
from vaelib.data import DataSourceError
from vaelib.priors import GaussianMixture, StandardNormal
from vaelib.train import TrainConfig, fit


def test_decoder_shapes_and_mean_in_unit_interval():
    dec = GaussianDecoder(latent_dim=6, hidden_dim=32)
    out = dec(torch.randn(5, 6))
    assert out.shape == (5, CIFAR_DIM)
    mean = dec.mean(out)
    assert ((mean >= 0) & (mean <= 1)).all()
    assert dec(torch.randn(7, 5, 6)).shape == (7, 5, CIFAR_DIM)  # k samples for each of 5 images


def test_log_likelihood_is_the_summed_normal_log_density():
    torch.manual_seed(0)
    dec = GaussianDecoder(latent_dim=4, hidden_dim=16, output_dim=30)
    with torch.no_grad():
        dec.log_scale.copy_(torch.linspace(-3.0, 0.5, 30))  # a different scale per pixel
    out, x = dec(torch.randn(3, 4)), torch.rand(3, 30)
    expected = torch.distributions.Normal(torch.sigmoid(out), dec.log_scale.exp()).log_prob(x).sum(-1)
    torch.testing.assert_close(dec.log_likelihood(out, x), expected)
    # samples first, images second: x broadcasts over the sample dimension as in VAE.log_weights
    out_k = dec(torch.randn(2, 3, 4))
    expected_k = torch.distributions.Normal(torch.sigmoid(out_k), dec.log_scale.exp()).log_prob(x).sum(-1)
    torch.testing.assert_close(dec.log_likelihood(out_k, x), expected_k)


def test_scale_is_floored():
    dec = GaussianDecoder(latent_dim=2, hidden_dim=4, output_dim=3)
    with torch.no_grad():
        dec.log_scale.fill_(-50.0)
    assert torch.allclose(dec.scale(), torch.full((3,), math.exp(dec.min_log_scale)))
    assert torch.isfinite(dec.log_likelihood(torch.zeros(1, 3), torch.ones(1, 3))).all()


def synthetic_cifar(n=240, seed=0):
    """Colour images made of four flat-coloured prototypes plus noise, uint8 (N, 32, 32, 3)."""
    g = torch.Generator().manual_seed(seed)
    protos = torch.rand(4, 1, 1, 3, generator=g) * 255
    noise = torch.randn(n, 32, 32, 3, generator=g) * 10
    return (protos[torch.randint(4, (n,), generator=g)] + noise).clamp(0, 255).to(torch.uint8)


@pytest.mark.parametrize("prior", [None, "mixture"])
def test_a_few_training_steps_lower_the_loss(prior):
    torch.manual_seed(0)
    model = cifar_vae(latent_dim=4, hidden_dim=32, prior=GaussianMixture(4, 5) if prior else None)
    assert isinstance(model.prior, GaussianMixture if prior else StandardNormal)
    images = synthetic_cifar()
    history = fit(model, images, TrainConfig(epochs=4, batch_size=40, binarization="grey"), progress=False, device="cpu")
    assert history.train_loss[-1] < history.train_loss[0] - 30
    x = images[:3].reshape(3, -1).float() / 255
    assert model.elbo(x).elbo.shape == (3,) and model.sample(2).shape == (2, CIFAR_DIM)
    with torch.no_grad():
        assert (model.iw_bound(x, 20) > model.elbo(x).elbo - 50).all()


def test_bad_prior_is_refused():
    with pytest.raises(TypeError, match="prior must be a vaelib.priors.Prior"):
        cifar_vae(4, prior="mog")
    with pytest.raises(ValueError, match="hidden_dim must be a positive integer, got 0"):
        cifar_vae(4, hidden_dim=0)


class _Offline:
    """Stands in for torchvision's CIFAR10 on a machine without network or cached files."""

    def __init__(self, root, train=True, download=False):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")


def _one_clean_sentence(message: str) -> None:
    assert message.startswith("CIFAR-10 ") and message.endswith(".")
    assert "\n" not in message and ". " not in message  # one sentence, one line
    for leak in ("Error", "Errno", "urlopen", "name resolution", "Traceback"):
        assert leak not in message, f"{leak!r} leaked into {message!r}"


def test_offline_loader_says_what_is_needed(monkeypatch, tmp_path):
    monkeypatch.setattr(torchvision.datasets, "CIFAR10", _Offline)
    monkeypatch.setenv("VAELIB_DATA", str(tmp_path / "data"))
    with pytest.raises(DataSourceError) as info:
        load_cifar10()
    message = str(info.value)
    _one_clean_sentence(message)
    assert message.startswith("CIFAR-10 is not available: it is neither in cifar10/ under the vaelib data folder")
    assert "$VAELIB_DATA" in message and "internet access" in message
    assert str(tmp_path) not in message  # the default folder is named as the reader sets it
    assert isinstance(info.value.__cause__, urllib.error.URLError)  # the cause is kept for debugging


def test_offline_loader_names_the_folder_it_was_given(monkeypatch, tmp_path):
    monkeypatch.setattr(torchvision.datasets, "CIFAR10", _Offline)
    with pytest.raises(DataSourceError) as info:
        load_cifar10(tmp_path / "cifar")
    _one_clean_sentence(str(info.value))
    assert f"it is neither in {tmp_path / 'cifar'} nor downloadable" in str(info.value)
    with pytest.raises(DataSourceError) as info:
        load_cifar10(tmp_path / "cifar", download=False)
    _one_clean_sentence(str(info.value))
    assert "download=False" in str(info.value) and "load_cifar10(download=True)" in str(info.value)
    assert str(info.value) == missing_cifar_message(tmp_path / "cifar", download=False)


def test_loader_without_torchvision_says_how_to_get_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchvision.datasets", None)  # import fails
    with pytest.raises(DataSourceError) as info:
        load_cifar10()
    _one_clean_sentence(str(info.value))
    assert "pip install torchvision" in str(info.value)


def _fake_cifar(n_train=6, n_test=4, shape=(32, 32, 3)):
    class Fake:
        def __init__(self, root, train=True, download=False):
            n = n_train if train else n_test
            self.data = np.arange(n * int(np.prod(shape)), dtype=np.int64).reshape(n, *shape).astype(np.uint8)
            self.targets = list(range(n))

    return Fake


def test_loader_returns_uint8_tensors(monkeypatch, tmp_path):
    monkeypatch.setattr(torchvision.datasets, "CIFAR10", _fake_cifar())
    data = load_cifar10(tmp_path)
    assert data.train_images.shape == (6, 32, 32, 3) and data.train_images.dtype == torch.uint8
    assert data.test_images.shape == (4, 32, 32, 3) and data.test_labels.tolist() == [0, 1, 2, 3]
    monkeypatch.setattr(torchvision.datasets, "CIFAR10", _fake_cifar(shape=(3, 32, 32)))
    with pytest.raises(DataSourceError, match="unexpected CIFAR-10 arrays"):
        load_cifar10(tmp_path)


def test_channels_first_keeps_colours_apart():
    images = torch.zeros(2, 32, 32, 3, dtype=torch.uint8)
    images[..., 0] = 255  # pure red
    planes = to_channels_first(images.reshape(2, -1))
    assert planes.shape == (2, 3, 32, 32)
    assert (planes[:, 0] == 255).all() and (planes[:, 1:] == 0).all()
