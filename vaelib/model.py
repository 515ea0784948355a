"""The VAE: an encoder q(z|x), a decoder p(x|z) and a prior p(z), with its two bounds.

`elbo` is the training objective (one reparameterised sample, KL from the prior);
`iw_bound` is the importance-weighted bound of Burda et al. (2016), written out
because chapter 5 derives it: log (1/k) sum_i p(x, z_i) / q(z_i|x), z_i ~ q(z|x).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Iterator

import torch
from torch import Tensor, nn

from .checks import check_one_of, check_positive_int
from .data import check_images
from .distributions import diagonal_gaussian
from .priors import Prior

# How `elbo` estimates its KL term: the prior's `kl` ("analytic": closed form, or the variational
# approximation for mixtures) or log q(z|x) - log p(z) at the reconstruction's z ("sample").
KL_ESTIMATES = ("analytic", "sample")


@dataclass
class ELBO:
    """Per-example terms: elbo = reconstruction - kl (all shape (B,), nats)."""

    elbo: Tensor
    reconstruction: Tensor
    kl: Tensor


class VAE(nn.Module):
    """A VAE from an encoder returning (mu, logvar), a decoder (with `log_likelihood` and `mean`) and a `Prior`."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module, prior: Prior) -> None:
        super().__init__()
        dims = {getattr(encoder, "latent_dim", None), getattr(decoder, "latent_dim", None), prior.latent_dim}
        if len(dims) != 1:
            raise ValueError(f"encoder, decoder and prior disagree on the latent size: {sorted(map(str, dims))}")
        self.encoder, self.decoder, self.prior = encoder, decoder, prior
        self.latent_dim = prior.latent_dim
        self.input_dim = encoder.input_dim

    # -- input checks ---------------------------------------------------------------
    def prepare(self, x: Tensor) -> Tensor:
        """Flatten images to (B, input_dim) floats, with a clear error for anything else.

        Every method that takes images calls this once per call: `vaelib.data.check_images`
        (floats in [0, 1], no NaN or infinity, the right number of pixels), and a batch must
        hold at least one image. Inside `trusted_inputs()` the checks are skipped.
        """
        if not getattr(self, "_inputs_trusted", False):
            if isinstance(x, Tensor) and not x.is_floating_point():
                raise TypeError(
                    f"expected float pixels in [0, 1], got dtype {x.dtype}; convert uint8 images with "
                    "vaelib.data.binarize_static / binarize_dynamic (binary) or to_unit_float (grey levels)"
                )
            check_images(x, self.input_dim)
            if x.shape[0] == 0:
                raise ValueError(f"got an empty batch of images {tuple(x.shape)}: there is nothing to score; "
                                 "pass at least one image")
        return x.reshape(x.shape[0], self.input_dim)

    @contextlib.contextmanager
    def trusted_inputs(self) -> Iterator[None]:
        """Skip the checks of `prepare` inside: for callers whose inputs are valid by construction.

        `fit` uses it (its batches are drawn from uint8 images it checked once), and so do the
        chunks of `iw_bound` after the first check: a per-batch scan of every pixel would cost
        a pass over the data and, on a GPU, a synchronisation per batch.
        """
        before = getattr(self, "_inputs_trusted", False)
        self._inputs_trusted = True
        try:
            yield
        finally:
            self._inputs_trusted = before

    def _check_latent(self, z: Tensor) -> Tensor:
        if not isinstance(z, Tensor) or z.dim() != 2 or z.shape[1] != self.latent_dim:
            shape = tuple(z.shape) if isinstance(z, Tensor) else type(z).__name__
            raise ValueError(f"expected latent codes of shape (N, {self.latent_dim}), got {shape}")
        return z

    # -- the model --------------------------------------------------------------------
    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Posterior parameters (mu, logvar) of q(z|x)."""
        return self.encoder(self.prepare(x))

    def decode(self, z: Tensor) -> Tensor:
        """Pixel probabilities of p(x|z) for latent codes z of shape (N, latent_dim)."""
        return self.decoder.mean(self.decoder(self._check_latent(z)))

    def elbo(self, x: Tensor, kl_estimate: str = "analytic") -> ELBO:
        """One-sample reparameterised ELBO per example.

        `kl_estimate="analytic"` takes the prior's `kl` (closed form, or the
        variational approximation for mixtures); `"sample"` estimates the KL at
        the reconstruction's z, log q(z|x) - log p(z), as Tomczak & Welling's
        `calculate_loss` does for every prior.
        """
        check_one_of(kl_estimate, "kl_estimate", KL_ESTIMATES)
        x = self.prepare(x)
        mu, logvar = self.encoder(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        reconstruction = self.decoder.log_likelihood(self.decoder(z), x)
        if kl_estimate == "sample":
            log_q = diagonal_gaussian(mu, logvar).log_prob(z)
            kl = log_q - self.prior.log_prob(z)
        else:
            kl = self.prior.kl(mu, logvar)
        return ELBO(reconstruction - kl, reconstruction, kl)

    def loss(self, x: Tensor) -> Tensor:
        """Mean negative ELBO over the batch: what `fit` minimises."""
        return -self.elbo(x).elbo.mean()

    def log_weights(self, x: Tensor, k: int) -> Tensor:
        """log p(x, z_i) - log q(z_i|x), k draws z_i ~ q(z|x): shape (k, B)."""
        x = self.prepare(x)
        mu, logvar = self.encoder(x)
        q = diagonal_gaussian(mu, logvar)
        z = q.rsample((k,))  # (k, B, D)
        log_px_z = self.decoder.log_likelihood(self.decoder(z), x)
        return log_px_z + self.prior.log_prob(z) - q.log_prob(z)

    def iw_bound(self, x: Tensor, k: int, chunk: int | None = None) -> Tensor:
        """Importance-weighted lower bound on log p(x), k samples: shape (B,).

        Samples are drawn `chunk` at a time (default: all at once) and combined
        by a running log-sum-exp in float64, so memory stays bounded for k in
        the thousands.
        """
        check_positive_int(k, "k")
        chunk = k if chunk is None else check_positive_int(chunk, "chunk")
        x = self.prepare(x)  # checked once; the chunks below reuse it
        total = None
        with self.trusted_inputs():
            for start in range(0, k, chunk):
                lw = self.log_weights(x, min(chunk, k - start)).double()
                part = torch.logsumexp(lw, dim=0)
                total = part if total is None else torch.logaddexp(total, part)
        return (total - math.log(k)).to(x.dtype)

    @torch.no_grad()
    def sample(self, n: int) -> Tensor:
        """n images drawn by decoding prior samples (pixel probabilities, (n, input_dim))."""
        return self.decode(self.prior.sample(n))

    @torch.no_grad()
    def reconstruct(self, x: Tensor) -> Tensor:
        """Decode the posterior mean of each image: what the model keeps of x."""
        mu, _ = self.encode(x)
        return self.decode(mu)
