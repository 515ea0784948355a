"""Named experiments, profiles, the run cache and the command line.

Runs are never lost: a run folder per experiment, profile and seed; a checkpoint of another
identity is kept and the new run goes beside it; seeds are checked before anything is touched;
two processes can train two seeds at once; metrics.json always describes one run.
"""

import dataclasses
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from vaelib import __main__ as cli
from vaelib.checkpoint import load_checkpoint
from vaelib.experiments import (EXPERIMENTS, MODEL_BUILDERS, PROFILES, chapter_6_profile, get_experiment, resolve_profile,
                                with_epochs, with_train_subset)
from vaelib.mixture_posterior import MixturePosteriorVAE
from vaelib.priors import FactorizedMixture, GaussianMixture, StandardNormal, VampPrior
from vaelib.runs import identity_key, read_metrics, update_metrics
from vaelib.settings import cache_root
from vaelib.trained import get_or_train, run_dir

REPO = str(Path(__file__).resolve().parents[1])


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
    with pytest.raises(ValueError, match="n_images must be a positive integer, got 0"):
        with_train_subset(cpu, 0)


@pytest.fixture()
def runs(tmp_path, monkeypatch):
    monkeypatch.setenv("VAELIB_CACHE", str(tmp_path / "runs"))
    return tmp_path / "runs"


def test_get_or_train_trains_once_then_loads(runs):
    first = get_or_train("vae-z2", "smoke", progress=False)
    assert first.checkpoint == runs / "smoke" / "vae-z2" / "seed-0" / "checkpoint.pt"
    assert first.history.train_loss[-1] < first.history.train_loss[0]
    stamp = first.checkpoint.stat().st_mtime_ns
    second = get_or_train("vae-z2", "smoke", progress=False)
    assert second.checkpoint.stat().st_mtime_ns == stamp
    for a, b in zip(first.model.state_dict().values(), second.model.state_dict().values()):
        torch.testing.assert_close(a, b)


def test_a_checkpoint_of_another_model_is_kept_and_the_new_run_goes_beside_it(runs):
    get_or_train("vae-z2", "smoke", progress=False)
    foreign = (runs / "smoke" / "vae-z2" / "seed-0" / "checkpoint.pt").read_bytes()
    target = runs / "smoke" / "mog-z2-m10" / "seed-0" / "checkpoint.pt"
    target.parent.mkdir(parents=True)
    target.write_bytes(foreign)
    with pytest.warns(UserWarning, match="holds a run of another identity.*kept as it is"):
        run = get_or_train("mog-z2-m10", "smoke", progress=False)
    assert isinstance(run.model.prior, GaussianMixture)
    assert target.read_bytes() == foreign  # never deleted, never overwritten
    assert run.checkpoint.parent.name == f"seed-0-{identity_key(run.identity)}"
    assert run.checkpoint.parent.parent == target.parent.parent
    again = get_or_train("mog-z2-m10", "smoke", progress=False)  # found beside it, not retrained
    assert again.checkpoint == run.checkpoint


def test_editing_a_description_or_an_evaluation_budget_keeps_the_cached_run(runs, monkeypatch):
    first = get_or_train("vae-z2", "smoke", progress=False)
    stamp = first.checkpoint.stat().st_mtime_ns
    edited = dataclasses.replace(EXPERIMENTS["vae-z2"], description="a new description")
    monkeypatch.setitem(EXPERIMENTS, "vae-z2", edited)
    budget = dataclasses.replace(PROFILES["smoke"], description="other words", iw_samples=7, iw_images=3, test_subset=50)
    run = get_or_train("vae-z2", budget, progress=False)
    assert run.checkpoint == first.checkpoint and run.checkpoint.stat().st_mtime_ns == stamp
    # what does change the weights gets its own run, beside the cached one
    with pytest.warns(UserWarning, match="another identity"):
        longer = get_or_train("vae-z2", dataclasses.replace(PROFILES["smoke"], epochs=1), progress=False)
    assert longer.checkpoint != first.checkpoint and first.checkpoint.stat().st_mtime_ns == stamp


def test_retrain_replaces_only_its_own_run_and_resets_its_metrics(runs):
    seed0 = get_or_train("vae-z2", "smoke", progress=False)
    seed1 = get_or_train("vae-z2", "smoke", seed=1, progress=False)
    update_metrics(seed0.checkpoint.parent, seed0.run_record, {"test_nll": 123.0})
    update_metrics(seed1.checkpoint.parent, seed1.run_record, {"test_nll": 456.0})
    bytes1 = seed1.checkpoint.read_bytes()
    get_or_train("vae-z2", "smoke", progress=False, retrain=True)
    assert seed1.checkpoint.read_bytes() == bytes1
    assert read_metrics(seed1.checkpoint.parent / "metrics.json")["test_nll"] == 456.0
    assert "test_nll" not in read_metrics(seed0.checkpoint.parent / "metrics.json")  # it described the old weights


def test_metrics_json_always_describes_one_run(tmp_path):
    folder = tmp_path / "run"
    a = {"name": "vae-z2", "profile": "smoke", "seed": 0, "identity_key": "aaaa"}
    b = dict(a, identity_key="bbbb")
    update_metrics(folder, a, {"test_nll": 90.0, "train_loss": 100.0})
    update_metrics(folder, a, {"test_kl": 5.0})
    assert read_metrics(folder / "metrics.json") == {"test_nll": 90.0, "train_loss": 100.0, "test_kl": 5.0, "run": a}
    update_metrics(folder, b, {"train_loss": 80.0})  # another run: nothing of the first is kept
    assert read_metrics(folder / "metrics.json") == {"train_loss": 80.0, "run": b}
    update_metrics(folder, b, {"test_nll_stderr": math.nan, "x": [math.inf, 1.0]})  # JSON has no NaN: null
    saved = json.loads((folder / "metrics.json").read_text())
    assert saved["test_nll_stderr"] is None and saved["x"] == [None, 1.0]


def test_cli_list_train_evaluate_sample(runs, tmp_path, capsys):
    assert cli.main(["list"]) == 0
    listing = capsys.readouterr().out
    assert all(name in listing for name in EXPERIMENTS)
    out = tmp_path / "out"
    assert cli.main(["train", "vae-z2", "--profile", "smoke", "--out", str(out), "--device", "cpu"]) == 0
    assert (out / "vae-z2" / "seed-0" / "checkpoint.pt").is_file()
    capsys.readouterr()
    assert cli.main(["evaluate", "vae-z2", "--profile", "smoke", "--out", str(out), "--iw-samples", "8", "--quiet"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert {"test_neg_elbo", "test_kl", "test_nll"} <= set(metrics)
    assert metrics["test_nll"] <= metrics["test_neg_elbo"] + 1.0  # the IW bound is at least as tight, up to noise
    saved = json.loads((out / "vae-z2" / "seed-0" / "metrics.json").read_text())
    assert saved["test_nll"] == metrics["test_nll"] and "train_loss" in saved
    png = tmp_path / "s.png"
    assert cli.main(["sample", "vae-z2", "--profile", "smoke", "--out", str(out), "--n", "16", "--png", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert capsys.readouterr().out.strip() == str(png)


@pytest.fixture(scope="module")
def trained_out(tmp_path_factory):
    """A runs folder (--out) with vae-z2 trained under smoke, seed 0, once for the CLI tests below."""
    out = tmp_path_factory.mktemp("cli-runs")
    assert cli.main(["train", "vae-z2", "--profile", "smoke", "--out", str(out), "--device", "cpu"]) == 0
    return out


def snapshot(folder):
    """Every file under `folder` with its bytes: to show that a command left it exactly as it was."""
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file() and p.name != ".lock"}


def test_sample_seeds_reseed_the_samples_and_never_the_model(trained_out, tmp_path, capsys):
    before = snapshot(trained_out)
    args = ["sample", "vae-z2", "--profile", "smoke", "--out", str(trained_out), "--n", "9"]
    with pytest.raises(SystemExit) as exit_info:
        cli.main(args + ["--seed", "-5"])
    assert exit_info.value.code == 2 and "--seed" in capsys.readouterr().err
    pngs = [tmp_path / f"{i}.png" for i in range(3)]
    for png, seed in zip(pngs, ["7", "7", "8"]):
        assert cli.main(args + ["--seed", seed, "--png", str(png)]) == 0
    assert snapshot(trained_out) == before  # no retraining, no rewriting
    assert pngs[0].read_bytes() == pngs[1].read_bytes() != pngs[2].read_bytes()


def test_evaluate_of_another_seed_leaves_seed_0_intact(trained_out, capsys):
    seed0 = snapshot(trained_out / "vae-z2" / "seed-0")
    args = ["evaluate", "vae-z2", "--profile", "smoke", "--out", str(trained_out), "--iw-samples", "4", "--quiet"]
    assert cli.main(args + ["--seed", "1"]) == 0
    assert snapshot(trained_out / "vae-z2" / "seed-0") == seed0
    seed1 = json.loads((trained_out / "vae-z2" / "seed-1" / "metrics.json").read_text())
    assert seed1["run"]["seed"] == 1 and "test_nll" in seed1
    assert json.loads(capsys.readouterr().out)["run"]["seed"] == 1


@pytest.mark.parametrize("seed", ["-1", str(2**70), "1.5", "x"])
def test_bad_training_seeds_are_refused_before_anything_is_touched(seed, tmp_path, capsys):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", "vae-z2", "--profile", "smoke", "--out", str(out), "--seed", seed])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.startswith("error: argument --seed") and err.count("\n") == 1
    assert not out.exists()


def test_two_processes_train_two_seeds_on_one_cache_at_once(tmp_path):
    env = dict(os.environ, VAELIB_CACHE=str(tmp_path / "cache"), VAELIB_PROFILE="smoke", PYTHONPATH=REPO)
    procs = [
        subprocess.Popen([sys.executable, "-m", "vaelib", "train", "vae-z2", "--device", "cpu", "--seed", str(seed)],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for seed in (0, 1)
    ]
    results = [p.communicate(timeout=600) for p in procs]
    for seed, proc, (out, err) in zip((0, 1), procs, results):
        assert proc.returncode == 0, err
        assert json.loads(out)["run"]["seed"] == seed
        folder = tmp_path / "cache" / "smoke" / "vae-z2" / f"seed-{seed}"
        assert load_checkpoint(folder / "checkpoint.pt")["epoch"] == PROFILES["smoke"].epochs
        assert read_metrics(folder / "metrics.json")["run"]["seed"] == seed
    a, b = (load_checkpoint(tmp_path / "cache" / "smoke" / "vae-z2" / f"seed-{s}" / "checkpoint.pt") for s in (0, 1))
    assert not torch.equal(a["model"]["decoder.out.weight"], b["model"]["decoder.out.weight"])


@pytest.mark.parametrize(
    "argv,message",
    [
        (["train", "nope"], "unknown experiment 'nope'"),
        (["train", "vae-z2", "--device", "meta"], "device 'meta' cannot train or run these models; use cpu or cuda"),
        (["train", "vae-z2", "--device", "mps"], "device 'mps' (Apple GPU) was asked for"),
        (["train", "vae-z2", "--device", "nonsense"], "invalid device 'nonsense'; use cpu or cuda"),
    ],
)
def test_cli_bad_arguments_give_one_clear_line(argv, message, capsys, runs):
    if "mps" in argv and getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        pytest.skip("this machine has an Apple GPU")
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err == f"error: {err[7:]}" and message in err and err.count("\n") == 1
    assert not runs.exists()  # refused before anything was made


@pytest.mark.parametrize(
    "argv,message",
    [
        (["evaluate", "vae-z2", "--iw-samples", "0"], "argument --iw-samples: must be a positive integer, got 0"),
        (["evaluate", "vae-z2", "--images", "0"], "argument --images: must be a positive integer, got 0"),
        (["evaluate", "vae-z2", "--images", "-9990"], "argument --images: must be a positive integer"),
        (["sample", "vae-z2", "--n", "-1"], "argument --n: must be a positive integer, got -1"),
        (["sample", "vae-z2", "--model-seed", "-1"], "argument --model-seed: must be an integer in [0, 2**63)"),
    ],
)
def test_cli_bad_numbers_are_refused_by_the_parser(argv, message, capsys, runs):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and message in err and err.count("\n") == 1
    assert not runs.exists()


def test_evaluate_of_one_image_writes_null_for_its_undefined_standard_error(trained_out, capsys):
    args = ["evaluate", "vae-z2", "--profile", "smoke", "--out", str(trained_out), "--iw-samples", "4", "--images", "1"]
    assert cli.main(args + ["--quiet"]) == 0
    printed = json.loads(capsys.readouterr().out)
    saved = json.loads((trained_out / "vae-z2" / "seed-0" / "metrics.json").read_text())  # strict JSON: no NaN
    assert printed["iw_images"] == saved["iw_images"] == 1
    assert printed["test_nll_stderr"] is None and saved["test_nll_stderr"] is None
    assert math.isfinite(saved["test_nll"])


def test_cli_truncated_checkpoint_is_kept_and_the_run_goes_beside_it(runs, tmp_path, capsys):
    out = tmp_path / "out"
    path = out / "vae-z2" / "seed-0" / "checkpoint.pt"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"PK\x03\x04 not really a zip")
    assert cli.main(["train", "vae-z2", "--profile", "smoke", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert f"warning: {path.parent} holds an unreadable checkpoint; it is kept as it is" in err
    assert path.read_bytes() == b"PK\x03\x04 not really a zip"
    beside = list((out / "vae-z2").glob("seed-0-*/checkpoint.pt"))
    assert len(beside) == 1 and beside[0].stat().st_size > 1000


def test_cache_root_expands_the_home_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("VAELIB_CACHE", "~/vaelib-runs")
    assert cache_root() == tmp_path / "vaelib-runs"
    assert run_dir("vae-z2", PROFILES["smoke"]) == tmp_path / "vaelib-runs" / "smoke" / "vae-z2" / "seed-0"
