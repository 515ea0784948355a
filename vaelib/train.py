"""`fit`: the training loop, kept on the device from start to end.

The whole training set is moved to the device once as uint8; a batch is an index
slice, binarised there with a fresh Bernoulli draw. All randomness of epoch e
comes from generators seeded by (seed, e), and a checkpoint is written after every
epoch, so an interrupted run resumed from its checkpoint ends with the same
weights as one that never stopped.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .checkpoint import load_checkpoint, save_checkpoint
from .data import binarize_static
from .model import VAE

BINARIZATIONS = ("dynamic", "static", "grey")
OBJECTIVES = ("elbo", "iwae")


MAX_SEED = 2**63  # seeds are non-negative and fit in a signed 64-bit integer (torch's limit)


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive whole number, got {value!r}")


def check_seed(seed: Any, name: str = "seed") -> int:
    """Refuse seeds torch cannot take (negative, >= 2**63, not a whole number) before any work."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < MAX_SEED:
        raise ValueError(f"{name} must be a whole number in [0, 2**63), got {seed!r}")
    return seed


class TrainingDiverged(RuntimeError):
    """The loss or the weights stopped being finite numbers."""


@dataclass(frozen=True)
class TrainConfig:
    """How to train; the defaults are the original protocol except for the epoch count.

    `lr_decay_every` (epochs) defaults to a quarter of `epochs`: the original
    multiplied the learning rate by 0.1 every 100 of its 400 epochs.
    """

    epochs: int = 20
    batch_size: int = 200
    lr: float = 1e-3
    lr_decay: float = 0.1
    lr_decay_every: int | None = None
    binarization: str = "dynamic"
    objective: str = "elbo"
    iw_samples: int = 1
    seed: int = 0
    eval_batch_size: int = 1000

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "iw_samples", "eval_batch_size"):
            _check_positive_int(f"TrainConfig.{name}", getattr(self, name))
        if self.lr_decay_every is not None:
            _check_positive_int("TrainConfig.lr_decay_every", self.lr_decay_every)
        check_seed(self.seed, "TrainConfig.seed")
        if self.binarization not in BINARIZATIONS:
            raise ValueError(f"unknown binarization {self.binarization!r}; choose one of {BINARIZATIONS}")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"unknown objective {self.objective!r}; choose one of {OBJECTIVES}")
        if not (_is_real(self.lr) and 0 < self.lr < math.inf):
            raise ValueError(f"TrainConfig.lr must be a finite positive number, got {self.lr!r}")
        if not (_is_real(self.lr_decay) and 0 < self.lr_decay <= 1):
            raise ValueError(f"TrainConfig.lr_decay must be in (0, 1] (a factor that lowers the rate), got {self.lr_decay!r}")

    def recipe(self) -> dict[str, Any]:
        """The fields that change the trained weights and differ from their defaults.

        This is what a checkpoint records as its training identity. Fields at their
        default are left out, so adding a new option whose default keeps the old
        behaviour leaves every existing run valid; `eval_batch_size` only changes how
        the test curve is computed, so it is never part of it.
        """
        defaults = TrainConfig()
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name != "eval_batch_size" and getattr(self, f.name) != getattr(defaults, f.name)
        }

    @property
    def decay_every(self) -> int:
        return self.lr_decay_every or max(1, self.epochs // 4)

    def lr_at(self, epoch: int) -> float:
        """Step schedule: lr * lr_decay ** (epoch // decay_every), epochs counted from 0."""
        return self.lr * self.lr_decay ** (epoch // self.decay_every)


@dataclass
class History:
    """Per-epoch record of a run (test terms are NaN when no test set was given)."""

    epoch: list[int] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    test_neg_elbo: list[float] = field(default_factory=list)
    test_kl: list[float] = field(default_factory=list)
    test_reconstruction: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, list]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, list]) -> "History":
        return cls(**{k: list(v) for k, v in data.items()})


def prepare_images(images: Tensor, device: torch.device | str) -> Tensor:
    """Check uint8 images (N, 28, 28) or (N, D) and move them, flattened, to the device once."""
    if not isinstance(images, Tensor) or images.dtype != torch.uint8:
        got = images.dtype if isinstance(images, Tensor) else type(images).__name__
        raise TypeError(f"fit expects uint8 image tensors as loaded by vaelib.data, got {got}")
    if images.dim() < 2 or images.shape[0] == 0:
        raise ValueError(f"expected a non-empty batch of images (N, H, W) or (N, D), got shape {tuple(images.shape)}")
    return images.reshape(images.shape[0], -1).to(device)


def binarize(batch: Tensor, mode: str, generator: torch.Generator | None) -> Tensor:
    """uint8 pixels -> model input: a Bernoulli draw (dynamic), a fixed draw, or grey levels."""
    probs = batch.float().div_(255.0)
    if mode == "grey":
        return probs
    return (torch.rand(probs.shape, generator=generator, device=probs.device) < probs).float()


def static_binarization(images: Tensor, seed: int = 0) -> Tensor:
    """A fixed Bernoulli draw of uint8 images, identical on every call, device and machine
    (drawn on the CPU by `vaelib.data.binarize_static`, then moved to the images' device)."""
    return binarize_static(images, seed)


@torch.no_grad()
def evaluate_elbo(model: VAE, x: Tensor, batch_size: int = 1000) -> dict[str, float]:
    """Mean negative ELBO, KL and reconstruction term over float inputs x (nats per image)."""
    was_training = model.training
    model.eval()
    sums = torch.zeros(3, dtype=torch.float64, device=x.device)
    for start in range(0, x.shape[0], batch_size):
        terms = model.elbo(x[start : start + batch_size])
        sums += torch.stack([-terms.elbo.sum(), terms.kl.sum(), terms.reconstruction.sum()]).double()
    model.train(was_training)
    neg_elbo, kl, rec = (sums / x.shape[0]).tolist()
    return {"neg_elbo": neg_elbo, "kl": kl, "reconstruction": rec}


def _epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch) % (2**63 - 1)


def _batch_loss(model: VAE, x: Tensor, config: TrainConfig) -> Tensor:
    if config.objective == "iwae":
        log_w = model.log_weights(x, config.iw_samples)
        return -(torch.logsumexp(log_w, dim=0) - math.log(config.iw_samples)).mean()
    return model.loss(x)


def fit(
    model: VAE,
    train_images: Tensor,
    config: TrainConfig = TrainConfig(),
    *,
    test_images: Tensor | None = None,
    checkpoint: str | Path | None = None,
    meta: dict[str, Any] | None = None,
    device: torch.device | str | None = None,
    progress: bool = True,
) -> History:
    """Train `model` on uint8 `train_images`; returns the per-epoch `History`.

    With `checkpoint`, the state is saved there after every epoch, and a matching
    unfinished checkpoint (same `meta` and `config`) is resumed instead of starting over.
    """
    device = torch.device(device or next(model.parameters()).device)
    model.to(device).train()
    data = prepare_images(train_images, device)
    if data.shape[1] != model.input_dim:
        raise ValueError(f"images have {data.shape[1]} pixels but the model expects {model.input_dim}")
    test_x = static_binarization(prepare_images(test_images, device)) if test_images is not None else None
    if config.binarization == "grey" and test_x is not None:
        test_x = prepare_images(test_images, device).float() / 255.0

    fused = device.type == "cuda"
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, fused=fused)
    history, start_epoch = History(), 0
    identity = {"meta": meta or {}, "train_config": config.recipe()}
    if checkpoint is not None and Path(checkpoint).exists():
        state = load_checkpoint(checkpoint, expect=identity)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        history, start_epoch = History.from_dict(state["history"]), state["epoch"]

    n, bs = data.shape[0], config.batch_size
    static_x = static_binarization(data, config.seed) if config.binarization == "static" else None
    bar = _progress_bar(range(start_epoch, config.epochs), progress, initial=start_epoch, total=config.epochs)
    for epoch in bar:
        began = time.perf_counter()
        for group in optimizer.param_groups:
            group["lr"] = config.lr_at(epoch)
        torch.manual_seed(_epoch_seed(config.seed, epoch))  # reparameterisation noise
        gen = torch.Generator(device=device).manual_seed(_epoch_seed(config.seed, epoch) + 1)
        order = torch.randperm(n, generator=gen, device=device)
        total = torch.zeros((), device=device)
        for start in range(0, n, bs):
            idx = order[start : start + bs]
            x = static_x[idx] if static_x is not None else binarize(data[idx], config.binarization, gen)
            loss = _batch_loss(model, x, config)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach() * idx.shape[0]
        train_loss = (total / n).item()
        if not math.isfinite(train_loss) or not all(torch.isfinite(p).all() for p in model.parameters()):
            where = f"; the last good state (epoch {epoch}) is in {checkpoint}" if checkpoint and epoch else ""
            raise TrainingDiverged(
                f"training diverged in epoch {epoch + 1}: the loss became {train_loss}{where}. "
                "Try a lower learning rate or check the input data for NaN."
            )
        test = evaluate_elbo(model, test_x, config.eval_batch_size) if test_x is not None else {}
        history.epoch.append(epoch + 1)
        history.lr.append(config.lr_at(epoch))
        history.train_loss.append(train_loss)
        history.test_neg_elbo.append(test.get("neg_elbo", math.nan))
        history.test_kl.append(test.get("kl", math.nan))
        history.test_reconstruction.append(test.get("reconstruction", math.nan))
        history.seconds.append(time.perf_counter() - began)
        if hasattr(bar, "set_postfix"):
            bar.set_postfix(loss=f"{train_loss:.2f}", test=f"{test.get('neg_elbo', math.nan):.2f}")
        if checkpoint is not None:
            save_checkpoint(
                checkpoint,
                {
                    **identity,
                    "epoch": epoch + 1,
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "history": history.to_dict(),
                },
            )
    model.eval()
    return history


def _progress_bar(iterable: range, enabled: bool, **kwargs: Any):
    """tqdm.auto renders as a widget in notebooks and as text in a terminal."""
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc="epochs", unit="epoch", **kwargs)


# -- fit checks its inputs once ----------------------------------------------------------------
import contextlib  # noqa: E402
import functools  # noqa: E402
from typing import Callable  # noqa: E402


def _checks_images_once(train: Callable[..., History]) -> Callable[..., History]:
    """Run `fit` with the model's per-call pixel check off: `fit` checks its uint8 images once,
    up front, and every batch it derives from them is valid by construction, so scanning (and,
    on a GPU, synchronising on) each batch again would only slow the training loop down."""

    @functools.wraps(train)
    def wrapper(model: VAE, *args: Any, **kwargs: Any) -> History:
        with model.trusted_inputs() if isinstance(model, VAE) else contextlib.nullcontext():
            return train(model, *args, **kwargs)

    return wrapper


fit = _checks_images_once(fit)
