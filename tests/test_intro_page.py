"""The introduction is an executable MyST page (its headline is computed from the committed
400-epoch runs): it must run, and stay free of stored outputs like the chapters."""

from __future__ import annotations

from pathlib import Path

import jupytext
import nbclient
import pytest

INTRO = Path(__file__).resolve().parents[1] / "book" / "intro.md"


def test_intro_is_a_myst_notebook_with_code():
    nb = jupytext.read(INTRO)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert any(cell.cell_type == "code" for cell in nb.cells)


def test_intro_runs(tmp_path):
    nb = jupytext.read(INTRO)
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(INTRO.parent)}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the headline figure
