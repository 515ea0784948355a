"""Helpers of chapters 1-3: the threshold sweep, the class histogram, the islands walks, the
sentences built from measured numbers and the figures sized for reading."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from vaelib import plots  # noqa: E402
from vaelib.classifier import (  # noqa: E402
    DigitClassifier, below_chord, class_histogram, confident_pairs, hybrid_sweep, interior_hybrid_share,
    judge_walks, largest_class_deviation, straight_walks, walk_dips,
)
from vaelib.model import VAE  # noqa: E402
from vaelib.nets import BernoulliDecoder, GaussianEncoder  # noqa: E402
from vaelib.wording import dip_sentence, factor_phrase, format_number, share_ratio_phrase  # noqa: E402
from vaelib.priors import GaussianMixture, StandardNormal  # noqa: E402


def one_hot_probs(tops: list[float]) -> torch.Tensor:
    """Rows whose top class (digit 3) has the given probability, the rest spread evenly."""
    rows = [[(1 - p) / 9] * 10 for p in tops]
    for row, p in zip(rows, tops):
        row[3] = p
    return torch.tensor(rows)


def test_hybrid_sweep_counts_tops_below_each_threshold():
    probs = one_hot_probs([0.55, 0.85, 0.95, 0.999])
    shares = hybrid_sweep(probs, (0.5, 0.9, 0.99, 1.0))
    torch.testing.assert_close(shares, torch.tensor([0.0, 0.5, 0.75, 1.0]))
    assert torch.all(hybrid_sweep(probs)[1:] >= hybrid_sweep(probs)[:-1])  # never falls as t rises


@pytest.mark.parametrize("bad", [(0.0,), (1.5,), (True,), ()])
def test_hybrid_sweep_refuses_bad_thresholds(bad):
    with pytest.raises(ValueError):
        hybrid_sweep(one_hot_probs([0.5]), bad)


def test_class_histogram_and_its_largest_deviation():
    probs = torch.zeros(4, 10)
    probs[[0, 1, 2], 1] = 1.0
    probs[3, 7] = 1.0
    shares = class_histogram(probs)
    assert shares[1] == 0.75 and shares[7] == 0.25 and math.isclose(float(shares.sum()), 1.0)
    digit, deviation = largest_class_deviation(shares, torch.full((10,), 0.1))
    assert digit == 1 and deviation == pytest.approx(0.65)
    digit, deviation = largest_class_deviation(torch.zeros(10).index_fill(0, torch.tensor([2]), 1.0),
                                               torch.tensor([0.5] + [0.5 / 9] * 9))
    assert digit == 2 and deviation > 0
    with pytest.raises(ValueError, match="10 shares"):
        largest_class_deviation(torch.ones(9) / 9, torch.ones(10) / 10)


def test_straight_walks_join_the_ends_in_equal_steps():
    start, end = torch.zeros(2, 3), torch.tensor([[1.0, 2.0, 3.0], [-4.0, 0.0, 0.0]])
    path = straight_walks(start, end, 5)
    assert path.shape == (2, 5, 3)
    torch.testing.assert_close(path[:, 0], start)
    torch.testing.assert_close(path[:, -1], end)
    torch.testing.assert_close(path[0, 2], torch.tensor([0.5, 1.0, 1.5]))
    with pytest.raises(ValueError, match="at least 2"):
        straight_walks(start, end, 1)


def test_the_dip_below_the_chord():
    # concave along the line: never below the chord; a valley: the depth at its lowest point
    concave = -torch.linspace(-1, 1, 11) ** 2
    assert torch.allclose(below_chord(concave[None])[:, [0, -1]], torch.zeros(1, 2))
    assert walk_dips(concave[None]).item() == 0.0
    valley = torch.tensor([[0.0, -1.0, -3.0, -1.0, -2.0]])
    assert math.isclose(walk_dips(valley).item(), 3.0 - 1.0)  # chord at t = 0.5 is -1
    # a standard normal along any straight line is concave: no dip
    prior = StandardNormal(4)
    path = straight_walks(torch.randn(20, 4), torch.randn(20, 4), 9)
    assert torch.all(walk_dips(prior.log_prob(path)) < 1e-5)


def test_a_mixture_of_far_apart_narrow_components_dips_between_them():
    prior = GaussianMixture(2, 2)
    with torch.no_grad():
        prior.means.copy_(torch.tensor([[-3.0, 0.0], [3.0, 0.0]]))
        prior.logvars.fill_(math.log(0.25))
    path = straight_walks(prior.means[:1].detach(), prior.means[1:].detach(), 21)
    # halfway each component has exp(-9 / (2 * 0.25)) of its peak, both count there and one at an end: 18 - log 2
    assert walk_dips(prior.log_prob(path).detach()).item() == pytest.approx(18.0 - math.log(2), abs=1e-3)


def test_judge_walks_records_every_point():
    torch.manual_seed(0)
    model = VAE(GaussianEncoder(latent_dim=2), BernoulliDecoder(latent_dim=2), GaussianMixture(2, 5)).eval()
    classifier = DigitClassifier().eval()
    out = judge_walks(model, classifier, torch.zeros(3, 2), torch.ones(3, 2), steps=7, threshold=0.9)
    assert out["log_p"].shape == (3, 7) and out["hybrid"].shape == (3, 7) and out["images"].shape == (3, 7, 784)
    assert out["hybrid"].dtype == torch.bool and torch.all(out["dip"] >= 0)
    torch.testing.assert_close(out["length"], torch.full((3,), math.sqrt(2)))
    assert interior_hybrid_share(out["hybrid"]).shape == (3,)
    with pytest.raises(ValueError, match="threshold"):
        judge_walks(model, classifier, torch.zeros(3, 2), torch.ones(3, 2), steps=7, threshold=0)


def test_interior_share_leaves_out_the_ends():
    flags = torch.tensor([[True, False, True, False, True]])
    assert interior_hybrid_share(flags).item() == pytest.approx(1 / 3)


def test_confident_pairs_join_two_different_sure_digits():
    digits = torch.tensor([0, 0, 1, 2, 2])
    sure = torch.tensor([True, True, False, True, False])
    i, j = confident_pairs(digits, sure, 30, torch.Generator().manual_seed(0))
    assert len(i) == 30 and torch.all(digits[i] != digits[j])
    assert torch.all(sure[i]) and torch.all(sure[j])
    with pytest.raises(ValueError, match="fewer than two"):
        confident_pairs(digits, torch.tensor([True, True, False, False, False]), 5, torch.Generator())


@pytest.mark.parametrize("value, text", [(-0.04, "0.0"), (-0.0, "0.0"), (0.04, "0.0"), (-0.06, "-0.1"), (2.345, "2.3")])
def test_format_number_never_writes_minus_zero(value, text):
    assert format_number(value) == text
    assert format_number(value, signed=True) == (text if text.startswith("-") or text == "0.0" else "+" + text)


@pytest.mark.parametrize("nats, text", [(0.0, "about the same, within 10%"), (0.05, "about the same, within 10%"),
                                         (-math.log(3.2), "3.2 times lower"), (math.log(40), "40 times higher")])
def test_factor_phrase(nats, text):
    assert factor_phrase(nats) == text


def test_dip_sentence_reads_right_for_any_value():
    flat = dip_sentence(torch.zeros(50), "the walks")
    assert "does not sink" in flat and "-0" not in flat and "1.0 times" not in flat
    deep = dip_sentence(torch.full((50,), math.log(5.0)), "the walks")
    assert "1.61 nats below" in deep and "5 times lower" in deep and "over 50 walks" in deep
    tiny = dip_sentence(torch.full((10,), 0.02), "the walks")
    assert tiny.endswith("the density is within 10% of the chord's") and "1.0 times" not in tiny
    edge = dip_sentence(torch.full((10,), math.log(1.1) + 1e-6), "the walks")
    assert edge.endswith("1.1 times lower than the chord's")
    with pytest.raises(ValueError, match="no walks"):
        dip_sentence(torch.zeros(0), "the walks")


@pytest.mark.parametrize("share, ref, text", [
    (0.5, 0.1, "5 times as often as the reference"), (0.1, 0.1, "about as often as the reference"),
    (0.02, 0.1, "5 times less often than the reference"), (0.0, 0.0, "as often as the reference: never"),
])
def test_share_ratio_phrase(share, ref, text):
    assert share_ratio_phrase(share, ref) == text
    assert share_ratio_phrase(0.536, 0.067, "real digits") == "8 times as often as real digits"
    with pytest.raises(ValueError, match="shares"):
        share_ratio_phrase(1.5, 0.1)


def test_sample_panels_size_digits_for_reading():
    images = torch.rand(100, 784)
    fig = plots.sample_panels({"a": (images, images[:, 0] > 0.5), "b": (images, None)})
    ax = fig.axes[0]
    width_px = ax.get_window_extent().width * 90 / fig.dpi  # as drawn at the book's 90 dpi
    assert width_px / 10 >= 34  # a framed tile of 34 image pixels is at least its own size
    plt.close(fig)
    with pytest.raises(ValueError, match="no panels"):
        plots.sample_panels({})


def test_digit_rows_pick_the_most_confident_of_each_digit():
    images = torch.arange(6, dtype=torch.float32)[:, None].repeat(1, 784) / 10
    digits = torch.tensor([0, 0, 0, 1, 1, 9])
    conf = torch.tensor([0.5, 0.99, 0.95, 0.7, 0.8, 0.99])
    rows, framed = plots.digit_rows(images, digits, conf, per_digit=2, threshold=0.9)
    assert rows.shape == (20, 784)
    assert rows[0, 0] == pytest.approx(0.1) and rows[1, 0] == pytest.approx(0.2)  # digit 0: conf 0.99, 0.95
    assert framed[2] and framed[3]  # digit 1: both below 0.9
    assert rows[18, 0] == pytest.approx(0.5) and rows[19].abs().sum() == 0  # digit 9: one image, a blank


def test_prior_contours_only_for_two_dimensions():
    fig, ax = plt.subplots()
    plots.prior_contours(ax, GaussianMixture(2, 3), (-3, 3, -3, 3))
    assert ax.collections  # contour lines were drawn
    with pytest.raises(ValueError, match="2-d"):
        plots.prior_contours(ax, StandardNormal(3), (-3, 3, -3, 3))
    plt.close(fig)


def test_walk_pairs_fall_back_when_too_few_are_sure():
    from vaelib.classifier import walk_pairs
    gen = torch.Generator().manual_seed(0)
    digits = torch.tensor([0, 1, 1, 2])
    i, j, note = walk_pairs(digits, torch.tensor([True, True, False, False]), 10, gen)
    assert "confidently" in note and set(i.tolist()) | set(j.tolist()) <= {0, 1}
    i, j, note = walk_pairs(digits, torch.zeros(4, dtype=torch.bool), 10, gen)
    assert "any two" in note and torch.all(digits[i] != digits[j])
    i, j, note = walk_pairs(torch.zeros(4, dtype=torch.long), torch.zeros(4, dtype=torch.bool), 10, gen)
    assert "same digit" in note and torch.all(i != j)


def test_islands_verdict_names_which_signs_are_present():
    from vaelib.wording import islands_verdict
    both = islands_verdict(5.0, 0.10, 0.01)
    assert both.startswith("the prior thins out") and "more hybrids" in both and "10.0 percentage" in both
    slight = islands_verdict(5.0, 0.025, 0.009)
    assert "slightly more hybrids" in slight and "2.5 percentage points" in slight
    assert islands_verdict(5.0, 0.01, 0.01).startswith("only the prior")
    assert islands_verdict(0.5, 0.10, 0.01).startswith("the prior does not thin out")
    assert islands_verdict(0.0, -0.10, 0.01).startswith("neither")
    with pytest.raises(ValueError, match="standard error"):
        islands_verdict(1.0, 0.0, float("nan"))


def test_prior_log_p_median_is_a_yardstick_that_leaves_the_rng_alone():
    from vaelib.explorer import prior_log_p_median
    prior = StandardNormal(10)
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    value = prior_log_p_median(prior)
    assert torch.equal(before, torch.random.get_rng_state())
    # log N(z; 0, I) = -(D log 2 pi + |z|^2) / 2 and the median of a chi-square(10) is about 9.34
    assert value == pytest.approx(-0.5 * (10 * math.log(2 * math.pi) + 9.34), abs=0.15)
    with pytest.raises(ValueError, match="positive integer"):
        prior_log_p_median(prior, n=0)


def test_share_with_error_matches_the_sweep_and_the_binomial_error():
    from vaelib.classifier import share_with_error
    probs = one_hot_probs([0.55, 0.85, 0.95, 0.999])
    share, stderr = share_with_error(probs, 0.9)
    assert share == 0.5 and stderr == pytest.approx(math.sqrt(0.25 / 4))
    assert share_with_error(probs, 0.5) == (0.0, 0.0)
