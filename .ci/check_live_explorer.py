"""Live check of a chapter's latent explorer in JupyterLab with a running kernel.

A developer check, not part of .ci/run (it needs JupyterLab, which the book does not):

    pip install jupyterlab
    VAELIB_PROFILE=smoke python .ci/check_live_explorer.py book/03_mog_prior.ipynb --out live-check

It starts JupyterLab on 127.0.0.1 with the repository as its root, opens the notebook in the
system's headless Chromium (driven by Playwright), runs all cells, and then acts as a reader:

* moves the first slider of the explorer with the keyboard and checks that the decoded image
  and the printed z change, timing the round trip from key press to new image in the page;
* presses "sample from the prior" and checks that z changes again;
* for a mixture prior, types another component number and checks that the sliders re-centre.

Screenshots of the explorer before and after go to --out. Exit status 0 when every check passes.
"""
from __future__ import annotations

import argparse
import os
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_lab(port: int, log: Path) -> subprocess.Popen:
    """JupyterLab without a token, serving the repository, logging to `log`."""
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", f"--port={port}",
               "--ip=127.0.0.1", "--ServerApp.token=", "--ServerApp.password=", f"--ServerApp.root_dir={ROOT}",
               "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    server = subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT, env=os.environ.copy())
    for _ in range(120):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server
        except OSError:
            time.sleep(0.5)
    server.terminate()
    raise SystemExit(f"JupyterLab did not start; see {log}")


def explorer_state(page: Page) -> dict:
    """The explorer's decoded image (its blob URL changes with every new PNG), z readout and slider values."""
    return page.evaluate("""() => {
        const outputs = Array.from(document.querySelectorAll('.jp-OutputArea-output'))
            .filter(o => o.querySelector('img.widget-image') && o.querySelector('.widget-slider'));
        const box = outputs[outputs.length - 1];
        if (!box) return null;
        const readout = Array.from(box.querySelectorAll('.widget-html-content')).map(e => e.innerText)
            .find(t => t.includes('z = ')) || '';
        return {
            image: box.querySelector('img.widget-image').src,
            readout: readout,
            sliders: Array.from(box.querySelectorAll('.widget-slider .widget-readout')).map(e => e.innerText),
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

    port = free_port()
    server = start_lab(port, out / "jupyterlab.log")
    try:
        with sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
            browser = p.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                                           headless=True, viewport={"width": 1400, "height": 1000})
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"http://127.0.0.1:{port}/lab/tree/{args.notebook}", timeout=120_000)
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
            page.wait_for_function("() => document.querySelector('.jp-Notebook-ExecutionIndicator, "
                                   ".jp-KernelStatus') !== null", timeout=120_000)
            time.sleep(3)  # let the kernel connect
            page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
            page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
            started = time.time()
            page.wait_for_function(
                """() => { const o = Array.from(document.querySelectorAll('.jp-OutputArea-output'));
                           return o.some(e => e.querySelector('img.widget-image') && e.querySelector('.widget-slider')); }""",
                timeout=args.timeout * 1000)
            page.wait_for_function(  # every cell finished: no "[*]" prompt left
                "() => !Array.from(document.querySelectorAll('.jp-InputPrompt')).some(e => e.innerText.includes('*'))",
                timeout=args.timeout * 1000)
            print(f"all cells ran in {time.time() - started:.0f} s")
            explorer = page.locator(".jp-OutputArea-output", has=page.locator("img.widget-image")).last
            explorer.scroll_into_view_if_needed()
            before = explorer_state(page)
            check(before is not None and before["image"].startswith("blob:"), "the explorer shows a decoded image")
            explorer.screenshot(path=str(out / "explorer-before.png"))

            # 1. A slider moved with the keyboard: the image and z must change at once.
            handle = explorer.locator(".widget-slider .noUi-handle").first
            handle.focus()
            t0 = time.perf_counter()
            for _ in range(5):
                handle.press("ArrowRight")
            page.wait_for_function("(old) => { const i = Array.from(document.querySelectorAll('img.widget-image')).pop();"
                                   " return i && i.src !== old; }", arg=before["image"], timeout=10_000)
            first_change = time.perf_counter() - t0
            time.sleep(0.5)
            moved = explorer_state(page)
            check(moved["image"] != before["image"], f"moving z1 redraws the image (first new image after {first_change * 1000:.0f} ms)")
            check(moved["readout"] != before["readout"], f"moving z1 updates the printed z: {moved['readout'][:60]}...")
            check(moved["sliders"][0] != before["sliders"][0], f"slider z1 moved from {before['sliders'][0]} to {moved['sliders'][0]}")
            explorer.screenshot(path=str(out / "explorer-after-slider.png"))

            # 2. "sample from the prior".
            explorer.get_by_role("button", name="sample from the prior").click()
            page.wait_for_timeout(1500)
            sampled = explorer_state(page)
            check(sampled["readout"] != moved["readout"] and sampled["image"] != moved["image"],
                  "'sample from the prior' draws a new z and redraws the image")

            # 3. Component selector (mixture priors only).
            selector = explorer.locator(".widget-inline-hbox", has_text="component").locator("input")
            if selector.count():
                selector.first.fill("3")
                selector.first.press("Enter")
                page.wait_for_timeout(1500)
                recentred = explorer_state(page)
                check("component 3" in recentred["readout"], f"the component selector re-centres: {recentred['readout'][-40:]}")
                explorer.screenshot(path=str(out / "explorer-component-3.png"))
            check(not errors, f"no JavaScript errors in JupyterLab ({errors[:2]})")
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    print("live explorer check " + ("passed" if not failures else f"FAILED: {len(failures)} check(s)"))
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
