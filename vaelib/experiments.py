"""Named, versioned experiments and the profiles that say how long to train them.

An `Experiment` fixes the model (prior kind, latent size, components, networks,
data set, objective); a `Profile` fixes how it is trained and scored (epochs, data
subset, evaluation samples, and for a published protocol such as `tw` the rest of
its recipe: batch size, learning rate, warm-up, early stopping).
`get_or_train(name, profile)` returns the trained model, loading the cached
checkpoint when one exists for exactly that experiment, profile, seed and
`CODE_VERSION`, and training (or resuming) it otherwise.
"""

from __future__ import annotations

import os
from dataclasses import MISSING, dataclass, fields, replace
from pathlib import Path
from typing import Any, Callable

import torch

from .checkpoint import CheckpointError, load_checkpoint
from .runs import CHECKPOINT, RunFolderError, choose_run_dir, ensure_writable_dir, identity_key, load_model_state, run_lock
from .mixture_posterior import MixtureEncoder, MixturePosteriorVAE
from .model import VAE
from .nets import BernoulliDecoder, GatedBernoulliDecoder, GatedEncoder, GaussianEncoder
from .priors import FactorizedMixture, GaussianMixture, StandardNormal, VampPrior
from .train import History, TrainConfig, check_seed, fit
from .runs import METRICS, check_run_state

# Bump when a change alters what training produces, so stale cached checkpoints are retrained.
CODE_VERSION = 1


@dataclass(frozen=True)
class Profile:
    """A training and evaluation budget."""

    name: str
    description: str
    epochs: int
    train_subset: int | None  # None: the whole training split
    test_subset: int | None
    iw_samples: int  # k for importance-weighted log-likelihoods
    iw_images: int | None  # test images used for them (None: all)
    # TrainConfig fields the profile fixes besides the epochs, as (name, value) pairs; empty
    # where the recipe is TrainConfig's defaults (the original protocol's).
    recipe: tuple[tuple[str, Any], ...] = ()
    # Train through torch.compile (`fit(compile=True)`): for long runs, where its warm-up pays off.
    compile: bool = False

    def __post_init__(self) -> None:
        known = {f.name for f in fields(TrainConfig)} - {"epochs", "seed", "objective", "iw_samples", "binarization"}
        unknown = sorted(k for k, _ in self.recipe if k not in known)
        if unknown:
            raise ValueError(f"profile {self.name!r}: {unknown} are not TrainConfig options a profile may set")


# Tomczak & Welling (2018), jmtomczak/vae_vampprior: experiment.py defaults (batch 100, lr 5e-4,
# warm-up 100, early stopping 50, up to 2000 epochs, S = 5000), AdamNormGrad (utils/optimizer.py),
# the sampled KL of models/VAE.py calculate_loss, no learning-rate schedule.
TW_RECIPE = (
    ("batch_size", 100), ("lr", 5e-4), ("lr_decay", 1.0), ("kl_warmup_epochs", 100),
    ("early_stopping_patience", 50), ("optimizer", "adam-normgrad"), ("kl_estimate", "sample"),
)

# The cpu profile keeps one decay of the original schedule: 5 epochs at 1e-3, then 5 at 1e-4.
# (With the default quarter-length schedule, 20 epochs spent their last 10 at 1e-5 and 1e-6,
# which moved the test ELBO by less than 0.1 nat; these 10 epochs are exactly its first 10.)
CPU_RECIPE = (("lr_decay_every", 5),)

PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile("smoke", "seconds per notebook: 2 epochs on 2,000 images (CI and pytest)", 2, 2000, 500, 64, 100),
        Profile(
            "cpu", "minutes per chapter on a laptop CPU: 10 epochs on all 50,000 images, learning rate "
            "x0.1 after 5", 10, None, None, 500, 1000, CPU_RECIPE,
        ),
        Profile("full", "the original protocol: 400 epochs, learning rate x0.1 every 100; committed reference runs load instantly", 400, None, None, 5000, None),
        Profile(
            "tw", "Tomczak & Welling (2018): batch 100, Adam 5e-4 (normalised gradients), KL warm-up over 100 "
            "epochs, early stopping (patience 50) on the 10,000 validation images, at most 2000 epochs",
            2000, None, None, 5000, None, TW_RECIPE, compile=True,
        ),
    )
}


@dataclass(frozen=True)
class Experiment:
    """One named model of the book. `kind` selects a builder in `MODEL_BUILDERS`."""

    name: str
    description: str
    kind: str  # a key of MODEL_BUILDERS: "vae" | "mog" | "fmog" | "vamp" | "mogpost" | "both-c5"
    latent_dim: int
    n_components: int = 1
    hidden_dim: int = 400
    dataset: str = "mnist"
    objective: str = "elbo"
    iw_samples: int = 1
    binarization: str = "dynamic"
    network: str = "mlp"  # "mlp": one ReLU layer of hidden_dim; "gated": Tomczak & Welling's gated layers
    hidden_layers: int = 1  # hidden layers of the encoder (the decoder mirrors it); the MLP has one
    pseudo_inputs: str = "sigmoid"  # VampPrior pseudo-inputs: "sigmoid" (vaelib) or "hardtanh" (theirs)

    def __post_init__(self) -> None:
        if self.network not in NETWORKS:
            raise ValueError(f"experiment {self.name!r}: unknown network {self.network!r}; choose one of {NETWORKS}")
        if self.network == "mlp" and self.hidden_layers != 1:
            raise ValueError(f"experiment {self.name!r}: the mlp network has one hidden layer, "
                             f"got hidden_layers={self.hidden_layers}")

    def build(self) -> VAE:
        """A freshly initialised model for this experiment (seed torch first for reproducibility)."""
        return MODEL_BUILDERS[self.kind](self)

    def train_config(self, profile: Profile, seed: int = 0) -> TrainConfig:
        return TrainConfig(
            epochs=profile.epochs, objective=self.objective, iw_samples=self.iw_samples,
            binarization=self.binarization, seed=seed, **dict(profile.recipe),
        )

    def architecture(self) -> dict:
        """The fields that decide which network `build` makes (the training fields go to `train`).

        Fields at their default are left out, like in `TrainConfig.recipe`, so a new
        option with a default that keeps today's model changes no existing identity.
        """
        return _non_default_fields(self, skip=("name", "description", "dataset", "objective", "iw_samples", "binarization"))

    def identity(self, profile: Profile, seed: int = 0) -> dict:
        """Everything that changes the trained weights, and nothing else.

        The network (`architecture`), the training recipe (`TrainConfig.recipe`, seed
        included), the data (set and training subset) and `CODE_VERSION`. Descriptions,
        profile names and evaluation budgets are not part of it: editing them keeps
        every cached run valid.
        """
        return {
            "architecture": self.architecture(),
            "train": self.train_config(profile, seed).recipe(),
            "data": {"dataset": self.dataset, "train_subset": profile.train_subset},
            "code_version": CODE_VERSION,
        }


def _non_default_fields(obj, skip: tuple[str, ...] = ()) -> dict:
    """Dataclass fields of `obj` that have no default or differ from it."""
    out = {}
    for f in fields(obj):
        value = getattr(obj, f.name)
        if f.name in skip or (f.default is not MISSING and value == f.default):
            continue
        out[f.name] = value
    return out


# -- the registry: which prior and which networks each kind (and so each name) builds -------------

NETWORKS = ("mlp", "gated")


def _encoder(exp: Experiment):
    if exp.network == "gated":
        return GatedEncoder(784, exp.hidden_dim, exp.latent_dim, exp.hidden_layers)
    return GaussianEncoder(784, exp.hidden_dim, exp.latent_dim)


def _decoder(exp: Experiment):
    if exp.network == "gated":
        return GatedBernoulliDecoder(exp.latent_dim, exp.hidden_dim, 784, exp.hidden_layers)
    return BernoulliDecoder(exp.latent_dim, exp.hidden_dim, 784)


def _mlp_vae(exp: Experiment, prior) -> VAE:
    """Encoder and decoder of the experiment's `network` around `prior` (built first, as always)."""
    return VAE(_encoder(exp), _decoder(exp), prior)


def _vamp_vae(exp: Experiment) -> VAE:
    encoder = _encoder(exp)
    return VAE(encoder, _decoder(exp), VampPrior(encoder, exp.n_components, activation=exp.pseudo_inputs))


def _mixture_posterior_vae(exp: Experiment, n_posterior: int, prior) -> MixturePosteriorVAE:
    if exp.network != "mlp":
        raise ValueError(f"experiment {exp.name!r}: the mixture posterior has only the mlp network")
    encoder = MixtureEncoder(784, exp.hidden_dim, exp.latent_dim, n_posterior)
    return MixturePosteriorVAE(encoder, BernoulliDecoder(exp.latent_dim, exp.hidden_dim, 784), prior)


BOTH_POSTERIOR_COMPONENTS = 5  # posterior components of the "both-c5" kind (its n_components is the prior's M)

# The networks are the experiment's `network` (`_encoder`, `_decoder`: one ReLU layer of `hidden_dim`,
# or Tomczak & Welling's gated layers) with a Bernoulli decoder. The order of construction fixes the
# initial weights (seeded draws), so keep it: every kind but `vamp` creates its prior before the
# networks (it is an argument), `vamp` after them (it needs the encoder).
MODEL_BUILDERS: dict[str, Callable[[Experiment], VAE]] = {
    # Gaussian encoder; prior N(0, I) / M-component mixture / factorised mixture (M per dimension)
    "vae": lambda e: _mlp_vae(e, StandardNormal(e.latent_dim)),
    "mog": lambda e: _mlp_vae(e, GaussianMixture(e.latent_dim, e.n_components)),
    "fmog": lambda e: _mlp_vae(e, FactorizedMixture(e.latent_dim, e.n_components)),
    # Gaussian encoder; VampPrior with n_components pseudo-inputs (chapter 6; `pseudo_inputs` picks their squashing)
    "vamp": lambda e: _vamp_vae(e),
    # C-component mixture posterior (C = n_components, mlp networks only) with the unit-Gaussian prior (chapter 6)
    "mogpost": lambda e: _mixture_posterior_vae(e, e.n_components, StandardNormal(e.latent_dim)),
    # 5-component mixture posterior with an M-component mixture prior (M = n_components; chapter 6)
    f"both-c{BOTH_POSTERIOR_COMPONENTS}": lambda e: _mixture_posterior_vae(
        e, BOTH_POSTERIOR_COMPONENTS, GaussianMixture(e.latent_dim, e.n_components)
    ),
}

EXPERIMENTS: dict[str, Experiment] = {}


def register(experiment: Experiment) -> Experiment:
    """Add an experiment to the registry (names are unique)."""
    if experiment.name in EXPERIMENTS:
        raise ValueError(f"experiment {experiment.name!r} is already registered")
    if experiment.kind not in MODEL_BUILDERS:
        raise ValueError(f"unknown model kind {experiment.kind!r}; known: {sorted(MODEL_BUILDERS)}")
    EXPERIMENTS[experiment.name] = experiment
    return experiment


for _z in (2, 10):
    register(Experiment(f"vae-z{_z}", f"plain VAE, unit-Gaussian prior, z={_z}", "vae", _z))
    for _m in (10, 1000):
        register(Experiment(f"mog-z{_z}-m{_m}", f"mixture-of-Gaussians prior with {_m} learned components, z={_z}", "mog", _z, _m))
        register(
            Experiment(
                f"fmog-z{_z}-m{_m}",
                f"factorised mixture prior ({_m} components per dimension; the original IndGmm), z={_z}",
                "fmog", _z, _m,
            )
        )

# Chapter 6: beyond the mixture prior (a mixture posterior, VampPrior, IWAE, Fashion-MNIST).
register(Experiment("mogpost-z10-c5", "mixture posterior (5 Gaussian components), unit-Gaussian prior, z=10", "mogpost", 10, 5))
register(
    Experiment(
        "both-z10-c5-m1000", "mixture posterior (5 components) and mixture prior (1000 components), z=10",
        f"both-c{BOTH_POSTERIOR_COMPONENTS}", 10, 1000,
    )
)
register(Experiment("vamp-z10-k500", "VampPrior with 500 learned pseudo-inputs, z=10", "vamp", 10, 500))
register(
    Experiment("iwae-z10-k5", "plain VAE trained on the importance-weighted bound with k=5, z=10", "vae", 10,
               objective="iwae", iw_samples=5)
)
register(Experiment("fashion-vae-z10", "Fashion-MNIST: plain VAE, unit-Gaussian prior, z=10", "vae", 10,
                    dataset="fashion-mnist"))
register(Experiment("fashion-mog-z10-m1000", "Fashion-MNIST: mixture prior with 1000 components, z=10", "mog", 10, 1000,
                    dataset="fashion-mnist"))
register(Experiment("fashion-vamp-z10-k500", "Fashion-MNIST: VampPrior with 500 pseudo-inputs, z=10", "vamp", 10, 500,
                    dataset="fashion-mnist"))

# Chapter 5: Tomczak & Welling (2018), one stochastic layer on dynamically binarised MNIST.
# Their models/VAE.py: gated 784-300-300 encoder, mirrored decoder, z = 40, 500 components.
# Train them with `--profile tw` (their recipe); other profiles train the same networks on
# this book's budgets.
_TW = {"latent_dim": 40, "network": "gated", "hidden_dim": 300, "hidden_layers": 2}
register(Experiment("tw-standard-z40", "Tomczak & Welling: gated 300-300 networks, unit-Gaussian prior, z=40",
                    "vae", **_TW))
register(Experiment("tw-mog-z40-m500", "Tomczak & Welling: gated 300-300 networks, mixture prior with 500 "
                    "learned components, z=40", "mog", n_components=500, **_TW))
register(Experiment("tw-vamp-z40-k500", "Tomczak & Welling: gated 300-300 networks, VampPrior with 500 "
                    "pseudo-inputs (hard-tanh, their initialisation), z=40", "vamp", n_components=500,
                    pseudo_inputs="hardtanh", **_TW))
# The same three on dynamically binarised Fashion-MNIST (the classic 50,000 / 10,000 / 10,000 split);
# their code initialises the pseudo-inputs N(0.05, 0.01^2) for every data set unless told to start
# from training images (Exemplar-VAE `utils/load_data/base_load_data.py: post_processing`).
register(Experiment("tw-fashion-standard-z40", "Tomczak & Welling on Fashion-MNIST: gated 300-300 networks, "
                    "unit-Gaussian prior, z=40", "vae", dataset="fashion-mnist", **_TW))
register(Experiment("tw-fashion-mog-z40-m500", "Tomczak & Welling on Fashion-MNIST: gated 300-300 networks, "
                    "mixture prior with 500 learned components, z=40", "mog", n_components=500,
                    dataset="fashion-mnist", **_TW))
register(Experiment("tw-fashion-vamp-z40-k500", "Tomczak & Welling on Fashion-MNIST: gated 300-300 networks, "
                    "VampPrior with 500 pseudo-inputs (hard-tanh, their initialisation), z=40", "vamp",
                    n_components=500, pseudo_inputs="hardtanh", dataset="fashion-mnist", **_TW))


def get_experiment(name: str) -> Experiment:
    try:
        return EXPERIMENTS[name]
    except KeyError:
        raise ValueError(f"unknown experiment {name!r}; known: {', '.join(sorted(EXPERIMENTS))}") from None


def resolve_profile(name: str | None = None) -> Profile:
    """The named profile, else $VAELIB_PROFILE, else `full` with a GPU and `cpu` without.

    Under `full`, `get_or_train` loads the committed 400-epoch reference run of an
    experiment when there is one for exactly its identity (`vaelib.reference`;
    `python -m vaelib list` marks them), so those models need no training on any
    machine; `retrain=True` or VAELIB_RETRAIN=1 trains them anyway.
    """
    name = name or os.environ.get("VAELIB_PROFILE") or ("full" if torch.cuda.is_available() else "cpu")
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}") from None


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """The device to train and evaluate on: cpu, cuda[:N] (if present), mps (if present); default cuda else cpu.

    Anything else (meta, xla, a GPU that is not there) is refused here, before any work, with
    the devices that would work.
    """
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"invalid device {device!r}; use cpu or cuda (cuda:N for GPU N)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {str(device)!r} was asked for but PyTorch sees no CUDA GPU here; use --device cpu")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise ValueError(f"device {str(device)!r} does not exist: PyTorch sees {count} CUDA GPU(s), "
                             f"cuda:0 to cuda:{count - 1}")
    elif device.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError("device 'mps' (Apple GPU) was asked for but this PyTorch cannot use one here; "
                             "use --device cpu")
    elif device.type != "cpu":
        raise ValueError(f"device {str(device)!r} cannot train or run these models; use cpu or cuda (cuda:N for GPU N)")
    return device


def cache_root() -> Path:
    """Where trained runs live: $VAELIB_CACHE (with ~ expanded), else ~/.cache/vaelib/runs."""
    configured = os.environ.get("VAELIB_CACHE")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "vaelib" / "runs"


def runs_base(name: str, profile: Profile, out: str | Path | None = None) -> Path:
    """The folder holding every seed of `name`: `out/NAME`, else `<cache_root>/<profile>/NAME`."""
    return Path(out).expanduser() / name if out is not None else cache_root() / profile.name / name


def run_dir(name: str, profile: Profile, out: str | Path | None = None, seed: int = 0) -> Path:
    """The folder of the run of `name` with `seed` under `profile` (see `vaelib.runs`)."""
    check_seed(seed)
    identity = get_experiment(name).identity(profile, seed)
    return choose_run_dir(runs_base(name, profile, out), seed, identity)


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


def load_data_for(experiment: Experiment, profile: Profile):
    """The experiment's data set, cut to the profile's subset sizes."""
    from .data import load_dataset

    data = load_dataset(experiment.dataset, split="classic")
    return data.train.images[: profile.train_subset], data.test.images[: profile.test_subset]


def load_valid_for(experiment: Experiment):
    """The validation images of the classic split: the last 10,000 of the 60,000 training images."""
    from .data import load_dataset

    return load_dataset(experiment.dataset, split="classic").valid.images


def retrain_requested() -> bool:
    """True when $VAELIB_RETRAIN is set to 1/true/yes: train even where a run exists."""
    return os.environ.get("VAELIB_RETRAIN", "").strip().lower() in ("1", "true", "yes")


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
    if out is None and not retrain:
        from .reference import load_reference

        found = load_reference(experiment, profile, seed, identity)
        if found is not None:
            model, history, path = found
            return TrainedModel(model.to(device).eval(), history, experiment, profile, path, seed, identity)
    folder = choose_run_dir(runs_base(name, profile, out), seed, identity)
    path = folder / CHECKPOINT
    config = experiment.train_config(profile, seed)
    with run_lock(ensure_writable_dir(folder)):
        if path.exists() and not path.is_file():
            raise RunFolderError(f"{path} is not a file; move it away so the run can be written there")
        if path.is_file() and retrain:
            path.unlink()  # the run of this very identity (choose_run_dir never returns another's folder)
            (folder / METRICS).unlink(missing_ok=True)  # it described the run just replaced
        if path.is_file():
            state = check_run_state(load_checkpoint(path, expect={"meta": identity}), path, experiment.build, config.epochs)
            if not isinstance(state.get("epoch"), int) or not isinstance(state.get("history"), dict):
                raise CheckpointError(f"{path} lacks its epoch count or history; move it away or retrain")
            if state["epoch"] >= config.epochs or state.get("finished") is True:
                model = experiment.build()
                load_model_state(model, state, path)
                return TrainedModel(
                    model.to(device).eval(), History.from_dict(state["history"]), experiment, profile, path,
                    seed, identity,
                )
        torch.manual_seed(seed)
        model = experiment.build()
        train_images, test_images = load_data_for(experiment, profile)
        valid_images = load_valid_for(experiment) if config.uses_validation else None
        history = fit(
            model, train_images, config, test_images=test_images, valid_images=valid_images, checkpoint=path,
            meta=identity, device=device, progress=progress, compile=profile.compile,
        )
    return TrainedModel(model.eval(), history, experiment, profile, path, seed, identity)


def with_epochs(profile: Profile, epochs: int) -> Profile:
    """A copy of a profile with another epoch count (for studies of longer training)."""
    return replace(profile, name=f"{profile.name}-e{epochs}", epochs=epochs)


def with_train_subset(profile: Profile, n_images: int) -> Profile:
    """A copy of a profile that trains on the first `n_images` training images (its own cache)."""
    if n_images <= 0:
        raise ValueError(f"n_images must be positive, got {n_images}")
    return replace(profile, name=f"{profile.name}-n{n_images}", train_subset=n_images)


CHAPTER_6_CPU_IMAGES = 25_000  # training images of chapter 6's models under the cpu profile


def chapter_6_profile(profile: Profile) -> Profile:
    """The budget chapter 6 ("Beyond the mixture prior") trains its nine models under.

    They are up to three times as slow per epoch as a VAE, so under `cpu` they train on the
    first 25,000 training images (half the set), which keeps a cold cpu build of the whole
    book under 20 minutes on two cores; every other profile is returned unchanged.
    """
    return with_train_subset(profile, CHAPTER_6_CPU_IMAGES) if profile.name == "cpu" else profile
