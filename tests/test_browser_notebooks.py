"""Every notebook (01-09) opened in JupyterLab in headless Chromium, run with Run All as a person does, its
outputs read on the page (no error, no traceback, every widget drawn, every figure there), and the main controls
of the notebooks that have some used once: typing, Enter, a dropdown, a toggle, a slider, a bad entry then a
good one, each checked against what the page then shows.

One JupyterLab server and one browser for all nine (module fixtures); each notebook runs on small inputs given
as its own parameters (papermill's injected cell, as a user's edit of the parameters cell would be). A picture
of each whole notebook goes to test-artifacts/notebooks/ for people to look at. Skips where Chromium or
playwright are missing, fails in CI (CI=true): see tests/test_browser.py.
"""
import os
import shutil
import sys

import nbformat
import pytest

from demo_inputs import require_demo, write_shapes
from test_browser import require_browser
from test_notebooks import CLASSES, NOTEBOOKS, ROOT, SIX, shapes_subset  # noqa: F401

sys.path.insert(0, str(ROOT / "scripts"))
from browser_session import (FIGURES_JS, PROBLEMS_JS, chromium_page, jupyterlab, render_every_cell,  # noqa: E402
                             run_all_and_wait, screenshot_whole_notebook, status_text, timed_change,
                             wait_for_status)

# runs every notebook in Chromium: left out of `make test-fast`
pytestmark = [pytest.mark.browser, pytest.mark.notebook]

ARTIFACTS = ROOT / "test-artifacts" / "notebooks"
RUN_TIMEOUT_MS = 240_000


def parameters(name, work, shapes):
    """Each notebook's small inputs, as tests/test_notebooks.py runs it, its outputs in `work`."""
    six = work / "six"
    return {
        "01_image_text_similarity": {},
        "02_zero_shot_classification": {"image_folder": str(shapes), "recursive": True, "classes": CLASSES,
                                        "max_images": 4, "compared_template_sets": ["basic"]},
        "03_classification_report": {"image_folder": str(shapes), "recursive": True, "classes": CLASSES, "dpi": 80},
        "04_evaluation": {"per_class": 1, "templates": ["basic", "a {}"]},
        "05_search": {"image_folder": str(six), "recursive": True, "query": "a blue star", "top": 3,
                      "captions": [f"a photo of a {c}" for c in SIX]},
        "06_video": {"every_seconds": 2.0, "classes": SIX},
        "07_few_shot": {"per_class": 4, "shots": [1], "trials": 1},
        "08_scale_out": {"image_folder": str(shapes), "recursive": True, "classes": CLASSES, "workers": 1, "top": 3},
        "09_collection": {},
    }[name]


# the figures each notebook draws at least (pictures and plotly charts on the page), so a figure that went
# missing fails; counted from the notebooks' drawing cells on these inputs
FIGURES = {"01_image_text_similarity": 1, "02_zero_shot_classification": 2, "03_classification_report": 1,
           "04_evaluation": 3, "05_search": 3, "06_video": 2, "07_few_shot": 1, "08_scale_out": 1,
           "09_collection": 5}
NAMES = sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb"))


@pytest.fixture(scope="module")
def lab(tmp_path_factory, shapes_subset):  # noqa: F811
    """One JupyterLab for every notebook, each notebook parameterized in a copy of notebooks/."""
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    require_browser()
    require_demo(images=True)
    work = tmp_path_factory.mktemp("lab")
    root = work / "root"
    shutil.copytree(NOTEBOOKS, root / "notebooks")
    write_shapes(work / "six", per_class=1, classes=SIX)
    for name in NAMES:
        notebook = load_notebook_node(str(NOTEBOOKS / f"{name}.ipynb"))
        # the notebooks' sample images are "../test_images" beside notebooks/: here, the checkout's
        notebook = parameterize_notebook(notebook, {"output_dir": str(work / "reports" / name),
                                                    "sample_images": str(ROOT / "test_images"),
                                                    **parameters(name, work, shapes_subset)})
        nbformat.write(notebook, root / "notebooks" / f"{name}.ipynb")
    render_every_cell(work)
    env = dict(os.environ, CLIPNB_MODEL="demo", MPLBACKEND="module://matplotlib_inline.backend_inline",
               IPYTHONDIR=str(work / "ipython"),  # the kernels' history and profile stay out of the home folder
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    if ARTIFACTS.exists():
        shutil.rmtree(ARTIFACTS)
    ARTIFACTS.mkdir(parents=True)
    try:
        with jupyterlab(root, work, env) as (url, token), chromium_page(work / "profile") as page:
            yield url, token, page, work
    finally:
        if (work / "jupyterlab.log").exists():
            shutil.copy(work / "jupyterlab.log", ARTIFACTS / "jupyterlab.log")


def output_text(page, cell: int) -> str:
    return page.evaluate("(i) => window.jupyterapp.shell.currentWidget.content.widgets[i]"
                         ".node.querySelector('.jp-Cell-outputWrapper').innerText", cell)


def widget_cell(page, contains: str) -> int:
    """The index of the code cell whose source holds `contains`."""
    return page.evaluate("(s) => window.jupyterapp.shell.currentWidget.content.widgets"
                         ".findIndex(c => c.model.type === 'code' && c.model.sharedModel.getSource().includes(s))",
                         contains)


def mark_pictures(page, cell: int) -> None:
    """Mark the cell's pictures as old, so that `new_pictures` sees the figure drawn anew even when it is
    the same picture as before (another setting that gives the same answer)."""
    page.evaluate("(i) => window.jupyterapp.shell.currentWidget.content.widgets[i].node"
                  ".querySelectorAll('.jp-OutputArea-output img').forEach(img => img.dataset.clipnbOld = '1')", cell)


def new_pictures(page, cell: int) -> None:
    """Wait until the widget's output shows a figure drawn after `mark_pictures` (and only such)."""
    page.wait_for_function("(i) => { const imgs = [...window.jupyterapp.shell.currentWidget.content.widgets[i]"
                           ".node.querySelectorAll('.jp-OutputArea-output img')]; return imgs.length > 0"
                           " && imgs.every(img => !img.dataset.clipnbOld && img.complete && img.naturalWidth > 0); }",
                           arg=cell, timeout=60_000)


def redrawn(page, cell: int, action) -> str:
    """Do `action` and wait until the cell's figure is drawn anew; returns the cell's output text."""
    mark_pictures(page, cell)
    action()
    new_pictures(page, cell)
    return output_text(page, cell)


def use_classifier_panel(page, work):
    """02: a class added with Enter, a bad template (kept results), then a good one."""
    panel = page.locator(".clipnb-panel")
    panel.scroll_into_view_if_needed()
    status = status_text(page)
    assert status.startswith("✔") and "6 classes × 3 templates" in status, status
    new_class = panel.locator("input[placeholder^='e.g. red circle']")
    new_class.fill("purple star")
    status, _ = timed_change(page, lambda: new_class.press("Enter"))
    assert status.startswith("✔") and "7 classes × 3 templates" in status, status
    assert "purple star" in page.locator(".clipnb-charts .clipnb-class-chart .class-name").all_inner_texts()
    templates = panel.locator("textarea")
    chart = page.locator(".clipnb-charts").inner_html()
    templates.fill("")
    status, _ = timed_change(page, lambda: templates.fill("a photo"), containing="has no '{}'")
    assert status.startswith("⚠") and "still showing 7 classes × 3 templates" in status, status
    assert page.locator(".clipnb-charts").inner_html() == chart  # the last good results stay
    templates.fill("")
    templates.press_sequentially("a toy {}")
    status = wait_for_status(page, status, containing="1 template,")
    assert status.startswith("✔") and "7 classes × 1 template" in status, status
    templates.press("Tab")


def use_evaluation_controls(page, work):
    """04: another template set from the dropdown, then score ensembling from the toggle: the headline and the
    confusion matrix follow each."""
    cell = widget_cell(page, "set_choice = widgets.Dropdown")
    box = page.locator(".jp-Cell").nth(cell)
    box.scroll_into_view_if_needed()
    first = output_text(page, cell)
    assert "48 classes: acc@1" in first, first
    dropdown = box.locator(".widget-dropdown select")
    options = dropdown.locator("option").all_inner_texts()
    assert len(options) == 2, options
    # the demo model reads only colour and shape words: "a {}" may score as "basic" does, so what must
    # follow each control is a headline and a confusion matrix drawn anew for its setting
    assert "48 classes: acc@1" in redrawn(page, cell, lambda: dropdown.select_option(index=1))
    assert "48 classes: acc@1" in redrawn(page, cell, lambda: box.get_by_role("button", name="score").click())
    assert dropdown.input_value() == dropdown.locator("option").nth(1).get_attribute("value")


def use_search_controls(page, work):
    """05: a query the demo model cannot read (a warning above its hits), then a good one; then the slider."""
    cell = widget_cell(page, "query_box = widgets.Text")
    box = page.locator(".jp-Cell").nth(cell)
    box.scroll_into_view_if_needed()
    query = box.locator(".widget-text input")
    query.fill("a photo of a cat")
    shown = redrawn(page, cell, lambda: query.press("Enter"))
    assert "⚠" in shown and "cat" in shown, shown  # cat is not a word the demo knows: said above its hits
    query.fill("a green square")
    shown = redrawn(page, cell, lambda: query.press("Tab"))  # leaving the box sends it (continuous_update=False)
    assert "⚠" not in shown, shown
    handle = box.locator(".widget-slider .noUi-handle")
    handle.click()
    redrawn(page, cell, lambda: handle.press("ArrowLeft"))
    assert box.locator(".widget-readout").inner_text().strip() == "2"


def use_video_slider(page, work):
    """06: the frame slider moved with the keyboard: the readout and the frame's figure follow."""
    cell = widget_cell(page, "frame_slider = widgets.IntSlider")
    box = page.locator(".jp-Cell").nth(cell)
    box.scroll_into_view_if_needed()
    handle = box.locator(".widget-slider .noUi-handle")
    handle.click()
    redrawn(page, cell, lambda: handle.press("ArrowRight"))
    assert box.locator(".widget-readout").inner_text().strip() == "1"


def use_map_panel(page, work):
    """09: the map coloured another way (the legend follows), then a box dragged on it (the list follows)."""
    panel = page.locator(".clipnb-map-panel")
    panel.scroll_into_view_if_needed()
    legend = page.evaluate("() => document.querySelector('.clipnb-map-panel').innerText")
    colour = panel.locator(".widget-dropdown select")
    values = colour.locator("option").evaluate_all("os => os.map(o => o.value)")
    assert len(values) >= 2, values
    colour.select_option(index=1)
    page.wait_for_function("(before) => document.querySelector('.clipnb-map-panel').innerText !== before",
                           arg=legend, timeout=60_000)
    area = panel.locator(".clipnb-map-plot .nsewdrag").first.bounding_box()
    page.mouse.move(area["x"] + area["width"] * 0.05, area["y"] + area["height"] * 0.05)
    page.mouse.down()
    page.mouse.move(area["x"] + area["width"] * 0.95, area["y"] + area["height"] * 0.95, steps=5)
    page.mouse.up()
    page.wait_for_function("() => /\\d+ images? selected/.test(document.querySelector('.clipnb-map-selection')"
                           ".innerText)", timeout=60_000)
    assert "66 images selected" in page.locator(".clipnb-map-selection").inner_text()


CONTROLS = {"02_zero_shot_classification": use_classifier_panel, "04_evaluation": use_evaluation_controls,
            "05_search": use_search_controls, "06_video": use_video_slider, "09_collection": use_map_panel}


@pytest.mark.parametrize("name", NAMES)
def test_notebook_in_the_browser(lab, name):
    url, token, page, work = lab
    try:
        run_all_and_wait(page, url, token, f"notebooks/{name}.ipynb", RUN_TIMEOUT_MS)
        problems = page.evaluate(PROBLEMS_JS)
        assert not problems, "\n".join(problems)
        figures = page.evaluate(FIGURES_JS)
        assert sum(figures) >= FIGURES[name], f"{sum(figures)} figures on the page, per cell {figures}"
        screenshot_whole_notebook(page, ARTIFACTS / f"{name}.png")
        if name in CONTROLS:
            CONTROLS[name](page, work)
            problems = page.evaluate(PROBLEMS_JS)
            assert not problems, "\n".join(problems)
            screenshot_whole_notebook(page, ARTIFACTS / f"{name}_after_controls.png")
    except Exception:
        page.screenshot(path=str(ARTIFACTS / f"{name}_failure.png"))
        raise
    finally:  # the next notebook gets the CPU: this one's kernel is shut down
        page.evaluate("() => window.jupyterapp.shell.currentWidget && window.jupyterapp.shell.currentWidget"
                      ".sessionContext && window.jupyterapp.shell.currentWidget.sessionContext.shutdown()")


def broken_notebook() -> nbformat.NotebookNode:
    """What the walk-through must catch: a traceback on stderr, a widget whose view cannot be drawn, and a
    cell that raises (Run All stops there)."""
    cells = ["import sys\nprint('Traceback (most recent call last): planted', file=sys.stderr)",
             "import ipywidgets as w\nfrom traitlets import Unicode\n"
             "class Unknown(w.DOMWidget):\n"
             "    _view_module = Unicode('no-such-module').tag(sync=True)\n"
             "    _view_name = Unicode('NoSuchView').tag(sync=True)\n"
             "    _model_module = Unicode('no-such-module').tag(sync=True)\n"
             "    _model_name = Unicode('NoSuchModel').tag(sync=True)\n"
             "Unknown()",
             "raise ValueError('planted')", "print('never run')"]
    kernel = {"kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}}
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells], metadata=kernel)


def test_the_walk_through_sees_what_goes_wrong(lab):
    """The checks above can fail: a notebook with each fault planted is caught, fault by fault."""
    url, token, page, work = lab
    nbformat.write(broken_notebook(), work / "root" / "broken.ipynb")
    try:
        run_all_and_wait(page, url, token, "broken.ipynb", RUN_TIMEOUT_MS)
        page.wait_for_function("() => !document.body.innerText.includes('Loading widget...')", timeout=30_000)
        problems = "\n".join(page.evaluate(PROBLEMS_JS))
        assert "cell 0 stderr: Traceback (most recent call last): planted" in problems, problems
        assert "cell 1 shows 'Click to show javascript error'" in problems, problems  # the widget not drawn
        assert "cell 2: ValueError: planted" in problems, problems
        assert sum(page.evaluate(FIGURES_JS)) == 0
    finally:
        page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.shutdown()")
