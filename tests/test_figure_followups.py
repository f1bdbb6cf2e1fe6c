"""Figures that do not mislead (issue 24, follow-ups of the browser walk-through of every notebook): images of
no class told apart from the classes a map greys, a video's timeline in steps over its whole sampled span, a
confusion matrix that says what its colour is and whether its cells hold counts, a setting's headline that names
it, a few-shot legend that lists only what is drawn, and thumbnails on one baseline with their file names."""
import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_hex
from matplotlib.markers import MarkerStyle
from PIL import Image

from clipnb.report.plots import base as plotting
from clipnb.report.colours import NO_CLASS_COLOUR, OUTLINE
from clipnb.report.plots.map import map_figure
from clipnb.words import UNKNOWN
from clipnb.models.demo_vocabulary import CLASSES

from test_colours import map_table


def marker_of(collection) -> str:
    """"X" or "o": the marker a scatter collection draws (its path is the marker's own)."""
    path = collection.get_paths()[0]
    for marker in ("X", "o"):
        style = MarkerStyle(marker)
        expected = style.get_path().transformed(style.get_transform()).vertices
        if expected.shape == path.vertices.shape and np.allclose(expected, path.vertices):
            return marker
    return "?"


# ---- 1. notebook 09's map: images of no class are not the grey of the classes left uncoloured --------------

def many_classes_and_unknown():
    """48 classes, the first most frequent (so 28 are greyed as "other"), and 11 images that fit no class."""
    counts = {name: 48 - i for i, name in enumerate(CLASSES)}
    return map_table(CLASSES, [name for name, count in counts.items() for _ in range(count)] + [UNKNOWN] * 11)


def test_the_map_draws_images_of_no_class_as_crosses_and_the_other_classes_as_grey_dots():
    ax = map_figure(many_classes_and_unknown(), "prediction").axes[0]
    grey = [c for c in ax.collections if to_hex(c.get_facecolor()[0]) == NO_CLASS_COLOUR]
    by_count = {len(c.get_offsets()): c for c in grey}
    other_count = sum(48 - i for i in range(20, 48))
    assert set(by_count) == {11, other_count}
    assert marker_of(by_count[11]) == "X" and to_hex(by_count[11].get_edgecolor()[0]) == OUTLINE.lower()
    assert marker_of(by_count[other_count]) == "o"
    legend = {t.get_text(): h for t, h in zip(ax.get_legend().get_texts(), ax.get_legend().legend_handles)}
    assert legend["unknown (11)"].get_marker() == "X"
    assert legend[f"other 28 classes (grey) ({other_count})"].get_marker() == "o"


def test_the_map_panel_marks_images_of_no_class_with_crosses_in_the_map_and_its_legend():
    from clipnb.ui.map_panel import MapPanel

    table = many_classes_and_unknown()
    panel = MapPanel(table)
    symbols = list(panel.figure.data[0].marker.symbol)
    unknown = table["prediction"] == UNKNOWN
    assert {symbols[i] for i in np.flatnonzero(unknown)} == {"x"}
    assert {symbols[i] for i in np.flatnonzero(~unknown)} == {"circle"}
    legend = panel.legend_view.value
    row = legend[:legend.index("unknown")].rsplit("<div>", 1)[1]
    assert "✖" in row and "border-radius" not in row
    row = legend[:legend.index("other 28 classes")].rsplit("<div>", 1)[1]
    assert "✖" not in row and "border-radius" in row


# ---- 2. notebook 06's timeline: steps, each sample held until the next, over the whole sampled span ---------

def test_the_timeline_holds_each_sample_until_the_next_and_runs_to_the_end_of_the_last_segment():
    from clipnb.tasks.video import classify_video
    from clipnb.report.plots.video import probability_timeline, video_figure
    from test_video_overall import frames_showing, head

    result = classify_video(frames_showing([0, 0, 1], every_seconds=2.0), head())  # samples at 0, 2 and 4 s
    last_end = float(result.segments()["end"].iloc[-1])
    assert last_end == 6.0  # the segments table's last row: 4.00-6.00
    figure = video_figure(result.frames, result.timeline)
    ax = figure.axes[-1]
    assert ax.get_xlim()[1] == last_end
    for line in ax.get_lines():
        assert line.get_drawstyle() == "steps-post"
        times, values = line.get_data()
        assert list(times) == [0.0, 2.0, 4.0, 6.0] and values[-1] == values[-2]  # the last sample held to 6 s
    # without the frames, the last sample holds one typical step, as `segments` says
    ax = probability_timeline(result.timeline)
    assert ax.get_xlim()[1] == 6.0 and all(line.get_drawstyle() == "steps-post" for line in ax.get_lines())


# ---- 3. notebook 04's confusion matrix: what the colour is, and counts only where they fit ----------------

def confusion(classes):
    """Counts (rows true, columns predicted): each class's images right, one of the first class taken for the
    second; and the row-normalised matrix."""
    counts = pd.DataFrame(np.diag(np.full(len(classes), 3)), index=list(classes), columns=list(classes))
    counts.iloc[0, 0], counts.iloc[0, 1] = 2, 1
    return counts.div(counts.sum(axis=1), axis=0), counts


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_confusion_matrix_of_many_classes_says_its_cells_hold_no_counts_and_what_its_colour_is(lang):
    from clipnb.report.plots.evaluation import confusion_figure
    from clipnb.words import word

    ax = confusion_figure(*confusion(CLASSES), lang=lang).axes[0]
    assert len(ax.texts) == 0  # 48 classes: no count is written
    assert ax.get_title() == word("title.confusion_no_counts", lang, class_count=48)  # wide enough: unwrapped
    assert ax.collections[0].colorbar.ax.get_ylabel() == word("axis.row_share", lang)
    if lang == "en":
        assert ax.get_title().startswith("confusion matrix (colour: share of the row's images)\nno counts in the cells")


def test_a_confusion_matrix_of_few_classes_writes_its_counts_and_says_so():
    from clipnb.report.plots.evaluation import confusion_figure

    normalised, counts = confusion(CLASSES[:5])
    ax = confusion_figure(normalised, counts).axes[0]
    assert sorted(t.get_text() for t in ax.texts) == sorted(str(v) for v in counts.to_numpy().ravel())
    assert " ".join(ax.get_title().split()) == ("confusion matrix (colour: share of the row's images) cells: "
                                                "image counts")  # wrapped to the figure's width
    shares = confusion_figure(normalised).axes[0]  # without counts the cells hold the shares, and it says so
    assert "0.67" in [t.get_text() for t in shares.texts]
    assert " ".join(shares.get_title().split()) == "confusion matrix colour and cells: share of the row's images"


# ---- 5. notebook 07's few-shot curve: the legend lists only what is drawn ----------------------------------

def shots_curve_table(trials: int) -> pd.DataFrame:
    rows = [{"shots": shots, "trial": trial, "probe_accuracy": min(1.0, 0.3 + 0.1 * shots + 0.05 * trial),
             "zero_shot_accuracy": 0.5} for shots in (1, 2, 4) for trial in range(trials)]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_one_trial_draws_no_range_and_its_legend_lists_none(lang):
    from clipnb.report.plots.evaluation import shots_figure
    from clipnb.words import word

    ax = shots_figure(shots_curve_table(1), lang=lang).axes[0]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert len(ax.collections) == 0  # no band
    assert word("legend.trials", lang) not in legend and legend[0] == word("legend.probe_one", lang)
    ax = shots_figure(shots_curve_table(3), lang=lang).axes[0]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert len(ax.collections) == 1 and word("legend.trials", lang) in legend  # three trials: the band, listed
    assert legend[0] == word("legend.probe", lang)


# ---- 6. notebooks 05 and 08: thumbnails on one baseline, each with its file name and score -----------------

def pictures(folder):
    """A square, a wide and a tall picture, named for their shapes."""
    paths = []
    for name, size in [("square.png", (60, 60)), ("wide.png", (80, 45)), ("tall.png", (45, 80))]:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", size, (200, 40, 40)).save(folder / name)
        paths.append(str(folder / name))
    return paths


def drawn_tops(figure):
    """Each image axes' top and its title's baseline, in pixels, once drawn."""
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    axes = [ax for ax in figure.axes if ax.images]
    return ([ax.get_window_extent(renderer).y1 for ax in axes],
            [ax.title.get_window_extent(renderer).y0 for ax in axes])


def test_thumbnails_of_different_shapes_start_at_one_height_under_titles_on_one_baseline(tmp_path):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    figure = plotting.thumbnails_figure(pictures(tmp_path), ["square", "wide", "tall"])
    FigureCanvasAgg(figure)
    tops, baselines = drawn_tops(figure)
    assert max(tops) - min(tops) < 1  # pixels
    assert max(baselines) - min(baselines) < 1


def test_similar_images_are_captioned_with_their_file_names_and_scores(tmp_path):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from clipnb.report.plots.search import similar_figure

    query, *others = pictures(tmp_path / "photos")
    similar = pd.DataFrame({"rank": [1, 2], "path": others, "score": [0.8123, 0.5]})
    figure = similar_figure(query, similar)
    FigureCanvasAgg(figure)
    titles = [" ".join(ax.get_title().split()) for ax in figure.axes if ax.images]
    assert titles == ["query: square.png", "1. 0.812 wide.png", "2. 0.500 tall.png"]
    assert figure._suptitle.get_text() == "similar images"
    tops, baselines = drawn_tops(figure)
    assert max(baselines) - min(baselines) < 1
    zh = similar_figure(query, similar, lang="zh")
    assert " ".join([ax.get_title() for ax in zh.axes if ax.images][0].split()) == "查询图像: square.png"


# ---- 4. notebook 04's "try another setting": the headline names the setting; the controls on one line -------

def test_the_setting_switchers_headline_names_the_setting_even_when_no_number_changes(monkeypatch, capsys):
    import clipnb
    from clipnb.report.plots import evaluation as evaluation_plots
    from clipnb.tasks.evaluation import evaluate
    from clipnb.words import word
    from conftest import load_script
    from test_plotting import known_results

    names = ["red circle", "blue square"]
    same = evaluate(known_results(names, [0, 1, 1]), ["red circle", "blue square", "blue square"])
    monkeypatch.setattr(clipnb, "evaluate_labelled", lambda *args, **kwargs: same)  # every setting: one result
    cells = [source for kind, source in load_script("build_notebooks").EVALUATION
             if kind == "code" and "def redraw" in source]
    assert len(cells) == 1
    space = {"clipnb": clipnb, "evaluation_plots": evaluation_plots, "word": word, "LANG": "en", "labelled": None,
             "model": None, "cache": None, "sets": {"basic": ["a photo of a {}"], "imagenet7": ["a {}"]},
             "first": "basic", "ensemble": "embedding"}

    def headline() -> str:  # the line printed with the headline (outside a kernel, clear_output prints escapes)
        lines = [line for line in capsys.readouterr().out.splitlines() if same.headline() in line]
        assert len(lines) == 1 and lines[0].endswith(same.headline())  # the same numbers...
        return lines[0]

    exec(cells[0], space)
    first = headline()
    space["method_choice"].value = "score"
    switched = headline()
    space["set_choice"].value = "imagenet7"
    both = headline()
    assert "basic" in first and "embedding" in first  # ...under a line that names the setting
    assert "basic" in switched and "score" in switched and "embedding" not in switched
    assert "imagenet7" in both and "score" in both
    toggle = space["method_choice"]
    assert toggle.style.button_width == "auto" and toggle.layout.flex == "0 0 auto"  # never squeezed to wrap
