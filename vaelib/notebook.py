"""What every chapter's first cell does (seeds, device, profile, figure style) and how pages show
results: `glue` for numbers in the prose, `table` for tables, `percent_and_error` for shares."""

from __future__ import annotations

import math
import random
import textwrap
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import torch

from . import figure_fonts
from .experiments import Profile, resolve_profile
from .settings import resolve_device

if TYPE_CHECKING:
    from IPython.display import Markdown


@dataclass(frozen=True)
class Session:
    """The settings a chapter runs under (printed at the top of every chapter)."""

    profile: Profile
    device: torch.device
    seed: int

    def __str__(self) -> str:
        return "\n".join([
            f"profile: {self.profile.name}",
            describe_budget(self.profile),
            f"device: {self.device}; torch {torch.__version__}; seed {self.seed}",
        ])


OUTPUT_WIDTH = 78  # characters a code cell's output box shows on the site without scrolling


def describe_budget(profile: Profile, width: int = OUTPUT_WIDTH) -> str:
    """The profile's description, indented and wrapped to fit a cell's output box on the site."""
    return textwrap.fill(profile.description, width, initial_indent="  ", subsequent_indent="  ")


def setup(seed: int = 0, profile: str | None = None, device: str | None = None) -> Session:
    """Seed every generator, pick the device and profile, set a readable figure style; print them."""
    random.seed(seed)
    torch.manual_seed(seed)
    try:
        import numpy as np

        np.random.seed(seed)
    except ImportError:  # pragma: no cover - numpy comes with matplotlib
        pass
    import matplotlib.pyplot as plt

    plt.rcParams.update({"figure.dpi": 90, "savefig.dpi": 110, "axes.titlesize": "medium", "figure.autolayout": False})
    figure_fonts.install()  # each figure's PNG records its smallest font size (the site check reads it)
    session = Session(resolve_profile(profile), resolve_device(device), seed)
    print(session)
    return session


def glue(name: str, value: Any, display: bool = False) -> None:
    """Make a computed value citable in the page's prose ({glue:text}`name`) when built by Jupyter Book.

    Outside the book (Colab, plain Jupyter) myst-nb may be missing; the value is then
    only shown if `display`. Returns None, so a glue call ending a cell prints nothing.
    """
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        if display:
            print(f"{name} = {value}")
        return
    myst_glue(name, value, display=display)


ALIGNMENTS = {"l": "---", "r": "---:", "c": ":---:"}


def table(header: Sequence[str], rows: Iterable[Sequence[Any]], align: str | None = None) -> Markdown:
    """A Markdown table (GitHub pipe syntax), shown as a table in Jupyter, Colab and the book.

    Every chapter displays its tables with it: return it from a cell or pass it to
    `IPython.display.display`. The book renders Markdown outputs as gfm
    (`nb_render_markdown_format` in _config.yml). `align` has one letter per column, l, r or c
    (default: all l); cells are written with str(), a "|" inside one is escaped.
    """
    from IPython.display import Markdown

    align = align or "l" * len(header)
    if len(align) != len(header) or set(align) - set(ALIGNMENTS):
        raise ValueError(f"align needs one of l, r, c for each of the {len(header)} columns, got {align!r}")

    def line(cells: Sequence[Any]) -> str:
        return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |"

    lines = [line(header), line([ALIGNMENTS[a] for a in align])]
    for row in rows:
        if len(row) != len(header):
            raise ValueError(f"a row has {len(row)} cells but the header {len(header)}: {row!r}")
        lines.append(line(row))
    return Markdown("\n".join(lines))


def percent_and_error(pair: tuple[float, float]) -> str:
    """A share and its standard error as the chapters print them: (0.123, 0.004) -> "12.3% ± 0.4"."""
    share, stderr = pair
    return f"{100 * share:.1f}% ± {100 * stderr:.1f}"


# -- sentences the chapters build from measured numbers (they must read right for any value) ----------

def format_number(value: float, digits: int = 1, signed: bool = False) -> str:
    """`value` rounded to `digits` decimals, never written "-0.0" (a rounded zero has no sign);
    `signed` writes a "+" before a positive value."""
    text = f"{value:.{digits}f}"
    if float(text) == 0:
        return text.lstrip("-")
    return "+" + text if signed and not text.startswith("-") else text


def factor_phrase(log_ratio: float, lower: str = "lower", higher: str = "higher") -> str:
    """A log-ratio (nats) as a factor in words: "3.2 times lower", "about the same" below 10%.

    Positive `log_ratio` means the first quantity is larger by exp(log_ratio) ("higher").
    """
    factor = math.exp(abs(log_ratio))
    if factor < 1.1:
        return "about the same (within 10%)"
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
    return (f"along {what} the prior's log-density sinks a median {format_number(med, 2)} nats below the chord "
            f"({spread}), so at its lowest point the density is {factor_phrase(-med)} than the chord's")


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
