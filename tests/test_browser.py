"""A real browser: JupyterLab on 127.0.0.1, notebook 02 opened in headless Chromium (Debian's chromium, driven
by Playwright through `executable_path`: no browser is downloaded), all cells run, a class removed in the
panel, and the chart and the table on the page must change. Screenshots go to test-artifacts/browser/.

Needs /usr/bin/chromium (`apt-get install chromium chromium-driver`, which `make test` does as root) and the
`playwright` package. In CI (CI=true) a missing piece fails the test; elsewhere it skips, saying what to install.
"""
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from test_notebooks import CLASSES, NAMES, NOTEBOOKS, ROOT, require_demo, shapes_subset  # noqa: F401

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts" / "browser"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
NOTEBOOK = f"{NAMES[1]}.ipynb"
RUN_TIMEOUT_MS = 240_000


def require_browser():
    problems = []
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        problems.append(f"{CHROMIUM} is missing (apt-get install chromium chromium-driver)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        problems.append("the Python package playwright is missing (pip install playwright; no `playwright install`)")
    if problems:
        message = "browser test needs: " + "; ".join(problems)
        if os.environ.get("CI") == "true":
            pytest.fail(message + " (CI must run this test: `make test` installs both as root)")
        pytest.skip(message)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def write_notebook_copy(root: Path, images: Path) -> None:
    """The notebooks folder copied into the server's root, notebook 02 with parameters for a quick run
    (papermill's injected-parameters cell, as a user's own edit of the parameters would be)."""
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    shutil.copytree(NOTEBOOKS, root / "notebooks")
    notebook = load_notebook_node(str(NOTEBOOKS / NOTEBOOK))
    notebook = parameterize_notebook(notebook, {
        "image_folder": str(images), "recursive": True, "classes": CLASSES, "max_images": 4,
        "compared_template_sets": ["seed"], "output_dir": str(root / "reports")})
    nbformat.write(notebook, root / "notebooks" / NOTEBOOK)


def quiet_settings(settings: Path) -> None:
    """No news prompt over the page."""
    folder = settings / "@jupyterlab" / "apputils-extension"
    folder.mkdir(parents=True)
    (folder / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))


@pytest.fixture()
def jupyterlab(tmp_path, shapes_subset, monkeypatch):  # noqa: F811
    require_browser()
    root = tmp_path / "root"
    root.mkdir()
    write_notebook_copy(root, shapes_subset)
    quiet_settings(tmp_path / "settings")
    port, token = free_port(), secrets.token_hex(16)
    env = dict(os.environ, CLIPNB_MODEL="demo", JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
               JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    log = open(tmp_path / "jupyterlab.log", "wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True",
         f"--LabApp.user_settings_dir={tmp_path / 'settings'}", f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}",
         # nothing fetched from outside: no extension manager, update check or news
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
                pytest.fail(f"JupyterLab did not start on {url}:\n"
                            + (tmp_path / "jupyterlab.log").read_text(errors="replace")[-3000:])
            time.sleep(0.5)
        yield url, token, root
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(tmp_path / "jupyterlab.log", ARTIFACTS / "jupyterlab.log")


def test_the_panel_redraws_chart_and_table_in_the_browser(jupyterlab, tmp_path):
    from playwright.sync_api import sync_playwright

    url, token, root = jupyterlab
    if ARTIFACTS.exists():
        for old in ARTIFACTS.glob("*.png"):
            old.unlink()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=str(CHROMIUM), headless=True,
            args=CHROMIUM_ARGS, viewport={"width": 1400, "height": 1000})
        page = browser.new_page()
        try:
            page.goto(f"{url}/lab/tree/notebooks/{NOTEBOOK}?token={token}", timeout=90_000)
            page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
                                   " && window.jupyterapp.shell.currentWidget.sessionContext"
                                   " && window.jupyterapp.shell.currentWidget.sessionContext.session",
                                   timeout=90_000)
            page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")

            charts = page.locator(".clipnb-charts img")
            charts.nth(1).wait_for(state="attached", timeout=RUN_TIMEOUT_MS)
            panel = page.locator(".clipnb-panel")
            panel.scroll_into_view_if_needed()
            table = page.locator(".clipnb-table table")
            table.wait_for(timeout=30_000)
            chart_before, table_before = charts.nth(1).get_attribute("src"), table.inner_html()
            page.screenshot(path=str(ARTIFACTS / "01_after_run_all.png"), full_page=True)
            panel.screenshot(path=str(ARTIFACTS / "02_panel_before.png"))

            panel.locator("select").first.select_option("blue square")
            panel.get_by_role("button", name="Remove selected").click()
            page.wait_for_function(
                "before => { const img = document.querySelectorAll('.clipnb-charts img')[1];"
                " return img && img.getAttribute('src') !== before; }", arg=chart_before, timeout=60_000)
            page.wait_for_function(
                "before => { const t = document.querySelector('.clipnb-table table');"
                " return t && t.innerHTML !== before; }", arg=table_before, timeout=30_000)
            chart_after, table_after = charts.nth(1).get_attribute("src"), table.inner_html()
            panel.screenshot(path=str(ARTIFACTS / "03_panel_after_removing_a_class.png"))

            assert chart_after != chart_before and chart_after.startswith("data:image/png")
            assert table_after != table_before
            predictions = table.locator("tbody tr td:nth-child(2)").all_inner_texts()
            assert len(predictions) == 8 and "blue square" not in predictions  # the removed class wins nothing
            status = panel.locator(".widget-html").first.inner_text()
            assert "5 classes" in status and "none encoded again" in status
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "failure.png"), full_page=True)
            raise
        finally:
            browser.close()
