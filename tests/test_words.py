"""clipnb.words and reports in Chinese: the catalogue, the article's CSV headers and ratio types, the 统计总结,
Chinese chart titles and labels drawn with glyphs and without font warnings, and English unchanged."""

import pandas as pd
import pytest

from clipnb import words
from clipnb.zeroshot import schema
from clipnb.report import export
from clipnb.report.plots import base as plotting
from clipnb.tasks import summary
from conftest import run_python
from test_plotting import known_results

# the article's CSV columns, in its order, for its classes
ARTICLE_COLUMNS = ["图像名称", "宽度", "高度", "宽高比", "比例类型", "预测类别", "最高置信度"]
ARTICLE_RATIO_TYPES = ["正方形 (1:1)", "标准屏 (4:3)", "宽屏 (16:9)", "照片 (3:2)", "其他"]
ARTICLE_TITLES = {"图像比例分布", "分类结果分布", "各类别平均置信度", "图像宽高比值分布"}


@pytest.fixture()
def results():
    # cat wins 3 images, dog 2, car 1, tree none; sizes 4:3, 16:9, 1:1, 3:2, 1:3, 4:3
    return known_results(["cat", "dog", "car", "tree"], [0, 0, 0, 1, 1, 2])


def test_word_refuses_an_unknown_key_or_language_naming_the_known_ones():
    assert words.word("title.predictions", "zh") == "分类结果分布"
    assert words.word("title.predictions") == "Predicted classes"
    with pytest.raises(ValueError, match="unknown report language 'fr': use one of en, zh"):
        words.word("title.predictions", "fr")
    with pytest.raises(KeyError, match="unknown word 'title.nope'; known words: .*title.predictions"):
        words.word("title.nope", "en")


def test_every_word_has_every_language():
    for key, texts in words.WORDS.items():
        assert set(texts) == set(words.LANGUAGES), key


def test_ratio_types_of_the_catalogue_are_those_of_the_table_and_the_article():
    from clipnb.data.images import OTHER_RATIO, RATIO_TYPES

    english = list(RATIO_TYPES.values()) + [OTHER_RATIO]
    assert [words.ratio_type_name(name, "zh") for name in english] == ARTICLE_RATIO_TYPES
    assert [words.ratio_type_name(name, "en") for name in english] == english


def test_localised_table_has_the_article_headers_and_ratio_types(results, tmp_path):
    table = schema.localised(results, "zh")
    columns = list(table.columns)
    # the article's columns first, in its order, then its <class>_得分, then clipnb's other columns
    assert columns[:11] == ARTICLE_COLUMNS + ["cat_得分", "dog_得分", "car_得分", "tree_得分"]
    # <class>_得分 holds the article's value: the class's cosine similarity (clipnb's score_<class>)
    for name in ["cat", "dog", "car", "tree"]:
        assert list(table[f"{name}_得分"]) == list(results[f"score_{name}"])
        assert list(table[f"{name}_概率"]) == list(results[f"prob_{name}"])
    # clipnb's extra columns get Chinese names too: no English header is left
    assert not [c for c in columns if c.isascii()], columns
    assert set(table["比例类型"]) <= set(ARTICLE_RATIO_TYPES)
    assert list(table["比例类型"]) == [words.ratio_type_name(v, "zh") for v in results["ratio_type"]]
    # the table itself is untouched: data stays English inside clipnb
    assert "ratio_type" in results and "standard (4:3)" in set(results["ratio_type"])
    path = export.write_csv(table, tmp_path / "结果.csv", bom=True)
    header = path.read_text(encoding="utf-8-sig").splitlines()[0].split(",")
    assert header[:3] == ["图像名称", "宽度", "高度"] and "cat_得分" in header
    assert list(pd.read_csv(path, encoding="utf-8-sig").columns) == columns


def test_localised_english_is_the_table_itself(results):
    assert schema.localised(results, "en") is results
    with pytest.raises(ValueError, match="use one of en, zh"):
        schema.localised(results, "de")


def test_summary_tables_get_chinese_headers(results):
    assert list(schema.localised(summary.class_summary(results), "zh").columns) == [
        "类别", "平均得分", "平均概率", "预测数量", "预测占比(%)", "预测时平均置信度"]
    ratios = schema.localised(summary.ratio_counts(results), "zh")
    assert list(ratios.columns) == ["比例类型", "数量", "占比(%)", "其中纵向"]
    assert list(ratios["比例类型"]) == ARTICLE_RATIO_TYPES


def test_summary_text_in_chinese_is_the_articles(results):
    text = summary.summary_text(results, "zh")
    lines = text.splitlines()
    assert lines[0] == "=== 统计总结 ==="
    assert lines[1].startswith("处理图像总数:6")
    assert "图像比例统计:" in lines and "分类结果统计:" in lines
    assert "  - 标准屏 (4:3): 2张 (33.3%)" in lines
    assert "  - cat: 3张 (50.0%)" in lines
    with pytest.raises(ValueError, match="unknown report language 'EN'"):
        summary.summary_text(results, "EN")


def test_summary_text_in_english_is_unchanged(results):
    assert summary.summary_text(results) == summary.summary_text(results, "en") == "\n".join([
        "images: 6 files, 6 classified, 0 unreadable", "ratio types:", "  - square (1:1): 1 (16.7%)",
        "  - standard (4:3): 2 (33.3%)", "  - widescreen (16:9): 1 (16.7%)", "  - photo (3:2): 1 (16.7%)",
        "  - other: 1 (16.7%), 1 of them portrait", "predictions:", "  - cat: 3 (50.0%)", "  - dog: 2 (33.3%)", "  - car: 1 (16.7%)"])


def test_unreadable_files_in_the_chinese_summary():
    table = known_results(["a", "b"], [0, 1], errors=["", "empty file"])
    text = summary.summary_text(table, "zh")
    assert "处理图像总数:2 (已分类 1, 无法读取 1)" in text
    assert text.endswith("无法读取的文件:\n  - /photos/b/001.jpg: empty file")


def _texts(figure):
    import matplotlib.text

    return {t.get_text() for t in figure.findobj(matplotlib.text.Text)}


def test_report_dashboard_in_chinese_has_the_article_titles_and_labels(results):
    figure = plotting.report_dashboard(results, lang="zh")
    texts = _texts(figure)
    assert ARTICLE_TITLES <= {ax.get_title() for ax in figure.axes}
    assert figure._suptitle.get_text().startswith("CLIP零样本分类 + 图像比例分析报告\n6张图像, 4个类别")
    labels = {ax.get_xlabel() for ax in figure.axes} | {ax.get_ylabel() for ax in figure.axes}
    assert {"数量", "宽/高比值", "预测为该类别时的平均置信度"} <= labels
    ratio_axes = next(ax for ax in figure.axes if ax.get_title() == "图像比例分布")
    assert [t.get_text() for t in ratio_axes.get_yticklabels()] == ARTICLE_RATIO_TYPES
    histogram = next(ax for ax in figure.axes if ax.get_title() == "图像宽高比值分布")
    assert histogram.get_legend().get_texts()[0].get_text().startswith("均值:")
    assert not {"Predicted classes", "images", "width / height"} & texts


def test_class_dashboard_and_grid_in_chinese(results):
    figure = plotting.class_dashboard(results, lang="zh")
    assert {ax.get_title() for ax in figure.axes} == {"分类结果分布", "各类别平均置信度"}
    grid = plotting.image_grid(results, truth=["dog"] * len(results), lang="zh")
    assert any(t.startswith("✗") and "真实类别: dog" in t for t in _texts(grid))
    assert "概率" in {ax.get_xlabel() for ax in plotting.probability_bars(pd.Series({"a": 0.7, "b": 0.3}),
                                                                          lang="zh").figure.axes}


def test_charts_refuse_an_unknown_language(results):
    for draw in (plotting.report_dashboard, plotting.class_dashboard, plotting.prediction_bars,
                 plotting.confidence_bars, plotting.ratio_type_bars, plotting.ratio_histogram, plotting.image_grid):
        with pytest.raises(ValueError, match="unknown report language 'cn': use one of en, zh"):
            draw(results, lang="cn")


def test_english_charts_keep_their_words(results):
    figure = plotting.report_dashboard(results)
    assert {ax.get_title() for ax in figure.axes} == {"Predicted classes", "Confidence per predicted class",
                                                      "Aspect-ratio types", "Width/height ratio"}
    assert figure._suptitle.get_text() == ("Zero-shot classification report\n6 images, 4 classes, "
                                           f"mean confidence {results['confidence'].mean():.3f}")


def test_chinese_report_png_has_glyphs_and_no_font_warning(tmp_path):
    """In a fresh process (as a user's), a saved Chinese report says nothing about fonts on stderr."""
    png = tmp_path / "report.png"
    code = ("import sys; sys.path.insert(0, 'tests'); import matplotlib; matplotlib.use('Agg')\n"
            "from test_plotting import known_results\nfrom clipnb import plotting, export\n"
            "r = known_results(['cat', 'dog', '红色圆形'], [0, 1, 2, 2])\n"
            f"export.save_figure(plotting.report_dashboard(r, lang='zh'), {str(png)!r}, dpi=60)\n"
            f"export.save_figure(plotting.image_grid(r, lang='zh'), {str(png)!r}, dpi=60)\n")
    done = run_python(code)
    assert done.returncode == 0, done.stderr
    assert "Glyph" not in done.stderr and "missing from font" not in done.stderr and "CJK" not in done.stderr, \
        done.stderr
    assert png.stat().st_size > 0


def test_settings_comparison_in_chinese():
    from test_plotting import settings_comparison

    table = settings_comparison()
    figure = plotting.comparison_figure(table, only_changed=True, lang="zh")
    title = figure.axes[0].get_title()
    assert title.startswith(f"各设置的预测: {len(table)}张图像中有{int(table['changed'].sum())}张的预测改变"), title
    empty = plotting.comparison_figure(settings_comparison(changed_rows=(), count=2), only_changed=True, lang="zh")
    assert "没有图像的预测随设置改变" in _texts(empty)
