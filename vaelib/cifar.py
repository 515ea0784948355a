"""CIFAR-10 for the "harder data set" question: a loader and a Gaussian-likelihood decoder.

CIFAR-10 (Krizhevsky, 2009) has no offline copy here, so `load_cifar10` goes through
torchvision's download (what Colab and any online machine get) and says so plainly when
that is impossible. Colour images are not binary, so the Bernoulli decoder of the MNIST
models is replaced by `GaussianDecoder`: independent Gaussians per pixel, with a learned
log standard deviation per pixel. Train with `TrainConfig(binarization="grey")`, which
feeds the pixels as floats in [0, 1].
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .checks import check_positive_int
from .data import DataSourceError
from .model import VAE
from .nets import GaussianEncoder
from .priors import Prior, StandardNormal
from .settings import data_root

CIFAR_DIM = 3 * 32 * 32
CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


@dataclass
class CifarSplits:
    """CIFAR-10 as uint8 tensors: images (N, 32, 32, 3) (height, width, colour), labels int64 (N,)."""

    train_images: Tensor
    train_labels: Tensor
    test_images: Tensor
    test_labels: Tensor


def default_root() -> Path:
    """Where the download goes: $VAELIB_DATA/cifar10, else ~/.cache/vaelib/data/cifar10."""
    return data_root() / "cifar10"


# How the message names the default folder: as the reader sets it, not as this machine expands it.
DEFAULT_ROOT_TEXT = "cifar10/ under the vaelib data folder ($VAELIB_DATA, by default ~/.cache/vaelib/data)"


def missing_cifar_message(root: str | Path | None = None, download: bool = True) -> str:
    """The one sentence a reader gets when CIFAR-10 is neither on disk nor downloadable.

    It says what is missing and how to get it, naming the folder as the reader knows it
    (the `root` they passed, or the data folder's variable and default), without the
    exception that stopped the download.
    """
    where = f"{root}" if root is not None else DEFAULT_ROOT_TEXT
    if download:
        return (f"CIFAR-10 is not available: it is neither in {where} nor downloadable from here, "
                "so run this where there is internet access (Colab, for one), which downloads it "
                "there once.")
    return (f"CIFAR-10 is not available: it is not in {where} and download=False forbids fetching "
            "it, so call load_cifar10(download=True) once where there is internet access.")


def load_cifar10(root: str | Path | None = None, download: bool = True) -> CifarSplits:
    """CIFAR-10's 50,000 training and 10,000 test images through torchvision (downloaded once into `root`).

    Raises `DataSourceError` with `missing_cifar_message` when the files are neither cached
    nor downloadable (no network, a refused connection, a corrupt archive); the cause stays
    attached as the exception's `__cause__` for whoever debugs it.
    """
    folder = Path(root) if root is not None else default_root()
    try:
        from torchvision.datasets import CIFAR10
    except ImportError:
        raise DataSourceError(
            "CIFAR-10 is loaded through torchvision, which is not installed: pip install torchvision."
        ) from None
    try:
        train = CIFAR10(str(folder), train=True, download=download)
        test = CIFAR10(str(folder), train=False, download=download)
    except (OSError, RuntimeError, ValueError) as exc:  # no network, a refused connection, a corrupt archive
        raise DataSourceError(missing_cifar_message(root, download)) from exc

    def as_tensors(ds) -> tuple[Tensor, Tensor]:
        images = torch.as_tensor(ds.data)
        labels = torch.as_tensor(ds.targets, dtype=torch.int64)
        if images.dtype != torch.uint8 or tuple(images.shape[1:]) != (32, 32, 3) or images.shape[0] != labels.shape[0]:
            raise DataSourceError(f"unexpected CIFAR-10 arrays in {folder}: images {tuple(images.shape)} {images.dtype}")
        return images, labels

    return CifarSplits(*as_tensors(train), *as_tensors(test))


class GaussianDecoder(nn.Module):
    """z -> mean of independent Gaussian pixels p(x|z) = N(x; m(z), diag s^2), s learned per pixel.

    The network outputs mean logits; the mean is their sigmoid, so it stays in [0, 1] like the
    pixels. The log standard deviation is a free parameter per pixel (not per image), kept
    above `min_log_scale` so the density cannot grow without bound on a constant pixel.
    """

    def __init__(
        self, latent_dim: int = 32, hidden_dim: int = 512, output_dim: int = CIFAR_DIM,
        init_log_scale: float = math.log(0.2), min_log_scale: float = math.log(1e-3),
    ) -> None:
        super().__init__()
        if not init_log_scale > min_log_scale:
            raise ValueError(f"init_log_scale ({init_log_scale}) must exceed min_log_scale ({min_log_scale})")
        self.latent_dim, self.output_dim, self.min_log_scale = latent_dim, output_dim, min_log_scale
        self.hidden = nn.Linear(latent_dim, hidden_dim)
        self.out = nn.Linear(hidden_dim, output_dim)
        self.log_scale = nn.Parameter(torch.full((output_dim,), float(init_log_scale)))

    def forward(self, z: Tensor) -> Tensor:
        return self.out(F.relu(self.hidden(z)))

    def scale(self) -> Tensor:
        """Per-pixel standard deviation s (output_dim,)."""
        return torch.exp(self.log_scale.clamp_min(self.min_log_scale))

    def log_likelihood(self, logits: Tensor, x: Tensor) -> Tensor:
        """log N(x; sigmoid(logits), s^2) summed over pixels (a density on R^D, in nats)."""
        log_scale = self.log_scale.clamp_min(self.min_log_scale)
        diff = (x - torch.sigmoid(logits)) * torch.exp(-log_scale)
        return -(0.5 * diff**2 + log_scale + 0.5 * math.log(2 * math.pi)).sum(-1)

    @staticmethod
    def mean(logits: Tensor) -> Tensor:
        """The mean image, in [0, 1] (what a decoded sample shows)."""
        return torch.sigmoid(logits)


def cifar_vae(latent_dim: int = 32, prior: Prior | None = None, hidden_dim: int = 512) -> VAE:
    """An MLP VAE for flattened 32x32 colour images: Gaussian encoder, `GaussianDecoder`, `prior` (default N(0, I))."""
    check_positive_int(latent_dim, "latent_dim")
    check_positive_int(hidden_dim, "hidden_dim")
    prior = prior if prior is not None else StandardNormal(latent_dim)
    if not isinstance(prior, Prior):
        raise TypeError(f"prior must be a vaelib.priors.Prior, got {type(prior).__name__}")
    return VAE(GaussianEncoder(CIFAR_DIM, hidden_dim, latent_dim), GaussianDecoder(latent_dim, hidden_dim, CIFAR_DIM), prior)


def to_channels_first(images: Tensor) -> Tensor:
    """(N, 32, 32, 3) or flattened (N, 3072) images in CIFAR's pixel order -> (N, 3, 32, 32) for plotting."""
    return images.reshape(-1, 32, 32, 3).permute(0, 3, 1, 2)

