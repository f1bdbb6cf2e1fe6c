"""clipnb.ui.panel.ClassifierPanel driven from Python: set a control's value, check the results, the table,
the charts and the status line; no image is ever encoded twice. Callbacks from another thread, exceptions in
callbacks, typing and Enter are covered here too (tests/test_browser.py does the same in a real browser)."""
import json
import threading
import time

import pandas as pd
import pytest
from PIL import Image

from clipnb.zeroshot.schema import prob_column
from clipnb.zeroshot.prompts import TEMPLATE_SETS
from clipnb.ui.panel import ClassifierPanel, export_folder, image_table, split_class_names

COLOURS = {"red": (230, 20, 20), "blue": (20, 40, 230), "green": (30, 190, 40), "white": (250, 250, 250),
           "black": (5, 5, 5)}


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("panel-images")
    for name, colour in COLOURS.items():
        Image.new("RGB", (48, 36), colour).save(folder / f"{name}.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    return folder


@pytest.fixture()
def counted(tiny_model, monkeypatch):
    """The tiny model, counting every image it encodes."""
    count = {"images": 0}
    original = tiny_model.encode_image_tensors

    def encode(pixels):
        count["images"] += len(pixels)
        return original(pixels)

    monkeypatch.setattr(tiny_model, "encode_image_tensors", encode)
    return tiny_model, count


@pytest.fixture()
def panel(counted, image_folder, tmp_path):
    model, count = counted
    panel = ClassifierPanel.from_folder(model, image_folder, ["red", "blue", "green"], "basic",
                                        output_dir=tmp_path / "out", max_shown=3, typing_delay=0)
    assert count["images"] == 5  # the readable images, once
    return panel


def submit(text_widget):
    """What the browser sends when Enter is pressed in a Text box."""
    text_widget._handle_msg({"content": {"data": {"method": "custom", "content": {"event": "submit"}}}, "buffers": []})


def test_panel_starts_with_results_charts_and_a_table(panel):
    assert panel.error == ""
    assert panel.results.attrs["classes"] == ["red", "blue", "green"]
    assert len(panel.results) == 6 and panel.results["error"].astype(bool).sum() == 1
    assert panel.status.value.count("✔") == 1
    assert "3 classes × 3 templates, embedding ensembling" in panel.message
    assert "5 images re-scored" in panel.message and "no image encoded again" in panel.message
    charts = panel.charts.value
    assert all(f">{name}</span>" in charts for name in ("red", "blue", "green"))
    assert charts.count('<div class="clipnb-card">') == 3 and charts.count("data:image/jpeg;base64,") == 2
    assert "unreadable" in charts  # the broken file's card says why
    table = panel.table
    assert list(table["image"]) == ["black.png", "blue.png", "broken.jpg"]
    assert table["error"].iloc[2] and table["error"].iloc[2] in panel.table_view.value
    assert "clipnb-charts" in panel.charts._dom_classes and "clipnb-status" in panel.status._dom_classes
    assert "application/vnd.jupyter.widget-view+json" in panel._repr_mimebundle_()


def test_the_controls_have_the_names_users_and_docs_rely_on(panel):
    descriptions = {panel.class_list: "Classes", panel.new_class: "New class", panel.template_set: "Template set",
                    panel.templates: "Templates", panel.ensemble: "Ensembling", panel.shown: "Images shown"}
    for control, name in descriptions.items():
        assert control.description == name
    assert panel.add_class_button.description == "Add class" and panel.remove_class_button.description == "Remove"
    assert panel.export_button.description == "Export"
    assert type(panel.class_list).__name__ == "SelectMultiple"
    assert list(panel.ensemble.options) == ["embedding", "score"]


def test_adding_a_class_rescores_and_redraws_without_encoding_an_image(panel, counted):
    _, count = counted
    before_html, before_table = panel.charts.value, panel.table_view.value
    panel.new_class.value = "white"
    panel.add_class_button.click()
    assert panel.classes == ["red", "blue", "green", "white"]
    assert panel.new_class.value == ""
    assert "4 classes × 3 templates" in panel.message
    assert prob_column("white") in panel.results.columns
    assert panel.results.loc[panel.results["error"] == "", [prob_column(c) for c in panel.classes]].sum(axis=1).tolist() \
        == pytest.approx([1.0] * 5)
    assert panel.charts.value != before_html and ">white</span>" in panel.charts.value
    assert panel.table_view.value != before_table
    assert count["images"] == 5


def test_enter_in_new_class_adds_it_and_commas_add_several(panel):
    panel.new_class.value = "white"
    submit(panel.new_class)
    assert panel.classes == ["red", "blue", "green", "white"] and panel.new_class.value == ""
    panel.new_class.value = "black, purple，orange"
    submit(panel.new_class)
    assert panel.classes == ["red", "blue", "green", "white", "black", "purple", "orange"]
    assert split_class_names(" a b ,, c ") == ["a b", "c"]


def test_several_selected_classes_are_removed_at_once(panel):
    panel.class_list.value = ("blue", "green")
    panel.remove_class_button.click()
    assert panel.classes == ["red"]
    assert prob_column("blue") not in panel.results.columns
    assert set(panel.results["prediction"].dropna()) == {"red"}
    # one class left: shown, with a warning that the answer cannot mean anything
    assert panel.status.value.startswith('<span style="color:#9a6700">⚠') and "one class" in panel.message


def test_the_last_class_cannot_be_removed_and_nothing_selected_says_so(panel):
    panel.remove_class_button.click()
    assert "select one or more classes" in panel.error
    panel.class_list.value = ("red", "blue", "green")
    panel.remove_class_button.click()
    assert panel.classes == ["red", "blue", "green"] and "keep at least one" in panel.error


def test_a_class_keeps_its_colour_when_others_come_and_go(panel):
    before = panel.palette
    panel.remove_class("red")
    panel.new_class.value = "white"
    panel.add_class_button.click()
    panel.new_class.value = "red"
    panel.add_class_button.click()
    assert panel.palette == {**before, "white": panel.palette["white"]}
    assert panel.palette["white"] not in before.values()


def test_colours_stay_put_past_twenty_classes(counted, image_folder, tmp_path):
    model, _ = counted
    names = [f"class {i}" for i in range(24)]
    panel = ClassifierPanel.from_folder(model, image_folder, names, "basic", typing_delay=0)
    before = panel.palette
    panel.new_class.value = "one more"
    panel.add_class_button.click()
    assert all(panel.palette[name] == colour for name, colour in before.items())
    assert panel.palette["one more"] not in before.values()


def test_switching_the_ensembling_method_changes_the_scores(panel, counted):
    _, count = counted
    before = panel.results
    panel.ensemble.value = "score"
    assert panel.results.attrs["ensemble"] == "score" and "score ensembling" in panel.message
    columns = [f"score_{c}" for c in panel.classes]
    good = panel.results["error"] == ""
    assert not (panel.results.loc[good, columns].to_numpy() == before.loc[good, columns].to_numpy()).all()
    assert count["images"] == 5


def test_template_set_and_template_list_stay_in_step(panel):
    panel.template_set.value = "imagenet7"
    assert panel.template_list == TEMPLATE_SETS["imagenet7"]
    assert panel.results.attrs["templates"] == TEMPLATE_SETS["imagenet7"]
    assert "3 classes × 7 templates" in panel.message
    panel.templates.value = "a photo of a {}\n\na drawing of a {}\n"
    assert panel.template_set.value == "custom"
    assert panel.results.attrs["templates"] == ["a photo of a {}", "a drawing of a {}"]
    panel.templates.value = "\n".join(TEMPLATE_SETS["basic"])
    assert panel.template_set.value == "basic"


def test_a_template_set_after_adding_a_class_keeps_the_class(panel):
    panel.new_class.value = "white"
    panel.add_class_button.click()
    panel.template_set.value = "imagenet80"
    assert "4 classes × 80 templates, embedding ensembling" in panel.message
    assert panel.results.attrs["classes"] == ["red", "blue", "green", "white"]


@pytest.mark.parametrize("bad, message", [
    ("a photo of a {}\na photo without the braces", "has no '{}'"),
    ("a {} next to a {}", "'{}'"),
    ("a photo of a {}\na photo of a {}", "given twice"),
    ("\n  \n", "no templates given"),
])
def test_a_bad_template_shows_a_message_and_keeps_the_last_good_results(panel, bad, message):
    results, html_before, table, scorings = panel.results, panel.charts.value, panel.table_view.value, panel.scorings
    panel.templates.value = bad
    assert message in panel.error
    assert "still showing 3 classes × 3 templates, embedding ensembling" in panel.error and "⚠" in panel.status.value
    assert panel.results is results and panel.charts.value == html_before and panel.table_view.value == table
    assert panel.scorings == scorings
    panel.templates.value = "a toy {}"  # a good edit after a bad one applies and clears the message
    assert panel.error == "" and panel.results is not results and "3 classes × 1 template," in panel.message


@pytest.mark.parametrize("name, message", [("   ", "name is empty"), ("Red", "already in the list as 'red'"),
                                           ("blue", "already in the list"), ("cyan, cyan", "given twice")])
def test_an_empty_or_repeated_class_is_refused_and_the_typed_text_kept(panel, name, message):
    results = panel.results
    panel.new_class.value = name
    panel.add_class_button.click()
    assert message in panel.error and "class not added" in panel.error
    assert panel.classes == ["red", "blue", "green"] and panel.results is results
    assert panel.new_class.value == name


def test_templates_apply_after_a_pause_in_typing_or_at_once_on_a_new_line(panel):
    panel.typing_delay = 0.3
    scorings = panel.scorings
    for partial in ("a t", "a to", "a toy {", "a toy {}"):  # keystrokes: nothing applies while typing
        panel.templates.value = partial
    assert panel.scorings == scorings and panel.results.attrs["templates"] == TEMPLATE_SETS["basic"]
    deadline = time.monotonic() + 10
    while panel.scorings == scorings and time.monotonic() < deadline:
        time.sleep(0.05)
    assert panel.scorings == scorings + 1 and panel.results.attrs["templates"] == ["a toy {}"]
    panel.templates.value = "a toy {}\n"  # Enter applies at once
    assert panel.scorings == scorings + 2


def test_callbacks_from_another_thread_use_the_cache(counted, image_folder, tmp_path):
    """As in JupyterLab: the panel (and its cache) made in one thread, a control changed in another."""
    from clipnb import EmbeddingCache

    model, _ = counted
    cache = EmbeddingCache(tmp_path / "cache")
    panel = ClassifierPanel.from_folder(model, image_folder, ["red", "blue"], "basic", cache=cache, typing_delay=0)
    thread = threading.Thread(target=lambda: setattr(panel.templates, "value", "a sketch of a {}"))
    thread.start()
    thread.join(timeout=60)
    assert panel.error == "" and "2 classes × 1 template" in panel.message
    assert cache.get_texts(model.fingerprint, ["a sketch of a red"], False)[0] is not None


def test_an_exception_in_a_callback_is_shown_not_lost(panel, monkeypatch, caplog):
    results = panel.results

    def broken(*args, **kwargs):
        raise RuntimeError("the disk is on fire")

    monkeypatch.setattr("clipnb.ui.panel.results_table", broken)
    panel.ensemble.value = "score"  # a widget callback: it must not raise into ipywidgets
    assert "switching the ensembling failed: RuntimeError: the disk is on fire" in panel.error
    assert "still showing 3 classes × 3 templates, embedding ensembling" in panel.error
    assert "<details>" in panel.status.value and "Traceback" in panel.status.value
    assert panel.results is results
    assert "the disk is on fire" in caplog.text
    monkeypatch.undo()
    panel.ensemble.value = "embedding"
    panel.ensemble.value = "score"
    assert panel.error == "" and "score ensembling" in panel.message


def test_choosing_the_images_shown_redraws_without_rescoring(panel):
    scorings, cards = panel.scorings, panel.charts.value
    panel.shown.value = (4, 5)
    assert list(panel.table["image"]) == ["red.png", "white.png"]
    assert "red.png" in panel.table_view.value and "black.png" not in panel.table_view.value
    assert panel.charts.value != cards and panel.charts.value.count('<div class="clipnb-card">') == 2
    assert panel.scorings == scorings
    panel.shown.value = ()
    assert "no images selected" in panel.charts.value


def test_true_classes_from_folder_names_mark_the_mistakes(counted, tmp_path):
    model, _ = counted
    for label, colour in (("red", (230, 20, 20)), ("blue", (20, 40, 230))):
        (tmp_path / "labelled" / label).mkdir(parents=True)
        Image.new("RGB", (40, 40), colour).save(tmp_path / "labelled" / label / "a.png")
    panel = ClassifierPanel.from_folder(model, tmp_path / "labelled", ["red", "blue"], "basic", recursive=True,
                                        typing_delay=0)
    assert panel.truth == ["blue", "red"]
    assert list(panel.table["true class"]) == ["blue", "red"]
    right = (panel.table["prediction"] == panel.table["true class"]).tolist()
    assert panel.table["correct"].tolist() == right
    assert panel.charts.value.count("✓") == sum(right) and panel.charts.value.count("✗") == 2 - sum(right)


def test_export_writes_a_new_timestamped_folder_and_says_where(panel, tmp_path):
    panel.new_class.value = "black"
    panel.add_class_button.click()
    written = panel.export()
    folder = written[0].parent
    assert folder.parent == (tmp_path / "out").resolve() and folder.name.startswith("panel-")
    assert {p.name for p in written} == {"classification.csv", "class_summary.csv", "settings.json"} | {
        f"panel_{chart}.{fmt}" for chart in ("images", "classes") for fmt in ("png", "svg", "pdf")}
    assert panel.export_message.startswith("exported 9 files (4 classes × 3 templates, embedding ensembling)")
    assert str(folder) in panel.export_message and "4 classes × 3 templates" in panel.message
    settings = json.loads((folder / "settings.json").read_text())
    assert settings["classes"] == ["red", "blue", "green", "black"] and settings["ensemble"] == "embedding"
    assert settings["templates"] == TEMPLATE_SETS["basic"] and settings["images"] == 6
    table = pd.read_csv(folder / "classification.csv", encoding="utf-8-sig")
    assert {"path", "prediction", "confidence", "error", prob_column("black")} <= set(table.columns)
    assert len(table) == 6
    assert list(pd.read_csv(folder / "class_summary.csv")["class"]) == ["red", "blue", "green", "black"]
    for name in ("panel_images.png", "panel_classes.png"):
        with Image.open(folder / name) as image:
            image.load()
    assert (folder / "panel_images.pdf").read_bytes().startswith(b"%PDF")
    second = panel.export()
    assert second[0].parent != folder  # a second export never overwrites the first


def test_the_export_button_says_exporting_at_once_and_the_files_after(panel, tmp_path):
    statuses = []
    panel.export_status.observe(lambda change: statuses.append(change["new"]), names="value")
    panel.export_button.click()
    assert "exporting… 3 classes × 3 templates, embedding ensembling" in statuses[0]
    panel.templates.value = "oops"  # an edit during the export: the status line keeps its ⚠
    deadline = time.monotonic() + 60
    while "exported" not in panel.export_message and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "exported 9 files (3 classes × 3 templates" in panel.export_message and not panel.export_button.disabled
    assert "has no '{}'" in panel.error and panel.status.value.startswith('<span style="color:#cf222e')


def test_export_writes_what_is_shown_and_says_so_when_the_controls_hold_a_bad_entry(panel):
    panel.templates.value = "a drawing of a {}\nno braces"
    written = panel.export()
    assert "the last good settings" in panel.export_message and "has no '{}'" in panel.error
    settings = json.loads((written[0].parent / "settings.json").read_text())
    assert settings["templates"] == TEMPLATE_SETS["basic"]


def test_templates_typed_just_before_export_are_exported(panel):
    panel.typing_delay = 5
    panel.templates.value = "a drawing of a {}"  # still waiting for the pause in typing
    written = panel.export()
    assert json.loads((written[0].parent / "settings.json").read_text())["templates"] == ["a drawing of a {}"]


def test_an_empty_output_folder_is_refused(panel):
    panel.output_dir.value = "  "
    assert panel.export() == [] and "no output folder" in panel.export_error


def test_the_same_mistake_twice_changes_the_status_line(panel):
    panel.new_class.value = "red"
    panel.add_class_button.click()
    first = panel.status.value
    panel.add_class_button.click()
    assert panel.status.value != first and "again, 2 times" in panel.status.value


def test_export_folder_names_never_collide(tmp_path):
    import datetime

    now = datetime.datetime(2026, 12, 1, 10, 15, 2)
    first = export_folder(tmp_path, now)
    first.mkdir()
    assert first.name == "panel-20261201-101502"
    assert export_folder(tmp_path, now).name == "panel-20261201-101502-2"


def test_export_to_a_folder_that_cannot_be_written_shows_a_message(panel, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    panel.output_dir.value = str(blocker / "reports")
    assert panel.export() == []
    assert "export to" in panel.export_error and "failed" in panel.export_error and str(blocker) in panel.export_error
    assert "still in memory" not in panel.export_error and "press Export again" in panel.export_error
    assert panel.results is not None and panel.error == ""


def test_image_table_ranks_the_runner_up(panel):
    table = image_table(panel.results)
    good = table[table["error"] == ""]
    assert (good["confidence"] >= good["runner-up probability"]).all()
    assert (good["prediction"] != good["runner-up"]).all()


def test_the_language_choice_rewords_the_panel_and_keeps_every_setting(panel):
    english, scorings = panel.message, panel.scorings
    panel.new_class.value = "whi"  # typed, not yet added
    panel.shown.value = (0, 1)
    panel.ensemble.value = "score"
    english = panel.message
    scorings = panel.scorings
    panel.language.value = "zh"
    assert panel.lang == "zh" and panel.scorings == scorings  # re-worded, not re-scored
    assert panel.error == "" and panel.message.startswith("3个类别 × 3个模板, 集成方式 得分平均: ")
    assert "张图像由已有的嵌入重新评分" in panel.message
    assert "分类结果分布" in panel.charts.value and "预测数量" in panel.charts.value
    assert "<th>图像名称</th>" in panel.table_view.value and "<th>预测类别</th>" in panel.table_view.value
    assert list(panel.table.columns)[:2] == ["image", "prediction"]  # the table itself stays clipnb's
    assert (panel.classes, panel.new_class.value, panel.shown.value, panel.ensemble.value) == (
        ["red", "blue", "green"], "whi", (0, 1), "score")
    assert panel.templates.value == "\n".join(TEMPLATE_SETS["basic"]) and panel.template_set.value == "basic"
    panel.language.value = "en"
    assert panel.message.split(" in ")[0] == english.split(" in ")[0] and panel.scorings == scorings
    assert "Predicted classes" in panel.charts.value and "<th>image</th>" in panel.table_view.value


def test_switching_language_keeps_a_bad_entry_and_templates_still_being_typed(panel):
    panel.templates.value = "oops"  # a bad entry: its ⚠ stays through a language switch, in the new language
    panel.language.value = "zh"
    assert panel.templates.value == "oops" and "中没有放类别名称的 '{}'" in panel.error
    assert panel.status.value.startswith('<span style="color:#cf222e')
    panel.templates.value = "a toy {}"
    assert panel.error == "" and "1个模板" in panel.message
    panel.typing_delay = 5
    panel.templates.value = "a toy {}\na drawing of a {}"  # a new line applies at once
    panel.templates.value = "a toy {}\na drawing of a {} in ink"  # still typing: waits for the pause
    panel.language.value = "en"
    assert panel.templates.value.endswith("in ink") and panel._timer is not None  # the edit still waits
    assert "2 templates" in panel.message
    panel.settle()  # and applies, in English now
    assert panel.results.attrs["templates"] == ["a toy {}", "a drawing of a {} in ink"]
    assert panel.message.startswith("3 classes × 2 templates, embedding ensembling: ")


def test_export_in_chinese_writes_the_articles_headers_and_chinese_charts(panel):
    panel.language.value = "zh"
    written = panel.export()
    folder = written[0].parent
    assert panel.export_message.startswith("已导出 9个文件 (3个类别 × 3个模板, 集成方式 嵌入平均) 到 ")
    table = pd.read_csv(folder / "classification.csv", encoding="utf-8-sig")
    assert list(table.columns[:3]) == ["图像名称", "宽度", "高度"]
    assert {"宽高比", "比例类型", "预测类别", "最高置信度", "red_得分", "red_概率"} <= set(table.columns)
    assert list(pd.read_csv(folder / "class_summary.csv")["类别"]) == ["red", "blue", "green"]
    assert "分类结果分布" in (folder / "panel_classes.svg").read_text(encoding="utf-8")
    with Image.open(folder / "panel_classes.png") as image:
        image.load()


def test_an_unknown_panel_language_is_refused(counted, image_folder):
    model, _ = counted
    with pytest.raises(ValueError, match="unknown report language 'fr': use one of en, zh"):
        ClassifierPanel.from_folder(model, image_folder, ["red"], "basic", lang="fr")
