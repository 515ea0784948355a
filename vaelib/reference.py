"""Committed reference runs: trained weights that ship with vaelib, with their provenance.

`vaelib/reference_runs/<profile>/<name>/` holds one finished run (seed 0) of the original
protocol (`full`) or of Tomczak & Welling's (`tw`): `metrics.json` (test ELBO, rate,
distortion, importance-weighted NLL, active units, with the commands that produced them),
`history.csv`, `provenance.json`, the per-image estimates and, for `full`, `weights.pt`
(the model's state dict, identity and per-epoch history, no optimiser state; read with
`weights_only=True`). The `tw` weights (4.5-6 MB each) stay in the repository, in
`benchmarks/reference_weights/tw/<name>/weights.pt`, outside the package data: the pages
need only what ships, and the reproduction test runs from the repository.
`get_or_train` loads such a run instead of training when its identity is exactly
the one asked for; `tests/test_reference.py` checks that today's code still gives
the recorded test ELBO from those weights.

Regenerate with `benchmarks/make_reference.sh` (train, evaluate, export), then bump
`REFERENCE_VERSION`: replacing reference weights is a deliberate act.
"""

from __future__ import annotations

import csv
import json
import platform
import re
import subprocess
import textwrap
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from .checkpoint import CheckpointError, load_checkpoint, load_model_state, save_checkpoint
from .data import load_dataset
from .evaluate import dataset_elbo
from .experiments import PROFILES, Experiment, Profile, get_experiment
from .files import write_json_atomically
from .model import VAE
from .runs import read_metrics
from .train import History

REFERENCE_ROOT = Path(__file__).parent / "reference_runs"
# Weights that do not ship in the package: only in a checkout of the repository.
REPOSITORY_WEIGHTS_ROOT = Path(__file__).parent.parent / "benchmarks" / "reference_weights"
PACKAGED_WEIGHTS = ("full",)  # profiles whose reference weights ship inside the package
REFERENCE_VERSION = 1
REFERENCE_SEED = 0
WEIGHTS = "weights.pt"
PER_IMAGE_FILE = "iw_log_px.pt"  # per-test-image importance-weighted log p(x), float64


def save_per_image_log_px(path: Path, log_px: torch.Tensor, info: dict) -> None:
    """Write per-image log p(x) estimates (in test-set order) atomically, beside the metrics."""
    save_checkpoint(path, {"log_px": log_px.double().cpu(), **info})


def load_per_image_log_px(name: str, profile_name: str = "full") -> torch.Tensor:
    """The per-image log p(x) estimates a reference run recorded (10,000 test images, k = 5000)."""
    return load_checkpoint(reference_dir(name, profile_name) / PER_IMAGE_FILE)["log_px"]


def reference_dir(name: str, profile_name: str = "full") -> Path:
    """Where the reference run of `name` under a profile lives (whether or not it exists)."""
    return REFERENCE_ROOT / profile_name / name


def weights_path(name: str, profile_name: str = "full") -> Path:
    """Where a reference run's weights live (whether or not they are there): inside the
    package for the `full` profile, in the repository's benchmarks/reference_weights/ otherwise."""
    root = REFERENCE_ROOT if profile_name in PACKAGED_WEIGHTS else REPOSITORY_WEIGHTS_ROOT
    return root / profile_name / name / WEIGHTS


def profiles() -> list[str]:
    """The profiles with at least one committed reference run (`full`, and `tw` once a row is in)."""
    return sorted(p.name for p in REFERENCE_ROOT.iterdir() if p.is_dir() and available(p.name))


def available(profile_name: str = "full") -> list[str]:
    """Names of the experiments whose committed reference run under `profile_name` can be
    loaded: its record ships in the package and its weights are at `weights_path`."""
    root = REFERENCE_ROOT / profile_name
    names = [p.name for p in root.iterdir() if (p / "metrics.json").is_file()] if root.is_dir() else []
    return sorted(name for name in names if weights_path(name, profile_name).is_file())


def _load_weights(experiment: Experiment, profile_name: str, identity: dict) -> tuple[VAE, History, Path]:
    """Build the experiment's model from its committed weights; CheckpointError if they do not match."""
    path = weights_path(experiment.name, profile_name)
    state = load_checkpoint(path, expect={"meta": identity})
    model = experiment.build()
    load_model_state(model, state, path)
    return model, History.from_dict(state["history"]), path


def load_reference(
    experiment: Experiment, profile: Profile, seed: int, identity: dict
) -> tuple[VAE, History, Path] | None:
    """The committed run of exactly this experiment and identity, or None if there is none."""
    if seed != REFERENCE_SEED or not weights_path(experiment.name, profile.name).is_file():
        return None
    try:
        return _load_weights(experiment, profile.name, identity)
    except CheckpointError as exc:
        warnings.warn(f"not using the reference run: {exc}", stacklevel=3)
        return None


@dataclass
class ReferenceRun:
    """A committed run, loaded for reading (chapters 3 and 5): never trains anything."""

    name: str
    model: VAE
    history: History
    metrics: dict
    provenance: dict

    @property
    def log_px(self) -> torch.Tensor:
        """Per-test-image importance-weighted log p(x) (k = 5000, all 10,000 test images)."""
        return load_per_image_log_px(self.name, self.provenance.get("profile", "full"))

    def describe(self, width: int = 78) -> str:
        """The run's provenance for a page (command, commit, device, versions, date), wrapped
        to `width` characters so that it fits a cell's output box."""
        return describe_provenance(self.name, self.provenance, width)


def describe_provenance(name: str, provenance: dict, width: int = 78) -> str:
    """A run's provenance as a page prints it: train command, commit, device, torch and Python
    versions, export date, wrapped to `width` characters (continuation lines indented)."""
    p = provenance
    device = re.sub(r"\b1 torch threads\b", "1 torch thread", str(p.get("device")))  # older records
    text = (f"{name}: {p.get('train_command')}, commit {str(p.get('commit'))[:10]}, {device}, "
            f"torch {p.get('torch')}, Python {p.get('python')}, exported {str(p.get('exported'))[:10]}")
    return textwrap.fill(text, width, subsequent_indent="    ", break_on_hyphens=False)


class ReferenceRunError(RuntimeError):
    """A reference run that is missing or no longer matches today's code."""


def load_run(name: str, profile_name: str = "full") -> ReferenceRun:
    """The committed run of `name`, checked against today's identity of that experiment."""
    folder = reference_dir(name, profile_name)
    if not weights_path(name, profile_name).is_file():
        have = ", ".join(available(profile_name)) or "none"
        hint = ""
        if (folder / "metrics.json").is_file():  # its record ships with the package, its weights do not
            hint = f"; its weights live in a clone of the repository, at {weights_path(name, profile_name)}"
        raise ReferenceRunError(f"no reference run of {name!r} under {profile_name!r} (available: {have}){hint}")
    experiment = get_experiment(name)
    try:
        model, history, _ = _load_weights(experiment, profile_name, experiment.identity(PROFILES[profile_name],
                                                                                        REFERENCE_SEED))
    except CheckpointError as exc:
        raise ReferenceRunError(
            f"the reference run of {name} no longer matches today's code ({exc}); "
            "regenerate it with benchmarks/make_reference.sh"
        ) from None
    provenance = json.loads((folder / "provenance.json").read_text())
    return ReferenceRun(name, model.eval(), history, read_metrics(folder / "metrics.json"), provenance)


def read_reference_metrics(name: str, profile_name: str = "full") -> dict:
    """The recorded metrics (with provenance) of a reference run; a clear error if absent."""
    path = reference_dir(name, profile_name) / "metrics.json"
    if not path.is_file():
        have = ", ".join(available(profile_name)) or "none"
        raise FileNotFoundError(f"no reference run of {name!r} under {profile_name!r} (available: {have})")
    return read_metrics(path)


CHECK_IMAGES = 1000  # test images the reproduction check scores (tests/test_reference.py)
CHECK_SEED = 0


def check_elbo(model: VAE, test_images: torch.Tensor) -> float:
    """Negative ELBO (nats) on the first `CHECK_IMAGES` test images, with seeded noise.

    The number a reference run records at export and today's code must reproduce:
    same weights, same fixed binarisation, same reparameterisation draws.
    """
    torch.manual_seed(CHECK_SEED)
    return dataset_elbo(model, test_images[:CHECK_IMAGES], seed=CHECK_SEED)["neg_elbo"]


def git_commit() -> str:
    """The commit vaelib runs from, "+uncommitted-changes" if tracked files differ, for provenance."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=10
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=Path(__file__).parent,
            capture_output=True, text=True, timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    commit = out.stdout.strip() or "unknown"
    return commit + ("+uncommitted-changes" if dirty.stdout.strip() else "")


def export_reference(run: Any, metrics: dict, dest: Path | None = None) -> Path:
    """Copy a finished run (a `vaelib.trained.TrainedModel`, which imports this module) into the
    reference set: metrics, history, provenance into the package, weights (no optimiser state)
    to `weights_path` (or all of them into `dest`, if given)."""
    weights = dest / WEIGHTS if dest else weights_path(run.experiment.name, run.profile.name)
    dest = dest or reference_dir(run.experiment.name, run.profile.name)
    dest.mkdir(parents=True, exist_ok=True)
    weights.parent.mkdir(parents=True, exist_ok=True)
    test_images = load_dataset(run.experiment.dataset, split="classic").test.images
    model = run.model.cpu().eval()
    metrics = {**metrics, "reference_check": {
        "images": CHECK_IMAGES, "seed": CHECK_SEED, "test_neg_elbo": check_elbo(model, test_images),
    }}
    history = run.history
    save_checkpoint(
        weights,
        {
            "meta": run.identity,
            "epoch": history.epoch[-1] if history.epoch else 0,
            "model": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
            "history": history.to_dict(),
            "reference_version": REFERENCE_VERSION,
        },
    )
    write_json_atomically(dest / "metrics.json", metrics)
    per_image = run.checkpoint.parent / PER_IMAGE_FILE
    if per_image.is_file():
        (dest / PER_IMAGE_FILE).write_bytes(per_image.read_bytes())
    with open(dest / "history.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        columns = list(history.to_dict())
        writer.writerow(columns)
        writer.writerows(zip(*(history.to_dict()[c] for c in columns)))
    provenance = {
        "experiment": run.experiment.name,
        "profile": run.profile.name,
        "seed": run.seed,
        "identity": run.identity,
        "reference_version": REFERENCE_VERSION,
        "exported": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "commit": git_commit(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "train_command": metrics.get("train", {}).get("command"),
        "evaluate_command": metrics.get("evaluate", {}).get("command"),
        "device": metrics.get("train", {}).get("device"),
        "train_seconds": metrics.get("train_seconds"),
        "evaluate_seconds": metrics.get("evaluate_seconds"),
    }
    write_json_atomically(dest / "provenance.json", provenance)
    return dest
