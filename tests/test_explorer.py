"""The latent explorer: its JavaScript (run under node) against the Python model, and its state.

Small untrained models (freshly built, seeded) are enough: every check compares what the
page computes with what the model computes for the same z. The node tests need `node` on
PATH; they are skipped without it, except under VAELIB_REQUIRE_NODE=1 (set by .ci/run).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import anywidget
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from vaelib import explorer as explorer_module
from vaelib.experiments import get_experiment
from vaelib.explorer import (FLOAT16_TOLERANCE, LatentExplorer, decode_with_page_weights, latent_explorer,
                             latent_ranges, page_decoder, show_explorer, traversal_figure)
from vaelib.priors import GaussianMixture

ROOT = Path(__file__).resolve().parent.parent
JS = ROOT / "vaelib" / "explorer.js"
NODE = shutil.which("node")

# Runs explorer.js's exported functions on a widget state and prints the results as JSON.
DRIVER = r"""
import * as x from "./explorer.mjs";
import { readFileSync } from "node:fs";
const input = JSON.parse(readFileSync(process.argv[2], "utf8"));
const state = {};
for (const [key, value] of Object.entries(input.state)) {
  state[key] = value && value.__bytes__ !== undefined
    ? new DataView(Uint8Array.from(Buffer.from(value.__bytes__, "base64")).buffer) : value;
}
const model = { get: (key) => state[key] };
const layers = x.decoderFrom(model), prior = x.priorFrom(model);
let seed = 12345;  // a seeded uniform generator (Park-Miller), so sampling tests are repeatable
const random = () => ((seed = (seed * 16807) % 2147483647) - 1) / 2147483646;
const list = (a) => Array.from(a);
console.log(JSON.stringify({
  decoded: input.z.map((z) => list(x.decode(layers, z))),
  logp: input.z.map((z) => x.logPrior(prior, z)),
  responsible: prior.kind === "mixture" ? input.z.map((z) => x.mostResponsible(prior, z)) : [],
  ranges: input.components.map((j) => {
    const r = x.ranges(prior, state.span, j);
    return { centre: list(r.centre), low: list(r.low), high: list(r.high) };
  }),
  samples: Array.from({ length: input.samples }, () => list(x.samplePrior(prior, random))),
  half: input.half.map(x.halfToFloat),
}));
"""


def build(name: str, seed: int = 0, weight_scale: float = 1.0):
    """A fresh model; mixture components get unequal widths so that ranges depend on each std.

    `weight_scale` > 1 enlarges the decoder weights, so that pixels saturate as a trained
    model's do (that is where float16 rounding matters most).
    """
    torch.manual_seed(seed)
    model = get_experiment(name).build().eval()
    with torch.no_grad():
        if hasattr(model.prior, "logvars"):
            model.prior.logvars.uniform_(-1.5, 0.5)
        for p in model.decoder.parameters():
            p.mul_(weight_scale)
    return model


def run_js(tmp_path: Path, explorer: LatentExplorer, z: torch.Tensor, components=(), samples: int = 0,
           half=()) -> dict:
    """explorer.js under node on this explorer's widget state (binary traits as DataViews)."""
    if NODE is None:
        if os.environ.get("VAELIB_REQUIRE_NODE") == "1":
            pytest.fail("node is not on PATH, and VAELIB_REQUIRE_NODE=1 requires the JavaScript tests")
        pytest.skip("node is not on PATH (install Node.js to run the explorer's JavaScript tests)")
    state = {k: {"__bytes__": base64.b64encode(bytes(v)).decode()} if isinstance(v, (bytes, memoryview)) else v
             for k, v in explorer.get_state().items()}
    shutil.copy(JS, tmp_path / "explorer.mjs")
    (tmp_path / "driver.mjs").write_text(DRIVER)
    (tmp_path / "input.json").write_text(json.dumps({"state": state, "z": z.tolist(), "components": list(components),
                                                     "samples": samples, "half": list(half)}))
    done = subprocess.run([NODE, "driver.mjs", "input.json"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def random_codes(model, n: int = 16, seed: int = 1) -> torch.Tensor:
    return 2.5 * torch.randn(n, model.latent_dim, generator=torch.Generator().manual_seed(seed))


def decoded(model, z: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return model.decode(z.reshape(len(z), -1)).double().numpy()


# ---------------------------------------------------------------------------------------------
# The page's decoder
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["vae-z10", "mog-z2-m10", "fmog-z2-m10"])
def test_js_decoder_with_float32_weights_equals_model_decode(tmp_path, name):
    model = build(name, weight_scale=4.0)
    z = random_codes(model)
    out = run_js(tmp_path, latent_explorer(model, weights="float32"), z)
    expected = decoded(model, z)
    assert expected.min() < 0.01 and expected.max() > 0.99  # saturated pixels are part of the test
    assert np.abs(np.array(out["decoded"]) - expected).max() < 1e-4


def test_js_decoder_with_float16_weights_is_within_the_stated_tolerance(tmp_path):
    model = build("vae-z10", weight_scale=4.0)
    explorer = latent_explorer(model)  # float16 is the default
    z = random_codes(model)
    out = np.array(run_js(tmp_path, explorer, z)["decoded"])
    assert explorer.weights_dtype == "float16"
    assert np.abs(out - decoded(model, z)).max() < FLOAT16_TOLERANCE
    # ... and it is exactly what the browser check's Python reference computes from the state
    reference = decode_with_page_weights(explorer.decoder_layers, explorer.decoder_weights, "float16", z.numpy())
    assert np.abs(out - reference).max() < 1e-6


def test_half_precision_conversion_is_exact(tmp_path):
    values = np.array([0, 1, -2, 0.5, 65504, 6.1035e-05, 5.96e-08, -3.1416, np.inf], dtype=np.float16)
    bits = values.view(np.uint16).tolist()
    out = run_js(tmp_path, latent_explorer(build("vae-z10")), torch.zeros(0, 10), half=bits)["half"]
    assert out[:-1] == values[:-1].astype(np.float64).tolist()
    assert out[-1] is None or out[-1] == float("inf")  # JSON has no Infinity: null


def test_page_decoder_refuses_a_decoder_it_cannot_run():
    model = build("vae-z10")
    model.decoder.hidden = torch.nn.Sequential(model.decoder.hidden, torch.nn.Tanh())  # not a ReLU MLP any more
    with pytest.raises(ValueError, match="differs from model.decode"):
        page_decoder(model)
    with pytest.raises(ValueError, match="unknown weight type"):
        page_decoder(build("vae-z10"), "int8")


# ---------------------------------------------------------------------------------------------
# The page's prior: log p(z), ranges, responsibilities, sampling
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["vae-z10", "mog-z2-m10", "fmog-z2-m10", "mog-z10-m1000", "vamp-z10-k500"])
def test_js_log_prior_equals_prior_log_prob(tmp_path, name):
    model = build(name)
    z = random_codes(model, n=8)
    out = run_js(tmp_path, latent_explorer(model), z)
    with torch.no_grad():
        expected = model.prior.log_prob(z).double().numpy()
    np.testing.assert_allclose(out["logp"], expected, rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("name, components", [("mog-z2-m10", [0, 3, 9]), ("vae-z10", [0]), ("fmog-z2-m10", [0])])
def test_js_ranges_equal_latent_ranges(tmp_path, name, components):
    model = build(name)
    explorer = latent_explorer(model, span=2.5)
    out = run_js(tmp_path, explorer, torch.zeros(0, model.latent_dim), components=components)
    for j, got in zip(components, out["ranges"]):
        want = latent_ranges(model.prior, 2.5, j if explorer.n_components > 1 else None)
        for key in ("centre", "low", "high"):
            np.testing.assert_allclose(got[key], getattr(want, key).numpy(), rtol=1e-6, atol=1e-6)


def test_js_most_responsible_component_is_the_best_weighted_density(tmp_path):
    model = build("mog-z2-m10")
    z = random_codes(model, n=32)
    out = run_js(tmp_path, latent_explorer(model), z)
    with torch.no_grad():
        means, logvars = model.prior.components()
        scores = -0.5 * (logvars + (z[:, None] - means) ** 2 * torch.exp(-logvars)).sum(-1) + model.prior.log_weights
    assert out["responsible"] == scores.argmax(1).tolist()


def test_js_sampling_picks_components_by_weight_then_draws_their_gaussian(tmp_path):
    prior = GaussianMixture(2, 3, learn_weights=True)
    with torch.no_grad():  # three well separated components of weights 0.6, 0.3, 0.1
        prior.means.copy_(torch.tensor([[-6.0, 0.0], [0.0, 6.0], [6.0, -3.0]]))
        prior.logvars.copy_(torch.log(torch.tensor([[0.25, 1.0], [1.0, 0.25], [0.5, 0.5]])))
        prior.logits.copy_(torch.log(torch.tensor([0.6, 0.3, 0.1])))
    model = build("mog-z2-m10")
    model.prior = prior
    draws = torch.tensor(run_js(tmp_path, latent_explorer(model), torch.zeros(0, 2), samples=6000)["samples"])
    nearest = torch.cdist(draws, prior.means.detach()).argmin(1)
    share = torch.bincount(nearest, minlength=3).double() / len(draws)
    np.testing.assert_allclose(share.numpy(), [0.6, 0.3, 0.1], atol=0.025)
    for j in range(3):
        mine = draws[nearest == j]
        np.testing.assert_allclose(mine.mean(0).numpy(), prior.means[j].detach().numpy(), atol=0.1)
        np.testing.assert_allclose(mine.var(0).numpy(), prior.logvars[j].detach().exp().numpy(), rtol=0.15)


def test_js_sampling_of_a_factorised_mixture_mixes_each_dimension(tmp_path):
    model = build("fmog-z2-m10")
    draws = torch.tensor(run_js(tmp_path, latent_explorer(model), torch.zeros(0, 2), samples=6000)["samples"])
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        reference = model.prior.sample(6000)
    np.testing.assert_allclose(draws.mean(0).numpy(), reference.mean(0).numpy(), atol=0.1)
    np.testing.assert_allclose(draws.std(0).numpy(), reference.std(0).numpy(), rtol=0.08)


# ---------------------------------------------------------------------------------------------
# The widget state and the Python API
# ---------------------------------------------------------------------------------------------
def test_front_end_is_pinned_to_the_python_package_and_needs_nothing_else():
    explorer = latent_explorer(build("vae-z10"))
    state = explorer.get_state()
    assert state["_model_module"] == "anywidget" and state["_model_module_version"] == anywidget.__version__
    assert state["_view_module_version"] == anywidget.__version__
    source = JS.read_text()
    assert state["_esm"] == source
    # Colab and the static site load anywidget's bundle and this module; the module loads nothing.
    assert not re.search(r"^\s*import\b|\bimport\s*\(|\brequire\s*\(|https?://|\bfetch\s*\(", source, re.M)


def test_versions_of_the_front_end_agree_across_requirements_and_ci():
    pinned = re.search(r"^anywidget==([\w.]+)", (ROOT / "requirements.txt").read_text(), re.M)
    assert pinned, "requirements.txt must pin anywidget exactly (the page loads that front-end version)"
    assert pinned.group(1) == anywidget.__version__
    assert f'anywidget@{anywidget.__version__}"' in (ROOT / ".ci" / "run").read_text()
    assert f"anywidget@{anywidget.__version__}" in (ROOT / ".ci" / "check_site_selftest.sh").read_text()


def test_the_front_end_files_ship_in_the_package():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    shipped = config["tool"]["setuptools"]["package-data"]["vaelib"]
    assert "explorer.js" in shipped and "explorer.css" in shipped
    assert "anywidget" in " ".join(config["project"]["dependencies"])


def test_widget_state_embeds_with_binary_buffers_under_the_page_weight_goal():
    from ipywidgets.embed import embed_data

    explorer = latent_explorer(build("mog-z10-m1000"))
    data = embed_data(views=[explorer])["manager_state"]["state"]
    mine = data[explorer.model_id]
    assert mine["model_name"] == "AnyModel"
    paths = {b["path"][0] for b in mine["buffers"]}
    assert {"decoder_weights", "prior_means", "prior_logvars", "prior_log_weights"} <= paths
    weight = len(json.dumps(mine))
    assert weight < 1.5e6, f"{weight / 1e6:.2f} MB of page weight"
    assert latent_explorer(build("vae-z10"), weights="float32").page_bytes > 1.9 * explorer.page_bytes - 2e5


def test_initial_state_centres_on_the_requested_component():
    model = build("mog-z2-m10")
    explorer = latent_explorer(model, component=4)
    assert explorer.component == 4 and explorer.n_components == 10
    np.testing.assert_allclose(explorer.z, model.prior.means[4].detach().numpy(), rtol=1e-6)
    vae = latent_explorer(build("vae-z10"))
    assert vae.n_components == 1 and vae.z == [0.0] * 10
    fmog = latent_explorer(build("fmog-z2-m10"))
    assert fmog.n_components == 1 and fmog.prior_kind == "factorized"


def test_set_z_select_component_and_current_image():
    model = build("mog-z2-m10")
    explorer = latent_explorer(model)
    explorer.set_z(torch.tensor([[0.5, -1.25]]))
    assert explorer.z == [0.5, -1.25]
    np.testing.assert_allclose(explorer.current_image().numpy(), decoded(model, explorer.current_z()[None])[0]
                               .reshape(28, 28), atol=1e-6)
    explorer.select_component(7)
    assert explorer.component == 7
    np.testing.assert_allclose(explorer.z, model.prior.means[7].detach().numpy(), rtol=1e-6)


def test_errors_are_clear():
    mog, vae = build("mog-z2-m10"), build("vae-z10")
    explorer = latent_explorer(mog)
    with pytest.raises(ValueError, match=r"length 2 .*got shape \(3,\)"):
        explorer.set_z([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="non-finite"):
        explorer.set_z([float("nan"), 0.0])
    with pytest.raises(ValueError, match="component must be an integer between 0 and 9, got 10"):
        explorer.select_component(10)
    with pytest.raises(ValueError, match="component must be an integer between 0 and 9, got 12"):
        latent_explorer(mog, component=12)
    with pytest.raises(ValueError, match="no components to select"):
        latent_explorer(vae).select_component(0)
    with pytest.raises(ValueError, match="no joint components"):
        latent_explorer(build("fmog-z2-m10"), component=1)
    with pytest.raises(ValueError, match="unknown weight type"):
        latent_explorer(vae, weights="float64")
    with pytest.raises(ValueError, match="span"):
        latent_explorer(vae, span=0)
    with pytest.raises(ValueError, match=r"784-pixel images.*\(5, 27, 27\)"):
        latent_explorer(vae, images=torch.zeros(5, 27, 27))
    with pytest.raises(ValueError, match="3 labels for 5 images"):
        latent_explorer(vae, images=torch.zeros(5, 28, 28), labels=[1, 2, 3])
    with pytest.raises(TypeError, match="needs a VAE-like model"):
        latent_explorer(object())


def test_test_images_give_thumbnails_and_for_z2_the_plane():
    model = build("mog-z2-m10")
    images = torch.randint(0, 256, (60, 28, 28), dtype=torch.uint8)
    labels = torch.arange(60) % 6  # six classes
    explorer = latent_explorer(model, images=images, labels=labels, examples=8)
    # the first image of each class, then the second of classes 0 and 1
    assert explorer.example_labels == [0, 1, 2, 3, 4, 5, 0, 1]
    chosen = [0, 1, 2, 3, 4, 5, 6, 7]
    with torch.no_grad():
        mu = model.encode(images[chosen].float() / 255)[0]
        points = model.encode(images.float() / 255)[0]
    np.testing.assert_allclose(np.frombuffer(explorer.example_z, "<f4").reshape(8, 2), mu.numpy(), atol=1e-6)
    assert np.frombuffer(explorer.example_images, np.uint8).reshape(8, 784)[3].tolist() == \
        images[3].reshape(-1).tolist()
    np.testing.assert_allclose(np.frombuffer(explorer.plane_points, "<f4").reshape(60, 2), points.numpy(),
                               atol=1e-6)
    assert list(explorer.plane_labels) == labels.tolist()
    x0, x1, y0, y1 = explorer.plane_bounds
    assert x0 < points[:, 0].min() and x1 > points[:, 0].max() and y0 < points[:, 1].min()
    ten = latent_explorer(build("vae-z10"), images=images)
    assert ten.plane_points == b"" and len(ten.example_z) == 10 * 10 * 4  # no plane above z = 2


# ---------------------------------------------------------------------------------------------
# The static stand-in and what chapters call
# ---------------------------------------------------------------------------------------------
def test_latent_ranges_use_the_prior_interface():
    mog, vae, fmog = build("mog-z2-m10"), build("vae-z10"), build("fmog-z2-m10")
    r = latent_ranges(mog.prior, 2.0, 3)
    std = torch.exp(0.5 * mog.prior.logvars[3].detach())
    torch.testing.assert_close(r.low, mog.prior.means[3].detach() - 2 * std)
    assert r.component == 3
    r = latent_ranges(vae.prior)
    assert r.component is None and r.low.tolist() == [-3.0] * 10 and r.high.tolist() == [3.0] * 10
    r = latent_ranges(fmog.prior, 1.0)
    means, logvars = (p.detach() for p in fmog.prior.dimension_components())
    torch.testing.assert_close(r.high, (means + torch.exp(0.5 * logvars)).max(1).values)
    import ast
    tree = ast.parse((ROOT / "vaelib" / "explorer.py").read_text())
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    assert not names & {"GaussianMixture", "StandardNormal", "FactorizedMixture", "VampPrior"}


def test_traversal_figure_rows_are_decoded_sweeps():
    model = build("mog-z2-m10")
    steps, span = 7, 2.0
    fig = traversal_figure(model, steps=steps, span=span, component=3)
    try:
        assert [ax.get_ylabel() for ax in fig.axes] == ["$z_{1}$", "$z_{2}$"]
        centre = model.prior.means[3].detach()
        std = torch.exp(0.5 * model.prior.logvars[3].detach())
        for d, ax in enumerate(fig.axes):
            labels = [t.get_text() for t in ax.get_xticklabels()]
            assert labels[0] == f"{float(centre[d] - span * std[d]):.2f}"
            assert labels[-1] == f"{float(centre[d] + span * std[d]):.2f}"
            z = centre.clone()
            z[d] = centre[d] + span * std[d]
            strip = np.asarray(ax.images[0].get_array())
            np.testing.assert_allclose(strip[:, -28:], 1 - decoded(model, z[None])[0].reshape(28, 28), atol=1e-6)
        assert "component 3" in fig._suptitle.get_text()
    finally:
        plt.close(fig)
    fig = traversal_figure(build("vae-z10"), dims=[0, 4, 9], title="three rows")
    try:
        assert [ax.get_ylabel() for ax in fig.axes] == ["$z_{1}$", "$z_{5}$", "$z_{10}$"]
        assert len(fig.axes[1].get_xticks()) == 0  # same values in every row: ticks on the top row only
    finally:
        plt.close(fig)
    with pytest.raises(ValueError, match="latent dimension must be an integer between 0 and 1, got 2"):
        traversal_figure(model, dims=[2])


def test_show_explorer_displays_widget_then_figure_then_note(monkeypatch, capsys):
    import IPython.display

    events = []
    monkeypatch.setattr(IPython.display, "display", lambda obj: events.append(("display", obj)))
    monkeypatch.setattr(plt, "show", lambda: events.append(("show", [plt.figure(n) for n in plt.get_fignums()])))
    assert show_explorer(build("mog-z2-m10"), component=1) is None
    assert [kind for kind, _ in events] == ["display", "show"]
    assert isinstance(events[0][1], LatentExplorer) and events[0][1].component == 1
    assert len(events[1][1]) == 1 and len(events[1][1][0].axes) == 2
    assert capsys.readouterr().out.startswith("Static view:")
    assert plt.get_fignums() == []


def test_the_old_widgets_module_is_gone():
    assert not (ROOT / "vaelib" / "widgets.py").exists()
    assert "explorer" in explorer_module.__name__ and sys.modules.get("vaelib.widgets") is None
