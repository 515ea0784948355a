"""A mixture-of-Gaussians posterior q(z|x) = sum_c pi_c(x) N(z; mu_c(x), diag sigma_c(x)^2).

The question this module answers: does the reparameterisation trick survive when
q is a mixture? Write f(z) = log p(x, z) - log q(z|x), so that ELBO = E_q[f(z)].
Because q is a mixture, E_q[f] = sum_c pi_c E_{N_c}[f], and each Gaussian
expectation can be reparameterised, z_c = mu_c + sigma_c * eps_c:

* ``elbo_estimator="exact"`` sums over the components, one reparameterised sample
  each, weighted by pi_c. The weights appear in the objective, so they get
  their gradient (an unbiased estimate of the true one).
* ``elbo_estimator="naive"`` draws a component c ~ Cat(pi) and reparameterises only
  that one. The draw is a discrete choice with no derivative, so the
  reconstruction and prior terms carry no gradient to pi at all; the only
  gradient pi receives comes through -log q(z|x), and its expectation is zero
  (the mean of a score function). The estimator's gradient for the weights is
  therefore zero on average: biased, whatever the true gradient is.

`toy_mixture_gradients` shows the same on a one-dimensional example whose true
gradient is known in closed form; `logit_gradients` measures it on a VAE.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.distributions import Categorical, Independent, MixtureSameFamily, Normal

from .checks import check_int, check_one_of, check_positive_int, check_positive_number, check_probability
from .model import ELBO, KL_ESTIMATES, VAE
from .priors import Prior

ELBO_ESTIMATORS = ("exact", "naive")  # how `elbo` averages over the posterior's components (see above)


class MixtureEncoder(nn.Module):
    """x -> (logits (B, C), mu (B, C, D), logvar (B, C, D)) of a C-component Gaussian mixture q(z|x).

    One ReLU hidden layer, as in the Gaussian encoder, with one output matrix for the
    mixture logits and every component's mean and log-variance.
    """

    def __init__(self, input_dim: int = 784, hidden_dim: int = 400, latent_dim: int = 10, n_components: int = 5) -> None:
        super().__init__()
        self.input_dim, self.latent_dim, self.n_components = input_dim, latent_dim, n_components
        self.hidden = nn.Linear(input_dim, hidden_dim)
        self.out = nn.Linear(hidden_dim, n_components * (1 + 2 * latent_dim))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        out = self.out(F.relu(self.hidden(x)))
        c, d = self.n_components, self.latent_dim
        logits, params = out[..., :c], out[..., c:].reshape(*out.shape[:-1], c, 2 * d)
        mu, logvar = params.chunk(2, dim=-1)
        return logits, mu, logvar


def mixture_posterior(logits: Tensor, mu: Tensor, logvar: Tensor) -> MixtureSameFamily:
    """q(z|x) for a batch as a `torch.distributions` mixture with batch shape (B,) and event shape (D,).

    Argument validation is off: it would synchronise a GPU on every batch, and the
    parameters come from the encoder in a valid form by construction.
    """
    components = Independent(Normal(mu, torch.exp(0.5 * logvar), validate_args=False), 1, validate_args=False)
    return MixtureSameFamily(Categorical(logits=logits, validate_args=False), components, validate_args=False)


class MixturePosteriorVAE(VAE):
    """A VAE whose posterior is a mixture of Gaussians; the prior is any `Prior` (Gaussian, MoG, ...).

    `elbo` follows `elbo_estimator` ("exact": sum over components; "naive": one random component).
    `log_weights` (and so `iw_bound` and `vaelib.evaluate.iw_log_likelihood`) draws z from
    the mixture itself, which gives the ordinary importance-weighted bound used for every
    model; `siwae_bound` is the stratified version (k samples from every component).
    """

    def __init__(self, encoder: MixtureEncoder, decoder: nn.Module, prior: Prior,
                 elbo_estimator: str = "exact") -> None:
        if not isinstance(getattr(encoder, "n_components", None), int):
            raise TypeError(
                f"a MixturePosteriorVAE needs a mixture encoder (with n_components), got {type(encoder).__name__}"
            )
        super().__init__(encoder, decoder, prior)
        self.n_components = encoder.n_components
        self.elbo_estimator = check_one_of(elbo_estimator, "elbo_estimator", ELBO_ESTIMATORS)

    # -- the posterior ------------------------------------------------------------------
    def posterior(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(logits, mu, logvar) of q(z|x): shapes (B, C), (B, C, D), (B, C, D)."""
        return self.encoder(self.prepare(x))

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and log of the per-dimension variance of the whole mixture q(z|x), each (B, D).

        This is what code written for Gaussian posteriors reads (e.g. posterior means for
        active units or latent scatters); the full mixture is `posterior(x)`.
        """
        logits, mu, logvar = self.posterior(x)
        pi = torch.softmax(logits, dim=-1).unsqueeze(-1)
        mean = (pi * mu).sum(1)
        second_moment = (pi * (torch.exp(logvar) + mu**2)).sum(1)
        return mean, torch.log((second_moment - mean**2).clamp_min(1e-12))

    @torch.no_grad()
    def reconstruct(self, x: Tensor) -> Tensor:
        """Decode the mean of each image's heaviest component (the mixture mean may fall between modes)."""
        logits, mu, _ = self.posterior(x)
        best = logits.argmax(-1)
        return self.decode(mu[torch.arange(mu.shape[0], device=mu.device), best])

    # -- bounds ---------------------------------------------------------------------------
    def _log_joint_terms(self, x: Tensor, z: Tensor, q: MixtureSameFamily) -> tuple[Tensor, Tensor, Tensor]:
        """log p(x|z), log p(z), log q(z|x) for samples z of shape (..., B, D); each (..., B)."""
        return self.decoder.log_likelihood(self.decoder(z), x), self.prior.log_prob(z), q.log_prob(z)

    def elbo(self, x: Tensor, kl_estimate: str = "analytic") -> ELBO:
        """The ELBO per example, estimated with the model's `elbo_estimator`.

        A mixture posterior has no closed-form KL from the prior, so the KL term is always
        log q(z|x) - log p(z) at the reconstruction's samples: both `kl_estimate`s give it.
        """
        check_one_of(kl_estimate, "kl_estimate", KL_ESTIMATES)
        x = self.prepare(x)
        logits, mu, logvar = self.encoder(x)
        return self.elbo_terms(x, logits, mu, logvar, self.elbo_estimator)

    def elbo_terms(
        self, x: Tensor, logits: Tensor, mu: Tensor, logvar: Tensor, estimator: str
    ) -> ELBO:
        """The ELBO for given posterior parameters (flattened x): the estimators side by side.

        exact: sum_c pi_c [log p(x|z_c) + log p(z_c) - log q(z_c|x)], z_c = mu_c + sigma_c eps_c;
        its KL term is sum_c pi_c [log q(z_c|x) - log p(z_c)], one sample per component.
        naive: the same bracket for one z from one component c ~ Cat(pi) (no gradient through c).
        """
        check_one_of(estimator, "elbo_estimator", ELBO_ESTIMATORS)
        q = mixture_posterior(logits, mu, logvar)
        if estimator == "exact":
            mu_t, std_t = mu.transpose(0, 1), torch.exp(0.5 * logvar).transpose(0, 1)  # (C, B, D): component first
            z = mu_t + torch.randn(mu_t.shape, dtype=mu.dtype, device=mu.device) * std_t  # same draws as siwae_bound
            log_lik, log_p, log_q = self._log_joint_terms(x, z, q)  # each (C, B)
            pi = torch.softmax(logits, dim=-1).T  # (C, B)
            reconstruction, kl = (pi * log_lik).sum(0), (pi * (log_q - log_p)).sum(0)
        else:
            z = self._sample_components(logits, mu, logvar, 1)  # (1, B, D)
            log_lik, log_p, log_q = (t[0] for t in self._log_joint_terms(x, z, q))
            reconstruction, kl = log_lik, log_q - log_p
        return ELBO(reconstruction - kl, reconstruction, kl)

    @staticmethod
    def _sample_components(logits: Tensor, mu: Tensor, logvar: Tensor, k: int) -> Tensor:
        """k draws per row: a component c ~ Cat(pi) (no gradient), then z = mu_c + sigma_c eps: (k, B, D)."""
        with torch.no_grad():
            c = Categorical(logits=logits, validate_args=False).sample((k,))  # (k, B)
        rows = torch.arange(mu.shape[0], device=mu.device)
        mu_c, logvar_c = mu[rows, c], logvar[rows, c]  # (k, B, D)
        return mu_c + torch.randn_like(mu_c) * torch.exp(0.5 * logvar_c)

    def log_weights(self, x: Tensor, k: int) -> Tensor:
        """log p(x, z_i) - log q(z_i|x) for k draws z_i ~ q(z|x) (the full mixture density): (k, B)."""
        x = self.prepare(x)
        logits, mu, logvar = self.encoder(x)
        z = self._sample_components(logits, mu, logvar, k)
        log_lik, log_p, log_q = self._log_joint_terms(x, z, mixture_posterior(logits, mu, logvar))
        return log_lik + log_p - log_q

    def siwae_bound(self, x: Tensor, k: int, chunk: int | None = None) -> Tensor:
        """Stratified IW bound (Morningstar et al., 2021): log (1/k) sum_i sum_c pi_c w(z_ci), per example.

        k reparameterised samples from every component (k * C decoder passes), drawn
        `chunk` per component at a time. With k = 1 and the same noise, it is at
        least the exact-marginalisation ELBO (Jensen's inequality on the sum over c).
        """
        check_positive_int(k, "k")
        chunk = k if chunk is None else check_positive_int(chunk, "chunk")
        x = self.prepare(x)
        logits, mu, logvar = self.encoder(x)
        q = mixture_posterior(logits, mu, logvar)
        log_pi = torch.log_softmax(logits, dim=-1).T  # (C, B)
        mu_t, std_t = mu.transpose(0, 1), torch.exp(0.5 * logvar).transpose(0, 1)  # (C, B, D)
        total = None
        for start in range(0, k, chunk):
            n = min(chunk, k - start)
            z = mu_t + torch.randn((n, *mu_t.shape), dtype=mu.dtype, device=mu.device) * std_t  # (n, C, B, D)
            log_lik, log_p, log_q = self._log_joint_terms(x, z, q)
            part = torch.logsumexp((log_pi + log_lik + log_p - log_q).double().flatten(0, 1), dim=0)
            total = part if total is None else torch.logaddexp(total, part)
        return (total - math.log(k)).to(mu.dtype)


# -- measuring the weights' gradient --------------------------------------------------------


def logit_gradients(
    model: MixturePosteriorVAE, x: Tensor, estimator: str, n_draws: int = 100, term: str = "elbo"
) -> tuple[Tensor, Tensor]:
    """d(term)/d(mixture logits) per image, averaged over `n_draws` noise draws: (mean, stderr), each (B, C).

    The encoder's logits, means and log-variances are computed once and held fixed, so
    only the estimator's noise varies between draws. `term` is "elbo", "reconstruction" or
    "kl". A term that does not depend on the logits at all has gradient exactly zero.
    """
    check_one_of(estimator, "elbo_estimator", ELBO_ESTIMATORS)
    check_int(n_draws, "n_draws", 2)  # two at least, for a standard error
    check_one_of(term, "term", ("elbo", "reconstruction", "kl"))
    x = model.prepare(x)
    with torch.no_grad():
        logits, mu, logvar = model.encoder(x)
    logits = logits.detach().requires_grad_(True)
    grads = []
    for _ in range(n_draws):
        value = getattr(model.elbo_terms(x, logits, mu, logvar, estimator), term).sum()
        (grad,) = torch.autograd.grad(value, logits, allow_unused=True)
        grads.append(torch.zeros_like(logits) if grad is None else grad)
    stacked = torch.stack(grads)
    return stacked.mean(0), stacked.std(0) / math.sqrt(n_draws)


@torch.no_grad()
def weight_summary(model: MixturePosteriorVAE, x: Tensor) -> dict[str, float]:
    """How much of its mixture q(z|x) uses, averaged over images.

    top_weight: mean of the largest pi_c; effective_components: mean of exp(entropy of pi),
    between 1 (one component does everything) and C (all equally weighted).
    """
    logits, _, _ = model.posterior(x)
    log_pi = torch.log_softmax(logits, -1)
    entropy = -(log_pi.exp() * log_pi).sum(-1)
    return {"top_weight": log_pi.exp().max(-1).values.mean().item(), "effective_components": entropy.exp().mean().item()}


# -- the one-dimensional toy with a known answer ----------------------------------------------


@dataclass
class GradientEstimate:
    """Mean of a per-sample gradient estimator, its standard error and its per-sample spread."""

    mean: float
    stderr: float
    std: float


def _summary(per_sample: Tensor) -> GradientEstimate:
    n = per_sample.numel()
    std = per_sample.std().item()
    return GradientEstimate(per_sample.mean().item(), std / math.sqrt(n), std)


def toy_mixture_gradients(
    weight: float = 0.3, a: float = -1.0, b: float = 2.0, n_samples: int = 100_000, tau: float = 0.5, seed: int = 0
) -> dict[str, GradientEstimate]:
    """Estimators of d/d(pi) E_q[z^2] for q = pi N(a, 1) + (1 - pi) N(b, 1), with the true value.

    E_q[z^2] = pi (a^2 + 1) + (1 - pi)(b^2 + 1), so the true gradient is a^2 - b^2. Returns
    "true", "naive" (pick c, reparameterise it: pi never enters), "exact" (sum over both
    components), "score function" (naive plus f(z) d log pi_c / d pi), "implicit"
    (dz/dpi = -(dF/dpi) / q(z) from the CDF F, Figurnov et al. 2018), and
    "gumbel-softmax" (a relaxed one-hot choice at temperature tau, Jang et al. 2017).
    """
    check_probability(weight, "weight", allow_one=False)
    check_int(n_samples, "n_samples", 2)
    check_positive_number(tau, "tau")
    gen = torch.Generator().manual_seed(seed)
    dt = torch.float64
    eps = torch.randn(2, n_samples, generator=gen, dtype=dt)  # one noise draw per component
    uniform = torch.rand(n_samples, generator=gen, dtype=dt)
    gumbel = -torch.log(-torch.log(torch.rand(2, n_samples, generator=gen, dtype=dt)))
    pi = torch.full((n_samples,), weight, dtype=dt, requires_grad=True)  # one copy per sample
    z_a, z_b = a + eps[0], b + eps[1]
    pick_a = uniform < weight  # c ~ Cat(pi): a comparison, which has no derivative

    def per_sample_grad(values: Tensor) -> Tensor:
        if not values.requires_grad:  # pi never entered the computation: its gradient is zero
            return torch.zeros_like(pi).detach()
        (grad,) = torch.autograd.grad(values.sum(), pi, allow_unused=True)
        return torch.zeros_like(pi) if grad is None else grad.detach()

    z = torch.where(pick_a, z_a, z_b)
    naive = per_sample_grad(z**2)
    exact = per_sample_grad(pi * z_a**2 + (1 - pi) * z_b**2)
    score = (z**2) * torch.where(pick_a, 1.0 / weight, -1.0 / (1.0 - weight))
    normal = torch.distributions.Normal(torch.zeros((), dtype=dt), torch.ones((), dtype=dt))
    density = weight * normal.log_prob(z - a).exp() + (1 - weight) * normal.log_prob(z - b).exp()
    dz_dpi = -(normal.cdf(z - a) - normal.cdf(z - b)) / density
    implicit = 2.0 * z * dz_dpi
    logits = torch.stack([torch.log(pi), torch.log1p(-pi)])  # (2, N)
    y = torch.softmax((logits + gumbel) / tau, dim=0)
    relaxed = per_sample_grad((y[0] * z_a + y[1] * z_b) ** 2)
    return {
        "true": GradientEstimate(a**2 - b**2, 0.0, 0.0),
        "naive": _summary(naive),
        "exact": _summary(exact),
        "score function": _summary(score),
        "implicit": _summary(implicit),
        "gumbel-softmax": _summary(relaxed),
    }
