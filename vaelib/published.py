"""Published log-likelihoods and the committed runs of Tomczak & Welling's protocol beside them.

Chapter 5 (MNIST) and chapter 6 (Fashion-MNIST) tabulate every committed `tw` reference run on
both test binarisations (ours and the seed-777 draw of their code) next to the values
Norouzi, Fleet & Norouzi (2020) publish, and compare the prior gains paired per image.
Everything here reads the runs' files (metrics, provenance, history, per-image estimates),
never their weights.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from torch import Tensor

from .checkpoint import load_checkpoint
from .evaluate import Interval, paired_difference
from .reference import describe_provenance, load_per_image_log_px, read_reference_metrics, reference_dir
from .train import History


# -- published values and the committed Tomczak & Welling-protocol runs -------------------------

@dataclass(frozen=True)
class PublishedNLL:
    """A test NLL (nats) as a paper reports it, with the data it was measured on."""

    source: str  # bibliography key
    dataset: str  # "mnist" | "fashion-mnist"
    binarisation: str  # how the test images were binarised
    kind: str  # the prior, as an experiment kind: "vae" (Gaussian), "mog", "vamp"
    model: str
    nll: float
    spread: float  # the "±" the paper prints beside it


# Norouzi, Fleet & Norouzi (2020), Exemplar VAE, their comparison on dynamically binarised data:
# one stochastic layer, gated 300-300 networks, z = 40, trained with a fork of the VampPrior code
# and its defaults, k = 5000 on the test images binarised once (np.random.seed(777)).
PUBLISHED_TW = (
    PublishedNLL("norouzi2020exemplar", "mnist", "dynamic MNIST (test set binarised once, seed 777)",
                 "vae", "VAE, Gaussian prior", 84.45, 0.12),
    PublishedNLL("norouzi2020exemplar", "mnist", "dynamic MNIST (test set binarised once, seed 777)",
                 "vamp", "VAE, VampPrior", 82.43, 0.06),
    PublishedNLL("norouzi2020exemplar", "fashion-mnist",
                 "dynamic Fashion-MNIST (test set binarised once, seed 777)",
                 "vae", "VAE, Gaussian prior", 228.70, 0.15),
    PublishedNLL("norouzi2020exemplar", "fashion-mnist",
                 "dynamic Fashion-MNIST (test set binarised once, seed 777)",
                 "vamp", "VAE, VampPrior", 227.35, 0.05),
)

PRIOR_NAMES = {"vae": "Gaussian", "mog": "mixture of Gaussians", "vamp": "VampPrior",
               "fmog": "factorised mixture"}
THEIR_BINARISATION_FILE = "iw_log_px_theirs.pt"  # per-image log p(x) on their test binarisation


@dataclass
class CommittedRun:
    """A committed reference run read from its files only (no weights): what 5.6 and 6 tabulate."""

    name: str
    dataset: str
    kind: str  # the experiment kind of its prior: "vae", "mog", "vamp", ...
    metrics: dict
    log_px: Tensor | None  # per-image log p(x) on our binarisation (iw_log_px.pt)
    log_px_theirs: Tensor | None = None  # on their seed-777 binarisation, where it was scored
    history: History | None = None
    provenance: dict | None = None

    def describe(self, width: int = 78) -> str:
        """Where the run came from (commands, commit, device, date), wrapped to fit an output box."""
        return describe_provenance(self.name, self.provenance or {}, width)

    @property
    def prior(self) -> str:
        return PRIOR_NAMES.get(self.kind, self.kind)

    @property
    def nll(self) -> Interval:
        return Interval(self.metrics["test_nll"], self.metrics["test_nll_stderr"])

    @property
    def nll_theirs(self) -> Interval | None:
        """The NLL on the test binarisation of their code, if this run has been scored on it."""
        value = self.metrics.get("test_nll_theirs")
        if value is None:
            return None
        return Interval(value, self.metrics.get("test_nll_theirs_se", math.nan))


def _read_history_csv(path: Path) -> History | None:
    if not path.is_file():
        return None
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    columns = {name: [float(row[name]) for row in rows] for name in (rows[0] if rows else {})}
    if "epoch" in columns:
        columns["epoch"] = [int(e) for e in columns["epoch"]]
    return History.from_dict(columns)


def committed_runs(profile_name: str = "tw", dataset: str | None = None) -> dict[str, CommittedRun]:
    """Every committed reference run under `profile_name` (of `dataset`, if given), by name.

    Read from metrics.json, provenance.json, history.csv and the per-image estimates, through
    `vaelib.reference`; the weights are not needed (and need not be there).
    """
    root = reference_dir("-", profile_name).parent
    runs = {}
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        if not (folder / "metrics.json").is_file():
            continue
        name = folder.name
        provenance = json.loads((folder / "provenance.json").read_text()) if (folder / "provenance.json").is_file() else {}
        identity = provenance.get("identity", {})
        run_dataset = identity.get("data", {}).get("dataset", "mnist")
        if dataset is not None and run_dataset != dataset:
            continue
        kind = identity.get("architecture", {}).get("kind", "vae")
        log_px = load_per_image_log_px(name, profile_name) if (folder / "iw_log_px.pt").is_file() else None
        theirs = folder / THEIR_BINARISATION_FILE
        log_px_theirs = load_checkpoint(theirs)["log_px"] if theirs.is_file() else None
        runs[name] = CommittedRun(name, run_dataset, kind, read_reference_metrics(name, profile_name), log_px,
                                  log_px_theirs, _read_history_csv(folder / "history.csv"), provenance)
    return runs


KIND_ORDER = ("vae", "mog", "fmog", "vamp")


def _kind_rank(kind: str) -> int:
    return KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER)


@dataclass(frozen=True)
class LevelRow:
    """One prior of the published comparison: our committed run (if any) beside the paper's value."""

    kind: str
    run: CommittedRun | None
    published: PublishedNLL | None

    @property
    def difference_ours(self) -> float | None:
        """Our NLL on our binarisation minus the published one (positive: ours is worse)."""
        if self.run is None or self.published is None:
            return None
        return self.run.nll.estimate - self.published.nll

    @property
    def difference_theirs(self) -> float | None:
        """Our NLL on their binarisation minus the published one, where it was scored."""
        if self.run is None or self.published is None or self.run.nll_theirs is None:
            return None
        return self.run.nll_theirs.estimate - self.published.nll


@dataclass(frozen=True)
class GainRow:
    """What a prior gains over a simpler one (the Gaussian prior unless `over` says otherwise),
    ours paired per image and the paper's."""

    kind: str
    run: str
    ours: Interval  # paired over the images, our binarisation
    ours_theirs: Interval | None  # paired, on their binarisation (both runs scored on it)
    published: Interval | None  # the paper's difference, its two spreads combined as independent
    over: str = "vae"  # the kind of the prior it is measured against
    unpublished: tuple[str, ...] = ()  # of the two kinds, those without a published value


def level_rows(runs: dict[str, CommittedRun], dataset: str,
               published: Sequence[PublishedNLL] = PUBLISHED_TW) -> list[LevelRow]:
    """One row per committed run of `dataset`, with the published value for its prior, and one
    per published prior that has no committed run yet; ordered Gaussian, mixture, VampPrior."""
    pub = {p.kind: p for p in published if p.dataset == dataset}
    rows = [LevelRow(r.kind, r, pub.get(r.kind)) for r in runs.values() if r.dataset == dataset]
    have = {r.kind for r in rows}
    rows += [LevelRow(kind, None, p) for kind, p in pub.items() if kind not in have]
    return sorted(rows, key=lambda row: (_kind_rank(row.kind), row.run.name if row.run else ""))


def gain_rows(runs: dict[str, CommittedRun], dataset: str,
              published: Sequence[PublishedNLL] = PUBLISHED_TW, over: str = "vae") -> list[GainRow]:
    """The gain NLL(over) - NLL(prior) of every prior of `dataset` that comes after `over` in
    KIND_ORDER (positive: the prior is better), paired per image against the committed run of
    `over`: the Gaussian prior by default, or e.g. over="mog" to set the VampPrior against the
    mixture of Gaussians."""
    ours = [r for r in runs.values() if r.dataset == dataset]
    base = next((r for r in sorted(ours, key=lambda r: r.name) if r.kind == over and r.log_px is not None), None)
    if base is None:
        return []
    pub = {p.kind: p for p in published if p.dataset == dataset}
    rows = []
    for run in sorted(ours, key=lambda r: (_kind_rank(r.kind), r.name)):
        if _kind_rank(run.kind) <= _kind_rank(over) or run.log_px is None:
            continue
        gain = Interval(*paired_difference(run.log_px, base.log_px))
        theirs = None
        if run.log_px_theirs is not None and base.log_px_theirs is not None:
            theirs = Interval(*paired_difference(run.log_px_theirs, base.log_px_theirs))
        paper = None
        if over in pub and run.kind in pub:
            paper = Interval(pub[over].nll - pub[run.kind].nll, math.hypot(pub[over].spread, pub[run.kind].spread))
        unpublished = tuple(kind for kind in (run.kind, over) if kind not in pub)
        rows.append(GainRow(run.kind, run.name, gain, theirs, paper, over, unpublished))
    return rows


def without_their_binarisation(runs: dict[str, CommittedRun], dataset: str | None = None) -> list[str]:
    """Names of the committed runs (of `dataset`) not yet scored on their test binarisation."""
    return sorted(r.name for r in runs.values()
                  if (dataset is None or r.dataset == dataset) and r.nll_theirs is None)
