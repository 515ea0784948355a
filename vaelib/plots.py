"""Figures the chapters share: image grids, latent scatters, decoded manifolds, training curves."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Sequence

import matplotlib

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import Tensor

from .files import atomic_write, check_output_file
from .model import VAE
from .train import History

DIGIT_COLORS = matplotlib.colormaps["tab10"]


def image_grid(images: Tensor, cols: int | None = None, side: int = 28, pad: int = 1) -> np.ndarray:
    """Tile (N, side*side) or (N, side, side) images into one array, row by row, with a thin gap."""
    images = torch.as_tensor(images).detach().float().cpu().reshape(-1, side, side)
    n = images.shape[0]
    cols = cols or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = np.ones((rows * (side + pad) - pad, cols * (side + pad) - pad), dtype=np.float32)
    for i, img in enumerate(images.numpy()):
        r, c = divmod(i, cols)
        grid[r * (side + pad) : r * (side + pad) + side, c * (side + pad) : c * (side + pad) + side] = img
    return grid


FRAME_WIDTH = 2  # pixels of the frame around a framed tile (a tile is 28 pixels wide)
FRAME_GAP = 2  # white pixels between the frames of two neighbouring framed tiles


def framed_image_grid(images: Tensor, framed: Tensor | Sequence[bool], cols: int | None = None, side: int = 28,
                      colour: str = "tab:red", width: int = FRAME_WIDTH, gap: int = FRAME_GAP) -> np.ndarray:
    """An RGB image grid, dark ink on white, with a frame in `colour` around every tile whose `framed` is true.

    The frame is `width` pixels of the grid itself, just outside its tile, and tiles are set
    2 * width + gap pixels apart, so two framed neighbours keep `gap` white pixels between their
    frames. Being part of the image, frames shrink with it and cannot run together at any display size.
    """
    images = torch.as_tensor(images).detach().float().cpu().reshape(-1, side, side)
    framed = torch.as_tensor(framed).detach().cpu().bool().reshape(-1)
    if len(framed) != len(images):
        raise ValueError(f"framed has {len(framed)} entries for {len(images)} images")
    n = images.shape[0]
    cols = cols or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    cell = side + 2 * width  # a tile with room for its frame
    pitch = cell + gap
    grid = np.ones((rows * pitch - gap, cols * pitch - gap, 3), dtype=np.float32)
    rgb = np.asarray(matplotlib.colors.to_rgb(colour), dtype=np.float32)
    for i, (img, frame) in enumerate(zip(images.numpy(), framed.tolist())):
        r, c = divmod(i, cols)
        y, x = r * pitch, c * pitch
        if frame:
            grid[y : y + cell, x : x + cell] = rgb
        grid[y + width : y + width + side, x + width : x + width + side] = 1.0 - img[..., None]
    return grid


def show_images(images: Tensor, cols: int | None = None, ax: plt.Axes | None = None, title: str | None = None,
                framed: Tensor | Sequence[bool] | None = None) -> plt.Axes:
    """Draw an image grid (dark digits on white, like ink) without axes.

    `framed`, one boolean per image, marks tiles with a red frame (see `framed_image_grid`); the
    tiles are then set a little further apart, on white, so that every frame stands on its own.
    """
    ax = ax or plt.gca()
    if framed is None:
        ax.imshow(1.0 - image_grid(images, cols), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    else:
        ax.imshow(framed_image_grid(images, framed, cols), interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def save_image_grid(images: Tensor, path: str | Path, cols: int | None = None, title: str | None = None) -> Path:
    """Write an image grid to exactly `path` (used by `python -m vaelib sample`); returns it.

    The format follows the suffix (.png, .pdf, .svg, ...; PNG without one). The file is written
    atomically: a full or read-only disk raises a one-line `vaelib.files.WriteError` and leaves
    neither a 0-byte file nor a temporary one, and a folder given as `path` is refused.
    """
    path = check_output_file(Path(path), "the image file")
    grid = image_grid(images, cols)
    fig, ax = plt.subplots(figsize=(grid.shape[1] / 40 + 0.5, grid.shape[0] / 40 + 0.8))
    suffix = path.suffix.lower().lstrip(".")
    fmt = suffix if suffix in fig.canvas.get_supported_filetypes() else "png"
    try:
        show_images(images, cols, ax=ax, title=title)
        fig.tight_layout()
        with atomic_write(path, "wb", what="the image file", hint="free some space or choose another path") as handle:
            fig.savefig(handle, dpi=100, format=fmt)
    finally:
        plt.close(fig)
    return path


def scatter_by_digit(points: Tensor, labels: Tensor, ax: plt.Axes | None = None, title: str | None = None,
                     size: float = 2.0, legend: bool = True) -> plt.Axes:
    """2-d points coloured by their digit class, with a legend of the ten colours."""
    ax = ax or plt.gca()
    points, labels = torch.as_tensor(points).cpu().numpy(), torch.as_tensor(labels).cpu().numpy()
    for digit in range(10):
        sel = labels == digit
        ax.scatter(points[sel, 0], points[sel, 1], s=size, color=DIGIT_COLORS(digit), label=str(digit), alpha=0.6,
                   rasterized=True)
    ax.set_xlabel("$z_1$")
    ax.set_ylabel("$z_2$")
    ax.set_aspect("equal", adjustable="datalim")
    if legend:
        ax.legend(title="digit", markerscale=4, fontsize="small", loc="center left", bbox_to_anchor=(1.0, 0.5))
    if title:
        ax.set_title(title)
    return ax


@torch.no_grad()
def decoded_manifold(model: VAE, lim: float = 3.0, n: int = 15, ax: plt.Axes | None = None,
                     title: str | None = None, limits: tuple[float, float, float, float] | None = None) -> plt.Axes:
    """Decode an n x n grid of points of a 2-d latent space (z_2 grows upwards) and tile the images."""
    if model.latent_dim != 2:
        raise ValueError(f"the decoded manifold is drawn for 2-d latent spaces; this model has z={model.latent_dim}")
    x0, x1, y0, y1 = limits or (-lim, lim, -lim, lim)
    xs, ys = torch.linspace(x0, x1, n), torch.linspace(y1, y0, n)
    z = torch.stack(torch.meshgrid(ys, xs, indexing="ij")[::-1], -1).reshape(-1, 2)
    device = next(model.parameters()).device
    images = model.decode(z.to(device)).cpu()
    ax = ax or plt.gca()
    ax.imshow(1.0 - image_grid(images, n, pad=0), cmap="gray", vmin=0, vmax=1, extent=(x0, x1, y0, y1))
    ax.set_xlabel("$z_1$")
    ax.set_ylabel("$z_2$")
    if title:
        ax.set_title(title)
    return ax


def plot_histories(histories: Mapping[str, History], ax: plt.Axes | None = None, test: bool = True) -> plt.Axes:
    """Training loss (dashed) and test negative ELBO (solid) per epoch for several runs."""
    ax = ax or plt.gca()
    for i, (name, h) in enumerate(histories.items()):
        color = f"C{i}"
        ax.plot(h.epoch, h.train_loss, "--", color=color, label=f"{name} (train)")
        if test and not all(map(math.isnan, h.test_neg_elbo)):
            ax.plot(h.epoch, h.test_neg_elbo, "-", color=color, label=f"{name} (test)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("negative ELBO (nats per image)")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    return ax


def plot_early_stopping(histories: Mapping[str, History], warmup: int = 0, ax: plt.Axes | None = None,
                        span: float = 12.0) -> plt.Axes:
    """Validation negative ELBO per epoch of early-stopped runs, the kept (best) epoch of each
    marked, the KL warm-up shaded; the y-axis shows `span` nats above the lowest point."""
    ax = ax or plt.gca()
    lows = []
    for i, (name, h) in enumerate(histories.items()):
        stop = h.stopping_point()
        ax.plot(h.epoch, h.valid_neg_elbo, color=f"C{i}", linewidth=1, label=f"{name} (kept epoch {stop.best})")
        ax.plot(stop.best, stop.best_valid_neg_elbo, "o", color=f"C{i}")
        lows.append(stop.best_valid_neg_elbo)
    if warmup:
        ax.axvspan(0, warmup, color="grey", alpha=0.15, label="KL warm-up")
    if lows:
        ax.set_ylim(min(lows) - 1, min(lows) + span)
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation −ELBO, nats per image")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    return ax


def figure_grid(n: int, cols: int, size: float = 3.2) -> tuple[plt.Figure, Sequence[plt.Axes]]:
    """A figure with n panels in rows of `cols`, unused panels removed."""
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * size, rows * size), squeeze=False)
    flat = axes.ravel()
    for ax in flat[n:]:
        ax.remove()
    return fig, flat[:n]


# -- figures sized for reading on the site (chapters 1-3) ----------------------------------------

PAGE_WIDTH = 8.4  # inches: the figure width that fills a page's content column at 1280 px


def sample_panels(panels: Mapping[str, tuple[Tensor, Tensor | Sequence[bool] | None]], cols: int = 10,
                  per_row: int = 2, width: float = PAGE_WIDTH) -> plt.Figure:
    """Image grids side by side, `per_row` to a row, each image tiled in rows of `cols` with
    hybrids framed: `panels` maps a title to (images, framed flags or None).

    The axes fill their share of the width with thin margins, so a 10 x 10 grid drawn two to a
    row of `PAGE_WIDTH` inches shows each digit at about 30 px on the site.
    """
    if not panels:
        raise ValueError("no panels to draw")
    rows = math.ceil(len(panels) / per_row)
    n_images = max(len(images) for images, _ in panels.values())
    aspect = math.ceil(n_images / cols) / cols  # grid height over width
    panel = width / per_row
    fig, axes = plt.subplots(rows, per_row, figsize=(width, rows * (panel * aspect + 0.55)), squeeze=False)
    for ax, (title, (images, framed)) in zip(axes.ravel(), panels.items()):
        show_images(images, cols=cols, ax=ax, title=title, framed=framed)
    for ax in axes.ravel()[len(panels):]:
        ax.remove()
    fig.subplots_adjust(left=0.005, right=0.995, bottom=0.01, top=1 - 0.5 / (rows * (panel * aspect + 0.55)),
                        wspace=0.03, hspace=0.5 / (panel * aspect))
    return fig


@torch.no_grad()
def prior_contours(ax: plt.Axes, prior: torch.nn.Module, limits: tuple[float, float, float, float],
                   n: int = 161, levels: int = 6, colour: str = "tab:red") -> None:
    """Contour lines of a 2-d prior's log-density over limits (x0, x1, y0, y1), from its peak down
    in equal steps of log-density; drawn on top of whatever `ax` shows."""
    if getattr(prior, "latent_dim", None) != 2:
        raise ValueError("prior contours are drawn for 2-d latent spaces")
    x0, x1, y0, y1 = limits
    xs, ys = torch.linspace(x0, x1, n), torch.linspace(y0, y1, n)
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1).reshape(-1, 2)
    device = next(iter(prior.buffers()), next(prior.parameters(), torch.empty(0))).device
    log_p = prior.log_prob(grid.to(device)).cpu().reshape(n, n).numpy()
    top = float(log_p.max())
    steps = np.linspace(top - 8.0, top - 0.5, levels)  # from e^-8 to e^-0.5 of the peak density
    ax.contour(xs.numpy(), ys.numpy(), log_p, levels=steps, colors=colour, linewidths=0.9, alpha=0.8)


def digit_rows(images: Tensor, digits: Tensor, confidence: Tensor, per_digit: int = 12,
               threshold: float = 0.9) -> tuple[Tensor, Tensor]:
    """Ten rows of images, one per digit 0-9, each the `per_digit` most confident images read as
    that digit (blank tiles where there are fewer): (10 * per_digit, pixels) and their hybrid flags."""
    images = torch.as_tensor(images).detach().float().cpu().reshape(len(images), -1)
    digits, confidence = torch.as_tensor(digits).cpu(), torch.as_tensor(confidence).cpu()
    out = torch.zeros(10 * per_digit, images.shape[1])
    framed = torch.zeros(10 * per_digit, dtype=torch.bool)
    for d in range(10):
        pick = torch.nonzero(digits == d).squeeze(1)
        pick = pick[torch.argsort(confidence[pick], descending=True, stable=True)][:per_digit]
        out[d * per_digit : d * per_digit + len(pick)] = images[pick]
        framed[d * per_digit : d * per_digit + len(pick)] = confidence[pick] < threshold
    return out, framed
