"""Images that fit none of the classes: flagged by their best score against the folder's, optionally unknown."""
import shutil

import numpy as np
import pytest

from clipnb import classify
from clipnb.report.plots import base as plotting
from clipnb.tasks import summary
from clipnb.cli import main
from clipnb.demo.data import shapes_folder
from clipnb.zeroshot.outliers import UNKNOWN, mark_outliers, robust_z
from clipnb.zeroshot.prompts import PromptError

from conftest import TEST_IMAGES

CLASSES = ["red circle", "blue square", "green star"]
OFF_TOPIC = ["car.jpg", "cat.jpg"]


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """Shapes of the three classes, five each, and two photos that are none of them."""
    root = tmp_path_factory.mktemp("mixed")
    shapes_folder(root / "shapes", per_class=5, classes=CLASSES)
    folder = root / "folder"
    folder.mkdir()
    for path in sorted((root / "shapes").rglob("*.png")):
        shutil.copy(path, folder / f"{path.parent.name}-{path.name}")
    for name in OFF_TOPIC:
        shutil.copy(TEST_IMAGES / name, folder)
    return folder


def names(table):
    return sorted(p.rsplit("/", 1)[-1] for p in table["path"])


def test_off_topic_photos_are_flagged_although_softmax_is_confident(mixed, demo):
    results = classify(mixed, CLASSES, model=demo, progress=False)
    assert names(results[results["outlier"]]) == OFF_TOPIC
    assert (results.loc[results["outlier"], "outlier_z"] < -3.5).all()
    assert results.loc[results["outlier"], "prediction"].isin(CLASSES).all()  # forced into a class by default
    assert results.loc[results["outlier"], "confidence"].max() > 0.8  # which is why the flag matters


def test_unknown_reports_them_as_unknown_in_the_table_summary_and_dashboard(mixed, demo):
    results = classify(mixed, CLASSES, model=demo, progress=False, unknown=True)
    assert names(results[results["prediction"] == UNKNOWN]) == OFF_TOPIC
    counts = summary.prediction_counts(results).set_index("class")["count"]
    assert counts[UNKNOWN] == 2 and counts.sum() == len(results)
    text = summary.summary_text(results)
    assert "unknown: 2" in text and "2 images fit none of the classes" in text
    figure = plotting.report_dashboard(results)
    assert "2 fitting no class well" in figure._suptitle.get_text()
    labels = [t.get_text() for t in figure.axes[0].get_yticklabels()]
    assert UNKNOWN in labels


@pytest.mark.parametrize("name", ["unknown", "Unknown", " UNKNOWN "])
def test_a_class_named_unknown_is_refused_before_any_image_is_read(mixed, demo, name):
    with pytest.raises(PromptError, match="is named"):
        classify(mixed, [name, "red circle"], model=demo, progress=False, unknown=True)


def test_the_class_summary_and_the_settings_say_unknown(mixed, demo):
    results = classify(mixed, CLASSES, model=demo, progress=False, unknown=True)
    rows = summary.class_summary(results).set_index("class")
    assert rows.at[UNKNOWN, "predicted"] == 2 and rows["predicted"].sum() == len(results)
    assert np.isnan(rows.at[UNKNOWN, "mean_score"])
    assert results.attrs["unknown"] is True
    assert "unknown" not in classify(mixed, CLASSES, model=demo, progress=False).attrs


def test_the_panel_says_how_many_fit_no_class_and_exports_the_setting(mixed, demo, tmp_path):
    import json

    from clipnb.ui.panel import ClassifierPanel

    panel = ClassifierPanel.from_folder(demo, mixed, CLASSES, output_dir=tmp_path)
    assert "2 images fit no class well (marked ⚠)" in panel.message
    assert panel.html.count("⚠ fits none of the classes") == 2  # both photos are among the cards shown
    panel.unknown.value = True
    assert "2 images fit no class well, shown as unknown" in panel.message
    assert (panel.results["prediction"] == UNKNOWN).sum() == 2
    written = panel.export()
    settings = json.loads(next(p for p in written if p.name == "settings.json").read_text())
    assert settings["unknown"] is True


def test_the_rule_is_relative_to_the_folder_and_needs_enough_images():
    typical = np.r_[np.linspace(0.60, 0.62, 20), 0.3]
    z = robust_z(typical)
    assert z[-1] < -3.5 and (np.abs(z[:-1]) < 3.5).all()
    assert np.isnan(robust_z(typical[:5])).all()  # too few images to say what is typical
    assert np.isnan(robust_z(np.full(10, 0.5))).all()  # no spread: nothing stands out
    assert np.isnan(robust_z(np.r_[typical, np.nan]))[-1]


def test_mark_outliers_on_a_whole_table_and_bad_cuts(mixed, demo):
    results = classify(mixed, CLASSES, model=demo, progress=False)
    marked = mark_outliers(results, unknown=True, cut=100.0)
    assert not marked["outlier"].any() and list(marked.columns) == list(results.columns)
    with pytest.raises(ValueError, match="positive number"):
        mark_outliers(results, cut=0)


def test_the_command_line_reports_unknown(mixed, tmp_path, capsys):
    out = tmp_path / "results.csv"
    assert main(["classify", str(mixed), "--classes", *CLASSES, "--model", "demo", "--unknown", "--quiet",
                 "--csv", str(out), "--cache-dir", str(tmp_path / "cache")]) == 0
    printed = capsys.readouterr().out
    assert "unknown: 2" in printed and "cat.jpg" in printed


def test_a_chinese_report_says_unknown_in_chinese(mixed, demo):
    from clipnb import localised

    results = classify(mixed, CLASSES, model=demo, progress=False, unknown=True)
    chinese = localised(results, "zh")
    assert (chinese["预测类别"] == "未知").sum() == 2 and "离群" in chinese.columns
    assert "unknown" not in set(chinese["预测类别"])
