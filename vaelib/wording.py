"""The sentences and numbers the pages build from measured results, written so that they read
right for any value: no "-0.0", no "1.0 times lower", a true minus sign, a verdict that follows
the interval. Every chapter imports it as `say`."""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any, Sequence

import torch

from .evaluate import Interval, SeedSummary
from .notebook import table
from .published import PRIOR_NAMES, CommittedRun, GainRow, LevelRow, PublishedNLL, gain_rows

if TYPE_CHECKING:
    from IPython.display import Markdown


def percent_and_error(pair: tuple[float, float]) -> str:
    """A share and its standard error as the chapters print them: (0.123, 0.004) -> "12.3% ± 0.4"."""
    share, stderr = pair
    return f"{100 * share:.1f}% ± {100 * stderr:.1f}"



def format_number(value: float, digits: int = 1, signed: bool = False) -> str:
    """`value` rounded to `digits` decimals, never written "-0.0" (a rounded zero has no sign);
    `signed` writes a "+" before a positive value."""
    text = f"{value:.{digits}f}"
    if float(text) == 0:
        return text.lstrip("-")
    return "+" + text if signed and not text.startswith("-") else text


def factor_phrase(log_ratio: float, lower: str = "lower", higher: str = "higher") -> str:
    """A log-ratio (nats) as a factor in words: "3.2 times lower"; "about the same, within 10%" below 10%.

    Positive `log_ratio` means the first quantity is larger by exp(log_ratio) ("higher").
    """
    factor = math.exp(abs(log_ratio))
    if factor < 1.1:
        return "about the same, within 10%"
    word = higher if log_ratio > 0 else lower
    return f"{factor:.2g} times {word}" if factor < 10 else f"{factor:.0f} times {word}"


def dip_sentence(dips: Any, what: str) -> str:
    """How far walks sink below their chords, from each walk's dip (nats, >= 0): median and spread.

    `what` names the walks ("the walks between component means"). Reads right for any value.
    """
    dips = torch.as_tensor(dips, dtype=torch.float64)
    if dips.numel() == 0:
        raise ValueError("no walks given: the dip of an empty set of walks is undefined")
    lo, med, hi = (float(q) for q in torch.quantile(dips, torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64)))
    spread = f"10th to 90th percentile over {dips.numel()} walks: {format_number(lo, 2)} to {format_number(hi, 2)}"
    if med < 0.005:
        return f"along {what} the prior's log-density does not sink below the chord for the median walk ({spread})"
    lowest = (f"{factor_phrase(-med)} than the chord's" if math.exp(med) >= 1.1
              else "within 10% of the chord's")
    return (f"along {what} the prior's log-density sinks a median {format_number(med, 2)} nats below the chord "
            f"({spread}), so at its lowest point the density is {lowest}")


SINK_NATS = 2.0  # a walk "sinks" when its median dip below the chord exceeds this (a density factor of about 7)
CLEAR_EXCESS = 0.05  # an excess of hybrid points below 5 percentage points is called slight


def islands_verdict(median_dip: float, hybrid_difference: float, stderr: float) -> str:
    """The islands test in words: does the prior sink between its components (median dip over
    `SINK_NATS`), and do the mixture's walks cross more hybrids than the VAE's walks between the
    same images (`hybrid_difference`, a share, mixture minus VAE, more than two standard errors
    above 0; "slightly" when under `CLEAR_EXCESS`)?"""
    if not stderr >= 0:
        raise ValueError(f"a standard error must be >= 0, got {stderr!r}")
    sinks = median_dip > SINK_NATS
    more = hybrid_difference > 2 * stderr
    points = f"{100 * hybrid_difference:.1f} percentage points"
    decoder = (f"the decoder draws slightly more hybrids along the walks than the VAE's decoder between "
               f"the same images ({points} more), far from a stretch of non-digits"
               if hybrid_difference < CLEAR_EXCESS else
               f"the decoder draws more hybrids along the walks than the VAE's decoder between the same "
               f"images ({points} more)")
    if sinks and more:
        return f"the prior thins out between its components, and {decoder}"
    if sinks:
        return ("only the prior shows a sign of islands: it thins out between its components, but the decoder "
                "draws no more hybrids along the walks than the VAE's decoder does between the same images")
    if more:
        return f"the prior does not thin out between its components, but {decoder}"
    return "neither sign of islands is present"


def share_ratio_phrase(share: float, reference: float, name: str = "the reference") -> str:
    """How often something happens relative to a reference rate, in words ("2.4 times as often as
    real digits"); `name` names the reference."""
    if not 0 <= share <= 1 or not 0 <= reference <= 1:
        raise ValueError(f"shares must lie in [0, 1], got {share!r} and {reference!r}")
    if reference == 0:
        return f"while {name} never are" if share > 0 else f"as often as {name}: never"
    ratio = share / reference
    if 0.9 <= ratio <= 1.1:
        return f"about as often as {name}"
    if ratio > 1:
        return f"{ratio:.2g} times as often as {name}"
    return f"{1 / ratio:.2g} times less often than {name}"


#
# A page glues these into its prose, so each must read correctly for any value it can get: no
# "-0.00", no "1.0 times smaller", the right words on each side of zero.

MINUS = "\u2212"


def number(x: float, digits: int = 2) -> str:
    """x rounded to `digits` places with a true minus sign; a value that rounds to zero is "0.00"."""
    return format_number(x, digits).replace("-", MINUS)


def signed(x: float, digits: int = 2) -> str:
    """Like `number`, with "+" on positive values: "+0.71", "−0.79", "0.00"."""
    return format_number(x, digits, signed=True).replace("-", MINUS)


def plus_minus(x: float, stderr: float, digits: int = 2, *, sign: bool = False) -> str:
    """ "84.68 ± 0.22" (a value and its standard error or spread); `sign=True`: "+1.29 ± 0.05".

    An error too small for `digits` places gets more places, up to six ("1.296 ± 0.003"),
    so that a nonzero error never prints as "± 0.00" ("5.00 ± <0.000001" beyond six).
    """
    show = signed if sign else number
    err, places = abs(stderr), digits
    while 0 < err < 0.5 * 10 ** -places and places < 6:
        places += 1
    if 0 < err < 0.5 * 10 ** -places:
        return f"{show(x, digits)} ± <{number(10 ** -places, places)}"
    return f"{show(x, places)} ± {number(err, places)}"


def interval_text(interval: "Interval", digits: int = 2) -> str:
    """ "from −1.93 to 0.35" for an interval."""
    return f"from {number(interval.lo, digits)} to {number(interval.hi, digits)}"


def level_words(interval: "Interval") -> str:
    """ "95% interval", with the degrees of freedom where they are few: "95% t-interval (2 dof)"."""
    pct = f"{100 * interval.level:g}%"
    if interval.dof == float("inf"):
        return f"{pct} interval"
    return f"{pct} t-interval with {interval.dof:g} degree{'s' if interval.dof != 1 else ''} of freedom"


def join_names(names: Sequence[str]) -> str:
    """ "a", "a and b", "a, b and c"."""
    names = list(names)
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def times(ratio: float, more: str, less: str, digits: int = 1) -> str:
    """A ratio as words: "2.3 times larger than", "2.3 times smaller than", "about the same as".

    `more` and `less` are the comparatives for a ratio above and below one; a ratio that would
    print as 1.0 either way reads "about the same as".
    """
    if not ratio > 0:
        raise ValueError(f"a ratio must be positive, got {ratio!r}")
    big = ratio if ratio >= 1 else 1 / ratio
    if round(big, digits) <= 1.0:
        return "about the same as"
    return f"{big:.{digits}f} times {more if ratio >= 1 else less} than"


def nll_comparison(difference: float, stderr: float, name: str, baseline: str, digits: int = 2) -> str:
    """What `name` has against `baseline`, for difference = NLL(name) - NLL(baseline), paired.

    Reads after "<name> has ...": "a lower NLL than vae-z10, by 1.23 nats per image (95% interval
    from 1.01 to 1.45)", "a higher NLL than ...", or, when the interval contains zero, a sentence
    that gives the difference and says the sign is not settled (never "indistinguishable").
    """
    iv = Interval(difference, stderr)
    if iv.sign < 0:
        gain = Interval(-difference, stderr)
        return (f"a lower NLL than {baseline}, by {number(gain.estimate, digits)} nats per image "
                f"({level_words(gain)} {interval_text(gain, digits)})")
    if iv.sign > 0:
        return (f"a higher NLL than {baseline}, by {number(difference, digits)} nats per image "
                f"({level_words(iv)} {interval_text(iv, digits)})")
    return (f"an NLL whose difference from {baseline}'s this build cannot sign: "
            f"NLL({name}) {MINUS} NLL({baseline}) = {signed(difference, digits)} nats per image, "
            f"{level_words(iv)} {interval_text(iv, digits)}, which contains zero")


SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")


def _power_of_ten(x: float) -> str:
    """ "8.8 × 10⁸" for 8.8e8."""
    mantissa, exponent = f"{x:.1e}".split("e")
    return f"{mantissa} × 10{str(int(exponent)).translate(SUPERSCRIPT)}"


def probability_ratio(log_ratio: float, other: str) -> str:
    """exp(log_ratio), the geometric mean of per-image probability ratios, in words.

    Reads after "... gives a typical test digit": "2.3 times the probability that <other> gives
    it", "1/2.3 of the probability ...", or "about the probability ..." when it prints as 1.0.
    """
    ratio = math.exp(log_ratio)
    big = ratio if ratio >= 1 else 1 / ratio
    text = f"{big:.1f}" if big < 10 else f"{big:,.0f}" if big < 1e4 else _power_of_ten(big)
    if text == "1.0":
        return f"about the probability that {other} gives it (a ratio of {ratio:.3f})"
    if ratio >= 1:
        return f"{text} times the probability that {other} gives it"
    return f"1/{text} of the probability that {other} gives it"


def reconcile(short: "Interval", long: "Interval", short_label: str, long_label: str,
              better: str, worse: str, digits: int = 2) -> str:
    """Two estimates of the same difference (positive: `better` ahead) from two training budgets.

    Says whether they agree in sign, whether the short one's interval allows the long one's
    value, and what follows; every combination of signs has its own sentence.
    """
    def side(iv: "Interval") -> str:
        return f"{better} ahead" if iv.estimate > 0 else f"{worse} ahead" if iv.estimate < 0 else "no lead"

    s = f"{signed(short.estimate, digits)} ({interval_text(short, digits)})"
    lg = f"{signed(long.estimate, digits)} ({interval_text(long, digits)})"
    # do the two estimates differ by more than their combined noise (independent images and runs)?
    apart = abs(short.estimate - long.estimate) > 1.96 * math.hypot(short.stderr, long.stderr)
    if short.sign != 0 and short.sign == long.sign:
        return f"{short_label} and {long_label} agree: {s} and {lg}, both with {side(long)}."
    if short.sign != 0 and long.sign != 0:
        return (f"The sign changes with training: {s} after {short_label} ({side(short)}), {lg} after "
                f"{long_label} ({side(long)}). Both intervals exclude zero, so the ranking of the two "
                "priors depends on how long they train.")
    if short.sign == 0 and long.sign != 0:
        tail = ("and it differs from the longer run's value by more than the two estimates' combined noise, "
                "so the difference itself changes with training" if apart else
                "and it is consistent with the longer run's value within the two estimates' combined noise, so "
                "the two do not contradict each other: the short budget cannot resolve the difference")
        return (f"{short_label} gives {s}, an interval that contains zero, {tail}; after {long_label} "
                f"the difference is {lg}, with {side(long)}.")
    if short.sign != 0 and long.sign == 0:
        return (f"{short_label} gives {s}, with {side(short)}, while after {long_label} the interval {lg} "
                "contains zero: the longer training leaves no measurable lead.")
    return (f"Neither budget resolves the difference: {s} after {short_label} and {lg} after "
            f"{long_label}; both intervals contain zero.")


def seed_sentence(summary: "SeedSummary", digits: int = 2) -> str:
    """The across-seed reading of a paired difference (positive: the second model is better)."""
    iv = summary.interval
    n = len(summary.per_seed)
    head = (f"Over the {n} seeds the difference is {signed(summary.mean, digits)} nats per image; with seed "
            f"and image noise combined its standard error is {number(summary.combined_se, digits)}, and the "
            f"{level_words(iv)} runs {interval_text(iv, digits)}")
    if iv.sign != 0:
        return head + ", which excludes zero: the sign is not an accident of one training run."
    return head + f", which contains zero: {n} seeds at this budget do not settle the sign."


def noise_sources(summary: "SeedSummary") -> str:
    """Which noise dominates a `seed_summary`: training (seeds) or evaluation (images)."""
    ratio = summary.seed_se / summary.image_se if summary.image_se > 0 else math.inf
    if ratio > 1.5:
        return (f"Training noise dominates: the seeds' standard error ({number(summary.seed_se)}) is larger "
                f"than the images' ({number(summary.image_se)}), so more seeds would sharpen the answer more "
                "than more test images.")
    if ratio < 1 / 1.5:
        return (f"Evaluation noise dominates: the images' standard error ({number(summary.image_se)}) is larger "
                f"than the seeds' ({number(summary.seed_se)}), so more test images would sharpen the answer "
                "more than more seeds.")
    return (f"The two sources are of similar size (seeds {number(summary.seed_se)}, images "
            f"{number(summary.image_se)}); neither can be left out.")


def k_bias_note(k_table: int, k_max: int, shortfall: dict[str, float], left: dict[str, float]) -> str:
    """How far NLLs estimated with k_table samples sit above log p(x), from the k-curve.

    `shortfall[label]` is L_{k_max} - L_{k_table} on the curve's images (how much the table's k
    misses of the curve's largest), `left[label]` the 1/k extrapolation of the gap left at k_max.
    """
    labels = list(shortfall)
    total = {lb: max(0.0, shortfall[lb]) + max(0.0, left.get(lb, 0.0)) for lb in labels}
    each = join_names([f"{number(total[lb])} nats for {lb}" for lb in labels])
    if k_table >= k_max:
        return (f"The table's k = {k_table:,} is the curve's largest, so its NLLs carry only the bias the "
                f"1/k law leaves there: about {each}.")
    return (f"The table uses k = {k_table:,}, below the curve's largest k = {k_max:,}. On the curve's images "
            f"that choice leaves each NLL too high: by the curve's own rise from k = {k_table:,} to "
            f"{k_max:,} plus the 1/k extrapolation beyond it, about {each}. Differences between models "
            "carry only the difference of these biases.")


def agreement(a: float, se_a: float, b: float, se_b: float, what: str = "the two estimates") -> str:
    """Whether two independent estimates of one quantity agree within their noise."""
    diff, se = a - b, math.hypot(se_a, se_b)
    z = abs(diff) / se if se > 0 else math.inf
    head = f"{what} differ by {number(abs(diff), 3)} nats, {z:.1f} combined standard errors"
    if z <= 2:
        return head + ": sampling noise explains the difference."
    return head + ": more than sampling noise explains."


# -- the published comparison of chapters 5 and 6 ------------------------------------------------

def _prior_name(kind: str, default: str) -> str:
    return PRIOR_NAMES.get(kind, default)


def _cell(interval: "Interval | None") -> str:
    if interval is None:
        return "—"
    if math.isnan(interval.stderr):
        return number(interval.estimate)
    return plus_minus(interval.estimate, interval.stderr)


def level_table(rows: Sequence["LevelRow"]) -> "Markdown":
    """5.6 (and chapter 6's Fashion-MNIST section): each committed run on both test binarisations
    beside the published NLL for its prior (nats; "—" where there is nothing yet)."""
    body = []
    for row in rows:
        run, pub = row.run, row.published
        diff, where = row.difference_theirs, ""
        if diff is None and row.difference_ours is not None:
            diff, where = row.difference_ours, " (our draw)"
        prior = run.prior if run else _prior_name(row.kind, row.kind)
        body.append([
            f"{prior}, `{run.name}`" if run else f"{prior}, not run yet",
            _cell(run.nll) if run else "—",
            _cell(run.nll_theirs) if run and run.nll_theirs else "—",
            plus_minus(pub.nll, pub.spread) if pub else "—",
            signed(diff) + where if diff is not None else "—",
        ])
    header = ["prior, our run", "ours, our draw", "ours, their draw", "published",
              f"ours {MINUS} published, their draw"]
    return table(header, body, align="lrrrr")


def gain_table(rows: Sequence["GainRow"]) -> "Markdown":
    """What each prior gains over the Gaussian one: ours (paired) on both binarisations, theirs."""
    body = [[f"{_prior_name(r.kind, r.kind)}, `{r.run}`", _cell(r.ours),
             _cell(r.ours_theirs) if r.ours_theirs else "—",
             _cell(r.published) if r.published else "—"] for r in rows]
    header = ["prior, our run", "our gain, our draw", "our gain, their draw", "published gain"]
    return table(header, body, align="lrrr")


def level_sentence(rows: Sequence["LevelRow"]) -> str:
    """One sentence per prior with both a committed run and a published value."""
    out = []
    published = sorted((r.published for r in rows if r.published is not None), key=lambda p: p.nll)
    for row in rows:
        if row.run is not None and row.published is None and published:
            out.append(_placement(row.run, published))
        if row.run is None or row.published is None:
            continue
        out.append(f"{row.run.name} is {_against_published(row)} "
                   f"({plus_minus(row.published.nll, row.published.spread)} published).")
    if not out:
        if not any(row.run is not None for row in rows):
            return "The table has the published values alone for now."
        return "No committed run has a published counterpart yet."
    return " ".join(out)


def _side(diff: float, tie: str, above: str, below: str) -> str:
    """`tie` for a difference that rounds to 0.00, else `above` (positive) or `below` (negative)."""
    if number(abs(diff)) == number(0):
        return tie
    return above if diff > 0 else below


def _against_published(row: "LevelRow") -> str:
    """ "worse than the published value by 0.28 nats on our test draw and by 0.12 on their test
    draw" (higher NLL is worse); a draw on the other side, or equal, gets its own clause."""
    gaps = [(diff, where) for diff, where in ((row.difference_ours, "our test draw"),
                                               (row.difference_theirs, "their test draw")) if diff is not None]

    sides = [_side(diff, "equal to", "worse than", "better than") for diff, _ in gaps]
    if sides[0] != "equal to" and len(set(sides)) == 1:
        amounts = [f"by {number(abs(d))}{' nats' if i == 0 else ''} on {w}" for i, (d, w) in enumerate(gaps)]
        return f"{sides[0]} the published value {join_names(amounts)}"
    parts = []
    for (diff, where), said in zip(gaps, sides):
        amount = "to two decimals" if said == "equal to" else f"by {number(abs(diff))} nats"
        parts.append(f"{said} {'the published value' if not parts else 'it'} {amount} on {where}")
    return join_names(parts)


def _placement(run: "CommittedRun", published: Sequence["PublishedNLL"]) -> str:
    """Where a run without a published counterpart falls among the published values (sorted by NLL)."""
    ours = run.nll.estimate
    lower = [p for p in published if p.nll < ours]  # published values better than ours
    higher = [p for p in published if p.nll >= ours]

    def label(p: "PublishedNLL") -> str:
        return f"the published {_prior_name(p.kind, p.kind)} value ({number(p.nll)})"

    if lower and higher:
        where = f"between {label(higher[0])} and {label(lower[-1])}"
    elif higher:
        where = f"below every published value, the lowest being {label(higher[0])}"
    else:
        where = f"above every published value, the highest being {label(lower[-1])}"
    return (f"{run.name} ({number(ours)} on our test draw) has no published counterpart on these data; "
            f"it lies {where}.")


PRIOR_PHRASES = {"vae": "the Gaussian prior", "mog": "the mixture-of-Gaussians prior",
                 "vamp": "the VampPrior", "fmog": "the factorised mixture prior"}


def prior_phrase(kind: str) -> str:
    """ "the Gaussian prior", "the mixture-of-Gaussians prior", "the VampPrior" for a prior kind."""
    return PRIOR_PHRASES.get(kind, f"the {kind} prior")


def _side_of(gain: float) -> str:
    """ "better than", "worse than" or "level with", for a gain NLL(baseline) - NLL(prior)."""
    return _side(gain, "level with", "better than", "worse than")


def _as_stated(gain: "Interval") -> "Interval":
    """The gain's interval in the direction the sentence states it: "worse than ... by 0.10
    nats (95% interval from 0.05 to 0.14)", not "by 0.10 (... from −0.14 to −0.05)"."""
    if _side_of(gain.estimate) != "worse than":
        return gain
    return dataclasses.replace(gain, estimate=-gain.estimate)


def _versus(gain: float, over: str) -> str:
    """ "better than the Gaussian prior by 1.84 nats per image", "worse than ...", or "level with
    ... to two decimals", for a gain NLL(over) - NLL(prior)."""
    side = _side_of(gain)
    amount = "to two decimals" if side == "level with" else f"by {number(abs(gain))} nats per image"
    return f"{side} {prior_phrase(over)} {amount}"


def _compared(gain: "Interval", over: str, note: str = "") -> str:
    """ "better than the Gaussian prior by 1.84 nats per image (95% interval from 1.78 to 1.90)",
    the interval in the direction the words state; `note` goes inside the brackets."""
    return f"{_versus(gain.estimate, over)} ({level_words(gain)} {interval_text(_as_stated(gain))}{note})"


def gain_sentence(rows: Sequence["GainRow"], over: str = "vae") -> str:
    """The prior gains, ours against the published ones where both exist: "tw-mog is better than
    the Gaussian prior by 1.84 nats per image (...), and by 1.82 on their test draw; ..."
    (`over` names the baseline only for the sentence that says there are no rows.)"""
    out = []
    for r in rows:
        side = _side_of(r.ours.estimate)
        text = f"{r.run} is {_compared(r.ours, r.over, ', paired over the test images')}"
        if r.ours_theirs is not None:
            there = _side_of(r.ours_theirs.estimate)
            by = "to two decimals" if there == "level with" else f"by {number(abs(r.ours_theirs.estimate))}"
            text += (f", and {by} on their test draw" if there == side != "level with"
                     else f", and {there} it {by} on their test draw")
        if r.published is not None:
            z = abs(r.ours.estimate - r.published.estimate) / math.hypot(r.ours.stderr, r.published.stderr)
            text += (f"; the published gain is {plus_minus(r.published.estimate, r.published.stderr)}, "
                     + ("consistent with ours within the combined uncertainty" if z <= 1.96 else
                        "more than the combined uncertainty away from ours"))
        else:
            missing = join_names([prior_phrase(kind) for kind in r.unpublished]) or "this prior"
            text += f"; there is no published value for {missing} on these data"
        out.append(text + ".")
    if not out:
        return (f"No gain over {prior_phrase(over)} can be measured on these data yet: that needs a "
                "committed run of it and one of another prior.")
    return " ".join(out)


def order_sentence(here: "GainRow | None", there: "GainRow | None", there_name: str) -> str:
    """Whether two paired gains of the same two priors (say the VampPrior over the mixture, on
    two data sets) have the same sign: "The order is the reverse of that on MNIST, where ..." ("" if
    either is missing; an interval that contains zero settles no order)."""
    if here is None or there is None:
        return ""
    where = prior_summary([there])
    if here.ours.sign == 0 or there.ours.sign == 0:
        return (f"On {there_name}, {where}; as one of the two intervals contains zero, the data do "
                "not settle whether the order of the two priors is the same on both.")
    same = here.ours.sign == there.ours.sign
    return (f"The order is {'the same as' if same else 'the reverse of'} that on {there_name}, where "
            f"{where}" + ("." if same else ": the better of the two priors differs between the data sets.")
            + " Each interval covers the choice of test images, not of training: every prior has one"
            " training run here.")


def prior_summary(rows: Sequence["GainRow"]) -> str:
    """The gains of `rows` in one clause each, by prior rather than by run, for a conclusion:
    "the VampPrior is better than the mixture-of-Gaussians prior by 0.23 nats per image (95%
    interval from 0.18 to 0.29)" (lower case, no full stop; "" for no rows)."""
    return join_names([f"{prior_phrase(r.kind)} is {_compared(r.ours, r.over)}" for r in rows])


def _span(values: Sequence[int]) -> str:
    """ "5,000" for one value, "799 to 1,064" for several."""
    lo, hi = min(values), max(values)
    return f"{lo:,}" if lo == hi else f"{lo:,} to {hi:,}"


def prior_comparison_summary(runs: dict[str, "CommittedRun"], datasets: dict[str, str]) -> str:
    """Chapter 6's conclusion on the priors from the committed runs of the published protocol:
    per data set (`datasets` maps its key to its printed name), each prior against the Gaussian
    one and the VampPrior against the mixture, with how long the runs trained and how they
    were scored."""
    parts, used = [], []
    for key, label in datasets.items():
        rows = gain_rows(runs, key) + gain_rows(runs, key, over="mog")
        if rows:
            parts.append(f"on {label}, {prior_summary(rows)}")
            used += [r for r in runs.values() if r.dataset == key and r.log_px is not None]
    if not parts:
        return "No runs of the published protocol are committed, so there is no full-strength comparison."
    how = (f"trained for {_span([r.metrics['epochs'] for r in used])} epochs until early stopping, "
           f"scored with k = {_span([r.metrics['iw_samples'] for r in used])} on "
           f"{_span([r.metrics['iw_images'] for r in used])} test images, differences paired per image")
    return f"In the committed runs of the published protocol ({how}): {'; '.join(parts)}."


def missing_binarisation_sentence(names: Sequence[str], n_runs: int) -> str:
    """Which of the `n_runs` committed runs still lack the evaluation on their test binarisation."""
    names = list(names)
    if n_runs == 0:
        return ""  # level_sentence has said that there is no run
    if not names:
        return "Every committed run has been scored on both test draws."
    verb = "has" if len(names) == 1 else "have"
    return f"{join_names(names)} {verb} not been scored on their test draw yet."



# -- chapter 6's readings -----------------------------------------------------------------------

def than(a: float, b: float, higher: str = "higher", lower: str = "lower", digits: int = 2) -> str:
    """ "higher (85.10 against 84.00)", "lower (...)", or "the same to 2 decimals (...)"."""
    pair = f"({number(a, digits)} against {number(b, digits)})"
    if number(a, digits) == number(b, digits):
        return f"the same to {digits} decimals {pair}"
    return f"{higher if a > b else lower} {pair}"


def bias_reading(xs: Sequence[float], means: Sequence[float], stderrs: Sequence[float], truth: float,
                 x_name: str = "τ", what: str = "temperature") -> str:
    """Where a family of estimates (one per setting x) is biased, as whole sentences.

    A mean more than two standard errors from `truth` counts as biased; the largest bias, and any
    two biased settings between which the mean crosses the truth, are named. Deviations within
    the noise are not called a bias.
    """
    bias = [m - truth for m in means]
    off = [abs(b) > 2 * s for b, s in zip(bias, stderrs)]
    if all(off):
        head = (f"The relaxation is biased at every {what} tested: each mean lies more than two standard "
                "errors from the true gradient.")
    elif not any(off):
        head = f"At every {what} tested the mean lies within two standard errors of the true gradient."
    else:
        fine = join_names([f"{x_name} = {x:g}" for x, o in zip(xs, off) if not o])
        head = (f"The mean lies within two standard errors of the true gradient only at {fine}, and is biased "
                f"at the other {what}s.")
    if not any(off):
        near = max(range(len(xs)), key=lambda i: abs(bias[i]))
        return head + (f" The largest deviation, at {x_name} = {xs[near]:g} (mean {number(means[near])} "
                       f"against a true {number(truth)}), is within that noise.")
    biased = [i for i in range(len(xs)) if off[i]]
    worst = max(biased, key=lambda i: abs(bias[i]))
    head += (f" The bias is largest at {x_name} = {xs[worst]:g}, where the mean is {number(means[worst])} against "
             f"a true {number(truth)}.")
    crossings = [(xs[i], xs[j]) for i, j in zip(biased, biased[1:]) if bias[i] * bias[j] < 0]
    if crossings:
        where = join_names([f"{a:g} and {b:g}" for a, b in crossings])
        head += (f" The mean crosses the true value between {x_name} = {where}: close to the truth there by "
                 f"coincidence, not because the bias has gone, since it changes sign on either side.")
    elif all(off):
        head += f" The bias keeps one sign over the {what}s tested."
    else:
        head += " Where it shows, the bias has one sign."
    return head


def bias_summary(means: Sequence[float], stderrs: Sequence[float], truth: float,
                 what: str = "temperature") -> str:
    """A clause for a summary: "biased at every temperature tried", "biased at some of the
    temperatures tried" or "within noise of the truth at every temperature tried"."""
    off = [abs(m - truth) > 2 * s for m, s in zip(means, stderrs)]
    if all(off):
        return f"biased at every {what} tried"
    if any(off):
        return f"biased at some of the {what}s tried"
    return f"within noise of the truth at every {what} tried"


def collapse_reading(top_weight: float, effective: float, heavy_spread: float, light_spread: float) -> str:
    """What a mixture posterior did with its components, from `weight_summary` and the spread across
    images of the heaviest and of the other components' means."""
    if top_weight > 0.99:
        text = (f"The posterior has collapsed onto one component: the heaviest carries {top_weight:.3f} of "
                f"the weight on average, and the effective number of components is {effective:.2f}.")
        if light_spread < heavy_spread / 3:
            text += (f" The light components' means hardly change from one image to the next (spread "
                     f"{light_spread:.2f} against {heavy_spread:.2f} for the heaviest): they are dead, and decode "
                     "to much the same picture whatever the input.")
        else:
            text += (f" The light components' means still follow the input (spread {light_spread:.2f} against "
                     f"{heavy_spread:.2f} for the heaviest), but with no weight they barely enter the ELBO.")
        return text
    if top_weight < 0.9:
        return (f"More than one component carries real weight for a typical image: the heaviest carries "
                f"{top_weight:.2f} on average, and the effective number of components is {effective:.2f}.")
    return (f"One component dominates (it carries {top_weight:.2f} of the weight on average, an effective "
            f"{effective:.2f} components), and the others keep a small share.")


def unmeasured_note(collapsed: bool) -> str:
    """What chapter 6 cannot say about a mixture posterior that collapsed (empty if it did not)."""
    if collapsed:
        return ("What a mixture posterior that keeps several components alive would buy is therefore "
                "not measured here.")
    return ""


def confound_reading(vs_vae: "Interval", control_vs_vae: "Interval", vs_control: "Interval",
                     collapsed: bool) -> str:
    """Does the Monte-Carlo-KL control explain the mixture posterior's difference from the VAE?

    Each interval is of an NLL difference (model minus the second name): the mixture posterior
    minus the VAE, the control minus the VAE, the mixture posterior minus the control.
    """
    if vs_control.sign == 0 and vs_vae.sign != 0 and control_vs_vae.sign == vs_vae.sign:
        return ("The control reproduces the difference: it comes from training with a Monte-Carlo KL "
                "instead of the analytic one, not from the mixture.")
    if vs_control.sign == 0 and vs_vae.sign == 0 and control_vs_vae.sign == 0:
        return "None of the three differences is resolved in this build, so there is nothing to attribute."
    if vs_control.sign != 0:
        tail = ("; since it collapsed, its extra parameters, or the path its training took before the "
                "collapse, make a difference of their own." if collapsed else
                "; its use of several components is the likely source.")
        return ("The mixture posterior differs from the control by more than noise, so the Monte-Carlo KL "
                "does not explain all of its difference from the VAE" + tail)
    return ("The mixture posterior cannot be told apart from the control, but the two differences from "
            "the VAE are not resolved alike, so this build cannot say how much of the mixture posterior's "
            "difference the Monte-Carlo KL explains.")
