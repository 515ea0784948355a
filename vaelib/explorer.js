// The latent explorer's front-end: an anywidget ES module (see vaelib/explorer.py).
//
// Everything a reader does is computed here, in the page: the decoder (an MLP whose weights
// travel in the widget state), the prior (log density, sampling, slider ranges) and the
// drawing. Python only packs the state, so Jupyter, Colab and the static site all run this
// file, and a moved slider never waits for a kernel. It imports nothing: anywidget's bundle
// is all it needs. The exported functions are also run under node by tests/test_explorer.py.

const LOG_2PI = Math.log(2 * Math.PI);
const DIGIT_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                       "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];  // tab10
const PLANE_SIZE = 260;  // CSS pixels of the z = 2 plane

// ---- binary state -------------------------------------------------------------------------

/** A float16 bit pattern as a number (exact). */
export function halfToFloat(bits) {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 31) return fraction ? NaN : sign * Infinity;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

/** The bytes of a binary trait (a DataView in Jupyter and on the page), copied and aligned. */
function bytesOf(value) {
  if (value instanceof ArrayBuffer) return new Uint8Array(value.slice(0));
  if (ArrayBuffer.isView(value)) {
    return new Uint8Array(value.buffer, value.byteOffset, value.byteLength).slice();
  }
  throw new Error(`expected binary widget state, got ${Object.prototype.toString.call(value)}`);
}

/** Little-endian float32 or float16 numbers of a binary trait, as a Float32Array. */
export function floats(value, dtype = "float32") {
  const bytes = bytesOf(value);
  if (dtype === "float32") return new Float32Array(bytes.buffer);
  if (dtype === "float16") return Float32Array.from(new Uint16Array(bytes.buffer), halfToFloat);
  throw new Error(`unknown weight type ${dtype}: expected float32 or float16`);
}

// ---- the decoder: Linear, ReLU, ..., Linear, sigmoid ----------------------------------------

/** Layers {W (outputs x inputs, row-major), b, inputs, outputs} from the widget state. */
export function decoderFrom(model) {
  const weights = floats(model.get("decoder_weights"), model.get("weights_dtype"));
  let at = 0;
  const layers = model.get("decoder_layers").map(({ inputs, outputs }) => {
    const W = weights.subarray(at, (at += inputs * outputs));
    const b = weights.subarray(at, (at += outputs));
    return { W, b, inputs, outputs };
  });
  if (at !== weights.length) {
    throw new Error(`decoder weights hold ${weights.length} numbers, the layers need ${at}`);
  }
  return layers;
}

/** Pixel probabilities of p(x|z): ReLU after every layer but the last, a sigmoid after it. */
export function decode(layers, z) {
  let x = Float64Array.from(z);
  layers.forEach(({ W, b, inputs, outputs }, k) => {
    const last = k === layers.length - 1;
    const y = new Float64Array(outputs);
    for (let i = 0; i < outputs; i++) {
      let sum = b[i];
      for (let j = 0, row = i * inputs; j < inputs; j++) sum += W[row + j] * x[j];
      y[i] = last ? 1 / (1 + Math.exp(-sum)) : Math.max(sum, 0);
    }
    x = y;
  });
  return x;
}

// ---- the prior -----------------------------------------------------------------------------

/**
 * The prior from the widget state. kind "mixture": M components of dimension D, arrays
 * (M, D) and log-weights (M); kind "factorized": each of the D dimensions its own mixture
 * of M one-dimensional Gaussians, arrays (D, M), log-weights (D, M).
 */
export function priorFrom(model) {
  const [m, d] = model.get("prior_shape");
  return { kind: model.get("prior_kind"), m, d, means: floats(model.get("prior_means")),
           logvars: floats(model.get("prior_logvars")),
           logWeights: floats(model.get("prior_log_weights")) };
}

function logNormal(x, mean, logvar) {
  const d = x - mean;
  return -0.5 * (LOG_2PI + logvar + d * d * Math.exp(-logvar));
}

function logSumExp(values) {
  const top = values.reduce((a, b) => Math.max(a, b), -Infinity);
  if (!Number.isFinite(top)) return top;
  return top + Math.log(values.reduce((sum, v) => sum + Math.exp(v - top), 0));
}

/** log w_j + log N(z; mu_j, diag var_j) for every component j of a full mixture. */
function componentScores(prior, z) {
  const { m, d, means, logvars, logWeights } = prior;
  const scores = new Float64Array(m);
  for (let j = 0; j < m; j++) {
    let s = logWeights[j];
    for (let k = 0; k < d; k++) s += logNormal(z[k], means[j * d + k], logvars[j * d + k]);
    scores[j] = s;
  }
  return scores;
}

/** log p(z) under the prior. */
export function logPrior(prior, z) {
  if (prior.kind === "mixture") return logSumExp(Array.from(componentScores(prior, z)));
  const { m, d, means, logvars, logWeights } = prior;
  let total = 0;
  for (let k = 0; k < d; k++) {
    const terms = [];
    for (let j = k * m; j < (k + 1) * m; j++) {
      terms.push(logWeights[j] + logNormal(z[k], means[j], logvars[j]));
    }
    total += logSumExp(terms);
  }
  return total;
}

/** The mixture component with the highest weighted density at z. */
export function mostResponsible(prior, z) {
  const scores = componentScores(prior, z);
  return scores.reduce((best, s, j) => (s > scores[best] ? j : best), 0);
}

/**
 * Slider centre and [low, high] per dimension, `span` standard deviations either side
 * (vaelib.explorer.latent_ranges computes the same): a mixture's component mean +- span std;
 * a factorised mixture from its lowest component mean - span std to its highest + span std,
 * centred on the mean of its component means.
 */
export function ranges(prior, span, component) {
  const { m, d, means, logvars } = prior;
  const centre = new Float64Array(d), low = new Float64Array(d), high = new Float64Array(d);
  for (let k = 0; k < d; k++) {
    if (prior.kind === "mixture") {
      const i = component * d + k, std = Math.exp(0.5 * logvars[i]);
      centre[k] = means[i];
      low[k] = means[i] - span * std;
      high[k] = means[i] + span * std;
    } else {
      low[k] = Infinity;
      high[k] = -Infinity;
      for (let j = k * m; j < (k + 1) * m; j++) {
        const std = Math.exp(0.5 * logvars[j]);
        centre[k] += means[j] / m;
        low[k] = Math.min(low[k], means[j] - span * std);
        high[k] = Math.max(high[k], means[j] + span * std);
      }
    }
  }
  return { centre, low, high };
}

/** A standard normal draw (Box-Muller). */
function gaussian(random) {
  return Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
}

/** Index drawn with probabilities exp(logWeights[from..from+n]). */
function pick(logWeights, from, n, random) {
  let u = random(), j = 0;
  for (; j < n - 1; j++) if ((u -= Math.exp(logWeights[from + j])) < 0) break;
  return j;
}

/** z ~ p(z): pick a component by its weight, then draw its Gaussian (per dimension if factorised). */
export function samplePrior(prior, random = Math.random) {
  const { m, d, means, logvars, logWeights } = prior;
  const z = new Float64Array(d);
  const j = prior.kind === "mixture" ? pick(logWeights, 0, m, random) : 0;
  for (let k = 0; k < d; k++) {
    const i = prior.kind === "mixture" ? j * d + k : k * m + pick(logWeights, k * m, m, random);
    z[k] = means[i] + Math.exp(0.5 * logvars[i]) * gaussian(random);
  }
  return z;
}

// ---- drawing -------------------------------------------------------------------------------

function element(tag, className, properties = {}) {
  const e = Object.assign(document.createElement(tag), properties);
  if (className) e.className = className;
  return e;
}

/** Grey levels 255 (1 - p) of pixel probabilities p, as dark ink on white. */
function paintDigit(canvas, pixels) {
  const context = canvas.getContext("2d");
  const image = context.createImageData(canvas.width, canvas.height);
  for (let i = 0; i < pixels.length; i++) {
    const grey = Math.round(255 * (1 - Math.min(Math.max(pixels[i], 0), 1)));
    image.data.set([grey, grey, grey, 255], 4 * i);
  }
  context.putImageData(image, 0, 0);
}

const fmt = (v) => (v >= 0 ? "+" : "") + v.toFixed(2);

/** The 2-d plane: encodings of test images as dots, a cross at z; a click sets z there. */
function makePlane(points, labels, bounds, onPick) {
  const ratio = window.devicePixelRatio || 1;
  const canvas = element("canvas", "vx-plane", { width: PLANE_SIZE * ratio, height: PLANE_SIZE * ratio,
                                                 title: "click to decode that point" });
  canvas.style.width = canvas.style.height = `${PLANE_SIZE}px`;
  const [x0, x1, y0, y1] = bounds, inset = 18;
  const toPixel = (x, y) => [inset + ((x - x0) / (x1 - x0)) * (PLANE_SIZE - 2 * inset),
                             PLANE_SIZE - inset - ((y - y0) / (y1 - y0)) * (PLANE_SIZE - 2 * inset)];
  const background = element("canvas", "", { width: canvas.width, height: canvas.height });
  const b = background.getContext("2d");
  b.scale(ratio, ratio);
  b.fillStyle = "#fff";
  b.fillRect(0, 0, PLANE_SIZE, PLANE_SIZE);
  b.strokeStyle = "#999";
  b.strokeRect(inset, inset, PLANE_SIZE - 2 * inset, PLANE_SIZE - 2 * inset);
  for (let i = 0; i < points.length / 2; i++) {
    const [px, py] = toPixel(points[2 * i], points[2 * i + 1]);
    b.fillStyle = labels.length ? DIGIT_COLOURS[labels[i] % 10] : "#666";
    b.fillRect(px - 1, py - 1, 2, 2);
  }
  b.fillStyle = "#333";
  b.font = "11px sans-serif";
  b.fillText("z\u2081", PLANE_SIZE / 2, PLANE_SIZE - 4);
  b.fillText("z\u2082", 2, PLANE_SIZE / 2);
  canvas.addEventListener("click", (event) => {
    const box = canvas.getBoundingClientRect();
    const px = ((event.clientX - box.left) / box.width) * PLANE_SIZE;
    const py = ((event.clientY - box.top) / box.height) * PLANE_SIZE;
    onPick([x0 + ((px - inset) / (PLANE_SIZE - 2 * inset)) * (x1 - x0),
            y0 + ((PLANE_SIZE - inset - py) / (PLANE_SIZE - 2 * inset)) * (y1 - y0)]);
  });
  const context = canvas.getContext("2d");
  return { canvas, mark(z) {
    context.setTransform(1, 0, 0, 1, 0, 0);
    context.drawImage(background, 0, 0);
    context.scale(ratio, ratio);
    const [px, py] = toPixel(z[0], z[1]).map((v) => Math.min(Math.max(v, inset), PLANE_SIZE - inset));
    context.fillStyle = "#000";
    context.fillRect(px - 7, py - 1, 15, 3);
    context.fillRect(px - 1, py - 7, 3, 15);
  } };
}

// ---- the widget ----------------------------------------------------------------------------

function render({ model, el }) {
  const layers = decoderFrom(model), prior = priorFrom(model), span = model.get("span");
  const [rows, cols] = model.get("image_shape"), scale = model.get("scale");
  const mixture = prior.kind === "mixture" && prior.m > 1;  // a component selector is offered
  let component = mixture ? model.get("component") : 0;
  let range = ranges(prior, span, component);
  let z = Float64Array.from(model.get("z"));
  let note = "";

  const root = element("div", "vx-explorer");
  root.dataset.draws = "0";
  const controls = element("div", "vx-row");
  let selector = null;
  if (mixture) {
    const label = element("label", "vx-component", { textContent: "component " });
    if (prior.m <= 20) {
      selector = element("select");
      for (let j = 0; j < prior.m; j++) selector.add(new Option(String(j), String(j)));
    } else {
      selector = element("input", "", { type: "number", min: 0, max: prior.m - 1, step: 1 });
      label.title = `0 to ${prior.m - 1}`;
    }
    label.append(selector, ` of ${prior.m}`);
    controls.append(label);
    const choose = () => {
      const j = Math.round(Number(selector.value));
      if (!(j >= 0 && j < prior.m)) return void (selector.value = String(component));
      if (j !== component) centreOn(j);
    };
    selector.addEventListener("change", choose);  // a pick in the list, or leaving the number box
    selector.addEventListener("keydown", (event) => event.key === "Enter" && choose());
  }
  const sampleButton = element("button", "vx-sample", { textContent: "sample from the prior",
                                                        title: "z ~ p(z), drawn in the page" });
  const resetButton = element("button", "vx-reset", { textContent: "reset",
                                                      title: "back to the centre of the ranges" });
  controls.append(sampleButton, resetButton);

  const body = element("div", "vx-row");
  const sliderBox = element("div", "vx-sliders");
  const sliders = Array.from(z, (_, d) => {
    const row = element("label", "vx-slider");
    const input = element("input", "", { type: "range", step: "any" });
    input.setAttribute("aria-label", `z${d + 1}`);
    const value = element("span", "vx-value");
    row.append(element("span", "vx-name", { textContent: `z${d + 1}` }), input, value);
    sliderBox.append(row);
    input.addEventListener("input", () => {
      z[d] = Number(input.value);
      note = "";
      refresh(true);
    });
    return { input, value };
  });
  const digit = element("canvas", "vx-digit", { width: cols, height: rows });
  digit.style.width = `${cols * scale}px`;
  digit.style.height = `${rows * scale}px`;
  body.append(sliderBox, digit);

  let plane = null;
  const points = floats(model.get("plane_points"));
  if (points.length) {
    plane = makePlane(points, bytesOf(model.get("plane_labels")), model.get("plane_bounds"),
                      (point) => jump(point, "a point of the plane"));
    body.append(plane.canvas);
  }
  // Two fixed-size lines, so that new numbers never move the page around the explorer.
  const readout = element("div", "vx-readout");
  const codeLine = element("div", "vx-line"), priorLine = element("div", "vx-line");
  readout.append(codeLine, priorLine);
  root.append(controls, body);

  const exampleZ = floats(model.get("example_z")), exampleLabels = model.get("example_labels");
  if (exampleZ.length) {
    const pixels = bytesOf(model.get("example_images")), n = exampleZ.length / prior.d;
    const strip = element("div", "vx-row vx-examples", { textContent: "test images:", title: "click one to encode it" });
    for (let k = 0; k < n; k++) {
      const thumb = element("canvas", "vx-example", { width: cols, height: rows });
      thumb.title = exampleLabels.length ? `label ${exampleLabels[k]}` : `test image ${k}`;
      paintDigit(thumb, Array.from(pixels.subarray(k * rows * cols, (k + 1) * rows * cols), (v) => v / 255));
      const code = exampleZ.slice(k * prior.d, (k + 1) * prior.d);
      const label = exampleLabels.length ? `, label ${exampleLabels[k]}` : "";
      thumb.addEventListener("click", () => jump(code, `posterior mean of test image ${k}${label}`));
      strip.append(thumb);
    }
    root.append(strip);
  }
  root.append(readout);
  // Keys pressed on the explorer's controls are theirs: JupyterLab (Lumino) would otherwise
  // take ArrowLeft/ArrowRight on a focused slider as notebook shortcuts.
  for (const control of root.querySelectorAll("input, select, button")) {
    control.dataset.lmSuppressShortcuts = "true";
  }
  el.append(root);

  /** Slider ranges: the current ones, widened to include z. */
  function placeSliders() {
    sliders.forEach(({ input }, d) => {
      input.min = String(Math.min(range.low[d], z[d]));
      input.max = String(Math.max(range.high[d], z[d]));
      input.value = String(z[d]);
    });
  }

  /** Decode z and redraw everything; `fromSlider`: the sliders already show z. */
  function refresh(fromSlider = false, send = true) {
    if (!fromSlider) placeSliders();
    sliders.forEach(({ value }, d) => (value.textContent = fmt(z[d])));
    paintDigit(digit, decode(layers, z));
    root.dataset.draws = String(Number(root.dataset.draws) + 1);
    if (plane) plane.mark(z);
    if (selector) selector.value = String(component);
    const where = mixture ? ` \u00a0 centred on component ${component}` : "";
    codeLine.textContent = `z = (${Array.from(z, fmt).join(", ")})`;
    const median = model.get("prior_log_p_median");
    const yardstick = Number.isFinite(median) ? ` (prior draws: median ${median.toFixed(2)})` : "";
    priorLine.textContent = `log p(z) = ${logPrior(prior, z).toFixed(2)}${yardstick}${where}${note ? ` \u00a0 (${note})` : ""}`;
    if (send) {
      model.set("z", Array.from(z));
      if (mixture) model.set("component", component);
      model.save_changes();  // reaches Python when a kernel is attached; a no-op on a static page
    }
  }

  function centreOn(j) {
    component = j;
    range = ranges(prior, span, j);
    z = Float64Array.from(range.centre);
    note = "";
    refresh();
  }

  /** Show a z that came from elsewhere; a mixture first centres on the component most responsible. */
  function jump(point, why) {
    z = Float64Array.from(point);
    if (mixture) {
      component = mostResponsible(prior, z);
      range = ranges(prior, span, component);
    }
    note = why;
    refresh();
  }

  sampleButton.addEventListener("click", () => jump(samplePrior(prior), "a draw from the prior"));
  resetButton.addEventListener("click", () => centreOn(component));

  // Changes made from Python (explorer.set_z, explorer.select_component) are shown, not echoed.
  const onZ = () => {
    const next = model.get("z");
    if (next.length === z.length && next.every((v, d) => v === z[d])) return;
    z = Float64Array.from(next);
    note = "";
    refresh(false, false);
  };
  const onComponent = () => {
    const j = model.get("component");
    if (!mixture || j === component) return;
    component = j;
    range = ranges(prior, span, j);
    refresh(false, false);
  };
  model.on("change:z", onZ);
  model.on("change:component", onComponent);
  refresh(false, false);
  return () => {
    model.off("change:z", onZ);
    model.off("change:component", onComponent);
  };
}

export default { render };
