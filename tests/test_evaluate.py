"""clipnb.tasks.evaluation: metrics computed by hand, agreement with classify's own predictions on the demo model, and
the `evaluate` command."""
import json

import numpy as np
import pandas as pd
import pytest
import torch

from clipnb import EmbeddingCache, classify
from clipnb.zeroshot.results import results_table
from clipnb.cli import main
from clipnb.embed.pipeline import EmbeddedImages
from clipnb.tasks.evaluation import evaluate, evaluate_labelled
from clipnb.embed.labelled import embed_labelled
from clipnb.zeroshot.scoring import ZeroShotHead
from clipnb.models.demo_vocabulary import CLASSES

from demo_inputs import write_shapes

LETTERS = ["A", "B", "C", "D", "E", "F"]


def hand_made_results():
    """Six classes whose text embeddings are the unit axes, and seven images whose scores are known."""
    head = ZeroShotHead(classes=LETTERS, templates=["{}"], ensemble="embedding",
                        text_features=torch.eye(6)[:, None, :], logit_scale=10.0)
    rows = {  # label: image direction (weights on the axes A..F)
        "a1": ("A", [1, 0, 0, 0, 0, 0]),  # right
        "a2": ("A", [0.6, 0.8, 0, 0, 0, 0]),  # taken for B; A second
        "b1": ("B", [0, 1, 0, 0, 0, 0]),  # right
        "c1": ("C", [0.8, 0, 0.6, 0, 0, 0]),  # taken for A; C second
        "c2": ("C", [0, 0, 1, 0, 0, 0]),  # right
        "f1": ("F", [0.55, 0.5, 0.4, 0.4, 0.3, -0.3]),  # taken for A; F last (rank 6): outside the top 5
        "bad": ("B", None),  # unreadable
    }
    features = torch.tensor([v if v is not None else [float("nan")] * 6 for _, v in rows.values()],
                            dtype=torch.float32)
    features = torch.nn.functional.normalize(features, dim=-1)
    records = pd.DataFrame({"path": list(rows), "width": 10, "height": 10,
                            "error": ["" if v is not None else "not an image" for _, v in rows.values()],
                            "note": ""})
    results = results_table(EmbeddedImages(records=records, features=features), head)
    return results, [label for label, _ in rows.values()]


def test_metrics_match_a_hand_computation():
    results, labels = hand_made_results()
    found = evaluate(results, labels)
    m = found.metrics
    assert (m["images"], m["evaluated"], m["unreadable"], m["top_k"]) == (7, 6, 1, 5)
    assert m["acc@1"] == pytest.approx(3 / 6)
    assert m["acc@5"] == pytest.approx(5 / 6)  # only F (rank 6) falls outside the top 5
    # recall: A 1/2, B 1/1, C 1/2, F 0/1 (D, E have no images and are left out of the mean)
    assert m["mean_per_class_recall"] == pytest.approx((0.5 + 1 + 0.5 + 0) / 4)
    assert list(found.table["rank"]) == [1, 2, 1, 2, 1, 6, 0]
    per_class = found.per_class.set_index("class")
    # predicted A: a1 (right), c1 and f1 (wrong); predicted B: a2 (wrong), b1 (right)
    assert per_class.loc["A", "precision"] == pytest.approx(1 / 3)
    assert per_class.loc["B", "precision"] == pytest.approx(1 / 2)
    assert per_class.loc["C", "precision"] == pytest.approx(1.0)
    assert np.isnan(per_class.loc["F", "precision"]) and per_class.loc["F", "recall"] == 0
    assert np.isnan(per_class.loc["D", "recall"])
    assert per_class["support"].tolist() == [2, 1, 2, 0, 0, 1]
    confusion = found.confusion
    assert confusion.loc["A", "B"] == 1 and confusion.loc["C", "A"] == 1 and confusion.loc["F", "A"] == 1
    assert int(confusion.to_numpy().sum()) == 6  # the unreadable image is in no cell
    normalised = found.confusion_normalised
    assert normalised.loc["A"].tolist()[:2] == [0.5, 0.5] and normalised.loc["D"].isna().all()
    mistakes = found.mistakes()
    assert set(mistakes["path"]) == {"a2", "c1", "f1"}
    assert mistakes["confidence"].is_monotonic_decreasing


def test_labels_must_line_up_with_rows():
    results, labels = hand_made_results()
    with pytest.raises(ValueError, match="7 results"):
        evaluate(results, labels[:-1])


def test_demo_numbers_agree_with_classify(demo, shapes_folder, tmp_path):
    cache = EmbeddingCache(tmp_path / "cache")
    labelled = embed_labelled(demo, shapes_folder, cache=cache, progress=False)
    found = evaluate_labelled(labelled, demo, "seed", "embedding", cache=cache)

    # independently: classify the same folder and compare its predictions with the folder names
    table = classify(shapes_folder, CLASSES, "seed", model=demo, recursive=True, progress=False)
    truth = [p.split("/")[-2] for p in table["path"]]
    predictions = table["prediction"].tolist()
    accuracy = np.mean([p == t for p, t in zip(predictions, truth)])
    probs = table[[f"prob_{c}" for c in CLASSES]].to_numpy()
    top5 = np.argsort(-probs, axis=1)[:, :5]
    accuracy5 = np.mean([CLASSES.index(t) in row for t, row in zip(truth, top5)])
    recall = pd.Series([p == t for p, t in zip(predictions, truth)]).groupby(truth).mean()

    assert found.metrics["evaluated"] == len(table) == 96
    assert found.metrics["acc@1"] == pytest.approx(accuracy)
    assert found.metrics["acc@5"] == pytest.approx(accuracy5)
    assert found.metrics["mean_per_class_recall"] == pytest.approx(recall.mean())
    crosstab = pd.crosstab(pd.Series(truth, name="true"), pd.Series(predictions, name="predicted"))
    for (true, predicted), count in crosstab.stack().items():
        assert found.confusion.loc[true, predicted] == count
    # the demo model knows these classes (chance is 1/48): a label mix-up would show as near-zero accuracy
    assert found.metrics["acc@1"] > 0.5


def test_evaluate_command_writes_metrics_tables_and_figures(demo, tmp_path, capsys):
    folder = write_shapes(tmp_path / "set", per_class=2, classes=CLASSES[:6])
    (folder / "red circle" / "broken.png").write_bytes(b"not a picture")
    out = tmp_path / "report"
    code = main(["evaluate", str(folder), "--model", "demo", "--templates", "seed", "imagenet7", "--out", str(out),
                 "--cache-dir", str(tmp_path / "cache"), "--quiet"])
    printed = capsys.readouterr().out
    assert code == 0
    assert "12 images (1 unreadable), 6 classes: acc@1" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["evaluated"] == 12 and metrics["unreadable"] == 1 and 0 <= metrics["acc@1"] <= 1
    assert len(metrics["comparison"]) == 4
    for name in ("per_image.csv", "per_class.csv", "confusion.csv", "confusion_normalised.csv", "mistakes.csv",
                 "comparison.csv", "confusion.png", "comparison.png"):
        assert (out / name).stat().st_size > 0, name
    confusion = pd.read_csv(out / "confusion.csv", index_col=0)
    assert confusion.to_numpy().sum() == 12
    assert metrics["acc@1"] == pytest.approx(np.trace(confusion.loc[CLASSES[:6], CLASSES[:6]].to_numpy()) / 12)


def test_evaluate_command_in_chinese_writes_the_articles_headers(demo, tmp_path):
    folder = write_shapes(tmp_path / "set", per_class=1, classes=CLASSES[:3])
    out = tmp_path / "report"
    assert main(["evaluate", str(folder), "--model", "demo", "--templates", "basic", "--out", str(out), "--lang", "zh",
                 "--no-cache", "--quiet", "--no-figures"]) == 0
    per_image = pd.read_csv(out / "per_image.csv")
    assert list(per_image.columns[:4]) == ["图像名称", "宽度", "高度", "宽高比"] and "真实类别" in per_image
    assert {"比例类型", "预测类别", "最高置信度", f"{CLASSES[0]}_得分"} <= set(per_image.columns)
    assert "acc@1" in json.loads((out / "metrics.json").read_text())  # read by programs: English keys


@pytest.mark.parametrize("args, message", [
    (["--classes", "red circle"], "is not one of the classes"),
    (["--templates", "no braces"], "template 'no braces' has no"),
    (["--templates", "imagenet81"], "unknown template set"),
    (["--labels", "missing.csv"], "does not exist"),
])
def test_evaluate_command_fails_in_one_line(tmp_path, capsys, args, message):
    folder = write_shapes(tmp_path / "set", per_class=1, classes=["red circle", "blue star"])
    code = main(["evaluate", str(folder), "--model", "no-such-model.pt", *args])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and "\n" not in err
