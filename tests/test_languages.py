"""Chinese as a first-class language: the zh template sets, Chinese class names through every door (Python,
command line, CSV and panel exports), each family's `ClipModel.languages`, and the language guard's warning."""
import dataclasses
import json
import warnings

import pandas as pd
import pytest

import clipnb
from clipnb import TEMPLATE_SETS, class_warnings, resolve_templates
from clipnb.cli import build_parser, main
from clipnb.models.languages import language_warnings, text_language, text_languages
from clipnb.models.loading import MULTILINGUAL
from clipnb.zeroshot.prompts import BASIC_TEMPLATES, ZH_PHOTO_TEMPLATES, ZH_TEMPLATES, build_prompts, template_sets
from clipnb.zeroshot.schema import prob_column

from conftest import TEST_IMAGES

CHINESE_MODELS = ("cn_clip:ViT-B-16", "hf:OFA-Sys/chinese-clip-vit-base-patch16")


@pytest.fixture()
def official(tiny_checkpoint, monkeypatch):
    """load_model("ViT-B/32") through the openai family's own loader, its official download replaced by the
    tiny checkpoint: an English-only model named as the real one, without the network."""
    import clipnb.models.families.openai as openai_family

    monkeypatch.setattr(openai_family, "_fetch_official", lambda name, root: tiny_checkpoint)
    return clipnb.load_model("ViT-B/32", device="cpu")


def like(model, languages, name=None):
    """The same weights, said to know `languages`."""
    return dataclasses.replace(model, languages=languages, name=name or model.name)


def language_lines(messages):
    """The language guard's sentences among warnings (the demo model's vocabulary has its own)."""
    return [m for m in messages if "trained on" in m]


# ---- template sets in Chinese ---------------------------------------------------------------------------

def test_the_chinese_template_sets_load_fill_and_are_listed():
    assert resolve_templates("zh") == ["一张{}的照片", "一张{}的图片", "一幅{}的图像"] == ZH_TEMPLATES
    assert len(ZH_TEMPLATES) == len(BASIC_TEMPLATES)  # the article's three, in Chinese
    photo = resolve_templates("zh_photo")
    assert photo == ZH_PHOTO_TEMPLATES and 15 <= len(photo) <= 20 and len(set(photo)) == len(photo)
    assert "一张模糊的{}的照片" in photo and "一张{}的特写照片" in photo
    assert all(text_language(t) == "zh" for t in ZH_TEMPLATES + ZH_PHOTO_TEMPLATES)
    assert build_prompts(["猫", "red circle"], ZH_TEMPLATES)[0] == ["一张猫的照片", "一张猫的图片", "一幅猫的图像"]
    assert build_prompts(["猫"], ZH_TEMPLATES)[0][0] == "一张猫的照片"
    assert build_prompts(["red circle"], ["一张{}的照片"]) == [["一张red circle的照片"]]
    assert list(TEMPLATE_SETS)[-2:] == ["zh", "zh_photo"]
    assert set(template_sets(["zh", "zh_photo"])) == {"zh", "zh_photo"}
    assert "zh" not in template_sets()  # "every set" compares the English ones: see CHINESE_SETS
    helps = build_parser()._subparsers._group_actions[0].choices["classify"].format_help()
    assert "zh," in helps and "zh_photo" in helps and "一张{}的照片" in helps


def test_chinese_class_names_are_checked_like_any_other():
    spec = clipnb.prompt_spec(["猫", "狗", "红色圆形"], "zh")
    assert spec.classes == ("猫", "狗", "红色圆形") and spec.templates == tuple(ZH_TEMPLATES)
    with pytest.raises(clipnb.PromptError, match="class '猫、狗' holds commas"):
        clipnb.prompt_spec(["猫、狗"], "zh")
    with pytest.raises(clipnb.PromptError, match="class '猫' is given twice"):
        clipnb.prompt_spec(["猫", " 猫 "], "zh")


# ---- how the prompts' language is told ----------------------------------------------------------------

@pytest.mark.parametrize("text, language", [
    ("一张猫的照片", "zh"), ("a photo of a 猫", "zh"), ("一张red circle的照片", "zh"), ("𠀀", "zh"),
    ("a photo of a cat", "en"), ("café", "en"), ("2024 🙂", None), ("", None)])
def test_text_language(text, language):
    assert text_language(text) == language


def test_text_languages_each_once_in_order():
    assert text_languages(["a cat", "一只猫", "a dog", "42"]) == ["en", "zh"]
    assert text_languages(["42"]) == []


# ---- each family says what its model knows ----------------------------------------------------------------

def test_openai_family_languages(official, tiny_model, demo):
    assert official.name == "ViT-B/32" and official.languages == ("en",)
    assert tiny_model.languages is None  # a bare checkpoint file: unknown
    assert demo.languages is not None and "en" in demo.languages


def test_open_clip_family_languages(tmp_path):
    import open_clip

    from clipnb.models.families.openclip import languages
    from family_models import save_open_clip_model

    rules = {(arch, tag): languages(arch, arch, tag, open_clip.get_model_config(arch) or {})
             for arch, tag in open_clip.list_pretrained()}
    assert rules[("ViT-B-32", "laion2b_s34b_b79k")] == ("en",) and rules[("ViT-B-16-SigLIP", "webli")] == ("en",)
    assert rules[("ViT-B-32-quickgelu", "openai")] == ("en",)
    for arch, tag in [("xlm-roberta-base-ViT-B-32", "laion5b_s13b_b90k"), ("nllb-clip-base", "v1"),
                      ("ViT-B-16-SigLIP-i18n-256", "webli"), ("ViT-B-16-SigLIP2", "webli"),
                      ("ViT-H-14-worldwide", "metaclip2_worldwide")]:
        assert rules[(arch, tag)] == (MULTILINGUAL,), arch
    assert set(rules.values()) == {("en",), (MULTILINGUAL,)}
    config = open_clip.get_model_config("ViT-B-32")
    assert languages("ViT-B-32", "ViT-B-32", "mine.pt", config) is None  # a weights file: unknown
    assert languages("ViT-B-32", "ViT-B-32", "random", config) is None
    assert languages("hf-hub:timm/ViT-B-16-SigLIP2", "hf-hub:timm/ViT-B-16-SigLIP2", None, {}) == (MULTILINGUAL,)
    xlm = {"text_cfg": {"hf_tokenizer_name": "xlm-roberta-base"}}
    assert languages("local-dir:/models/mine", "local-dir:/models/mine", None, xlm) == (MULTILINGUAL,)
    name, _ = save_open_clip_model(tmp_path / "oc")
    assert clipnb.load_model(f"open_clip:{name}", device="cpu").languages is None  # its config says nothing


def test_hf_family_languages(tmp_path):
    from transformers import AltCLIPConfig, CLIPConfig, SiglipConfig, Siglip2Config

    from clipnb.models.families.huggingface import languages
    from family_models import save_hf_chinese_clip_model, save_hf_clip_model

    assert languages(CLIPConfig(), "openai/clip-vit-base-patch32") == ("en",)
    assert languages(AltCLIPConfig(), "BAAI/AltCLIP") == (MULTILINGUAL,)
    assert languages(Siglip2Config(), "google/siglip2-base-patch16-224") == (MULTILINGUAL,)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        siglip = SiglipConfig()
    assert languages(siglip, "google/siglip-base-patch16-224") == ("en",)
    assert languages(siglip, "google/siglip-base-patch16-256-multilingual") == (MULTILINGUAL,)
    siglip.text_config.vocab_size = 250_000  # a save_pretrained copy of the multilingual one: its config says
    assert languages(siglip, "/models/mine") == (MULTILINGUAL,)
    assert clipnb.load_model(f"hf:{save_hf_clip_model(tmp_path / 'clip')}", device="cpu").languages == ("en",)
    chinese = clipnb.load_model(f"hf:{save_hf_chinese_clip_model(tmp_path / 'cn')}", device="cpu")
    assert chinese.languages == ("zh", "en")
    assert language_warnings(chinese, ["一张猫的照片", "a photo of a cat"]) == []


# ---- the guard ------------------------------------------------------------------------------------------

def test_chinese_prompts_to_an_english_model_warn_once_with_a_model_that_knows_chinese(official):
    [text] = class_warnings(official, ["猫", "狗"], BASIC_TEMPLATES)
    assert text.startswith("the ViT-B/32 model was trained on English text only, so its answers for the Chinese")
    assert all(model in text for model in CHINESE_MODELS) and "--model cn_clip:ViT-B-16" in text
    assert "\n" not in text
    # a Chinese template with English classes is Chinese too, and so is one Chinese class among English ones
    assert class_warnings(official, ["cat", "dog"], ZH_TEMPLATES) == [text]
    assert class_warnings(official, ["cat", "猫"], BASIC_TEMPLATES) == [text]
    assert class_warnings(official, ["猫", "狗"]) == [text]  # class names alone (templates not given)
    assert class_warnings(official, ["cat", "dog"], BASIC_TEMPLATES + ["a photo of a {}, 2024"]) == []
    with pytest.warns(clipnb.ClassWarning) as caught:
        clipnb.build_head(official, ["猫", "狗"], "zh_photo")
    assert [str(w.message) for w in caught] == [text]


def test_models_that_know_the_language_or_whose_languages_are_unknown_do_not_warn(tiny_model):
    chinese = like(tiny_model, ("zh", "en"), "cn_clip:ViT-B-16")
    for model in (chinese, like(tiny_model, (MULTILINGUAL,)), tiny_model):
        assert class_warnings(model, ["猫", "狗"], ZH_TEMPLATES) == []
        assert class_warnings(model, ["cat", "dog"], BASIC_TEMPLATES) == []  # English to Chinese-CLIP too
        with warnings.catch_warnings():
            warnings.simplefilter("error", clipnb.ClassWarning)
            clipnb.build_head(model, ["猫", "狗"], "zh")


def test_english_prompts_to_a_chinese_only_model_name_an_english_one(tiny_model):
    [text] = language_warnings(like(tiny_model, ("zh",), "mine"), ["a photo of a cat"])
    assert text.startswith("the mine model was trained on Chinese text only") and "--model ViT-B/32" in text


def test_free_texts_and_search_queries_are_guarded_too(official, tmp_path):
    image = TEST_IMAGES / "cat.jpg"
    with pytest.warns(clipnb.ClassWarning, match="trained on English text only") as caught:
        probabilities = clipnb.similarity(image, ["一只猫", "一只狗"], model=official)
    assert len(caught) == 1 and list(probabilities.index) == ["一只猫", "一只狗"]
    index = clipnb.index_images(official, [image, TEST_IMAGES / "dog2.jpg"])
    with pytest.warns(clipnb.ClassWarning, match="Chinese") as caught:
        clipnb.search_text(index, official, "一只猫")
    assert len(caught) == 1
    with pytest.warns(clipnb.ClassWarning, match="Chinese") as caught:
        clipnb.rank_captions(official, image, ["一只猫", "a dog"])
    assert len(caught) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error", clipnb.ClassWarning)
        clipnb.similarity(image, ["a cat", "a dog"], model=official)
        clipnb.search_text(index, official, "a cat")


def test_the_command_line_prints_the_warning_once_as_one_line(official, tmp_path, capsys):
    for label, photo in [("猫", "cat.jpg"), ("狗", "dog2.jpg")]:  # evaluate: two sets, each with both ensemblings
        (tmp_path / "数据" / label).mkdir(parents=True)
        (tmp_path / "数据" / label / "1.jpg").write_bytes((TEST_IMAGES / photo).read_bytes())
    code = main(["evaluate", str(tmp_path / "数据"), "--model", "ViT-B/32", "--templates", "zh", "zh_photo",
                 "--out", str(tmp_path / "评估"), "--no-figures", "--no-cache", "--quiet"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 0 and len(lines) == 1
    assert lines[0].startswith("clipnb: warning: the ViT-B/32 model was trained on English text only")
    assert "cn_clip:ViT-B-16" in lines[0]
    assert main(["classify", str(TEST_IMAGES / "cat.jpg"), "--classes", "cat", "dog", "--model", "ViT-B/32",
                 "--csv", str(tmp_path / "r.csv"), "--no-cache", "--quiet"]) == 0
    assert capsys.readouterr().err == ""


# ---- Chinese class names through every door ---------------------------------------------------------------

@pytest.fixture()
def chinese_folder(tmp_path):
    """Photos with Chinese file names in a folder with a Chinese name."""
    folder = tmp_path / "照片"
    folder.mkdir()
    for source, name in [("cat.jpg", "我的猫.jpg"), ("dog2.jpg", "小狗.jpg")]:
        (folder / name).write_bytes((TEST_IMAGES / source).read_bytes())
    return folder


def test_chinese_classes_through_classify_and_write_csv(tiny_model, chinese_folder, tmp_path):
    results = clipnb.classify(chinese_folder, ["猫", "狗", "红色圆形"], templates="zh", model=tiny_model)
    assert results.attrs["classes"] == ["猫", "狗", "红色圆形"] and results.attrs["templates"] == ZH_TEMPLATES
    assert {prob_column("猫"), "prob_狗", "prob_红色圆形"} <= set(results.columns)
    assert set(results["prediction"]) <= {"猫", "狗", "红色圆形"}
    for bom in (False, True):
        path = clipnb.write_csv(results, tmp_path / "结果" / f"分类{bom}.csv", bom=bom)
        back = pd.read_csv(path, encoding="utf-8-sig")
        assert sorted(back["path"].map(lambda p: p.rsplit("/", 1)[-1])) == ["小狗.jpg", "我的猫.jpg"]
        assert list(back["prediction"]) == list(results["prediction"])
        assert abs(back["prob_猫"] - results["prob_猫"].to_numpy()).max() < 1e-6


def test_chinese_classes_on_the_command_line(tiny_checkpoint, chinese_folder, tmp_path, capsys):
    out = tmp_path / "结果" / "分类.csv"
    assert main(["classify", str(chinese_folder), "--classes", "猫", "狗", "--templates", "zh",
                 "--model", str(tiny_checkpoint), "--csv", str(out), "--no-cache", "--quiet"]) == 0
    printed = capsys.readouterr()
    assert "2 classes x 3 templates" in printed.out and f"wrote {out}" in printed.out and printed.err == ""
    table = pd.read_csv(out)
    assert {"prob_猫", "prob_狗"} <= set(table.columns) and set(table["prediction"]) <= {"猫", "狗"}
    assert main(["similarity", str(chinese_folder / "我的猫.jpg"), "--texts", "一只猫", "一只狗",
                 "--model", str(tiny_checkpoint)]) == 0
    assert "一只猫" in capsys.readouterr().out
    assert main(["classify", str(chinese_folder), "--classes", "猫，狗", "--model", str(tiny_checkpoint),
                 "--csv", str(out), "--no-cache", "--quiet"]) == 2
    assert "--classes 猫 狗" in capsys.readouterr().err  # the comma's advice quotes nothing it need not


def test_the_panel_takes_chinese_classes_warns_and_exports_them(tiny_model, chinese_folder, tmp_path):
    from clipnb.ui.panel import ClassifierPanel

    english = like(tiny_model, ("en",), "ViT-B/32")
    panel = ClassifierPanel.from_folder(english, chinese_folder, ["cat", "dog"], "zh", output_dir=tmp_path / "导出",
                                        max_shown=2, typing_delay=0)
    assert "zh" in panel.template_set.options and panel.template_set.value == "zh"
    # English classes in Chinese templates: the panel's status line says what the CLI's warning says
    assert panel.error == "" and "trained on English text only" in panel.message
    assert "cn_clip:ViT-B-16" in panel.status.value
    panel.new_class.value = "猫、狗、红色圆形"  # the Chinese enumeration comma separates classes too
    panel.add_class_button.click()
    assert panel.remove_class(["cat", "dog"]) and panel.classes == ["猫", "狗", "红色圆形"]
    written = panel.export()
    folder = written[0].parent
    assert folder.parent == (tmp_path / "导出").resolve()
    settings = json.loads((folder / "settings.json").read_text(encoding="utf-8"))
    assert settings["classes"] == ["猫", "狗", "红色圆形"] and settings["templates"] == ZH_TEMPLATES
    table = pd.read_csv(folder / "classification.csv", encoding="utf-8-sig")
    assert {"prob_猫", "prob_狗", "prob_红色圆形"} <= set(table.columns)
    assert list(pd.read_csv(folder / "class_summary.csv")["class"]) == ["猫", "狗", "红色圆形"]
    english_panel_message = ClassifierPanel.from_folder(english, chinese_folder, ["cat", "dog"], "basic",
                                                        max_shown=2, typing_delay=0).message
    assert "trained on" not in english_panel_message


def test_language_sentences_do_not_disturb_the_demo_vocabulary_warning(demo):
    found = class_warnings(demo, ["red circle", "blue star"], ZH_TEMPLATES)
    assert not [m for m in found if "knows only coloured shapes" in m]  # the classes are known shapes
    assert len(language_lines(found)) == (0 if "zh" in (demo.languages or ()) else 1)
