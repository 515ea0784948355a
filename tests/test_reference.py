"""The committed reference runs still load into today's code and give their recorded numbers."""

import json

import pytest
import torch

from vaelib import reference
from vaelib.data import load_dataset
from vaelib.experiments import PROFILES, get_experiment, get_or_train

NAMES = reference.available("full")


def test_the_reference_set_is_there_and_small():
    assert {"vae-z10", "mog-z10-m1000"} <= set(NAMES), f"reference runs found: {NAMES}"
    total = sum(p.stat().st_size for p in reference.REFERENCE_ROOT.rglob("*") if p.is_file())
    assert total < 25 * 2**20, f"the reference set is {total / 2**20:.1f} MB; keep it under 25 MB"


@pytest.fixture(scope="module")
def test_images():
    return load_dataset("mnist", split="classic").test.images


@pytest.mark.parametrize("name", NAMES)
def test_reference_weights_reproduce_their_recorded_elbo(name, test_images):
    run = get_or_train(name, "full", device="cpu", progress=False)
    assert run.checkpoint == reference.reference_dir(name) / reference.WEIGHTS  # loaded, not trained
    recorded = reference.read_reference_metrics(name)
    check = recorded["reference_check"]
    assert check["images"] == reference.CHECK_IMAGES
    now = reference.check_elbo(run.model, test_images)
    assert abs(now - check["test_neg_elbo"]) < 0.05, f"{name}: {now:.3f} now, {check['test_neg_elbo']:.3f} recorded"
    # The recorded evaluation is complete and consistent with the protocol.
    assert recorded["iw_samples"] == 5000 and recorded["iw_images"] == 10_000
    assert recorded["test_nll"] <= recorded["test_neg_elbo"]
    assert run.history.epoch[-1] == PROFILES["full"].epochs == 400


@pytest.mark.parametrize("name", NAMES)
def test_provenance_is_recorded_beside_the_weights(name):
    prov = json.loads((reference.reference_dir(name) / "provenance.json").read_text())
    for key in ("train_command", "evaluate_command", "commit", "device", "torch", "python", "exported"):
        assert prov.get(key), f"{name}: provenance lacks {key}"
    assert prov["identity"] == get_experiment(name).identity(PROFILES["full"], 0)


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
