"""The committed reference runs still load into today's code and give their recorded numbers."""

import json
import math

import pytest
import torch

from vaelib import reference
from vaelib.data import load_dataset
from vaelib.experiments import PROFILES, get_experiment
from vaelib.trained import get_or_train
from vaelib.train import TEST_CURVE_EVERY, EarlyStopping, History, StoppingPoint

NAMES = reference.available("full")
# Every committed run, of every profile: the original protocol's and the Tomczak & Welling rows.
RUNS = [(profile, name) for profile in reference.profiles() for name in reference.available(profile)]
# What ships inside the package per profile (the `full` weights included; the tw weights do not ship).
PACKAGE_LIMIT_MB = {"full": 25, "tw": 4}  # tw: ~0.3 MB a row (history, two per-image files)
REPOSITORY_WEIGHTS_LIMIT_MB = 40  # the tw weights kept in the repository: ~5 MB a row


def test_the_reference_set_is_there_and_small():
    assert {"vae-z10", "mog-z10-m1000"} <= set(NAMES), f"reference runs found: {NAMES}"
    assert set(reference.profiles()) <= set(PACKAGE_LIMIT_MB), reference.profiles()
    for profile in reference.profiles():
        folder = reference.REFERENCE_ROOT / profile
        total = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        limit = PACKAGE_LIMIT_MB[profile]
        assert total < limit * 2**20, f"{folder} holds {total / 2**20:.1f} MB; keep it under {limit} MB"
    outside = sum(p.stat().st_size for p in reference.REPOSITORY_WEIGHTS_ROOT.rglob("*.pt"))
    assert outside < REPOSITORY_WEIGHTS_LIMIT_MB * 2**20, f"{outside / 2**20:.1f} MB of weights outside the package"


def test_only_the_full_profile_ships_weights_in_the_package():
    shipped = {p.parent.parent.name for p in reference.REFERENCE_ROOT.rglob(reference.WEIGHTS)}
    assert shipped <= set(reference.PACKAGED_WEIGHTS), f"weights.pt inside the package for {shipped}"
    for name in reference.available("tw"):
        assert reference.weights_path(name, "tw").is_relative_to(reference.REPOSITORY_WEIGHTS_ROOT)


def test_a_record_without_its_weights_says_where_they_live(tmp_path, monkeypatch):
    """A pip-installed vaelib has the tw records (metrics, per-image estimates) but not the weights."""
    monkeypatch.setattr(reference, "REPOSITORY_WEIGHTS_ROOT", tmp_path / "not-a-clone")
    recorded = [p.parent.name for p in (reference.REFERENCE_ROOT / "tw").glob("*/metrics.json")]
    assert recorded, "no tw record in the package"
    assert reference.available("tw") == []
    with pytest.raises(reference.ReferenceRunError, match="weights live in a clone of the repository"):
        reference.load_run(recorded[0], "tw")


@pytest.fixture(scope="module")
def test_images():
    """The classic test images of a data set, loaded once per data set (MNIST, Fashion-MNIST)."""
    loaded = {}

    def images(dataset: str):
        if dataset not in loaded:
            loaded[dataset] = load_dataset(dataset, split="classic").test.images
        return loaded[dataset]

    return images


@pytest.mark.parametrize("profile,name", RUNS)
def test_reference_weights_reproduce_their_recorded_elbo(profile, name, test_images):
    run = get_or_train(name, profile, device="cpu", progress=False)
    assert run.checkpoint == reference.weights_path(name, profile)  # loaded, not trained
    recorded = reference.read_reference_metrics(name, profile)
    check = recorded["reference_check"]
    assert check["images"] == reference.CHECK_IMAGES
    now = reference.check_elbo(run.model, test_images(run.experiment.dataset))
    assert abs(now - check["test_neg_elbo"]) < 0.05, f"{name}: {now:.3f} now, {check['test_neg_elbo']:.3f} recorded"
    # The recorded evaluation is complete and consistent with the protocol.
    assert recorded["iw_samples"] == 5000 and recorded["iw_images"] == 10_000
    assert recorded["test_nll"] <= recorded["test_neg_elbo"]
    config = run.config
    if config.early_stopping_patience is None:
        assert run.history.epoch[-1] == PROFILES[profile].epochs
    else:  # a finished early-stopped run: its stopping rule, replayed, ends where training ended
        stop = run.history.stopping_point()
        stopper = EarlyStopping(config.early_stopping_patience, config.kl_warmup_epochs)
        for epoch, valid in zip(run.history.epoch, run.history.valid_neg_elbo):
            assert not stopper.stopped, f"{name}: trained on after the stopping rule fired"
            stopper.update(epoch, valid)
        assert stopper.stopped or stop.last == config.epochs
        assert stopper.best_epoch == stop.best
        # The weights kept are the best epoch's: its test -ELBO (other noise draws) is the recorded one.
        # Under early stopping the test curve is scored every TEST_CURVE_EVERY epochs: take the
        # scored epoch nearest the best one (within that many epochs; the curve moves < 0.1 nat there).
        scored = [(abs(e - stop.best), v) for e, v in zip(run.history.epoch, run.history.test_neg_elbo)
                  if not math.isnan(v) and abs(e - stop.best) <= TEST_CURVE_EVERY]
        assert scored, f"{name}: no test -ELBO recorded within {TEST_CURVE_EVERY} epochs of the best epoch"
        at_best = min(scored)[1]
        assert abs(recorded["test_neg_elbo"] - at_best) < 0.2, (recorded["test_neg_elbo"], at_best)


@pytest.mark.parametrize("profile,name", RUNS)
def test_provenance_is_recorded_beside_the_weights(profile, name):
    prov = json.loads((reference.reference_dir(name, profile) / "provenance.json").read_text())
    for key in ("train_command", "evaluate_command", "commit", "device", "torch", "python", "exported"):
        assert prov.get(key), f"{name}: provenance lacks {key}"
    assert prov["profile"] == profile
    assert prov["identity"] == get_experiment(name).identity(PROFILES[profile], 0)


def test_a_reference_of_another_identity_is_not_used(tmp_path, monkeypatch):
    """A reference run whose identity differs (say, after a CODE_VERSION bump) is ignored, with a warning."""
    name = NAMES[0]
    fake_root = tmp_path / "ref"
    target = fake_root / "full" / name
    target.mkdir(parents=True)
    state = torch.load(reference.reference_dir(name) / reference.WEIGHTS, weights_only=True)
    state["meta"] = {**state["meta"], "code_version": -1}
    torch.save(state, target / reference.WEIGHTS)
    monkeypatch.setattr(reference, "REFERENCE_ROOT", fake_root)
    exp = get_experiment(name)
    with pytest.warns(UserWarning, match="not using the reference run.*code_version"):
        found = reference.load_reference(exp, PROFILES["full"], 0, exp.identity(PROFILES["full"], 0))
    assert found is None
    assert reference.load_reference(exp, PROFILES["full"], 1, exp.identity(PROFILES["full"], 1)) is None


def test_the_stopping_point_is_the_first_lowest_validation_epoch():
    history = History(epoch=[1, 2, 3, 4, 5, 6], valid_neg_elbo=[9.0, 7.0, 6.5, 6.5, 6.8, 7.1])
    assert history.stopping_point() == StoppingPoint(best=3, last=6, best_valid_neg_elbo=6.5)
    with pytest.raises(ValueError, match="no validation ELBO"):
        History(epoch=[1, 2], valid_neg_elbo=[float("nan")] * 2).stopping_point()
