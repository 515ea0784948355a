"""How good is a trained model: ELBO terms, importance-weighted log-likelihood, latent usage.

All numbers are in nats per image, on a fixed (static) binarisation of the test
images so that every model is scored on the same binary data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .model import VAE
from .priors import FactorizedMixture, GaussianMixture
from .train import evaluate_elbo, prepare_images, static_binarization


def binary_test_set(model: VAE, images: Tensor, seed: int = 0) -> Tensor:
    """uint8 images -> the fixed binary draw every evaluation uses, on the model's device."""
    device = next(model.parameters()).device
    return static_binarization(prepare_images(images, device), seed)


def dataset_elbo(model: VAE, images: Tensor, batch_size: int = 1000, seed: int = 0) -> dict[str, float]:
    """neg_elbo, kl (the rate) and -reconstruction (the distortion) averaged over uint8 images."""
    terms = evaluate_elbo(model, binary_test_set(model, images, seed), batch_size)
    return {"neg_elbo": terms["neg_elbo"], "kl": terms["kl"], "distortion": -terms["reconstruction"]}


@dataclass
class LogLikelihood:
    """Importance-weighted estimate of -log p(x): mean over images and its standard error."""

    nll: float
    stderr: float
    k: int
    n_images: int
    per_image: Tensor  # log p(x) estimates, float64, on the CPU


GPU_MAX_ROWS = 2**15  # decoder rows alive at once in iw_log_likelihood, by device
CPU_MAX_ROWS = 2**10


@torch.no_grad()
def iw_log_likelihood(
    model: VAE,
    images: Tensor,
    k: int = 5000,
    *,
    batch_size: int = 100,
    max_rows: int | None = None,
    seed: int = 0,
    progress: bool = False,
) -> LogLikelihood:
    """log p(x) ~= log (1/k) sum_i p(x, z_i)/q(z_i|x) (Burda et al., 2016) for each image.

    Images go `batch_size` at a time; their k samples in chunks so that at most
    `max_rows` decoder passes are alive at once (bounded memory for k = 5000). The default
    suits the device: 32768 rows keep a GPU busy, while a CPU runs fastest when a chunk's
    (rows x components) prior matrix stays in cache, about 1024 rows (benchmarks/bench_iw.py).
    """
    if not isinstance(k, int) or k <= 0:
        raise ValueError(f"k (importance samples per image) must be a positive integer, got {k!r}")
    if batch_size <= 0 or (max_rows is not None and max_rows <= 0):
        raise ValueError(f"batch_size and max_rows must be positive, got {batch_size} and {max_rows}")
    model.eval()
    x = binary_test_set(model, images, seed)
    if max_rows is None:
        max_rows = GPU_MAX_ROWS if x.is_cuda else CPU_MAX_ROWS
    chunk = max(1, min(k, max_rows // batch_size))
    torch.manual_seed(seed)
    batches = range(0, x.shape[0], batch_size)
    if progress:
        from tqdm.auto import tqdm

        batches = tqdm(batches, desc=f"IW k={k}", unit="batch")
    estimates = [model.iw_bound(x[s : s + batch_size], k, chunk=chunk).double().cpu() for s in batches]
    log_px = torch.cat(estimates)
    n = log_px.numel()
    stderr = log_px.std().item() / math.sqrt(n) if n > 1 else math.nan
    return LogLikelihood(-log_px.mean().item(), stderr, k, n, log_px)


@torch.no_grad()
def active_units(model: VAE, images: Tensor, threshold: float = 1e-2, batch_size: int = 1000) -> int:
    """Latent dimensions whose posterior mean varies across data: Cov_x(E_q[z_d]) > threshold (Burda et al.)."""
    x = binary_test_set(model, images)
    means = torch.cat([model.encode(x[s : s + batch_size])[0] for s in range(0, x.shape[0], batch_size)])
    return int((means.var(0) > threshold).sum())


@torch.no_grad()
def knn_accuracy(codes: Tensor, labels: Tensor, k: int = 10) -> float:
    """Leave-one-out k-nearest-neighbour accuracy: the share of rows of `codes` (N, D) whose label is
    the most common label among their k nearest other rows (ties go to the smaller label).

    A label-free model's codes score well here when they keep the classes apart.
    """
    if codes.dim() != 2 or labels.shape != codes.shape[:1]:
        raise ValueError(f"expected codes (N, D) and labels (N,), got {tuple(codes.shape)} and {tuple(labels.shape)}")
    if isinstance(k, bool) or not isinstance(k, int) or not 0 < k < codes.shape[0]:
        raise ValueError(f"k must be an integer between 1 and N - 1 = {codes.shape[0] - 1}, got {k!r}")
    labels = labels.to(codes.device).long()
    dist = torch.cdist(codes, codes)
    dist.fill_diagonal_(float("inf"))
    neighbours = dist.topk(k, largest=False).indices
    votes = torch.nn.functional.one_hot(labels[neighbours], int(labels.max()) + 1).sum(1)
    return float((votes.argmax(1) == labels).float().mean())


@torch.no_grad()
def component_usage(model: VAE, images: Tensor, batch_size: int = 1000) -> Tensor:
    """Share of test images whose posterior mean is most probable under each mixture component (M,).

    Only defined for a `GaussianMixture` prior; components that no image picks are dead weight.
    """
    prior = model.prior
    if not isinstance(prior, GaussianMixture):
        raise TypeError(f"component usage needs a GaussianMixture prior, this model has {type(prior).__name__}")
    x = binary_test_set(model, images)
    counts = torch.zeros(prior.n_components, device=x.device)
    for s in range(0, x.shape[0], batch_size):
        mu, logvar = model.encode(x[s : s + batch_size])
        winner = prior.responsibilities(mu, logvar).argmax(-1)
        counts += torch.bincount(winner, minlength=prior.n_components)
    return (counts / x.shape[0]).cpu()


def mixture_kind(model: VAE) -> str:
    """A short label for the model's prior (for tables)."""
    prior = model.prior
    if isinstance(prior, GaussianMixture):
        return f"MoG (M={prior.n_components})"
    if isinstance(prior, FactorizedMixture):
        return f"factorised MoG (M={prior.n_components})"
    return type(prior).__name__
