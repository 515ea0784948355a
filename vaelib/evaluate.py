"""How good is a trained model: ELBO terms, importance-weighted log-likelihood, latent usage,
and the statistics the chapters compare models with.

All numbers are in nats per image, on a fixed (static) binarisation of the test
images so that every model is scored on the same binary data. `scorecard` gathers
them for one model (chapters 5 and 6, `python -m vaelib evaluate`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor

from .checks import check_int, check_positive_int
from .data import binarize_static, check_images
from .denormals import flushed_denormals
from .model import VAE


def _device(model: VAE) -> torch.device:
    return next(model.parameters()).device


def binary_test_set(model: VAE, images: Tensor, seed: int = 0) -> Tensor:
    """uint8 images -> the fixed binary draw every evaluation uses, flattened, on the model's device."""
    check_images(images, n_pixels=model.input_dim, require_uint8=True)
    flat = images.reshape(images.shape[0], model.input_dim)
    return binarize_static(flat, seed, n_pixels=None).to(_device(model))


# -- the ELBO -----------------------------------------------------------------------------------

@torch.no_grad()
def evaluate_elbo(model: VAE, x: Tensor, batch_size: int = 1000, kl_estimate: str = "analytic") -> dict[str, float]:
    """Mean negative ELBO, KL and reconstruction term over model inputs x (nats per image).

    `x` is what the model reads (binary or grey floats); `fit` scores its test and validation
    curves with it. `kl_estimate="sample"` asks the model for its single-sample KL instead.
    """
    was_training = model.training
    model.eval()
    sums = torch.zeros(3, dtype=torch.float64, device=x.device)
    kwargs = {} if kl_estimate == "analytic" else {"kl_estimate": kl_estimate}
    for start in range(0, x.shape[0], batch_size):
        terms = model.elbo(x[start : start + batch_size], **kwargs)
        sums += torch.stack([-terms.elbo.sum(), terms.kl.sum(), terms.reconstruction.sum()]).double()
    model.train(was_training)
    neg_elbo, kl, rec = (sums / x.shape[0]).tolist()
    return {"neg_elbo": neg_elbo, "kl": kl, "reconstruction": rec}


def dataset_elbo(model: VAE, images: Tensor, batch_size: int = 1000, seed: int = 0) -> dict[str, float]:
    """neg_elbo, kl (the rate) and -reconstruction (the distortion) averaged over uint8 images."""
    terms = evaluate_elbo(model, binary_test_set(model, images, seed), batch_size)
    return {"neg_elbo": terms["neg_elbo"], "kl": terms["kl"], "distortion": -terms["reconstruction"]}


# -- the importance-weighted log-likelihood ------------------------------------------------------

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
    """log p(x) ~= log (1/k) sum_i p(x, z_i)/q(z_i|x) (Burda et al., 2016) for each uint8 image.

    The images are scored on the fixed binarisation of `binary_test_set` (seed `seed`);
    `iw_log_likelihood_of_inputs` scores inputs binarised some other way.
    """
    check_positive_int(k, "k")
    x = binary_test_set(model, images, seed)
    return iw_log_likelihood_of_inputs(model, x, k, batch_size=batch_size, max_rows=max_rows, seed=seed,
                                       progress=progress)


@torch.no_grad()
def iw_log_likelihood_of_inputs(
    model: VAE,
    x: Tensor,
    k: int = 5000,
    *,
    batch_size: int = 100,
    max_rows: int | None = None,
    seed: int = 0,
    progress: bool = False,
) -> LogLikelihood:
    """The importance-weighted log p(x) of model inputs x (N, D), floats as the model reads them.

    Images go `batch_size` at a time; their k samples in chunks so that at most
    `max_rows` decoder passes are alive at once (bounded memory for k = 5000). The default
    suits the device: 32768 rows keep a GPU busy, while a CPU runs fastest when a chunk's
    (rows x components) prior matrix stays in cache, about 1024 rows (benchmarks/bench_iw.py).
    The samples are drawn from torch's generator seeded with `seed`.
    """
    check_positive_int(k, "k")
    check_positive_int(batch_size, "batch_size")
    if max_rows is not None:
        check_positive_int(max_rows, "max_rows")
    model.eval()
    x = x.to(_device(model))
    if max_rows is None:
        max_rows = GPU_MAX_ROWS if x.is_cuda else CPU_MAX_ROWS
    chunk = max(1, min(k, max_rows // batch_size))
    torch.manual_seed(seed)
    batches = range(0, x.shape[0], batch_size)
    if progress:
        from tqdm.auto import tqdm

        batches = tqdm(batches, desc=f"IW k={k}", unit="batch")
    with flushed_denormals():  # a mixture prior's far components (vaelib.denormals)
        estimates = [model.iw_bound(x[s : s + batch_size], k, chunk=chunk).double().cpu() for s in batches]
    log_px = torch.cat(estimates)
    n = log_px.numel()
    stderr = log_px.std().item() / math.sqrt(n) if n > 1 else math.nan
    return LogLikelihood(-log_px.mean().item(), stderr, k, n, log_px)


# -- the codes ----------------------------------------------------------------------------------

@torch.no_grad()
def encode_dataset(model: VAE, images: Tensor, batch_size: int = 1000) -> tuple[Tensor, Tensor]:
    """Posterior means and log-variances (N, D) of uint8 images, on the CPU.

    The codes of chapter 1's scatter plots and chapter 2's aggregate posterior: the encoder
    reads the fixed binarisation of `binary_test_set`, `batch_size` images at a time.
    """
    x = binary_test_set(model, images)
    if x.shape[0] == 0:
        empty = torch.empty(0, model.latent_dim)
        return empty, empty.clone()
    parts = [model.encode(x[s : s + batch_size]) for s in range(0, x.shape[0], batch_size)]
    return torch.cat([m for m, _ in parts]).cpu(), torch.cat([v for _, v in parts]).cpu()


def active_units(model: VAE, images: Tensor, threshold: float = 1e-2, batch_size: int = 1000) -> int:
    """Latent dimensions whose posterior mean varies across data: Cov_x(E_q[z_d]) > threshold (Burda et al.)."""
    means, _ = encode_dataset(model, images, batch_size)
    return int((means.var(0) > threshold).sum())


@torch.no_grad()
def component_assignments(model: VAE, images: Tensor, batch_size: int = 1000) -> Tensor:
    """The mixture component each image's posterior fits best, (N,) int64 on the CPU.

    The largest of `prior.responsibilities`, w_j ~ pi_j exp(-KL(q(z|x) || p_j)) (chapter 3's
    "which component does an image use"). Needs a prior that is a full-dimensional mixture
    (`prior.components()` is not None: the Gaussian mixture, the VampPrior, N(0, I) as one component).
    """
    x = binary_test_set(model, images)
    winners = []
    for s in range(0, x.shape[0], batch_size):
        winners.append(model.prior.responsibilities(*model.encode(x[s : s + batch_size])).argmax(-1).cpu())
    return torch.cat(winners) if winners else torch.empty(0, dtype=torch.long)


def component_usage(model: VAE, images: Tensor, batch_size: int = 1000) -> Tensor:
    """Share of images whose posterior fits each mixture component best, (M,) on the CPU.

    See `component_assignments`; components that no image picks are dead weight.
    """
    winners = component_assignments(model, images, batch_size)
    return torch.bincount(winners, minlength=model.prior.n_components).float() / winners.numel()


# -- nearest neighbours among codes --------------------------------------------------------------

@torch.no_grad()
def neighbor_votes(queries: Tensor, codes: Tensor, labels: Tensor, k: int, *, leave_one_out: bool = False,
                    chunk: int = 4096) -> Tensor:
    """How often each label occurs among the k rows of `codes` nearest to each row of `queries`: (Q, C).

    With `leave_one_out`, `queries` are the codes themselves and each row's own entry is skipped.
    Distances are computed `chunk` queries at a time, so memory stays at chunk x N.
    """
    if codes.dim() != 2 or queries.dim() != 2 or labels.shape != codes.shape[:1] or queries.shape[1] != codes.shape[1]:
        raise ValueError(f"expected codes (N, D) and labels (N,), got {tuple(codes.shape)} and {tuple(labels.shape)}"
                         f" (queries {tuple(queries.shape)})")
    available = codes.shape[0] - (1 if leave_one_out else 0)
    check_int(k, "k", 1, available)
    labels = labels.to(codes.device).long()
    n_labels = int(labels.max()) + 1 if labels.numel() else 1
    votes = []
    for start in range(0, queries.shape[0], chunk):
        dist = torch.cdist(queries[start : start + chunk], codes)
        if leave_one_out:
            rows = torch.arange(dist.shape[0], device=dist.device)
            dist[rows, rows + start] = float("inf")
        nearest = dist.topk(k, largest=False).indices
        votes.append(torch.nn.functional.one_hot(labels[nearest], n_labels).sum(1))
    return torch.cat(votes) if votes else torch.zeros(0, n_labels, dtype=torch.long, device=codes.device)


def knn_accuracy(codes: Tensor, labels: Tensor, k: int = 10) -> float:
    """Leave-one-out k-nearest-neighbour accuracy: the share of rows of `codes` (N, D) whose label is
    the most common label among their k nearest other rows (ties go to the smaller label).

    A label-free model's codes score well here when they keep the classes apart (chapters 1 and 3).
    """
    if codes.dim() != 2 or labels.shape != codes.shape[:1]:
        raise ValueError(f"expected codes (N, D) and labels (N,), got {tuple(codes.shape)} and {tuple(labels.shape)}")
    check_int(k, "k", 1, codes.shape[0] - 1)  # at most N - 1 other rows
    votes = neighbor_votes(codes, codes, labels, k, leave_one_out=True)
    return float((votes.argmax(1) == labels.to(votes.device)).float().mean())


def neighbor_purity(queries: Tensor, codes: Tensor, labels: Tensor, k: int = 20) -> Tensor:
    """Share of the most common label among the k codes nearest to each query, (Q,) on the CPU.

    Chapter 2: 1 deep inside a class, towards 1/2 or below where classes meet.
    """
    return (neighbor_votes(queries, codes, labels, k).max(-1).values.float() / k).cpu()


# -- comparing two measurements ---------------------------------------------------------------

def mean_and_stderr(values: Tensor) -> tuple[float, float]:
    """Mean of a sample and its standard error, std / sqrt(n)."""
    values = values.double()
    n = values.numel()
    stderr = values.std().item() / math.sqrt(n) if n > 1 else math.nan
    return values.mean().item(), stderr


def paired_difference(a: Tensor, b: Tensor) -> tuple[float, float]:
    """Mean and standard error of a - b over paired measurements (the same
    images scored twice).

    The image-to-image spread cancels in the difference, so its standard
    error is far smaller than either model's own (chapters 5 and 6 compare
    per-image log p(x) this way).
    """
    if a.shape != b.shape or a.dim() != 1:
        raise ValueError("expected two paired 1-d samples of the same "
                         f"length, got {tuple(a.shape)} and {tuple(b.shape)}")
    return mean_and_stderr(a.double() - b.double())


def independent_difference(a: tuple[float, float], b: tuple[float, float]) -> tuple[float, float]:
    """(mean, stderr) of a - b for two independent estimates given as (value, stderr) pairs."""
    return a[0] - b[0], math.hypot(a[1], b[1])


def two_se_sign(difference: float, stderr: float) -> int:
    """+1 if `difference` exceeds two standard errors, -1 if it is below minus two, else 0."""
    if difference > 2 * stderr:
        return 1
    if difference < -2 * stderr:
        return -1
    return 0


def verdict(difference: float, stderr: float, *, above: str, below: str, within: str) -> str:
    """The book's reading of a noisy difference: `above` if it exceeds two standard errors,
    `below` if it is below minus two, else `within` (chapters 2, 3, 5 and 6)."""
    return {1: above, -1: below, 0: within}[two_se_sign(difference, stderr)]


# -- the score card -----------------------------------------------------------------------------

@dataclass
class Scorecard:
    """What chapter 5 measures for a trained model, in nats per image; chapter 6 and
    `python -m vaelib evaluate` report parts of it.

    The ELBO terms and active units are over all the images given, the importance-weighted
    NLL (`ll`) and the ELBO gap over the first `ll.n_images` of them.
    """

    label: str  # the prior's label
    latent_dim: int
    n_images: int
    neg_elbo: float
    kl: float  # the rate
    distortion: float
    ll: LogLikelihood
    elbo_gap: float  # -ELBO minus NLL on the IW images: what the single-sample bound misses
    active_units: int
    n_components: int
    components_used: int | None  # mixture priors: components that are the best fit of >= 1 image

    @property
    def iw_neg_elbo(self) -> float:
        """-ELBO on the images of the importance-weighted estimate (the first `ll.n_images`), so that
        it sits beside the NLL on the same images (chapter 5's density table)."""
        return self.elbo_gap + self.ll.nll

    def metrics(self) -> dict[str, float | int | None]:
        """The JSON fields of `python -m vaelib evaluate` (and metrics.json)."""
        return {
            "test_neg_elbo": self.neg_elbo,
            "test_kl": self.kl,
            "test_distortion": self.distortion,
            "test_nll": self.ll.nll,
            "test_nll_stderr": self.ll.stderr,
            "iw_samples": self.ll.k,
            "iw_images": self.ll.n_images,
            "test_elbo_gap": self.elbo_gap,
            "active_units": self.active_units,
            "components_used": self.components_used,
        }


def scorecard(model: VAE, images: Tensor, k: int, iw_images: int | None = None, *,
              progress: bool = False) -> Scorecard:
    """Score `model` on uint8 test `images`: ELBO terms, IW NLL with k samples on the first
    `iw_images` (None: all), the ELBO gap there, active units and components used."""
    iw_set = images[:iw_images]
    elbo = dataset_elbo(model, images)
    elbo_iw = dataset_elbo(model, iw_set)
    ll = iw_log_likelihood(model, iw_set, k, progress=progress)
    prior = model.prior
    used = None
    if prior.n_components > 1 and prior.components() is not None:
        used = int((component_usage(model, images) > 0).sum())
    return Scorecard(
        label=prior.label, latent_dim=model.latent_dim, n_images=int(images.shape[0]),
        neg_elbo=elbo["neg_elbo"], kl=elbo["kl"], distortion=elbo["distortion"], ll=ll,
        elbo_gap=elbo_iw["neg_elbo"] - ll.nll, active_units=active_units(model, images),
        n_components=prior.n_components, components_used=used,
    )


# -- intervals: Student's t for a few seeds, the normal for many images ---------------------------

def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the regularised incomplete beta function (modified Lentz)."""
    tiny, c, d = 1e-300, 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 400):
        m2 = 2 * m
        for num in (m * (b - m) * x / ((a + m2 - 1) * (a + m2)),
                    -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1))):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def _incomplete_beta(a: float, b: float, x: float) -> float:
    """I_x(a, b), the regularised incomplete beta function, for 0 <= x <= 1."""
    if x <= 0.0 or x >= 1.0:
        return 0.0 if x <= 0.0 else 1.0
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                 + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, dof: float) -> float:
    """P(T <= t) for Student's t distribution with `dof` degrees of freedom (inf: the normal)."""
    if dof == math.inf:
        return 0.5 * math.erfc(-t / math.sqrt(2.0))
    tail = 0.5 * _incomplete_beta(dof / 2.0, 0.5, dof / (dof + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_quantile(q: float, dof: float) -> float:
    """The q-quantile of Student's t with `dof` degrees of freedom (dof = math.inf: the normal).

    t_quantile(0.975, 2) = 4.303: the factor a 95% interval from three seeds multiplies its
    standard error by (chapter 5), against 1.960 for many images.
    """
    if not 0.0 < q < 1.0:
        raise ValueError(f"q must lie strictly between 0 and 1, got {q!r}")
    if not dof > 0:
        raise ValueError(f"the degrees of freedom must be positive, got {dof!r}")
    if q < 0.5:
        return -t_quantile(1.0 - q, dof)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, dof) < q:
        hi *= 2.0
    for _ in range(200):  # bisection to double precision
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if t_cdf(mid, dof) < q else (lo, mid)
        if hi - lo < 1e-13 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)


@dataclass(frozen=True)
class Interval:
    """An estimate, its standard error and a two-sided interval at `level`.

    `dof` is the degrees of freedom of the standard error: math.inf (the normal) for a mean
    over thousands of images, n - 1 for a mean over n seeds.
    """

    estimate: float
    stderr: float
    dof: float = math.inf
    level: float = 0.95

    @property
    def half_width(self) -> float:
        return t_quantile(0.5 + self.level / 2, self.dof) * self.stderr

    @property
    def lo(self) -> float:
        return self.estimate - self.half_width

    @property
    def hi(self) -> float:
        return self.estimate + self.half_width

    @property
    def sign(self) -> int:
        """+1 if the whole interval is above zero, -1 if below, 0 if it contains zero."""
        return 1 if self.lo > 0 else -1 if self.hi < 0 else 0

    def contains(self, value: float) -> bool:
        return self.lo <= value <= self.hi


@dataclass(frozen=True)
class SeedSummary:
    """A paired difference measured on the same images for several training seeds.

    `seed_se` is the standard error of the mean over seeds (training noise), `image_se` that of
    the seed-averaged per-image differences (which images happened to be drawn), `combined_se`
    both together; `interval` is the t-interval with n_seeds - 1 degrees of freedom on it.
    """

    per_seed: tuple[float, ...]
    mean: float
    seed_sd: float
    seed_se: float
    image_se: float
    combined_se: float
    interval: Interval


def seed_summary(differences: Sequence[Tensor], level: float = 0.95) -> SeedSummary:
    """Combine per-image paired differences (one (N,) tensor per seed, same images) over seeds.

    The seeds share their test images, so the image-to-image noise does not shrink with more
    seeds: it enters once, as the standard error of the seed-averaged differences, beside the
    spread of the seeds' means. A t-interval with n - 1 degrees of freedom covers both.
    """
    if len(differences) < 2:
        raise ValueError(f"a spread over seeds needs at least two seeds, got {len(differences)}")
    stacked = torch.stack([torch.as_tensor(d).double().reshape(-1) for d in differences])
    per_seed = stacked.mean(1)
    n = per_seed.numel()
    mean, seed_sd = per_seed.mean().item(), per_seed.std().item()
    seed_se = seed_sd / math.sqrt(n)
    _, image_se = mean_and_stderr(stacked.mean(0))
    combined = math.hypot(seed_se, image_se)
    return SeedSummary(tuple(per_seed.tolist()), mean, seed_sd, seed_se, image_se, combined,
                       Interval(mean, combined, n - 1, level))
