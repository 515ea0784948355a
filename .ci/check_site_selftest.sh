#!/usr/bin/env bash
# Shows that .ci/check_site.py passes a good site and fails a broken one.
# Builds a tiny Jupyter Book in a temporary folder (nothing is written to the repository):
#   intro.md (markdown), book/maths.ipynb (display maths, a theorem with its proof, an exercise
#   with a dropdown solution, a matplotlib figure, a hidden-source cell that prints a short line),
#   book/explorer.ipynb (a tqdm progress bar, a plain slider tagged latent-explorer with its
#   static view, and vaelib's latent explorer of a small untrained mixture-prior VAE with z = 2)
# Their figures go through vaelib/figure_fonts.py's install() (a first cell tagged remove-cell), so
# each PNG says its smallest font size.
# then runs the check on: the good site (must pass) and thirteen broken copies (must fail):
#   a) a figure PNG deleted from _images      -> "image did not load: ../_images/<file>"
#   b) node_modules without mathjax           -> "maths not typeset"
#   c) the explorer's static figure deleted   -> "has no static fallback"
#   d) a Colab link pointing at the wrong path -> "Colab launch link should be"
#   e) a cell output holding a raw Markdown table -> "raw Markdown table"
#   f) vaelib's explorer whose image never updates after it is first drawn
#                                             -> "the image did not change"
# and, on a copy of the book with three more pages (built once, each page checked on its own),
# layout defects a reader sees at the check's 1280 px viewport:
#   g) a display equation (a long sum, no line break) wider than the column
#                                             -> "display equation (1) #equation-wide-sum is wider than its column"
#   h) a matplotlib figure of figsize=(20, 3) that max-width:100% shrinks -> "figure shrunk to"
#   i) a Markdown table of twelve wide columns -> "table is wider than its column, cut off"
#   j) a code cell with a 170-character line -> "code cell 1's source is wider than its box"
#   k) a cell that prints a 150-character line -> "printed output (stdout) is wider than its box"
#   l) a hide-input cell that shows nothing    -> "has a 'Show code cell source' toggle but no visible output"
#   m) a figure with 4-point tick labels       -> "smallest text renders at"
#   n) a figure shown without install()        -> "does not say its smallest font size"
# (the good book's intro has a table, and its maths page an equation and a figure, that fit).
# Usage: .ci/check_site_selftest.sh   (env: PYTHON with jupyter-book + playwright, default the
# python on PATH; NODE_MODULES to reuse an npm folder; KEEP=1 keeps the work folder)
set -euo pipefail

CHECK="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/check_site.py"
PYTHON="${PYTHON:-$(command -v python || command -v python3)}"
JUPYTER_BOOK="$(dirname "$PYTHON")/jupyter-book"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/check-site-selftest.XXXXXX")"
[ "${KEEP:-0}" = 1 ] && echo "work folder kept: $WORK" || trap 'rm -rf "$WORK"' EXIT
BOOK="$WORK/book-src"
mkdir -p "$BOOK/book"
# The book's own Sphinx extensions (duplicate-script fix, MathJax 2 bridge for widgets).
EXT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/../book/_ext" && pwd)"
cd "$BOOK"
cp -r "$EXT_DIR/../../_static" .  # the real book's stylesheet (code-cell font size)

# The same launch-button, repository and widget settings as the real book's _config.yml.
cat > _config.yml <<EOF
title: check_site self-test
author: self-test
execute:
  execute_notebooks: force
repository:
  url: https://github.com/example-org/example-book
  branch: main
  path_to_book: ""
launch_buttons:
  colab_url: https://colab.research.google.com
  notebook_interface: classic
parse:
  myst_enable_extensions: [amsmath, colon_fence, dollarmath]
sphinx:
  extra_extensions: [sphinx_exercise, sphinx_proof]
  local_extensions:
    dedupe_scripts: $EXT_DIR
    mathjax2_bridge: $EXT_DIR
  config:
    html_context:
      default_mode: light
    nb_ipywidgets_js:
      "https://cdn.jsdelivr.net/npm/requirejs@2.3.8/require.js":
        integrity: "sha256-wfxrHVOvdSL3jWZJIquzKsrGTtDszLj5B/Hm/HJiVjo="
        crossorigin: anonymous
      "https://cdn.jsdelivr.net/npm/@jupyter-widgets/html-manager@1.0.15/dist/embed-amd.js":
        data-jupyter-widgets-cdn: "https://cdn.jsdelivr.net/npm/"
        data-jupyter-widgets-cdn-only: ""
        crossorigin: anonymous
EOF
cat > _toc.yml <<'EOF'
format: jb-book
root: intro
chapters:
  - file: book/maths
  - file: book/explorer
EOF
printf '# Self-test book\n\nA markdown page: no maths, no figure, a table that fits.\n\n| a | b |\n| --- | --- |\n| 1 | 2 |\n' > intro.md
CI_DIR="$(dirname "$CHECK")" "$PYTHON" - <<'EOF'
import os
import nbformat as nbf
v = nbf.v4
kernel = {"name": "python3", "display_name": "Python 3", "language": "python"}
figure = "import matplotlib.pyplot as plt\nfig, ax = plt.subplots(figsize=(3, 2))\nax.{}\nplt.show()"
# What vaelib.notebook.setup() is to do for the chapters: figures say their smallest font size.
fonts = v.new_code_cell("from vaelib import figure_fonts\nassert figure_fonts.install()",
                        metadata={"tags": ["remove-cell"]})
theory = """# Maths and a figure

$$ e^{i\\pi}+1=0 $$

and inline $a^2$.

:::{prf:theorem} Jensen
:label: thm-jensen

For a concave $f$, $\\mathbb{E}[f(X)] \\le f(\\mathbb{E}[X])$.
:::

:::{prf:proof}
A tangent line at $\\mathbb{E}[X]$ lies above $f$; take expectations.
:::

:::{exercise}
:label: ex-log

Apply {prf:ref}`thm-jensen` to $\\log$.
:::

:::{solution} ex-log
:class: dropdown

$\\mathbb{E}[\\log X] \\le \\log \\mathbb{E}[X]$.
:::
"""
nbf.write(v.new_notebook(metadata={"kernelspec": kernel}, cells=[
    fonts,
    v.new_markdown_cell(theory),
    v.new_code_cell(figure.format("plot([0, 1], [0, 1])")),
    v.new_code_cell("print('a short line')", metadata={"tags": ["hide-input"]}),
]), "book/maths.ipynb")
nbf.write(v.new_notebook(metadata={"kernelspec": kernel}, cells=[
    fonts,
    v.new_markdown_cell("# An explorer"),
    v.new_code_cell("from tqdm.auto import tqdm\nfor _ in tqdm(range(3)):\n    pass"),
    v.new_code_cell("import ipywidgets as w\nw.VBox([w.FloatSlider(description='z1'), w.FloatSlider(description='z2')])",
                    metadata={"tags": ["latent-explorer"]}),
    v.new_code_cell("print('Static view: each row sweeps one latent dimension.\\nFor live sliders, open this '\n"
                    "      'page on Colab with the rocket button at the top.')\n" + figure.format("imshow([[0, 1], [1, 0]])"),
                    metadata={"tags": ["latent-explorer-static"]}),
    v.new_markdown_cell("vaelib's explorer: its decoder runs in the page."),
    v.new_code_cell("import torch\nfrom vaelib.experiments import get_experiment\nfrom vaelib.explorer import show_explorer\n"
                    # vaelib's note has 82-character lines, 18 px too wide for the output box (rule a):
                    # wrapped here at vaelib.notebook.OUTPUT_WIDTH until vaelib wraps it itself.
                    "import textwrap\nfrom vaelib import explorer as vx, notebook\n"
                    "note = vx.STATIC_NOTE.replace('\\n', ' ')\n"
                    "vx.STATIC_NOTE = textwrap.fill(note, notebook.OUTPUT_WIDTH)\n"
                    "torch.manual_seed(0)\nmodel = get_experiment('mog-z2-m10').build().eval()\n"
                    "images = torch.randint(0, 256, (200, 28, 28), dtype=torch.uint8)\n"
                    "show_explorer(model, images=images, labels=torch.arange(200) % 10)",
                    metadata={"tags": ["latent-explorer"]}),
]), "book/explorer.ipynb")
EOF

echo "== building the test book in $BOOK"
"$JUPYTER_BOOK" build . -W -n --keep-going > "$WORK/build.log" 2>&1 || { cat "$WORK/build.log"; exit 1; }
SITE="$BOOK/_build/html"

if [ -z "${NODE_MODULES:-}" ]; then
    npm install --prefix "$WORK/node" --no-audit --no-fund --loglevel=error \
        mathjax@3 @jupyter-widgets/html-manager@1.0.15 requirejs@2.3.8 anywidget@0.11.0
    NODE_MODULES="$WORK/node/node_modules"
fi

status=0
# expect NAME WANT_RC TEXT SITE NODE_MODULES [TOC]: run the check, compare exit code and output.
expect() {
    local name=$1 want=$2 text=$3 site=$4 nm=$5 toc=${6:-$BOOK/_toc.yml} rc=0
    "$PYTHON" "$CHECK" --site "$site" --node-modules "$nm" --out "$WORK/out-$name" \
        --toc "$toc" > "$WORK/$name.log" 2>&1 || rc=$?
    if [ "$rc" = "$want" ] && grep -qF -- "$text" "$WORK/$name.log"; then
        echo "-- $name: exit $rc as expected, output has '$text'"
    else
        echo "-- $name: UNEXPECTED (exit $rc, wanted $want with '$text'):"; status=1
    fi
    grep -E '^(ok|FAIL)|^ +- ' "$WORK/$name.log" | sed 's/^/     /'
}
broken_copy() { rm -rf "$WORK/$1"; cp -r "$SITE" "$WORK/$1"; echo "$WORK/$1"; }
first_image() { grep -o '_images/[0-9a-f]*\.png' "$1" | head -1; }

expect good 0 "3/3 pages passed" "$SITE" "$NODE_MODULES"
grep -F "slider input to repaint" "$WORK/good.log" | sed "s/^ */     /"

A=$(broken_copy site-a); IMG=$(first_image "$A/book/maths.html"); rm "$A/$IMG"
expect a-missing-figure 1 "image did not load: ../$IMG" "$A" "$NODE_MODULES"

mkdir -p "$WORK/nm-no-mathjax"
for pkg in @jupyter-widgets requirejs anywidget; do ln -s "$NODE_MODULES/$pkg" "$WORK/nm-no-mathjax/$pkg"; done
expect b-no-mathjax 1 "maths not typeset" "$SITE" "$WORK/nm-no-mathjax"

C=$(broken_copy site-c); IMG=$(first_image "$C/book/explorer.html"); rm "$C/$IMG"
expect c-no-static-view 1 "has no static fallback" "$C" "$NODE_MODULES"

D=$(broken_copy site-d); sed -i 's|blob/main/book/maths.ipynb|blob/main/maths.ipynb|' "$D/book/maths.html"
expect d-wrong-colab-link 1 "Colab launch link should be" "$D" "$NODE_MODULES"

E=$(broken_copy site-e)
sed -i '0,/<h1/s#<h1#<div class="cell_output docutils container"><p>| a | b |\n| --- | --- |\n| 1 | 2 |</p></div><h1#' "$E/book/maths.html"
expect e-raw-markdown-table 1 "raw Markdown table" "$E" "$NODE_MODULES"

# f) the explorer's image is drawn once and never again (sliders and read-out still move): a
# canvas that ignores every putImageData after its first, prepended to the module in the page.
F=$(broken_copy site-f)
"$PYTHON" - "$F/book/explorer.html" <<'EOF'
import json, re, sys
from pathlib import Path
page = Path(sys.argv[1])
html = page.read_text()
freeze = ("const put = CanvasRenderingContext2D.prototype.putImageData; let shown = false;\n"
          "CanvasRenderingContext2D.prototype.putImageData = function (...args) {\n"
          "  if (this.canvas.classList.contains('vx-digit')) { if (shown) return; shown = true; }\n"
          "  return put.apply(this, args); };\n")
pattern = re.compile(r'(<script type="application/vnd.jupyter.widget-state\+json">)(.*?)(</script>)', re.S)
match = pattern.search(html)
state = json.loads(match.group(2))
changed = [m for m in state["state"].values() if m["state"].get("_anywidget_id") == "vaelib.explorer.LatentExplorer"]
assert changed, "no vaelib explorer in the self-test page"
for m in changed:
    m["state"]["_esm"] = freeze + m["state"]["_esm"]
page.write_text(html[:match.start(2)] + json.dumps(state) + html[match.end(2):])
EOF
expect f-explorer-image-frozen 1 "the image did not change" "$F" "$NODE_MODULES"

# g-n) layout: the book's config and intro with one page per defect (no explorer page, so the
# build is quick). Each case checks the intro and its own page, from a _toc-<page>.yml next to
# the book's _toc.yml (the check finds the page's .ipynb, for the Colab link, next to the toc).
LAYOUT="$WORK/book-layout"
mkdir -p "$LAYOUT/book"
cp "$BOOK/_config.yml" "$BOOK/intro.md" "$LAYOUT/"
cp -r "$EXT_DIR/../../_static" "$LAYOUT/"  # the real book's code-cell font size
cd "$LAYOUT"
# p(z) = pi_1 N(z; mu_1, sigma_1^2) + ... + pi_14 N(...) + ... on one line: over 2000 px in a 633 px column.
terms=$(for k in $(seq 14); do printf '\\pi_{%d}\\,\\mathcal{N}(z;\\mu_{%d},\\sigma_{%d}^2) + ' "$k" "$k" "$k"; done)
printf '# A wide equation\n\n$$\np(z) = %s\\cdots\n$$ (wide-sum)\n' "$terms" > book/wide_equation.md
printf '# A wide table\n\n%s|\n%s|\n%s|\n' "$(printf '| a long column heading %d ' $(seq 12))" \
    "$(printf '| --- %.0s' $(seq 12))" "$(printf '| 0.123456789 %.0s' $(seq 12))" > book/wide_table.md
CI_DIR="$(dirname "$CHECK")" "$PYTHON" - <<'EOF'
import os
import nbformat as nbf
v = nbf.v4
kernel = {"name": "python3", "display_name": "Python 3", "language": "python"}
fonts = v.new_code_cell("from vaelib import figure_fonts\nassert figure_fonts.install()",
                        metadata={"tags": ["remove-cell"]})
small = "import matplotlib.pyplot as plt\nfig, ax = plt.subplots(figsize=(3, 2))\nax.plot(range(10))\n{}plt.show()"
pages = {
    "wide_output": [v.new_code_cell("print('a printed line far longer than any output box can show, ' * 3)")],
    "empty_toggle": [v.new_code_cell("x = 1", metadata={"tags": ["hide-input"]})],
    "small_text": [fonts, v.new_code_cell(small.format("ax.tick_params(labelsize=4)\n"))],
    "no_font_size": [v.new_code_cell(small.format(""))],
}
for page, cells in pages.items():
    nbf.write(v.new_notebook(metadata={"kernelspec": kernel}, cells=[v.new_markdown_cell(f"# {page}"), *cells]),
              f"book/{page}.ipynb")
nbf.write(v.new_notebook(metadata={"kernelspec": kernel}, cells=[
    v.new_markdown_cell("# A wide figure"),
    v.new_code_cell("import matplotlib.pyplot as plt\nfig, ax = plt.subplots(figsize=(20, 3))\nax.plot(range(10))\nplt.show()"),
]), "book/wide_figure.ipynb")
nbf.write(v.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}, cells=[
    v.new_markdown_cell("# A wide code line"),
    v.new_code_cell("total = 0\nfor i in range(3): total += i  # " + "a comment far longer than any code box can show, " * 3),
]), "book/wide_code.ipynb")
EOF
PAGES=(wide_equation wide_figure wide_table wide_code wide_output empty_toggle small_text no_font_size)
{ printf 'format: jb-book\nroot: intro\nchapters:\n'; printf '  - file: book/%s\n' "${PAGES[@]}"; } > _toc.yml
for page in "${PAGES[@]}"; do printf 'format: jb-book\nroot: intro\nchapters:\n  - file: book/%s\n' "$page" > "_toc-$page.yml"; done
echo "== building the layout test book in $LAYOUT"
"$JUPYTER_BOOK" build . -W -n --keep-going > "$WORK/build-layout.log" 2>&1 || { cat "$WORK/build-layout.log"; exit 1; }
cd "$BOOK"
expect g-wide-equation 1 "display equation (1) #equation-wide-sum is wider than its column" \
    "$LAYOUT/_build/html" "$NODE_MODULES" "$LAYOUT/_toc-wide_equation.yml"
expect h-shrunken-figure 1 "figure shrunk to" "$LAYOUT/_build/html" "$NODE_MODULES" "$LAYOUT/_toc-wide_figure.yml"
expect i-wide-table 1 "table is wider than its column, cut off" "$LAYOUT/_build/html" "$NODE_MODULES" "$LAYOUT/_toc-wide_table.yml"
expect j-wide-code 1 "code cell 1's source is wider than its box" "$LAYOUT/_build/html" "$NODE_MODULES" "$LAYOUT/_toc-wide_code.yml"
expect k-wide-output 1 "code cell 1's printed output (stdout) is wider than its box" \
    "$LAYOUT/_build/html" "$NODE_MODULES" "$LAYOUT/_toc-wide_output.yml"
expect l-empty-toggle 1 "code cell 1 has a 'Show code cell source' toggle but no visible output" \
    "$LAYOUT/_build/html" "$NODE_MODULES" "$LAYOUT/_toc-empty_toggle.yml"
expect m-small-text 1 "its smallest text renders at" "$LAYOUT/_build/html" "$NODE_MODULES" "$LAYOUT/_toc-small_text.yml"
expect n-no-font-size 1 "does not say its smallest font size" \
    "$LAYOUT/_build/html" "$NODE_MODULES" "$LAYOUT/_toc-no_font_size.yml"

[ "$status" = 0 ] && echo "self-test passed: the check passes the good site and fails each broken one" \
                  || echo "self-test FAILED"
exit "$status"
