"""The notebooks speak the reader's language and say what their numbers are (issue 24, follow-ups of the browser
walk-through of every notebook): no English printed or on a control in Chinese mode, each accuracy line names the
images it measures, a warning is one ⚠ line, a video's lead shows its digits, the panel says how the prompts were
had, long notes wrap at words, and the tables are compact and show short image names."""
import ast
import contextlib
import io
import re
import warnings

import nbformat
import pandas as pd
import pytest
import torch

from clipnb import ClassWarning
from clipnb.tasks.video import classify_video
from clipnb.ui.panel import table_html, warnings_said
from clipnb.words import WORDS, word
from conftest import ROOT
from test_prepare_ahead import image_folder, model, open_panel, wait_prepared  # noqa: F401 (fixtures)
from test_video_overall import frames_showing, head

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CONTROLS = {"description", "options", "placeholder", "tooltip"}  # the words an ipywidgets control shows
ENGLISH = re.compile(r"[A-Za-z]{2,}")


def code_cells(path):
    for number, cell in enumerate(nbformat.read(path, as_version=4).cells):
        if cell.cell_type == "code":  # IPython's %magic lines are not Python
            yield number, ast.parse("\n".join(line for line in cell.source.splitlines() if not line.startswith("%")))


def shown_literals(node):
    """The string literals that reach the reader as they are from an expression printed or put on a control:
    through concatenation, `or`, `if`/`else`, f-strings and lists, but not the arguments of a call (a catalogue
    key for `word`, a noun for `plural`, a file name) nor an f-string's format spec or subscript."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield node.value
    elif isinstance(node, ast.JoinedStr):
        for part in node.values:
            if isinstance(part, ast.Constant):
                yield part.value
    elif isinstance(node, ast.BinOp):
        yield from shown_literals(node.left)
        yield from shown_literals(node.right)
    elif isinstance(node, ast.BoolOp):
        for value in node.values:
            yield from shown_literals(value)
    elif isinstance(node, ast.IfExp):
        yield from shown_literals(node.body)
        yield from shown_literals(node.orelse)
    elif isinstance(node, (ast.List, ast.Tuple)):
        for element in node.elts:
            yield from shown_literals(element)


def english_shown(path) -> list[str]:
    found = []
    for number, tree in code_cells(path):
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            shown = list(node.args) if getattr(node.func, "id", None) == "print" else []
            shown += [keyword.value for keyword in node.keywords if keyword.arg in CONTROLS]
            found += [f"cell {number}: {text!r}" for value in shown for text in shown_literals(value)
                      if ENGLISH.search(text)]
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_nothing_a_notebook_prints_or_puts_on_a_control_bypasses_the_catalogue(path):
    # with LANG = "zh" these were English: 04's "no mistakes", the compare_with hint, the "templates"/"ensemble"
    # controls; 05's "search"/"top"; 06's "frame"; 07's skipped shots; 02/03's "the first N of M images"; 09's
    # accuracy line
    assert english_shown(path) == [], f"{path.name}: print these through word(key, LANG)"


def test_the_scan_sees_english_where_it_is_printed_and_not_where_it_is_a_key():
    tree = ast.parse('print("no mistakes")\nprint(f"skipped {n}: too few")\nprint(word("notebook.no_outliers", LANG))\n'
                     'w.Dropdown(options=list(sets), description="templates")\nprint(x or "no image stands out")')
    printed = [text for node in ast.walk(tree) if isinstance(node, ast.Call)
               for value in (node.args if getattr(node.func, "id", None) == "print" else [])
               + [k.value for k in node.keywords if k.arg in CONTROLS] for text in shown_literals(value)]
    assert printed == ["no mistakes", "skipped ", ": too few", "templates", "no image stands out"]


def test_every_word_a_notebook_asks_for_is_in_the_catalogue_in_chinese():
    keys = set()
    for path in NOTEBOOKS:
        for _, tree in code_cells(path):
            keys |= {node.args[0].value for node in ast.walk(tree) if isinstance(node, ast.Call)
                     and getattr(node.func, "id", getattr(node.func, "attr", None)) == "word"
                     and node.args and isinstance(node.args[0], ast.Constant)}
    assert {"notebook.no_mistakes", "notebook.search", "notebook.top", "notebook.skipped_shots", "notebook.first_rows",
            "notebook.compare_hint", "control.template_set", "control.ensemble", "column.frame"} <= keys
    missing = sorted(key for key in keys if key not in WORDS)
    assert not missing
    for key in keys:  # Chinese words in the Chinese text (the compare_with hint keeps its code as it is)
        assert re.search(r"[\u4e00-\u9fff]", WORDS[key]["zh"]) or not ENGLISH.search(WORDS[key]["zh"]), key


def cell_with(path, text: str) -> str:
    cells = [cell.source for cell in nbformat.read(path, as_version=4).cells if text in cell.source]
    assert len(cells) == 1, text
    return cells[0]


def test_09_each_accuracy_line_names_the_images_it_measures():
    # cell 13 said "accuracy 26.5%; mean confidence 69.0% before, 33.8%" beside cell 12's headline on the
    # held-out half ("on 240 others ... accuracy 25.8%"): the same words, other numbers, no reason given
    source = cell_with(ROOT / "notebooks" / "09_collection.ipynb", "apply_temperature(evaluation.table")
    assert 'word("notebook.confidence_all"' in source
    line = word("notebook.confidence_all", "en", images="480 labelled images", image_count=480, accuracy=0.265,
                before=0.69, after=0.338, temperature=2.61)
    assert line.startswith("on all 480 labelled images (fitted and held-out together): accuracy 26.5%")
    assert word("notebook.confidence_all", "zh", images="", image_count=480, accuracy=0.265, before=0.69,
                after=0.338, temperature=2.61).startswith("在全部480张已标注图像上")
    # the line above it, Calibration.headline, names the held-out images by their number
    # (its words are in the catalogue since part AA: Calibration.headline(lang))
    assert "on {held_out} others" in WORDS["calibration.headline"]["en"]
    assert "在另外{held_out}张图像上" in WORDS["calibration.headline"]["zh"]


def test_a_class_warning_is_one_clean_line_not_a_python_warning_box():
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), pytest.warns(DeprecationWarning) as others:
        with warnings_said("zh"):
            warnings.warn("the demo model cannot tell two drawings apart", ClassWarning)
            warnings.warn("something else", DeprecationWarning)  # not ours: warned as it would have been
    assert printed.getvalue() == "⚠ the demo model cannot tell two drawings apart\n"
    assert [str(found.message) for found in others] == ["something else"]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), pytest.raises(ValueError):
        with warnings_said():
            warnings.warn("why it failed", ClassWarning)
            raise ValueError("the block failed")
    assert printed.getvalue() == "⚠ why it failed\n"  # said even when the block fails


def test_09_shows_the_duplicates_warning_through_the_package():
    # cell 8 showed the demo model's ClassWarning in a red stderr box: /tmp/ipykernel_….py:1: and the source line
    source = cell_with(ROOT / "notebooks" / "09_collection.ipynb", "clipnb.find_duplicates(")
    tree = ast.parse(source)
    guarded = [node for node in ast.walk(tree) if isinstance(node, ast.With)
               and "warnings_said" in ast.unparse(node.items[0].context_expr)]
    assert guarded and "find_duplicates" in ast.unparse(guarded[0])
    search = cell_with(ROOT / "notebooks" / "05_search.ipynb", "query_box.observe")
    assert "warnings_said(LANG)" in search and "catch_warnings" not in search  # one home for the ⚠ line


def near_tie(eps: float):
    frames = frames_showing([0, 0, 1, 1])  # red circle and blue star win 2 frames each
    frames.features[3] = torch.nn.functional.normalize(torch.tensor([eps, 1.0, 0.0, 0.0]), dim=0)
    return classify_video(frames, head(scale=10.0))


def test_a_video_lead_is_shown_with_the_digits_that_show_it():
    result = near_tie(0.001)  # means 0.492782 and 0.492761: "0.493 against 0.493" before
    mine, theirs = result.summary["mean_frame_probability"][:2]
    assert f"{mine:.3f}" == f"{theirs:.3f}" and mine > theirs
    assert result.basis().endswith(f"red circle leads by mean frame probability, {mine:.5f} against {theirs:.5f}")
    assert result.basis("zh").endswith(f"red circle以各帧平均概率领先, {mine:.5f} 对 {theirs:.5f}")
    wide = near_tie(0.5)  # a lead seen at 3 decimals keeps 3
    mine, theirs = wide.summary["mean_frame_probability"][:2]
    assert wide.basis().endswith(f"{mine:.3f} against {theirs:.3f}")


def test_a_tie_on_mean_probability_too_says_so_and_how_it_was_broken():
    result = near_tie(0.0)  # the two classes mirror each other: the same mean frame probability
    mine, theirs = result.summary["mean_frame_probability"][:2]
    assert abs(mine - theirs) < 5e-8  # float32 sums of the same four numbers in another order
    assert result.basis() == ("tie: red circle and blue star won 2 of 4 sampled frames each, with the same mean frame "
                              f"probability ({mine:.3f}); red circle is named because it comes first in the class list")
    assert result.basis("zh") == ("平局: red circle和blue star在4个采样帧中各赢得2帧, 各帧平均概率也相同 "
                                  f"({mine:.3f}); 选择red circle是因为它在类别列表中排在前面")


def test_the_panel_says_prompts_prepared_ahead_were_read_from_memory(model, image_folder, tmp_path):
    panel = open_panel(model, image_folder, tmp_path, prepare_ahead=True)
    # the first answer encoded its 2 x 3 prompts itself
    assert "(no image encoded again; 6 prompts encoded)" in panel.message, panel.message
    wait_prepared(panel)
    panel.template_set.value = "imagenet80"  # prepared ahead by the background: "(none encoded again)" before
    assert "(no image encoded again; 160 prompts prepared ahead in the background, read from memory)" in panel.message
    panel.template_set.value = "basic"  # shown before
    assert "(no image encoded again; every prompt read from memory)" in panel.message
    panel.language.value = "zh"
    assert "(未重新编码图像; 所有提示词从内存读取)" in panel.message, panel.message
    panel.close()


def test_02_wraps_its_long_note_at_words():
    # "... use a real CLIP model to se / e templates matter": the page breaks a long output line anywhere
    source = cell_with(ROOT / "notebooks" / "02_zero_shot_classification.ipynb", "template_note(model, head, LANG)")
    assert "textwrap.fill(template_note(model, head, LANG)" in source
    import textwrap

    note = WORDS["note.same_templates_small"]["en"].format(model="demo")
    assert len(note) > 100 and all(len(line) <= 100 for line in textwrap.fill(note, width=100).splitlines())


def test_tables_are_compact_and_03_shows_the_short_names_02_shows(tmp_path):
    table = pd.DataFrame({"image": ["green triangle/mask.png"], "prediction": ["green triangle"],
                          "confidence": [0.5], "error": [""]})
    shown = table_html(table)
    # one line a row: a wrapped "green triangle" made every row two lines tall, with JupyterLab's 0.5em padding
    assert 'class="dataframe clipnb-rows"' in shown
    assert "table.clipnb-rows td{white-space:nowrap}" in shown and "padding:2px 8px" in shown
    source = cell_with(ROOT / "notebooks" / "03_classification_report.ipynb", "columns = [")
    assert "display_names(results[\"path\"])" in source and "table_html(" in source
    assert '"path"' not in source.split("columns = [")[1].split("]")[0]  # not the full /tmp/... paths


@pytest.mark.notebook
@pytest.mark.slow
def test_06_and_03_run_in_chinese_with_chinese_lines_and_short_names(tmp_path):
    from test_notebooks import SIX, run_notebook

    for name in ("06", "03"):
        (tmp_path / name).mkdir()
    _, text = run_notebook("06_video.ipynb", {"every_seconds": 2.0, "classes": SIX, "LANG": "zh"}, tmp_path / "06")
    assert "采样3帧; 整个视频: " in text and "frames sampled" not in text, text
    assert "模型: demo; 输出写入 " in text and "outputs go to" not in text
    executed = nbformat.read(tmp_path / "06" / "06_video.ipynb", as_version=4)
    slider = [state["state"] for state in executed.metadata.widgets["application/vnd.jupyter.widget-state+json"]
              ["state"].values() if state["model_name"] == "IntSliderModel"]
    assert [state["description"] for state in slider] == ["帧"]

    folder = tmp_path / "shapes"
    from demo_inputs import write_shapes

    write_shapes(folder, per_class=1, classes=SIX[:3])
    _, text = run_notebook("03_classification_report.ipynb", {"image_folder": str(folder), "recursive": True,
                                                                "classes": SIX[:3], "LANG": "zh"}, tmp_path / "03")
    assert "共3张图像, 显示前3张 (全部写入 classification.csv):" in text and "the first" not in text, text
    executed = nbformat.read(tmp_path / "03" / "03_classification_report.ipynb", as_version=4)
    table = next(output["data"]["text/html"] for cell in executed.cells if "display_names" in cell.source
                 for output in cell.outputs if "text/html" in output.get("data", {}))
    assert "clipnb-rows" in table and "<th>图像名称</th>" in table and str(folder) not in table
    assert f"<td>{SIX[0]}/" in table  # "red circle/….png", as notebook 02 names it
