"""The figures' smallest-text record (vaelib/figure_fonts.py) and how the browser check judges it
(.ci/check_site.py's rule c), on PNGs rendered here with matplotlib's Agg backend."""

from __future__ import annotations

import importlib
import struct
import sys
import zlib
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from vaelib import figure_fonts  # noqa: E402


def small_figure(labelsize: float, dpi: float = 90) -> plt.Figure:
    """A 3 x 2 in line plot whose tick labels have `labelsize` points and a 10-point title."""
    fig, ax = plt.subplots(figsize=(3, 2), dpi=dpi)
    ax.plot(range(5))
    ax.set_title("title", fontsize=10)
    ax.tick_params(labelsize=labelsize)
    return fig


def test_figure_png_records_the_smallest_drawn_font_and_dpi() -> None:
    original_draw = Text.draw
    fig = small_figure(labelsize=6.5, dpi=90)
    ax = fig.axes[0]
    ax.text(0.5, 0.5, "hidden", fontsize=2, visible=False)  # invisible and empty texts do not count
    ax.text(0.5, 0.5, "", fontsize=3)
    data = figure_fonts.figure_png(fig)
    plt.close(fig)
    assert figure_fonts.png_text(data)[figure_fonts.FONT_KEY] == "6.5"
    assert figure_fonts.png_dpi(data) == pytest.approx(90, abs=0.01)
    assert Text.draw is original_draw  # the recording is undone


def test_figure_without_text_says_none() -> None:
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.imshow([[0, 1], [1, 0]])
    ax.axis("off")  # tick labels exist but are not drawn
    data = figure_fonts.figure_png(fig)
    plt.close(fig)
    assert figure_fonts.png_text(data)[figure_fonts.FONT_KEY] == figure_fonts.NO_TEXT


def test_text_chunks_of_every_kind_are_read() -> None:
    fig = small_figure(labelsize=8)
    data = figure_fonts.figure_png(fig)
    plt.close(fig)
    at = data.find(b"IDAT") - 4
    ztxt = b"z\0\0" + zlib.compress(b"compressed")
    itxt = b"i\0\0\0en\0\0unicode \xc3\xa9"  # keyword, uncompressed, method, language, no translation
    chunks = b"".join(struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
                      for kind, body in ((b"zTXt", ztxt), (b"iTXt", itxt)))
    texts = figure_fonts.png_text(data[:at] + chunks + data[at:])
    assert texts["z"] == "compressed" and texts["i"] == "unicode é" and texts[figure_fonts.FONT_KEY] == "8"


def test_not_a_png_is_refused() -> None:
    with pytest.raises(ValueError, match="not a PNG"):
        figure_fonts.png_text(b"GIF89a")
    with pytest.raises(ValueError, match="not a PNG"):
        figure_fonts.add_png_text(b"GIF89a", "k", "v")


def test_text_px_scales_points_by_dpi_and_rendered_width() -> None:
    assert figure_fonts.text_px(8, 72, 100, 100) == pytest.approx(8)
    assert figure_fonts.text_px(6.4, 90, 100, 100) == pytest.approx(8)
    assert figure_fonts.text_px(10, 90, 350, 700) == pytest.approx(6.25)


@pytest.fixture(scope="module")
def check_site():
    """.ci/check_site.py as a module (it needs playwright, as CI's requirements install)."""
    pytest.importorskip("playwright")
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / ".ci"))
    return importlib.import_module("check_site")


def judged(check_site, data: bytes, rendered: float, natural: float) -> str | None:
    figure = {"attr": "../_images/f.png", "cell": 3, "natural": natural, "rendered": rendered}
    return check_site.figure_text_failure(figure, data)


def test_check_fails_small_text_and_passes_readable_text(check_site) -> None:
    fig = small_figure(labelsize=6.5, dpi=90)  # 6.5 pt at 90 dpi: 8.1 px at full size
    data = figure_fonts.figure_png(fig)
    plt.close(fig)
    natural = 270.0
    assert judged(check_site, data, natural, natural) is None
    message = judged(check_site, data, 0.9 * natural, natural)  # shrunk to 90%: 7.3 px
    assert message and "smallest text renders at 7.3 px" in message and "6.5 pt at 90 dpi" in message


def test_check_fails_a_figure_that_does_not_say_its_font_size(check_site) -> None:
    from io import BytesIO

    fig = small_figure(labelsize=10)
    buffer = BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    message = judged(check_site, buffer.getvalue(), 100, 100)
    assert message and "does not say its smallest font size" in message
    assert "cannot be read" in judged(check_site, b"<svg/>", 100, 100)


def test_check_fails_a_figure_without_resolution(check_site) -> None:
    fig = small_figure(labelsize=10)
    data = figure_fonts.figure_png(fig)
    plt.close(fig)
    at = data.find(b"pHYs") - 4
    no_phys = data[:at] + data[at + 12 + 9:]
    assert figure_fonts.png_dpi(no_phys) is None
    assert "has no resolution" in judged(check_site, no_phys, 100, 100)
