"""The panels never say more than they know (issue 24, items 2, 3, 4 and 10): a busy state while new prompts
are encoded, stale results marked, edits made meanwhile applied in order with ✔ only over what the controls
ask for; the "New class" text that the page submitted, whatever value update is still on its way; the map's
selection taken from the boxes and lassos themselves. tests/test_browser.py does the same in a real browser."""
import json
import threading
import time

import numpy as np
import pandas as pd
import pytest

from clipnb.ui.map_panel import MapPanel, selected_positions
from clipnb.ui.panel import ClassifierPanel


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    from conftest import colour_pngs

    return colour_pngs(tmp_path_factory.mktemp("state-images"))


@pytest.fixture()
def panel(tiny_model, image_folder, tmp_path):
    tiny_model._text_memo.clear()  # every test starts with prompts the model has not encoded
    return ClassifierPanel.from_folder(tiny_model, image_folder, ["red", "blue"], "basic", output_dir=tmp_path / "out",
                                       typing_delay=0)


def watch_status(panel) -> list[str]:
    """Every text the status line shows, in order."""
    seen = []
    panel.status.observe(lambda change: seen.append(change["new"]), names="value")
    return seen


def page_submit(entry, text):
    """What the page sends on Enter (or "Add class") in the "New class" box: the text the box showed."""
    entry._handle_msg({"content": {"data": {"method": "custom", "content": {"event": "submit", "value": text}}},
                       "buffers": []})


def test_new_prompts_show_working_and_mark_the_results_stale_until_scored(panel, tiny_model, monkeypatch):
    seen, during = watch_status(panel), []
    encode = tiny_model.encode_token_tensors

    def slow(tokens):  # what the page shows while the text tower runs
        during.append((panel.message, set(panel.charts._dom_classes), panel.stale_label.value))
        return encode(tokens)

    monkeypatch.setattr(tiny_model, "encode_token_tensors", slow)
    panel.new_class.value = "green, white"
    panel.add_class_button.click()
    message, classes, label = during[0]
    assert message == "working: encoding 6 prompts for 2 classes…"
    assert "clipnb-stale" in classes and "stale" in label
    assert seen[0].startswith("<span") and "⏳ working: encoding 6 prompts for 2 classes…" in seen[0]
    assert panel.message.startswith("4 classes × 3 templates") and "✔" in panel.status.value
    assert "clipnb-stale" not in panel.charts._dom_classes and panel.stale_label.value == ""
    during.clear()
    panel.ensemble.value = "score"  # nothing new to encode: no busy state, straight to ✔
    assert during == [] and not any("working" in s for s in seen[2:])


def test_an_edit_made_while_busy_is_applied_next_and_no_stale_tick_is_shown(panel, tiny_model, monkeypatch):
    """A control changed on another thread while prompts encode (as ipykernel may call back): the scoring
    in progress must not end with ✔ over settings the controls no longer hold."""
    encode, shown = tiny_model.encode_token_tensors, []
    started = threading.Event()

    def slow(tokens):
        if not started.is_set():
            started.set()
            deadline = time.monotonic() + 10
            while panel.ensemble.value != "score" and time.monotonic() < deadline:
                time.sleep(0.01)  # the other thread's edit lands while this encode runs
        return encode(tokens)

    def record(change):
        if "✔" in change["new"]:
            shown.append((change["new"], panel.ensemble.value))

    panel.status.observe(record, names="value")
    monkeypatch.setattr(tiny_model, "encode_token_tensors", slow)
    edit = threading.Thread(target=lambda: (started.wait(10), setattr(panel.ensemble, "value", "score")))
    edit.start()
    panel.templates.value = "a sketch of a {}"
    edit.join(30)
    assert shown and all("score ensembling" in status and control == "score" for status, control in shown), shown
    assert panel.results.attrs["ensemble"] == "score" and panel.results.attrs["templates"] == ["a sketch of a {}"]
    assert "clipnb-stale" not in panel.charts._dom_classes


def test_a_failure_while_busy_is_shown_and_the_results_stay_marked_stale(panel, tiny_model, monkeypatch):
    def broken(tokens):
        raise RuntimeError("out of memory in the text tower")

    monkeypatch.setattr(tiny_model, "encode_token_tensors", broken)
    results = panel.results
    panel.template_set.value = "imagenet7"
    assert "switching the template set failed: RuntimeError: out of memory in the text tower" in panel.error
    assert "⚠" in panel.status.value and "still showing 2 classes × 3 templates" in panel.error
    assert panel.results is results and "clipnb-stale" in panel.charts._dom_classes
    monkeypatch.undo()
    panel.template_set.value = "basic"
    assert panel.error == "" and "clipnb-stale" not in panel.charts._dom_classes


@pytest.mark.parametrize("typed", ["purple star", "绿色正方形", "green, 红色圆形"])
def test_the_page_submits_the_text_it_showed_not_a_value_still_on_its_way(panel, typed):
    """ipywidgets sends Enter at once but holds back a value update while the kernel has not answered the
    previous one: the kernel then had "purple sta" when Enter arrived."""
    panel.new_class.value = typed[:-1]  # the last value update that reached the kernel
    page_submit(panel.new_class, typed)
    names = [n.strip() for n in typed.replace("，", ",").split(",")]
    assert panel.classes == ["red", "blue"] + names


def test_a_refused_page_entry_goes_back_into_the_box(panel, monkeypatch):
    sent = []
    monkeypatch.setattr(panel.new_class, "send", lambda content, buffers=None: sent.append(content))
    page_submit(panel.new_class, "Blue")
    assert "class not added: 'Blue' is already in the list as 'blue'" in panel.error
    assert sent == [{"do": "restore", "value": "Blue"}] and panel.classes == ["red", "blue"]
    page_submit(panel.new_class, "green")
    assert sent == [{"do": "restore", "value": "Blue"}] and panel.classes == ["red", "blue", "green"]


def test_the_quick_entry_box_is_one_widget_with_its_button(panel):
    """Enter and the button live in one widget, so a click cannot overtake the text either."""
    assert panel.new_class.description == "New class" and panel.add_class_button.description == "Add class"
    assert panel.new_class.placeholder.startswith("e.g. red circle") and len(panel.new_class.placeholder) <= 28
    assert "commas" in panel.new_class.tooltip and "submit" in panel.new_class._esm


def test_an_old_export_message_goes_when_the_settings_change(panel):
    panel.export()
    assert "exported" in panel.export_status.value
    panel.language.value = "zh"  # re-wording changes no setting: the message stays
    assert panel.export_message
    panel.ensemble.value = "score"
    assert panel.export_status.value == "" and panel.export_message == ""


def test_settings_json_records_the_model_file(panel, tiny_checkpoint):
    folder = panel.export()[0].parent
    settings = json.loads((folder / "settings.json").read_text())
    assert settings["model_path"] == str(tiny_checkpoint)


# -- the map ----------------------------------------------------------------------------------------

def map_table(count: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"row": range(count), "path": [f"/nowhere/{i:04d}.png" for i in range(count)],
                         "x": rng.uniform(0, 10, count), "y": rng.uniform(0, 10, count),
                         "cluster": rng.integers(0, 4, count)})


def relayout(panel, selections):
    """What the page sends when a box or lasso is drawn (plotly.js relayouts `selections`)."""
    panel.figure._js2py_relayout = {"relayout_data": {"selections": selections}, "source_view_id": "page"}


def test_the_selection_is_what_the_box_holds_even_when_the_selection_event_is_lost(tmp_path):
    table = map_table(1000)
    panel = MapPanel(table, output_dir=tmp_path)
    box = {"type": "rect", "xref": "x", "yref": "y", "x0": 6.0, "x1": 2.5, "y0": 1.0, "y1": 4.0}
    relayout(panel, [box])  # the plotly_selected event that would follow was replaced by a hover: never sent
    inside = table[(table.x >= 2.5) & (table.x <= 6) & (table.y >= 1) & (table.y <= 4)]
    assert len(inside) > 50 and panel.selected["path"].tolist() == inside["path"].tolist()
    assert f"{len(inside)} images selected" in panel.selection_view.value
    lasso = {"type": "path", "xref": "x", "yref": "y", "path": "M0,0L5,0L0,5Z"}
    relayout(panel, [lasso])
    assert panel.selected["path"].tolist() == table[table.x + table.y < 5]["path"].tolist()
    relayout(panel, [])  # a double click clears it
    assert panel.selected.empty and "no images selected" in panel.selection_view.value


def test_selected_positions_counts_a_dot_in_two_selections_once():
    table = map_table(200, seed=1)
    boxes = [{"type": "rect", "x0": 0, "x1": 6, "y0": 0, "y1": 6}, {"type": "rect", "x0": 4, "x1": 10, "y0": 4, "y1": 10}]
    expected = np.flatnonzero(((table.x <= 6) & (table.y <= 6)) | ((table.x >= 4) & (table.y >= 4))).tolist()
    assert selected_positions(table, boxes) == expected


def test_the_legend_sits_above_the_hovered_image(tmp_path):
    panel = MapPanel(map_table(20), output_dir=tmp_path)
    side = panel.widget.children[2].children[1]
    assert side.children[0] is panel.legend_view and side.children[1] is panel.hover_view


def test_the_analysis_notebooks_print_absolute_output_paths(tmp_path, monkeypatch, capsys):
    """Notebooks 04 to 09 print where they write as 01 to 03 do: absolute paths, whatever the working folder."""
    from conftest import load_script

    build = load_script("build_notebooks")
    monkeypatch.chdir(tmp_path)
    namespace = {"LANG": "en", "model_name": "demo", "output_dir": "../reports/evaluation", "sample_images": "../test_images"}
    exec(build.ANALYSIS_SETUP.replace("%matplotlib inline", ""), namespace)
    expected = (tmp_path / "../reports/evaluation").resolve()
    assert namespace["output_dir"] == expected and namespace["output_dir"].is_absolute()
    assert f"outputs go to {expected}" in capsys.readouterr().out
