"""The panels' words in both languages and the "New class" box (issue 24, walk-through findings, part R):
a language switch words again everything shown (a ⚠, the export line); the Chinese panel and map show no
English word in any state; a refused class comes back selected, so typing replaces it; sentences after a full
stop start with a capital letter."""
import errno
import html
import re

import pytest
from PIL import Image

from clipnb import build_head
from clipnb.zeroshot.results import results_table
from clipnb.tasks.collection_map import embedding_map
from clipnb.ui.map_panel import MapPanel
from clipnb.zeroshot.outliers import check_unknown
from clipnb.zeroshot.prompts import PromptError
from clipnb.ui.panel import ENTRY_JS, ClassifierPanel
from clipnb.words import LANGUAGES, WORDS, sentences

from test_browser import require_browser  # puts scripts/ on the path

from browser_session import chromium_page  # noqa: E402

COLOURS = {"red": (230, 20, 20), "blue": (20, 40, 230), "green": (30, 190, 40), "white": (250, 250, 250),
           "black": (5, 5, 5), "grey": (128, 128, 128), "yellow": (240, 230, 20), "purple": (128, 30, 160)}
# Names, not words of a language: what the Chinese panel may show in Latin letters besides the user's own
# class names, templates and paths
# names and codes said as they are in every language (an error's errno name, such as ENOTDIR, is one)
PROPER_NAMES = {"CLIP", "CSV", "PNG", "SVG", "PDF", "JSON", "ImageNet", "English", "SigLIP", "UMAP",
                *errno.errorcode.values()}


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("words-images")
    for name, colour in COLOURS.items():  # 8 images: enough for the outlier rule to have a typical score
        Image.new("RGB", (40, 30), colour).save(folder / f"{name}.png")
    return folder


def panel_in(tiny_model, image_folder, out, lang="en", classes=("red", "blue")) -> ClassifierPanel:
    return ClassifierPanel.from_folder(tiny_model, image_folder, list(classes), "basic", output_dir=out,
                                       typing_delay=0, lang=lang)


def visible(value: str) -> str:
    """The text a page shows of an HTML value: tags, styles and the folded (closed) details' body left out."""
    value = re.sub(r"<style>.*?</style>|<pre[^>]*>.*?</pre>", " ", value, flags=re.S)
    return html.unescape(re.sub(r"<[^>]*>", " ", value))


def english_words(texts, allowed) -> dict[str, str]:
    """ASCII words of 3 letters or more that are not allowed, each with the first text it was found in; paths
    (anything with a slash) and file names left out."""
    found = {}
    for text in texts:
        text = re.sub(r"\S*/\S*|[\w-]+\.(?:png|svg|pdf|csv|json)\b", " ", text)
        for w in set(re.findall(r"[A-Za-z]{3,}", text)) - allowed:
            found.setdefault(w, text)
    return found


def shown_texts(panel) -> list[str]:
    """What a panel shows: its views' visible text, and its controls' labels, placeholders and tooltips."""
    views = (panel.status, panel.export_status, panel.stale_label, panel.charts, panel.table_view)
    controls = (panel.class_list, panel.remove_class_button, panel.new_class, panel.template_set, panel.templates,
                panel.ensemble, panel.unknown, panel.shown, panel.language, panel.output_dir, panel.export_button)
    texts = [visible(v.value) for v in views]
    for control in controls:
        texts += [getattr(control, name, "") for name in ("description", "placeholder", "tooltip", "button")]
        texts += list(getattr(control, "tooltips", []))
    return [t for t in texts if t]


def choice_labels(*controls) -> list[str]:
    """The labels a page shows for the choices of selection controls."""
    return [option[0] if isinstance(option, tuple) else str(option) for c in controls for option in c.options]


# ---- 1: a language switch words again everything shown -----------------------------------------------------

def test_a_language_switch_rewords_the_error_and_the_export_line(tiny_model, image_folder, tmp_path):
    panel = panel_in(tiny_model, image_folder, tmp_path / "out")
    assert panel.export() and panel.export_message.startswith("exported 9 files")
    panel.templates.value = "oops"  # a bad entry after the export: ⚠ in the status line, the export line stays
    assert "has no '{}'" in panel.error
    panel.language.value = "zh"
    assert "中没有放类别名称的 '{}'" in panel.error and "仍显示 2个类别 × 3个模板" in panel.error
    assert panel.export_message.startswith("已导出 9个文件 (2个类别 × 3个模板, 集成方式 嵌入平均) 到 ")
    assert "已导出" in visible(panel.export_status.value) and "中没有放类别名称" in visible(panel.status.value)
    panel.templates.value = "oops again {}{}"  # a failed export and another ⚠, said in Chinese, then English
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    panel.output_dir.value = str(blocker)
    assert panel.export() == [] and panel.export_error.startswith(f"导出到 {blocker}")
    # clipnb's own reason (ExportError.worded) is said in Chinese on the line itself, with nothing folded
    assert "输出路径中有一部分是文件" in panel.export_error and "<details>" not in panel.export_status.value
    panel.language.value = "en"
    assert panel.error.startswith("template 'oops again {}{}' has 2 '{}'") and "still showing 2 classes" in panel.error
    assert panel.export_error.startswith(f"export to {blocker}") and "is a file, not a folder" in panel.export_error
    assert "<details>" not in panel.export_status.value  # in English the reason is on the line itself


def test_a_failed_callback_is_reworded_with_its_fold(tiny_model, image_folder, tmp_path, monkeypatch):
    panel = panel_in(tiny_model, image_folder, tmp_path / "out")

    def boom():
        raise RuntimeError("boom")

    monkeypatch.setattr(panel, "refresh", boom)
    panel.ensemble.value = "score"  # the callback fails: ⚠ with the traceback folded under "details"
    assert panel.error.startswith("switching the ensembling failed: RuntimeError: boom")
    assert "<summary>details</summary>" in panel.status.value
    panel.language.value = "zh"
    assert panel.error.startswith("切换集成方式失败: RuntimeError: boom; 仍显示 2个类别 × 3个模板")
    assert "<summary>详细信息</summary>" in panel.status.value and "Traceback" in panel.status.value


# ---- 2: no English word in the Chinese panel or map, in any state -------------------------------------------

def test_the_chinese_panel_shows_no_english_word_in_any_state(tiny_model, image_folder, tmp_path):
    tiny_model._text_memo.clear()  # new prompts: the working line and the stale mark are shown
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the export folder should go")
    panel = panel_in(tiny_model, image_folder, tmp_path / "out", lang="zh")
    seen = []
    for view in (panel.status, panel.export_status, panel.stale_label, panel.charts, panel.table_view):
        view.observe(lambda change: seen.append(visible(change["new"])), names="value")
    states = {}

    def state(name, action):
        action()
        states[name] = panel.message
        seen.extend(shown_texts(panel))
        seen.extend(choice_labels(panel.ensemble, panel.template_set, panel.language))

    state("ok", lambda: None)
    state("working", lambda: panel.add_class("green"))  # 3 new prompts: ⏳, stale, then ✔
    state("refused empty", lambda: panel.add_class(""))
    state("refused again", lambda: panel.add_class(""))
    state("refused listed", lambda: panel.add_class("Red"))
    state("bad template", lambda: setattr(panel.templates, "value", "oops"))  # and the set becomes custom
    state("no template", lambda: setattr(panel.templates, "value", ""))
    state("good templates", lambda: setattr(panel.templates, "value", "a photo of a {}\na drawing of a {}"))
    state("score", lambda: setattr(panel.ensemble, "value", "score"))
    state("export ok", lambda: panel.export())
    state("export failed", lambda: (setattr(panel.output_dir, "value", str(blocker)), panel.export()))
    state("no output folder", lambda: (setattr(panel.output_dir, "value", ""), panel.export()))
    state("class unknown", lambda: panel.add_class("unknown"))
    state("unknown refused", lambda: setattr(panel.unknown, "value", True))
    state("unknown back off", lambda: setattr(panel.unknown, "value", False))
    state("removed", lambda: panel.remove_class("unknown"))
    state("outliers unknown", lambda: setattr(panel.unknown, "value", True))
    state("class 未知 refused", lambda: panel.add_class("未知"))
    state("未知 removed", lambda: panel.remove_class("未知"))
    state("none selected", lambda: panel.remove_class([]))
    state("none left", lambda: panel.remove_class(panel.classes))
    state("one class", lambda: panel.remove_class(["blue", "green"]))
    assert "正在处理: 为1个类别编码3个提示词" in " ".join(seen) and "已过期" in " ".join(seen)
    assert "有一个类别名为 unknown" in states["unknown refused"] and "有一个类别名为 未知" in " ".join(seen)
    assert "自定义" in seen and "嵌入平均" in seen and "得分平均" in seen and "只有一个类别" in states["one class"]
    for name in ("refused empty", "refused listed", "bad template", "unknown refused", "none left"):
        assert panel.error or states[name], name
    allowed = (set(COLOURS) | {"Red", "unknown", "oops", "photo", "drawing"} | PROPER_NAMES
               | set(re.findall(r"[A-Za-z]{3,}", f"{tmp_path} {image_folder} {tiny_model.name}")))
    found = english_words(seen, allowed)
    assert found == {}, "\n".join(f"{w}: {t}" for w, t in found.items())


def test_the_chinese_map_shows_no_english_word(tiny_model, image_folder, tmp_path):
    from clipnb.embed.runner import embed_images
    from clipnb.data.images import gather_images

    embedded = embed_images(tiny_model, gather_images(image_folder), progress=False, num_workers=0)
    results = results_table(embedded, build_head(tiny_model, ["red", "blue"], warn=False))
    table = embedding_map(embedded, results)
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the export folder should go")
    panel = MapPanel(table, output_dir=tmp_path / "maps", lang="zh")
    seen = []
    for view in (panel.status, panel.legend_view, panel.hover_view, panel.selection_view):
        view.observe(lambda change: seen.append(visible(change["new"])), names="value")
    seen += [visible(v.value) for v in (panel.status, panel.legend_view, panel.hover_view, panel.selection_view)]
    for choice in panel.colour.options:
        panel.colour.value = choice[1] if isinstance(choice, tuple) else choice
    panel.hover(0)
    panel.select([0, 1, 2])
    assert panel.export()
    panel.output_dir.value = str(blocker)
    assert panel.export() == [] and "输出路径中有一部分是文件" in panel.error
    seen += choice_labels(panel.colour) + [panel.colour.description, panel.output_dir.description,
                                           panel.export_button.description, panel.export_button.tooltip]
    allowed = (set(COLOURS) | PROPER_NAMES
               | set(re.findall(r"[A-Za-z]{3,}", f"{tmp_path} {image_folder} {tiny_model.name}")))
    found = english_words(seen, allowed)
    assert found == {}, "\n".join(f"{w}: {t}" for w, t in found.items())


def test_a_class_named_unknown_in_any_language_is_refused_beside_unknown():
    for name in ("unknown", "Unknown", "未知"):
        with pytest.raises(PromptError) as refused:
            check_unknown(["red", name], unknown=True)
        assert str(refused.value).startswith(f"a class is named {name!r}, so outliers cannot be reported")
        assert refused.value.said("zh").startswith(f"有一个类别名为 {name}, 所以无法把离群图像报告为 '未知'")
    check_unknown(["red", "未知"], unknown=False)  # without unknown, a class of that name is a class


# ---- 3: a refused class comes back selected: typing replaces it ----------------------------------------------

ENTRY_PAGE = """
const state = {value: "", placeholder: "e.g. red circle", description: "New class", tooltip: "", button: "Add class"};
const listeners = {};
window.sent = [];
const model = {get: (k) => state[k], set: (k, v) => { state[k] = v; }, save_changes: () => {},
               send: (message) => window.sent.push(message), on: (event, f) => (listeners[event] ||= []).push(f)};
window.restore = (text) => listeners["msg:custom"].forEach((f) => f({do: "restore", value: text}));
window.change = (name, value) => { state[name] = value; (listeners[`change:${name}`] || []).forEach((f) => f()); };
render({model, el: document.getElementById("entry")});
window.ready = true;
"""


@pytest.fixture()
def entry_page(tmp_path):
    """The ClassEntry's own script in a real browser, its model a stand-in that records what it sends."""
    require_browser()
    with chromium_page(tmp_path / "profile", width=800, height=200) as page:
        page.set_content('<div id="entry" style="width:600px"></div>')
        page.add_script_tag(content=ENTRY_JS + ENTRY_PAGE, type="module")
        page.wait_for_function("() => window.ready === true")
        yield page


@pytest.mark.browser
@pytest.mark.parametrize("how", ["Enter", "button"])
def test_a_refused_class_comes_back_selected_so_typing_replaces_it(entry_page, how):
    page, box = entry_page, entry_page.locator("input")
    box.click()
    page.keyboard.type("purple star", delay=0)
    if how == "Enter":
        page.keyboard.press("Enter")
    else:
        page.locator("button").click()
    assert page.evaluate("() => window.sent") == [{"event": "submit", "value": "purple star"}]
    assert box.input_value() == ""
    page.evaluate("() => window.restore('purple star')")  # the kernel refused it: back into the box
    assert box.input_value() == "purple star"
    assert page.evaluate("() => document.activeElement === document.querySelector('input')")
    assert page.evaluate("() => { const i = document.querySelector('input');"
                         " return [i.selectionStart, i.selectionEnd]; }") == [0, len("purple star")]
    assert "solid" in box.evaluate("(i) => i.style.outline")  # marked, until the next key
    page.keyboard.type("Purple Star", delay=0)
    assert box.input_value() == "Purple Star"  # was "purple starPurple Star"
    assert box.evaluate("(i) => i.style.outline") == ""


@pytest.mark.browser
def test_the_box_shows_its_words_in_the_new_language(entry_page):
    """The panel sets the label, placeholder, tooltip and button of the box one after another: each shows
    (the walk-through saw "Add class" in the Chinese panel: the button's words did not reach the page)."""
    page = entry_page
    for name, value in (("description", "新类别"), ("placeholder", "例如 红色圆形"), ("button", "添加类别"),
                        ("tooltip", "按回车或点击 添加类别 即可添加")):
        page.evaluate("([name, value]) => window.change(name, value)", [name, value])
    assert page.locator("button").inner_text() == "添加类别" and page.locator("label").inner_text() == "新类别"
    assert page.locator("input").get_attribute("placeholder") == "例如 红色圆形"
    assert page.locator("input").get_attribute("title") == "按回车或点击 添加类别 即可添加"


# ---- 4: sentences after a full stop start with a capital --------------------------------------------------

def test_sentences_after_a_full_stop_start_with_a_capital(tiny_model, image_folder, tmp_path):
    panel = panel_in(tiny_model, image_folder, tmp_path / "out", classes=["red"])  # one class: a warning follows
    assert ". Only one class ('red')" in panel.message, panel.message
    assert not re.search(r"[.!?] [a-z]", panel.message), panel.message
    panel.language.value = "zh"
    assert re.search(r"\(未重新编码图像[^)]*\)。只有一个类别 \(red\)", panel.message), panel.message
    assert sentences(["the demo model", "", "only one class"]) == "The demo model. Only one class"
    assert sentences(["demo 模型", "只有"], "zh") == "demo 模型。只有"  # a model name keeps its letters
    for key, texts in WORDS.items():  # the catalogue's own sentences
        for lang in LANGUAGES:
            assert not re.search(r"(?<!e\.g)[.!?] [a-z]", texts[lang]), (key, lang, texts[lang])
