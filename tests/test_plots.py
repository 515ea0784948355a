"""Image grids with framed tiles: every frame must stay visibly separate from its neighbours'.

Chapter 2 frames the hybrids among 60 prior samples. Frames drawn on the tiles' borders of a
tightly packed grid touched wherever two framed tiles were neighbours, so a run of hybrids
read as one large red box. These tests render the grid the way the book does and count the
frames' edges along a row and a column of tiles.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.colors import to_rgb

from vaelib import plots

SIDE = 28


def ink_images(n: int) -> torch.Tensor:
    """n dark squares (all ink), so that only the frames and the gaps are not black."""
    return torch.ones(n, SIDE * SIDE)


def red_mask(rgb: np.ndarray, colour: str = "tab:red", tol: float = 0.12) -> np.ndarray:
    return np.abs(rgb[..., :3] - np.asarray(to_rgb(colour))).max(-1) < tol


def runs(line: np.ndarray) -> int:
    """How many separate stretches of True a 1-d boolean array holds."""
    line = line.astype(int)
    return int(line[0] + np.count_nonzero(np.diff(line) == 1))


def render(images, framed, cols: int, width_in: float, dpi: float = 90) -> np.ndarray:
    """The grid as the book shows it: one axes filling a figure `width_in` inches wide."""
    rows = -(-len(images) // cols)
    fig, ax = plt.subplots(figsize=(width_in, width_in * rows / cols), dpi=dpi)
    try:
        fig.subplots_adjust(0, 0, 1, 1)
        plots.show_images(images, cols=cols, ax=ax, framed=framed)
        fig.canvas.draw()
        return np.asarray(fig.canvas.buffer_rgba())[..., :3] / 255.0
    finally:
        plt.close(fig)


def test_framed_grid_keeps_white_between_neighbouring_frames():
    grid = plots.framed_image_grid(ink_images(3), [True, True, False], cols=3)
    width, gap = plots.FRAME_WIDTH, plots.FRAME_GAP
    cell = SIDE + 2 * width
    assert grid.shape == (cell, 3 * cell + 2 * gap, 3)
    between = grid[:, cell : cell + gap]
    assert np.all(between == 1.0), "the gap between two framed tiles must be white"
    red = red_mask(grid)
    assert red[:, :cell].sum() == cell**2 - SIDE**2  # a full frame around the first tile
    assert not red[:, 2 * (cell + gap) :].any()  # the unframed tile has none
    inner = grid[width : width + SIDE, width : width + SIDE]
    assert np.all(inner == 0.0)  # the tile itself is drawn as ink on white


def test_framed_grid_checks_its_mask():
    with pytest.raises(ValueError, match="framed has 2 entries for 3 images"):
        plots.framed_image_grid(ink_images(3), [True, False])


@pytest.mark.parametrize("width_in", [7.8, 5.0])  # the chapter's width, and smaller
def test_rendered_frames_do_not_merge(width_in):
    cols, rows = 10, 6
    image = render(ink_images(cols * rows), torch.ones(cols * rows, dtype=torch.bool), cols, width_in)
    red = red_mask(image)
    ys, xs = np.nonzero(red)
    top, left = ys.min(), xs.min()
    tile_px = (xs.max() - left) / cols  # rendered pixels per tile, gap included
    across = red[int(top + tile_px / 2)]  # a pixel row through the middle of the first tile row
    down = red[:, int(left + tile_px / 2)]  # a pixel column through the first tile column
    # Each separate frame is crossed twice; frames that touch share one crossing.
    assert runs(across) == 2 * cols
    assert runs(down) == 2 * rows


def test_unframed_grid_is_unchanged():
    images = torch.rand(6, SIDE * SIDE)
    fig, ax = plt.subplots()
    try:
        plots.show_images(images, cols=3, ax=ax)
        shown = ax.get_images()[0].get_array()
    finally:
        plt.close(fig)
    np.testing.assert_allclose(shown, 1.0 - plots.image_grid(images, 3))


def test_early_stopping_plot_marks_the_kept_epoch_and_needs_validation():
    from vaelib.train import History

    valid = [100.0, 95.0, 93.0, 93.5, 94.0]
    run = History(epoch=[1, 2, 3, 4, 5], valid_neg_elbo=valid)
    fig, ax = plt.subplots()
    plots.plot_early_stopping({"run": run}, warmup=2, ax=ax)
    marker = [line for line in ax.lines if line.get_marker() == "o"]
    assert [tuple(m.get_xydata()[0]) for m in marker] == [(3.0, 93.0)]
    assert "kept epoch 3" in ax.get_legend_handles_labels()[1][0]
    assert ax.get_ylim() == (92.0, 105.0)
    with pytest.raises(ValueError, match="no validation ELBO"):
        plots.plot_early_stopping({"plain": History(epoch=[1], valid_neg_elbo=[float("nan")])}, ax=ax)
    plt.close(fig)
