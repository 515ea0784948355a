"""What every chapter's first cell does: seeds, device, profile, figure style, and `glue`."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import torch

from .experiments import Profile, resolve_device, resolve_profile


@dataclass(frozen=True)
class Session:
    """The settings a chapter runs under (printed at the top of every chapter)."""

    profile: Profile
    device: torch.device
    seed: int

    def __str__(self) -> str:
        return (
            f"profile: {self.profile.name} ({self.profile.description})\n"
            f"device: {self.device}; torch {torch.__version__}; seed {self.seed}"
        )


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
