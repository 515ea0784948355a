"""Priors p(z) behind one interface: `log_prob(z)`, `sample(n)`, `kl(mu, logvar)`.

`kl` is the KL from a diagonal Gaussian posterior q(z|x) = N(mu, diag exp(logvar))
to the prior: in closed form for the standard normal, and the variational
approximation (an upper bound, see `vaelib.distributions`) for mixtures.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .checks import check_one_of, check_positive_int
from .distributions import (factorized_mixture_log_prob, gaussian_kl, mixture_kl_approx, mixture_log_prob,
                            pairwise_gaussian_kl)


class Prior(nn.Module):
    """Base class: a distribution over R^latent_dim with the three methods a VAE needs.

    Besides `log_prob`, `sample` and `kl`, every prior describes itself, so code that
    draws or explores it never needs to ask for its class: `label` (short, for tables
    and titles), `n_components`, `log_weights` (of the components) and `components()`,
    the (means, logvars) of a full-dimensional Gaussian mixture, or None for a prior
    that is not one (the per-dimension mixture).
    """

    kl_is_exact: bool = False
    n_components: int = 1

    def __init__(self, latent_dim: int) -> None:
        super().__init__()
        check_positive_int(latent_dim, "latent_dim")
        self.latent_dim = latent_dim

    def _check_z(self, z: Tensor) -> None:
        if z.shape[-1] != self.latent_dim:
            raise ValueError(f"expected latent vectors of size {self.latent_dim}, got shape {tuple(z.shape)}")

    def log_prob(self, z: Tensor) -> Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def sample(self, n: int) -> Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def kl(self, mu: Tensor, logvar: Tensor) -> Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    @property
    def label(self) -> str:  # pragma: no cover - interface
        raise NotImplementedError

    @property
    def log_weights(self) -> Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def components(self) -> tuple[Tensor, Tensor] | None:
        """(means, logvars), each (M, D), of a full-dimensional Gaussian mixture; None otherwise."""
        return None

    def responsibilities(self, mu: Tensor, logvar: Tensor) -> Tensor:
        """w_j proportional to pi_j exp(-KL(q || p_j)): which components a posterior leans on, (B, M).

        The weights of the KL approximation; a prior that is not a mixture over the whole latent
        space (`components()` is None: the per-dimension mixture) has none.
        """
        components = self.components()
        if components is None:
            raise TypeError(f"responsibilities need a prior that is a mixture over the whole latent space; "
                            f"{self.label} is not (its components() is None)")
        means, logvars = components
        return torch.softmax(self.log_weights - pairwise_gaussian_kl(mu, logvar, means, logvars), dim=-1)

    @property
    def _device(self) -> torch.device:
        return next(self.parameters(), torch.empty(0)).device


class StandardNormal(Prior):
    """p(z) = N(0, I): the prior of the plain VAE. No parameters."""

    kl_is_exact = True

    def __init__(self, latent_dim: int) -> None:
        super().__init__(latent_dim)
        self.register_buffer("_anchor", torch.zeros(()), persistent=False)  # tracks .to(device)

    def log_prob(self, z: Tensor) -> Tensor:
        self._check_z(z)
        return -0.5 * (z**2 + math.log(2 * math.pi)).sum(-1)

    def sample(self, n: int) -> Tensor:
        check_positive_int(n, "n")
        return torch.randn(n, self.latent_dim, device=self._anchor.device)

    def kl(self, mu: Tensor, logvar: Tensor) -> Tensor:
        self._check_z(mu)
        return gaussian_kl(mu, logvar)

    @property
    def label(self) -> str:
        return "N(0, I)"

    @property
    def log_weights(self) -> Tensor:
        """One component of weight 1."""
        return torch.zeros(1, device=self._anchor.device)

    def components(self) -> tuple[Tensor, Tensor]:
        """The single component N(0, I): mean 0, log-variance 0."""
        zeros = torch.zeros(1, self.latent_dim, device=self._anchor.device)
        return zeros, zeros.clone()


class GaussianMixture(Prior):
    """p(z) = sum_j pi_j N(z; mu_j, diag sigma_j^2) with M learned components.

    Weights are uniform (1/M) as in the original experiments unless
    `learn_weights=True`. Means start as standard-normal draws so the components
    begin spread over the region a unit Gaussian prior would occupy.
    """

    def __init__(self, latent_dim: int, n_components: int, learn_weights: bool = False, init_std: float = 1.0) -> None:
        super().__init__(latent_dim)
        check_positive_int(n_components, "n_components")
        self.n_components = n_components
        self.means = nn.Parameter(init_std * torch.randn(n_components, latent_dim))
        self.logvars = nn.Parameter(torch.zeros(n_components, latent_dim))
        logits = torch.zeros(n_components)
        self.logits = nn.Parameter(logits) if learn_weights else None
        if not learn_weights:
            self.register_buffer("_fixed_logits", logits)

    @property
    def label(self) -> str:
        return f"MoG, M={self.n_components}"

    @property
    def log_weights(self) -> Tensor:
        logits = self.logits if self.logits is not None else self._fixed_logits
        return torch.log_softmax(logits, dim=0)

    def components(self) -> tuple[Tensor, Tensor]:
        return self.means, self.logvars

    def log_prob(self, z: Tensor) -> Tensor:
        self._check_z(z)
        return mixture_log_prob(z, self.means, self.logvars, self.log_weights)

    def sample(self, n: int) -> Tensor:
        """Pick a component for each draw (by the weights), then sample that Gaussian."""
        check_positive_int(n, "n")
        idx = torch.multinomial(self.log_weights.exp(), n, replacement=True)
        eps = torch.randn(n, self.latent_dim, device=self.means.device)
        return self.means[idx] + eps * torch.exp(0.5 * self.logvars[idx])

    def kl(self, mu: Tensor, logvar: Tensor) -> Tensor:
        self._check_z(mu)
        return mixture_kl_approx(mu, logvar, self.means, self.logvars, self.log_weights)


class FactorizedMixture(Prior):
    """p(z) = prod_d sum_k (1/M) N(z_d; mu_dk, sigma_dk^2): an independent mixture per dimension.

    The original's "IndGmm" prior. Because both q and p factorise over dimensions,
    KL(q||p) is a sum of one-dimensional KLs, each approximated like the full mixture's.
    """

    def __init__(self, latent_dim: int, n_components: int, init_std: float = 1.0) -> None:
        super().__init__(latent_dim)
        check_positive_int(n_components, "n_components")
        self.n_components = n_components
        self.means = nn.Parameter(init_std * torch.randn(latent_dim, n_components))
        self.logvars = nn.Parameter(torch.zeros(latent_dim, n_components))

    def _log_weight(self) -> float:
        return -math.log(self.n_components)

    @property
    def label(self) -> str:
        return f"factorised MoG, M={self.n_components} per dimension"

    @property
    def log_weights(self) -> Tensor:
        """(D, M): uniform weights of each dimension's own mixture (`components()` is None)."""
        return torch.full_like(self.means, self._log_weight())

    def dimension_components(self) -> tuple[Tensor, Tensor]:
        """(means, logvars), each (D, M): the one-dimensional mixture of every latent dimension."""
        return self.means, self.logvars

    def log_prob(self, z: Tensor) -> Tensor:
        self._check_z(z)
        return factorized_mixture_log_prob(z, self.means, self.logvars, self.log_weights)

    def sample(self, n: int) -> Tensor:
        check_positive_int(n, "n")
        idx = torch.randint(self.n_components, (n, self.latent_dim), device=self.means.device)
        dims = torch.arange(self.latent_dim, device=self.means.device)
        mean, logvar = self.means[dims, idx], self.logvars[dims, idx]
        return mean + torch.randn_like(mean) * torch.exp(0.5 * logvar)

    def kl(self, mu: Tensor, logvar: Tensor) -> Tensor:
        self._check_z(mu)
        # D independent one-dimensional mixture KLs, batched over the dimension: (D, B) -> (B,).
        flat_mu, flat_logvar = mu.reshape(-1, self.latent_dim), logvar.reshape(-1, self.latent_dim)
        log_weights = torch.full((self.n_components,), self._log_weight(), dtype=mu.dtype, device=mu.device)
        per_dim = mixture_kl_approx(flat_mu.T.unsqueeze(-1), flat_logvar.T.unsqueeze(-1),
                                    self.means.unsqueeze(-1), self.logvars.unsqueeze(-1), log_weights)
        return per_dim.sum(0).reshape(mu.shape[:-1])


class VampPrior(Prior):
    """p(z) = (1/K) sum_k q(z | u_k): the encoder's posteriors at K learned pseudo-inputs u_k.

    Tomczak & Welling (2018). The pseudo-inputs live in pixel space, kept in (0, 1)
    by a sigmoid. The encoder is shared with the VAE (held by reference, so the
    state dict stores it once, under the VAE's `encoder`). KL is approximated
    like the Gaussian mixture's, since the components are Gaussians.
    """

    ACTIVATIONS = ("sigmoid", "hardtanh")

    def __init__(
        self, encoder: nn.Module, n_pseudo_inputs: int, init: Tensor | None = None, activation: str = "sigmoid"
    ) -> None:
        """`activation="hardtanh"` is Tomczak & Welling's own parametrisation (`models/Model.py:
        add_pseudoinputs`): free pixels u_k clipped to [0, 1] by Hardtanh(0, 1), initialised
        N(0.05, 0.01^2) (their MNIST setting in `utils/load_data.py`); kept in `pseudo_raw`.
        """
        super().__init__(encoder.latent_dim)
        check_positive_int(n_pseudo_inputs, "n_pseudo_inputs")
        check_one_of(activation, "pseudo-input activation", self.ACTIVATIONS)
        self.n_components = n_pseudo_inputs
        self.activation = activation
        object.__setattr__(self, "_encoder", encoder)  # not a submodule: no duplicate parameters
        shape = (n_pseudo_inputs, encoder.input_dim)
        if init is None:
            init = 0.5 + 0.05 * torch.randn(shape) if activation == "sigmoid" else 0.05 + 0.01 * torch.randn(shape)
        if init.shape != shape:
            raise ValueError(f"init must have shape {shape}, got {tuple(init.shape)}")
        if activation == "sigmoid":
            self.pseudo_logits = nn.Parameter(torch.logit(init.float().clamp(1e-3, 1 - 1e-3)))
        else:
            self.pseudo_raw = nn.Parameter(init.float().clone())

    @property
    def _raw(self) -> Tensor:
        return self.pseudo_logits if self.activation == "sigmoid" else self.pseudo_raw

    @property
    def pseudo_inputs(self) -> Tensor:
        if self.activation == "sigmoid":
            return torch.sigmoid(self.pseudo_logits)
        return torch.nn.functional.hardtanh(self.pseudo_raw, 0.0, 1.0)

    def components(self) -> tuple[Tensor, Tensor]:
        """(means, logvars) of the K mixture components, each (K, D)."""
        return self._encoder(self.pseudo_inputs)

    @property
    def label(self) -> str:
        return f"VampPrior, K={self.n_components}"

    @property
    def log_weights(self) -> Tensor:
        return torch.full((self.n_components,), -math.log(self.n_components), device=self._raw.device)

    def log_prob(self, z: Tensor) -> Tensor:
        self._check_z(z)
        means, logvars = self.components()
        return mixture_log_prob(z, means, logvars, self.log_weights)

    def sample(self, n: int) -> Tensor:
        check_positive_int(n, "n")
        means, logvars = self.components()
        idx = torch.randint(self.n_components, (n,), device=means.device)
        return means[idx] + torch.randn_like(means[idx]) * torch.exp(0.5 * logvars[idx])

    def kl(self, mu: Tensor, logvar: Tensor) -> Tensor:
        self._check_z(mu)
        means, logvars = self.components()
        return mixture_kl_approx(mu, logvar, means, logvars, self.log_weights)
