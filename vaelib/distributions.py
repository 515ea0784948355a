"""Gaussian and mixture-of-Gaussians maths used by the priors.

Densities that `torch.distributions` already has are taken from there. Three
things are written out by hand because the book derives them: the closed-form
KL between diagonal Gaussians, the variational approximation of the KL to a
mixture (Hershey & Olsen, 2007), and the Monte-Carlo KL estimator that checks it.

Conventions: `mu` and `logvar` are (..., D) tensors, `logvar = log sigma^2`.
Mixture parameters are `means`, `logvars` of shape (M, D) and `log_weights`
of shape (M,) (log pi_j, summing to one after exp).
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor
from torch.distributions import Categorical, Independent, MixtureSameFamily, Normal

from .checks import check_int

LOG_2PI = math.log(2.0 * math.pi)


def diagonal_gaussian(mu: Tensor, logvar: Tensor) -> Independent:
    """N(mu, diag(exp(logvar))) as a `torch.distributions` object over the last dimension."""
    return Independent(Normal(mu, torch.exp(0.5 * logvar)), 1)


def gaussian_kl(mu0: Tensor, logvar0: Tensor, mu1: Tensor | float = 0.0, logvar1: Tensor | float = 0.0) -> Tensor:
    """KL(N(mu0, e^logvar0) || N(mu1, e^logvar1)) for diagonal Gaussians, summed over the last dim.

    With the defaults the second argument is the standard normal N(0, I).
    """
    mu1 = torch.as_tensor(mu1, dtype=mu0.dtype, device=mu0.device)
    logvar1 = torch.as_tensor(logvar1, dtype=mu0.dtype, device=mu0.device)
    terms = logvar1 - logvar0 + torch.exp(logvar0 - logvar1) + (mu0 - mu1) ** 2 * torch.exp(-logvar1) - 1.0
    return 0.5 * terms.sum(-1)


def _pairwise_kl_factors(
    mu: Tensor, logvar: Tensor, means: Tensor, logvars: Tensor
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """rows (B, 2D), cols (M, 2D), per_component (M,), per_row (B,) such that
    KL(N(mu_b, .) || N(means_j, .)) = rows_b . cols_j + per_component_j + per_row_b.

    Expanding the square in the Gaussian KL,
        2 KL_bj = sum_d [(s_bd^2 + mu_bd^2) / s_jd^2 - 2 mu_bd m_jd / s_jd^2]
                  + sum_d [log s_jd^2 + m_jd^2 / s_jd^2] - D - sum_d log s_bd^2,
    separates every term into a factor of row b times a factor of component j, so the
    whole (B, M) matrix is one matrix product plus two vectors. Both sides are first shifted
    by the mean of the component means (the KL is shift invariant) to limit cancellation
    when means sit far from the origin.
    """
    center = means.mean(-2, keepdim=True).detach()
    mu, means = mu - center, means - center
    inv_var = torch.exp(-logvars)  # (M, D)
    rows = torch.cat([torch.exp(logvar) + mu**2, mu], dim=-1)
    cols = 0.5 * torch.cat([inv_var, -2.0 * means * inv_var], dim=-1)
    per_component = 0.5 * (logvars + means**2 * inv_var).sum(-1)
    per_row = -0.5 * (logvar.sum(-1) + mu.shape[-1])
    return rows, cols, per_component, per_row


def pairwise_gaussian_kl(mu: Tensor, logvar: Tensor, means: Tensor, logvars: Tensor) -> Tensor:
    """KL_j = KL(N(mu_b, .) || N(means_j, .)) for every row b and component j: shape (B, M).

    One (B, 2D) x (2D, M) matrix product instead of a (B, M, D) broadcast, which is
    what makes 1000 components cheap (see `_pairwise_kl_factors`).
    """
    rows, cols, per_component, per_row = _pairwise_kl_factors(mu, logvar, means, logvars)
    return torch.addmm(per_component, rows, cols.T) + per_row.unsqueeze(-1)


class _NegLogSumExpOfAffine(torch.autograd.Function):
    """-log sum_j exp(bias_j - rows_b . cols_j) for every row b, with a hand-written backward.

    The gradient with respect to each logit is minus the softmax weight w_bj, the
    "responsibility" of component j that chapter 4 derives. The forward pass keeps w, so
    the backward pass is one multiply and two matrix products, with no second exp over
    the (B, M) matrix (this is what keeps a 1000-component prior near the cost of a plain
    VAE; benchmarks/bench_mog_cost.py). First derivatives only.
    """

    @staticmethod
    def forward(ctx, rows: Tensor, cols: Tensor, bias: Tensor) -> Tensor:
        if rows.dim() == 2:  # rows (B, K), cols (M, K), bias (M,)
            logits = torch.addmm(bias, rows, cols.T, alpha=-1.0)
        else:  # a batch of independent problems: rows (D, B, K), cols (D, M, K), bias (D, M)
            logits = torch.baddbmm(bias.unsqueeze(-2), rows, cols.transpose(-1, -2), alpha=-1.0)
        top = logits.amax(dim=-1, keepdim=True)
        unnormalised = logits.sub_(top).exp_()
        total = unnormalised.sum(dim=-1, keepdim=True)
        ctx.save_for_backward(rows, cols, unnormalised, total)
        return -(top + total.log()).squeeze(-1)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        rows, cols, unnormalised, total = ctx.saved_tensors
        g = unnormalised * (grad.unsqueeze(-1) / total)  # grad_b * w_bj, normalising on the way
        need_rows, need_cols, need_bias = ctx.needs_input_grad
        return (g @ cols if need_rows else None, g.transpose(-1, -2) @ rows if need_cols else None,
                -g.sum(-2) if need_bias else None)


def pairwise_gaussian_kl_broadcast(mu: Tensor, logvar: Tensor, means: Tensor, logvars: Tensor) -> Tensor:
    """The same (B, M) matrix as `pairwise_gaussian_kl`, by direct (B, M, D) broadcasting.

    Slower and heavier on memory; kept as the readable reference the fast form is tested against.
    """
    return gaussian_kl(mu[:, None, :], logvar[:, None, :], means[None], logvars[None])


def mixture_kl_approx(
    mu: Tensor, logvar: Tensor, means: Tensor, logvars: Tensor,
    log_weights: Tensor, *, fast: bool = True,
) -> Tensor:
    """Variational approximation of KL(q || sum_j pi_j p_j), shape (B,):
    -log sum_j pi_j exp(-KL_j).

    For a Gaussian q this is an upper bound on the true KL (proved in
    chapter 4), so an ELBO built with it stays a lower bound on log p(x).
    The log-sum-exp is evaluated stably:
    KL_min - log sum_j pi_j exp(KL_min - KL_j).
    """
    if not fast:
        kl = pairwise_gaussian_kl_broadcast(mu, logvar, means, logvars)
        return -torch.logsumexp(log_weights - kl, dim=-1)
    factors = _pairwise_kl_factors(mu, logvar, means, logvars)
    rows, cols, per_component, per_row = factors
    # -log sum_j exp(log pi_j - KL_bj); the per-row part of KL_bj comes out
    # of the sum. With a leading batch dimension (mu (D, B, d), means
    # (D, M, d)) each slice is its own mixture.
    bias = log_weights - per_component
    return _NegLogSumExpOfAffine.apply(rows, cols, bias) + per_row


def component_log_probs(z: Tensor, means: Tensor, logvars: Tensor) -> Tensor:
    """log N(z; means_j, diag exp(logvars_j)) for every row of z and every component: shape (N, M).

    Matrix-product form (see `pairwise_gaussian_kl`), centred on the mean of the means.
    """
    center = means.mean(0).detach()
    z, means = z - center, means - center
    inv_var = torch.exp(-logvars)
    sq = (z**2) @ inv_var.T - 2.0 * z @ (means * inv_var).T + (means**2 * inv_var).sum(-1)
    return -0.5 * (z.shape[-1] * LOG_2PI + logvars.sum(-1) + sq)


def mixture_log_prob(z: Tensor, means: Tensor, logvars: Tensor, log_weights: Tensor) -> Tensor:
    """log sum_j pi_j N(z; means_j, diag exp(logvars_j)) for z of shape (..., D); returns (...).

    Without gradients (evaluation: the importance-weighted bound spends most of its time
    here for a 1000-component prior) the (N, M) table is built by one `addmm` and reduced
    in place, about 4x faster than the autograd-friendly path and as accurate.
    """
    flat = z.reshape(-1, z.shape[-1])
    if torch.is_grad_enabled() and any(t.requires_grad for t in (z, means, logvars, log_weights)):
        out = torch.logsumexp(log_weights + component_log_probs(flat, means, logvars), dim=-1)
    else:
        out = _mixture_log_prob_no_grad(flat, means, logvars, log_weights)
    return out.reshape(z.shape[:-1])


def _mixture_log_prob_no_grad(z: Tensor, means: Tensor, logvars: Tensor, log_weights: Tensor) -> Tensor:
    """`mixture_log_prob` for (N, D) rows, in one (N, M) buffer: the same centred quadratic
    form as `component_log_probs`, written as [z^2, z] @ [-inv_var / 2, means * inv_var]^T
    plus a per-component bias, then a log-sum-exp done in place."""
    center = means.mean(0)
    z, means = z - center, means - center
    inv_var = torch.exp(-logvars)
    bias = log_weights - 0.5 * (z.shape[-1] * LOG_2PI + logvars.sum(-1) + (means**2 * inv_var).sum(-1))
    table = torch.addmm(bias, torch.cat([z**2, z], -1), torch.cat([-0.5 * inv_var, means * inv_var], -1).T)
    peak = table.amax(-1, keepdim=True)
    return table.sub_(peak).exp_().sum(-1).log_() + peak.squeeze(-1)


FACTORIZED_CHUNK_ROWS = 256  # rows of one (rows, M) table: 1 MB for M = 1000 (benchmarks/bench_mixture_log_prob.py)


def factorized_component_log_probs(z: Tensor, means: Tensor, logvars: Tensor) -> Tensor:
    """log N(z_d; means_dk, exp(logvars_dk)) for (N, D) rows and (D, M) parameters: (N, D, M)."""
    return -0.5 * (LOG_2PI + logvars + (z.unsqueeze(-1) - means) ** 2 * torch.exp(-logvars))


def factorized_mixture_log_prob(z: Tensor, means: Tensor, logvars: Tensor, log_weights: Tensor) -> Tensor:
    """sum_d log sum_k pi_dk N(z_d; means_dk, exp(logvars_dk)) for z (..., D), parameters (D, M).

    One one-dimensional mixture per latent dimension. Without gradients the (rows, M) table
    of one dimension is built and reduced in place, `FACTORIZED_CHUNK_ROWS` at a time so that
    it stays in cache: 4-9x faster on a CPU than the (rows, D, M) autograd path, and as exact
    (it forms (z - mean)^2 directly rather than expanding it).
    """
    flat = z.reshape(-1, z.shape[-1])
    if torch.is_grad_enabled() and any(t.requires_grad for t in (z, means, logvars, log_weights)):
        out = torch.logsumexp(log_weights + factorized_component_log_probs(flat, means, logvars), dim=-1).sum(-1)
    else:
        out = _factorized_mixture_log_prob_no_grad(flat, means, logvars, log_weights)
    return out.reshape(z.shape[:-1])


def _factorized_mixture_log_prob_no_grad(z: Tensor, means: Tensor, logvars: Tensor, log_weights: Tensor) -> Tensor:
    """`factorized_mixture_log_prob` for (N, D) rows, one dimension's (rows, M) table at a time."""
    minus_half_precision = -0.5 * torch.exp(-logvars)
    bias = log_weights - 0.5 * (LOG_2PI + logvars)
    out = torch.zeros(z.shape[0], dtype=torch.result_type(z, means), device=z.device)
    for s in range(0, z.shape[0], FACTORIZED_CHUNK_ROWS):
        rows = slice(s, s + FACTORIZED_CHUNK_ROWS)
        for d in range(z.shape[1]):
            table = z[rows, d, None] - means[d]
            table.mul_(table).mul_(minus_half_precision[d]).add_(bias[d])
            peak = table.amax(-1, keepdim=True)
            out[rows] += table.sub_(peak).exp_().sum(-1).log_() + peak.squeeze(-1)
    return out


def mixture_distribution(means: Tensor, logvars: Tensor, log_weights: Tensor) -> MixtureSameFamily:
    """The mixture as a `torch.distributions.MixtureSameFamily` (the independent reference)."""
    return MixtureSameFamily(Categorical(logits=log_weights), diagonal_gaussian(means, logvars))


def monte_carlo_kl(
    mu: Tensor, logvar: Tensor, log_prob: Callable[[Tensor], Tensor], n_samples: int = 1000
) -> tuple[Tensor, Tensor]:
    """Unbiased Monte-Carlo estimate of KL(q || p) = E_q[log q(z) - log p(z)] per row.

    `log_prob` maps (S, B, D) samples to (S, B) log-densities of p. Returns the
    estimate and its standard error, both of shape (B,).
    """
    check_int(n_samples, "n_samples", 2)  # two at least, for a standard error
    q = diagonal_gaussian(mu, logvar)
    z = q.sample((n_samples,))  # (S, B, D)
    diffs = q.log_prob(z) - log_prob(z)
    return diffs.mean(0), diffs.std(0) / math.sqrt(n_samples)
