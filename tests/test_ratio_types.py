"""Ratio types hold for both orientations: a phone's upright photos are "standard (4:3)", "photo (3:2)" or
"widescreen (16:9)" with orientation "portrait", not all "other"; the counts, the summary (in English and
Chinese), the dashboard's chart and the Chinese CSV say how many of each type are portrait."""
import pytest
from matplotlib.figure import Figure

from clipnb import words
from clipnb.zeroshot import schema
from clipnb.report.plots import base as plotting
from clipnb.tasks import summary
from clipnb.data.images import aspect_info, ratio_type

from test_plotting import known_results

PHONE = [(3024, 4032), (2000, 3000), (1080, 1920), (4032, 3024), (512, 512), (1000, 1300)]


@pytest.mark.parametrize("size, kind", [((3024, 4032), "standard (4:3)"), ((2000, 3000), "photo (3:2)"),
                                        ((1080, 1920), "widescreen (16:9)")])
def test_an_upright_photo_has_the_type_of_its_landscape_form(size, kind):
    info = aspect_info(*size)
    assert (info["ratio_type"], info["orientation"]) == (kind, "portrait")  # it was "other"
    landscape = aspect_info(size[1], size[0])
    assert (landscape["ratio_type"], landscape["orientation"]) == (kind, "landscape")  # the article's, as before
    assert info["aspect_ratio"] == ":".join(reversed(landscape["aspect_ratio"].split(":")))  # as displayed
    assert ratio_type(1000, 1300) == ratio_type(1300, 1000) == "other"


@pytest.fixture()
def phone_results():
    return known_results(["cat", "dog"], [0, 1, 0, 1, 0, 1], sizes=PHONE)


def test_ratio_counts_say_how_many_of_each_type_are_portrait(phone_results):
    counts = summary.ratio_counts(phone_results).set_index("ratio_type")
    assert counts["count"].to_dict() == {"square (1:1)": 1, "standard (4:3)": 2, "widescreen (16:9)": 1,
                                         "photo (3:2)": 1, "other": 1}
    assert counts["portrait"].to_dict() == {"square (1:1)": 0, "standard (4:3)": 1, "widescreen (16:9)": 1,
                                            "photo (3:2)": 1, "other": 1}
    assert list(schema.localised(counts.reset_index(), "zh").columns) == ["比例类型", "数量", "占比(%)", "其中纵向"]


def test_the_summary_says_the_portrait_part_in_both_languages(phone_results):
    english = summary.summary_text(phone_results).splitlines()
    assert "  - standard (4:3): 2 (33.3%), 1 of them portrait" in english
    assert "  - square (1:1): 1 (16.7%)" in english
    chinese = summary.summary_text(phone_results, "zh").splitlines()
    assert "  - 标准屏 (4:3): 2张 (33.3%), 其中纵向1张" in chinese and "  - 宽屏 (16:9): 1张 (16.7%), 其中纵向1张" in chinese


def test_the_chart_hatches_and_counts_the_portrait_part(phone_results):
    ax = plotting.ratio_type_bars(phone_results, ax=Figure().add_subplot())
    hatched = [p for p in ax.patches if p.get_hatch()]
    assert [p.get_width() for p in hatched] == [0, 1, 1, 1, 1]  # square, 4:3, 16:9, 3:2, other
    texts = [t.get_text() for t in ax.texts]
    assert "2 (33%), 1 portrait" in texts and "1 (17%)" in texts
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["portrait"]
    chinese = plotting.ratio_type_bars(phone_results, ax=Figure().add_subplot(), lang="zh")
    assert "2 (33%), 纵向1张" in [t.get_text() for t in chinese.texts]
    assert [t.get_text() for t in chinese.get_legend().get_texts()] == ["纵向"]


def test_a_chinese_csv_names_the_type_and_the_orientation(phone_results):
    table = schema.localised(phone_results, "zh")
    first = table.iloc[0]
    assert (first["比例类型"], first["方向"], first["宽高比"]) == ("标准屏 (4:3)", "纵向", "3:4")
