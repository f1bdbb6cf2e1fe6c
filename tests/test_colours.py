"""clipnb.report.colours: a class is drawn in the colour its name says, shades tell classes of one colour apart, other
classes take distinct categorical colours, light ones are outlined; and every figure, the panel, the map and
the video timeline draw a class in that one colour."""
import itertools

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import rgb_to_hsv, to_hex, to_rgb
from matplotlib.figure import Figure
from PIL import Image

from clipnb.report.plots import base as plotting
from clipnb.zeroshot import schema
from clipnb.report.colours import (MIN_DISTANCE, MIN_SHADE_DISTANCE, NO_CLASS_COLOUR, OUTLINE, class_palette,
                            colour_distance, colour_word, edge_colour)
from clipnb.report.plots.map import MAP_COLOURED, map_colours, map_figure
from clipnb.models.demo_vocabulary import CLASSES
from clipnb.report.plots.video import probability_timeline
from clipnb.ui.panel import ClassifierPanel, class_chart_html

from test_plotting import known_results

# hue ranges (degrees, HSV) a reader calls by these names; wide, as the shades of one colour spread
HUES = {"red": [(345, 360), (0, 15)], "green": [(80, 160)], "blue": [(195, 250)], "yellow": [(40, 65)],
        "orange": [(18, 40)], "purple": [(260, 300)]}


def hue_of(colour) -> float:
    return float(rgb_to_hsv(to_rgb(colour))[0] * 360)


def reads_as(colour, name: str) -> bool:
    saturation = rgb_to_hsv(to_rgb(colour))[1]
    return saturation > 0.3 and any(low <= hue_of(colour) <= high for low, high in HUES[name])


def test_a_colour_word_in_a_class_name_gives_its_colour():
    palette = class_palette(["green square", "红色圆形", "navy coat", "a yellow star", "cat", "橙色六边形",
                             "purple cross", "蓝色三角形"])
    assert reads_as(palette["green square"], "green")  # it was purple (tab10 by position)
    assert reads_as(palette["红色圆形"], "red")
    assert reads_as(palette["a yellow star"], "yellow") and reads_as(palette["橙色六边形"], "orange")
    assert reads_as(palette["purple cross"], "purple") and reads_as(palette["蓝色三角形"], "blue")
    assert reads_as(palette["navy coat"], "blue") and rgb_to_hsv(palette["navy coat"])[2] < 0.6  # a dark blue
    assert colour_word("greyhound") is None and colour_word("Red Panda") == "red"  # whole English words
    assert colour_word("navy blue coat") == "navy" and colour_word("粉红色的花") == "pink"  # the first, the longest


def test_classes_sharing_a_colour_word_get_shades_of_it_that_differ():
    reds = ["red circle", "red square", "red star", "红色六边形"]
    palette = class_palette(reds + ["blue star"])
    for a, b in itertools.combinations(reds, 2):
        assert colour_distance(palette[a], palette[b]) >= MIN_SHADE_DISTANCE, (a, b)
    hues = [hue_of(palette[name]) for name in reds]
    assert all(h >= 330 or h <= 25 for h in hues), hues  # all of them still red (darker, lighter, turned a little)
    assert palette["red circle"] == pytest.approx(to_rgb("tab:red"))  # the first one: red itself


def test_twenty_classes_without_colour_words_are_all_distinct():
    palette = class_palette([f"class {i}" for i in range(20)])
    colours = list(palette.values())
    # ΔE in CAM02-UCS (about 1 is just noticeable): MIN_DISTANCE apart is a different colour, not a shade
    assert min(colour_distance(a, b) for a, b in itertools.combinations(colours, 2)) >= MIN_DISTANCE
    assert min(colour_distance(c, NO_CLASS_COLOUR) for c in colours) >= MIN_DISTANCE  # grey is "no class"
    assert all(edge_colour(c) is None for c in colours)  # none so light that it would vanish on white


def test_classes_without_colour_words_keep_clear_of_the_colours_with_meaning():
    names = ["cat", "dog", "car", "tree", "book", "orange circle", "red square", "blue star"]
    palette = class_palette(names)
    meaning = [palette[n] for n in names[5:]]
    for plain in names[:5]:
        assert min(colour_distance(palette[plain], m) for m in meaning) >= MIN_DISTANCE, plain


def test_a_white_class_has_an_outline_and_a_red_one_has_none():
    palette = class_palette(["white cross", "白色圆形", "red circle"])
    assert palette["white cross"] == pytest.approx((1.0, 1.0, 1.0))
    assert edge_colour(palette["white cross"]) == OUTLINE and edge_colour(palette["白色圆形"]) == OUTLINE
    assert edge_colour(palette["red circle"]) is None and edge_colour(palette["red circle"], "white") == "white"


def test_kept_colours_stay_and_new_classes_keep_clear_of_them():
    first = class_palette(["cat", "dog", "red circle"])
    later = class_palette(["cat", "dog", "red circle", "red square", "bird"], keep=first)
    assert all(later[name] == first[name] for name in first)
    assert reads_as(later["red square"], "red")
    assert colour_distance(later["red square"], later["red circle"]) >= MIN_SHADE_DISTANCE
    assert min(colour_distance(later["bird"], first[n]) for n in first) >= MIN_DISTANCE
    assert class_palette(["cat", "dog"]) == class_palette(["cat", "dog"])  # the same list, the same colours


# ---- every figure draws a class in its colour ----------------------------------------------------------

NAMES = ["green square", "red circle", "white cross", "cat"]


@pytest.fixture()
def results():
    return known_results(NAMES, [0, 0, 1, 2, 3, 1])


def test_bar_charts_and_dashboards_draw_each_class_in_its_colour(results):
    palette = class_palette(NAMES)
    figure = plotting.report_dashboard(results)
    bars = figure.axes[0]  # predicted classes
    drawn = {tick.get_text(): patch for tick, patch in zip(bars.get_yticklabels(), bars.patches)}
    assert reads_as(drawn["green square"].get_facecolor(), "green")
    assert reads_as(drawn["red circle"].get_facecolor(), "red")
    for name in NAMES:
        assert drawn[name].get_facecolor()[:3] == pytest.approx(palette[name])
    assert to_hex(drawn["white cross"].get_edgecolor()) == OUTLINE.lower()  # white on white needs its rim
    assert to_hex(drawn["red circle"].get_edgecolor()) == "#ffffff"


def test_the_image_grid_draws_each_winner_in_its_colour(results):
    figure = plotting.image_grid(results, rows=[0, 2])
    winners = [ax.patches[0] for cell in figure.subfigs for ax in cell.axes if ax.patches]  # the top bar of each
    assert len(winners) == 2
    assert reads_as(winners[0].get_facecolor(), "green") and reads_as(winners[1].get_facecolor(), "red")


def test_the_settings_matrix_colours_cells_by_class():
    comparison = pd.DataFrame({"basic": ["green square", "red circle"], "imagenet80": ["green square", "cat"]},
                              index=["a.png", "b.png"])
    comparison["changed"] = [False, True]
    schema.set_settings(comparison, settings=["basic", "imagenet80"], classes=NAMES)
    ax = plotting.prediction_matrix(comparison, ax=Figure().add_subplot())
    cells = [p for p in ax.patches if p.get_fill()]
    # the changed row first: b.png (red circle, cat), then a.png (green square, green square)
    assert reads_as(cells[0].get_facecolor(), "red") and reads_as(cells[2].get_facecolor(), "green")


def map_table(classes, predictions):
    rng = np.random.default_rng(0)
    table = pd.DataFrame({"row": range(len(predictions)), "path": [f"/p/{i}.png" for i in range(len(predictions))],
                          "x": rng.normal(size=len(predictions)), "y": rng.normal(size=len(predictions)),
                          "prediction": predictions, "confidence": 0.5, "cluster": 0})
    schema.set_settings(table, classes=list(classes))
    return table


def test_the_map_draws_each_class_in_its_colour_and_outlines_white():
    table = map_table(NAMES, ["green square", "red circle", "white cross", "cat", "green square"])
    ax = map_figure(table, "prediction").axes[0]
    by_size = {len(c.get_offsets()): c for c in ax.collections}
    assert reads_as(by_size[2].get_facecolor()[0], "green")  # the two green squares
    palette = class_palette(NAMES)
    white = [c for c in ax.collections if np.allclose(c.get_facecolor()[0][:3], palette["white cross"])]
    assert len(white) == 1 and to_hex(white[0].get_edgecolor()[0]) == OUTLINE.lower()


def test_a_map_of_many_classes_colours_the_most_frequent_and_greys_the_rest():
    counts = {name: 48 - i for i, name in enumerate(CLASSES)}  # the first classes are the most frequent
    predictions = [name for name, count in counts.items() for _ in range(count)]
    labels, colours = map_colours(map_table(CLASSES, predictions), "prediction")
    coloured = [n for n, c in colours.items() if c != pytest.approx(to_rgb(NO_CLASS_COLOUR))]
    assert coloured == list(CLASSES[:MAP_COLOURED])
    other = f"other {48 - MAP_COLOURED} classes (grey)"
    assert other in colours and labels.count(other) == sum(list(counts.values())[MAP_COLOURED:])
    legend = [t.get_text() for t in map_figure(map_table(CLASSES, predictions)).axes[0].get_legend().get_texts()]
    assert legend[-1] == f"{other} ({labels.count(other)})" and len(legend) == MAP_COLOURED + 1
    for a, b in itertools.combinations(coloured, 2):  # the shown ones: told apart
        assert colour_distance(colours[a], colours[b]) >= MIN_SHADE_DISTANCE - 3, (a, b)


def test_the_video_timeline_draws_each_class_in_its_colour():
    probabilities = np.array([[0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.1, 0.2, 0.7]])
    timeline = pd.DataFrame({"frame": [0, 1, 2], "time": [0.0, 0.5, 1.0], "prediction": ["red circle", "blue star",
                             "white cross"], "confidence": probabilities.max(axis=1)})
    for i, name in enumerate(["red circle", "blue star", "white cross"]):
        timeline[f"prob_{name}"] = probabilities[:, i]
    ax = probability_timeline(timeline, ax=Figure().add_subplot())
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert reads_as(lines["red circle"].get_color(), "red")  # notebook 06 drew it as an orange line
    assert reads_as(lines["blue star"].get_color(), "blue")
    assert lines["white cross"].get_path_effects() and not lines["red circle"].get_path_effects()


def test_the_panel_and_its_chart_use_the_same_colours(tiny_model, tmp_path):
    for i, colour in enumerate(["red", "green", "white"]):
        Image.new("RGB", (40, 30), colour).save(tmp_path / f"{i}.png")
    panel = ClassifierPanel.from_folder(tiny_model, tmp_path, ["cat", "red circle"], "basic", typing_delay=0)
    panel.new_class.value = "green square"
    panel.add_class_button.click()
    assert reads_as(panel.palette["green square"], "green") and reads_as(panel.palette["red circle"], "red")
    assert panel.palette == class_palette(["cat", "red circle", "green square"])
    assert to_hex(panel.palette["green square"]) in panel.html
    white = class_chart_html(known_results(["white cross", "cat"], [0, 1]), class_palette(["white cross", "cat"]))
    assert f"background:#ffffff;box-shadow:inset 0 0 0 1px {OUTLINE}" in white


def test_the_map_panel_colours_as_the_figure_and_still_names_a_grey_class_on_hover():
    from clipnb.ui.map_panel import MapPanel

    counts = {name: 48 - i for i, name in enumerate(CLASSES)}
    predictions = [name for name, count in counts.items() for _ in range(count)]
    panel = MapPanel(map_table(CLASSES, predictions))
    palette = class_palette(CLASSES)
    dots = panel.figure.data[0]
    assert dots.marker.color[0] == to_hex(palette["red circle"])  # as in the report figure and the dashboards
    last = len(predictions) - 1  # a black cross: not among the 20 most frequent, drawn grey
    assert dots.marker.color[last] == NO_CLASS_COLOUR and dots.text[last].endswith("<br>black cross")
    assert "other 28 classes (grey)" in panel.legend_view.value and "black cross" not in panel.legend_view.value
    few = MapPanel(map_table(NAMES, NAMES)).figure.data[0]  # green square, red circle, white cross, cat
    assert list(few.marker.line.color) == [to_hex(few.marker.color[0]), to_hex(few.marker.color[1]),
                                           OUTLINE.lower(), to_hex(few.marker.color[3])]  # a rim on white only
