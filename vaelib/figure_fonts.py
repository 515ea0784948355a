"""Figures that say how small their text is: the smallest font size a matplotlib figure drew,
written into its PNG, and read back by the browser check (.ci/check_site.py).

A browser sees a figure's pixels, not its text, so the check cannot measure a tick label. Each
PNG that a notebook shows therefore carries two facts the check combines with the width the
page gives the image:

* a tEXt chunk `min_font_pt` (FONT_KEY): the smallest font size, in points, of any text the
  figure drew (tick labels, titles, legends, annotations), or "none" (NO_TEXT) when it drew none;
* the pHYs chunk (pixels per metre), which matplotlib writes from the dpi it rendered at.

The smallest text is then `min_font_pt * dpi / 72` pixels in the PNG and, on the page,
`min_font_pt * dpi / 72 * renderedWidth / naturalWidth` CSS pixels (`text_px`). A PNG without
either chunk cannot be judged and fails the check.

Writer side (runs in the notebook kernel): `install()` replaces IPython's PNG formatter for
matplotlib figures with one that records, while the figure is rendered, the size of every
visible, non-empty text matplotlib draws (`Text.draw`, so ticks outside the view and hidden
axes do not count) and adds the tEXt chunk. Sub- and superscripts inside mathtext are drawn
smaller than their Text's size and are not counted. Figures shown any other way (a PNG file
displayed with IPython.display.Image, an SVG) carry no `min_font_pt` and fail the check.

Reader side (the check): `png_chunks`, `png_text`, `png_dpi`, `text_px`.
"""
from __future__ import annotations

import base64
import functools
import struct
import zlib
from contextlib import contextmanager
from typing import Any, Iterator

FONT_KEY = "min_font_pt"
NO_TEXT = "none"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
METRES_PER_INCH = 0.0254


# ---- reader side: pure functions of the PNG bytes ------------------------------------------

def png_chunks(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """(type, data) of each chunk of a PNG, in file order; ValueError if it is not a PNG."""
    if not data.startswith(PNG_SIGNATURE):
        raise ValueError("not a PNG file (bad signature)")
    at = len(PNG_SIGNATURE)
    while at + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[at:at + 8])
        yield kind, data[at + 8:at + 8 + length]
        at += 12 + length


def png_text(data: bytes) -> dict[str, str]:
    """The PNG's text chunks (tEXt, zTXt, iTXt) as {keyword: text}."""
    texts: dict[str, str] = {}
    for kind, body in png_chunks(data):
        keyword, _, rest = body.partition(b"\0")
        if kind == b"tEXt":
            texts[keyword.decode("latin-1")] = rest.decode("latin-1")
        elif kind == b"zTXt":
            texts[keyword.decode("latin-1")] = zlib.decompress(rest[1:]).decode("latin-1")
        elif kind == b"iTXt":
            compressed, text = rest[0], rest[2:].split(b"\0", 2)[-1]
            texts[keyword.decode("latin-1")] = (zlib.decompress(text) if compressed else text).decode("utf-8")
    return texts


def png_dpi(data: bytes) -> float | None:
    """Horizontal resolution in dots per inch from the pHYs chunk, or None without one (or
    when its unit is not the metre, i.e. only an aspect ratio)."""
    for kind, body in png_chunks(data):
        if kind == b"pHYs" and len(body) == 9:
            per_unit_x, _, unit = struct.unpack(">IIB", body)
            return per_unit_x * METRES_PER_INCH if unit == 1 and per_unit_x > 0 else None
    return None


def text_px(min_font_pt: float, dpi: float, rendered_width: float, natural_width: float) -> float:
    """CSS pixels of the smallest text on the page: its PNG pixels times the image's rendered scale."""
    return min_font_pt * dpi / 72 * rendered_width / natural_width


# ---- writer side: runs in the notebook kernel ----------------------------------------------

def add_png_text(data: bytes, keyword: str, text: str) -> bytes:
    """The PNG with one more tEXt chunk (keyword -> Latin-1 text), placed before its image data."""
    body = keyword.encode("latin-1") + b"\0" + text.encode("latin-1")
    chunk = struct.pack(">I", len(body)) + b"tEXt" + body + struct.pack(">I", zlib.crc32(b"tEXt" + body))
    at = data.find(b"IDAT") - 4  # the IDAT chunk's length field
    if not data.startswith(PNG_SIGNATURE) or at < len(PNG_SIGNATURE):
        raise ValueError("not a PNG file with image data")
    return data[:at] + chunk + data[at:]


@contextmanager
def recording_font_sizes() -> Iterator[list[float]]:
    """Within the block, the size in points of every visible, non-empty text matplotlib draws
    is appended to the yielded list."""
    from matplotlib.text import Text

    sizes: list[float] = []
    original = Text.draw

    @functools.wraps(original)
    def draw(self: Text, renderer: Any) -> Any:
        if renderer is not None and self.get_visible() and self.get_text().strip():
            sizes.append(float(self.get_fontsize()))
        return original(self, renderer)

    Text.draw = draw
    try:
        yield sizes
    finally:
        Text.draw = original


def figure_png(fig: Any, **print_figure_kwargs: Any) -> bytes | None:
    """The figure as IPython's inline backend renders it (PNG at fig.dpi, tight bounding box by
    default), with a tEXt chunk FONT_KEY giving its smallest drawn font size in points."""
    from IPython.core.pylabtools import print_figure

    with recording_font_sizes() as sizes:
        data = print_figure(fig, "png", **print_figure_kwargs)
    if data is None:  # an empty figure: IPython shows nothing
        return None
    return add_png_text(data, FONT_KEY, f"{min(sizes):g}" if sizes else NO_TEXT)


def install(**print_figure_kwargs: Any) -> bool:
    """Make the running IPython show every matplotlib figure as a PNG from `figure_png` (extra
    keyword arguments go to IPython's print_figure). Returns False outside IPython.

    Call it after anything that selects the inline backend's figure formats (`%matplotlib
    inline`, `%config InlineBackend.figure_formats`), which would put IPython's own formatter back.
    """
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None:
        return False
    import matplotlib

    backend = getattr(matplotlib.rcParams, "_get_backend_or_none", lambda: None)()  # None: not chosen yet
    if "inline" in str(backend or ""):
        import matplotlib_inline.backend_inline  # noqa: F401  (its import sets IPython's formatters once)
    from matplotlib.figure import Figure

    def as_base64(fig: Figure) -> str | None:
        data = figure_png(fig, **print_figure_kwargs)
        return None if data is None else base64.b64encode(data).decode("ascii")

    shell.display_formatter.formatters["image/png"].for_type(Figure, as_base64)
    return True
