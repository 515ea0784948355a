"""`fit`: the training loop, kept on the device from start to end.

The whole training set is moved to the device once as uint8; a batch is an index
slice, binarised there with a fresh Bernoulli draw. All randomness of epoch e
comes from generators seeded by (seed, e), and a checkpoint is written after every
epoch, so an interrupted run resumed from its checkpoint ends with the same
weights as one that never stopped.

Options for Tomczak & Welling's protocol (all off by default, so the original
protocol trains exactly as before): a linear KL warm-up, early stopping on the
validation ELBO that keeps the best weights (its state is checkpointed too, so a
resumed run stops where an uninterrupted one would), their Adam with per-tensor
normalised gradients, and the single-sample KL estimate of their loss.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

import torch
from torch import Tensor

from .checkpoint import CheckpointError, load_checkpoint, load_model_state, save_checkpoint
from .checks import check_int, check_one_of, check_positive_int, check_positive_number, check_probability, check_seed
from .data import binarize_dynamic, binarize_static, check_images, to_unit_float
from .denormals import flushed_denormals
from .evaluate import evaluate_elbo
from .model import KL_ESTIMATES, VAE

LossFn = Callable[..., Tensor]  # batch_loss or its compiled twin: (model, x, config, beta) -> loss

BINARIZATIONS = ("dynamic", "static", "grey")
OBJECTIVES = ("elbo", "iwae")
OPTIMIZERS = ("adam", "adam-normgrad")
VALID_BINARIZATION_SEED = 1  # the fixed draw of the validation images (the test images use seed 0)


class TrainingDiverged(RuntimeError):
    """The loss or the weights stopped being finite numbers."""


@dataclass(frozen=True)
class TrainConfig:
    """How to train; the defaults are the original protocol except for the epoch count.

    `lr_decay_every` (epochs) defaults to a quarter of `epochs`: the original
    multiplied the learning rate by 0.1 every 100 of its 400 epochs.

    Tomczak & Welling's protocol (jmtomczak/vae_vampprior) adds:
    `kl_warmup_epochs` W: the KL term is weighted by beta = min(1, epoch / W) in epoch
    1, 2, ... (their `utils/training.py`); 0 means beta = 1 throughout.
    `early_stopping_patience` P: after every epoch the validation ELBO is computed; training
    stops once it has not improved for more than P epochs in a row (the count is held at 0
    before epoch W), and the model ends with the weights of its best epoch (their
    `utils/perform_experiment.py`). Needs validation images in `fit`.
    `optimizer="adam-normgrad"`: Adam on gradients divided by their L2 norm, tensor by
    tensor (their `utils/optimizer.py: AdamNormGrad`).
    `kl_estimate="sample"`: KL estimated at the reconstruction's z, log q(z|x) - log p(z)
    (their `calculate_loss`), in training and in the validation ELBO.
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
    kl_warmup_epochs: int = 0
    early_stopping_patience: int | None = None
    optimizer: str = "adam"
    kl_estimate: str = "analytic"

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "iw_samples", "eval_batch_size", "lr_decay_every", "early_stopping_patience"):
            if getattr(self, name) is not None:
                check_positive_int(getattr(self, name), f"TrainConfig.{name}")
        check_int(self.kl_warmup_epochs, "TrainConfig.kl_warmup_epochs", 0)
        check_seed(self.seed, "TrainConfig.seed")
        for name, choices in (("optimizer", OPTIMIZERS), ("kl_estimate", KL_ESTIMATES),
                              ("binarization", BINARIZATIONS), ("objective", OBJECTIVES)):
            check_one_of(getattr(self, name), name, choices)
        if self.objective == "iwae" and (self.kl_warmup_epochs or self.kl_estimate != "analytic"):
            raise ValueError("kl_warmup_epochs and kl_estimate apply to the ELBO objective, not to objective='iwae'")
        check_positive_number(self.lr, "TrainConfig.lr")
        check_probability(self.lr_decay, "TrainConfig.lr_decay")  # a factor that lowers the rate

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

    def beta_at(self, epoch: int) -> float:
        """KL weight in epoch `epoch` (counted from 0): min(1, (epoch + 1) / kl_warmup_epochs), or 1."""
        if self.kl_warmup_epochs == 0:
            return 1.0
        return min(1.0, (epoch + 1) / self.kl_warmup_epochs)

    @property
    def uses_validation(self) -> bool:
        return self.early_stopping_patience is not None


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
    valid_neg_elbo: list[float] = field(default_factory=list)  # NaN without validation images
    beta: list[float] = field(default_factory=list)  # the KL weight of each epoch (1 without warm-up)

    def to_dict(self) -> dict[str, list]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, list]) -> History:
        """Rebuild a history; columns added after it was written are filled (NaN, or beta 1)."""
        out = cls(**{k: list(v) for k, v in data.items()})
        n = len(out.epoch)
        for name, fill in (("valid_neg_elbo", math.nan), ("beta", 1.0)):
            if name not in data:
                setattr(out, name, [fill] * n)
        return out

    def best_epoch(self) -> int | None:
        """The epoch (counted from 1) with the lowest validation -ELBO, the first of ties; None without one."""
        valid = [(v, e) for v, e in zip(self.valid_neg_elbo, self.epoch) if not math.isnan(v)]
        return min(valid, key=lambda t: t[0])[1] if valid else None

    def stopping_point(self) -> StoppingPoint:
        """The best and the last epoch of a run trained with early stopping on the validation ELBO."""
        valid = self.valid_neg_elbo
        if not valid or any(math.isnan(v) for v in valid):
            raise ValueError("this history has no validation ELBO: the run was not trained with early stopping")
        best = min(range(len(valid)), key=valid.__getitem__)
        return StoppingPoint(self.epoch[best], self.epoch[-1], valid[best])


@dataclass(frozen=True)
class StoppingPoint:
    """Where an early-stopped run ended: the epoch whose weights it kept and the last one trained."""

    best: int  # the epoch with the lowest validation -ELBO (the first such, as the strict rule picks)
    last: int
    best_valid_neg_elbo: float


def prepare_images(images: Tensor, device: torch.device | str) -> Tensor:
    """Check uint8 images (N, 28, 28) or (N, D) and move them, flattened, to the device once."""
    check_images(images, n_pixels=None, require_uint8=True)
    if images.shape[0] == 0:
        raise ValueError(f"expected a non-empty batch of images (N, H, W) or (N, D), got shape {tuple(images.shape)}")
    return images.reshape(images.shape[0], -1).to(device)


def model_inputs(pixels: Tensor, binarization: str, generator: torch.Generator | None = None, seed: int = 0) -> Tensor:
    """uint8 pixels -> what the model sees under `binarization` (see `vaelib.data`): a fresh
    Bernoulli draw from `generator` (dynamic), the fixed draw of `seed` (static) or grey levels."""
    if binarization == "dynamic":
        return binarize_dynamic(pixels, generator, n_pixels=None)
    if binarization == "static":
        return binarize_static(pixels, seed, n_pixels=None)
    return to_unit_float(pixels, n_pixels=None)


def _epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch) % (2**63 - 1)


def batch_loss(model: VAE, x: Tensor, config: TrainConfig, beta: Tensor | float = 1.0) -> Tensor:
    """The mean loss of one batch: -ELBO with the KL weighted by `beta`, or the IWAE bound's negative."""
    if config.objective == "iwae":
        log_w = model.log_weights(x, config.iw_samples)
        return -(torch.logsumexp(log_w, dim=0) - math.log(config.iw_samples)).mean()
    if config.kl_warmup_epochs == 0 and config.kl_estimate == "analytic":
        return model.loss(x)
    terms = model.elbo(x, config.kl_estimate)
    return -(terms.reconstruction - beta * terms.kl).mean()


def normalise_gradients(params: list[Tensor]) -> None:
    """Divide each gradient by its L2 norm + 1e-7, tensor by tensor (their AdamNormGrad)."""
    grads = [p.grad for p in params if p.grad is not None]
    if grads:
        norms = torch._foreach_norm(grads)
        torch._foreach_add_(norms, 1e-7)
        torch._foreach_div_(grads, norms)


@dataclass
class EarlyStopping:
    """Their rule: a strictly lower validation loss is a new best; otherwise count a bad epoch,
    reset the count before the warm-up ends, and stop once the count exceeds the patience."""

    patience: int
    warmup: int = 0
    best: float = math.inf
    best_epoch: int = 0
    bad_epochs: int = 0
    stopped: bool = False

    def update(self, epoch: int, loss: float) -> bool:
        """Record epoch `epoch` (counted from 1); True when it is the new best."""
        if loss < self.best:
            self.best, self.best_epoch, self.bad_epochs = loss, epoch, 0
            return True
        self.bad_epochs += 1
        if epoch < self.warmup:
            self.bad_epochs = 0
        if self.bad_epochs > self.patience:
            self.stopped = True
        return False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _fixed_inputs(images: Tensor, device: torch.device, binarization: str, seed: int) -> Tensor:
    """Evaluation inputs: a fixed binary draw, or grey levels when training on grey levels."""
    return model_inputs(prepare_images(images, device), "grey" if binarization == "grey" else "static", seed=seed)


def train_one_epoch(model: VAE, optimizer: torch.optim.Optimizer, data: Tensor,
                    config: TrainConfig, epoch: int,
                    loss_fn: LossFn = batch_loss) -> Tensor:
    """One pass over the training images `data` (N, D) in a fresh random order.

    `data` holds uint8 pixels, binarised batch by batch here (or, for static
    binarisation, the fixed binary draw itself). Returns the mean training loss
    as a 0-d tensor, left on the device so that no step waits for the host.
    The order, binarisation and noise come from generators seeded by
    (seed, epoch), so a resumed run repeats them exactly.
    """
    device, seed = data.device, _epoch_seed(config.seed, epoch)
    beta = torch.tensor(config.beta_at(epoch), device=device)  # KL warm-up
    for group in optimizer.param_groups:
        group["lr"] = config.lr_at(epoch)
    torch.manual_seed(seed)  # the reparameterisation noise
    gen = torch.Generator(device=device).manual_seed(seed + 1)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    order = torch.randperm(data.shape[0], generator=gen, device=device)
    total = torch.zeros((), device=device)
    for idx in order.split(config.batch_size):
        x = data[idx]
        if config.binarization != "static":  # a fresh Bernoulli draw per batch
            x = model_inputs(x, config.binarization, gen)
        loss = loss_fn(model, x, config, beta)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.optimizer == "adam-normgrad":
            normalise_gradients(params)
        optimizer.step()
        total += loss.detach() * idx.shape[0]
    return total / data.shape[0]



TEST_CURVE_EVERY = 10  # with early stopping, the test curve is scored every 10th epoch (the validation one decides)


@dataclass
class _Progress:
    """What a run carries from epoch to epoch, and what its checkpoint saves."""

    history: History = field(default_factory=History)
    stopper: EarlyStopping | None = None
    best_weights: dict[str, Tensor] | None = None
    finished: bool = False

    @property
    def epochs_done(self) -> int:
        return len(self.history.epoch)


def make_optimizer(model: VAE, config: TrainConfig) -> torch.optim.Adam:
    """Adam with fused updates (one kernel for all parameters, on the CPU as on a GPU)."""
    return torch.optim.Adam(model.parameters(), lr=config.lr, fused=True)


def fit(
    model: VAE,
    train_images: Tensor,
    config: TrainConfig = TrainConfig(),
    *,
    test_images: Tensor | None = None,
    valid_images: Tensor | None = None,
    checkpoint: str | Path | None = None,
    meta: dict[str, Any] | None = None,
    device: torch.device | str | None = None,
    progress: bool = True,
    compile: bool = False,
) -> History:
    """Train `model` on uint8 `train_images`; returns the per-epoch `History`.

    With `checkpoint`, the state is saved there after every epoch, and a matching
    unfinished checkpoint (same `meta` and `config`) is resumed instead of starting over.
    `valid_images` give the validation ELBO that early stopping watches (needed when
    `config.early_stopping_patience` is set); the test curve is then scored every
    `TEST_CURVE_EVERY` epochs. `compile=True` runs the loss through `torch.compile`:
    the same numbers up to rounding, faster steps after a warm-up of seconds to a minute.
    """
    device = torch.device(device or next(model.parameters()).device)
    model.to(device).train()
    data, test_x, valid_x = _inputs(model, config, device, train_images, test_images, valid_images)
    optimizer = make_optimizer(model, config)
    identity = {"meta": meta or {}, "train_config": config.recipe()}
    run = _Progress(stopper=EarlyStopping(config.early_stopping_patience, config.kl_warmup_epochs)
                    if config.uses_validation else None)
    if checkpoint is not None and Path(checkpoint).exists():
        run = _resume(checkpoint, identity, model, optimizer, run)
    if run.finished:  # stopped early before: the model holds its best weights
        model.eval()
        return run.history
    loss_fn = compiled_batch_loss() if compile else batch_loss
    epochs = _progress_bar(range(run.epochs_done, config.epochs), progress, initial=run.epochs_done, total=config.epochs)
    with model.trusted_inputs(), flushed_denormals():
        for epoch in epochs:
            began = time.perf_counter()
            train_loss = train_one_epoch(model, optimizer, data, config, epoch, loss_fn).item()
            _check_finite(model, train_loss, epoch, checkpoint)
            valid = _validation_loss(model, valid_x, config, epoch)
            test_every = TEST_CURVE_EVERY if valid_x is not None else 1
            test = evaluate_elbo(model, test_x, config.eval_batch_size) if _scores_test(test_x, epoch, config, test_every) else {}
            _record(run.history, config, epoch, train_loss, valid, test, time.perf_counter() - began)
            _update_stopping(run, model, config, epoch, valid)
            if hasattr(epochs, "set_postfix"):
                epochs.set_postfix(**_postfix(run, train_loss, valid, test))
            if checkpoint is not None:
                save_checkpoint(checkpoint, _checkpoint_payload(identity, model, optimizer, run))
            if run.finished:
                break
    model.eval()
    return run.history


def _inputs(model: VAE, config: TrainConfig, device: torch.device, train_images: Tensor,
            test_images: Tensor | None, valid_images: Tensor | None) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """Training data on the device (uint8, or the fixed draw under static binarisation), test and
    validation inputs as fixed binary draws (seed 0 for test, as every evaluation uses)."""
    data = prepare_images(train_images, device)
    if data.shape[1] != model.input_dim:
        raise ValueError(f"images have {data.shape[1]} pixels but the model expects {model.input_dim}")
    if config.uses_validation and valid_images is None:
        raise ValueError("early stopping needs validation images: pass valid_images to fit")
    if config.binarization == "static":
        data = model_inputs(data, "static", seed=config.seed)
    test_x = _fixed_inputs(test_images, device, config.binarization, 0) if test_images is not None else None
    valid_x = None
    if valid_images is not None:
        valid_x = _fixed_inputs(valid_images, device, config.binarization, VALID_BINARIZATION_SEED)
    return data, test_x, valid_x


def _resume(checkpoint: str | Path, identity: dict, model: VAE, optimizer: torch.optim.Optimizer,
            run: _Progress) -> _Progress:
    """Load a matching checkpoint into the model and optimiser; returns the run's progress."""
    state = load_checkpoint(checkpoint, expect=identity)
    run.history = checkpoint_history(state, checkpoint)
    load_model_state(model, state, checkpoint)
    if state.get("finished"):  # stopped early: "model" already holds the best weights
        run.finished = True
        return run
    if not isinstance(state.get("optimizer"), dict):
        raise CheckpointError(f"{checkpoint} is unfinished but has no optimiser state to resume from; "
                              "move it away or retrain")
    try:
        optimizer.load_state_dict(state["optimizer"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{checkpoint} is unfinished but its optimiser state does not fit the model ({exc}); "
                              "move it away or retrain") from None
    if run.stopper is not None:
        run.stopper, run.best_weights = EarlyStopping(**state["early_stopping"]), state["best_model"]
    return run


def checkpoint_history(state: dict, path: str | Path) -> History:
    """The training history of a checkpoint's `state`, checked with its epoch count.

    A checkpoint of the right identity that cannot be used (written by other code, edited by
    hand) gives a one-line `CheckpointError` naming `path`.
    """
    epoch = state.get("epoch")
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
        raise CheckpointError(f"{path} records no valid epoch count ({epoch!r}); move it away or retrain")
    if not isinstance(state.get("history"), dict):
        raise CheckpointError(f"{path} has no training history; move it away or retrain")
    try:
        return History.from_dict(state["history"])
    except (TypeError, ValueError, AttributeError) as exc:
        raise CheckpointError(f"{path} holds a training history this vaelib cannot read ({exc}); "
                              "move it away or retrain") from None


def _check_finite(model: VAE, train_loss: float, epoch: int, checkpoint: str | Path | None) -> None:
    if not math.isfinite(train_loss) or not all(torch.isfinite(p).all() for p in model.parameters()):
        where = f"; the last good state (epoch {epoch}) is in {checkpoint}" if checkpoint and epoch else ""
        raise TrainingDiverged(
            f"training diverged in epoch {epoch + 1}: the loss became {train_loss}{where}. "
            "Try a lower learning rate or check the input data for NaN."
        )


def _validation_loss(model: VAE, valid_x: Tensor | None, config: TrainConfig, epoch: int) -> float:
    if valid_x is None:
        return math.nan
    torch.manual_seed(_epoch_seed(config.seed, epoch) + 2)  # its own noise: same with or without a test set
    return evaluate_elbo(model, valid_x, config.eval_batch_size, config.kl_estimate)["neg_elbo"]


def _scores_test(test_x: Tensor | None, epoch: int, config: TrainConfig, every: int) -> bool:
    return test_x is not None and ((epoch + 1) % every == 0 or epoch + 1 == config.epochs)


def _record(history: History, config: TrainConfig, epoch: int, train_loss: float, valid: float,
            test: dict[str, float], seconds: float) -> None:
    """Append one epoch to the history (test terms NaN on epochs without a test score)."""
    history.epoch.append(epoch + 1)
    history.lr.append(config.lr_at(epoch))
    history.train_loss.append(train_loss)
    history.test_neg_elbo.append(test.get("neg_elbo", math.nan))
    history.test_kl.append(test.get("kl", math.nan))
    history.test_reconstruction.append(test.get("reconstruction", math.nan))
    history.seconds.append(seconds)
    history.valid_neg_elbo.append(valid)
    history.beta.append(config.beta_at(epoch))


def _update_stopping(run: _Progress, model: VAE, config: TrainConfig, epoch: int, valid: float) -> None:
    """Early stopping: keep the best epoch's weights; at the end, put them back in the model."""
    if run.stopper is None:
        return
    if run.stopper.update(epoch + 1, valid):
        run.best_weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
    run.finished = run.stopper.stopped or epoch + 1 == config.epochs
    if run.finished and run.best_weights is not None:
        model.load_state_dict(run.best_weights)


def _checkpoint_payload(identity: dict, model: VAE, optimizer: torch.optim.Optimizer, run: _Progress) -> dict:
    """What resumes the run: weights, optimiser and early-stopping state, history, identity."""
    payload = {**identity, "epoch": run.epochs_done, "model": model.state_dict()}
    if not run.finished:
        payload["optimizer"] = optimizer.state_dict()
    payload["history"] = run.history.to_dict()
    if run.stopper is not None:
        payload["early_stopping"] = run.stopper.to_dict()
        if run.finished:
            payload["finished"] = True  # "model" is the best epoch's; nothing is left to resume
        else:
            payload["best_model"] = run.best_weights
    return payload


def _postfix(run: _Progress, train_loss: float, valid: float, test: dict[str, float]) -> dict[str, Any]:
    postfix = {"loss": f"{train_loss:.2f}", "test": f"{test.get('neg_elbo', math.nan):.2f}"}
    if run.stopper is not None:
        postfix.update(valid=f"{valid:.2f}", best=run.stopper.best_epoch, beta=f"{run.history.beta[-1]:.2f}")
    return postfix


def compiled_batch_loss() -> LossFn:
    """`batch_loss` through `torch.compile`, drawing its random numbers as eager PyTorch does.

    `fallback_random` keeps the noise stream of the eager loss, so a compiled run differs from
    an eager one only by rounding. Dynamic shapes stay off: every batch but an epoch's last has
    the same size, so at most two graphs are compiled.
    """
    import torch._inductor.config  # torch's compiler loads only when asked for

    torch._inductor.config.fallback_random = True
    return torch.compile(batch_loss, dynamic=False)


def _progress_bar(iterable: range, enabled: bool, **kwargs: Any):
    """tqdm.auto renders as a widget in notebooks and as text in a terminal."""
    if not enabled:
        return iterable
    from tqdm.auto import tqdm  # imports ipywidgets: only when a bar is shown

    return tqdm(iterable, desc="epochs", unit="epoch", **kwargs)
