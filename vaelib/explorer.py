"""The latent explorer, whose decoder runs in the page, and its static stand-in for print.

`latent_explorer(model)` is an anywidget: one slider per latent dimension, the decoded image,
a component selector for mixture priors, "sample from the prior", "reset", log p(z), test
images to jump to and, for z = 2, a clickable plane of encoded test images. All of it is
computed by `explorer.js` in the browser, from the decoder weights and prior parameters that
travel in the widget state, so it reacts at once in Jupyter, on Colab and on the static site,
with or without a kernel. Python packs that state (and sees the z a reader sets, when a
kernel is attached). `traversal_figure(model)` draws the same ranges as a static grid for
print and for readers without JavaScript; `show_explorer(model)` shows both (chapters 1, 3).

The page decoder is checked against `model.decode` when the widget is built. Its weights
are float16 by default (half the page weight of float32): pixel probabilities then differ
from `model.decode` by at most `FLOAT16_TOLERANCE`; float32 weights agree within 1e-4.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anywidget
import numpy as np
import torch
import traitlets as t
from torch import Tensor, nn

from .checks import check_int, check_positive_int, check_positive_number

__all__ = [
    "LatentRanges", "latent_ranges", "LatentExplorer", "latent_explorer", "show_explorer",
    "traversal_figure", "page_decoder", "decode_with_page_weights", "prior_log_p_median", "FRONT_END_VERSION",
    "FLOAT16_TOLERANCE", "STATIC_NOTE",
]

STATIC_NOTE = (
    "Static view: each row of the figure above sweeps one latent dimension,\n"
    "with the others held at the centre. The explorer above it runs in your\n"
    "browser, no kernel needed; this figure stands in for it in print and\n"
    "where JavaScript is off."
)

# The anywidget front-end the widget asks for: exactly the installed Python package's version,
# so Jupyter's extension, Colab and the static site (jsDelivr, .ci/run's NPM_PACKAGES) agree.
FRONT_END_VERSION: str = anywidget.__version__
# Largest difference in pixel probability between the page's decoder and model.decode that
# building an explorer accepts. float16: about one grey level of the 8-bit image (measured:
# at most 1.8e-3 on the book's models after 100+ epochs of the `full` profile, see
# benchmarks/explorer_weights.py); float32: rounding only.
FLOAT16_TOLERANCE = 4e-3
FLOAT32_TOLERANCE = 1e-4
_DTYPES = {"float16": "<f2", "float32": "<f4"}
_PLANE_POINTS = 2000  # encodings drawn on the z = 2 plane
_HERE = Path(__file__).parent


# ---------------------------------------------------------------------------------------------
# Ranges: where each latent dimension's slider starts and how far it goes
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LatentRanges:
    """Per-dimension centre and [low, high] of the sliders (CPU float tensors of shape (D,))."""

    centre: Tensor
    low: Tensor
    high: Tensor
    component: int | None  # the mixture component they are centred on (None: one component)


def _mixture(prior: Any) -> tuple[Tensor, Tensor, Tensor] | None:
    """(means (M, D), logvars (M, D), log_weights (M,)) of a full-dimensional mixture, else None."""
    components = getattr(prior, "components", None)
    if not callable(components):
        return None
    with torch.no_grad():
        parts = components()
        if parts is None:
            return None
        means, logvars = (p.detach().float().cpu() for p in parts)
        return means, logvars, prior.log_weights.detach().float().cpu()


def _per_dimension(prior: Any) -> tuple[Tensor, Tensor, Tensor] | None:
    """(means, logvars, log_weights), each (D, M), of a per-dimension mixture, else None."""
    parts = getattr(prior, "dimension_components", None)
    if not callable(parts):
        return None
    with torch.no_grad():
        means, logvars = (p.detach().float().cpu() for p in parts())
        return means, logvars, prior.log_weights.detach().float().cpu()


def _check_span(span: Any) -> float:
    return float(check_positive_number(span, "span"))  # standard deviations


def _check_component(component: Any, n_components: int) -> int:
    return int(check_int(component, "component", 0, n_components - 1))


def latent_ranges(prior: Any, span: float = 3.0, component: int | None = None) -> LatentRanges:
    """Slider centre and range per dimension for `prior`, `span` standard deviations either side.

    * a mixture of full-dimensional Gaussians (`prior.components()`; the standard normal is one
      component, the VampPrior its pseudo-input posteriors): the component's mean +- span x its
      standard deviation (default component: the heaviest, component 0 for uniform weights);
    * a per-dimension mixture (`prior.dimension_components()`): from the lowest component mean
      - span std to the highest + span std in each dimension, centred on the mean of the means;
    * any other prior: mean +- span std of 4096 prior draws (the global seed is left alone).

    `explorer.js` computes the same ranges in the page (tests/test_explorer.py checks it).
    """
    span = _check_span(span)
    mixture = _mixture(prior)
    if mixture is not None:
        means, logvars, log_w = mixture
        chosen = int(log_w.argmax()) if component is None else _check_component(component, means.shape[0])
        centre, std = means[chosen], torch.exp(0.5 * logvars[chosen])
        label = chosen if means.shape[0] > 1 else None
        return LatentRanges(centre.clone(), centre - span * std, centre + span * std, label)
    if component is not None:
        raise ValueError(f"component={component!r} was given, but a {type(prior).__name__} prior has no "
                         "joint components to centre on")
    per_dim = _per_dimension(prior)
    if per_dim is not None:
        means, logvars, _ = per_dim
        std = torch.exp(0.5 * logvars)
        low, high = (means - span * std).min(dim=1).values, (means + span * std).max(dim=1).values
        return LatentRanges(means.mean(dim=1), low, high, None)
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        draws = prior.sample(4096).detach().float().cpu()
    centre, std = draws.mean(0), draws.std(0)
    return LatentRanges(centre, centre - span * std, centre + span * std, None)


# ---------------------------------------------------------------------------------------------
# Models: checks, decoding, and the decoder as the page runs it
# ---------------------------------------------------------------------------------------------
def _check_model(model: Any, who: str) -> int:
    """The latent size of a VAE-like model, or a TypeError naming what it lacks."""
    missing = [name for name in ("decode", "prior", "latent_dim") if not hasattr(model, name)]
    if missing:
        raise TypeError(f"{who} needs a VAE-like model with decode(z), prior and latent_dim; "
                        f"{type(model).__name__} has no {', '.join(missing)}")
    return check_positive_int(model.latent_dim, f"{who}: model.latent_dim")


def _model_device(model: Any) -> torch.device:
    params = getattr(model, "parameters", None)
    first = next(params(), None) if callable(params) else None
    return first.device if first is not None else torch.device("cpu")


@torch.no_grad()
def _decode_square(model: Any, z: Tensor) -> Tensor:
    """Decode latent codes (N, D) into (N, side, side) CPU images of pixel probabilities."""
    out = model.decode(z.to(_model_device(model))).detach().float().cpu()
    n_pixels = out[0].numel()
    side = math.isqrt(n_pixels)
    if side * side != n_pixels:
        raise ValueError(f"the explorer shows square grey-level images; this decoder returns {n_pixels} "
                         "values per image, which is not a square number")
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


def decode_with_page_weights(layers: Sequence[dict], weights: bytes, dtype: str, z: Any) -> np.ndarray:
    """Pixel probabilities (N, P) that the page computes for codes z (N, D), in float64 numpy.

    `layers`, `weights`, `dtype` are the widget state's `decoder_layers`, `decoder_weights`,
    `weights_dtype`: Linear layers, ReLU between them, a sigmoid after the last. The browser
    check (.ci/check_site.py) compares the page's pixels with this.
    """
    if dtype not in _DTYPES:
        raise ValueError(f"unknown weight type {dtype!r}: expected one of {sorted(_DTYPES)}")
    flat = np.frombuffer(weights, dtype=_DTYPES[dtype]).astype(np.float64)
    x = np.atleast_2d(np.asarray(z, dtype=np.float64))
    at = 0
    for k, layer in enumerate(layers):
        n_in, n_out = int(layer["inputs"]), int(layer["outputs"])
        if x.shape[1] != n_in:
            raise ValueError(f"layer {k} takes {n_in} inputs, got codes of shape {x.shape}")
        w = flat[at : at + n_in * n_out].reshape(n_out, n_in)
        b = flat[at + n_in * n_out : at + n_in * n_out + n_out]
        at += n_in * n_out + n_out
        x = x @ w.T + b
        x = 1.0 / (1.0 + np.exp(-x)) if k == len(layers) - 1 else np.maximum(x, 0.0)
    if at != flat.size:
        raise ValueError(f"the decoder weights hold {flat.size} numbers, the layers need {at}")
    return x


def page_decoder(model: Any, dtype: str = "float16") -> tuple[list[dict[str, int]], bytes, float]:
    """The decoder as the page runs it: (layer sizes, little-endian weights, max difference).

    The page runs the Linear layers of `model.decoder` in order, ReLU between them and a sigmoid
    after the last. That this is what `model.decode` computes is checked on random codes, and
    the largest difference in pixel probability is returned; a decoder of another shape, or
    weights too coarse for it, give a ValueError.
    """
    if dtype not in _DTYPES:
        raise ValueError(f"unknown weight type {dtype!r}: expected one of {sorted(_DTYPES)}")
    dim = _check_model(model, "the latent explorer")
    decoder = getattr(model, "decoder", None)
    if not isinstance(decoder, nn.Module):
        raise TypeError(f"the latent explorer needs model.decoder (a torch module); {type(model).__name__} has none")
    linears = [m for m in decoder.modules() if isinstance(m, nn.Linear)]
    sizes = [dim] + [m.out_features for m in linears]
    if not linears or [m.in_features for m in linears] != sizes[:-1]:
        raise ValueError(f"the page runs decoders made of chained Linear layers from z ({dim}); "
                         f"{type(decoder).__name__} has Linear layers {[(m.in_features, m.out_features) for m in linears]}")
    with torch.no_grad():
        arrays = []
        for m in linears:
            bias = m.bias if m.bias is not None else torch.zeros(m.out_features)
            arrays += [m.weight.detach().float().cpu().numpy().ravel(), bias.detach().float().cpu().numpy()]
        weights = np.concatenate(arrays).astype(_DTYPES[dtype]).tobytes()
        layers = [{"inputs": m.in_features, "outputs": m.out_features} for m in linears]
        z = 2 * torch.randn(32, dim, generator=torch.Generator().manual_seed(0))
        expected = model.decode(z.to(_model_device(model))).detach().double().cpu().numpy()
    got = decode_with_page_weights(layers, weights, dtype, z.numpy())
    if got.shape != expected.reshape(len(z), -1).shape:
        raise ValueError(f"the page decoder gives {got.shape[1]} pixels, model.decode {expected[0].size}")
    diff = float(np.abs(got - expected.reshape(len(z), -1)).max())
    tolerance = FLOAT16_TOLERANCE if dtype == "float16" else FLOAT32_TOLERANCE
    if not diff <= tolerance:
        advice = "; try weights='float32'" if dtype == "float16" and diff < 0.05 else ""
        raise ValueError(f"the page decoder (Linear layers, ReLU between, sigmoid last, {dtype} weights) differs "
                         f"from model.decode by {diff:.2g} in pixel probability (allowed {tolerance:g}): "
                         f"{type(decoder).__name__} computes something else{advice}")
    return layers, weights, diff


def _page_prior(prior: Any) -> dict[str, Any]:
    """The prior's parameters as the page reads them (float32 buffers, see explorer.js priorFrom)."""
    mixture = _mixture(prior)
    kind = "mixture"
    if mixture is None:
        mixture, kind = _per_dimension(prior), "factorized"
    if mixture is None:
        raise TypeError(f"the latent explorer needs a prior that describes its components "
                        f"(components() or dimension_components()); {type(prior).__name__} does neither")
    means, logvars, log_w = mixture
    shape = list(means.shape) if kind == "mixture" else [means.shape[1], means.shape[0]]  # [M, D]
    as_bytes = lambda a: np.ascontiguousarray(a.numpy(), dtype="<f4").tobytes()  # noqa: E731
    return {"prior_kind": kind, "prior_shape": shape, "prior_label": str(getattr(prior, "label", "")),
            "prior_means": as_bytes(means), "prior_logvars": as_bytes(logvars),
            "prior_log_weights": as_bytes(log_w)}


def _as_images(images: Any, labels: Any, n_pixels: int) -> tuple[Tensor, Tensor | None]:
    """Images as floats (N, n_pixels) in [0, 1] (uint8 is divided by 255), labels as (N,) or None."""
    x = torch.as_tensor(images).detach().cpu()
    if x.dim() not in (2, 3) or x.shape[0] == 0 or x[0].numel() != n_pixels:
        raise ValueError(f"images must be a non-empty batch of {n_pixels}-pixel images, (N, H, W) or "
                         f"(N, {n_pixels}); got shape {tuple(x.shape)}")
    x = (x.float() / 255.0 if not x.is_floating_point() else x.float()).reshape(len(x), n_pixels)
    if x.min() < 0 or x.max() > 1:
        raise ValueError("float images must hold pixel values in [0, 1] (uint8 images are divided by 255)")
    if labels is not None:
        labels = torch.as_tensor(labels).detach().cpu().reshape(-1).long()
        if labels.shape[0] != x.shape[0]:
            raise ValueError(f"{labels.shape[0]} labels for {x.shape[0]} images")
    return x, labels


def _example_indices(n: int, labels: Tensor | None, count: int) -> list[int]:
    """`count` images to offer: the first of each class in turn (with labels), else the first ones."""
    if labels is None:
        return list(range(min(n, count)))
    seen: Counter = Counter()
    keys = []
    for i, y in enumerate(labels.tolist()):
        keys.append((seen[y], y, i))
        seen[y] += 1
    return [i for *_, i in sorted(keys)[:count]]


@torch.no_grad()
def prior_log_p_median(prior: Any, n: int = 4096, seed: int = 0) -> float:
    """The median of log p(z) over n draws z from the prior itself: a yardstick for the log p(z)
    the explorer shows (a code far below it is one the prior rarely draws). The draws use their
    own seeded generator state, so building an explorer leaves a chapter's random numbers alone."""
    if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        z = prior.sample(n)
        return float(prior.log_prob(z).median())


# ---------------------------------------------------------------------------------------------
# The widget
# ---------------------------------------------------------------------------------------------
class LatentExplorer(anywidget.AnyWidget):
    """Sliders over a VAE's latent space; explorer.js decodes z in the page on every move.

    The state holds the decoder (`decoder_layers`, `decoder_weights` in `weights_dtype`), the
    prior (`prior_*`), the test images offered (`example_*`, `plane_*`) and what the reader
    set: `z` and `component` (synced back to Python when a kernel is attached).
    """

    _esm = _HERE / "explorer.js"
    _css = _HERE / "explorer.css"
    _model_module_version = t.Unicode(FRONT_END_VERSION).tag(sync=True)
    _view_module_version = t.Unicode(FRONT_END_VERSION).tag(sync=True)

    decoder_layers = t.List(t.Dict()).tag(sync=True)
    decoder_weights = t.Bytes(b"").tag(sync=True)
    weights_dtype = t.Unicode("float16").tag(sync=True)
    image_shape = t.List(t.Int(), default_value=[28, 28]).tag(sync=True)
    scale = t.Int(6).tag(sync=True)
    span = t.Float(3.0).tag(sync=True)
    prior_kind = t.Unicode("mixture").tag(sync=True)
    prior_label = t.Unicode("").tag(sync=True)
    prior_shape = t.List(t.Int()).tag(sync=True)
    prior_means = t.Bytes(b"").tag(sync=True)
    prior_logvars = t.Bytes(b"").tag(sync=True)
    prior_log_weights = t.Bytes(b"").tag(sync=True)
    plane_points = t.Bytes(b"").tag(sync=True)
    plane_labels = t.Bytes(b"").tag(sync=True)
    plane_bounds = t.List(t.Float()).tag(sync=True)
    example_images = t.Bytes(b"").tag(sync=True)
    example_z = t.Bytes(b"").tag(sync=True)
    example_labels = t.List(t.Int()).tag(sync=True)
    z = t.List(t.Float()).tag(sync=True)
    component = t.Int(0).tag(sync=True)
    prior_log_p_median = t.Float(float("nan")).tag(sync=True)  # shown beside log p(z) as a yardstick

    def __init__(self, model: Any, *, component: int | None = None, span: float = 3.0, images: Any = None,
                 labels: Any = None, examples: int = 10, scale: int = 6, weights: str = "float16") -> None:
        dim = _check_model(model, "latent_explorer")
        check_positive_int(scale, "scale")  # screen pixels per image pixel
        check_int(examples, "examples", 0)
        ranges = latent_ranges(model.prior, span, component)
        layers, decoder_weights, self.decoder_difference = page_decoder(model, weights)
        side = math.isqrt(layers[-1]["outputs"])
        state: dict[str, Any] = {**_page_prior(model.prior), "decoder_layers": layers,
                                 "decoder_weights": decoder_weights, "weights_dtype": weights,
                                 "image_shape": [side, side], "scale": scale, "span": _check_span(span),
                                 "z": ranges.centre.tolist(), "component": ranges.component or 0,
                                 "prior_log_p_median": prior_log_p_median(model.prior)}
        if images is not None:
            state.update(self._data_state(model, images, labels, examples, dim, side * side, ranges))
        self.model = model
        super().__init__(**state)

    @staticmethod
    def _data_state(model: Any, images: Any, labels: Any, examples: int, dim: int, n_pixels: int,
                    ranges: LatentRanges) -> dict[str, Any]:
        """Encodings of test images: thumbnails to jump to, and the z = 2 plane."""
        if not callable(getattr(model, "encode", None)):
            raise TypeError(f"images were given, but {type(model).__name__} has no encode(x) to place them")
        x, y = _as_images(images, labels, n_pixels)
        chosen = _example_indices(len(x), y, examples)
        device = _model_device(model)
        with torch.no_grad():
            example_z = model.encode(x[chosen].to(device))[0].detach().float().cpu() if chosen else torch.zeros(0)
        state = {"example_images": (x[chosen] * 255).round().to(torch.uint8).numpy().tobytes(),
                 "example_z": example_z.numpy().astype("<f4").tobytes(),
                 "example_labels": [] if y is None else y[chosen].tolist()}
        if dim == 2:
            with torch.no_grad():
                points = model.encode(x[:_PLANE_POINTS].to(device))[0].detach().float().cpu()
            lo = torch.minimum(points.min(0).values, ranges.low)
            hi = torch.maximum(points.max(0).values, ranges.high)
            pad = 0.05 * (hi - lo)
            state.update(plane_points=points.numpy().astype("<f4").tobytes(),
                         plane_labels=b"" if y is None else (y[:_PLANE_POINTS] % 256).to(torch.uint8).numpy().tobytes(),
                         plane_bounds=[float(lo[0] - pad[0]), float(hi[0] + pad[0]),
                                       float(lo[1] - pad[1]), float(hi[1] + pad[1])])
        return state

    @property
    def n_components(self) -> int:
        """Components the selector offers (1: no selector)."""
        return self.prior_shape[0] if self.prior_kind == "mixture" else 1

    def current_z(self) -> Tensor:
        """The latent vector the sliders show, shape (D,)."""
        return torch.tensor(self.z, dtype=torch.float32)

    def current_image(self) -> Tensor:
        """model.decode of the current z, as a (side, side) image of pixel probabilities."""
        return _decode_square(self.model, self.current_z()[None])[0]

    def set_z(self, z: Any) -> None:
        """Move the sliders to z (length D); the page widens a slider's range when z lies outside it."""
        self.z = _as_latent(z, len(self.z)).tolist()

    def select_component(self, component: int) -> None:
        """Centre the sliders on a mixture component: z = its mean, ranges its mean +- span std."""
        if self.n_components == 1:
            raise ValueError(f"a {type(self.model.prior).__name__} prior has no components to select")
        ranges = latent_ranges(self.model.prior, self.span, _check_component(component, self.n_components))
        with self.hold_sync():
            self.component = ranges.component
            self.z = ranges.centre.tolist()

    @property
    def page_bytes(self) -> int:
        """Bytes of binary state this explorer adds to a page (before base64)."""
        return sum(len(getattr(self, name)) for name, trait in self.traits(sync=True).items()
                   if isinstance(trait, t.Bytes))


def latent_explorer(model: Any, *, component: int | None = None, span: float = 3.0, images: Any = None,
                    labels: Any = None, examples: int = 10, scale: int = 6,
                    weights: str = "float16") -> LatentExplorer:
    """A `LatentExplorer` of `model`'s latent space (see the module docstring).

    Sliders over `latent_ranges(model.prior, span, component)`; `images` (uint8 (N, 28, 28) or
    floats in [0, 1]) and optional `labels` give `examples` thumbnails to jump to and, for z = 2,
    the plane of their encodings. `weights`: "float16" (default, half the page weight) or "float32".
    """
    return LatentExplorer(model, component=component, span=span, images=images, labels=labels,
                          examples=examples, scale=scale, weights=weights)


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
    check_int(steps, "steps", 2)
    ranges = latent_ranges(model.prior, span, component)
    base = ranges.centre if centre is None else _as_latent(centre, dim)
    dims = list(range(dim)) if dims is None else list(dims)
    if not dims:
        raise ValueError("dims is empty: give at least one latent dimension to sweep")
    for d in dims:
        check_int(d, "latent dimension", 0, dim - 1)

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
                  labels: Any = None, examples: int = 10, dims: Sequence[int] | None = None, steps: int = 9,
                  title: str | None = None, weights: str = "float16") -> None:
    """What a chapter cell calls: the explorer, then the static traversal, then a `Static view:` line.

    The explorer works on the website too (its decoder runs in the page); the figure (same
    ranges) and the line are for print and for readers without JavaScript. Returns None so
    the widget is not shown twice.
    """
    import matplotlib.pyplot as plt
    from IPython.display import display

    explorer = latent_explorer(model, component=component, span=span, images=images, labels=labels,
                               examples=examples, weights=weights)
    fig = traversal_figure(model, dims=dims, steps=steps, span=span, component=component, title=title)
    display(explorer)
    plt.show()
    plt.close(fig)
    print(STATIC_NOTE)
