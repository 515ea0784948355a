"""Named experiments, profiles, the run cache and the command line."""

import json

import pytest
import torch

from vaelib import __main__ as cli
from vaelib.experiments import (EXPERIMENTS, MODEL_BUILDERS, PROFILES, chapter_6_profile, get_experiment, get_or_train,
                                resolve_profile, run_dir, with_epochs, with_train_subset)
from vaelib.mixture_posterior import MixturePosteriorVAE
from vaelib.priors import FactorizedMixture, GaussianMixture, StandardNormal, VampPrior


def test_every_original_model_is_named():
    for z in (2, 10):
        assert isinstance(get_experiment(f"vae-z{z}").build().prior, StandardNormal)
        for m in (10, 1000):
            mog = get_experiment(f"mog-z{z}-m{m}").build().prior
            assert isinstance(mog, GaussianMixture) and mog.n_components == m and mog.latent_dim == z
            assert isinstance(get_experiment(f"fmog-z{z}-m{m}").build().prior, FactorizedMixture)


def test_the_registry_says_what_every_name_builds():
    assert {e.kind for e in EXPERIMENTS.values()} == set(MODEL_BUILDERS)  # no unused or missing builder
    both = get_experiment("both-z10-c5-m1000").build()
    assert isinstance(both, MixturePosteriorVAE) and both.encoder.n_components == 5
    assert isinstance(both.prior, GaussianMixture) and both.prior.n_components == 1000
    post = get_experiment("mogpost-z10-c5").build()
    assert isinstance(post, MixturePosteriorVAE) and isinstance(post.prior, StandardNormal)
    assert isinstance(get_experiment("vamp-z10-k500").build().prior, VampPrior)


def test_chapter_6_halves_the_training_set_only_under_cpu():
    cpu = chapter_6_profile(PROFILES["cpu"])
    assert (cpu.name, cpu.train_subset, cpu.epochs) == ("cpu-n25000", 25_000, PROFILES["cpu"].epochs)
    assert chapter_6_profile(PROFILES["smoke"]) is PROFILES["smoke"]
    assert chapter_6_profile(PROFILES["full"]) is PROFILES["full"]


def test_unknown_names_are_refused_with_the_known_ones():
    with pytest.raises(ValueError, match="unknown experiment 'vae-z3'.*vae-z10"):
        get_experiment("vae-z3")
    with pytest.raises(ValueError, match="unknown profile 'fast'; choose one of smoke, cpu, full"):
        resolve_profile("fast")


def test_profile_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("VAELIB_PROFILE", "smoke")
    assert resolve_profile().name == "smoke"
    monkeypatch.delenv("VAELIB_PROFILE")
    assert resolve_profile().name == ("full" if torch.cuda.is_available() else "cpu")
    assert PROFILES["full"].epochs == 400


def test_budget_variants_of_a_profile_get_their_own_cache(runs):
    cpu = PROFILES["cpu"]
    half, short = with_train_subset(cpu, 25_000), with_epochs(cpu, 5)
    assert (half.train_subset, half.epochs) == (25_000, cpu.epochs)
    assert (short.epochs, short.train_subset) == (5, cpu.train_subset)
    dirs = {run_dir("vae-z10", p) for p in (cpu, half, short)}
    assert len(dirs) == 3
    with pytest.raises(ValueError, match="n_images must be positive"):
        with_train_subset(cpu, 0)


@pytest.fixture()
def runs(tmp_path, monkeypatch):
    monkeypatch.setenv("VAELIB_CACHE", str(tmp_path / "runs"))
    return tmp_path / "runs"


def test_get_or_train_trains_once_then_loads(runs):
    first = get_or_train("vae-z2", "smoke", progress=False)
    assert first.checkpoint == runs / "smoke" / "vae-z2" / "checkpoint.pt"
    assert first.history.train_loss[-1] < first.history.train_loss[0]
    stamp = first.checkpoint.stat().st_mtime_ns
    second = get_or_train("vae-z2", "smoke", progress=False)
    assert second.checkpoint.stat().st_mtime_ns == stamp
    for a, b in zip(first.model.state_dict().values(), second.model.state_dict().values()):
        torch.testing.assert_close(a, b)


def test_a_checkpoint_of_another_model_is_not_reused(runs):
    get_or_train("vae-z2", "smoke", progress=False)
    target = runs / "smoke" / "mog-z2-m10" / "checkpoint.pt"
    target.parent.mkdir(parents=True)
    target.write_bytes((runs / "smoke" / "vae-z2" / "checkpoint.pt").read_bytes())
    with pytest.warns(UserWarning, match="different meta"):
        run = get_or_train("mog-z2-m10", "smoke", progress=False)
    assert isinstance(run.model.prior, GaussianMixture)


def test_cli_list_train_evaluate_sample(runs, tmp_path, capsys):
    assert cli.main(["list"]) == 0
    listing = capsys.readouterr().out
    assert all(name in listing for name in EXPERIMENTS)
    out = tmp_path / "out"
    assert cli.main(["train", "vae-z2", "--profile", "smoke", "--out", str(out), "--device", "cpu"]) == 0
    assert (out / "vae-z2" / "checkpoint.pt").is_file()
    capsys.readouterr()
    assert cli.main(["evaluate", "vae-z2", "--profile", "smoke", "--out", str(out), "--iw-samples", "8", "--quiet"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert {"test_neg_elbo", "test_kl", "test_nll"} <= set(metrics)
    assert metrics["test_nll"] <= metrics["test_neg_elbo"] + 1.0  # the IW bound is at least as tight, up to noise
    saved = json.loads((out / "vae-z2" / "metrics.json").read_text())
    assert saved["test_nll"] == metrics["test_nll"] and "train_loss" in saved
    png = tmp_path / "s.png"
    assert cli.main(["sample", "vae-z2", "--profile", "smoke", "--out", str(out), "--n", "16", "--png", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "argv,message",
    [
        (["train", "nope"], "unknown experiment 'nope'"),
        (["evaluate", "vae-z2", "--iw-samples", "0"], "--iw-samples must be positive"),
        (["sample", "vae-z2", "--n", "-1"], "--n must be positive"),
    ],
)
def test_cli_bad_arguments_give_one_clear_line(argv, message, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_cli_truncated_checkpoint_is_reported(runs, tmp_path, capsys):
    out = tmp_path / "out"
    path = out / "vae-z2" / "checkpoint.pt"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.warns(UserWarning, match="truncated, corrupt"):
        assert cli.main(["train", "vae-z2", "--profile", "smoke", "--out", str(out)]) == 0
    assert path.stat().st_size > 1000
