"""A small digit classifier that scores generated images: is this a clear digit or a hybrid?

A VAE sample that falls between the modes of the data decodes to something that is
neither one digit nor another. We count such "hybrids" with an independent judge: an
MLP trained on the MNIST training images, asked how sure it is. An image whose most
probable class gets less than a threshold (0.9 by default) is a hybrid.

The classifier sees each training image either as grey levels or as a fresh Bernoulli
draw (half the batches each), so it reads both the pixel probabilities a decoder outputs
and binary digits. `get_classifier` trains it once per profile and caches it next to the
trained VAEs; the cached file carries the training settings and is refused if they differ.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .checks import check_positive_int, check_positive_number, check_probability
from .data import binarize_dynamic, check_images, load_dataset, to_unit_float
from .experiments import Profile, resolve_profile
from .settings import cache_root, resolve_device

# Bump when a change alters what training produces, so stale cached classifiers are retrained.
CLASSIFIER_VERSION = 1
N_PIXELS = 784
N_CLASSES = 10


@dataclass(frozen=True)
class ClassifierConfig:
    """How the classifier is trained: a one-hidden-layer MLP, Adam, a few epochs."""

    epochs: int = 6
    train_subset: int | None = None  # None: the whole training split (50,000 images)
    hidden_dim: int = 400
    batch_size: int = 128
    lr: float = 1e-3
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("epochs", "hidden_dim", "batch_size", "train_subset"):
            if getattr(self, name) is not None:
                check_positive_int(getattr(self, name), f"ClassifierConfig.{name}")
        check_positive_number(self.lr, "ClassifierConfig.lr")

    @classmethod
    def for_profile(cls, profile: Profile) -> "ClassifierConfig":
        """The profile's training subset; a short run when that subset is small (smoke)."""
        if profile.train_subset is not None:
            return cls(epochs=4, train_subset=profile.train_subset)
        return cls()


class DigitClassifier(nn.Module):
    """784 pixels in [0, 1] -> logits of the ten digit classes (one ReLU hidden layer).

    Calling the module returns logits; `predict_proba` adds input checks and the softmax.
    `test_accuracy` is the share of the MNIST test images it labels correctly (NaN until measured).
    """

    def __init__(self, hidden_dim: int = 400) -> None:
        super().__init__()
        self.hidden = nn.Linear(N_PIXELS, hidden_dim)
        self.out = nn.Linear(hidden_dim, N_CLASSES)
        self.test_accuracy: float = float("nan")

    def forward(self, x: Tensor) -> Tensor:
        return self.out(F.relu(self.hidden(x)))

    @property
    def device(self) -> torch.device:
        return self.hidden.weight.device

    @torch.no_grad()
    def predict_proba(self, images: Tensor, batch_size: int = 4096) -> Tensor:
        """Class probabilities (N, 10) for images (N, 784) or (N, 28, 28).

        Floats must be pixel probabilities or binary pixels in [0, 1]; uint8 images
        (0-255) are scaled to [0, 1]. The result is on the images' device.
        """
        x = _as_pixels(images)
        was_training = self.training
        self.eval()
        probs = [torch.softmax(self(x[i : i + batch_size].to(self.device)), dim=-1) for i in range(0, len(x), batch_size)]
        self.train(was_training)
        if not probs:
            return torch.empty(0, N_CLASSES, device=x.device)
        return torch.cat(probs).to(x.device)

    @torch.no_grad()
    def predict(self, images: Tensor) -> Tensor:
        """The most probable digit of each image, (N,) int64."""
        return self.predict_proba(images).argmax(dim=-1)


def _as_pixels(images: Tensor) -> Tensor:
    """Check (`vaelib.data.check_images`) and flatten images to (N, 784) floats in [0, 1]."""
    return to_unit_float(images).reshape(-1, N_PIXELS)


def _check_probs(probs: Tensor) -> Tensor:
    if not isinstance(probs, Tensor):
        raise TypeError(f"expected a torch.Tensor of class probabilities, got {type(probs).__name__}")
    if probs.dim() != 2 or probs.shape[1] != N_CLASSES or probs.shape[0] == 0:
        raise ValueError(f"expected class probabilities of shape (N, {N_CLASSES}) with N >= 1, got {tuple(probs.shape)}")
    return probs


def _check_threshold(threshold: float) -> float:
    return float(check_probability(threshold, "threshold"))


def confident_share(probs: Tensor, threshold: float = 0.9) -> float:
    """Share of rows of `probs` (N, 10) whose most probable class reaches `threshold`."""
    probs, threshold = _check_probs(probs), _check_threshold(threshold)
    return float((probs.max(dim=-1).values >= threshold).float().mean())


def hybrid_share(classifier: DigitClassifier, images: Tensor,
                 threshold: float = 0.9) -> float:
    """Share of `images` the classifier cannot assign confidently
    (top class probability < threshold)."""
    if not isinstance(classifier, DigitClassifier):
        got = type(classifier).__name__
        raise TypeError(f"expected a DigitClassifier (see get_classifier), got {got}")
    _check_threshold(threshold)
    probs = classifier.predict_proba(images)
    if probs.shape[0] == 0:
        raise ValueError("no images given: the hybrid share of an empty batch is "
                         "undefined")
    return 1.0 - confident_share(probs, threshold)


def hybrid_share_with_error(classifier: DigitClassifier, images: Tensor, threshold: float = 0.9) -> tuple[float, float]:
    """`hybrid_share` and its binomial standard error sqrt(s (1 - s) / N).

    How chapters 2 and 3 count hybrids among real digits, reconstructions and prior samples.
    """
    share = hybrid_share(classifier, images, threshold)
    return share, math.sqrt(share * (1 - share) / images.shape[0])


# -- training and the cache ---------------------------------------------------------------------

def train_classifier(
    train_images: Tensor, train_labels: Tensor, config: ClassifierConfig = ClassifierConfig(),
    device: torch.device | str = "cpu",
) -> DigitClassifier:
    """Fit a DigitClassifier on uint8 images (N, 28, 28) and int labels; each batch grey or binarised."""
    check_images(train_images, require_uint8=True)
    if not isinstance(train_labels, Tensor) or train_labels.shape != train_images.shape[:1]:
        raise ValueError("train_labels must be a tensor with one label per training image")
    device = torch.device(device)
    gen = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)
    x_all = train_images.reshape(len(train_images), N_PIXELS).to(device)
    y_all = train_labels.long().to(device)
    model = DigitClassifier(config.hidden_dim).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    model.train()
    for _ in range(config.epochs):
        order = torch.randperm(len(x_all), generator=gen).to(device)
        for start in range(0, len(order), config.batch_size):
            idx = order[start : start + config.batch_size]
            if torch.rand((), generator=gen) < 0.5:  # half the batches binary (noise from the CPU generator), half grey
                x = binarize_dynamic(x_all[idx], gen)
            else:
                x = to_unit_float(x_all[idx])
            loss = F.cross_entropy(model(x), y_all[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return model.eval()


@torch.no_grad()
def accuracy(classifier: DigitClassifier, images: Tensor, labels: Tensor) -> float:
    """Share of images (uint8 or floats in [0, 1]) whose most probable class is the label."""
    return float((classifier.predict(images).cpu() == labels.cpu()).float().mean())


def classifier_path(profile: Profile) -> Path:
    """`<cache_root>/<profile>/digit-classifier/checkpoint.pt`."""
    return cache_root() / profile.name / "digit-classifier" / "checkpoint.pt"


def get_classifier(profile: str | Profile | None = None, device: str | torch.device | None = None) -> DigitClassifier:
    """The profile's digit classifier: loaded from the cache, or trained (seconds to a minute on a CPU) and cached."""
    profile = profile if isinstance(profile, Profile) else resolve_profile(profile)
    device = resolve_device(device)
    config = ClassifierConfig.for_profile(profile)
    identity = {"kind": "digit-classifier", "version": CLASSIFIER_VERSION, "config": asdict(config)}
    path = classifier_path(profile)
    if path.exists():
        try:
            state = load_checkpoint(path, expect={"identity": identity})
            model = DigitClassifier(config.hidden_dim)
            model.load_state_dict(state["model"])
            model.test_accuracy = float(state["test_accuracy"])
            return model.to(device).eval()
        except CheckpointError as exc:
            warnings.warn(f"retraining the digit classifier: {exc}", stacklevel=2)
            path.unlink()
    data = load_dataset("mnist", split="classic")
    began = time.perf_counter()
    model = train_classifier(
        data.train.images[: config.train_subset], data.train.labels[: config.train_subset], config, device
    )
    model.test_accuracy = accuracy(model, data.test.images, data.test.labels)
    save_checkpoint(path, {
        "identity": identity, "model": model.state_dict(), "test_accuracy": model.test_accuracy,
        "train_seconds": time.perf_counter() - began,
    })
    return model


# -- how hybrids are counted, and what else the chapters read from the classifier's answers --------

SWEEP_THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)  # chapters 2 and 3 sweep the threshold over these


def hybrid_sweep(probs: Tensor,
                 thresholds: Sequence[float] = SWEEP_THRESHOLDS) -> Tensor:
    """The share of hybrids (top class probability below t) at each threshold t:
    shape (len(thresholds),).

    `probs` are class probabilities (N, 10) from `DigitClassifier.predict_proba`,
    computed once.
    """
    top = _check_probs(probs).max(dim=-1).values.float()
    limits = torch.tensor([_check_threshold(t) for t in thresholds], dtype=top.dtype, device=top.device)
    if limits.numel() == 0:
        raise ValueError("give at least one threshold to sweep")
    return (top[None, :] < limits[:, None]).float().mean(dim=1).cpu()


def class_histogram(probs: Tensor) -> Tensor:
    """The share of images whose most probable class is each digit: shape (10,), summing to 1."""
    digits = _check_probs(probs).argmax(dim=-1).cpu()
    return torch.bincount(digits, minlength=N_CLASSES).double() / len(digits)


def largest_class_deviation(shares: Tensor, frequencies: Tensor) -> tuple[int, float]:
    """The digit whose share among samples differs most from its frequency in the data,
    and that difference (samples minus data; a share, negative when the digit is under-drawn)."""
    shares, frequencies = torch.as_tensor(shares).double(), torch.as_tensor(frequencies).double()
    if shares.shape != (N_CLASSES,) or frequencies.shape != (N_CLASSES,):
        raise ValueError(f"expected two vectors of {N_CLASSES} shares, got {tuple(shares.shape)} and "
                         f"{tuple(frequencies.shape)}")
    difference = shares - frequencies
    digit = int(difference.abs().argmax())
    return digit, float(difference[digit])


# -- walks through latent space: the islands test of chapter 3 ---------------------------------------

def straight_walks(start: Tensor, end: Tensor, steps: int) -> Tensor:
    """Points evenly spaced on the segments start -> end, both ends included: (P, steps, D) for (P, D) ends."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 2:
        raise ValueError(f"a walk needs at least 2 points, got steps={steps!r}")
    if start.shape != end.shape or start.dim() != 2:
        raise ValueError(f"start and end must both be (P, D), got {tuple(start.shape)} and {tuple(end.shape)}")
    t = torch.linspace(0, 1, steps, dtype=start.dtype, device=start.device)[None, :, None]
    return start[:, None, :] * (1 - t) + end[:, None, :] * t


def below_chord(log_p: Tensor) -> Tensor:
    """log p(z_t) minus the chord (1 - t) log p(z_0) + t log p(z_1), for walks of shape (P, T):
    0 at both ends, negative where the density sinks below the straight line between its end values."""
    if log_p.dim() != 2 or log_p.shape[1] < 2:
        raise ValueError(f"expected log-densities of shape (walks, points >= 2), got {tuple(log_p.shape)}")
    t = torch.linspace(0, 1, log_p.shape[1], dtype=log_p.dtype, device=log_p.device)
    return log_p - ((1 - t) * log_p[:, :1] + t * log_p[:, -1:])


def walk_dips(log_p: Tensor) -> Tensor:
    """How far each walk's log-density falls below its chord at its lowest point
    (nats, >= 0): shape (P,)."""
    return (-below_chord(log_p).min(dim=1).values).clamp_min(0.0)


@torch.no_grad()
def judge_walks(model: nn.Module, classifier: DigitClassifier, start: Tensor, end: Tensor, steps: int,
                threshold: float = 0.9) -> dict[str, Tensor]:
    """Decode straight walks in a VAE's latent space and record, at every point, the prior's
    log-density, whether the image is a hybrid and the digit the classifier reads.

    Returns CPU tensors: `log_p` (P, T), `dip` (P,), `hybrid` (P, T) bool, `digit` (P, T),
    `images` (P, T, pixels) and `length` (P,), the Euclidean length of each walk.
    """
    threshold = _check_threshold(threshold)
    device = next(model.parameters()).device
    path = straight_walks(start.float(), end.float(), steps).to(device)
    log_p = model.prior.log_prob(path).cpu()
    images = model.decode(path.reshape(-1, path.shape[-1])).cpu()
    top, digit = classifier.predict_proba(images).max(dim=-1)
    walks = len(path)
    return {"log_p": log_p, "dip": walk_dips(log_p), "hybrid": (top < threshold).reshape(walks, steps),
            "digit": digit.reshape(walks, steps), "images": images.reshape(walks, steps, -1),
            "length": (end.float() - start.float()).norm(dim=-1).cpu()}


def interior_hybrid_share(hybrid: Tensor) -> Tensor:
    """For walks (P, T) of hybrid flags, the share of interior points (ends excluded) that are hybrids: (P,)."""
    if hybrid.dim() != 2 or hybrid.shape[1] < 3:
        raise ValueError(f"expected hybrid flags of shape (walks, points >= 3), got {tuple(hybrid.shape)}")
    return hybrid[:, 1:-1].float().mean(dim=1)


def confident_pairs(digits: Tensor, sure: Tensor, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """n random pairs (i, j) of indices whose items are `sure` and read as two different digits.

    Raises ValueError when fewer than two different digits are read among the sure items.
    """
    candidates = torch.nonzero(torch.as_tensor(sure).cpu()).squeeze(1)
    digits = torch.as_tensor(digits).cpu()
    if len(torch.unique(digits[candidates])) < 2:
        raise ValueError("the classifier reads fewer than two different digits confidently: no pairs to walk")
    i, j = (candidates[torch.randint(len(candidates), (50 * n,), generator=generator)] for _ in range(2))
    keep = digits[i] != digits[j]
    return i[keep][:n], j[keep][:n]


def walk_pairs(digits: Tensor, sure: Tensor, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor, str]:
    """Pairs of endpoints for walks, with a note saying how they were chosen.

    Preferably two items read confidently (`sure`) as different digits; after short training,
    when too few are sure, any two items read as different digits; when every item reads as
    the same digit, two different items.
    """
    digits, sure = torch.as_tensor(digits).cpu(), torch.as_tensor(sure).cpu().bool()
    try:
        i, j = confident_pairs(digits, sure, n, generator)
        return i, j, f"drawn among the {int(sure.sum())} read confidently, always two different digits"
    except ValueError:
        pass
    try:
        i, j = confident_pairs(digits, torch.ones_like(sure), n, generator)
        return i, j, "too few are read confidently, so any two read as different digits"
    except ValueError:
        i, j = confident_pairs(torch.arange(len(digits)), torch.ones_like(sure), n, generator)
        return i, j, "all read as the same digit, so any two different ones"


HYBRID_SAMPLES = 5000  # prior samples a page scores per model for its hybrid share
HYBRID_SEED = 2  # one draw on every page: a model's hybrid share is the same number wherever it appears


@torch.no_grad()
def score_prior_samples(model: nn.Module, classifier: DigitClassifier, n: int = HYBRID_SAMPLES,
                        seed: int = HYBRID_SEED) -> tuple[Tensor, Tensor]:
    """`n` images decoded from the model's prior and the classifier's class probabilities for
    them (both on the CPU), drawn from a fixed seed so that the introduction, chapter 2 and
    chapter 3 score the same samples of a model."""
    torch.manual_seed(seed)
    images = model.sample(n)
    return images.cpu(), classifier.predict_proba(images).cpu()


def share_with_error(probs: Tensor, threshold: float = 0.9) -> tuple[float, float]:
    """The hybrid share of class probabilities (N, 10) already computed, at one threshold, and its
    binomial standard error: what the tables of chapters 2 and 3 print for each kind of image."""
    share = float(hybrid_sweep(probs, [threshold])[0])
    return share, math.sqrt(share * (1 - share) / probs.shape[0])
