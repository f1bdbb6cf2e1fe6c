"""JupyterLab on 127.0.0.1 and Debian's Chromium driven by Playwright, for the browser test and the panel's
latency benchmark (tests/test_browser.py, scripts/panel_latency.py).

Nothing is downloaded: Chromium is /usr/bin/chromium (apt-get install chromium chromium-driver) and Playwright
only drives it (`executable_path`; never `playwright install`). JupyterLab fetches nothing either (no news,
no update check, no extension manager).
"""
from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def browser_problems() -> list[str]:
    """What is missing to drive a browser here (empty when nothing is)."""
    problems = []
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        problems.append(f"{CHROMIUM} is missing (apt-get install chromium chromium-driver)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        problems.append("the Python package playwright is missing (pip install playwright; no `playwright install`)")
    return problems


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _quiet_settings(settings: Path) -> None:
    """No news prompt over the page."""
    folder = settings / "@jupyterlab" / "apputils-extension"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))


@contextlib.contextmanager
def jupyterlab(root: Path, work: Path, env: dict | None = None, python: str = sys.executable):
    """Serve `root` with JupyterLab on a free loopback port; yields (url, token). The server's log is
    work/jupyterlab.log (kernels' stderr lands there too)."""
    _quiet_settings(work / "settings")
    port, token = free_port(), secrets.token_hex(16)
    env = dict(os.environ if env is None else env, JUPYTER_CONFIG_DIR=str(work / "config"),
               JUPYTER_RUNTIME_DIR=str(work / "runtime"))
    log_path = work / "jupyterlab.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            [python, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
             f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
             f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True",
             f"--LabApp.user_settings_dir={work / 'settings'}", f"--LabApp.workspaces_dir={work / 'workspaces'}",
             "--LabApp.extension_manager=readonly", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
             "--LabApp.news_url=None"] + (["--allow-root"] if os.geteuid() == 0 else []),
            env=env, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 90
            while True:
                try:
                    with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2) as answer:
                        if answer.status == 200:
                            break
                except OSError:
                    pass
                if server.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    raise RuntimeError(f"JupyterLab did not start on {url}:\n"
                                       + log_path.read_text(errors="replace")[-3000:])
                time.sleep(0.5)
            yield url, token
        finally:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


@contextlib.contextmanager
def chromium_page(profile: Path, width: int = 1400, height: int = 1000):
    """A page in headless Debian Chromium; yields the Playwright page."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
            viewport={"width": width, "height": height})
        try:
            yield browser.new_page()
        finally:
            browser.close()


def open_and_run_all(page, url: str, token: str, notebook: str, workspace: str | None = None) -> None:
    """Open notebooks/`notebook` in JupyterLab (in `workspace`, when given: one of its own, where no tab of an
    earlier notebook is restored beside it), wait for its kernel, and run every cell."""
    place = f"workspaces/{workspace}/tree" if workspace else "tree"
    page.goto(f"{url}/lab/{place}/{notebook}?token={token}", timeout=90_000)
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
                           " && window.jupyterapp.shell.currentWidget.sessionContext"
                           " && window.jupyterapp.shell.currentWidget.sessionContext.session",
                           timeout=90_000)
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")


STATUS_JS = "() => { const s = document.querySelector('.clipnb-status'); return s ? s.innerText : ''; }"


def status_text(page) -> str:
    return page.evaluate(STATUS_JS)


WORKING = "⏳"  # the status line's mark while the panel works (encoding new prompts): not yet an answer


def wait_for_status(page, before: str, timeout_ms: int = 60_000, containing: str = "") -> str:
    """Wait until the panel's status line differs from `before`, is no longer "⏳ working…" (and holds
    `containing`); returns it."""
    page.wait_for_function(
        "([before, containing]) => { const s = document.querySelector('.clipnb-status');"
        " return s && s.innerText !== before && !s.innerText.startsWith('⏳') && s.innerText.includes(containing); }",
        arg=[before, containing], timeout=timeout_ms)
    return status_text(page)


def timed_change(page, action, timeout_ms: int = 60_000, containing: str = "") -> tuple[str, float]:
    """Do `action` (a function of no arguments that drives the page) and wait until the status line
    changes to an answer (not "⏳ working…"); returns (the new status, seconds from the action's start to
    that change on the page).

    The time is measured in the page itself (performance.now() when the status line's text changes, seen
    by a MutationObserver), so Playwright's own round trips are not counted as the panel's time."""
    page.evaluate("""() => {
        const s = document.querySelector('.clipnb-status');
        window.__clipnb = {before: s.innerText, changed: null, started: performance.now()};
        const observer = new MutationObserver(() => {
            if (s.innerText !== window.__clipnb.before && !s.innerText.startsWith('⏳')
                && window.__clipnb.changed === null) {
                window.__clipnb.changed = performance.now(); observer.disconnect(); }
        });
        observer.observe(s, {subtree: true, childList: true, characterData: true});
    }""")
    before = status_text(page)
    action()
    status = wait_for_status(page, before, timeout_ms, containing)
    page.wait_for_function("() => window.__clipnb.changed !== null", timeout=timeout_ms)
    seconds = page.evaluate("() => (window.__clipnb.changed - window.__clipnb.started) / 1000")
    return status, seconds


# -- every notebook walked through (tests/test_browser_notebooks.py) -----------------------------------------

def render_every_cell(work: Path) -> None:
    """JupyterLab draws only the cells in view by default; a walk-through that reads every output and takes
    one screenshot of the whole notebook needs them all drawn (call before `jupyterlab(root, work)`)."""
    folder = work / "settings" / "@jupyterlab" / "notebook-extension"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))


# Run All is over when the kernel is idle and every code cell has run, or one failed (JupyterLab stops there)
RUN_OVER_JS = """() => {
    const nb = window.jupyterapp && window.jupyterapp.shell.currentWidget;
    const kernel = nb && nb.sessionContext && nb.sessionContext.session && nb.sessionContext.session.kernel;
    if (!kernel || kernel.status !== 'idle' || !nb.content) return false;
    const cells = nb.content.widgets.filter(c => c.model.type === 'code');
    const failed = cells.some(c => c.model.outputs.toJSON().some(o => o.output_type === 'error'));
    return failed || cells.every(c => c.model.executionCount !== null);
}"""

# what a reader would see go wrong: error outputs, tracebacks in stderr, widgets that did not render
PROBLEMS_JS = r"""() => {
    const nb = window.jupyterapp.shell.currentWidget, problems = [];
    nb.content.widgets.forEach((cell, i) => {
        if (cell.model.type !== 'code') return;
        for (const o of cell.model.outputs.toJSON()) {
            if (o.output_type === 'error') problems.push(`cell ${i}: ${o.ename}: ${o.evalue}\n`
                + o.traceback.slice(-3).join('\n').replace(/\x1b\[[0-9;]*m/g, ''));
            const text = Array.isArray(o.text) ? o.text.join('') : (o.text || '');
            if (o.output_type === 'stream' && o.name === 'stderr' && /Error|Traceback/.test(text))
                problems.push(`cell ${i} stderr: ${text.slice(0, 500)}`);
        }
        const shown = cell.node.innerText;
        // JupyterLab's words for an output it could not draw (a widget whose model or view failed to load)
        for (const sign of ['Error displaying widget', 'Click to show javascript error', 'Loading widget...',
                            'Traceback (most recent call last)'])
            if (shown.includes(sign)) problems.push(`cell ${i} shows '${sign}'`);
    });
    return problems;
}"""

# the figures each code cell shows: pictures drawn (loaded, not broken) and plotly charts
FIGURES_JS = """() => window.jupyterapp.shell.currentWidget.content.widgets.map(cell => cell.model.type !== 'code' ? 0
    : [...cell.node.querySelectorAll('.jp-OutputArea-output img')].filter(i => i.complete && i.naturalWidth > 0).length
      + cell.node.querySelectorAll('.jp-OutputArea-output .js-plotly-plot').length)"""


def run_all_and_wait(page, url: str, token: str, notebook: str, timeout_ms: int) -> None:
    """Open `notebook` in a workspace of its own (no tab of an earlier notebook restored beside it, starting
    its kernel again), run every cell and wait until the run is over (every cell run, or one failed)."""
    open_and_run_all(page, url, token, notebook, workspace=Path(notebook).stem)
    page.wait_for_function(RUN_OVER_JS, timeout=timeout_ms, polling=500)


def screenshot_whole_notebook(page, path: Path, width: int = 1400, most: int = 30_000) -> None:
    """One picture of the whole notebook: the page grows to the notebook's height for the shot."""
    outer = "document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-WindowedPanel-outer')"
    height = page.evaluate(f"() => {outer}.scrollHeight")
    before = page.viewport_size
    page.set_viewport_size({"width": width, "height": min(most, height + 200)})
    try:
        page.evaluate(f"() => {{ {outer}.scrollTop = 0; }}")  # from the top, wherever the last cell run left it
        page.wait_for_timeout(300)  # the page redrawn at its new size
        page.screenshot(path=str(path))
    finally:
        page.set_viewport_size(before)
