"""Live check of a chapter's latent explorer in JupyterLab with a running kernel.

What the static site cannot show, so .ci/check_site.py cannot check it: that JupyterLab renders
the explorer (anywidget's lab extension), that its sliders take arrow keys instead of
JupyterLab's notebook shortcuts, and that what the reader sets reaches the kernel. .ci/run runs
it on chapter 3 after installing JupyterLab (which the book itself does not need):

    pip install jupyterlab
    VAELIB_PROFILE=smoke python .ci/check_live_explorer.py book/03_mog_prior.ipynb --out live-check

It starts JupyterLab on 127.0.0.1 on a temporary copy of the notebook (JupyterLab saves what it
runs; the chapter in the repository stays without outputs), opens it in the
system's headless Chromium (driven by Playwright), runs all cells, and then acts as a reader
on the explorer (vaelib.explorer, an anywidget rendered by JupyterLab's anywidget extension):

* moves the first slider with the keyboard and checks that the decoded image (the canvas
  pixels) and the printed z change, timing key press to new image in the page;
* presses "sample from the prior" and checks that z and the image change again;
* for a mixture prior, picks another component and checks that the sliders re-centre;
* runs a new cell that prints, as one JSON line after the marker KERNEL_Z_MARK, the `z` of
  every LatentExplorer in the kernel; the z on screen must be one of them (the page syncs what
  the reader set back to Python). An error in that cell is reported, not parsed.

Screenshots of the explorer go to --out. Exit status 0 when every check passes.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ROOT = Path(__file__).resolve().parent.parent
# The kernel's answer: one line "KERNEL_Z_MARK [[z of explorer 1], ...]", typed as one line of code
# (inserted as text, so the editor's auto-indent and bracket closing cannot change it).
KERNEL_Z_MARK = "VX-KERNEL-Z"
KERNEL_Z_CODE = ("import gc, json; from vaelib.explorer import LatentExplorer; "
                 f"print('{KERNEL_Z_MARK}', json.dumps([[float(v) for v in o.z] for o in gc.get_objects() "
                 "if isinstance(o, LatentExplorer)]))")
# The output text of the cell whose code holds the marker, and whether it has finished running
# (its prompt shows a number).
KERNEL_CELL_JS = """(mark) => {
  const last = [...document.querySelectorAll('.jp-Notebook .jp-Cell')].find(c => {
    const editor = c.querySelector('.jp-InputArea-editor');
    return editor && editor.innerText.includes(mark);
  });
  if (!last) return {text: '', done: false};
  const prompt = last.querySelector('.jp-InputPrompt');
  return {text: [...last.querySelectorAll('.jp-OutputArea-output')].map(o => o.innerText).join('\\n'),
          done: !!prompt && /\\[\\d+\\]/.test(prompt.innerText)};
}"""


def free_port() -> int:
    """A TCP port of 127.0.0.1 that is free now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_lab(port: int, log: Path, root: Path) -> subprocess.Popen:
    """JupyterLab without a token, serving `root`, logging to `log`."""
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", f"--port={port}",
               "--ip=127.0.0.1", "--ServerApp.token=", "--ServerApp.password=", f"--ServerApp.root_dir={root}",
               "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    server = subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT, env=os.environ.copy())
    deadline = time.time() + 300  # a loaded CI machine can take minutes
    while time.time() < deadline and server.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server
        except OSError:
            time.sleep(0.5)
    server.terminate()
    raise SystemExit(f"JupyterLab did not start (exit status {server.poll()}); see {log}")


def kernel_zs(output: str) -> list[list[float]] | None:
    """The explorers' z from the kernel's output (the KERNEL_Z_MARK line), or None without one."""
    line = re.search(rf"^{KERNEL_Z_MARK} (\[.*\])\s*$", output, re.M)
    return json.loads(line.group(1)) if line else None


def ask_kernel(page: Page, shot: Path) -> list[list[float]]:
    """Run KERNEL_Z_CODE in a new last cell; the z of each LatentExplorer in the kernel.
    Raises RuntimeError with the cell's output when it printed no answer (an error, a timeout);
    a screenshot of the page is then saved as `shot`."""
    page.keyboard.press("Escape")
    page.locator(".jp-Notebook .jp-Cell").last.click()
    page.keyboard.press("Escape")
    page.keyboard.press("b")  # a new code cell below the last one
    page.keyboard.press("Enter")
    # Typed before the editor has focus, the code would go to command-mode shortcuts instead.
    page.wait_for_selector(".jp-Notebook.jp-mod-editMode", timeout=10_000)
    page.keyboard.insert_text(KERNEL_Z_CODE)
    page.keyboard.press("Control+Enter")  # run it and stay (Shift+Enter would add a cell below)
    cell: dict = {"text": "", "done": False}
    deadline = time.time() + 60
    while time.time() < deadline and not cell["done"]:
        page.wait_for_timeout(200)
        cell = page.evaluate(KERNEL_CELL_JS, KERNEL_Z_MARK)
    zs = kernel_zs(cell["text"])
    if zs is None:
        page.screenshot(path=str(shot), full_page=True)
        last = cell["text"].strip().splitlines()[-1:] or ["no output" + ("" if cell["done"] else " within 60 s")]
        raise RuntimeError(f"the kernel printed no z: {last[0][:200]}")
    return zs


def run_all_cells(page: Page, tries: int = 3) -> None:
    """Run > Run All Cells, until some cell shows it has been queued or run ("[*]" or "[1]")."""
    started = "() => [...document.querySelectorAll('.jp-InputPrompt')].some(e => /\\[(\\*|\\d+)\\]/.test(e.innerText))"
    for _ in range(tries):
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
        try:
            page.wait_for_function(started, timeout=30_000)
            return
        except Exception:
            page.keyboard.press("Escape")  # a menu left open
    raise RuntimeError(f"'Run All Cells' started no cell in {tries} tries")


def explorer_state(page: Page) -> dict | None:
    """The last explorer's decoded image (its canvas pixels), z read-out and slider values."""
    return page.evaluate("""() => {
        const roots = document.querySelectorAll('.jp-OutputArea-output .vx-explorer');
        const root = roots[roots.length - 1];
        if (!root) return null;
        const canvas = root.querySelector('canvas.vx-digit');
        const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        return {
            image: Array.from(pixels.filter((_, i) => i % 4 === 0)).join(','),
            readout: root.querySelector('.vx-readout').textContent,
            sliders: Array.from(root.querySelectorAll('.vx-slider input')).map(e => e.value),
        };
    }""")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("notebook", help="path of the chapter notebook, relative to the repository")
    parser.add_argument("--out", default="live-check", help="folder for the screenshots")
    parser.add_argument("--timeout", type=float, default=900, help="seconds allowed for running all cells")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    failures: list[str] = []

    def check(ok: bool, what: str) -> None:
        print(("ok    " if ok else "FAIL  ") + what)
        if not ok:
            failures.append(what)

    notebook = (ROOT / args.notebook).resolve()
    if not notebook.is_file():
        parser.error(f"no notebook at {notebook}")
    # JupyterLab saves the notebook it runs, outputs and all: run a copy, never the chapter itself
    # (the chapters are committed without outputs), in the chapter's folder layout.
    work = Path(tempfile.mkdtemp(prefix="live-explorer-"))
    copy = work / notebook.relative_to(ROOT)
    copy.parent.mkdir(parents=True)
    shutil.copy(notebook, copy)
    port = free_port()
    server = start_lab(port, out / "jupyterlab.log", work)
    try:
        with sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
            browser = p.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                                           headless=True, viewport={"width": 1400, "height": 1000})
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            try:
                page.goto(f"http://127.0.0.1:{port}/lab/tree/{args.notebook}", timeout=120_000)
                page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
                # The kernel has started and is idle (the notebook toolbar's status indicator says so).
                page.wait_for_selector('.jp-Notebook-ExecutionIndicator[data-status="idle"]', timeout=120_000)
                started = time.time()
                run_all_cells(page)
                page.wait_for_selector(".jp-OutputArea-output .vx-explorer canvas.vx-digit", timeout=args.timeout * 1000)
                page.wait_for_function(  # every cell finished: no "[*]" prompt left
                    "() => !Array.from(document.querySelectorAll('.jp-InputPrompt')).some(e => e.innerText.includes('*'))",
                    timeout=args.timeout * 1000)
                print(f"all cells ran in {time.time() - started:.0f} s")
                explorer = page.locator(".jp-OutputArea-output .vx-explorer").last
                explorer.scroll_into_view_if_needed()
                before = explorer_state(page)
                check(before is not None and len(set(before["image"].split(","))) > 1, "the explorer shows a decoded image")
                explorer.screenshot(path=str(out / "explorer-before.png"))

                # 1. A slider moved with the keyboard: the image and z must change at once (no kernel round trip).
                handle = explorer.locator(".vx-slider input").first
                # In-page timing of each key press: input event -> just after the next animation frame.
                page.evaluate("""() => { window.__vxTimes = [];
                    const root = Array.from(document.querySelectorAll('.jp-OutputArea-output .vx-explorer')).pop();
                    root.addEventListener('input', e => { const t0 = e.timeStamp;
                        requestAnimationFrame(() => setTimeout(() => window.__vxTimes.push(performance.now() - t0))); }); }""")
                handle.focus()
                for _ in range(5):
                    handle.press("ArrowRight")
                page.wait_for_function("() => window.__vxTimes.length >= 5", timeout=10_000)
                times = sorted(page.evaluate("() => window.__vxTimes"))
                moved = explorer_state(page)
                check(moved["image"] != before["image"],
                      f"moving z1 redraws the image (five key presses; input to repaint in the page: median "
                      f"{times[2]:.0f} ms, slowest {times[-1]:.0f} ms, no kernel round trip)")
                check(moved["readout"] != before["readout"], f"moving z1 updates the printed z: {moved['readout'][:60]}...")
                check(moved["sliders"][0] != before["sliders"][0],
                      f"slider z1 moved from {float(before['sliders'][0]):.2f} to {float(moved['sliders'][0]):.2f}")
                explorer.screenshot(path=str(out / "explorer-after-slider.png"))

                # 2. "sample from the prior".
                explorer.locator("button.vx-sample").click()
                page.wait_for_timeout(300)
                sampled = explorer_state(page)
                check(sampled["readout"] != moved["readout"] and sampled["image"] != moved["image"],
                      "'sample from the prior' draws a new z and redraws the image")

                # 3. Component selector (mixture priors only).
                selector = explorer.locator(".vx-component select, .vx-component input")
                if selector.count():
                    if selector.evaluate("e => e.tagName") == "SELECT":
                        selector.select_option("3")
                    else:
                        selector.fill("3")
                        selector.press("Enter")
                    page.wait_for_timeout(300)
                    recentred = explorer_state(page)
                    check("component 3" in recentred["readout"], f"the component selector re-centres: {recentred['readout'][-40:]}")
                    explorer.screenshot(path=str(out / "explorer-component-3.png"))

                # 4. The kernel sees the z on screen: a new cell prints every explorer's z as JSON.
                shown = [float(v) for v in explorer_state(page)["sliders"]]
                try:
                    zs = ask_kernel(page, out / "kernel-cell.png")
                except RuntimeError as exc:
                    check(False, f"the kernel's explorer.z is the z on screen ({exc})")
                else:
                    same = [z for z in zs if len(z) == len(shown) and max(abs(a - b) for a, b in zip(z, shown)) < 1e-5]
                    check(bool(same), f"the kernel's explorer.z is the z on screen ({len(zs)} explorer(s) in the "
                                      f"kernel; screen {[round(v, 3) for v in shown[:3]]}..., kernel "
                                      f"{[[round(v, 3) for v in z[:3]] for z in zs]})")
                check(not errors, f"no JavaScript errors in JupyterLab ({errors[:2]})")
            except Exception:  # a timeout or a missing control: show what the page looked like
                page.screenshot(path=str(out / "failure.png"), full_page=True)
                raise
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)
    print("live explorer check " + ("passed" if not failures else f"FAILED: {len(failures)} check(s)"))
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
