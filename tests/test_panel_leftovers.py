"""The panel's leftovers of issue 24 (items 2 and 9): the working line counts the prompts encoded so far, and
the Chinese panel words the reasons of a refused class or template in Chinese."""
import html
import re

import pytest

from clipnb.zeroshot import scoring
from clipnb.zeroshot.prompts import TEMPLATE_SETS
from clipnb.zeroshot.scoring import encode_texts
from clipnb.ui.panel import ClassifierPanel

from test_demo_honesty import english_words, panel_texts


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    from conftest import colour_pngs

    return colour_pngs(tmp_path_factory.mktemp("leftover-images"))


# ---- item 2: progress while the text tower runs ----------------------------------------------------------------

def test_encode_texts_reports_each_batch_and_nothing_when_remembered(tiny_model, monkeypatch):
    tiny_model._text_memo.clear()
    monkeypatch.setattr(scoring, "TEXT_BATCH", 4)  # several batches from a few prompts
    calls = []
    prompts = [f"a photo of a thing number {i}" for i in range(10)]
    encode_texts(tiny_model, prompts + prompts[:3], progress=lambda done, total: calls.append((done, total)))
    assert calls == [(4, 10), (8, 10), (10, 10)]  # the repeats are encoded once
    calls.clear()
    encode_texts(tiny_model, prompts, progress=lambda done, total: calls.append((done, total)))
    assert calls == []  # all remembered: no pass through the text tower to report


def test_the_working_line_counts_the_prompts_encoded_and_says_ok_only_at_the_end(tiny_model, image_folder,
                                                                                 tmp_path, monkeypatch):
    tiny_model._text_memo.clear()
    panel = ClassifierPanel.from_folder(tiny_model, image_folder, ["red", "blue"], "basic",
                                        output_dir=tmp_path / "out", typing_delay=0)
    monkeypatch.setattr(scoring, "TEXT_BATCH", 16)
    seen = []
    panel.status.observe(lambda change: seen.append(change["new"]), names="value")
    panel.template_set.value = "imagenet80"  # 2 classes x 80 templates, none encoded yet: 10 batches of 16
    texts = [re.sub(r"<[^>]*>", "", value) for value in seen]
    counts = [tuple(map(int, m.groups())) for t in texts if (m := re.search(r"… (\d+) of (\d+)$", t))]
    assert counts == [(done, 160) for done in range(16, 161, 16)], texts
    assert texts[0] == "⏳ working: encoding 160 prompts for 2 classes…"
    assert all(t.startswith("⏳") for t in texts[:-1]) and texts[-1].startswith("✔")
    assert sum("✔" in t for t in texts) == 1


def test_the_chinese_working_line_counts_in_chinese(tiny_model, image_folder, tmp_path, monkeypatch):
    tiny_model._text_memo.clear()
    panel = ClassifierPanel.from_folder(tiny_model, image_folder, ["red", "blue"], "basic",
                                        output_dir=tmp_path / "out", typing_delay=0, lang="zh")
    monkeypatch.setattr(scoring, "TEXT_BATCH", 4)
    seen = []
    panel.status.observe(lambda change: seen.append(re.sub(r"<[^>]*>", "", change["new"])), names="value")
    panel.add_class("green")
    assert [t for t in seen if "已完成" in t] == ["⏳ 正在处理: 为1个类别编码3个提示词… 已完成 3/3"]
    assert seen[-1].startswith("✔")


def test_prompts_read_from_the_disk_cache_count_as_done(tiny_model, image_folder, cache, tmp_path, monkeypatch):
    tiny_model._text_memo.clear()
    encode_texts(tiny_model, ["a photo of a blue"], cache=cache)
    tiny_model._text_memo.clear()  # a new session: the model remembers nothing, the disk cache has 1 prompt
    monkeypatch.setattr(scoring, "TEXT_BATCH", 2)
    panel = ClassifierPanel.from_folder(tiny_model, image_folder, ["red"], "basic", output_dir=tmp_path / "out",
                                        typing_delay=0, cache=cache)
    seen = []
    panel.status.observe(lambda change: seen.append(re.sub(r"<[^>]*>", "", change["new"])), names="value")
    panel.add_class("blue")  # 3 new prompts for the model, 1 of them on disk: 2 through the text tower
    assert seen[0] == "⏳ working: encoding 3 prompts for 1 class…"
    assert seen[1] == "⏳ working: encoding 3 prompts for 1 class… 3 of 3", seen  # not "2 of 2" under "3"


# ---- item 9: the reasons of a refused class or template, in the panel's language ---------------------------

def test_the_chinese_panel_gives_its_reasons_in_chinese(demo, shapes_folder, tmp_path):
    from clipnb.embed.runner import embed_images

    classes = ["red circle", "blue star", "green square"]
    images = [shapes_folder / c / f"00{i}.png" for c in classes for i in (0, 1)]
    embedded = embed_images(demo, images, progress=False, num_workers=0)
    panel = ClassifierPanel(demo, embedded, classes, "basic", output_dir=tmp_path / "out", typing_delay=0, lang="zh")
    long_class = " ".join(["red circle"] * demo.context_length)  # more tokens than the model's context
    bad_templates = ["{}{}", "no slot here", "a {} again\na {} again"]
    seen, failures = panel_texts(panel), []
    actions = [lambda: panel.add_class(long_class), lambda: panel.remove_class(long_class),
               lambda: panel.add_class(""), lambda: panel.add_class("purple star, Purple Star")]
    actions += [lambda t=t: setattr(panel.templates, "value", t) for t in bad_templates]
    actions += [lambda: setattr(panel.templates, "value", "")]
    for action in actions:
        action()
        failures.append(panel.error)
        seen += [html.unescape(t) for t in panel_texts(panel)]  # the status line escapes quotes
    assert all(failures[i] for i in (0, 2, 3, 4, 5, 6, 7)), failures  # each refused, with a reason
    text = " ".join(seen)
    for said in ("有", "超过了模型的上下文长度", "出现了两次", "中有2个 '{}'", "中没有放类别名称的 '{}'", "没有给出模板"):
        assert said in text, said
    allowed = ({w for c in classes + [long_class, "purple star", "Purple Star"] for w in c.split()}
               | set(re.findall(r"[A-Za-z]{2,}", " ".join(bad_templates + TEMPLATE_SETS["basic"])))
               | set(re.findall(r"[A-Za-z]{2,}", " ".join(map(str, [tmp_path] + images))))
               | {"demo", "CLIP", "embedding", "score", "English", "CSV"})  # as test_demo_honesty allows
    found = english_words(seen, allowed)
    assert found == {}, "\n".join(f"{w}: {t}" for w, t in found.items())
    # the same mistakes in English keep the English wording the command line and Python use
    panel.language.value = "en"
    panel.templates.value = "{}{}"
    assert "template '{}{}' has 2 '{}'; put exactly one where the class name goes" in panel.error


def test_the_map_hover_names_an_image_that_fits_no_class_in_the_panel_language(demo, shapes_folder, tmp_path):
    from clipnb import build_head, gather_images
    from clipnb.zeroshot.results import results_table
    from clipnb.embed.runner import embed_images
    from clipnb.tasks.collection_map import embedding_map
    from clipnb.ui.map_panel import MapPanel
    from clipnb.zeroshot.outliers import UNKNOWN

    from conftest import PHOTOS

    classes = ["red circle", "blue star", "green square"]
    paths = [p for c in classes for p in gather_images(shapes_folder / c)][:12] + PHOTOS[:4]
    embedded = embed_images(demo, paths, progress=False, num_workers=0)
    results = results_table(embedded, build_head(demo, classes), unknown=True)
    table = embedding_map(embedded, results)
    unknown = [i for i, value in enumerate(table["prediction"]) if value == UNKNOWN]
    assert unknown  # photos fit none of the demo's shapes
    for lang, name in (("zh", "未知"), ("en", "unknown")):
        panel = MapPanel(table, output_dir=tmp_path / lang, lang=lang)
        panel.hover(unknown[0])
        assert f"<b>{name}</b>" in panel.hover_view.value
        shown = re.sub(r"<[^>]*>", " ", panel.hover_view.value).replace(str(table["path"].iloc[unknown[0]]), "")
        assert ("unknown" in shown) == (lang == "en"), shown


# ---- item 2: an export under way is not said with ✔ ------------------------------------------------------------

def test_an_export_under_way_is_said_working_not_done(tiny_model, image_folder, tmp_path, monkeypatch):
    import clipnb.ui.base as widgets  # the panels' shared export start (PanelBase._run_export)

    panel = ClassifierPanel.from_folder(tiny_model, image_folder, ["red", "blue"], "basic",
                                        output_dir=tmp_path / "out", typing_delay=0)
    while_writing = []

    def run_export(job, wait, guard):  # the moment the files are being written
        while_writing.append(panel.export_status.value)
        return job()

    monkeypatch.setattr(widgets, "run_export", run_export)
    panel.export(wait=False)
    assert while_writing[0].count("⏳") == 1 and "✔" not in while_writing[0]  # was "✔ exporting…"
    assert panel.export_status.value.startswith('<span style="color:#1a7f37">✔') and panel.exported
