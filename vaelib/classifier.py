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


def hybrid_share(classifier: DigitClassifier, images: Tensor, threshold: float = 0.9) -> float:
    """Share of `images` the classifier cannot assign confidently (top class probability < threshold)."""
    if not isinstance(classifier, DigitClassifier):
        raise TypeError(f"expected a DigitClassifier (see get_classifier), got {type(classifier).__name__}")
    _check_threshold(threshold)
    probs = classifier.predict_proba(images)
    if probs.shape[0] == 0:
        raise ValueError("no images given: the hybrid share of an empty batch is undefined")
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
