"""clipnb.tasks.prompt_settings: one comparison of prompt settings (template sets x ensembling) on embeddings computed once,
with accuracy when labels are known, and the images whose prediction changes."""
import pandas as pd
import pytest
from PIL import Image
from matplotlib.figure import Figure

from clipnb.report.plots import base as plotting
from clipnb.tasks.prompt_settings import score_settings
from clipnb.tasks.evaluation import evaluate_labelled
from clipnb.embed.labelled import embed_labelled


def test_comparison_reuses_the_embeddings(demo, shapes_folder, tmp_path, monkeypatch):
    labelled = embed_labelled(demo, shapes_folder, cache=None, progress=False)
    single = evaluate_labelled(labelled, demo, "seed", "score")
    calls = []
    original = type(demo).encode_image_tensors
    monkeypatch.setattr(type(demo), "encode_image_tensors", lambda self, x: calls.append(x) or original(self, x))
    table = score_settings(demo, labelled, template_sets=["seed", "imagenet7", "a {}"]).accuracy_table()
    assert calls == []  # no image was encoded again
    assert len(table) == 6 and set(table["ensemble"]) == {"embedding", "score"}
    row = table[(table["templates"] == "seed") & (table["ensemble"] == "score")].iloc[0]
    assert row["acc@1"] == pytest.approx(single.metrics["acc@1"])
    one = table[table["templates"] == "a {}"]
    assert one["acc@1"].nunique() == 1  # with one template both ensembling methods are the same


def test_one_settings_comparison_with_and_without_labels(demo, shapes_folder):
    from clipnb.tasks.prompt_settings import setting_summary

    labelled = embed_labelled(demo, shapes_folder, cache=None, progress=False)
    with_labels = score_settings(demo, labelled, template_sets=["basic", "a {}"])
    plain = score_settings(demo, labelled.embedded, labelled.classes, ["basic", "a {}"])
    assert with_labels.settings == plain.settings == ["basic / embedding", "basic / score", "a {} / embedding",
                                                      "a {} / score"]
    assert with_labels.predictions.equals(plain.predictions) and "acc@1" not in plain.summary
    assert list(with_labels.confidence.columns) == with_labels.settings
    assert with_labels.summary["mean_confidence"].tolist() == pytest.approx(
        with_labels.confidence.mean().tolist())
    by_view = setting_summary(with_labels.predictions, labelled.labels)  # every image readable: same accuracy
    assert with_labels.summary["acc@1"].tolist() == pytest.approx(by_view["accuracy"].tolist())
    assert with_labels.summary["differs_from_first"].tolist() == by_view["differs_from_first"].tolist()
    some = [label if i % 2 else None for i, label in enumerate(labelled.labels)]
    half = score_settings(demo, labelled.embedded, labelled.classes, ["basic"], labels=some)
    assert half.summary["labelled"].tolist() == [sum(s is not None for s in some)] * 2


def test_compare_settings_marks_the_images_whose_prediction_changes(tiny_model, tmp_path):
    from clipnb import embed_images
    from clipnb.tasks import prompt_settings as compare
    from clipnb.data import labels

    for i, colour in enumerate([(255, 0, 0), (0, 0, 255), (20, 200, 20), (250, 250, 250)]):
        folder = tmp_path / ["red", "blue", "green", "white"][i]
        folder.mkdir()
        Image.new("RGB", (32, 32), colour).save(folder / "a.png")
    images = sorted(tmp_path.glob("*/a.png"))
    embedded = embed_images(tiny_model, images, progress=False, num_workers=0)
    classes = ["red", "blue", "green", "white"]
    comparison = compare.score_settings(tiny_model, embedded, classes, ["seed", "imagenet7"]).predictions
    settings = comparison.attrs["settings"]
    assert settings == ["seed / embedding", "seed / score", "imagenet7 / embedding", "imagenet7 / score"]
    assert list(comparison.index) == ["blue/a.png", "green/a.png", "red/a.png", "white/a.png"]
    expected = [len(set(row)) > 1 for row in comparison[settings].itertuples(index=False)]
    assert comparison["changed"].tolist() == expected
    truth = labels.folder_labels(embedded.records["path"], classes)
    assert truth == ["blue", "green", "red", "white"]
    summary = compare.setting_summary(comparison, truth)
    first = comparison[settings[0]]
    assert summary["accuracy"].tolist() == pytest.approx(
        [float((comparison[s] == pd.Series(truth, index=comparison.index)).mean()) for s in settings])
    assert summary["differs_from_first"].tolist() == [int((comparison[s] != first).sum()) for s in settings]
    ax = plotting.prediction_matrix(comparison, ax=Figure().add_subplot())
    red_rows = [t.get_text() for t in ax.get_yticklabels() if t.get_color() == plotting.MEAN_COLOUR]
    assert len(red_rows) == int(comparison["changed"].sum())
    differing = int((comparison[settings].to_numpy() != first.to_numpy()[:, None]).sum())
    bold = [t for t in ax.texts if t.get_fontweight() == "bold"]
    outlined = [p for p in ax.patches if not p.get_fill()]
    assert len(bold) == len(outlined) == differing
