"""clipnb.widgets.ClassifierPanel driven from Python: set a control's value, check the results, the table,
the charts and the status line; no image is ever encoded twice."""
import base64
import io

import pandas as pd
import pytest
from PIL import Image

import clipnb
from clipnb.classify import prob_column
from clipnb.prompts import TEMPLATE_SETS
from clipnb.widgets import ClassifierPanel, image_table

COLOURS = {"red": (230, 20, 20), "blue": (20, 40, 230), "green": (30, 190, 40), "white": (250, 250, 250),
           "black": (5, 5, 5)}


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("panel-images")
    for name, colour in COLOURS.items():
        Image.new("RGB", (48, 36), colour).save(folder / f"{name}.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    return folder


@pytest.fixture()
def counted(tiny_model, monkeypatch):
    """The tiny model, counting every image it encodes."""
    count = {"images": 0}
    original = tiny_model.encode_image_tensors

    def encode(pixels):
        count["images"] += len(pixels)
        return original(pixels)

    monkeypatch.setattr(tiny_model, "encode_image_tensors", encode)
    return tiny_model, count


@pytest.fixture()
def panel(counted, image_folder, tmp_path):
    model, count = counted
    panel = ClassifierPanel.from_folder(model, image_folder, ["red", "blue", "green"], "seed",
                                        output_dir=tmp_path / "out", max_shown=3)
    assert count["images"] == 5  # the readable images, once
    return panel


def shown_png(panel, index):
    return base64.b64decode(panel.charts_out.outputs[index]["data"]["image/png"])


def shown_table(panel):
    return panel.table_out.outputs[0]["data"]["text/html"]


def test_panel_starts_with_results_charts_and_a_table(panel):
    assert panel.error == ""
    assert panel.results.attrs["classes"] == ["red", "blue", "green"]
    assert len(panel.results) == 6 and panel.results["error"].astype(bool).sum() == 1
    assert [o["data"]["text/plain"] for o in panel.charts_out.outputs] == ["<images chart>", "<classes chart>"]
    for index in (0, 1):
        with Image.open(io.BytesIO(shown_png(panel, index))) as image:
            assert image.format == "PNG" and image.width > 300
    table = panel.table
    assert list(table["image"]) == ["black.png", "blue.png", "broken.jpg"]
    assert table["error"].iloc[2] and table["error"].iloc[2] in shown_table(panel)
    assert all(name in shown_table(panel) for name in table["image"])
    assert "5 images re-scored" in panel.message
    assert "clipnb-charts" in panel.charts_out._dom_classes
    assert "application/vnd.jupyter.widget-view+json" in panel._repr_mimebundle_()


def test_adding_a_class_rescores_and_redraws_without_encoding_an_image(panel, counted):
    _, count = counted
    before_png, before_table = shown_png(panel, 1), shown_table(panel)
    panel.new_class.value = "white"
    panel.add_class_button.click()
    assert panel.classes == ["red", "blue", "green", "white"]
    assert panel.new_class.value == ""
    assert prob_column("white") in panel.results.columns
    assert panel.results.loc[panel.results["error"] == "", [prob_column(c) for c in panel.classes]].sum(axis=1).tolist() \
        == pytest.approx([1.0] * 5)
    assert shown_png(panel, 1) != before_png
    assert shown_table(panel) != before_table
    assert count["images"] == 5


def test_removing_the_selected_class_rescores(panel):
    panel.class_list.value = "blue"
    panel.remove_class_button.click()
    assert panel.classes == ["red", "green"]
    assert prob_column("blue") not in panel.results.columns
    assert set(panel.results["prediction"].dropna()) <= {"red", "green"}


def test_a_class_keeps_its_colour_in_the_charts_when_another_is_removed(panel):
    before = panel.palette
    panel.remove_class("red")
    panel.new_class.value = "white"
    panel.add_class_button.click()
    assert panel.palette["blue"] == before["blue"] and panel.palette["green"] == before["green"]
    assert panel.palette["white"] not in (before["blue"], before["green"])
    counts = panel.figures["classes"].axes[0]
    for label, bar in zip(counts.get_yticklabels(), counts.patches):
        assert tuple(bar.get_facecolor()[:3]) == pytest.approx(panel.palette[label.get_text()])


def test_switching_the_ensembling_method_changes_the_scores(panel, counted):
    _, count = counted
    before = panel.results
    panel.ensemble.value = "score"
    assert panel.results.attrs["ensemble"] == "score"
    columns = [f"score_{c}" for c in panel.classes]
    good = panel.results["error"] == ""
    assert not (panel.results.loc[good, columns].to_numpy() == before.loc[good, columns].to_numpy()).all()
    assert count["images"] == 5


def test_template_set_and_template_list_stay_in_step(panel):
    panel.template_set.value = "imagenet7"
    assert panel.template_list == TEMPLATE_SETS["imagenet7"]
    assert panel.results.attrs["templates"] == TEMPLATE_SETS["imagenet7"]
    panel.templates.value = "a photo of a {}\n\na drawing of a {}\n"
    assert panel.template_set.value == "custom"
    assert panel.results.attrs["templates"] == ["a photo of a {}", "a drawing of a {}"]
    panel.templates.value = "\n".join(TEMPLATE_SETS["seed"])
    assert panel.template_set.value == "seed"


@pytest.mark.parametrize("bad, message", [
    ("a photo of a {}\na photo without the braces", "has no '{}'"),
    ("a photo of a {}\na photo of a {}", "given twice"),
    ("\n  \n", "no templates given"),
])
def test_a_bad_template_shows_a_message_and_keeps_the_last_good_results(panel, bad, message):
    results, pngs, table, scorings = panel.results, panel.pngs, shown_table(panel), panel.scorings
    panel.templates.value = bad
    assert message in panel.error
    assert "last good" in panel.error and "⚠" in panel.status.value
    assert panel.results is results and panel.pngs is pngs and shown_table(panel) == table
    assert panel.scorings == scorings
    panel.templates.value = "a photo of a {}"  # fixing it clears the message
    assert panel.error == "" and panel.results is not results


@pytest.mark.parametrize("name, message", [("   ", "name is empty"), ("Red", "given twice"), ("blue", "given twice")])
def test_an_empty_or_repeated_class_is_refused_with_a_message(panel, name, message):
    results = panel.results
    panel.new_class.value = name
    panel.add_class_button.click()
    assert message in panel.error and "class not added" in panel.error
    assert panel.classes == ["red", "blue", "green"] and panel.results is results


def test_the_last_class_cannot_be_removed(panel):
    for name in ("red", "blue"):
        panel.remove_class(name)
    panel.class_list.value = "green"
    panel.remove_class_button.click()
    assert panel.classes == ["green"] and "last one" in panel.error


def test_choosing_the_images_shown_redraws_without_rescoring(panel):
    scorings, grid = panel.scorings, shown_png(panel, 0)
    panel.shown.value = (4, 5)
    assert list(panel.table["image"]) == ["red.png", "white.png"]
    assert "red.png" in shown_table(panel) and "black.png" not in shown_table(panel)
    assert shown_png(panel, 0) != grid
    assert panel.scorings == scorings


def test_export_writes_the_csv_and_every_chart_and_says_where(panel, tmp_path):
    panel.new_class.value = "black"
    panel.add_class_button.click()
    written = panel.export()
    folder = (tmp_path / "out").resolve()
    assert {p.name for p in written} == {"classification.csv", "class_summary.csv"} | {
        f"panel_{chart}.{fmt}" for chart in ("images", "classes") for fmt in ("png", "svg", "pdf")}
    assert str(folder) in panel.message and "exported 8 files" in panel.message
    table = pd.read_csv(folder / "classification.csv", encoding="utf-8-sig")
    assert {"path", "prediction", "confidence", "error", prob_column("black")} <= set(table.columns)
    assert len(table) == 6
    summary = pd.read_csv(folder / "class_summary.csv")
    assert list(summary["class"]) == ["red", "blue", "green", "black"]
    for name in ("panel_images.png", "panel_classes.png"):
        with Image.open(folder / name) as image:
            image.load()
    assert (folder / "panel_images.pdf").read_bytes().startswith(b"%PDF")


def test_export_to_a_folder_that_cannot_be_written_shows_a_message(panel, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    panel.output_dir.value = str(blocker / "reports")
    assert panel.export() == []
    assert "export failed" in panel.error and str(blocker) in panel.error
    assert panel.results is not None


def test_image_table_ranks_the_runner_up(panel):
    table = image_table(panel.results)
    good = table[table["error"] == ""]
    assert (good["confidence"] >= good["runner-up probability"]).all()
    assert (good["prediction"] != good["runner-up"]).all()
