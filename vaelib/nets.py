"""The original experiments' MLPs: 784 -> 400 -> z for the encoder and back for the decoder."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class GaussianEncoder(nn.Module):
    """x -> (mu, logvar) of a diagonal Gaussian q(z|x), through one ReLU hidden layer."""

    def __init__(self, input_dim: int = 784, hidden_dim: int = 400, latent_dim: int = 10) -> None:
        super().__init__()
        for name, value in (("input_dim", input_dim), ("hidden_dim", hidden_dim), ("latent_dim", latent_dim)):
            if value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")
        self.input_dim, self.latent_dim = input_dim, latent_dim
        self.hidden = nn.Linear(input_dim, hidden_dim)
        self.out = nn.Linear(hidden_dim, 2 * latent_dim)  # one matmul for mean and log-variance

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mu, logvar = self.out(F.relu(self.hidden(x))).chunk(2, dim=-1)
        return mu, logvar


class BernoulliDecoder(nn.Module):
    """z -> logits of independent Bernoulli pixels p(x|z), through one ReLU hidden layer.

    The original applied a sigmoid and binary cross-entropy; working with logits is
    the same model, computed without log(0) trouble.
    """

    def __init__(self, latent_dim: int = 10, hidden_dim: int = 400, output_dim: int = 784) -> None:
        super().__init__()
        self.latent_dim, self.output_dim = latent_dim, output_dim
        self.hidden = nn.Linear(latent_dim, hidden_dim)
        self.out = nn.Linear(hidden_dim, output_dim)

    def forward(self, z: Tensor) -> Tensor:
        return self.out(F.relu(self.hidden(z)))

    @staticmethod
    def log_likelihood(logits: Tensor, x: Tensor) -> Tensor:
        """log p(x|z) summed over pixels; x may be binary or grey levels in [0, 1]."""
        return -F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none").sum(-1)

    @staticmethod
    def mean(logits: Tensor) -> Tensor:
        """Pixel probabilities: what a decoded image shows."""
        return torch.sigmoid(logits)
