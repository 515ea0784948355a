"""The networks: the original experiments' MLPs (784 -> 400 -> z for the encoder and back for the
decoder), and the gated 784-300-300 networks of Tomczak & Welling (2018).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class GaussianEncoder(nn.Module):
    """x -> (mu, logvar) of a diagonal Gaussian q(z|x), through one ReLU layer."""

    def __init__(self, input_dim: int = 784, hidden_dim: int = 400,
                 latent_dim: int = 10) -> None:
        super().__init__()
        self.input_dim, self.latent_dim = input_dim, latent_dim
        self.hidden = nn.Linear(input_dim, hidden_dim)
        self.out = nn.Linear(hidden_dim, 2 * latent_dim)  # mean and log-variance

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mu, logvar = self.out(F.relu(self.hidden(x))).chunk(2, dim=-1)
        return mu, logvar


class BernoulliDecoder(nn.Module):
    """z -> logits of independent Bernoulli pixels p(x|z), through one ReLU layer.

    The original applied a sigmoid and binary cross-entropy; working with logits is
    the same model, computed without log(0) trouble.
    """

    def __init__(self, latent_dim: int = 10, hidden_dim: int = 400,
                 output_dim: int = 784) -> None:
        super().__init__()
        self.latent_dim, self.output_dim = latent_dim, output_dim
        self.hidden = nn.Linear(latent_dim, hidden_dim)
        self.out = nn.Linear(hidden_dim, output_dim)

    def forward(self, z: Tensor) -> Tensor:
        return self.out(F.relu(self.hidden(z)))

    @staticmethod
    def log_likelihood(logits: Tensor, x: Tensor) -> Tensor:
        """log p(x|z) summed over pixels; x may be binary or grey levels in [0, 1]."""
        bce = F.binary_cross_entropy_with_logits(logits, x.expand_as(logits),
                                                 reduction="none")
        return -bce.sum(-1)

    @staticmethod
    def mean(logits: Tensor) -> Tensor:
        """Pixel probabilities: what a decoded image shows."""
        return torch.sigmoid(logits)


# ---------------------------------------------------------------------------------------------
# Tomczak & Welling (2018): gated dense layers, 784-300-300 encoder and the mirrored decoder.
# ---------------------------------------------------------------------------------------------
def he_init_(linear: nn.Linear) -> nn.Linear:
    """Weights ~ N(0, 2 / fan_in), biases left at PyTorch's default (their `utils/nn.py: he_init`)."""
    nn.init.normal_(linear.weight, 0.0, math.sqrt(2.0 / linear.in_features))
    return linear


class GatedDense(nn.Module):
    """h = (W_h x + b_h) * sigmoid(W_g x + b_g): a linear layer gated elementwise (Dauphin et al., 2017).

    As `GatedDense` in jmtomczak/vae_vampprior `utils/nn.py` with no activation on h;
    its two halves keep their names there, `h` and `g`.
    """

    def __init__(self, input_dim: int, output_dim: int) -> None:
        super().__init__()
        self.h = he_init_(nn.Linear(input_dim, output_dim))
        self.g = he_init_(nn.Linear(input_dim, output_dim))

    def forward(self, x: Tensor) -> Tensor:
        return self.h(x) * torch.sigmoid(self.g(x))


def _gated_stack(input_dim: int, hidden_dim: int, hidden_layers: int) -> nn.Sequential:
    dims = [input_dim] + [hidden_dim] * hidden_layers
    return nn.Sequential(*(GatedDense(a, b) for a, b in zip(dims[:-1], dims[1:])))


class GatedEncoder(nn.Module):
    """x -> (mu, logvar) through `hidden_layers` gated layers; logvar clipped to [-6, 2] by a hard tanh.

    Their `models/VAE.py`: `q_z_layers` = GatedDense(784, 300), GatedDense(300, 300);
    `q_z_mean` linear; `q_z_logvar` linear then Hardtanh(-6, 2) (no gradient outside the range).
    """

    def __init__(
        self, input_dim: int = 784, hidden_dim: int = 300, latent_dim: int = 40, hidden_layers: int = 2,
        logvar_range: tuple[float, float] = (-6.0, 2.0),
    ) -> None:
        super().__init__()
        self.input_dim, self.latent_dim = input_dim, latent_dim
        self.logvar_range = (float(logvar_range[0]), float(logvar_range[1]))
        self.layers = _gated_stack(input_dim, hidden_dim, hidden_layers)
        self.mean = he_init_(nn.Linear(hidden_dim, latent_dim))
        self.logvar = he_init_(nn.Linear(hidden_dim, latent_dim))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.layers(x)
        return self.mean(h), F.hardtanh(self.logvar(h), *self.logvar_range)


class GatedBernoulliDecoder(nn.Module):
    """z -> logits of Bernoulli pixels through `hidden_layers` gated layers (the encoder mirrored).

    Their `p_x_layers` = GatedDense(z, 300), GatedDense(300, 300) and `p_x_mean` = linear +
    sigmoid. Their likelihood (`utils/distributions.py: log_Bernoulli`) clamps the pixel
    probabilities to [1e-5, 1 - 1e-5]; `log_likelihood` does the same by clamping the logits
    at +-logit(1 - 1e-5), which is the same distribution (still a normalised Bernoulli) with the
    same zero gradient outside the range.
    """

    def __init__(
        self, latent_dim: int = 40, hidden_dim: int = 300, output_dim: int = 784, hidden_layers: int = 2,
        prob_eps: float = 1e-5,
    ) -> None:
        super().__init__()
        self.latent_dim, self.output_dim = latent_dim, output_dim
        self.layers = _gated_stack(latent_dim, hidden_dim, hidden_layers)
        self.out = he_init_(nn.Linear(hidden_dim, output_dim))
        self.max_logit = math.log((1 - prob_eps) / prob_eps) if prob_eps > 0 else math.inf

    def forward(self, z: Tensor) -> Tensor:
        return self.out(self.layers(z))

    def log_likelihood(self, logits: Tensor, x: Tensor) -> Tensor:
        """log p(x|z) summed over pixels, with probabilities kept in [eps, 1 - eps]."""
        if math.isfinite(self.max_logit):
            logits = logits.clamp(-self.max_logit, self.max_logit)
        return BernoulliDecoder.log_likelihood(logits, x)

    @staticmethod
    def mean(logits: Tensor) -> Tensor:
        return torch.sigmoid(logits)
