"""Issue 25, item 4: both panels are one `PanelBase` (clipnb/ui/base.py) for the status line, the guard, the
export start and closing, each keeping only what is its own."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import clipnb.ui.base as base
from clipnb.ui.base import PanelBase
from clipnb.ui.map_panel import MapPanel
from clipnb.ui.panel import ClassifierPanel


def map_table(count: int = 30) -> pd.DataFrame:
    """A map table of unreadable paths: the map panel needs no image to open, recolour or export."""
    rng = np.random.default_rng(0)
    return pd.DataFrame({"row": range(count), "path": [f"/nowhere/{i:04d}.png" for i in range(count)],
                         "x": rng.uniform(0, 10, count), "y": rng.uniform(0, 10, count),
                         "cluster": rng.integers(0, 3, count)})


def widgets_under(box) -> list:
    found, boxes = [], [box]
    while boxes:
        found.append(box := boxes.pop())
        boxes += getattr(box, "children", ())
    return found


@pytest.mark.parametrize("shared", ["_guarded", "_show_line", "_run_export", "close", "_repr_mimebundle_"])
def test_what_both_panels_do_the_same_way_has_one_home(shared):
    assert issubclass(ClassifierPanel, PanelBase) and issubclass(MapPanel, PanelBase)
    assert shared in vars(PanelBase)
    assert shared not in vars(MapPanel)  # the classifier's close() adds stopping its preparing, then calls this one
    assert shared == "close" or shared not in vars(ClassifierPanel)


def test_the_map_panel_closes_its_widgets(tmp_path):
    panel = MapPanel(map_table(), output_dir=tmp_path)
    shown = widgets_under(panel.widget)
    assert panel.figure in shown and all(view.comm is not None for view in shown)
    panel.close()  # the map panel had no close(): only the classifier panel's closed its widgets
    assert all(view.comm is None for view in shown)


def test_a_map_export_disables_its_button_while_it_writes(tmp_path, monkeypatch):
    panel = MapPanel(map_table(), output_dir=tmp_path / "out")
    while_writing = []

    def run_export(job, wait, guard):  # the moment the thread would start writing
        while_writing.append((panel.export_button.disabled, panel.status.value))
        return job()

    monkeypatch.setattr(base, "run_export", run_export)
    panel.export(wait=False)
    disabled, status = while_writing[0]
    assert disabled and status.count("⏳") == 1 and "✔" not in status
    assert not panel.export_button.disabled and panel.status.value.startswith('<span style="color:#1a7f37">✔')
    assert {p.name for p in panel.exported} >= {"map.csv", "embedding_map.png"}


def test_a_line_says_its_kind_and_folds_the_details_of_a_failure():
    assert base.line_html("ok", "done <3") == '<span style="color:#1a7f37">✔ done &lt;3</span>'
    assert base.line_html("working", "writing") == '<span style="color:#0969da">⏳ writing</span>'
    failed = base.line_html("failed", "it broke", "Traceback: boom", lang="zh")
    assert failed.startswith('<span style="color:#cf222e;font-weight:bold">⚠ it broke</span><details>')
    assert "Traceback: boom" in failed
