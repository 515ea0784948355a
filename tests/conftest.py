"""Test-wide settings, applied when pytest imports this file (before any test or notebook runs).

`pytest` runs the unit tests and, through nbmake, every chapter notebook. The notebooks'
kernels are child processes that inherit this process's environment, so setting
VAELIB_PROFILE here makes every chapter train in the `smoke` profile (seconds per
notebook) unless the caller chose a profile explicitly, e.g. `VAELIB_PROFILE=cpu pytest`.
"""

from __future__ import annotations

import os

os.environ.setdefault("VAELIB_PROFILE", "smoke")

# Unit tests draw figures without a display. The backend is chosen for this process only:
# the notebook kernels keep Jupyter's inline backend, so nbmake renders every figure the
# way the book build does and a figure that fails to render fails its notebook.
import matplotlib  # noqa: E402

matplotlib.use("Agg")
