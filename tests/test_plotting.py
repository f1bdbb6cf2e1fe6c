"""clipnb.report.plots.base and the evaluation, search and video charts: charts drawn from known results, colours, long and CJK
labels, readable sizes, exports; and the summary tables the charts draw from."""
import itertools
import warnings
import xml.etree.ElementTree as ET

import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from matplotlib.figure import Figure

from clipnb.report.plots import base as plotting
from clipnb.report.colours import colour_distance
from clipnb.zeroshot.results import results_table
from clipnb.embed.pipeline import EmbeddedImages
from clipnb.zeroshot.scoring import ZeroShotHead

SIZES = [(640, 480), (1920, 1080), (512, 512), (1200, 800), (300, 900)]


def known_results(classes, labels, sizes=None, errors=None):
    """A results table whose predictions are `labels` (indexes into classes), made without a model:
    each class's text embedding is a basis vector and each image sits close to its label's."""
    count, dim = len(labels), max(len(classes), 4)
    text = torch.eye(dim)[: len(classes)].unsqueeze(1)  # [classes, 1 template, D]
    features = torch.eye(dim)[list(labels)] * 0.9 + 0.05
    features = torch.nn.functional.normalize(features, dim=-1)
    sizes = sizes or [SIZES[i % len(SIZES)] for i in range(count)]
    errors = errors or [""] * count
    records = pd.DataFrame({"path": [f"/photos/{classes[l]}/{i:03d}.jpg" for i, l in enumerate(labels)],
                            "width": [s[0] for s in sizes], "height": [s[1] for s in sizes],
                            "error": errors, "note": [""] * count})
    for i, error in enumerate(errors):
        if error:
            features[i] = float("nan")
            records.loc[i, ["width", "height"]] = [0, 0]
    head = ZeroShotHead(classes=list(classes), templates=["a photo of a {}"], ensemble="embedding",
                        text_features=text, logit_scale=100.0)
    return results_table(EmbeddedImages(records=records, features=features), head)


def bar_colours(ax):
    return [tuple(p.get_facecolor()[:3]) for p in ax.patches]


def tick_texts(ax):
    return [t.get_text() for t in ax.get_yticklabels()]


@pytest.fixture()
def results():
    # cat wins 3 images, dog 2, car 1, tree none
    return known_results(["cat", "dog", "car", "tree"], [0, 0, 0, 1, 1, 2])


def test_palette_is_one_colour_per_class_and_stable_when_a_class_is_added():
    ten = [f"class {i}" for i in range(10)]
    palette = plotting.class_palette(ten)
    assert len(set(palette.values())) == 10
    assert plotting.class_palette(ten + ["eleventh"])["class 3"] == palette["class 3"]
    many = plotting.class_palette([f"c{i}" for i in range(48)])
    assert len(set(many.values())) == 48
    # 48 colours cannot all be far apart, but no two are alike (ΔE in CAM02-UCS: about 1 is just noticeable)
    assert min(colour_distance(a, b) for a, b in itertools.combinations(many.values(), 2)) > 10


def test_axes_level_charts_draw_on_the_given_axes_and_return_it(results):
    figure = Figure()
    for chart in (plotting.prediction_bars, plotting.confidence_bars, plotting.ratio_type_bars,
                  plotting.ratio_histogram):
        ax = figure.add_subplot()
        assert chart(results, ax=ax) is ax
        assert ax.figure is figure


def test_prediction_bars_count_each_class_in_its_palette_colour(results):
    palette = plotting.class_palette(["cat", "dog", "car", "tree"])
    ax = plotting.prediction_bars(results, ax=Figure().add_subplot(), palette=palette)
    assert tick_texts(ax) == ["cat", "dog", "car", "tree"]  # most predicted on top, 0 shown for few classes
    assert [p.get_width() for p in ax.patches] == [3, 2, 1, 0]
    assert bar_colours(ax) == [pytest.approx(palette[c]) for c in ["cat", "dog", "car", "tree"]]


def test_confidence_bars_use_the_same_colour_for_the_same_class_as_the_counts(results):
    figure = Figure()
    counts = plotting.prediction_bars(results, ax=figure.add_subplot(121))
    confidence = plotting.confidence_bars(results, ax=figure.add_subplot(122), order=["dog", "cat", "car"])
    colour_of = dict(zip(tick_texts(counts), bar_colours(counts)))
    assert dict(zip(tick_texts(confidence), bar_colours(confidence))) == {
        c: colour_of[c] for c in ["dog", "cat", "car"]}
    expected = results.groupby("prediction")["confidence"].mean()
    assert [p.get_width() for p in confidence.patches] == pytest.approx([expected[c] for c in ["dog", "cat", "car"]])


def test_many_classes_hide_the_empty_ones_and_say_how_many():
    classes = [f"class {i}" for i in range(48)]
    results = known_results(classes, [0, 0, 5, 9, 9, 9, 47])
    ax = plotting.prediction_bars(results, ax=Figure().add_subplot())
    assert tick_texts(ax) == ["class 9", "class 0", "class 5", "class 47"]
    assert "44 classes that won no image not shown" in ax.get_xlabel()


def test_long_class_names_wrap_and_many_classes_make_taller_charts():
    long_name = "a remarkably long class name that would push the chart off the page if left alone"
    wrapped = plotting.wrap_label(long_name)
    assert all(len(line) <= plotting.LABEL_WIDTH for line in wrapped.splitlines())
    assert len(wrapped.splitlines()) == 3 and wrapped.endswith("…")
    assert max(len(line) for line in plotting.wrap_label("很" * 30).splitlines()) <= plotting.LABEL_WIDTH // 2
    few = plotting.report_dashboard(known_results(["a", "b"], [0, 1]))
    many = plotting.report_dashboard(known_results([f"c{i}" for i in range(40)], list(range(40))))
    assert many.get_figheight() > few.get_figheight() + 5


def test_ratio_histogram_marks_the_mean_width_over_height(results):
    ax = plotting.ratio_histogram(results, ax=Figure().add_subplot())
    mean = np.mean([w / h for w, h in (SIZES[i % 5] for i in range(6))])
    (line,) = ax.get_lines()
    assert line.get_xdata()[0] == pytest.approx(mean, rel=1e-3)
    assert f"mean {mean:.2f}" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_probability_bars_highlight_the_winner():
    probabilities = pd.Series({"a photo of a dog": 0.2, "a photo of a cat": 0.7, "a bird": 0.1})
    ax = plotting.probability_bars(probabilities, ax=Figure().add_subplot())
    assert tick_texts(ax)[0] == "a photo of a cat"
    weights = [t.get_fontweight() for t in ax.get_yticklabels()]
    assert weights == ["bold", "normal", "normal"]
    colours = bar_colours(ax)
    assert colours[0] != colours[1] and colours[1] == colours[2]


def test_unreadable_images_are_left_out_of_charts_and_shown_in_the_grid(tmp_path):
    results = known_results(["cat", "dog"], [0, 1, 0], errors=["", "", "truncated file"])
    ax = plotting.prediction_bars(results, ax=Figure().add_subplot())
    assert [p.get_width() for p in ax.patches] == [1, 1]
    figure = plotting.image_grid(results)
    texts = [t.get_text() for t in figure.findobj(matplotlib.text.Text)]
    assert any("truncated file" in t or "unreadable" in t for t in texts)


def test_image_grid_shows_the_chosen_images_with_their_top_classes(tmp_path):
    classes = ["red circle", "blue square", "green triangle"]
    results = known_results(classes, [0, 1, 2, 0])
    for i, path in enumerate(results["path"]):
        results.loc[i, "path"] = str(tmp_path / f"{i}.png")
        Image.new("RGB", (40, 30), (200, 10, 10)).save(tmp_path / f"{i}.png")
    figure = plotting.image_grid(results, rows=[1, 3], top=2)
    titles = [ax.get_title() for ax in figure.findobj(matplotlib.axes.Axes) if ax.get_title()]
    assert titles == ["1.png", "3.png"]
    bars = [ax for ax in figure.findobj(matplotlib.axes.Axes) if ax.patches]
    assert [tick_texts(ax)[0] for ax in bars] == ["blue square", "red circle"]
    assert all(len(ax.patches) == 2 for ax in bars)


def test_cjk_labels_without_a_cjk_font_warn_once_saying_how_to_install_one(monkeypatch, results):
    monkeypatch.setattr(plotting, "find_cjk_font", lambda: None)
    monkeypatch.setattr(plotting, "_cjk_warned", False)
    cjk = known_results(["猫", "狗"], [0, 1])
    with pytest.warns(plotting.CJKFontWarning, match="apt-get install fonts-noto-cjk") as caught:
        plotting.report_dashboard(cjk, title="CLIP零样本分类报告").savefig(__import__("io").BytesIO())
        plotting.class_dashboard(cjk).savefig(__import__("io").BytesIO())
    ours = [w for w in caught if issubclass(w.category, plotting.CJKFontWarning)]
    glyphs = [w for w in caught if "missing from" in str(w.message)]
    assert len(ours) == 1 and not glyphs
    assert "conda install -c conda-forge font-ttf-noto-cjk" in str(ours[0].message)


def test_cjk_labels_are_drawn_with_an_installed_cjk_font():
    font = plotting.find_cjk_font()
    if font is None:
        pytest.skip("no CJK font installed (apt-get install fonts-wqy-microhei or fonts-noto-cjk)")
    figure = plotting.report_dashboard(known_results(["猫", "狗", "汽车"], [0, 1, 2, 0]), title="CLIP零样本分类报告")
    texts = [t for t in figure.findobj(matplotlib.text.Text) if plotting.has_cjk(t.get_text())]
    assert len(texts) >= 4
    assert all(font in t.get_fontfamily() for t in texts)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a missing glyph would raise here
        figure.savefig(__import__("io").BytesIO(), format="png")


def test_bold_cjk_labels_do_not_report_the_missing_bold_face_of_the_fallback_font(caplog):
    import io
    import logging

    from matplotlib import font_manager

    font = plotting.find_cjk_font()
    if font is None:
        pytest.skip("no CJK font installed (apt-get install fonts-wqy-microhei or fonts-noto-cjk)")
    font_manager.FontManager._findfont_cached.cache_clear()  # an earlier test may have looked the fonts up
    with caplog.at_level(logging.WARNING, logger="matplotlib.font_manager"):
        plotting.class_dashboard(known_results(["猫", "狗"], [0, 1, 0]), title="CLIP零样本分类报告").savefig(
            io.BytesIO(), format="png")
        winner = plotting.probability_bars(pd.Series({"一只猫": 0.8, "一只狗": 0.2}), ax=Figure().add_subplot())
        assert winner.get_yticklabels()[0].get_fontweight() == "bold"
        winner.figure.savefig(io.BytesIO(), format="png")
        assert not [r.getMessage() for r in caplog.records if "findfont" in r.getMessage()]
        # other font problems are still reported
        other = Figure()
        other.text(0.5, 0.5, "x", fontfamily="No Such Font Family", fontweight="bold")
        other.savefig(io.BytesIO(), format="png")
    assert any("No Such Font Family" in r.getMessage() and "not found" in r.getMessage() for r in caplog.records)


def test_export_writes_png_at_the_dpi_asked_svg_and_pdf(tmp_path, results):
    figure = plotting.class_dashboard(results)
    paths = plotting.export_figure(figure, tmp_path / "out", "classes", dpi=50)
    assert [p.name for p in paths] == ["classes.png", "classes.svg", "classes.pdf"]
    with Image.open(paths[0]) as low:
        low.load()
        low_width = low.width
    (high,) = plotting.export_figure(figure, tmp_path / "out", "high", formats=["png"], dpi=100)
    with Image.open(high) as image:
        assert image.width == pytest.approx(2 * low_width, rel=0.05)
    assert ET.parse(paths[1]).getroot().tag.endswith("svg")
    assert paths[2].read_bytes().startswith(b"%PDF")
    with pytest.raises(ValueError, match="unknown figure format 'jpg'"):
        plotting.export_figure(figure, tmp_path, "x", formats=["jpg"])


def test_summary_tables_round_percentages_and_means_so_the_csv_reads_easily(tmp_path):
    from clipnb import class_summary, prediction_counts, ratio_counts, write_csv

    results = known_results(["cat", "dog", "car"], [0] * 10 + [1] * 7 + [2] * 31)
    summary = class_summary(results)
    assert summary["predicted_pct"].tolist() == [20.8, 14.6, 64.6]  # 10/48 = 20.833...
    assert summary["predicted"].dtype.kind == "i"
    assert prediction_counts(results)["percent"].tolist() == [64.6, 20.8, 14.6]
    assert set(ratio_counts(results)["percent"]) <= {round(100 * k / 48, 1) for k in range(49)}
    for column in ("mean_score", "mean_probability", "mean_confidence_when_predicted"):
        assert summary[column].tolist() == pytest.approx(summary[column].round(4).tolist(), abs=0)
    write_csv(summary, tmp_path / "summary.csv")
    cells = [c for line in (tmp_path / "summary.csv").read_text().splitlines()[1:] for c in line.split(",")[1:]]
    assert all(len(cell.partition(".")[2]) <= 4 for cell in cells), cells  # no 2.0833333333333335


# ---------------------------------------------------------------------------------------------
# issue 11: whole-number counts, labels after the bars, plurals, 9 pt text, CJK bold, task charts

def drawn(figure):
    """The figure laid out and drawn (no file): positions and ticks are final."""
    figure.draw_without_rendering()
    return figure


def visible_ticks(axis):
    low, high = sorted(axis.get_view_interval())
    return [t for t in axis.get_majorticklocs() if low - 1e-9 <= t <= high + 1e-9]


def test_count_axes_have_whole_number_ticks(results):
    figure = Figure(figsize=(12, 3), layout="constrained")
    left, middle, right = figure.subplots(1, 3)
    plotting.prediction_bars(results, ax=left)  # 3 images at most: the default ticks would be 0, 0.5, ...
    plotting.ratio_type_bars(results, ax=middle)
    plotting.ratio_histogram(results, ax=right)
    drawn(figure)
    for axis in (left.xaxis, middle.xaxis, right.yaxis):
        ticks = visible_ticks(axis)
        assert len(ticks) >= 2 and all(float(t).is_integer() for t in ticks), ticks


def test_ratio_types_write_count_and_share_after_each_bar_and_within_the_chart():
    sizes = [(512, 512)] * 12 + [(640, 480)] * 30 + [(1920, 1080)] + [(1200, 800)] * 5
    results = known_results(["cat", "dog"], [0] * 48, sizes=sizes)
    alone = plotting.ratio_type_bars(results)  # its own figure, 6 inches wide
    report = plotting.report_dashboard(results)
    for figure, ax in [(alone.figure, alone), (report, report.axes[2])]:
        assert ax.get_title() == "Aspect-ratio types"
        texts = {t.get_text(): t for t in ax.texts}
        assert list(texts) == ["12 (25%)", "30 (62%)", "1 (2%)", "5 (10%)", "0"]
        for text, bar in zip(texts.values(), ax.patches):
            assert text.xy[0] == bar.get_width() and text.get_color() != "white"
        drawn(figure)
        right = ax.get_window_extent().x1
        for text in texts.values():
            extent = text.get_window_extent()
            assert extent.x1 <= right and extent.x0 > ax.get_window_extent().x0  # after the bar, inside the chart


def test_bar_values_fit_inside_every_chart_that_draws_them(results):
    long_names = known_results(["a remarkably long class name here", "dog", "car"], [0, 0, 1, 1, 1, 2])
    figures = [plotting.class_dashboard(results), plotting.report_dashboard(long_names),
               plotting.image_grid(long_names, top=3), drawn(plotting.prediction_bars(results).figure)]
    for figure in figures:
        drawn(figure)
        for ax in figure.findobj(matplotlib.axes.Axes):
            for text in ax.texts:
                assert text.get_window_extent().x1 <= ax.get_window_extent().x1 + 0.5, text.get_text()


def test_plural_and_no_1_classes_in_titles_labels_and_summary():
    from clipnb.tasks.summary import plural, summary_text

    assert [plural(1, "class"), plural(2, "class"), plural(3, "image"), plural(0, "file"), plural(1, "template")] == [
        "1 class", "2 classes", "3 images", "0 files", "1 template"]
    one = known_results(["cat"] + [f"class {i}" for i in range(21)], [0])
    assert plotting.report_dashboard(one).get_suptitle().endswith("1 image, 22 classes, mean confidence 1.000")
    hidden = known_results([f"class {i}" for i in range(21)], [i for i in range(20)])
    assert "(1 class that won no image not shown)" in plotting.prediction_bars(
        hidden, ax=Figure().add_subplot()).get_xlabel()
    assert summary_text(one).startswith("images: 1 file, 1 classified, 0 unreadable")


def all_texts(figure):
    """Every text a reader sees in `figure`: titles, labels, tick labels, values, legends."""
    return [t for t in figure.findobj(matplotlib.text.Text) if t.get_text().strip() and t.get_visible()]


def task_data():
    from clipnb.models.demo_vocabulary import CLASSES

    rng = np.random.default_rng(0)
    counts = pd.DataFrame(np.eye(48, dtype=int) * 3 + (rng.random((48, 48)) < 0.03), index=list(CLASSES),
                          columns=list(CLASSES))
    comparison = pd.DataFrame([{"templates": t, "ensemble": e, "acc@1": a} for t, e, a in [
        ("seed", "embedding", 0.97), ("seed", "score", 0.95), ("imagenet7", "embedding", 0.99),
        ("imagenet7", "score", 0.98)]])
    times = np.arange(0, 10, 0.5)
    timeline = pd.DataFrame({f"prob_{c}": np.full(len(times), 0.001) for c in CLASSES})
    for name, values in [("red circle", np.where(times < 5, 0.8, 0.1)), ("blue star", np.where(times < 5, 0.1, 0.7)),
                         ("red square", 0.3), ("blue hexagon", 0.2), ("red cross", 0.15)]:
        timeline[f"prob_{name}"] = values
    timeline.insert(0, "time", times)
    timeline["prediction"] = np.where(times < 5, "red circle", "blue star")
    return counts, comparison, timeline


def settings_comparison(changed_rows=(1, 3), count=4):
    settings = ["seed / embedding", "seed / score", "imagenet7 / embedding"]
    names = [f"img {i}.png" for i in range(count)]
    table = pd.DataFrame({s: ["red circle"] * count for s in settings}, index=names)
    for row in changed_rows:
        table.iloc[row, 2] = "blue star"
    table["changed"] = table[settings].nunique(axis=1) > 1
    table.attrs.update(settings=settings, classes=["red circle", "blue star"])
    return table


def test_no_text_smaller_than_9_points_in_any_chart(results, tmp_path):
    from clipnb.report.plots import evaluation as evaluation_plots
    from clipnb.report.plots import video as video_plots

    counts, comparison, timeline = task_data()
    Image.new("RGB", (40, 30), (200, 10, 10)).save(tmp_path / "frame.png")
    frames = type("Frames", (), {"thumbnails": [tmp_path / "frame.png"] * len(timeline)})()
    curve = pd.DataFrame({"shots": [1, 2, 4, 1, 2, 4], "probe_accuracy": [0.5, 0.6, 0.7, 0.4, 0.7, 0.8],
                          "zero_shot_accuracy": 0.6})
    figures = {"report": plotting.report_dashboard(results), "grid": plotting.image_grid(results),
               "classes": plotting.class_dashboard(results), "settings": plotting.comparison_figure(settings_comparison()),
               "confusion": evaluation_plots.confusion_figure(counts.div(counts.sum(axis=1), axis=0), counts),
               "confusion 6": evaluation_plots.confusion_figure(counts.iloc[:6, :6] / 3, counts.iloc[:6, :6]),
               "templates": evaluation_plots.setting_accuracy_figure(comparison),
               "video": video_plots.video_figure(frames, timeline, title="clip.mp4"),
               "shots": evaluation_plots.shots_figure(curve)}
    for name, figure in figures.items():
        small = {t.get_text(): t.get_fontsize() for t in all_texts(drawn(figure)) if t.get_fontsize() < 9}
        assert not small, (name, small)


def test_settings_matrix_can_draw_only_the_images_whose_prediction_changes():
    table = settings_comparison(changed_rows=(1, 3), count=5)
    every = plotting.prediction_matrix(table, ax=Figure().add_subplot())
    assert len(every.get_yticklabels()) == 5 and every.get_title().endswith("2 of 5 images change")
    changed = plotting.prediction_matrix(table, ax=Figure().add_subplot(), only_changed=True)
    assert tick_texts(changed) == ["img 1.png", "img 3.png"]
    assert changed.get_title() == "Predictions per setting: 2 of 5 images change (only those shown)"
    assert all(t.get_fontsize() >= 9 for t in changed.texts + changed.get_yticklabels() + changed.get_xticklabels())
    one = plotting.comparison_figure(settings_comparison(changed_rows=(0,), count=1), only_changed=True)
    assert one.axes[0].get_title() == "Predictions per setting: 1 of 1 image changes"
    few = plotting.comparison_figure(table, only_changed=True, max_rows=1)
    assert few.axes[0].get_title().endswith("2 of 5 images change (1 shown)")
    assert few.get_figheight() < plotting.comparison_figure(table).get_figheight()


def test_image_grid_marks_mistakes_against_the_true_classes(tmp_path):
    classes = ["red circle", "blue square", "green triangle"]
    results = known_results(classes, [0, 1, 2, 0])
    for i in range(4):
        results.loc[i, "path"] = str(tmp_path / f"{i}.png")
        Image.new("RGB", (40, 30), (200, 10, 10)).save(tmp_path / f"{i}.png")
    figure = plotting.image_grid(results, truth=["red circle", "red circle", None, float("nan")])
    titles = [ax.title for ax in figure.findobj(matplotlib.axes.Axes) if ax.get_title()]
    assert [t.get_text() for t in titles] == ["✓ 0.png", "✗ 1.png\ntrue: red circle", "2.png", "3.png"]
    right, wrong, unknown, _ = titles
    assert wrong.get_color() == plotting.MEAN_COLOUR and wrong.get_fontweight() == "bold"
    assert right.get_color() == plotting.RIGHT_COLOUR and right.get_fontweight() == "normal"
    assert unknown.get_color() not in (plotting.MEAN_COLOUR, plotting.RIGHT_COLOUR)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the marks are drawn, not empty boxes
        figure.savefig(__import__("io").BytesIO(), format="png")
    with pytest.raises(ValueError, match="truth has 2 classes but results has 4 rows"):
        plotting.image_grid(results, truth=["red circle", "blue square"])


def test_timeline_lines_side_by_side_take_clearly_different_colours():
    from clipnb.report.plots import video as video_plots

    _, _, timeline = task_data()
    ax = video_plots.probability_timeline(timeline, top=5, ax=Figure().add_subplot())
    names = [line.get_label() for line in ax.get_lines()]
    assert names[:2] == ["red circle", "blue star"]
    colours = [matplotlib.colors.to_rgb(line.get_color()) for line in ax.get_lines()]
    palette = plotting.class_palette(list(plotting.schema.probabilities(timeline).columns))
    assert colours == [pytest.approx(palette[name]) for name in names]  # each class's colour in every chart
    # ΔE in CAM02-UCS (1: just noticeable), the measure of clipnb.report.colours: the husl palette of 48 classes gave
    # red circle and blue star near-identical pinks; two shades of red now stand about 10 apart
    distance = min(colour_distance(a, b) for i, a in enumerate(colours) for b in colours[i + 1:])
    assert distance > 9


def test_template_comparison_legend_sits_outside_the_bars():
    from clipnb.report.plots import evaluation as evaluation_plots

    _, comparison, _ = task_data()
    figure = drawn(evaluation_plots.setting_accuracy_figure(comparison))
    ax = figure.axes[0]
    legend, plot = ax.get_legend().get_window_extent(), ax.get_window_extent()
    assert legend.x0 >= plot.x1 or legend.y1 <= plot.y0  # right of or below the plotting area
    assert legend.x1 <= figure.bbox.x1 + 0.5  # and inside the figure
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["embedding", "score"]


def test_48_class_confusion_matrix_labels_every_class_at_9_points_or_more():
    from clipnb.report.plots import evaluation as evaluation_plots

    counts, _, _ = task_data()
    figure = drawn(evaluation_plots.confusion_figure(counts.div(counts.sum(axis=1), axis=0), counts))
    ax = figure.axes[0]
    for labels in (ax.get_xticklabels(), ax.get_yticklabels()):
        assert len([t for t in labels if t.get_text()]) == 48
        assert min(t.get_fontsize() for t in labels) >= 9
    rows = sorted(t.get_window_extent().y0 for t in ax.get_yticklabels())
    pitch = min(np.diff(rows)) * 72 / figure.dpi
    assert pitch >= 9  # points between the rows' labels: they do not overlap
    assert figure.get_figwidth() <= 20
    assert ax.get_xticklabels()[0].get_rotation() == 90
    colour_counts = plotting.Figure().add_subplot()
    evaluation_plots.confusion_heatmap(counts.iloc[:5, :5], counts.iloc[:5, :5], ax=colour_counts)
    colourbar = colour_counts.collections[0].colorbar
    drawn(colour_counts.figure)
    assert all(float(t).is_integer() for t in visible_ticks(colourbar.ax.yaxis))  # the colour counts images
