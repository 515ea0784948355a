"""What every chapter's first cell does (seeds, device, profile, figure style) and how pages show
results: `glue` for numbers in the prose, `table` for Markdown tables. The sentences the pages
build from measured numbers are in `vaelib.wording`."""

from __future__ import annotations

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
    (default: all l); cells are written with str(), a "|" inside one is escaped, and a "±" is
    tied to the number after it (a no-break space), so that a narrow column breaks "84.68 ± 0.22"
    before the "±", never after it.
    """
    from IPython.display import Markdown

    align = align or "l" * len(header)
    if len(align) != len(header) or set(align) - set(ALIGNMENTS):
        raise ValueError(f"align needs one of l, r, c for each of the {len(header)} columns, got {align!r}")

    def line(cells: Sequence[Any]) -> str:
        return "| " + " | ".join(str(cell).replace("|", "\\|").replace("± ", "±\u00a0")
                                 for cell in cells) + " |"

    lines = [line(header), line([ALIGNMENTS[a] for a in align])]
    for row in rows:
        if len(row) != len(header):
            raise ValueError(f"a row has {len(row)} cells but the header {len(header)}: {row!r}")
        lines.append(line(row))
    return Markdown("\n".join(lines))
