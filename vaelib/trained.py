"""`get_or_train`: a trained model of a named experiment, loaded where it exists, else trained.

It looks, in order, for a committed reference run of exactly that identity (`vaelib.reference`),
then for the run's folder (`run_dir`, see `vaelib.runs`): a finished run there is loaded, an
unfinished one resumed, and a missing one trained and checkpointed after every epoch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from .checkpoint import load_checkpoint, load_model_state
from .checks import check_seed
from .data import load_dataset
from .experiments import Experiment, Profile, get_experiment, resolve_profile
from .model import VAE
from .reference import load_reference
from .runs import CHECKPOINT, METRICS, choose_run_dir, identity_key, run_lock
from .settings import cache_root, resolve_device, retrain_requested
from .train import History, TrainConfig, checkpoint_history, fit


@dataclass
class TrainedModel:
    """What `get_or_train` returns."""

    model: VAE
    history: History
    experiment: Experiment
    profile: Profile
    checkpoint: Path
    seed: int = 0
    identity: dict | None = None

    @property
    def config(self) -> TrainConfig:
        """The training recipe this run was trained with (its schedule: `config.decay_every`)."""
        return self.experiment.train_config(self.profile, self.seed)

    @property
    def run_record(self) -> dict:
        """Names this run in `metrics.json` (name, profile, seed, identity key)."""
        key = identity_key(self.identity) if self.identity is not None else None
        return {"name": self.experiment.name, "profile": self.profile.name, "seed": self.seed, "identity_key": key}


def runs_base(name: str, profile: Profile, out: str | Path | None = None) -> Path:
    """The folder holding every seed of `name`: `out/NAME`, else `<cache_root>/<profile>/NAME`."""
    return Path(out).expanduser() / name if out is not None else cache_root() / profile.name / name


def run_dir(name: str, profile: Profile, out: str | Path | None = None, seed: int = 0) -> Path:
    """The folder of the run of `name` with `seed` under `profile` (see `vaelib.runs`)."""
    check_seed(seed)
    identity = get_experiment(name).identity(profile, seed)
    return choose_run_dir(runs_base(name, profile, out), seed, identity)


def load_data_for(experiment: Experiment, profile: Profile) -> tuple[Tensor, Tensor]:
    """The experiment's training and test images, cut to the profile's subset sizes."""
    data = load_dataset(experiment.dataset, split="classic")
    return data.train.images[: profile.train_subset], data.test.images[: profile.test_subset]


def get_or_train(
    name: str,
    profile: str | Profile | None = None,
    *,
    out: str | Path | None = None,
    device: str | torch.device | None = None,
    seed: int = 0,
    progress: bool = True,
    retrain: bool = False,
) -> TrainedModel:
    """The trained run of `name` with `seed` under `profile`: loaded if it exists, else trained.

    Lookup order: a committed reference run (`vaelib.reference`, for exactly this
    identity, unless `out` is given or a retrain is asked for), then the run folder
    (`vaelib.runs`); a partial run there is resumed. `retrain=True` (or
    VAELIB_RETRAIN=1) trains afresh, replacing only the run of this identity.
    """
    check_seed(seed)
    experiment = get_experiment(name)
    profile = profile if isinstance(profile, Profile) else resolve_profile(profile)
    device = resolve_device(device)
    identity = experiment.identity(profile, seed)
    retrain = retrain or retrain_requested()
    found = load_reference(experiment, profile, seed, identity) if out is None and not retrain else None
    if found is not None:
        model, history, path = found
        return TrainedModel(model.to(device).eval(), history, experiment, profile, path, seed, identity)
    folder = choose_run_dir(runs_base(name, profile, out), seed, identity)
    with run_lock(folder):
        model, history = _load_or_train(experiment, profile, seed, identity, folder, device, progress, retrain)
    return TrainedModel(model.to(device).eval(), history, experiment, profile, folder / CHECKPOINT, seed, identity)


def _load_or_train(experiment: Experiment, profile: Profile, seed: int, identity: dict, folder: Path,
                   device: torch.device, progress: bool, retrain: bool) -> tuple[VAE, History]:
    """Inside the run folder's lock: the finished run there, else a model trained (or resumed) there."""
    path, config = folder / CHECKPOINT, experiment.train_config(profile, seed)
    if path.is_file() and retrain:
        path.unlink()  # the run of this very identity (choose_run_dir never returns another's folder)
        (folder / METRICS).unlink(missing_ok=True)  # it described the run just replaced
    if path.is_file():
        state = load_checkpoint(path, expect={"meta": identity})
        history = checkpoint_history(state, path)
        if state["epoch"] >= config.epochs or state.get("finished") is True:
            model = experiment.build()
            load_model_state(model, state, path)
            return model, history
    torch.manual_seed(seed)
    model = experiment.build()
    train_images, test_images = load_data_for(experiment, profile)
    valid_images = load_dataset(experiment.dataset, split="classic").valid.images if config.uses_validation else None
    history = fit(model, train_images, config, test_images=test_images, valid_images=valid_images, checkpoint=path,
                  meta=identity, device=device, progress=progress, compile=profile.compile)
    return model, history
