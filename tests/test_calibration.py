"""clipnb.zeroshot.calibration: the ECE against a hand computation and known samples, temperatures recovered from data
drawn with them, the stratified split and its refusals, one way of applying a temperature, and the demo
model: over-confident on blurred shapes, less so after temperature scaling on held-out images."""
import io
import math
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from clipnb.zeroshot import schema
from clipnb.zeroshot.calibration import (CalibrationWarning, apply_temperature, calibrate, expected_calibration_error,
                                fit_temperature, reliability_table, split_for_calibration)
from clipnb.report.plots.calibration import reliability_figure
from clipnb.zeroshot.results import results_table
from clipnb.embed.pipeline import EmbeddedImages
from clipnb.embed.runner import embed_images
from clipnb.tasks.evaluation import evaluate
from clipnb.report.plots.base import export_figure
from clipnb.zeroshot.scoring import ZeroShotHead, build_head
from clipnb.models.demo_vocabulary import CLASSES

# ---- the error measure ----------------------------------------------------------------------------


def test_ece_matches_a_hand_computation():
    # 5 bins: (0.8, 1]: 0.95 0.9 0.85, 2 of 3 right; (0.4, 0.6]: 0.6 (on the edge: the lower bin) 0.55, 1 of 2;
    # (0.2, 0.4]: 0.3, wrong; [0, 0.2]: 0.15, right (under-confident); a NaN row (an unreadable image) is left out
    confidence = [0.95, 0.9, 0.85, 0.6, 0.55, 0.3, 0.15, float("nan")]
    correct = [True, True, False, True, False, False, True, True]
    ece = (3 / 7) * abs(0.9 - 2 / 3) + (2 / 7) * abs(0.575 - 0.5) + (1 / 7) * abs(0.3 - 0) + (1 / 7) * abs(0.15 - 1)
    assert expected_calibration_error(confidence, correct, bins=5) == pytest.approx(ece)
    table = reliability_table(confidence, correct, bins=5)
    assert list(table["count"]) == [1, 1, 2, 0, 3]
    assert table.loc[0, "gap"] == pytest.approx(0.15 - 1)
    assert list(table["lower"]) == pytest.approx([0, 0.2, 0.4, 0.6, 0.8])
    assert table.loc[4, "confidence"] == pytest.approx(0.9)
    assert table.loc[4, "accuracy"] == pytest.approx(2 / 3)
    assert table.loc[4, "gap"] == pytest.approx(0.9 - 2 / 3)  # above 0: over-confident
    assert table.loc[3, ["confidence", "accuracy", "gap"]].isna().all()  # an empty bin
    assert math.isnan(expected_calibration_error([float("nan")], [True]))
    # a confidence on an edge belongs to the bin below it ((0.2, 0.4] holds 0.4); 0 to the first bin
    assert list(reliability_table([0.0, 0.2, 0.4, 1.0], [1, 1, 1, 1], bins=5)["count"]) == [2, 1, 0, 0, 1]


def test_ece_is_near_zero_when_calibrated_and_large_when_not():
    rng = np.random.default_rng(0)
    confidence = rng.uniform(0, 1, 200_000)
    calibrated = rng.uniform(0, 1, confidence.shape) < confidence  # right as often as it says
    assert expected_calibration_error(confidence, calibrated) < 0.005
    over = rng.uniform(0, 1, confidence.shape) < confidence ** 3  # right less often than it says
    assert expected_calibration_error(confidence, over) > 0.15


def test_reliability_refuses_what_is_not_a_confidence():
    with pytest.raises(ValueError, match=r"confidences must lie in \[0, 1\]"):
        reliability_table([0.5, 1.2], [True, False])
    with pytest.raises(ValueError, match="2 confidences for 1 correct flags"):
        reliability_table([0.5, 0.7], [True])
    with pytest.raises(ValueError, match="bins must be a whole number of at least 1"):
        reliability_table([0.5], [True], bins=0)
    with pytest.raises(ValueError, match="correct must be True/False"):
        reliability_table([0.5], [0.5])


# ---- fitting a temperature -------------------------------------------------------------------------


@pytest.mark.parametrize("temperature", [0.5, 2.0])
def test_fit_recovers_the_temperature_labels_were_drawn_with(temperature):
    rng = np.random.default_rng(1)
    scale = 10.0
    scores = rng.normal(0, 0.3, (20_000, 10))
    logits = scale * scores / temperature
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    labels = (probs.cumsum(axis=1) > rng.uniform(0, 1, (len(probs), 1))).argmax(axis=1)
    # rows with a NaN score (unreadable images) are left out, whatever their label
    scores = np.vstack([scores, np.full((5, 10), np.nan)])
    labels = np.concatenate([labels, np.zeros(5, dtype=int)])
    fitted = fit_temperature(torch.from_numpy(scores), labels, scale)
    assert fitted == pytest.approx(temperature, rel=0.05)


def _sigmoid_loss(scores, labels, scale, bias, temperature):
    logits = (scale * scores + bias) / temperature
    target = np.eye(scores.shape[1])[labels]
    return np.mean(np.sum(np.logaddexp(0, logits) - target * logits, axis=1))


def test_sigmoid_temperature_divides_the_whole_logit_and_minimises_the_per_class_loss():
    rng = np.random.default_rng(2)
    scores = rng.normal(0.1, 0.1, (400, 6))
    labels = rng.integers(0, 6, 400)
    scores[np.arange(400), labels] += 0.15
    scale, bias = 20.0, -6.0
    fitted = fit_temperature(scores, labels, scale, bias)
    grid = np.exp(np.linspace(np.log(0.05), np.log(20), 2001))
    losses = [_sigmoid_loss(scores, labels, scale, bias, t) for t in grid]
    assert _sigmoid_loss(scores, labels, scale, bias, fitted) <= min(losses) + 1e-9
    assert fitted == pytest.approx(grid[int(np.argmin(losses))], rel=0.01)
    head = ZeroShotHead(classes=list("abcdef"), templates=["{}"], ensemble="embedding",
                        text_features=torch.eye(6)[:, None, :], logit_scale=scale, logit_bias=bias)
    calibrated = apply_temperature(head, fitted)
    cosine = torch.from_numpy(scores).float()
    assert torch.allclose(calibrated.probabilities(cosine), torch.sigmoid((scale * cosine + bias) / fitted), atol=1e-6)
    assert head.logit_scale == scale and head.logit_bias == bias  # the given head is left as it was


def test_fit_warns_when_the_data_push_the_temperature_off_its_range():
    scores = np.eye(4)[[0, 1, 2, 3] * 5]  # every row right by a wide margin: lower T is always better
    with pytest.warns(CalibrationWarning, match="at the edge of the search range"):
        fit_temperature(scores, [0, 1, 2, 3] * 5, logit_scale=10.0)


def test_fit_refuses_labels_that_are_not_class_positions():
    with pytest.raises(ValueError, match=r"labels must be class positions 0\.\.2"):
        fit_temperature(np.zeros((2, 3)), [0, 3], 10.0)
    with pytest.raises(ValueError, match="no rows with scores"):
        fit_temperature(np.full((2, 3), np.nan), [0, 1], 10.0)


# ---- the split ------------------------------------------------------------------------------------


def test_split_is_stratified_seeded_and_covers_every_row_once():
    labels = ["a"] * 4 + ["b"] * 3 + ["c"] * 2 + ["a", "b"]
    fit, held = split_for_calibration(labels, fraction=0.5, seed=0)
    assert sorted(np.concatenate([fit, held])) == list(range(len(labels)))
    per_class = lambda rows: pd.Series([labels[r] for r in rows]).value_counts().to_dict()  # noqa: E731
    assert per_class(fit) == {"a": 2, "b": 2, "c": 1}  # a: 5 rows -> 2 (round(2.5)), b: 4 -> 2, c: 2 -> 1
    assert per_class(held) == {"a": 3, "b": 2, "c": 1}
    again = split_for_calibration(labels, fraction=0.5, seed=0)
    assert all((x == y).all() for x, y in zip(again, (fit, held)))
    others = [split_for_calibration(labels, fraction=0.5, seed=s)[0].tolist() for s in range(1, 6)]
    assert any(o != fit.tolist() for o in others)
    fit, held = split_for_calibration(["a", "a", "b", "b"], fraction=0.9)  # at least one of each class held out
    assert len(fit) == 2 and len(held) == 2


def test_split_refuses_too_few_rows_saying_how_many_are_needed():
    with pytest.raises(ValueError, match="class 'c' has 1 labelled image: calibration needs at least 2 labelled "
                                         "images per class"):
        split_for_calibration(["a", "a", "b", "b", "c"])
    with pytest.raises(ValueError, match="at least 2 labelled images per class"):
        split_for_calibration([])
    with pytest.raises(ValueError, match="fraction is the share of rows to fit on"):
        split_for_calibration(["a", "a"], fraction=1.0)


# ---- applying a temperature and calibrating a table -----------------------------------------------


def synthetic(rows_per_class: int = 20, seed: int = 0, unreadable: int = 1):
    """(head, embedded images, labels): 4 classes along unit axes, images near their class, some nearer another."""
    rng = np.random.default_rng(seed)
    classes = ["cat", "dog", "car", "tree"]
    head = ZeroShotHead(classes=classes, templates=["{}"], ensemble="embedding",
                        text_features=torch.eye(4)[:, None, :], logit_scale=12.0)
    labels = [c for c in classes for _ in range(rows_per_class)] + ["dog"] * unreadable
    truth = np.array([classes.index(c) for c in labels])
    features = torch.from_numpy(np.eye(4)[truth] * 0.6 + rng.normal(0, 0.35, (len(labels), 4))).float()
    features[len(labels) - unreadable:] = float("nan")
    features = torch.nn.functional.normalize(features, dim=-1)
    records = pd.DataFrame({"path": [f"{i}.png" for i in range(len(labels))], "width": 10, "height": 10,
                            "error": [""] * (len(labels) - unreadable) + ["not an image"] * unreadable, "note": ""})
    return head, EmbeddedImages(records=records, features=features), labels


def test_a_temperature_applied_to_a_table_is_the_one_of_the_head():
    head, embedded, _ = synthetic()
    table = results_table(embedded, head)
    assert schema.setting(table, "logit_scale") == 12.0 and schema.setting(table, "logit_bias") is None
    cooler = apply_temperature(table, 2.0)
    rescored = results_table(embedded, apply_temperature(head, 2.0))
    probs = schema.prob_columns(head.classes)
    pd.testing.assert_frame_equal(cooler[probs], rescored[probs], check_dtype=False, atol=1e-6)
    assert list(cooler["prediction"]) == list(table["prediction"])  # dividing logits by T > 0 keeps the winner
    np.testing.assert_allclose(cooler["confidence"], rescored["confidence"], atol=1e-6)
    readable = table["error"] == ""
    assert (cooler.loc[readable, "confidence"] < table.loc[readable, "confidence"]).all()
    assert np.allclose(cooler.loc[readable, probs].sum(axis=1), 1.0)
    assert cooler.loc[~readable, probs + ["confidence"]].isna().all().all()
    assert (schema.setting(cooler, "temperature"), schema.setting(cooler, "logit_scale")) == (2.0, 6.0)
    twice = apply_temperature(apply_temperature(table, 2.0), 1.5)
    assert schema.setting(twice, "temperature") == pytest.approx(3.0)
    np.testing.assert_allclose(twice[probs], apply_temperature(table, 3.0)[probs], atol=1e-9)
    assert schema.setting(table, "temperature") is None and table is not cooler  # the given table is unchanged
    np.testing.assert_allclose(apply_temperature(table, np.float32(2.0))[probs], cooler[probs])
    marked = table.copy()
    marked.attrs = dict(table.attrs)
    marked.loc[0, "prediction"] = "unknown"  # a word in place of a class (results_table's unknown=True)
    assert apply_temperature(marked, 2.0).loc[0, "confidence"] == pytest.approx(cooler.loc[0, "confidence"])
    for bad in (0, -1.0, float("nan"), float("inf"), "2", True):
        with pytest.raises(ValueError, match="temperature must be a number above 0"):
            apply_temperature(table, bad)


def test_calibrate_leaves_out_unreadable_rows_and_needs_the_logit_scale():
    head, embedded, labels = synthetic(unreadable=2)
    table = results_table(embedded, head)
    found = calibrate(table, labels, bins=10)
    assert (found.fitted, found.held_out, found.unreadable) == (40, 40, 2)
    for reliability in (found.before, found.after):
        assert reliability["count"].sum() == found.held_out and len(reliability) == 10
    weights = found.before["count"] / found.held_out
    assert (weights * found.before["confidence"].fillna(0)).sum() == pytest.approx(found.mean_confidence_before)
    assert (weights * found.before["accuracy"].fillna(0)).sum() == pytest.approx(found.accuracy)
    read_back = table.copy()
    read_back.attrs = {}  # as a table read back from CSV
    with pytest.raises(ValueError, match="does not say its model's logit scale.*pass logit_scale=model.logit_scale"):
        calibrate(read_back, labels)
    assert calibrate(read_back, labels, logit_scale=12.0, bins=10).temperature == pytest.approx(found.temperature)
    head, embedded, labels = synthetic(rows_per_class=1)
    with pytest.raises(ValueError, match=r"class 'cat' has 1 labelled image \(and 3 more classes\): calibration "
                                         "needs at least 2"):
        calibrate(results_table(embedded, head), labels)
    head, embedded, labels = synthetic(unreadable=2)
    with pytest.raises(ValueError, match="80 labels for 82 results"):
        calibrate(table, labels[:80])
    with pytest.raises(ValueError, match="label 'bird' is not one of the classes"):
        calibrate(table, ["bird"] + labels[1:])


def test_a_sigmoid_table_is_calibrated_with_its_bias():
    head, embedded, labels = synthetic()
    head.logit_bias = -4.0
    table = results_table(embedded, head)
    found = calibrate(table, labels)
    assert found.probability == "sigmoid"
    readable = table["error"] == ""
    truth = [head.classes.index(label) for label in np.array(labels)[readable]]
    fit, _ = split_for_calibration(np.array(labels)[readable])
    direct = fit_temperature(schema.scores(table)[readable].to_numpy()[fit], np.array(truth)[fit], 12.0, -4.0)
    assert found.temperature == pytest.approx(direct)
    cooler = apply_temperature(table, found.temperature)
    expected = torch.sigmoid((12.0 * torch.tensor(schema.scores(table).to_numpy()) - 4.0) / found.temperature)
    np.testing.assert_allclose(schema.probabilities(cooler).to_numpy(), expected.numpy(), atol=1e-6)
    assert schema.setting(cooler, "logit_bias") == pytest.approx(-4.0 / found.temperature)


# ---- the demo model -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def blurred(demo, tmp_path_factory):
    """The demo model's results on 10 heavily blurred shapes of each of its 48 classes, with their labels (5 of
    each class to fit a temperature on, the fewest `calibrate` fits on)."""
    from clipnb.demo.data import blurred_shapes_folder
    from clipnb.data.labels import labels_from_folders

    labelled = labels_from_folders(blurred_shapes_folder(tmp_path_factory.mktemp("blurred"), per_class=10))
    images, labels = list(labelled["path"]), list(labelled["label"])
    embedded = embed_images(demo, images, progress=False, num_workers=0)
    head = build_head(demo, CLASSES)
    return head, embedded, results_table(embedded, head), labels


def test_the_demo_model_is_over_confident_on_blurred_shapes_and_a_temperature_fixes_much_of_it(blurred):
    head, embedded, results, labels = blurred
    accuracy = float((results["prediction"] == pd.Series(labels)).mean())
    confidence = float(results["confidence"].mean())
    print(f"demo model, blurred shapes: accuracy {accuracy:.3f}, mean confidence {confidence:.3f}")
    assert confidence > accuracy + 0.15  # over-confident: the premise of this test
    found = calibrate(results, labels)
    print(found.headline())
    assert found.temperature > 1  # over-confident: the confidences come down
    assert found.mean_confidence_after < found.mean_confidence_before
    assert found.ece_after < 0.6 * found.ece_before
    assert "over-confident" in found.headline()
    calibrated = results_table(embedded, apply_temperature(head, found.temperature))
    assert list(calibrated["prediction"]) == list(results["prediction"])


def test_a_labelled_folder_calibrates_through_its_evaluation(blurred):
    head, embedded, results, labels = blurred
    evaluation = evaluate(results, labels, head.classes)
    found = calibrate(evaluation.table)  # labels from the evaluation's `label` column
    assert (found.fitted, found.held_out, found.unreadable) == (240, 240, 0)
    assert found.temperature == pytest.approx(calibrate(results, labels).temperature)


def test_the_reliability_figure_says_the_errors_in_english_and_chinese(blurred, tmp_path):
    _, _, results, labels = blurred
    found = calibrate(results, labels)
    for lang, before, after in (("en", "before: ECE", "after temperature scaling: ECE"), ("zh", "校准前: ECE", "温度缩放后: ECE")):
        figure = reliability_figure(found, lang=lang)
        titles = [ax.get_title() for ax in figure.axes]
        assert f"{before} {found.ece_before:.1%}" in titles and f"{after} {found.ece_after:.1%}" in titles
        assert f"{found.temperature:.2f}" in figure._suptitle.get_text()
        with warnings.catch_warnings():
            warnings.filterwarnings("error", message="Glyph .* missing")
            figure.savefig(io.BytesIO(), format="png")
    paths = export_figure(reliability_figure(found), tmp_path, "reliability", formats=("png",))
    assert paths[0].stat().st_size > 10_000


def test_classify_with_a_temperature_reports_the_calibrated_confidences(demo, shapes_folder):
    from clipnb import classify

    classes = ["red circle", "blue square", "green star"]
    plain = classify(shapes_folder / "red circle", classes, model=demo, progress=False)
    warm = classify(shapes_folder / "red circle", classes, model=demo, progress=False, temperature=2.5)
    expected = apply_temperature(plain, 2.5)
    assert (warm["prediction"] == plain["prediction"]).all()
    assert np.allclose(warm["confidence"], expected["confidence"], atol=1e-6)
    assert warm.attrs["temperature"] == 2.5 and (warm["confidence"] < plain["confidence"]).all()
    with pytest.raises(ValueError, match="above 0"):
        classify(shapes_folder / "red circle", classes, model=demo, temperature=-1)


def test_evaluate_fits_a_temperature_and_classify_takes_it(demo, shapes_folder, tmp_path, capsys):
    import json

    from clipnb.cli import main
    from clipnb.demo.data import blurred_shapes_folder

    out = tmp_path / "report"
    folder = blurred_shapes_folder(tmp_path / "ten each", per_class=10, classes=["red circle", "blue square",
                                                                                 "green star", "red star"])
    assert main(["evaluate", str(folder), "--model", "demo", "--out", str(out), "--quiet",
                 "--cache-dir", str(tmp_path / "cache")]) == 0
    printed = capsys.readouterr().out
    assert "calibration: temperature" in printed and "--temperature" in printed
    metrics = json.loads((out / "metrics.json").read_text())["calibration"]
    assert metrics["temperature"] > 0 and metrics["fitted_on"] + metrics["measured_on"] == 40
    assert (out / "reliability.png").stat().st_size > 0 and (out / "calibration.csv").exists()
    with pytest.raises(SystemExit):
        main(["classify", str(shapes_folder), "--classes", "a", "b", "--temperature", "0"])
    assert "temperature must be a number above 0" in capsys.readouterr().err


def test_evaluate_says_why_it_cannot_calibrate_one_image_per_class(demo, tmp_path, capsys):
    from clipnb.cli import main
    from clipnb.demo.data import shapes_folder as make_shapes

    folder = make_shapes(tmp_path / "one each", per_class=1, classes=["red circle", "blue square"])
    assert main(["evaluate", str(folder), "--model", "demo", "--out", str(tmp_path / "out"), "--quiet",
                 "--no-cache"]) == 0
    assert "calibration not measured: class" in capsys.readouterr().out


def test_evaluate_says_a_temperature_at_the_edge_of_its_range_in_one_line(demo, tmp_path, capsys):
    from clipnb.cli import main
    from clipnb.demo.data import shapes_folder as make_shapes

    folder = make_shapes(tmp_path / "easy", per_class=10, classes=["red circle", "blue square", "green star"])
    assert main(["evaluate", str(folder), "--model", "demo", "--out", str(tmp_path / "out"), "--quiet",
                 "--no-cache"]) == 0
    err = capsys.readouterr().err
    assert "clipnb: warning: the fitted temperature" in err and "CalibrationWarning" not in err
