"""The panel's leftovers of issue 24 (items 2 and 9): the working line counts the prompts encoded so far, and
the Chinese panel words the reasons of a refused class or template in Chinese."""
import re

import pytest
from PIL import Image

from clipnb import scoring
from clipnb.scoring import encode_texts
from clipnb.widgets import ClassifierPanel

from test_demo_honesty import english_words, panel_texts


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("leftover-images")
    for name, colour in {"red": (230, 20, 20), "blue": (20, 40, 230), "green": (30, 190, 40)}.items():
        Image.new("RGB", (40, 30), colour).save(folder / f"{name}.png")
    return folder


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
