"""clipnb.zeroshot.schema: the results table's columns and settings, read through one set of helpers."""
import numpy as np
import pandas as pd
import pytest
import torch

from clipnb.zeroshot import schema
from clipnb.zeroshot.results import results_table
from clipnb.embed.pipeline import EmbeddedImages
from clipnb.zeroshot.scoring import ZeroShotHead

CLASSES = ["猫", "dog", "prob_x"]  # a CJK name, and one that itself starts with the prefix


def table_with_an_unreadable_row():
    head = ZeroShotHead(classes=CLASSES, templates=["{}"], ensemble="embedding",
                        text_features=torch.eye(4)[:3, None, :], logit_scale=10.0)
    features = torch.nn.functional.normalize(torch.tensor([[1.0, 0.2, 0, 0], [0.1, 1.0, 0.3, 0], [0, 0, 0, 0]]), dim=-1)
    features[2] = float("nan")
    records = pd.DataFrame({"path": ["a.jpg", "b.jpg", "c.jpg"], "width": [4, 4, 0], "height": [3, 3, 0],
                            "error": ["", "", "truncated"], "note": ["", "", ""]})
    return results_table(EmbeddedImages(records=records, features=features), head), features


def test_columns_are_named_by_the_schema_in_class_order():
    results, _ = table_with_an_unreadable_row()
    assert list(results.columns) == (schema.BASE_COLUMNS + schema.score_columns(CLASSES)
                                     + schema.prob_columns(CLASSES))
    assert schema.prob_column("猫") == "prob_猫" and schema.score_column("dog") == "score_dog"


def test_scores_and_probabilities_are_class_wide_frames():
    results, features = table_with_an_unreadable_row()
    scores, probs = schema.scores(results), schema.probabilities(results)
    assert list(scores.columns) == CLASSES and list(probs.columns) == CLASSES
    assert probs.index.equals(results.index)
    expected = (features[:2] @ torch.eye(4)[:3].T).numpy()
    assert np.allclose(scores.iloc[:2].to_numpy(), expected, atol=1e-6)
    softmax = torch.softmax(10.0 * torch.from_numpy(expected), dim=1).numpy()
    assert np.allclose(probs.iloc[:2].to_numpy(), softmax, atol=1e-6)
    assert probs.iloc[2].isna().all() and scores.iloc[2].isna().all()
    assert list(schema.probabilities(results, ["dog"]).columns) == ["dog"]
    assert len(schema.readable(results)) == 2


def test_classes_come_from_the_settings_else_from_the_prob_columns():
    results, _ = table_with_an_unreadable_row()
    assert schema.classes(results) == CLASSES
    read_back = pd.DataFrame(results.to_dict("list"))  # what a CSV round trip leaves: no attrs
    assert read_back.attrs == {}
    assert schema.classes(read_back) == CLASSES
    assert np.allclose(schema.probabilities(read_back), schema.probabilities(results), equal_nan=True)


def test_settings_are_documented_and_plain():
    results, _ = table_with_an_unreadable_row()
    assert schema.run_settings(results) == {"templates": ["{}"], "ensemble": "embedding"}
    assert schema.setting(results, "folder_note") is None
    with pytest.raises(KeyError, match="not a documented table setting"):
        schema.setting(results, "colour")
    with pytest.raises(TypeError, match="plain value"):
        schema.set_settings(results, classes=pd.DataFrame())
    assert schema.set_settings(results, model="demo").attrs["model"] == "demo"


def test_sigmoid_probabilities_are_named_in_the_table_and_its_charts():
    import matplotlib
    matplotlib.use("Agg")
    from clipnb.report.plots import base as plotting
    from clipnb.zeroshot import schema
    from clipnb.zeroshot.results import results_table
    from clipnb.embed.pipeline import EmbeddedImages
    from clipnb.zeroshot.scoring import ZeroShotHead
    from clipnb.ui.panel import settings_line

    features = torch.nn.functional.normalize(torch.tensor([[1.0, 0.2, 0.0], [0.1, 1.0, 0.0]]), dim=-1)
    records = pd.DataFrame({"path": ["a.png", "b.png"], "width": [4, 4], "height": [4, 4], "error": ["", ""],
                            "note": ["", ""]})
    embedded = EmbeddedImages(records=records, features=features)
    text = torch.eye(3)[:2, None, :]
    softmax = results_table(embedded, ZeroShotHead(["cat", "dog"], ["{}"], "embedding", text, logit_scale=10.0))
    sigmoid = results_table(embedded, ZeroShotHead(["cat", "dog"], ["{}"], "embedding", text, logit_scale=10.0,
                                                   logit_bias=-5.0))
    assert schema.setting(softmax, "probability") == "softmax" and schema.probability_note(softmax) == ""
    assert schema.setting(sigmoid, "probability") == "sigmoid" and schema.probability_note(sigmoid)
    probs = schema.probabilities(sigmoid).to_numpy()
    assert np.allclose(probs, torch.sigmoid(10.0 * features[:, :2] - 5.0).numpy(), atol=1e-6)
    assert not np.allclose(probs.sum(axis=1), 1.0)
    labels = [ax.get_xlabel() for ax in plotting.class_dashboard(sigmoid).axes]
    assert any(schema.SIGMOID_NOTE in label for label in labels)
    assert not any(schema.SIGMOID_NOTE in ax.get_xlabel() for ax in plotting.class_dashboard(softmax).axes)
    assert schema.SIGMOID_NOTE in settings_line(["cat", "dog"], ["{}"], "embedding", sigmoid=True)
