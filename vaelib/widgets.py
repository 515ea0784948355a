"""Latent sliders for a running kernel, and the static figure that stands in for them on the website.

`latent_explorer(model)` builds an ipywidgets panel: one slider per latent dimension and
the decoded image, redrawn on every slider move (one decoder pass, a millisecond or two on
a CPU). For a mixture prior a component selector re-centres the sliders on a component.
`traversal_figure(model)` draws the same ranges as a static grid, and `show_explorer(model)`
shows both plus a line saying where the live version runs: a built web page has no kernel,
so a widget there cannot react, and the figure keeps the page useful.

Nothing heavy happens at import: ipywidgets and pyplot are imported when first needed.
"""

from __future__ import annotations

import functools
import math
import struct
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .distributions import mixture_log_prob
from .priors import FactorizedMixture, GaussianMixture, StandardNormal, VampPrior

__all__ = [
    "LatentRanges", "latent_ranges", "latent_explorer", "traversal_figure", "show_explorer", "png_bytes", "STATIC_NOTE",
]

STATIC_NOTE = (
    "Static view: each row of the figure above sweeps one latent dimension,\n"
    "with the others held at the centre. The sliders need a running Python\n"
    "kernel: open this page on Colab (rocket button at the top) or in Jupyter."
)

_SLIDER_STEPS = 200  # slider resolution: 200 steps across each range
_PLANE_POINTS = 2000  # encodings drawn on the 2-d plane


# ---------------------------------------------------------------------------------------------
# Ranges: where each latent dimension's slider starts and how far it goes.
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LatentRanges:
    """Per-dimension centre and [low, high] of the sliders (CPU float tensors of shape (D,))."""

    centre: Tensor
    low: Tensor
    high: Tensor
    component: int | None  # the mixture component they are centred on, if any


def _mixture_parts(prior: Any) -> tuple[Tensor, Tensor, Tensor] | None:
    """(means (M, D), logvars (M, D), log_weights (M,)) of a prior that mixes full-dimensional Gaussians."""
    with torch.no_grad():
        if isinstance(prior, GaussianMixture):
            means, logvars, log_w = prior.means, prior.logvars, prior.log_weights
        elif isinstance(prior, VampPrior):
            (means, logvars), log_w = prior.components(), prior.log_weights
        else:
            return None
    return means.detach().float().cpu(), logvars.detach().float().cpu(), log_w.detach().float().cpu()


def _check_span(span: float) -> float:
    if isinstance(span, bool) or not isinstance(span, (int, float)) or not math.isfinite(span) or span <= 0:
        raise ValueError(f"span must be a positive number of standard deviations, got {span!r}")
    return float(span)


def _check_component(component: Any, n_components: int) -> int:
    if isinstance(component, bool) or not isinstance(component, (int, np.integer)):
        raise ValueError(f"component must be an integer index, got {component!r}")
    if not 0 <= component < n_components:
        raise ValueError(f"component {component} is out of range: this prior has components 0..{n_components - 1}")
    return int(component)


def latent_ranges(prior: Any, span: float = 3.0, component: int | None = None) -> LatentRanges:
    """Slider centre and range per dimension for `prior`, `span` standard deviations either side.

    * standard normal: centre 0, range -span..span;
    * Gaussian mixture (also the VampPrior): the component's mean +- span x its standard deviation
      (default component: the heaviest, which is component 0 when the weights are uniform);
    * factorised mixture: from the lowest component mean - span std to the highest + span std in each
      dimension, centred on the mixture's mean (it has no joint components to choose from);
    * any other prior: mean +- span std of 4096 prior draws (drawn without touching the global seed).
    """
    span = _check_span(span)
    parts = _mixture_parts(prior)
    if parts is not None:
        means, logvars, log_w = parts
        component = int(log_w.argmax()) if component is None else _check_component(component, means.shape[0])
        centre, std = means[component], torch.exp(0.5 * logvars[component])
        return LatentRanges(centre.clone(), centre - span * std, centre + span * std, component)
    if component is not None:
        raise ValueError(f"component={component!r} was given, but a {type(prior).__name__} prior has no components to "
                         "centre on (only GaussianMixture and VampPrior do)")
    if isinstance(prior, StandardNormal):
        zero = torch.zeros(prior.latent_dim)
        return LatentRanges(zero, zero - span, zero + span, None)
    if isinstance(prior, FactorizedMixture):
        with torch.no_grad():
            means, std = prior.means.detach().float().cpu(), torch.exp(0.5 * prior.logvars.detach().float().cpu())
        low, high = (means - span * std).min(dim=1).values, (means + span * std).max(dim=1).values
        return LatentRanges(means.mean(dim=1), low, high, None)
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        draws = prior.sample(4096).detach().float().cpu()
    centre, std = draws.mean(0), draws.std(0)
    return LatentRanges(centre, centre - span * std, centre + span * std, None)


# ---------------------------------------------------------------------------------------------
# Model checks and decoding
# ---------------------------------------------------------------------------------------------
def _check_model(model: Any, who: str) -> int:
    """The latent size of a VAE-like model, or a TypeError naming what it lacks."""
    missing = [name for name in ("decode", "prior", "latent_dim") if not hasattr(model, name)]
    if missing:
        raise TypeError(f"{who} needs a VAE-like model with decode(z), prior and latent_dim; "
                        f"{type(model).__name__} has no {', '.join(missing)}")
    if not callable(model.decode):
        raise TypeError(f"{who}: model.decode must be callable, got {type(model.decode).__name__}")
    if not callable(getattr(model.prior, "sample", None)):
        raise TypeError(f"{who}: model.prior ({type(model.prior).__name__}) has no sample(n) method")
    dim = model.latent_dim
    if isinstance(dim, bool) or not isinstance(dim, int) or dim <= 0:
        raise TypeError(f"{who}: model.latent_dim must be a positive integer, got {dim!r}")
    return dim


def _model_device(model: Any) -> torch.device:
    params = getattr(model, "parameters", None)
    first = next(params(), None) if callable(params) else None
    return first.device if first is not None else torch.device("cpu")


@torch.no_grad()
def _decode_square(model: Any, z: Tensor) -> Tensor:
    """Decode latent codes (N, D) into (N, side, side) CPU images of pixel values."""
    out = model.decode(z.to(_model_device(model))).detach().float().cpu()
    n_pixels = out[0].numel()
    side = math.isqrt(n_pixels)
    if side * side != n_pixels:
        raise ValueError(f"the explorer shows square grey-level images; this decoder returns {n_pixels} values "
                         "per image, which is not a square number")
    return out.reshape(-1, side, side)


def _as_latent(z: Any, dim: int) -> Tensor:
    """z as a float32 CPU tensor of shape (dim,); accepts (dim,) or (1, dim)."""
    z = torch.as_tensor(z.detach() if isinstance(z, Tensor) else z, dtype=torch.float32).cpu()
    if z.dim() == 2 and z.shape[0] == 1:
        z = z[0]
    if z.shape != (dim,):
        raise ValueError(f"expected a latent vector of length {dim} (shape ({dim},) or (1, {dim})), "
                         f"got shape {tuple(z.shape)}")
    if not torch.isfinite(z).all():
        raise ValueError(f"the latent vector has non-finite entries: {z.tolist()}")
    return z


def _most_responsible(z: Tensor, parts: tuple[Tensor, Tensor, Tensor]) -> int:
    """Index of the mixture component with the highest weighted density at z."""
    means, logvars, log_w = parts
    log_density = -0.5 * (logvars + (z - means) ** 2 * torch.exp(-logvars)).sum(-1) + log_w
    return int(log_density.argmax())


# ---------------------------------------------------------------------------------------------
# PNG encoding (zlib only: fast, no imaging library needed)
# ---------------------------------------------------------------------------------------------
def png_bytes(pixels: np.ndarray, level: int = 6) -> bytes:
    """Encode uint8 pixels, (H, W) grey or (H, W, 3) RGB, as a PNG file."""
    a = np.ascontiguousarray(pixels, dtype=np.uint8)
    if a.ndim == 2:
        colour_type = 0
    elif a.ndim == 3 and a.shape[2] == 3:
        colour_type = 2
    else:
        raise ValueError(f"expected (H, W) grey or (H, W, 3) RGB pixels, got shape {a.shape}")
    height, width = a.shape[:2]
    rows = np.concatenate([np.zeros((height, 1), np.uint8), a.reshape(height, -1)], axis=1)  # filter byte 0 per row

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows.tobytes(), level))
            + chunk(b"IEND", b""))


def _ink_png(image: Tensor, scale: int) -> bytes:
    """Pixel probabilities drawn as dark ink on white, each pixel a scale x scale block."""
    grey = np.round(255.0 * (1.0 - image.clamp(0, 1).numpy())).astype(np.uint8)
    return png_bytes(grey.repeat(scale, axis=0).repeat(scale, axis=1))


def _slider_grid(low: float, high: float, value: float) -> tuple[float, float, float]:
    """(min, max, step) of a slider covering [low, high] and `value`, with `value` exactly on its step grid.

    A browser slider snaps its value to min + k * step and sends the snapped value back to the
    kernel; with `value` on the grid, the z that was set (a prior draw, an encoding) stays as it is.
    The range only grows, by less than one step at each end.
    """
    low, high = min(low, value), max(high, value)
    step = max((high - low) / _SLIDER_STEPS, 1e-6)
    below = math.ceil((value - low) / step - 1e-4)  # 1e-4: float32 rounding must not add a step
    above = math.ceil((high - value) / step - 1e-4)
    return value - below * step, value + above * step, step


def _fixed(widgets: Any, width: str, height: str | None = None) -> Any:
    """A layout of fixed size that a flex box may not shrink (so images keep their shape)."""
    return widgets.Layout(width=width, height=height, min_width=width, flex="0 0 auto")


def _fmt(values: Sequence[float]) -> str:
    return "(" + ", ".join(f"{v:+.2f}" for v in values) + ")"


def _subscript(d: int) -> str:
    return "".join("₀₁₂₃₄₅₆₇₈₉"[int(c)] for c in str(d))


# ---------------------------------------------------------------------------------------------
# The 2-d plane: encodings of data images with a marker at the current z (z = 2 only)
# ---------------------------------------------------------------------------------------------
class _Plane:
    """A scatter of posterior means rendered once; each update only paints a cross and re-encodes the PNG."""

    def __init__(self, points: np.ndarray, labels: np.ndarray | None, ranges: LatentRanges, size_px: int = 260) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        from .plots import DIGIT_COLOURS

        fig = Figure(figsize=(size_px / 100, size_px / 100), dpi=100)  # not pyplot: never shown by the inline backend
        canvas = FigureCanvasAgg(fig)
        ax = fig.add_axes((0.16, 0.14, 0.8, 0.8))
        if labels is None:
            ax.scatter(points[:, 0], points[:, 1], s=2, color="0.4", alpha=0.5)
        else:
            for digit in np.unique(labels):
                sel = labels == digit
                ax.scatter(points[sel, 0], points[sel, 1], s=2, color=DIGIT_COLOURS(int(digit) % 10), alpha=0.6)
        lo = np.minimum(points.min(0), ranges.low.numpy())
        hi = np.maximum(points.max(0), ranges.high.numpy())
        pad = 0.05 * (hi - lo)
        ax.set_xlim(lo[0] - pad[0], hi[0] + pad[0])
        ax.set_ylim(lo[1] - pad[1], hi[1] + pad[1])
        ax.set_xlabel("$z_1$", fontsize=8, labelpad=1)
        ax.set_ylabel("$z_2$", fontsize=8, labelpad=1)
        ax.tick_params(labelsize=7)
        ax.set_title("encodings of data images", fontsize=8)
        canvas.draw()
        self.background = np.asarray(canvas.buffer_rgba())[..., :3].copy()
        self.transform = ax.transData
        self.box = ax.get_window_extent()
        self.height, self.width = self.background.shape[:2]

    def png(self, z: Tensor) -> bytes:
        height = self.background.shape[0]
        x, y = self.transform.transform((float(z[0]), float(z[1])))
        x = min(max(x, self.box.x0), self.box.x1)
        y = min(max(y, self.box.y0), self.box.y1)
        col, row = int(round(x)), int(round(height - y))
        img = self.background.copy()
        arm, half = 7, 1
        for r0, r1, c0, c1 in ((row - half, row + half + 1, col - arm, col + arm + 1),
                               (row - arm, row + arm + 1, col - half, col + half + 1)):
            img[max(r0, 0):max(r1, 0), max(c0, 0):max(c1, 0)] = (0, 0, 0)
        return png_bytes(img, level=1)


# ---------------------------------------------------------------------------------------------
# The explorer widget (its class is built on first use, so importing this module stays cheap)
# ---------------------------------------------------------------------------------------------
@functools.cache
def _explorer_class() -> type:
    import ipywidgets as W

    class RangeFirstSlider(W.FloatSlider):
        """A FloatSlider that sends a new range before a new value when both change in one message.

        The browser applies the attributes of a message in order. A value arriving before its new
        min/max/step would be snapped to the old step grid and sent back, overwriting the z just set
        (a prior draw, a component's mean) with a nearby point.
        """

        def send_state(self, key: Any = None) -> None:
            if key is not None and not isinstance(key, str):
                key = sorted(key, key=lambda name: name == "value")  # stable: only moves "value" to the end
            super().send_state(key)

    class LatentExplorer(W.VBox):
        """Sliders over the latent space of a VAE and the decoded image, redrawn on every change.

        State for code and tests: `.sliders` (one FloatSlider per dimension), `.image` (the decoded
        image, a PNG in an ipywidgets.Image), `.readout` (z as numbers), `.component` (the component
        selector, None unless the prior is a Gaussian mixture), `.sample_button`, `.reset_button`,
        and, when data images were given, `.image_index`, `.encode_button` and (z = 2) `.plane`.
        """

        def __init__(self, model: Any, *, component: int | None = None, span: float = 3.0, images: Any = None,
                     labels: Any = None, scale: int = 6) -> None:
            dim = _check_model(model, "latent_explorer")
            if isinstance(scale, bool) or not isinstance(scale, int) or scale <= 0:
                raise ValueError(f"scale must be a positive integer (screen pixels per image pixel), got {scale!r}")
            self.model, self.span, self.scale = model, _check_span(span), scale
            self._parts = _mixture_parts(model.prior)
            self._ranges = latent_ranges(model.prior, span, component)
            self._busy = False  # True while several widgets change at once: decode once at the end
            self._pixels = torch.zeros(0)
            self._source = ""  # where the current z came from, when not from the sliders
            self.last_update_seconds = float("nan")

            r = self._ranges
            self.sliders = []
            for d in range(dim):
                low, high, step = _slider_grid(float(r.low[d]), float(r.high[d]), float(r.centre[d]))
                self.sliders.append(RangeFirstSlider(
                    value=float(r.centre[d]), min=low, max=high, step=step, description=f"z{_subscript(d + 1)}",
                    readout_format=".2f", continuous_update=True, layout=W.Layout(width="320px")))
            for slider in self.sliders:
                slider.observe(self._on_slider, names="value")

            self.component: Any = None
            if self._parts is not None:
                n = self._parts[0].shape[0]
                if n <= 20:
                    self.component = W.Dropdown(options=list(range(n)), value=r.component, description="component",
                                                layout=_fixed(W, "200px"))
                else:
                    self.component = W.BoundedIntText(value=r.component, min=0, max=n - 1,
                                                      description=f"component (0–{n - 1})",
                                                      style={"description_width": "initial"},
                                                      layout=_fixed(W, "220px"))
                self.component.observe(self._on_component, names="value")

            self.sample_button = W.Button(description="sample from the prior", tooltip="z ~ p(z)",
                                          layout=W.Layout(width="auto", flex="0 0 auto"))
            self.sample_button.on_click(lambda _: self.sample())
            self.reset_button = W.Button(description="reset", tooltip="back to the centre of the ranges",
                                         layout=W.Layout(width="auto", flex="0 0 auto"))
            self.reset_button.on_click(lambda _: self.reset())
            side = _decode_square(model, r.centre[None]).shape[-1]
            self.image = W.Image(format="png", layout=_fixed(W, f"{side * scale}px", f"{side * scale}px"))
            self.readout = W.HTML()

            controls = [c for c in (self.component, self.sample_button, self.reset_button) if c is not None]
            right: list = [self.image]
            self.image_index = self.encode_button = self.plane = None
            self._data = self._labels = None
            if images is not None:
                self._setup_data(images, labels, dim)
                controls += [self.image_index, self.encode_button]
                if self.plane is not None:
                    right.append(self.plane)
            wrap = W.Layout(flex_flow="row wrap", align_items="flex-start")  # narrow pages: wrap, don't squeeze
            super().__init__([W.HBox(controls, layout=wrap), W.HBox([W.VBox(self.sliders), *right], layout=wrap),
                              self.readout])
            self._refresh()

        # -- data images: encode one, and (z = 2) show where the encodings lie ------------------
        def _setup_data(self, images: Any, labels: Any, dim: int) -> None:
            if not callable(getattr(self.model, "encode", None)):
                raise TypeError(f"images were given, but {type(self.model).__name__} has no encode(x) to place them")
            x = torch.as_tensor(images).detach().cpu()
            if x.dim() not in (2, 3) or x.shape[0] == 0:
                raise ValueError(f"images must be a non-empty batch (N, 28, 28) or (N, 784), "
                                 f"got shape {tuple(x.shape)}")
            x = x.float() / 255.0 if not x.is_floating_point() else x.float()
            if x.min() < 0 or x.max() > 1:
                raise ValueError("float images must hold pixel values in [0, 1] (uint8 images are divided by 255)")
            if labels is not None:
                labels = torch.as_tensor(labels).detach().cpu().reshape(-1)
                if labels.shape[0] != x.shape[0]:
                    raise ValueError(f"{labels.shape[0]} labels for {x.shape[0]} images")
            self._data, self._labels = x, labels
            self.image_index = W.BoundedIntText(value=0, min=0, max=x.shape[0] - 1,
                                                description=f"data image (0–{x.shape[0] - 1})",
                                                style={"description_width": "initial"}, layout=_fixed(W, "220px"))
            self.encode_button = W.Button(description="encode it", tooltip="z = posterior mean of that image",
                                          layout=W.Layout(width="auto", flex="0 0 auto"))
            self.encode_button.on_click(lambda _: self.encode(self.image_index.value))
            self._plane = None
            if dim == 2:
                with torch.no_grad():
                    mu, _ = self.model.encode(x[:_PLANE_POINTS].to(_model_device(self.model)))
                names = None if labels is None else labels[:_PLANE_POINTS].numpy()
                self._plane = _Plane(mu.detach().float().cpu().numpy(), names, self._ranges)
                size = (f"{self._plane.width}px", f"{self._plane.height}px")
                self.plane = W.Image(format="png", layout=_fixed(W, *size))

        def encode(self, index: int) -> None:
            """Set z to the posterior mean of data image `index` (a mixture prior moves to its nearest component)."""
            if self._data is None:
                raise ValueError("no data images were given to latent_explorer(images=...)")
            if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < len(self._data):
                raise ValueError(f"image index {index!r} is out of range 0..{len(self._data) - 1}")
            with torch.no_grad():
                mu, _ = self.model.encode(self._data[index : index + 1].to(_model_device(self.model)))
            label = "" if self._labels is None else f", label {int(self._labels[index])}"
            self._jump(mu[0].detach().float().cpu(), f"posterior mean of data image {index}{label}")

        # -- public state -------------------------------------------------------------------
        def current_z(self) -> Tensor:
            """The latent vector the sliders show, shape (D,)."""
            return torch.tensor([s.value for s in self.sliders], dtype=torch.float32)

        def current_image(self) -> Tensor:
            """The decoded pixel values (side, side) behind the image on screen."""
            return self._pixels.clone()

        def set_z(self, z: Any) -> None:
            """Move the sliders to z (length D); a slider's range widens when z lies outside it."""
            self._apply(_as_latent(z, len(self.sliders)))

        def select_component(self, component: int) -> None:
            """Centre the sliders on a mixture component, ranges its mean +- span std."""
            if self.component is None:
                raise ValueError(f"a {type(self.model.prior).__name__} prior has no components to select")
            component = _check_component(component, self._parts[0].shape[0])
            if self.component.value != component:
                self.component.value = component  # the observer re-centres
            else:
                self._recentre(component)

        def sample(self) -> None:
            """Draw z from the prior (model.prior.sample(1)) and show it."""
            with torch.no_grad():
                z = self.model.prior.sample(1)
            self._jump(_as_latent(z, len(self.sliders)), "a draw from the prior")

        def reset(self) -> None:
            """Back to the centre (the selected component's mean), with the original ranges."""
            self._ranges = latent_ranges(self.model.prior, self.span, self._ranges.component)
            self._apply(self._ranges.centre)

        # -- internals ----------------------------------------------------------------------
        def _jump(self, z: Tensor, source: str) -> None:
            """Show z; for a mixture, first centre the ranges on the component most responsible for it."""
            if self._parts is not None:
                j = _most_responsible(z, self._parts)
                self._ranges = latent_ranges(self.model.prior, self.span, j)
                self._busy = True
                try:
                    self.component.value = j
                finally:
                    self._busy = False
            self._apply(z, source)

        def _recentre(self, component: int) -> None:
            self._ranges = latent_ranges(self.model.prior, self.span, component)
            self._apply(self._ranges.centre)

        def _apply(self, z: Tensor, source: str = "") -> None:
            """Set every slider to z over the current ranges (widened to include z) and decode once."""
            self._source = source
            self._busy = True
            try:
                for d, slider in enumerate(self.sliders):
                    value = float(z[d])
                    low, high, step = _slider_grid(float(self._ranges.low[d]), float(self._ranges.high[d]), value)
                    # One message to the browser with all four, the value last (hold_sync, RangeFirstSlider):
                    # otherwise the browser snaps the value to a half-updated grid and sends that back.
                    # Validation of min <= value <= max waits for all four (hold_trait_notifications).
                    with slider.hold_sync(), slider.hold_trait_notifications():
                        slider.min, slider.max, slider.value, slider.step = low, high, value, step
            finally:
                self._busy = False
            self._refresh()

        def _on_slider(self, change: dict) -> None:
            if self._busy:
                return
            if abs(change["new"] - change["old"]) > 1e-9 * (1.0 + abs(change["old"])):
                self._source = ""  # a real move (not a browser's rounding echo): z no longer comes from elsewhere
            self._refresh()

        def _on_component(self, change: dict) -> None:
            if not self._busy:
                self._recentre(int(change["new"]))

        def _refresh(self) -> None:
            """Decode the current z and redraw the image, the numbers and the plane marker."""
            start = time.perf_counter()
            z = self.current_z()
            self._pixels = _decode_square(self.model, z[None])[0]
            self.image.value = _ink_png(self._pixels, self.scale)
            with torch.no_grad():  # a mixture's components are cached (a VampPrior's cost an encoder pass)
                if self._parts is not None:
                    log_p = float(mixture_log_prob(z[None], *self._parts))
                else:
                    log_p = float(self.model.prior.log_prob(z[None].to(_model_device(self.model))))
            where = "" if self._ranges.component is None else f" &nbsp; centred on component {self._ranges.component}"
            source = f" &nbsp; ({self._source})" if self._source else ""
            self.readout.value = f"<code>z = {_fmt(z.tolist())}</code> &nbsp; log p(z) = {log_p:.2f}{where}{source}"
            if self.plane is not None:
                self.plane.value = self._plane.png(z)
            self.last_update_seconds = time.perf_counter() - start

    return LatentExplorer


def __getattr__(name: str) -> Any:
    """`vaelib.widgets.LatentExplorer` imports ipywidgets on first access."""
    if name == "LatentExplorer":
        return _explorer_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def latent_explorer(model: Any, *, component: int | None = None, span: float = 3.0, images: Any = None,
                    labels: Any = None, scale: int = 6) -> Any:
    """A live explorer of `model`'s latent space (a `LatentExplorer`, an ipywidgets.VBox).

    One slider per latent dimension over `latent_ranges(model.prior, span, component)`; moving one
    decodes z and redraws the image. Mixture priors get a component selector; "sample from the prior"
    draws z ~ p(z); "reset" returns to the centre. With `images` (uint8 (N, 28, 28) or floats in
    [0, 1]) and optional `labels`, "encode it" jumps to an image's posterior mean, and for z = 2 a
    scatter of their encodings marks where z is. Needs a running kernel to react.
    """
    return _explorer_class()(model, component=component, span=span, images=images, labels=labels, scale=scale)


# ---------------------------------------------------------------------------------------------
# The static stand-in
# ---------------------------------------------------------------------------------------------
def _column_ticks(steps: int, most: int = 5) -> list[int]:
    """A few evenly spread column indices, always the first and the last."""
    return sorted({int(round(i)) for i in np.linspace(0, steps - 1, min(steps, most))})


@torch.no_grad()
def traversal_figure(model: Any, *, dims: Sequence[int] | None = None, steps: int = 9, span: float = 3.0,
                     component: int | None = None, centre: Any = None, title: str | None = None) -> Any:
    """Decoded images along each latent dimension: one row per dimension, swept over its slider range.

    The other dimensions stay at the centre (the component's mean for a mixture, or `centre`).
    `dims` are 0-based indices; rows are labelled z_1 .. z_D as the sliders are. Returns the
    pyplot Figure (call plt.show() to display it).
    """
    import matplotlib.pyplot as plt

    dim = _check_model(model, "traversal_figure")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 2:
        raise ValueError(f"steps must be an integer >= 2, got {steps!r}")
    ranges = latent_ranges(model.prior, span, component)
    base = ranges.centre if centre is None else _as_latent(centre, dim)
    dims = list(range(dim)) if dims is None else list(dims)
    if not dims:
        raise ValueError("dims is empty: give at least one latent dimension to sweep")
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or not 0 <= d < dim:
            raise ValueError(f"dimension {d!r} is out of range: this model's latent dimensions are 0..{dim - 1}")

    fraction = torch.linspace(0, 1, steps)
    values = torch.stack([ranges.low[d] + fraction * (ranges.high[d] - ranges.low[d]) for d in dims])  # (R, steps)
    z = base.repeat(len(dims), steps, 1)  # (R, steps, D)
    for row, d in enumerate(dims):
        z[row, :, d] = values[row]
    decoded = _decode_square(model, z.reshape(-1, dim))
    side, pad = decoded.shape[-1], 2
    images = decoded.reshape(len(dims), steps, side, side)

    shared = torch.allclose(values, values[:1].expand_as(values))  # same values in every row: label the top only
    row_height = 0.62 if shared else 0.85
    fig = plt.figure(figsize=(max(4.0, 0.62 * steps + 1.2), 0.9 + row_height * len(dims)), layout="constrained")
    axes = fig.subplots(len(dims), 1, squeeze=False)[:, 0]
    ticks = _column_ticks(steps)
    for row, (ax, d) in enumerate(zip(axes, dims)):
        strip = np.full((side, steps * (side + pad) - pad), 0.8, dtype=np.float32)  # light grey gaps
        for k in range(steps):
            strip[:, k * (side + pad) : k * (side + pad) + side] = 1.0 - images[row, k].numpy()
        ax.imshow(strip, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_yticks([])
        ax.set_ylabel(f"$z_{{{d + 1}}}$", rotation=0, ha="right", va="center", fontsize=11)
        for spine in ax.spines.values():
            spine.set_visible(False)
        ax.xaxis.tick_top()
        if shared and row > 0:
            ax.set_xticks([])
        else:
            ax.set_xticks([k * (side + pad) + side / 2 for k in ticks],
                          [f"{float(values[row, k]):.2f}" for k in ticks], fontsize=7)
            ax.tick_params(axis="x", length=2, pad=1)
    where = "" if ranges.component is None else f", centred on component {ranges.component}"
    fig.suptitle(title if title is not None else f"Latent traversal: each row sweeps one dimension{where}",
                 fontsize="medium")
    return fig


def show_explorer(model: Any, *, component: int | None = None, span: float = 3.0, images: Any = None,
                  labels: Any = None, dims: Sequence[int] | None = None, steps: int = 9,
                  title: str | None = None) -> None:
    """What a chapter cell calls: the live explorer, then the static traversal, then a `Static view:` line.

    The website has no kernel, so its copy of the widget cannot react; the figure (same ranges)
    and the printed line keep the page readable. Returns None so the widget is not shown twice.
    """
    import matplotlib.pyplot as plt
    from IPython.display import display

    explorer = latent_explorer(model, component=component, span=span, images=images, labels=labels)
    fig = traversal_figure(model, dims=dims, steps=steps, span=span, component=component, title=title)
    display(explorer)
    plt.show()
    plt.close(fig)
    print(STATIC_NOTE)
