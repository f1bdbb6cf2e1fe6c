"""The demo model honest about itself, and the Chinese panel completely Chinese (issue 24, items 7, 8, 9).

- templates the model reads alike are measured and said (`scoring.template_note`), in the panel and notebook 02;
- search, duplicates and evaluate warn about what the demo model cannot know, through the same helper as
  classify (`scoring.small_world`);
- a temperature is not fitted on fewer than 5 labelled images per class;
- every CSV follows one BOM rule, and the Chinese panel's words all come from clipnb.words.
"""
import re
import warnings

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from clipnb import ClassWarning, load_model
from clipnb.zeroshot.calibration import MIN_FIT_PER_CLASS, calibrate, fit_temperature
from clipnb.zeroshot.results import results_table
from clipnb.cli import main
from clipnb.tasks.duplicates import find_duplicates
from clipnb.embed.runner import embed_images
from clipnb.report.export import write_csv
from clipnb.zeroshot.scoring import build_head, template_note
from clipnb.tasks.search import index_images, search_text

from demo_inputs import write_shapes
from test_calibration import synthetic

SMALL_WORLD = "model knows only coloured shapes"


def class_warning_texts(call) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()
    return [str(w.message) for w in caught if issubclass(w.category, ClassWarning)]


# ---- item 7: templates the model reads alike ----------------------------------------------------------------

def test_templates_the_demo_model_reads_alike_are_measured_and_said(demo, tiny_model):
    classes = ["red circle", "blue star"]
    note = template_note(demo, build_head(demo, classes, "basic", warn=False))
    # "a photo of", "a picture of", "an image of": cosine 1.0000 to their mean for every class
    assert note == ("the demo model reads only colour and shape words, so these templates give the same embeddings: "
                    "use a real CLIP model to see templates matter")
    assert template_note(demo, build_head(demo, classes, "basic", warn=False), "zh").startswith("demo 模型只读颜色和形状的词")
    # wording it does read ("a black and white photo", "origami") moves its embeddings: nothing to say
    assert template_note(demo, build_head(demo, classes, "imagenet7", warn=False)) == ""
    assert template_note(demo, build_head(demo, classes, ["a photo of a {}"], warn=False)) == ""  # one template
    # a model that reads every word (random weights here) gives each template its own embedding
    assert template_note(tiny_model, build_head(tiny_model, classes, "basic", warn=False)) == ""


def test_the_demo_panel_says_why_its_templates_and_ensembling_agree(demo, shapes_folder, tmp_path):
    from clipnb.ui.panel import ClassifierPanel

    embedded = embed_images(demo, [shapes_folder / "red circle" / "000.png", shapes_folder / "blue star" / "000.png"],
                            progress=False, num_workers=0)
    assert embedded.ok.all()
    panel = ClassifierPanel(demo, embedded, ["red circle", "blue star"], "basic", output_dir=tmp_path,
                            typing_delay=0)
    assert panel.status.value.startswith('<span style="color:#1a7f37">✔')  # applied and right: still ✔
    assert "so these templates give the same embeddings: use a real CLIP model to see templates matter" in panel.message
    panel.template_set.value = "imagenet7"
    assert "templates give the same embeddings" not in panel.message
    panel.language.value = "zh"
    panel.template_set.value = "basic"
    assert "所以这些模板给出相同的嵌入" in panel.message


# ---- item 8: what the demo model cannot know -------------------------------------------------------------

@pytest.fixture(scope="module")
def shapes_index(demo, shapes_folder):
    index = index_images(demo, [shapes_folder / c / "000.png" for c in ("red circle", "blue cross", "green star")],
                        progress=False, num_workers=0)
    assert len(index) == 3
    return index


def test_a_search_the_demo_model_cannot_read_is_warned_about(demo, shapes_index):
    found = class_warning_texts(lambda: search_text(shapes_index, demo, "a cat", top=2))
    assert len(found) == 1 and found[0].startswith(f"the demo {SMALL_WORLD}, so its answers for 'a cat' mean nothing")
    # the words around a colour and a shape are passed over by the model, not unknown to it
    for query in ("a photo of a red circle", "blue", "一张红色圆形的照片"):
        assert not [t for t in class_warning_texts(lambda: search_text(shapes_index, demo, query)) if SMALL_WORLD in t]


def test_duplicates_of_the_demo_model_say_it_cannot_tell_drawings_of_one_class_apart(demo, tiny_model, tmp_path):
    folder = write_shapes(tmp_path / "shapes", per_class=2, classes=["red circle", "blue star"])
    files = sorted(folder.rglob("*.png"))
    found = class_warning_texts(lambda: find_duplicates(files, demo, progress=False, num_workers=0))
    assert len(found) == 1 and "so it cannot tell two drawings of one class apart" in found[0]
    assert found[0].startswith(f"the demo {SMALL_WORLD}")
    assert not class_warning_texts(lambda: find_duplicates(files, tiny_model, progress=False, num_workers=0))


def test_duplicates_command_on_the_demo_model_warns_in_one_line(demo, tmp_path, capsys):
    folder = write_shapes(tmp_path / "shapes", per_class=2, classes=["red circle", "blue star"])
    assert main(["duplicates", str(folder), "--recursive", "--model", "demo", "--quiet", "--no-cache"]) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "drawings of one class" in line]
    assert len(lines) == 1 and lines[0].startswith("clipnb: warning: the demo model knows only coloured shapes")


def test_evaluate_warns_about_labels_the_demo_model_does_not_know(demo, tmp_path, capsys):
    folder = tmp_path / "labelled"
    for label, colour in (("cat", (200, 120, 40)), ("red circle", (230, 20, 20))):
        (folder / label).mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (40, 40), colour).save(folder / label / f"{i}.png")
    assert main(["evaluate", str(folder), "--model", "demo", "--out", str(tmp_path / "out"), "--quiet",
                 "--no-cache", "--no-figures"]) == 0
    captured = capsys.readouterr()
    assert f"clipnb: warning: the demo {SMALL_WORLD}, so its answers for 'cat' mean nothing" in captured.err
    # 2 images per class: no temperature, and the report says why
    assert "calibration not measured: class" in captured.out and "calibration: temperature" not in captured.out


def test_a_temperature_needs_five_labelled_images_of_each_class_to_be_fitted_on():
    head, embedded, labels = synthetic(rows_per_class=9, unreadable=0)  # half of 9 is 4 to fit on
    table = results_table(embedded, head)
    with pytest.raises(ValueError, match=r"class 'cat' has 4 labelled images to fit a temperature on \(and 3 more "
                                         r"classes\): a temperature needs at least 5 per class.*label 10 or more"):
        calibrate(table, labels)
    head, embedded, labels = synthetic(rows_per_class=10, unreadable=0)
    found = calibrate(results_table(embedded, head), labels)
    assert found.fitted == 4 * MIN_FIT_PER_CLASS
    scores = np.random.default_rng(0).normal(0, 0.3, (8, 2))
    with pytest.raises(ValueError, match="class in column 0 has 4 labelled images"):
        fit_temperature(scores, [0] * 4 + [1] * 4, 10.0)
    assert fit_temperature(np.vstack([scores, scores[:2]]), [0] * 5 + [1] * 5, 10.0) > 0


# ---- item 9: one BOM rule -------------------------------------------------------------------------------------

def test_every_csv_follows_one_bom_rule(tmp_path):
    from clipnb.tasks.summary import class_summary
    from clipnb.zeroshot.schema import localised

    head, embedded, _ = synthetic(rows_per_class=2, unreadable=0)
    results = results_table(embedded, head)
    bom = b"\xef\xbb\xbf"
    for lang in ("en", "zh"):
        written = [write_csv(localised(results, lang), tmp_path / lang / "classification.csv"),
                   write_csv(localised(class_summary(results), lang), tmp_path / lang / "class_summary.csv")]
        starts = {path.name: path.read_bytes().startswith(bom) for path in written}
        # Chinese headers need the BOM in Excel; English and ASCII is the same in every encoding
        assert starts == {"classification.csv": lang == "zh", "class_summary.csv": lang == "zh"}, (lang, starts)
    assert pd.read_csv(tmp_path / "zh" / "class_summary.csv", encoding="utf-8-sig").columns[0] == "类别"


# ---- item 9: the Chinese panel, completely Chinese ----------------------------------------------------------

def panel_texts(panel) -> list[str]:
    """Every text the panel shows: its status, export line, charts and table (tags, styles and data left out),
    and its controls' labels, placeholders and tooltips."""
    views = (panel.status, panel.export_status, panel.charts, panel.table_view, getattr(panel, "stale_label", None))
    texts = [view.value for view in views if view is not None]
    texts = [re.sub(r"<[^>]*>", " ", re.sub(r"<style>.*?</style>", " ", t, flags=re.S)) for t in texts]
    controls = (panel.class_list, panel.remove_class_button, panel.new_class, panel.template_set, panel.templates,
                panel.ensemble, panel.unknown, panel.shown, panel.language, panel.output_dir, panel.export_button)
    for control in controls:
        texts += [getattr(control, name, "") for name in ("description", "placeholder", "tooltip", "button")]
        texts += list(getattr(control, "tooltips", []))
    return [t for t in texts if t]


def english_words(texts, allowed) -> dict[str, str]:
    """ASCII words of two letters or more that are not allowed (class names, paths, model names), each with
    the first text it was found in."""
    found = {}
    for text in texts:
        for w in set(re.findall(r"[A-Za-z]{2,}", text)) - allowed:
            found.setdefault(w, text)
    return found


def test_the_chinese_panel_shows_no_english_words(demo, shapes_folder, tmp_path):
    from clipnb.ui.panel import ClassifierPanel

    from conftest import PHOTOS

    images = [shapes_folder / c / f"00{i}.png" for c in ("red circle", "blue star", "green square") for i in (0, 1)]
    embedded = embed_images(demo, images + PHOTOS[:3], progress=False, num_workers=0)
    assert embedded.ok.all()
    out = tmp_path / "exports"
    panel = ClassifierPanel(demo, embedded, ["red circle", "blue star", "green square"], "basic", output_dir=out,
                            typing_delay=0, lang="zh", max_shown=9)
    seen = panel_texts(panel)
    assert "所以这些模板给出相同的嵌入" in panel.message  # item 7, in Chinese
    actions = [
        lambda: panel.add_class("cat"),  # outside the demo's world: a warning, results still shown
        lambda: panel.add_class(""),
        lambda: panel.add_class(""),  # the same mistake again
        lambda: panel.add_class("red circle"),  # already listed
        lambda: panel.add_class("Red Circle"),  # listed in other letter case
        lambda: panel.remove_class([]),
        lambda: panel.remove_class(panel.classes),
        lambda: setattr(panel.unknown, "value", True),  # photos that fit no shape: "unknown"
        lambda: setattr(panel.ensemble, "value", "score"),
        lambda: setattr(panel.template_set, "value", "imagenet7"),
        lambda: panel.remove_class("cat"),
        lambda: setattr(panel.output_dir, "value", "  "),
        lambda: panel.export(),
        lambda: setattr(panel.output_dir, "value", str(out)),
        lambda: panel.export(),
        lambda: setattr(panel.shown, "value", ()),
    ]
    for action in actions:
        action()
        seen += panel_texts(panel)
    assert panel.results["prediction"].eq("unknown").any() and "未知" in " ".join(seen)
    assert panel.exported and "已导出" in panel.export_message
    assert "未添加类别: Red Circle 已作为 red circle 在列表中 (CLIP 不区分大小写)" in " ".join(seen)
    classes = {w for c in ("red circle", "blue star", "green square", "cat", "Red Circle") for w in c.split()}
    paths = set(re.findall(r"[A-Za-z]{2,}", " ".join(map(str, [out] + images + PHOTOS[:3] + panel.exported))))
    # model names (demo, ViT-B/32, CLIP), the ensembling methods' names as their toggle shows them, a
    # language's own name and a file format
    names = {"demo", "ViT", "CLIP", "embedding", "score", "English", "CSV"}
    found = english_words(seen, classes | paths | names)
    assert found == {}, "\n".join(f"{w}: {t}" for w, t in found.items())
    # the same panel in English says it in English (the check above can fail)
    panel.language.value = "en"
    assert "Classes" in english_words(panel_texts(panel), classes | paths | names)


def test_the_chinese_map_panel_shows_no_english_words(demo, shapes_folder, tmp_path):
    from clipnb import build_head, folder_labels, gather_images
    from clipnb.tasks.collection_map import embedding_map
    from clipnb.ui.map_panel import MapPanel

    classes = ["red circle", "blue star", "green square", "yellow triangle", "purple hexagon", "black cross"]
    embedded = embed_images(demo, [p for c in classes for p in gather_images(shapes_folder / c)], progress=False,
                            num_workers=0)
    results = results_table(embedded, build_head(demo, classes))
    table = embedding_map(embedded, results, folder_labels(embedded.records["path"], classes))
    out = tmp_path / "map exports"
    panel = MapPanel(table, output_dir=out, lang="zh")

    def texts():
        views = [panel.status, panel.hover_view, panel.legend_view, panel.selection_view]
        found = [re.sub(r"<[^>]*>", " ", re.sub(r"<style>.*?</style>", " ", v.value, flags=re.S)) for v in views]
        return found + [c.description for c in (panel.colour, panel.output_dir, panel.export_button)] + [
            panel.export_button.tooltip] + [label for label, _ in panel.colour.options]

    seen = texts()
    for action in (lambda: panel.hover(3), lambda: panel.select([0, 1, 2]), lambda: setattr(panel.colour, "value", "cluster"),
                   lambda: setattr(panel.output_dir, "value", " "), lambda: panel.export(),
                   lambda: setattr(panel.output_dir, "value", str(out)), lambda: panel.export(),
                   lambda: panel.select([])):
        action()
        seen += texts()
    assert panel.exported and "已导出" in panel.message and "已选择3张图像" in " ".join(seen)
    allowed = ({w for c in classes for w in c.split()} | {"CSV", "PNG", "SVG", "PDF", "demo"}
               | set(re.findall(r"[A-Za-z]{2,}", " ".join(map(str, [out] + list(table["path"]) + panel.exported)))))
    found = english_words(seen, allowed)
    assert found == {}, "\n".join(f"{w}: {t}" for w, t in found.items())


def test_a_failed_callback_of_the_chinese_panel_says_what_failed_in_chinese(demo, shapes_folder, tmp_path,
                                                                            monkeypatch):
    from clipnb.ui.panel import ClassifierPanel

    embedded = embed_images(demo, [shapes_folder / "red circle" / "000.png"], progress=False, num_workers=0)
    panel = ClassifierPanel(demo, embedded, ["red circle", "blue star"], "basic", output_dir=tmp_path, lang="zh")

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("clipnb.ui.panel.results_table", broken)
    panel.ensemble.value = "score"  # a widget callback: the failure goes to the status line
    # the exception's own type and words stay as Python gives them
    assert panel.error.startswith("切换集成方式失败: RuntimeError: boom; 仍显示 2个类别 × 3个模板")
    assert panel.error.endswith(" (上次有效的设置)")


def test_the_chinese_panel_says_in_chinese_that_an_english_model_cannot_read_chinese_classes(tiny_model, tmp_path):
    import dataclasses

    from clipnb.zeroshot.scoring import class_warnings
    from clipnb.ui.panel import ClassifierPanel

    tiny_model = dataclasses.replace(tiny_model, languages=("en",))  # as openai-clip's English-only models say

    english = class_warnings(tiny_model, ["猫", "狗"], ["一张{}的照片"])
    assert len(english) == 1 and "was trained on English text only" in english[0]  # the command line's words
    chinese = class_warnings(tiny_model, ["猫", "狗"], ["一张{}的照片"], lang="zh")
    assert chinese == [f"{tiny_model.name} 模型只用英文文本训练过, 所以它对给出的中文文本 (类别、模板或文本) 的回答没有意义: "
                       "请使用懂中文的模型, 例如 cn_clip:ViT-B-16, 或用英文书写"]
    Image.new("RGB", (32, 32), (200, 30, 30)).save(tmp_path / "red.png")
    panel = ClassifierPanel(tiny_model, embed_images(tiny_model, [tmp_path / "red.png"], progress=False, num_workers=0),
                            ["猫", "狗"], ["一张{}的照片"], output_dir=tmp_path, lang="zh")
    assert chinese[0] in panel.message
