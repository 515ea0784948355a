"""The statistics and the published comparison of chapters 5 and 6 (vaelib.evaluate):
Student's t quantiles, intervals, the seed summary, the committed Tomczak & Welling-protocol runs
read from their files, and the tables built from them, on small synthetic runs."""

from __future__ import annotations

import json
import math

import pytest
import torch

from vaelib import evaluate, published, reference
from vaelib import wording as say
from vaelib.checkpoint import save_checkpoint
from vaelib.published import (
    PUBLISHED_TW,
    CommittedRun,
    committed_runs,
    gain_rows,
    level_rows,
    without_their_binarisation,
)
from vaelib.evaluate import (
    Interval,
    seed_summary,
    t_cdf,
    t_quantile,
)


# -- Student's t ----------------------------------------------------------------------------------

@pytest.mark.parametrize("dof, expected", [(1, 12.7062047), (2, 4.3026527), (4, 2.7764451), (10, 2.2281389),
                                           (30, 2.0422725), (math.inf, 1.9599640)])
def test_t_quantile_matches_the_tables(dof, expected):
    assert t_quantile(0.975, dof) == pytest.approx(expected, abs=1e-6)


def test_t_cdf_and_quantile_are_inverse_and_symmetric():
    for dof in (1, 2, 3.5, 12, math.inf):
        for q in (0.6, 0.9, 0.995):
            t = t_quantile(q, dof)
            assert t_cdf(t, dof) == pytest.approx(q, abs=1e-10)
            assert t_quantile(1 - q, dof) == pytest.approx(-t, abs=1e-9)
    assert t_cdf(0.0, 2) == pytest.approx(0.5)


def test_t_cdf_with_one_dof_is_the_cauchy():
    for t in (-3.0, -0.5, 0.7, 10.0):
        assert t_cdf(t, 1) == pytest.approx(0.5 + math.atan(t) / math.pi, abs=1e-12)


@pytest.mark.parametrize("q, dof", [(0.0, 2), (1.0, 2), (0.5, 0), (0.5, -1)])
def test_t_quantile_refuses_bad_arguments(q, dof):
    with pytest.raises(ValueError):
        t_quantile(q, dof)


# -- intervals and seeds --------------------------------------------------------------------------

def test_interval_bounds_and_sign():
    iv = Interval(1.0, 0.25)
    assert iv.lo == pytest.approx(1.0 - 1.959964 * 0.25, abs=1e-6)
    assert iv.sign == 1 and Interval(-1.0, 0.25).sign == -1 and Interval(0.3, 0.25).sign == 0
    assert iv.contains(1.2) and not iv.contains(2.0)
    assert Interval(1.0, 0.25, dof=2).half_width == pytest.approx(4.302653 * 0.25, abs=1e-6)


def test_seed_summary_combines_seed_and_image_noise():
    gen = torch.Generator().manual_seed(0)
    base = torch.randn(500, generator=gen, dtype=torch.float64)  # the images' own spread
    diffs = [base + shift for shift in (0.5, 1.0, 1.5)]
    s = seed_summary(diffs)
    assert s.per_seed == pytest.approx(tuple((base.mean() + d).item() for d in (0.5, 1.0, 1.5)))
    assert s.mean == pytest.approx(base.mean().item() + 1.0)
    assert s.seed_sd == pytest.approx(0.5)
    assert s.seed_se == pytest.approx(0.5 / math.sqrt(3))
    assert s.image_se == pytest.approx(base.std().item() / math.sqrt(500))
    assert s.combined_se == pytest.approx(math.hypot(s.seed_se, s.image_se))
    assert s.interval.dof == 2
    assert s.interval.half_width == pytest.approx(4.302653 * s.combined_se, rel=1e-6)


def test_seed_summary_needs_two_seeds():
    with pytest.raises(ValueError, match="two seeds"):
        seed_summary([torch.zeros(3)])


# -- committed runs, read from files alone ---------------------------------------------------------

def _write_run(root, name, dataset, kind, nll, log_px, theirs=None):
    folder = root / "tw" / name
    folder.mkdir(parents=True)
    metrics = {"test_nll": nll, "test_nll_stderr": 0.2}
    if theirs is not None:
        metrics.update(test_nll_theirs=nll + 0.1, test_nll_theirs_se=0.21)
        save_checkpoint(folder / published.THEIR_BINARISATION_FILE, {"log_px": theirs})
    (folder / "metrics.json").write_text(json.dumps(metrics))
    identity = {"architecture": {"kind": kind}, "data": {"dataset": dataset}}
    (folder / "provenance.json").write_text(json.dumps({"identity": identity, "train_command": "cmd",
                                                        "commit": "abcdef0123456", "exported": "2026-12-04T00"}))
    save_checkpoint(folder / reference.PER_IMAGE_FILE, {"log_px": log_px})
    (folder / "history.csv").write_text("epoch,lr,valid_neg_elbo\n1,0.1,90.0\n2,0.1,89.5\n")


@pytest.fixture
def fake_root(tmp_path, monkeypatch):
    monkeypatch.setattr(reference, "REFERENCE_ROOT", tmp_path)
    gen = torch.Generator().manual_seed(1)
    base = -85.0 + torch.randn(50, generator=gen, dtype=torch.float64)
    _write_run(tmp_path, "tw-standard-z40", "mnist", "vae", 84.7, base, theirs=base - 0.1)
    _write_run(tmp_path, "tw-mog-z40-m500", "mnist", "mog", 82.8, base + 1.9)
    _write_run(tmp_path, "tw-vamp-z40-k500", "mnist", "vamp", 82.5, base + 2.2, theirs=base + 2.0)
    _write_run(tmp_path, "tw-fashion-standard-z40", "fashion-mnist", "vae", 229.0, base - 140)
    return tmp_path, base


def test_committed_runs_read_metrics_history_and_per_image_files_without_weights(fake_root):
    runs = committed_runs("tw")
    assert sorted(runs) == ["tw-fashion-standard-z40", "tw-mog-z40-m500", "tw-standard-z40", "tw-vamp-z40-k500"]
    std = runs["tw-standard-z40"]
    assert (std.dataset, std.kind, std.prior) == ("mnist", "vae", "Gaussian")
    assert std.nll.estimate == 84.7 and std.nll_theirs.estimate == pytest.approx(84.8)
    assert runs["tw-mog-z40-m500"].nll_theirs is None and runs["tw-mog-z40-m500"].log_px_theirs is None
    assert std.history.epoch == [1, 2] and std.history.valid_neg_elbo == [90.0, 89.5]
    assert "tw-standard-z40: cmd, commit abcdef0123" in std.describe()
    assert sorted(committed_runs("tw", "fashion-mnist")) == ["tw-fashion-standard-z40"]
    assert without_their_binarisation(runs, "mnist") == ["tw-mog-z40-m500"]


def test_no_committed_runs_is_an_empty_dict(tmp_path, monkeypatch):
    monkeypatch.setattr(reference, "REFERENCE_ROOT", tmp_path)
    assert committed_runs("tw") == {}


def test_level_rows_put_each_run_beside_its_published_prior(fake_root):
    rows = level_rows(committed_runs("tw"), "mnist")
    assert [(r.kind, r.run.name if r.run else None) for r in rows] == [
        ("vae", "tw-standard-z40"), ("mog", "tw-mog-z40-m500"), ("vamp", "tw-vamp-z40-k500")]
    assert rows[0].published.nll == 84.45
    assert rows[0].difference_ours == pytest.approx(84.7 - 84.45)
    assert rows[0].difference_theirs == pytest.approx(84.8 - 84.45)
    assert rows[1].published is None and rows[1].difference_ours is None
    fashion = level_rows(committed_runs("tw"), "fashion-mnist")
    assert [(r.kind, r.run is not None) for r in fashion] == [("vae", True), ("vamp", False)]


def test_gain_rows_are_paired_per_image_against_the_gaussian_prior(fake_root):
    _, base = fake_root
    rows = {r.run: r for r in gain_rows(committed_runs("tw"), "mnist")}
    assert set(rows) == {"tw-mog-z40-m500", "tw-vamp-z40-k500"}
    assert rows["tw-mog-z40-m500"].ours.estimate == pytest.approx(1.9)
    assert rows["tw-mog-z40-m500"].ours.stderr == pytest.approx(0.0, abs=1e-9)  # a constant shift
    assert rows["tw-mog-z40-m500"].ours_theirs is None and rows["tw-mog-z40-m500"].published is None
    vamp = rows["tw-vamp-z40-k500"]
    assert vamp.ours_theirs.estimate == pytest.approx(2.1)
    assert vamp.published.estimate == pytest.approx(84.45 - 82.43)
    assert vamp.published.stderr == pytest.approx(math.hypot(0.12, 0.06))
    assert gain_rows(committed_runs("tw"), "fashion-mnist") == []
    assert rows["tw-mog-z40-m500"].unpublished == ("mog",) and vamp.unpublished == ()


def test_gain_rows_over_the_mixture_set_the_vampprior_against_it(fake_root):
    rows = gain_rows(committed_runs("tw"), "mnist", over="mog")
    assert [(r.kind, r.run, r.over) for r in rows] == [("vamp", "tw-vamp-z40-k500", "mog")]
    assert rows[0].ours.estimate == pytest.approx(2.2 - 1.9)
    assert rows[0].ours_theirs is None  # the mixture run was not scored on their draw
    assert rows[0].published is None and rows[0].unpublished == ("mog",)
    assert gain_rows(committed_runs("tw"), "mnist", over="vamp") == []


def test_published_values_name_their_data():
    assert {(p.dataset, p.kind, p.nll, p.spread) for p in PUBLISHED_TW} == {
        ("mnist", "vae", 84.45, 0.12), ("mnist", "vamp", 82.43, 0.06),
        ("fashion-mnist", "vae", 228.70, 0.15), ("fashion-mnist", "vamp", 227.35, 0.05)}
    assert all("dynamic" in p.binarisation and "777" in p.binarisation for p in PUBLISHED_TW)
    assert all(p.source == "norouzi2020exemplar" for p in PUBLISHED_TW)


def test_the_committed_tw_runs_read_without_weights():
    runs = committed_runs("tw", "mnist")
    assert "tw-standard-z40" in runs
    for run in runs.values():
        assert run.log_px is not None and run.log_px.numel() == 10_000
        assert run.history is not None and len(run.history.epoch) > 100


def test_scorecard_iw_neg_elbo_is_on_the_iw_images():
    card = evaluate.Scorecard("p", 2, 10, neg_elbo=100.0, kl=5.0, distortion=95.0,
                              ll=evaluate.LogLikelihood(90.0, 1.0, 5, 4, torch.zeros(4)), elbo_gap=3.0,
                              active_units=2, n_components=1, components_used=None)
    assert card.iw_neg_elbo == 93.0


def test_committed_run_without_their_standard_error_prints_the_value_alone():
    run = CommittedRun("x", "mnist", "vae", {"test_nll": 1.0, "test_nll_stderr": 0.1, "test_nll_theirs": 2.0},
                       None)
    assert run.nll_theirs.estimate == 2.0 and math.isnan(run.nll_theirs.stderr)


def test_provenance_line_wraps_and_reads_well():
    p = {"train_command": "python -m vaelib train tw-standard-z40 --profile tw --device cpu",
         "commit": "0123456789abcdef", "device": "cpu (AMD EPYC, 1 torch threads)", "torch": "2.14.1",
         "python": "3.11.7", "exported": "2026-12-07T10:00:00+00:00"}
    text = reference.describe_provenance("tw-standard-z40", p, width=60)
    assert "1 torch thread)" in text  # older records said "1 torch threads"
    assert "commit 0123456789," in text and "exported 2026-12-07" in text and "T10:00" not in text
    assert all(len(line) <= 60 for line in text.splitlines())
    assert "2 torch threads" in reference.describe_provenance("x", {**p, "device": "cpu (AMD EPYC, 2 torch threads)"})


def test_prior_comparison_summary_reads_every_gain_and_how_the_runs_were_made(fake_root):
    runs = committed_runs("tw")
    for run in runs.values():
        run.metrics.update(epochs=900 if run.kind == "vae" else 1064, iw_samples=5000, iw_images=50)
    text = say.prior_comparison_summary(runs, {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"})
    assert text.startswith("In the committed runs of the published protocol (trained for 900 to 1,064 "
                           "epochs until early stopping, scored with k = 5,000 on 50 test images")
    assert "on MNIST, the mixture-of-Gaussians prior is better than the Gaussian prior by 1.90" in text
    assert "and the VampPrior is better than the mixture-of-Gaussians prior by 0.30 nats" in text
    assert "Fashion-MNIST" not in text  # a Gaussian run alone has no gain to report
    assert say.prior_comparison_summary({}, {"mnist": "MNIST"}).startswith("No runs of the published")
