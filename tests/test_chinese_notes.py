"""The Chinese notebooks completely Chinese (issue 24, part AA): the one-line notes a notebook prints from the
package (folder_note, EmbeddedImages.describe, the evaluation's, calibration's and model comparison's headlines,
outlier_note, map_note, duplicate_summary) and an export error's reason are said in the notebook's language;
English stays as it was."""
import errno
import os

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from clipnb import build_head
from clipnb.data.images import folder_note
from clipnb.embed.pipeline import EmbeddedImages
from clipnb.tasks.collection_map import UMAP_FROM, map_note
from clipnb.tasks.duplicates import duplicate_summary
from clipnb.tasks.evaluation import evaluate
from clipnb.tasks.model_comparison import ModelComparison
from clipnb.zeroshot.calibration import Calibration
from clipnb.zeroshot.outliers import outlier_note
from clipnb.zeroshot.results import results_table

from test_panel_words import PROPER_NAMES, english_words

# Latin words a Chinese note may hold besides paths: the parameter a notebook names (recursive = True)
ALLOWED = PROPER_NAMES | {"recursive", "True", "ViT", "demo"}  # and model names


def assert_chinese(*texts):
    assert all(texts), texts  # an empty note would pass any scan
    assert not english_words(texts, ALLOWED), (english_words(texts, ALLOWED), texts)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """3 images here, 2 in a subfolder."""
    root = tmp_path_factory.mktemp("notes")
    (root / "below").mkdir()
    for path, colour in [("red.png", "red"), ("blue.png", "blue"), ("green.png", "green"),
                         ("below/black.png", "black"), ("below/white.png", "white")]:
        Image.new("RGB", (40, 30), colour).save(root / path)
    return root


def test_folder_note_in_chinese_and_english(folder):
    option = "recursive = True"
    assert_chinese(folder_note(folder, False, option, lang="zh"), folder_note(folder, True, option, lang="zh"),
                   folder_note(folder / "below", False, option, lang="zh"))
    assert folder_note(folder, False, option, lang="zh") == (
        f"{folder} 中有3张图像 (未包括子文件夹: 子文件夹中另有2张图像; 设置 recursive = True 以包括它们)")
    # English as before (tests/test_folder_scope.py matches it too)
    assert folder_note(folder, False, option) == (
        f"3 images in {folder} (subfolders not included: 2 more images in subfolders; add {option} to include them)")
    assert folder_note(folder, True) == f"5 images in {folder}, subfolders included (2 of them in subfolders)"


def test_an_unreadable_subfolder_is_said_in_chinese(folder):
    from clipnb.data.images import _unread_note

    problems = [PermissionError(13, "拒绝访问", str(folder / f"子{i}")) for i in range(5)]  # the system's words
    said = _unread_note(folder, problems, "zh")
    assert_chinese(said)
    assert said.startswith("; 5个子文件夹无法读取 (子0: 拒绝访问") and "等另外2个" in said
    assert "5 subfolders could not be read" in _unread_note(folder, problems)


@pytest.fixture(scope="module")
def embedded(tiny_model, folder):
    from clipnb import embed_images

    return embed_images(tiny_model, sorted(folder.rglob("*.png")) + [folder / "missing.png"], progress=False)


def test_an_embedding_run_is_described_in_chinese(embedded):
    said = embedded.describe("zh")
    assert_chinese(said, EmbeddedImages(embedded.records, embedded.features).describe("zh"))
    s = embedded.stats
    assert said == f"6张图像: 0张来自缓存, 编码{s['encoded']}张, 1张无法读取, 用时 {s['seconds']:.1f} 秒"
    assert embedded.describe() == f"6 images: 0 from the cache, {s['encoded']} encoded, 1 unreadable, in {s['seconds']:.1f} s"


def test_an_evaluation_headline_in_chinese(tiny_model, embedded):
    classes = ["red", "blue", "green"]
    results = results_table(embedded, build_head(tiny_model, classes))
    found = evaluate(results, ["red", "blue", "green", "red", "blue", "green"], classes)
    assert_chinese(found.headline("zh"))
    assert found.headline("zh").startswith("5张图像 (1张无法读取), 3个类别: 前1准确率 ")
    assert found.headline().startswith("5 images (1 unreadable), 3 classes: acc@1 ")


def calibration(accuracy, confidence) -> Calibration:
    return Calibration(temperature=1.5, ece_before=0.2, ece_after=0.05, before=pd.DataFrame(), after=pd.DataFrame(),
                       accuracy=accuracy, mean_confidence_before=confidence, mean_confidence_after=accuracy,
                       fitted=40, held_out=40, unreadable=0, bins=10, probability="softmax")


@pytest.mark.parametrize("confidence, zh, en", [(0.9, "过于自信", "over-confident"), (0.5, "不够自信", "under-confident"),
                                                (0.7, "平均而言置信度与准确率相当", "as confident as accurate")])
def test_a_calibration_headline_in_chinese(confidence, zh, en):
    found = calibration(0.7, confidence)
    assert_chinese(found.headline("zh"))
    assert found.headline("zh").startswith(f"温度 1.50, 在40张图像上拟合; 在另外40张图像上模型{zh} (准确率 70.0%")
    assert f"the model was {en}" in found.headline() and "goes from 20.0% to 5.0%" in found.headline()


@pytest.mark.parametrize("predictions, zh, en", [
    (["unknown", "red"], "1张图像与所有类别都不太相符 (最高得分远低于该文件夹的典型值): 报告为未知",
     "1 image fits none of the classes well (best score far below the folder's): reported as unknown"),
    (["blue", "blue"], "2张图像与所有类别都不太相符 (最高得分远低于该文件夹的典型值)",
     "2 images fit none of the classes well (best score far below the folder's)")])
def test_an_outlier_note_in_chinese(predictions, zh, en):
    table = pd.DataFrame({"prediction": predictions, "outlier": [True, predictions[1] == "blue"]})
    assert_chinese(outlier_note(table, "zh"))
    assert outlier_note(table, "zh") == zh and outlier_note(table) == en


def test_a_map_note_in_chinese():
    table = pd.DataFrame({"x": np.zeros(UMAP_FROM - 1)})
    table.attrs.update(neighbours=5, neighbours_asked=15, left_out=2)
    assert_chinese(map_note(table, "zh"))
    assert map_note(table, "zh").startswith("2张无法读取的图像未放入; 只有")


@pytest.mark.parametrize("groups", [[None, None, None], [1.0, 1.0, None]])
def test_a_duplicate_summary_in_chinese(groups):
    table = pd.DataFrame({"group": groups, "exact": [True, True, False]})
    table.attrs["threshold"] = 0.95
    assert_chinese(duplicate_summary(table, "zh"))
    assert duplicate_summary(table) in ("no duplicates among 3 files (threshold 0.95)",
                                        "1 group of duplicates: 2 files of 3, 2 of them exact copies (threshold 0.95)")


@pytest.mark.parametrize("labelled", [True, False])
def test_a_model_comparison_headline_in_chinese(labelled):
    found = ModelComparison(models=pd.DataFrame({"model": ["demo", "ViT-B-32"], "acc@1": [0.5, 0.75]}),
                            agreement=pd.DataFrame(), predictions=pd.DataFrame({"agree": [True] * 4}),
                            classes=["red", "blue"], labelled=labelled)
    assert_chinese(found.headline("zh"))
    assert found.headline() == ("2 models on 4 labelled images; best acc@1: ViT-B-32 (75.0%)" if labelled else
                                "2 models on 4 images, no labels: only their agreement is measured (give labelled "
                                "images to compare accuracy)")


# ---- an export error: worded where it is raised, said in the caller's language ------------------------------

def refusals(tmp_path):
    """(call, English line) for each refusal of clipnb.data.files, on payloads written here."""
    from clipnb.data.files import check_csv_name, check_output_file, check_output_folder, real_target

    (tmp_path / "folder").mkdir()
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "link").symlink_to(tmp_path / "pipe")
    (tmp_path / "file").write_text("x")
    (tmp_path / "input.csv").write_text("x")
    (tmp_path / "photo.csv").symlink_to(tmp_path / "photo.png")
    t = tmp_path
    return [
        (lambda: real_target(t / "folder"),
         f"cannot write {t / 'folder'}: it is a folder; give a file name such as {t / 'folder' / 'results.csv'}"),
        (lambda: real_target(t / "link"), f"cannot write {t / 'link'} (a link to {t / 'pipe'}): it is a named pipe "
                                          "(FIFO), not a regular file, and writing would replace it; choose another "
                                          "output path"),
        (lambda: check_output_file(t / "file" / "out.csv"),
         f"cannot write {t / 'file' / 'out.csv'}: {t / 'file'} is a file, not a folder; choose another output path"),
        (lambda: check_csv_name(t / "photo.csv"),
         f"cannot write a CSV to {t / 'photo.csv'} (a link to {t / 'photo.png'}): the name is an image's, and writing "
         "would overwrite the picture; give a name ending in .csv"),
        (lambda: check_output_file(t / "input.csv", inputs=[t / "input.csv"]),
         f"cannot write {t / 'input.csv'}: it is {t / 'input.csv'}, an input of this run, and writing would "
         "overwrite it; choose another output path"),
        (lambda: check_output_folder(t / "file"),
         f"cannot write to the folder {t / 'file'}: it is a file; give the name of a folder, new or existing"),
        (lambda: check_output_folder(t / "pipe"),
         f"cannot write to the folder {t / 'pipe'}: it is a named pipe (FIFO); give the name of a folder, new or "
         "existing"),
    ]


def test_each_refusal_is_said_in_chinese_and_its_english_line_is_unchanged(tmp_path):
    from clipnb.data.files import ExportError

    for call, english in refusals(tmp_path):
        with pytest.raises(ExportError) as caught:
            call()
        assert str(caught.value) == english  # what the command line prints
        assert caught.value.said() == english and caught.value.key
        # paths are left out by the scan; the FIFO keeps its name, and a CSV's extension is .csv in any language
        assert_chinese(caught.value.said("zh").replace("(FIFO)", "").replace(".csv", ""))
        assert caught.value.said("zh").startswith("无法")


@pytest.mark.parametrize("code, advice", [(errno.EROFS, "是只读的或不属于你"), (errno.ENOSPC, "磁盘已满"),
                                          (errno.ENOTDIR, "输出路径中有一部分是文件"), (errno.EISDIR, "是一个文件夹"),
                                          (errno.EIO, "请选择另一个输出路径")])
def test_a_failed_write_is_said_in_chinese_with_its_code(tmp_path, monkeypatch, code, advice):
    from clipnb.data import files
    from clipnb.report.export import write_csv

    def refuse(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(files.os, "replace", refuse)  # the last step of every atomic write
    target = tmp_path / "out.csv"
    with pytest.raises(files.ExportError) as caught:
        write_csv(pd.DataFrame({"a": [1]}), target)
    error = caught.value
    assert str(error).startswith(f"cannot write {target}: {os.strerror(code)}; ")
    assert str(error).endswith(f" ({files.RETRY_HINT})")
    said = error.said("zh")
    assert said.startswith(f"无法写入 {target} (系统错误 {errno.errorcode[code]}): ") and advice in said
    assert said.endswith("(结果仍在内存中: 解决此问题后再次导出即可)")
    assert_chinese(said.replace(errno.errorcode[code], ""))
    assert not error.said("zh", retry=False).endswith(")") and not error.said("en", retry=False).endswith(")")
    assert not target.exists() and not list(tmp_path.glob(".*.part"))  # nothing half-written is left


def test_the_retry_hint_is_the_catalogues():
    from clipnb.data.files import RETRY_HINT
    from clipnb.words import word

    # files.py keeps its own copy (it is loaded alone, without the package): the two must say the same
    assert word("export.retry") == RETRY_HINT


# ---- a notebook run in Chinese prints no English ---------------------------------------------------------

@pytest.mark.notebook
@pytest.mark.slow
def test_02_run_in_chinese_prints_no_english_word(tmp_path):
    """Notebook 02 prints folder_note and EmbeddedImages.describe (17 s here on 3 images, on the loaded CPU)."""
    from demo_inputs import write_shapes
    from test_notebooks import SIX, run_notebook

    folder = write_shapes(tmp_path / "shapes", per_class=1, classes=SIX[:3])
    _, text = run_notebook("02_zero_shot_classification.ipynb", {
        "image_folder": str(folder), "recursive": True, "classes": SIX[:3], "compared_template_sets": ["basic"],
        "LANG": "zh"}, tmp_path)
    lines = [line for line in text.splitlines() if line.strip()]
    assert f"{folder} 中有3张图像, 包括子文件夹 (其中3张在子文件夹中); 3个类别" in lines, text
    assert any(line.startswith("3张图像: ") and line.endswith(" 秒") for line in lines), text
    assert_chinese(*lines)


def test_a_panel_says_clipnbs_own_export_refusal_in_its_language_not_folded_in_english(tmp_path):
    from clipnb.data.files import ExportError, check_output_file
    from clipnb.ui.base import export_reason
    from test_panel_words import english_words

    with pytest.raises(ExportError) as refused:
        check_output_file(tmp_path)  # a folder where a CSV should go
    line, fold = export_reason(refused.value, "zh")
    assert line and not fold and not english_words([line], set())
    english, _ = export_reason(refused.value, "en")
    assert english == str(refused.value).replace(" (the results are still in memory: fix this and call the export again)", "")
