"""The latent explorer and its static traversal figure, driven without a browser.

Small untrained models (freshly built, seeded) are enough: every check compares what the
widget shows with what the model computes for the same z.
"""

from __future__ import annotations

import io
import subprocess
import sys

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from vaelib import widgets
from vaelib.experiments import get_experiment
from vaelib.widgets import latent_explorer, latent_ranges, png_bytes, show_explorer, traversal_figure


def build(name: str, seed: int = 0):
    """A fresh model; mixture components get unequal widths so that ranges depend on each std."""
    torch.manual_seed(seed)
    model = get_experiment(name).build().eval()
    if hasattr(model.prior, "logvars"):
        with torch.no_grad():
            model.prior.logvars.uniform_(-1.5, 0.5)
    return model


@pytest.fixture(scope="module")
def mog2():
    return build("mog-z2-m10")


@pytest.fixture(scope="module")
def vae10():
    return build("vae-z10")


@pytest.fixture(scope="module")
def fmog2():
    return build("fmog-z2-m10")


def decoded(model, z: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model.decode(z.reshape(1, -1)).reshape(28, 28)


def png_pixels(data: bytes) -> np.ndarray:
    """Decode PNG bytes with matplotlib (Pillow): values in [0, 1]."""
    return mpimg.imread(io.BytesIO(data), format="png")


def shown_ink(explorer) -> np.ndarray:
    """The 28x28 grey levels on screen (top-left pixel of each scale x scale block), as 1 - p."""
    pixels = png_pixels(explorer.image.value)
    return pixels[:: explorer.scale, :: explorer.scale]


def assert_sliders_cover(explorer, low: torch.Tensor, high: torch.Tensor) -> None:
    """Each slider spans [low, high], widened by less than one step at each end (to keep z on its grid)."""
    for s, lo, hi in zip(explorer.sliders, low.tolist(), high.tolist()):
        tol = 1e-4 * s.step + 1e-6
        assert lo - s.step - tol < s.min <= lo + tol
        assert hi - tol <= s.max < hi + s.step + tol


def test_importing_the_module_loads_neither_ipywidgets_nor_pyplot():
    code = "import sys, vaelib.widgets; print('ipywidgets' in sys.modules, 'matplotlib.pyplot' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]


def test_png_bytes_round_trip_grey_and_rgb():
    grey = np.arange(12 * 7, dtype=np.uint8).reshape(12, 7) * 3
    np.testing.assert_array_equal(np.round(png_pixels(png_bytes(grey)) * 255).astype(np.uint8), grey)
    rgb = np.random.default_rng(0).integers(0, 256, size=(5, 9, 3), dtype=np.uint8)
    np.testing.assert_array_equal(np.round(png_pixels(png_bytes(rgb)) * 255).astype(np.uint8), rgb)
    with pytest.raises(ValueError, match="RGB"):
        png_bytes(np.zeros((4, 4, 2), dtype=np.uint8))


@pytest.mark.parametrize("name", ["mog-z2-m10", "vae-z10"])
def test_sliders_drive_the_decoded_image(name):
    model = build(name)
    explorer = latent_explorer(model)
    dim = model.latent_dim
    assert len(explorer.sliders) == dim
    assert torch.allclose(explorer.current_image(), decoded(model, explorer.current_z()))

    before = explorer.image.value
    generator = torch.Generator().manual_seed(1)
    for slider in explorer.sliders:  # move every slider to a random point of its range
        u = float(torch.rand((), generator=generator))
        slider.value = slider.min + u * (slider.max - slider.min)
    z = explorer.current_z()
    assert torch.allclose(z, torch.tensor([s.value for s in explorer.sliders], dtype=torch.float32))
    assert explorer.image.value != before
    assert torch.allclose(explorer.current_image(), decoded(model, z))
    # the PNG on screen is the decoded image, drawn as ink (1 - p) on white
    expected = np.round(255 * (1 - decoded(model, z).numpy())) / 255
    np.testing.assert_allclose(shown_ink(explorer), expected, atol=1e-6)
    # the numbers line shows z
    assert all(f"{v:+.2f}" in explorer.readout.value for v in z.tolist())


def test_standard_normal_ranges_are_plus_minus_span(vae10):
    explorer = latent_explorer(vae10, span=2.5)
    assert explorer.component is None
    assert np.allclose([s.min for s in explorer.sliders], -2.5)
    assert np.allclose([s.max for s in explorer.sliders], 2.5)
    assert torch.equal(explorer.current_z(), torch.zeros(10))


def test_component_selector_recentres_on_that_component(mog2):
    span = 3.0
    explorer = latent_explorer(mog2, span=span)
    means, std = mog2.prior.means.detach(), torch.exp(0.5 * mog2.prior.logvars.detach())
    assert explorer.component.value == 0
    assert torch.allclose(explorer.current_z(), means[0])

    explorer.component.value = 7
    assert torch.allclose(explorer.current_z(), means[7])
    # the centre is the midpoint, so the ranges are exactly mean +- span std (up to rounding)
    assert np.allclose([s.min for s in explorer.sliders], (means[7] - span * std[7]).numpy(), atol=1e-5)
    assert np.allclose([s.max for s in explorer.sliders], (means[7] + span * std[7]).numpy(), atol=1e-5)
    assert torch.allclose(explorer.current_image(), decoded(mog2, means[7]))
    assert "component 7" in explorer.readout.value

    started = latent_explorer(mog2, component=4)
    assert started.component.value == 4
    assert torch.allclose(started.current_z(), means[4])


def test_many_components_get_a_number_box():
    model = build("mog-z2-m1000")
    explorer = latent_explorer(model, component=999)
    assert explorer.component.max == 999
    assert torch.allclose(explorer.current_z(), model.prior.means[999].detach())


def test_vampprior_components_are_selectable():
    model = build("vamp-z10-k500")
    explorer = latent_explorer(model, component=12)
    with torch.no_grad():
        means, _ = model.prior.components()
    assert explorer.component.max == 499
    assert torch.allclose(explorer.current_z(), means[12], atol=1e-6)
    explorer.component.value = 40
    assert torch.allclose(explorer.current_z(), means[40], atol=1e-6)
    assert torch.allclose(explorer.current_image(), decoded(model, explorer.current_z()))


def test_factorised_mixture_ranges_cover_every_component(fmog2):
    span = 2.0
    r = latent_ranges(fmog2.prior, span)
    means, std = fmog2.prior.means.detach(), torch.exp(0.5 * fmog2.prior.logvars.detach())
    assert torch.allclose(r.low, (means - span * std).min(dim=1).values)
    assert torch.allclose(r.high, (means + span * std).max(dim=1).values)
    assert torch.allclose(r.centre, means.mean(dim=1))
    explorer = latent_explorer(fmog2, span=span)
    assert explorer.component is None
    assert_sliders_cover(explorer, r.low, r.high)


def test_sample_button_draws_from_the_prior(mog2):
    explorer = latent_explorer(mog2)
    torch.manual_seed(123)
    reference = mog2.prior.sample(1)[0].detach()
    torch.manual_seed(123)
    explorer.sample_button.click()
    z = explorer.current_z()
    assert torch.allclose(z, reference)
    assert torch.allclose(explorer.current_image(), decoded(mog2, reference))
    # the selector follows the component that best explains the draw
    means, logvars = mog2.prior.means.detach(), mog2.prior.logvars.detach()
    log_density = -0.5 * (logvars + (reference - means) ** 2 * torch.exp(-logvars)).sum(-1)
    assert explorer.component.value == int(log_density.argmax())
    assert_on_grid(explorer)


def assert_on_grid(explorer) -> None:
    """Every value lies on its slider's step grid, so a browser's snapping leaves it unchanged."""
    for s in explorer.sliders:
        assert s.min <= s.value <= s.max
        for steps in ((s.value - s.min) / s.step, (s.max - s.value) / s.step):
            assert abs(steps - round(steps)) < 1e-6


def test_browser_rounding_echo_keeps_z_and_note(mog2):
    explorer = latent_explorer(mog2, images=torch.rand(3, 28, 28))
    explorer.encode(2)
    assert "data image 2" in explorer.readout.value
    explorer.sliders[0].value = explorer.sliders[0].value + 1e-13  # what a browser's float round trip can send
    assert "data image 2" in explorer.readout.value
    assert torch.allclose(explorer.current_image(), decoded(mog2, explorer.current_z()))
    explorer.set_z(torch.tensor([0.123456, -4.56789]))
    assert_on_grid(explorer)


def test_sample_button_standard_normal(vae10):
    explorer = latent_explorer(vae10)
    torch.manual_seed(7)
    reference = vae10.prior.sample(1)[0]
    torch.manual_seed(7)
    explorer.sample_button.click()
    assert torch.allclose(explorer.current_z(), reference)


def test_reset_returns_to_the_centre(mog2, vae10):
    explorer = latent_explorer(vae10)
    explorer.set_z(torch.full((10,), 7.0))  # outside the range: the sliders widen to show it exactly
    assert torch.allclose(explorer.current_z(), torch.full((10,), 7.0))
    assert explorer.sliders[0].max == pytest.approx(7.0)
    explorer.reset_button.click()
    assert torch.equal(explorer.current_z(), torch.zeros(10))
    assert np.allclose([s.max for s in explorer.sliders], 3.0)
    assert torch.allclose(explorer.current_image(), decoded(vae10, torch.zeros(10)))

    mixture = latent_explorer(mog2, component=2)
    mixture.sliders[0].value = mixture.sliders[0].max
    mixture.reset_button.click()
    assert torch.allclose(mixture.current_z(), mog2.prior.means[2].detach())


def test_set_z_accepts_d_or_1_by_d(vae10):
    explorer = latent_explorer(vae10)
    z = torch.linspace(-1, 1, 10)
    explorer.set_z(z[None])
    assert torch.allclose(explorer.current_z(), z)
    explorer.set_z(z.tolist()[::-1])
    assert torch.allclose(explorer.current_z(), z.flip(0))


class NoDecoder(torch.nn.Module):
    latent_dim = 2

    def __init__(self):
        super().__init__()
        self.prior = get_experiment("vae-z2").build().prior


def test_errors_are_clear(mog2, vae10):
    with pytest.raises(TypeError, match="decode"):
        latent_explorer(NoDecoder())
    with pytest.raises(TypeError, match="decode, prior, latent_dim"):
        latent_explorer(object())
    with pytest.raises(TypeError, match="decode"):
        traversal_figure(NoDecoder())
    with pytest.raises(ValueError, match="out of range"):
        latent_explorer(mog2, component=10)
    with pytest.raises(ValueError, match="out of range"):
        latent_explorer(mog2, component=-1)
    with pytest.raises(ValueError, match="no components"):
        latent_explorer(vae10, component=0)
    with pytest.raises(ValueError, match="span"):
        latent_explorer(vae10, span=0)
    explorer = latent_explorer(vae10)
    with pytest.raises(ValueError, match="length 10"):
        explorer.set_z(torch.zeros(3))
    with pytest.raises(ValueError, match="non-finite"):
        explorer.set_z([float("nan")] * 10)
    with pytest.raises(ValueError, match="no components"):
        explorer.select_component(0)
    with pytest.raises(ValueError, match="out of range"):
        latent_explorer(mog2).select_component(10)


def test_data_images_encode_and_plane(mog2):
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (50, 28, 28), dtype=torch.uint8, generator=generator)
    labels = torch.arange(50) % 10
    explorer = latent_explorer(mog2, images=images, labels=labels)
    plane_before = explorer.plane.value
    explorer.image_index.value = 17
    explorer.encode_button.click()
    with torch.no_grad():
        mu, _ = mog2.encode(images[17:18].float() / 255)
    assert torch.allclose(explorer.current_z(), mu[0])
    assert torch.allclose(explorer.current_image(), decoded(mog2, mu[0]))
    assert "data image 17, label 7" in explorer.readout.value
    assert explorer.plane.value != plane_before  # the marker moved
    explorer.sliders[0].value = explorer.sliders[0].min
    assert "data image" not in explorer.readout.value

    with pytest.raises(ValueError, match="labels"):
        latent_explorer(mog2, images=images, labels=labels[:3])
    with pytest.raises(ValueError, match="out of range"):
        explorer.encode(50)
    assert latent_explorer(build("vae-z10"), images=images).plane is None  # the plane is for z = 2 only


def test_widget_state_can_be_embedded(mog2):
    """What a built page stores: the image's PNG travels in the widget state."""
    from ipywidgets.embed import embed_data

    explorer = latent_explorer(mog2)
    data = embed_data(views=[explorer])
    states = data["manager_state"]["state"]
    assert any(s["model_name"] == "FloatSliderModel" for s in states.values())
    assert any(s["model_name"] == "ImageModel" and s.get("buffers") for s in states.values())


def test_traversal_figure_rows_are_decoded_sweeps(mog2):
    steps, span = 7, 2.0
    fig = traversal_figure(mog2, steps=steps, span=span, component=3)
    try:
        assert len(fig.axes) == 2
        assert [ax.get_ylabel() for ax in fig.axes] == ["$z_{1}$", "$z_{2}$"]
        centre = mog2.prior.means[3].detach()
        std = torch.exp(0.5 * mog2.prior.logvars[3].detach())
        for d, ax in enumerate(fig.axes):
            labels = [t.get_text() for t in ax.get_xticklabels()]
            assert 2 <= len(labels) <= 5
            assert labels[0] == f"{float(centre[d] - span * std[d]):.2f}"
            assert labels[-1] == f"{float(centre[d] + span * std[d]):.2f}"
            # the last tile of the row is the decoded image with z_d at the top of its range
            z = centre.clone()
            z[d] = centre[d] + span * std[d]
            strip = np.asarray(ax.images[0].get_array())
            np.testing.assert_allclose(strip[:, -28:], 1 - decoded(mog2, z).numpy(), atol=1e-6)
        assert "component 3" in fig._suptitle.get_text()
    finally:
        plt.close(fig)


def test_traversal_figure_dims_and_shared_ticks(vae10):
    fig = traversal_figure(vae10, dims=[0, 4, 9], title="three rows")
    try:
        assert [ax.get_ylabel() for ax in fig.axes] == ["$z_{1}$", "$z_{5}$", "$z_{10}$"]
        # the standard normal sweeps the same values in every row: ticks on the top row only
        assert [t.get_text() for t in fig.axes[0].get_xticklabels()][0] == "-3.00"
        assert len(fig.axes[1].get_xticks()) == 0
        assert fig._suptitle.get_text() == "three rows"
    finally:
        plt.close(fig)
    with pytest.raises(ValueError, match="out of range"):
        traversal_figure(vae10, dims=[10])
    with pytest.raises(ValueError, match="steps"):
        traversal_figure(vae10, steps=1)


def test_show_explorer_displays_widget_then_figure_then_note(mog2, monkeypatch, capsys):
    import IPython.display

    events = []
    monkeypatch.setattr(IPython.display, "display", lambda obj: events.append(("display", obj)))
    monkeypatch.setattr(plt, "show", lambda: events.append(("show", [plt.figure(n) for n in plt.get_fignums()])))
    assert show_explorer(mog2, component=1) is None
    assert [kind for kind, _ in events] == ["display", "show"]
    assert isinstance(events[0][1], widgets.LatentExplorer)
    assert events[0][1].component.value == 1
    shown = events[1][1]
    assert len(shown) == 1 and len(shown[0].axes) == 2
    assert capsys.readouterr().out.startswith("Static view:")
    assert plt.get_fignums() == []  # the figure is closed after showing


def test_new_range_reaches_the_browser_before_the_new_value(mog2, monkeypatch):
    """A browser snaps a value to the slider grid it has; the range must arrive first (see RangeFirstSlider)."""
    import ipywidgets

    sent = []
    original = ipywidgets.Widget.send_state

    def record(self, key=None):
        if isinstance(self, ipywidgets.FloatSlider):
            sent.append(list(key) if key is not None and not isinstance(key, str) else key)
        return original(self, key)

    monkeypatch.setattr(ipywidgets.Widget, "send_state", record)
    explorer = latent_explorer(mog2)
    sent.clear()
    explorer.component.value = 6
    changed = [keys for keys in sent if isinstance(keys, list) and "value" in keys]
    assert len(changed) == len(explorer.sliders)  # one message per slider
    for keys in changed:
        assert {"min", "max", "step"} <= set(keys) and keys[-1] == "value"
