"""The sentences chapters 4 to 6 glue into their prose (vaelib.wording): every branch, and the
values at the edges (zero, one, negative zero), read correctly."""

from __future__ import annotations

import math

import pytest
import torch

from vaelib import wording as say
from vaelib.evaluate import Interval, seed_summary
from vaelib.published import CommittedRun, GainRow, LevelRow, PublishedNLL

MINUS = "\u2212"


# -- numbers --------------------------------------------------------------------------------------

@pytest.mark.parametrize("x, text", [(1.234, "1.23"), (-0.79, f"{MINUS}0.79"), (-0.001, "0.00"), (-0.0, "0.00"),
                                     (0.0, "0.00")])
def test_number_never_prints_minus_zero(x, text):
    assert say.number(x) == text


@pytest.mark.parametrize("x, text", [(0.71, "+0.71"), (-0.79, f"{MINUS}0.79"), (-0.004, "0.00"), (0.004, "0.00")])
def test_signed(x, text):
    assert say.signed(x) == text


def test_plus_minus_and_interval_text():
    assert say.plus_minus(84.678, 0.2216) == "84.68 ± 0.22"
    assert say.plus_minus(1.2961, 0.0031) == "1.296 ± 0.003"  # never "± 0.00" for a nonzero error
    assert say.plus_minus(1.3, 0.0) == "1.30 ± 0.00"
    assert say.plus_minus(5.0, 1e-9) == "5.00 ± <0.000001"  # six places at most
    assert say.plus_minus(1.2961, 0.05, sign=True) == "+1.30 ± 0.05"
    assert say.plus_minus(-0.001, 0.0004, sign=True) == MINUS + "0.0010 ± 0.0004"
    assert say.interval_text(Interval(-0.79, 0.58)) == f"from {MINUS}1.93 to 0.35"
    assert say.level_words(Interval(0, 1)) == "95% interval"
    assert say.level_words(Interval(0, 1, dof=2)) == "95% t-interval with 2 degrees of freedom"
    assert say.level_words(Interval(0, 1, dof=1)) == "95% t-interval with 1 degree of freedom"


def test_join_names():
    assert say.join_names([]) == "" and say.join_names(["a"]) == "a"
    assert say.join_names(["a", "b"]) == "a and b" and say.join_names(["a", "b", "c"]) == "a, b and c"


@pytest.mark.parametrize("ratio, text", [(3.0, "3.0 times smaller than"), (1 / 3, "3.0 times larger than"),
                                         (1.04, "about the same as"), (0.96, "about the same as")])
def test_times_never_says_one_times(ratio, text):
    assert say.times(ratio, "smaller", "larger") == text


def test_times_refuses_a_non_positive_ratio():
    with pytest.raises(ValueError):
        say.times(0.0, "a", "b")


def test_than():
    assert say.than(85.1, 84.0) == "higher (85.10 against 84.00)"
    assert say.than(84.0, 85.1) == "lower (84.00 against 85.10)"
    assert say.than(84.001, 84.002).startswith("the same to 2 decimals")


# -- comparisons ----------------------------------------------------------------------------------

def test_nll_comparison_each_side_and_the_unresolved_case():
    lower = say.nll_comparison(-1.2, 0.1, "mog", "vae")
    assert lower.startswith("a lower NLL than vae, by 1.20 nats per image (95% interval from 1.00 to 1.40")
    higher = say.nll_comparison(0.5, 0.1, "mog", "vae")
    assert higher.startswith("a higher NLL than vae, by 0.50 nats per image")
    unresolved = say.nll_comparison(-0.79, 0.58, "mog", "vae")
    assert f"NLL(mog) {MINUS} NLL(vae) = {MINUS}0.79" in unresolved and "contains zero" in unresolved
    assert "indistinguishable" not in unresolved
    assert "-0.00" not in say.nll_comparison(-0.001, 0.5, "a", "b")


@pytest.mark.parametrize("log_ratio, text", [
    (math.log(2.5), "2.5 times the probability that the VAE gives it"),
    (-math.log(2.5), "1/2.5 of the probability that the VAE gives it"),
    (0.01, "about the probability that the VAE gives it (a ratio of 1.010)"),
    (math.log(250), "250 times the probability"),
    (20.6, "8.8 × 10⁸ times the probability"),
])
def test_probability_ratio(log_ratio, text):
    assert say.probability_ratio(log_ratio, "the VAE").startswith(text)


@pytest.mark.parametrize("short, long, expected", [
    (Interval(2.0, 0.3), Interval(2.8, 0.07), "agree"),
    (Interval(-1.0, 0.2), Interval(0.7, 0.19), "The sign changes with training"),
    (Interval(-0.2, 0.58), Interval(0.71, 0.19), "the two do not contradict each other"),
    (Interval(-0.79, 0.58), Interval(0.71, 0.19), "the difference itself changes with training"),
    (Interval(-0.2, 0.05), Interval(0.71, 0.19), "The sign changes"),
    (Interval(-3.0, 0.58), Interval(0.71, 0.19), "The sign changes"),
    (Interval(1.0, 0.2), Interval(0.1, 0.19), "no measurable lead"),
    (Interval(0.1, 0.2), Interval(0.1, 0.19), "Neither budget resolves"),
])
def test_reconcile_has_a_sentence_for_every_sign_pattern(short, long, expected):
    text = say.reconcile(short, long, "10 epochs", "400 epochs", "mog", "vae")
    assert expected in text
    assert "-0.00" not in text


def test_reconcile_names_who_is_ahead():
    text = say.reconcile(Interval(2.0, 0.3), Interval(2.8, 0.07), "10 epochs", "400 epochs", "mog", "vae")
    assert "mog ahead" in text
    text = say.reconcile(Interval(-2.0, 0.3), Interval(-2.8, 0.07), "10 epochs", "400 epochs", "mog", "vae")
    assert "vae ahead" in text


def _summary(shifts, noise=1.0):
    gen = torch.Generator().manual_seed(0)
    base = noise * torch.randn(1000, generator=gen, dtype=torch.float64)
    return seed_summary([base - base.mean() + s for s in shifts])


def test_seed_sentence_both_ways():
    sure = say.seed_sentence(_summary([2.0, 2.1, 1.9]))
    assert "excludes zero" in sure and "2 degrees of freedom" in sure
    unsure = say.seed_sentence(_summary([0.5, -0.4, 0.2]))
    assert "contains zero" in unsure and "3 seeds" in unsure


def test_noise_sources_each_branch():
    assert say.noise_sources(_summary([1.0, 2.0, 3.0], noise=0.1)).startswith("Training noise dominates")
    assert say.noise_sources(_summary([1.0, 1.001, 0.999], noise=5.0)).startswith("Evaluation noise dominates")
    similar = _summary([1.0, 1.1, 0.9], noise=math.sqrt(1000 / 300))
    assert "similar size" in say.noise_sources(similar) or "dominates" in say.noise_sources(similar)


def test_k_bias_note_below_and_at_the_curve_top():
    below = say.k_bias_note(500, 5000, {"VAE": 0.2, "MoG": 0.3}, {"VAE": 0.02, "MoG": -0.01})
    assert "k = 500, below the curve's largest k = 5,000" in below
    assert "0.22 nats for VAE and 0.30 nats for MoG" in below
    top = say.k_bias_note(5000, 5000, {"VAE": 0.0}, {"VAE": 0.03})
    assert "is the curve's largest" in top and "0.03 nats for VAE" in top


def test_agreement():
    assert say.agreement(0.135, 0.01, 0.111, 0.01).endswith("sampling noise explains the difference.")
    assert say.agreement(0.5, 0.01, 0.1, 0.01).endswith("more than sampling noise explains.")


# -- the published comparison ---------------------------------------------------------------------

PUB = (PublishedNLL("src", "mnist", "dynamic", "vae", "VAE", 84.45, 0.12),
       PublishedNLL("src", "mnist", "dynamic", "vamp", "VampPrior", 82.43, 0.06))


def _run(name, kind, nll, theirs=None):
    metrics = {"test_nll": nll, "test_nll_stderr": 0.2}
    if theirs is not None:
        metrics.update(test_nll_theirs=theirs, test_nll_theirs_se=0.21)
    return CommittedRun(name, "mnist", kind, metrics, None)


def test_level_table_and_sentence_with_and_without_their_draw():
    rows = [LevelRow("vae", _run("std", "vae", 84.68), PUB[0]),
            LevelRow("mog", _run("mog", "mog", 82.84), None),
            LevelRow("vamp", _run("vamp", "vamp", 82.30, theirs=82.40), PUB[1])]
    table = say.level_table(rows).data.replace("\u00a0", " ")  # table() ties "±" to its number
    assert table.splitlines()[0].endswith("| published | ours " + MINUS + " published, their draw |")
    assert "| Gaussian, `std` | 84.68 ± 0.20 | — | 84.45 ± 0.12 | +0.23 (our draw) |" in table
    assert "| VampPrior, `vamp` | 82.30 ± 0.20 | 82.40 ± 0.21 | 82.43 ± 0.06 | " + MINUS + "0.03 |" in table
    assert "| VampPrior, not run yet | — | — | 82.43 ±\u00a00.06 | — |" in say.level_table(
        [LevelRow("vamp", None, PUB[1])]).data
    text = say.level_sentence(rows)
    assert "std is worse than the published value by 0.23 nats on our test draw (84.45 ± 0.12 published)." in text
    assert "mog (82.84 on our test draw) has no published counterpart" in text
    assert "between the published Gaussian value (84.45) and the published VampPrior value (82.43)" in text
    assert "vamp is better than the published value by 0.13 nats on our test draw and by 0.03 on their test draw" in text


def test_level_sentence_edges():
    assert say.level_sentence([LevelRow("vae", None, PUB[0])]) == "The table has the published values alone for now."
    equal = say.level_sentence([LevelRow("vae", _run("std", "vae", 84.451), PUB[0])])
    assert "equal to the published value to two decimals on our test draw" in equal
    mixed = say.level_sentence([LevelRow("vae", _run("std", "vae", 84.50, theirs=84.40), PUB[0])])
    assert ("std is worse than the published value by 0.05 nats on our test draw and better than it "
            "by 0.05 nats on their test draw") in mixed
    tie = say.level_sentence([LevelRow("vae", _run("std", "vae", 84.451, theirs=84.30), PUB[0])])
    assert ("equal to the published value to two decimals on our test draw and better than it by "
            "0.15 nats on their test draw") in tie
    best = say.level_sentence([LevelRow("mog", _run("mog", "mog", 80.0), None), LevelRow("vae", None, PUB[0])])
    assert "below every published value" in best
    worst = say.level_sentence([LevelRow("mog", _run("mog", "mog", 90.0), None), LevelRow("vae", None, PUB[0])])
    assert "above every published value" in worst


def test_gain_table_and_sentence():
    rows = [GainRow("mog", "mog", Interval(1.84, 0.03), None, None),
            GainRow("vamp", "vamp", Interval(2.1, 0.04), Interval(2.0, 0.04), Interval(2.02, 0.134))]
    table = say.gain_table(rows).data
    assert "| mixture of Gaussians, `mog` | 1.84 ±\u00a00.03 | — | — |" in table
    text = say.gain_sentence(rows)
    assert "mog is better than the Gaussian prior by 1.84 nats per image (95% interval" in text
    assert "no published value for this prior" in text
    assert "and by 2.00 on their test draw; the published gain is 2.02 ± 0.13, consistent with ours" in text
    worse = say.gain_sentence([GainRow("mog", "m", Interval(-0.5, 0.04), Interval(0.3, 0.04), None)])
    assert worse.startswith("m is worse than the Gaussian prior by 0.50 nats per image")
    # the interval runs the way the sentence reads: a loss of 0.50, from 0.42 to 0.58
    assert "(95% interval from 0.42 to 0.58, paired over the test images)" in worse
    assert "and better than it by 0.30 on their test draw" in worse
    level = say.gain_sentence([GainRow("mog", "m", Interval(-0.001, 0.04), Interval(-0.002, 0.04), None)])
    assert level.startswith("m is level with the Gaussian prior to two decimals (")
    assert "and level with it to two decimals on their test draw" in level
    assert MINUS + "0.00" not in worse + level
    far = say.gain_sentence([GainRow("vamp", "vamp", Interval(3.0, 0.04), None, Interval(2.02, 0.134))])
    assert "more than the combined uncertainty away from ours" in far
    assert say.gain_sentence([]).startswith("No gain over the Gaussian prior can be measured")
    assert say.gain_sentence([], over="mog").startswith("No gain over the mixture-of-Gaussians prior")


def test_gain_over_another_prior_names_that_prior_and_what_is_unpublished():
    vamp = GainRow("vamp", "v", Interval(0.23, 0.03), Interval(0.27, 0.03), None, over="mog",
                   unpublished=("mog",))
    text = say.gain_sentence([vamp], over="mog")
    assert text.startswith("v is better than the mixture-of-Gaussians prior by 0.23 nats per image (95%")
    assert "and by 0.27 on their test draw" in text
    assert text.endswith("; there is no published value for the mixture-of-Gaussians prior on these data.")
    both = GainRow("vamp", "v", Interval(-0.4, 0.03), None, None, over="mog", unpublished=("vamp", "mog"))
    assert "for the VampPrior and the mixture-of-Gaussians prior on these data" in say.gain_sentence([both])


def test_order_sentence_compares_the_signs_of_two_gains():
    mnist = GainRow("vamp", "a", Interval(0.23, 0.03), None, None, over="mog")
    behind = GainRow("vamp", "b", Interval(-0.1, 0.02), None, None, over="mog")
    ahead = GainRow("vamp", "b", Interval(0.4, 0.02), None, None, over="mog")
    unsure = GainRow("vamp", "b", Interval(0.02, 0.03), None, None, over="mog")
    where = ("MNIST, where the VampPrior is better than the mixture-of-Gaussians prior by 0.23 nats "
             "per image (95% interval from 0.17 to 0.29)")
    caveat = (" Each interval covers the choice of test images, not of training: every prior has one"
              " training run here.")
    assert say.order_sentence(behind, mnist, "MNIST") == (
        f"The order is the reverse of that on {where}: the better of the two priors differs between "
        "the data sets." + caveat)
    assert say.order_sentence(ahead, mnist, "MNIST") == f"The order is the same as that on {where}." + caveat
    assert "do not settle whether the order" in say.order_sentence(unsure, mnist, "MNIST")
    assert say.order_sentence(None, mnist, "MNIST") == say.order_sentence(behind, None, "MNIST") == ""


def test_prior_summary_names_priors_not_runs():
    rows = [GainRow("mog", "tw-mog", Interval(1.84, 0.03), None, None),
            GainRow("vamp", "tw-vamp", Interval(-0.001, 0.03), None, None, over="mog")]
    text = say.prior_summary(rows)
    assert text.startswith("the mixture-of-Gaussians prior is better than the Gaussian prior by 1.84 nats "
                           "per image (95% interval from 1.78 to 1.90)")
    assert text.endswith(" and the VampPrior is level with the mixture-of-Gaussians prior to two decimals "
                         "(95% interval from " + MINUS + "0.06 to 0.06)")
    assert "tw-" not in text
    assert say.prior_summary([]) == ""
    behind = say.prior_summary([GainRow("vamp", "v", Interval(-0.1, 0.02), None, None, over="mog")])
    assert behind == ("the VampPrior is worse than the mixture-of-Gaussians prior by 0.10 nats per image "
                      "(95% interval from 0.06 to 0.14)")


def test_missing_binarisation_sentence():
    assert say.missing_binarisation_sentence([], 0) == ""
    assert say.missing_binarisation_sentence([], 2).startswith("Every committed run")
    assert say.missing_binarisation_sentence(["a"], 2) == "a has not been scored on their test draw yet."
    assert say.missing_binarisation_sentence(["a", "b"], 2) == "a and b have not been scored on their test draw yet."


# -- chapter 6 ------------------------------------------------------------------------------------

def test_bias_reading_every_branch():
    xs, truth = [0.1, 0.5, 1.0, 2.0], -3.0
    biased = say.bias_reading(xs, [-3.5, -4.15, -3.3, -2.7], [0.03] * 4, truth)
    assert "biased at every temperature tested" in biased
    assert "largest at τ = 0.5, where the mean is " + MINUS + "4.15" in biased
    assert "crosses the true value between τ = 1 and 2" in biased
    clean = say.bias_reading(xs, [-3.0, -3.01, -2.99, -3.0], [0.03] * 4, truth)
    assert clean.startswith("At every temperature tested the mean lies within two standard errors")
    assert "largest deviation, at τ = 0.5 (mean " + MINUS + "3.01 against a true " + MINUS + "3.00), is within" in clean
    assert "bias" not in clean and "crosses" not in clean  # noise that changes sign is no crossing
    mixed = say.bias_reading(xs, [-3.5, -3.01, -3.3, -3.2], [0.03] * 4, truth)
    assert "only at τ = 0.5" in mixed and "Where it shows, the bias has one sign." in mixed
    assert "largest at τ = 0.1" in mixed
    across = say.bias_reading(xs, [-3.5, -3.01, -2.7, -3.0], [0.03] * 4, truth)
    assert "crosses the true value between τ = 0.1 and 1:" in across  # τ = 0.5 and 2 are within noise
    noisy = say.bias_reading(xs, [-3.5, -1.0, -3.0, -3.0], [0.03, 2.0, 0.03, 0.03], truth)
    assert "largest at τ = 0.1" in noisy  # τ = 0.5 deviates more, but within its noise


def test_collapse_reading_every_branch():
    dead = say.collapse_reading(1.0, 1.0, 0.9, 0.05)
    assert "collapsed onto one component" in dead and "they are dead" in dead
    alive = say.collapse_reading(0.999, 1.01, 0.9, 0.8)
    assert "still follow the input" in alive
    assert say.collapse_reading(0.7, 2.6, 0.4, 0.5).startswith("More than one component")
    assert say.collapse_reading(0.95, 1.2, 0.4, 0.5).startswith("One component dominates")


def test_confound_reading_every_branch():
    worse, same, better = Interval(0.5, 0.1), Interval(0.02, 0.1), Interval(-0.5, 0.1)
    assert say.confound_reading(worse, worse, same, True).startswith("The control reproduces the difference")
    assert say.confound_reading(same, same, same, True).startswith("None of the three")
    assert "since it collapsed" in say.confound_reading(worse, same, worse, True)
    assert "several components" in say.confound_reading(better, same, better, False)
    assert say.confound_reading(worse, same, same, True).startswith("The mixture posterior cannot be told apart")


def test_bias_summary_every_branch():
    assert say.bias_summary([1.0, 2.0], [0.1, 0.1], 0.0) == "biased at every temperature tried"
    assert say.bias_summary([0.05, 2.0], [0.1, 0.1], 0.0) == "biased at some of the temperatures tried"
    assert say.bias_summary([0.05, -0.1], [0.1, 0.1], 0.0) == "within noise of the truth at every temperature tried"


def test_unmeasured_note():
    assert "not measured here" in say.unmeasured_note(True) and say.unmeasured_note(False) == ""
