"""Real-browser check of the built Jupyter Book site.

Serves the built HTML on 127.0.0.1, opens every page of the table of contents in the
system's headless Chromium (driven by Playwright, which downloads no browser here) and checks:

* no JavaScript errors (uncaught exceptions and console errors);
* every <img> loaded (naturalWidth > 0);
* display and inline maths typeset by MathJax, with no raw TeX delimiters left;
* the Colab launch link of a page built from an .ipynb opens that notebook in the repository;
* no cell output shows a Markdown table as raw text (a "| --- |" separator row);
* the layout at 1280 px: no display equation and no table wider than the content column (cut
  off or scrolling sideways), no cell-output figure shrunk below 70% of its width to fit it;
* what code cells show, at 1280 px with every collapsed <details> opened: no printed output
  (stdout, stderr, text/plain) wider than its box; no "Show code cell source" toggle (hide-input)
  on a cell that shows no output; no cell-output figure whose smallest text renders below 8 px
  (each PNG must carry its smallest font size, see vaelib/figure_fonts.py);
* every latent explorer (a code cell tagged latent-explorer, or any widget with a slider) has a
  static fallback: a loaded <img> and the words "Static view" in the outputs of the same code
  cell or of the next code cell (progress bars and other slider-less widgets are exempt).
  The convention and the _config.yml settings the check relies on: .ci/README-browser.md;
* every latent explorer of vaelib (an anywidget whose decoder runs in the page) reacts like a
  reader expects: two sliders moved by keyboard and by drag, the component selector, "sample
  from the prior", "reset", the z = 2 plane and the test-image thumbnails each change the
  decoded image, which must equal (within 2 of 255 grey levels) what vaelib's Python decoder
  computes from the weights in the page's widget state for the z the sliders show, and the
  z read-out must match the sliders. The median and 95th percentile of the time from slider
  input to repainted image over 50 key presses, and each explorer's page weight, are printed.

The CDNs are unreachable in CI, so requests for jsDelivr/cdnjs files are answered from npm
packages (mathjax, @jupyter-widgets/html-manager, requirejs, anywidget); a URL naming an exact
version must find that version in node_modules. Every other outside request is blocked and
listed. A full-page screenshot of each page and report.json go to --out.

Usage: python .ci/check_site.py --site _build/html --node-modules NODE/node_modules --out ci-artifacts
Exit status: 0 all pages pass, 1 some page failed, 2 bad arguments.
"""
from __future__ import annotations

import argparse
import base64
import functools
import gzip
import json
import mimetypes
import re
import sys
import tempfile
import threading
from dataclasses import asdict, dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable
from urllib.parse import unquote, urlsplit

import numpy as np
import yaml
from playwright.sync_api import Page, Request, Route, sync_playwright

from vaelib.figure_fonts import FONT_KEY, NO_TEXT, png_dpi, png_text, text_px
from vaelib.explorer import decode_with_page_weights

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# The widget convention (see .ci/README-browser.md): myst-nb gives a cell tagged T the class tag_T.
EXPLORER_TAG_CLASS = "tag_latent-explorer"
STATIC_MARK = "Static view"
# vaelib's latent explorer: the anywidget id of its model, the grey-level tolerance of its image.
EXPLORER_ID = "vaelib.explorer.LatentExplorer"
PIXEL_TOLERANCE = 2
LATENCY_MOVES = 50
# The separator row of a pipe table ("| --- | ---: |") left as text in a cell's output
# (Sphinx's smart quotes may have turned each "---" into an em dash).
_SEPARATOR_CELL = r"\s*:?(?:-{3,}|[\u2014\u2013]+):?\s*\|"
RAW_MARKDOWN_TABLE = re.compile(r"\|" + _SEPARATOR_CELL + _SEPARATOR_CELL)  # HTML joins the rows into one line
# A CDN URL that names an npm package: jsDelivr's /npm/<pkg>@<version>/<file> ...
JSDELIVR = re.compile(r"^https://cdn\.jsdelivr\.net/npm/((?:@[^/@]+/)?[^/@]+)(?:@[^/]*)?/(.+)$")
# ... and cdnjs's RequireJS, which myst-nb loads for the widget manager.
CDNJS_REQUIRE = re.compile(r"^https://cdnjs\.cloudflare\.com/ajax/libs/require\.js/[^/]+/require(\.min)?\.js$")
for _ext, _type in {".woff": "font/woff", ".woff2": "font/woff2", ".otf": "font/otf", ".ttf": "font/ttf"}.items():
    mimetypes.add_type(_type, _ext)


@dataclass
class PageResult:
    """What the check saw on one page; `failures` empty means the page passed."""
    page: str
    url: str
    failures: list[str] = field(default_factory=list)
    substituted: list[str] = field(default_factory=list)   # CDN URLs answered from node_modules
    blocked: list[str] = field(default_factory=list)       # "<type> <url>" of blocked outside requests
    ignored: list[str] = field(default_factory=list)       # failures of known upstream bugs, with the reason
    counts: dict[str, int] = field(default_factory=dict)
    explorers: list[dict] = field(default_factory=list)  # per live explorer: page weight, latency
    screenshot: str = ""


def toc_pages(toc_path: Path) -> list[str]:
    """Return the docnames of _toc.yml (root first, then entries in order), extensions dropped."""
    if not toc_path.is_file():
        raise ValueError(f"table of contents not found: {toc_path}")
    toc = yaml.safe_load(toc_path.read_text())
    if not isinstance(toc, dict) or "root" not in toc:
        raise ValueError(f"{toc_path} has no 'root' entry; is it a Jupyter Book _toc.yml?")
    pages: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, dict):
            if "glob" in node:
                raise ValueError(f"{toc_path}: 'glob' entries are not supported by this check: {node}")
            if "file" in node:
                pages.append(re.sub(r"\.(md|ipynb|rst)$", "", str(node["file"])))
            for key in ("parts", "chapters", "sections"):
                walk(node.get(key))

    walk([{"file": toc["root"]}, toc])
    return pages


def colab_prefix(config_path: Path) -> str | None:
    """Colab URL prefix for notebooks of this book from _config.yml, e.g.
    https://colab.research.google.com/github/ORG/REPO/blob/main/ ; None without Colab buttons."""
    config = yaml.safe_load(config_path.read_text()) if config_path.is_file() else {}
    colab = ((config or {}).get("launch_buttons") or {}).get("colab_url")
    repo = (config or {}).get("repository") or {}
    if not colab or not repo.get("url"):
        return None
    github = re.match(r"^https://github\.com/([^/]+/[^/]+?)/?$", repo["url"])
    if not github:
        raise ValueError(f"{config_path}: repository.url is not a GitHub repository: {repo['url']}")
    book_path = str(repo.get("path_to_book") or "").strip("/")
    return f"{colab.rstrip('/')}/github/{github.group(1)}/blob/{repo.get('branch', 'main')}/" + (
        f"{book_path}/" if book_path else "")


def serve(site: Path) -> ThreadingHTTPServer:
    """Serve `site` on a free port of 127.0.0.1 from a daemon thread; returns the server."""
    class QuietHandler(SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # keep the check's output readable
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def local_copy(url: str, node_modules: Path) -> Path | None:
    """The file in node_modules that stands in for a CDN URL, or None when there is none."""
    url = url.split("?")[0].split("#")[0]
    if CDNJS_REQUIRE.match(url):
        candidate = node_modules / "requirejs" / "require.js"
    elif m := JSDELIVR.match(url):
        candidate = node_modules / m.group(1) / m.group(2)
    else:
        return None
    return candidate if ".." not in candidate.parts and candidate.is_file() else None


def version_mismatch(url: str, node_modules: Path) -> str | None:
    """Why node_modules cannot stand in for a jsDelivr URL naming an exact version, or None."""
    m = re.match(r"^https://cdn\.jsdelivr\.net/npm/((?:@[^/@]+/)?[^/@]+)@(\d+\.\d+\.\d+)/", url)
    if not m:
        return None
    manifest = node_modules / m.group(1) / "package.json"
    found = json.loads(manifest.read_text()).get("version") if manifest.is_file() else None
    if found == m.group(2):
        return None
    return f"the page asks for {m.group(1)}@{m.group(2)}, node_modules has {found or 'none'}"


def route_handler(result: PageResult, origin: str, node_modules: Path) -> Callable[[Route, Request], None]:
    """A Playwright route handler: site requests go through, CDN files come from node_modules,
    anything else outside is aborted and recorded in `result`."""
    def handle(route: Route, request: Request) -> None:
        url = request.url
        if url.startswith(origin) or not url.startswith(("http:", "https:")):
            route.continue_()
            return
        path = local_copy(url, node_modules)
        mismatch = version_mismatch(url.split("?")[0], node_modules)
        if mismatch:
            result.failures.append(f"wrong front-end version served offline: {mismatch}")
        if path is None:
            result.blocked.append(f"{request.resource_type} {url}")
            route.abort("blockedbyclient")
            return
        result.substituted.append(url)
        route.fulfill(status=200, body=path.read_bytes(), headers={
            "Content-Type": mimetypes.guess_type(path.name)[0] or "application/octet-stream",
            "Access-Control-Allow-Origin": "*"})  # the site's <script crossorigin> needs CORS
    return handle


# Runs in the page: waits for images and MathJax, then describes what it found.
INSPECT_JS = r"""async ([tagClass, mark, explorerId]) => {
  const imgs = [...document.images];
  imgs.forEach(i => { i.loading = 'eager'; });
  const loaded = Promise.all(imgs.map(i => i.complete ? null : new Promise(r => { i.onload = i.onerror = r; })));
  await Promise.race([loaded, new Promise(r => setTimeout(r, 20000))]);
  const out = {images: imgs.map(i => ({src: i.getAttribute('src'), ok: i.naturalWidth > 0})),
               maths: [], mathjax: null, colab: [], widgets: []};
  const maths = [...document.querySelectorAll('.math')];
  if (maths.length) {
    const start = Date.now();
    while (!(window.MathJax && MathJax.startup && MathJax.startup.promise) && Date.now() - start < 20000)
      await new Promise(r => setTimeout(r, 100));
    if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
      try { await MathJax.startup.promise; out.mathjax = 'ok'; } catch (e) { out.mathjax = 'error: ' + e; }
    } else out.mathjax = 'MathJax did not load';
    for (const m of maths) {
      const raw = m.cloneNode(true);
      raw.querySelectorAll('mjx-container').forEach(c => c.remove());
      out.maths.push({typeset: !!m.querySelector('mjx-container'), error: !!m.querySelector('mjx-merror'),
                      raw: /\\\[|\\\(|\$\$/.test(raw.textContent), text: m.textContent.trim().slice(0, 60)});
    }
  }
  out.colab = [...document.querySelectorAll('a[href*="colab.research.google.com"]')].map(a => a.href);
  // Widget models from the embedded state, to tell an explorer (it has a slider) from,
  // say, a tqdm progress bar; views refer to their children as "IPY_MODEL_<id>".
  const models = {};
  document.querySelectorAll('script[type="application/vnd.jupyter.widget-state+json"]').forEach(s => {
    try { Object.assign(models, JSON.parse(s.textContent).state || {}); } catch (e) {} });
  const hasSlider = (id, seen) => {
    if (seen.has(id) || !models[id]) return false;
    seen.add(id);
    if (/Slider/.test(models[id].model_name || '')) return true;
    if ((models[id].state || {})._anywidget_id === explorerId) return true;
    return (JSON.stringify(models[id].state || {}).match(/IPY_MODEL_\w+/g) || [])
      .some(ref => hasSlider(ref.slice('IPY_MODEL_'.length), seen));
  };
  const cells = [...document.querySelectorAll('div.cell')];
  const fallback = c => !!c && [...c.querySelectorAll('.cell_output')].some(o =>
      o.textContent.includes(mark) && [...o.querySelectorAll('img')].some(i => i.naturalWidth > 0));
  cells.forEach((c, k) => {
    const views = [...c.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]')];
    const widget = views.length > 0 || !!c.querySelector('.jupyter-widgets');
    const slider = views.some(v => { try { return hasSlider(JSON.parse(v.textContent).model_id, new Set()); }
                                     catch (e) { return false; } });
    const tagged = c.classList.contains(tagClass);
    if (tagged || widget)
      out.widgets.push({cell: k + 1, tagged, widget, explorer: tagged || slider,
                        fallback: fallback(c) || fallback(cells[k + 1])});
  });
  return out;
}"""


# ---- layout at the check's viewport (1280 px wide, device pixel ratio 1) ----------------------

# A figure shown below this fraction of its own width has been shrunk by the theme's
# `img {max-width: 100%}` to fit the column (its text becomes small); 1 px of slack for rounding
# when an equation or a table is compared with the room it has.
MIN_FIGURE_SCALE = 0.7
LAYOUT_SLACK_PX = 1
# A hide-input cell's <pre> reports a scrollWidth 2 px over its clientWidth whatever its font size
# (the collapsible box, not the text); a line that really runs off is tens of px over.
CODE_SLACK_PX = 4
# Runs in the page after INSPECT_JS (images loaded, MathJax done): measures, inside the article
# column only (not the sidebars), every display equation, cell-output image and table; widths in
# CSS px. layout_failures() judges the numbers.
# `room(el)` is the width the layout gives an element: the narrowest content box of its block-level
# ancestors up to the column. Shrink-to-fit ancestors (inline-block, table cells, floats) grow with
# their content and so cannot hide an overflow; block ancestors are as wide as the column allows.
LAYOUT_JS = r"""async () => {
  await document.fonts.ready;  // MathJax's widths depend on its web fonts
  const column = document.querySelector('article.bd-article') || document.querySelector('main') || document.body;
  const px = v => parseFloat(v) || 0;
  const room = el => {
    let width = Infinity;
    for (let a = el.parentElement; a; a = a.parentElement) {
      const s = getComputedStyle(a);
      if (/^(block|flow-root|flex|grid|list-item)$/.test(s.display) && a.clientWidth > 0)
        width = Math.min(width, a.clientWidth - px(s.paddingLeft) - px(s.paddingRight));
      if (a === column) break;
    }
    return width;
  };
  const tex = c => {  // the TeX source MathJax typeset, else the text of the rendered maths
    try { return MathJax.startup.document.getMathItemsWithin(c)[0].math; } catch (e) { return c.textContent; }
  };
  const shown = el => el.getBoundingClientRect().width > 0;  // not in a collapsed output
  const cells = [...document.querySelectorAll('div.cell')];
  const cell = el => cells.indexOf(el.closest('div.cell')) + 1;  // 0: not in a code cell
  // 1. Display equations (MathJax 3 CHTML). The theme makes each mjx-container a flex item with
  // overflow:auto beside its number, so a too-wide one is cut off and scrolls: its own
  // clientWidth is the room it has, the inner mjx-math its rendered width.
  const number = block => {  // "(3.2)" from Sphinx's <span class="eqno">, without its "#" link
    const eqno = block && block.querySelector('.eqno');
    if (!eqno) return '';
    const copy = eqno.cloneNode(true);
    copy.querySelectorAll('a.headerlink').forEach(a => a.remove());
    return copy.textContent.trim();
  };
  const equations = [...column.querySelectorAll('mjx-container[display="true"]')].filter(shown).map(c => {
    const block = c.closest('div.math');
    const width = (c.querySelector(':scope > mjx-math') || c).getBoundingClientRect().width;
    return {width, room: Math.min(c.clientWidth || Infinity, room(c)), number: number(block),
            id: block ? block.id : '', tex: tex(c).replace(/\s+/g, ' ').trim().slice(0, 60)};
  });
  // 2. Images in code-cell outputs (matplotlib figures). Their intended width is the width
  // attribute where the output sets one (a "retina" PNG has twice as many pixels as it is meant
  // to show), else the PNG's own width. An inline style width is the author's choice, not a
  // shrink by max-width, and is skipped; so are images inside widgets (thumbnails, icons).
  const figures = [...column.querySelectorAll('.cell_output img')]
    .filter(i => shown(i) && i.naturalWidth > 0 && !i.style.width && !i.closest('.jupyter-widgets, .widget-output'))
    .map(i => {
      const attr = /^\d+(\.\d+)?(px)?$/.test(i.getAttribute('width') || '') ? px(i.getAttribute('width')) : 0;
      const intended = attr || i.naturalWidth, rendered = i.getBoundingClientRect().width;
      return {src: i.getAttribute('src'), cell: cell(i), intended, rendered, scale: rendered / intended};
    });
  // 3. Tables: the table's own box is as wide as its columns need, whatever clips or scrolls it.
  const tables = [...column.querySelectorAll('table')].filter(t => shown(t) && !t.parentElement.closest('table'))
    .map(t => {
      const first = t.querySelector('caption, th, td');
      return {width: t.getBoundingClientRect().width, room: room(t), cell: t.closest('.cell_output') ? cell(t) : 0,
              label: first ? first.textContent.replace(/\s+/g, ' ').trim().slice(0, 40) : ''};
    });
  // 4. Code-cell sources and code shown from vaelib (literalinclude): a line longer than the box
  // scrolls sideways, its end hidden. Cell outputs are rule a's (wide_output_failures).
  const code = [...column.querySelectorAll('div.highlight pre')]
    .filter(p => shown(p) && !p.closest('.cell_output')).map(p => {
    const longest = p.textContent.split('\n').reduce((a, b) => (b.length > a.length ? b : a), '');
    return {width: p.scrollWidth, room: p.clientWidth, cell: cell(p), line: longest.trim().slice(0, 50)};
  });
  return {equations, figures, tables, code};
}"""


def layout_failures(layout: dict) -> list[str]:
    """One message per display equation, table or code-cell source wider than its column or box,
    and per cell-output figure shown below MIN_FIGURE_SCALE of its width (LAYOUT_JS's measurements)."""
    failures = []
    for e in (e for e in layout["equations"] if e["width"] > e["room"] + LAYOUT_SLACK_PX):
        label = " ".join(part for part in (e["number"], f"#{e['id']}" if e["id"] else "") if part) or "(unnumbered)"
        failures.append(f"display equation {label} is wider than its column, cut off: {e['width']:.0f} px "
                        f"in {e['room']:.0f} px ({e['tex']!r})")
    for f in (f for f in layout["figures"] if f["scale"] < MIN_FIGURE_SCALE):
        failures.append(f"figure shrunk to {100 * f['scale']:.0f}% of its width to fit the column: {f['src']} "
                        f"in code cell {f['cell']} ({f['intended']:.0f} px shown in {f['rendered']:.0f} px)")
    for c in (c for c in layout["code"] if c["width"] > c["room"] + CODE_SLACK_PX):
        failures.append(f"code cell {c['cell']}'s source is wider than its box and scrolls: {c['width']:.0f} px "
                        f"in {c['room']:.0f} px (longest line {c['line']!r})")
    for t in (t for t in layout["tables"] if t["width"] > t["room"] + LAYOUT_SLACK_PX):
        where = f"output of code cell {t['cell']}" if t["cell"] else "in the text"
        failures.append(f"table is wider than its column, cut off: {t['width']:.0f} px in {t['room']:.0f} px "
                        f"({where}, first cell {t['label']!r})")
    return failures


# ---- what code cells print and show (rules a-c), with every collapsed part opened --------------

# a. Printed text wider than its box by more than this is cut at the box's edge or scrolls.
OUTPUT_SLACK_PX = 2
# c. The smallest text of a figure must render at least this tall (CSS px at 1280 px, ratio 1).
MIN_TEXT_PX = 8.0
# Runs in the page after LAYOUT_JS. Opens every collapsed <details> of the column (hidden code,
# hidden outputs, dropdown solutions) so that hidden parts are laid out and measured as a reader
# who opens them sees them, then closes them again. Returns, per code cell (1-based index among
# the page's div.cell): a. each printed-output <pre> with its widths and widest line; b. each
# cell whose <details> hides the source only ("Show code cell source") with whether anything
# would be shown besides it; c. each output image with its natural and rendered widths.
OUTPUTS_JS = r"""() => {
  const column = document.querySelector('article.bd-article') || document.querySelector('main') || document.body;
  const closed = [...column.querySelectorAll('details:not([open])')];
  closed.forEach(d => { d.open = true; });
  try {
    const cells = [...document.querySelectorAll('div.cell')];
    const cell = el => cells.indexOf(el.closest('div.cell')) + 1;
    const inWidget = el => !!el.closest('.jupyter-widgets, .widget-output, .vx-explorer');
    const firstLine = c => ((c && c.querySelector('.cell_input pre') || {}).textContent || '')
      .trim().split('\n')[0].slice(0, 60);
    const ruler = document.createElement('canvas').getContext('2d');
    const kind = p => p.closest('.stderr') ? 'stderr' : p.closest('.text_plain') ? 'text/plain'
                    : p.closest('.traceback') ? 'traceback' : 'stdout';
    const printed = [...column.querySelectorAll('.cell_output pre')].filter(p => !inWidget(p) && p.clientWidth > 0)
      .map(p => {
        const s = getComputedStyle(p);
        ruler.font = s.font || `${s.fontWeight} ${s.fontSize} ${s.fontFamily}`;
        const lines = p.textContent.replace(/\n$/, '').split('\n').map(l => l.replace(/\t/g, '        '));
        const widths = lines.map(l => ruler.measureText(l).width);
        const k = widths.indexOf(Math.max(...widths));
        return {cell: cell(p), source: firstLine(p.closest('div.cell')), kind: kind(p),
                scroll: p.scrollWidth, client: p.clientWidth,
                box: p.clientWidth - parseFloat(s.paddingLeft) - parseFloat(s.paddingRight),
                line: lines[k].trim().slice(0, 50), line_width: widths[k]};
      });
    const visible = o => o.innerText.trim() !== '' || !!o.querySelector(
      'img, svg, canvas, video, iframe, table, .jupyter-widgets, script[type="application/vnd.jupyter.widget-view+json"]');
    const toggles = cells.filter(c => [...c.querySelectorAll('details')].some(d =>
        d.querySelector('.cell_input') && !d.querySelector('.cell_output')))
      .map(c => ({cell: cell(c), output: [...c.querySelectorAll('.cell_output')].some(visible), source: firstLine(c)}));
    const figures = [...column.querySelectorAll('.cell_output img')].filter(i => !inWidget(i) && i.naturalWidth > 0)
      .map(i => ({src: i.src, attr: i.getAttribute('src'), cell: cell(i), source: firstLine(i.closest('div.cell')),
                  natural: i.naturalWidth, rendered: i.getBoundingClientRect().width}));
    return {printed, toggles, figures};
  } finally {
    closed.forEach(d => { d.open = false; });
  }
}"""


def source_note(item: dict) -> str:
    """The suffix naming a measured cell's first source line (to find it in its chapter), or ""."""
    return f" [cell source starts {item['source']!r}]" if item.get("source") else ""


def wide_output_failures(printed: list[dict]) -> list[str]:
    """Rule a: one message per printed cell output (stdout, stderr, text/plain) whose text is
    wider than its box at 1280 px, so that it is cut at the box's edge or scrolls sideways."""
    return [f"code cell {p['cell']}'s printed output ({p['kind']}) is wider than its box and scrolls: "
            f"{p['scroll']} px in {p['client']} px; widest line {p['line']!r} is {p['line_width']:.0f} px "
            f"for {p['box']:.0f} px of text (wrap it to fit, e.g. textwrap.fill){source_note(p)}"
            for p in printed if p["scroll"] > p["client"] + OUTPUT_SLACK_PX]


def empty_toggle_failures(toggles: list[dict]) -> list[str]:
    """Rule b: one message per "Show code cell source" toggle (hide-input) of a cell that shows
    no output: the reader would open a toggle for code that displays nothing."""
    return [f"code cell {t['cell']} has a 'Show code cell source' toggle but no visible output "
            f"(source starts {t['source']!r}): tag it remove-cell (remove-input if it shows something)"
            for t in toggles if not t["output"]]


def image_bytes(src: str, origin: str, site: Path) -> bytes:
    """The bytes of an <img>'s absolute src: a data: URI, or a file of the served site."""
    if src.startswith("data:"):
        header, _, payload = src.partition(",")
        return base64.b64decode(payload) if header.endswith(";base64") else unquote(payload).encode("latin-1")
    if not src.startswith(origin):
        raise ValueError(f"not a file of this site: {src}")
    return (site / unquote(urlsplit(src).path).lstrip("/")).read_bytes()


def figure_text_failure(figure: dict, data: bytes) -> str | None:
    """Rule c for one cell-output image: why its smallest text is unknown or renders below
    MIN_TEXT_PX at its rendered scale, or None when it is readable (or the figure has no text)."""
    where = f"figure {figure['attr']} in code cell {figure['cell']}{source_note(figure)}"
    try:
        texts, dpi = png_text(data), png_dpi(data)
    except ValueError as exc:
        return f"{where}: its smallest font size cannot be read ({exc}); show figures as matplotlib PNGs"
    if FONT_KEY not in texts:
        return (f"{where} does not say its smallest font size (no PNG tEXt '{FONT_KEY}'; figures must be shown "
                f"through vaelib/figure_fonts.py's install(), see .ci/README-browser.md)")
    if texts[FONT_KEY] == NO_TEXT:
        return None
    if dpi is None:
        return f"{where} has no resolution (PNG pHYs chunk), so its text size in pixels is unknown"
    try:
        font_pt = float(texts[FONT_KEY])
    except ValueError:
        return f"{where}: its '{FONT_KEY}' is not a number: {texts[FONT_KEY]!r}"
    rendered = figure["rendered"] or figure["natural"]  # 0: not laid out (e.g. an unselected tab)
    px = text_px(font_pt, dpi, rendered, figure["natural"])
    if px >= MIN_TEXT_PX:
        return None
    return (f"{where}: its smallest text renders at {px:.1f} px, under {MIN_TEXT_PX:g} px ({font_pt:g} pt at "
            f"{dpi:.0f} dpi, shown at {100 * rendered / figure['natural']:.0f}% of its {figure['natural']} px)")


def small_text_failures(figures: list[dict], origin: str, site: Path) -> list[str]:
    """Rule c: one message per cell-output image whose smallest text renders below MIN_TEXT_PX
    at 1280 px or whose PNG does not say how large its smallest text is (vaelib/figure_fonts.py)."""
    failures = []
    for figure in figures:
        try:
            data = image_bytes(figure["src"], origin, site)
        except (OSError, ValueError) as exc:
            failures.append(f"figure {figure['attr']} in code cell {figure['cell']} cannot be read: {exc}")
            continue
        failure = figure_text_failure(figure, data)
        if failure:
            failures.append(failure)
    return failures


def output_failures(found: dict, origin: str, site: Path) -> list[str]:
    """Rules a-c on what OUTPUTS_JS measured on one page."""
    return (wide_output_failures(found["printed"]) + empty_toggle_failures(found["toggles"])
            + small_text_failures(found["figures"], origin, site))


def known_upstream(url: str) -> str | None:
    """Why a failed same-site request is a known upstream bug and not this book's, or None."""
    if re.search(r"/@jupyter-widgets/([\w.-]+/)*[0-9a-f]{16,}\.(woff2?|ttf|eot|svg)$", url.split("?")[0]):
        return ("ipywidgets issue 3658: embedded widgets look for their Font Awesome files next to "
                "the page; only icons inside widgets are affected")
    return None


# ---- vaelib's latent explorers: act as a reader and compare with the Python decoder ----------

# The explorers' models from the embedded widget state, each with its rendered root tagged
# data-check-id (waits until every one has rendered or 20 s have passed).
EXPLORERS_JS = r"""async (explorerId) => {
  const models = {};
  document.querySelectorAll('script[type="application/vnd.jupyter.widget-state+json"]').forEach(s => {
    try { Object.assign(models, JSON.parse(s.textContent).state || {}); } catch (e) {} });
  const found = [];
  for (const view of document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]')) {
    let id = null;
    try { id = JSON.parse(view.textContent).model_id; } catch (e) { continue; }
    if (!models[id] || (models[id].state || {})._anywidget_id !== explorerId) continue;
    const host = view.closest('.cell_output') || view.parentElement;
    const start = Date.now();
    let root = null;
    while (!(root = host.querySelector('.vx-explorer:not([data-check-id])')) && Date.now() - start < 20000)
      await new Promise(r => setTimeout(r, 100));
    if (root) root.dataset.checkId = id;
    found.push({id, rendered: !!root, state: models[id]});
  }
  return found;
}"""

# What the reader sees of one explorer: the digit's grey levels, the sliders, the read-out.
SHOWN_JS = r"""(id) => {
  const root = document.querySelector(`[data-check-id="${id}"]`);
  const canvas = root.querySelector('canvas.vx-digit');
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  return {grey: Array.from({length: data.length / 4}, (_, i) => data[4 * i]),
          sliders: [...root.querySelectorAll('.vx-slider input')].map(i => Number(i.value)),
          readout: root.querySelector('.vx-readout').textContent, draws: Number(root.dataset.draws)};
}"""

# Times each slider input to the frame after the explorer's redraw: input event -> end of the
# explorer's handler (decode + draw) and -> after the next animation frame (the repaint), and
# counts the animation frames in between (1: the new image is in the first frame after the input).
LATENCY_JS = r"""(id) => {
  const root = document.querySelector(`[data-check-id="${id}"]`);
  window.__vxLatency = [];
  let frames = 0;
  const tick = () => { frames++; requestAnimationFrame(tick); };
  requestAnimationFrame(tick);
  root.addEventListener('input', e => {
    const start = e.timeStamp, handled = performance.now() - start, before = frames;
    requestAnimationFrame(() => setTimeout(() =>
      window.__vxLatency.push([handled, performance.now() - start, frames - before])));
  });
}"""


def unpack_state(model: dict) -> dict:
    """A widget model's state with its base64 buffers put back at their paths (top-level names)."""
    state = dict(model["state"])
    for buffer in model.get("buffers", []):
        state[buffer["path"][0]] = base64.b64decode(buffer["data"])
    return state


def live_explorers(page: Page) -> list[tuple[str, dict]]:
    """(model id, unpacked state) of each vaelib explorer on the page; unrendered ones raise."""
    found = page.evaluate(EXPLORERS_JS, EXPLORER_ID)
    missing = [f["id"] for f in found if not f["rendered"]]
    if missing:
        raise RuntimeError(f"{len(missing)} explorer(s) did not render within 20 s (is anywidget's front-end served?)")
    return [(f["id"], {**unpack_state(f["state"]), "_json_bytes": len(json.dumps(f["state"])),
                       "_gzip_bytes": len(gzip.compress(json.dumps(f["state"]).encode()))}) for f in found]


def exercise_explorer(page: Page, model_id: str, state: dict, result: PageResult, shots: Path) -> None:
    """Move sliders, pick a component, sample, reset, click the plane and a thumbnail; after each,
    the image must have changed and equal the Python decoder's for the z the sliders show."""
    root = page.locator(f'[data-check-id="{model_id}"]')
    root.scroll_into_view_if_needed()
    label = f"explorer of {state.get('prior_label') or 'a model'} (z = {len(state['z'])})"
    fail = lambda what: result.failures.append(f"{label}: {what}")  # noqa: E731
    layers, weights, dtype = state["decoder_layers"], state["decoder_weights"], state["weights_dtype"]
    n_components, dim = state["prior_shape"]
    means = np.frombuffer(state["prior_means"], "<f4").reshape(n_components, dim) \
        if state["prior_kind"] == "mixture" else None
    shown = page.evaluate(SHOWN_JS, model_id)

    def after(action: str, act: Callable[[], None], must_change: bool = True) -> dict:
        """Do `act`, wait for the redraw, and check what the reader now sees."""
        nonlocal shown
        before = shown
        act()
        try:
            page.wait_for_function(f"(n) => Number(document.querySelector('[data-check-id=\"{model_id}\"]')"
                                   ".dataset.draws) > n", arg=before["draws"], timeout=5000)
        except Exception:
            pass  # judged below from what is on screen
        page.wait_for_timeout(50)
        shown = page.evaluate(SHOWN_JS, model_id)
        z = np.array(shown["sliders"])
        expected = np.round(255 * (1 - decode_with_page_weights(layers, weights, dtype, z[None])[0]))
        off = np.abs(np.array(shown["grey"]) - expected)
        if must_change and shown["grey"] == before["grey"]:
            fail(f"{action}: the image did not change")
        elif off.max() > PIXEL_TOLERANCE:
            fail(f"{action}: the image is not the decoding of the z shown ({int((off > PIXEL_TOLERANCE).sum())} "
                 f"pixels off by up to {int(off.max())} grey levels)")
        numbers = re.search(r"z = \(([^)]*)\)", shown["readout"])
        readout = [float(v) for v in numbers.group(1).split(",")] if numbers else []
        if len(readout) != len(z) or np.abs(np.array(readout) - z).max() > 0.005 + 1e-9:
            fail(f"{action}: the read-out {shown['readout'][:80]!r} does not match the sliders {np.round(z, 3).tolist()}")
        return shown

    after("as loaded", lambda: None, must_change=False)
    sliders = root.locator(".vx-slider input")
    if sliders.count() != dim:
        fail(f"{sliders.count()} sliders for {dim} latent dimensions")
        return
    sliders.nth(0).focus()
    after("slider z1 moved by keyboard", lambda: [page.keyboard.press("ArrowRight") for _ in range(5)])
    root.screenshot(path=f"{shots}-slider.png")

    def drag() -> None:
        box = sliders.nth(min(1, dim - 1)).bounding_box()
        y = box["y"] + box["height"] / 2
        page.mouse.move(box["x"] + box["width"] / 2, y)
        page.mouse.down()
        page.mouse.move(box["x"] + 0.85 * box["width"], y, steps=8)
        page.mouse.up()
    after(f"slider z{min(2, dim)} dragged", drag)
    selector = root.locator(".vx-component select, .vx-component input")
    if n_components > 1 and means is not None:
        if selector.count() != 1:
            fail(f"no component selector for a mixture of {n_components} components")
        else:
            target = (int(selector.input_value()) + 1) % n_components
            if selector.evaluate("e => e.tagName") == "SELECT":
                pick = lambda: selector.select_option(str(target))  # noqa: E731
            else:
                pick = lambda: (selector.fill(str(target)), selector.press("Enter"))  # noqa: E731
            now = after(f"component {target} selected", pick)
            if f"component {target}" not in now["readout"] or np.abs(np.array(now["sliders"]) - means[target]).max() > 1e-5:
                fail(f"selecting component {target} did not centre the sliders on its mean")
    now = after("'sample from the prior' pressed", lambda: root.locator("button.vx-sample").click())
    if "a draw from the prior" not in now["readout"]:
        fail("the read-out does not say that z is a draw from the prior")
    after("'reset' pressed", lambda: root.locator("button.vx-reset").click())
    plane = root.locator("canvas.vx-plane")
    if dim == 2 and state.get("plane_points"):
        if plane.count() != 1:
            fail("no plane of encoded test images for a 2-d latent space")
        else:
            after("the plane clicked", lambda: plane.click(position={"x": 80, "y": 190}))
            root.screenshot(path=f"{shots}-plane.png")
    thumbs = root.locator("canvas.vx-example")
    if state.get("example_z"):
        codes = np.frombuffer(state["example_z"], "<f4").reshape(-1, dim)
        k = min(1, len(codes) - 1)
        now = after(f"test image {k} clicked", lambda: thumbs.nth(k).click())
        if np.abs(np.array(now["sliders"]) - codes[k]).max() > 1e-5:
            fail(f"clicking test image {k} did not set z to its encoding")

    # Latency: 50 key presses (back and forth), each timed from its input event to the repaint.
    page.evaluate(LATENCY_JS, model_id)
    sliders.nth(0).focus()
    for move in range(LATENCY_MOVES):
        page.keyboard.press("ArrowRight" if move // 5 % 2 == 0 else "ArrowLeft")
        page.wait_for_function("(n) => window.__vxLatency.length >= n", arg=move + 1, timeout=5000)
    times = np.array(page.evaluate("() => window.__vxLatency"))
    after("after the timed moves", lambda: None, must_change=False)
    root.screenshot(path=f"{shots}.png")
    result.explorers.append({
        "label": label, "weights": dtype, "page_bytes": state["_json_bytes"], "page_bytes_gzip": state["_gzip_bytes"],
        "latency_ms": {"median": float(np.median(times[:, 1])), "p95": float(np.percentile(times[:, 1], 95)),
                       "handler_median": float(np.median(times[:, 0])),
                       "handler_p95": float(np.percentile(times[:, 0], 95)), "moves": len(times),
                       "next_frame": int((times[:, 2] <= 1).sum())}})


def check_page(page: Page, name: str, origin: str, site: Path, out: Path, colab: str | None,
               is_notebook: bool, result: PageResult) -> None:
    """Load one page, run every check on it and save its screenshot; failures go to `result`."""
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"JavaScript error: {exc}"))
    # Network failures are checked below from the requests themselves, so the console's
    # generic "Failed to load resource" lines (which name no file) are not counted twice.
    page.on("console", lambda msg: msg.type == "error" and not msg.text.startswith("Failed to load resource")
            and errors.append(f"console error: {msg.text}"))

    def site_file_failed(what: str, req_url: str) -> None:
        reason = known_upstream(req_url)
        if reason:
            result.ignored.append(f"{what}: {req_url} ({reason})")
        else:
            errors.append(f"{what}: {req_url}")

    page.on("response", lambda r: r.url.startswith(origin) and r.status >= 400
            and site_file_failed(f"HTTP {r.status} for a site file", r.url))
    page.on("requestfailed", lambda r: r.url.startswith(origin)
            and site_file_failed(f"request failed ({r.failure})", r.url))
    response = page.goto(result.url, wait_until="load", timeout=180_000)  # a chapter is megabytes
    if response is None or response.status != 200:
        result.failures.append(f"page did not load (HTTP {response.status if response else 'no response'})")
        return
    found = page.evaluate(INSPECT_JS, [EXPLORER_TAG_CLASS, STATIC_MARK, EXPLORER_ID])
    result.failures += [f"blocked outside {b} (the page needs it)" for b in result.blocked
                        if b.split(" ", 1)[0] in ("script", "stylesheet")]
    result.failures += [f"image did not load: {i['src']}" for i in found["images"] if not i["ok"]]
    bad_maths = [m for m in found["maths"] if not m["typeset"] or m["raw"] or m["error"]]
    if bad_maths:
        result.failures.append(f"maths not typeset ({found['mathjax']}): {len(bad_maths)} of "
                               f"{len(found['maths'])} math elements, first: {bad_maths[0]['text']!r}")
    if is_notebook and colab:
        expected = f"{colab}{name}.ipynb"
        if expected not in found["colab"]:
            result.failures.append(f"Colab launch link should be {expected}; page has {found['colab'] or 'none'}")
    # A table a code cell displays as Markdown must be rendered, not shown as "| a | b |" text.
    outputs = page.evaluate("() => Array.from(document.querySelectorAll('.cell_output'), e => e.innerText)")
    leaked = [o for o in outputs if RAW_MARKDOWN_TABLE.search(o)]
    if leaked:
        result.failures.append(f"{len(leaked)} cell output(s) show a raw Markdown table, first: "
                               f"{leaked[0].strip().splitlines()[0][:80]!r}")
    result.failures += layout_failures(page.evaluate(LAYOUT_JS))
    result.failures += output_failures(page.evaluate(OUTPUTS_JS), origin, site)
    for w in (w for w in found["widgets"] if w["explorer"]):
        if not w["widget"]:
            result.failures.append(f"code cell {w['cell']} is tagged latent-explorer but shows no widget")
        if not w["fallback"]:
            result.failures.append(f"explorer in code cell {w['cell']} has no static fallback: no output with "
                                   f"'{STATIC_MARK}' and a loaded image in that cell or the next one")
    result.counts = {"images": len(found["images"]), "maths": len(found["maths"]),
                     "explorers": sum(w["explorer"] for w in found["widgets"]),
                     "other widget cells": sum(not w["explorer"] for w in found["widgets"])}
    shot = out / "screenshots" / f"{name}.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shot), full_page=True)
    for number, (model_id, state) in enumerate(live_explorers(page)):
        try:
            exercise_explorer(page, model_id, state, result, out / "screenshots" / f"{name}-explorer{number + 1}")
        except Exception as exc:  # a missing control or a timeout: a failure of this explorer
            result.failures.append(f"explorer {number + 1}: check crashed: {type(exc).__name__}: "
                                   f"{str(exc).splitlines()[0] if str(exc) else ''}")
    result.screenshot = str(shot)
    page.wait_for_timeout(500)  # let late requests and errors (fonts, deferred scripts) arrive
    result.failures[:0] = errors


def check_site(site: Path, node_modules: Path, out: Path, toc: Path, config: Path) -> list[PageResult]:
    """Check every page of the table of contents; returns one result per page."""
    pages = toc_pages(toc)
    colab = colab_prefix(config)
    server = serve(site)
    origin = f"http://127.0.0.1:{server.server_address[1]}/"
    results: list[PageResult] = []
    try:
        with tempfile.TemporaryDirectory(prefix="check-site-profile-") as profile, sync_playwright() as pw:
            context = pw.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
                # Device pixel ratio 1: one CSS px is one screen pixel, so a figure at 100% shows each
                # of its pixels once (the layout checks compare CSS widths with PNG pixel widths).
                viewport={"width": 1280, "height": 900}, device_scale_factor=1)
            for name in pages:
                result = PageResult(page=name, url=f"{origin}{name}.html")
                results.append(result)
                if not (site / f"{name}.html").is_file():
                    result.failures.append(f"{name}.html is missing from {site}")
                    continue
                page = context.new_page()
                page.route("**/*", route_handler(result, origin, node_modules))
                try:
                    check_page(page, name, origin, site, out, colab, (toc.parent / f"{name}.ipynb").is_file(), result)
                except Exception as exc:  # a timeout or crash on one page must not hide the others
                    result.failures.append(f"check crashed: {type(exc).__name__}: {exc}")
                finally:
                    page.close()
            context.close()
    finally:
        server.shutdown()
    return results


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the check, print a per-page summary and write report.json."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--site", type=Path, required=True, help="built HTML, e.g. _build/html")
    parser.add_argument("--node-modules", type=Path, required=True,
                        help="node_modules holding mathjax, @jupyter-widgets/html-manager, requirejs, anywidget")
    parser.add_argument("--out", type=Path, required=True, help="folder for screenshots/ and report.json")
    parser.add_argument("--toc", type=Path, default=Path("_toc.yml"), help="the book's _toc.yml")
    parser.add_argument("--config", type=Path, help="the book's _config.yml (default: next to --toc)")
    args = parser.parse_args(argv)
    config = args.config or args.toc.parent / "_config.yml"
    try:
        if not (args.site / "index.html").is_file():
            raise ValueError(f"--site {args.site} has no index.html; build the book first")
        if not args.node_modules.is_dir():
            raise ValueError(f"--node-modules {args.node_modules} is not a directory")
        if not Path(CHROMIUM).is_file():
            raise ValueError(f"{CHROMIUM} not found; install Debian's chromium package")
        for package in ("mathjax", "@jupyter-widgets/html-manager", "requirejs", "anywidget"):
            if not (args.node_modules / package).is_dir():
                print(f"warning: {package} is not in {args.node_modules}; pages that need it will fail")
        results = check_site(args.site.resolve(), args.node_modules.resolve(), args.out, args.toc, config)
    except ValueError as exc:
        print(f"check_site: {exc}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    failed = [r for r in results if r.failures]
    (args.out / "report.json").write_text(json.dumps(
        {"passed": not failed, "pages": [asdict(r) for r in results]}, indent=2))
    for r in results:
        print(f"{'FAIL' if r.failures else 'ok  '} {r.page}  {r.counts}")
        for f in r.failures:
            print(f"       - {f}")
        for b in r.blocked:
            print(f"       blocked: {b}")
        if r.ignored:
            print(f"       ignored {len(r.ignored)} known upstream failure(s), e.g. {r.ignored[0]}")
        for e in r.explorers:
            lat = e["latency_ms"]
            print(f"       {e['label']}: page weight {e['page_bytes'] / 1e6:.2f} MB ({e['page_bytes_gzip'] / 1e6:.2f} MB "
                  f"gzipped, {e['weights']} weights); slider input to repaint over {lat['moves']} moves: median "
                  f"{lat['median']:.1f} ms, p95 {lat['p95']:.1f} ms, in the first frame after the input for "
                  f"{lat['next_frame']} of them (decode + draw: median {lat['handler_median']:.1f} ms, p95 "
                  f"{lat['handler_p95']:.1f} ms)")
    substituted = sorted({u for r in results for u in r.substituted})
    print(f"CDN files served from {args.node_modules}: {len(substituted)} distinct URLs")
    for u in substituted[:10]:
        print(f"       {u}")
    print(f"{len(results) - len(failed)}/{len(results)} pages passed; report: {args.out / 'report.json'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
