"""Several models on the same images: compare_models' table and agreement against each model's own evaluation
and a hand count, the evaluate command with several --model values, and notebook 04's comparison section.

The demo model knows the shapes (acc@1 near 1) and the tiny random models do not (chance is 1/48), so a
row or a column that went to the wrong model shows as a wrong number."""
import dataclasses
import itertools
import json

import numpy as np
import pandas as pd
import pytest

import clipnb
from clipnb import compare_models, evaluate_labelled
from clipnb.cli import main
from clipnb.models.loading import DEFAULT_MODEL, ModelError

from conftest import save_state_dict, tiny_clip

# what `evaluate` wrote with one model before models could be compared (measured on the demo model and shapes;
# 2 shapes per class are too few to fit a temperature on, so no calibration.csv and reliability.png)
ONE_MODEL_FILES = {"metrics.json", "per_image.csv", "per_class.csv", "confusion.csv", "confusion_normalised.csv",
                   "mistakes.csv", "comparison.csv", "confusion.png", "mistakes.png", "comparison.png"}
COMPARISON_FILES = {"models.csv", "agreement.csv", "models.png"}


@pytest.fixture(scope="module")
def other_checkpoint(tmp_path_factory):
    """A second tiny random model, different from tiny_checkpoint's (another seed)."""
    return save_state_dict(tiny_clip(seed=1), tmp_path_factory.mktemp("other") / "other-tiny.pt")


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("comparison-cache")


@pytest.fixture(scope="module")
def compared(demo, tiny_checkpoint, other_checkpoint, shapes_folder, cache_dir):
    """(models, each model's LabelledImages) of the 96 shapes: the demo model and two random ones."""
    loaded = [demo, clipnb.load_model(tiny_checkpoint, device="cpu"), clipnb.load_model(other_checkpoint, device="cpu")]
    cache = clipnb.EmbeddingCache(cache_dir)
    labelled = [clipnb.embed_labelled(model, shapes_folder, cache=cache, progress=False) for model in loaded]
    cache.close()
    return loaded, labelled


def test_accuracy_is_each_models_own_evaluation(compared):
    loaded, labelled = compared
    found = compare_models(loaded, labelled, templates="basic", ensemble="embedding")
    table = found.models.set_index("model")
    assert found.labelled and list(table.index) == ["demo", "tiny-vit.pt", "other-tiny.pt"]
    assert list(found.models.columns) == ["model", "family", "probabilities", "images", "acc@1", "acc@5",
                                          "mean_per_class_recall", "mean_confidence"]
    for model, images in zip(loaded, labelled):
        own = evaluate_labelled(images, model, "basic", "embedding").metrics
        row = table.loc[model.name]
        assert (row["family"], row["probabilities"], row["images"]) == ("openai", "softmax", 96)
        for column, metric in [("acc@1", "acc@1"), ("acc@5", "acc@5"), ("mean_per_class_recall", "mean_per_class_recall"),
                               ("mean_confidence", "mean_confidence")]:
            assert row[column] == pytest.approx(own[metric], abs=1e-12), (model.name, column)
    assert table.loc["demo", "acc@1"] > 0.9  # knows the shapes
    assert table.loc["tiny-vit.pt", "acc@1"] < 0.15 and table.loc["other-tiny.pt", "acc@1"] < 0.15  # chance 1/48
    best = table.loc["demo", "acc@1"]  # the demo model's own figure: it moves when the demo is retrained
    assert found.headline() == f"3 models on 96 labelled images; best acc@1: demo ({best:.1%})"
    assert found.evaluations["demo"].metrics == evaluate_labelled(labelled[0], loaded[0], "basic").metrics


def test_agreement_is_the_share_of_images_with_the_same_top_class(compared):
    loaded, labelled = compared
    found = compare_models(loaded, labelled, templates="basic")
    agreement = found.agreement
    names = found.names
    assert list(agreement.index) == list(agreement.columns) == names
    np.testing.assert_array_equal(agreement.to_numpy(), agreement.to_numpy().T)
    np.testing.assert_array_equal(np.diag(agreement.to_numpy()), np.ones(3))
    own = {model.name: evaluate_labelled(images, model, "basic").table["prediction"].to_numpy()
           for model, images in zip(loaded, labelled)}
    for a, b in itertools.combinations(names, 2):
        by_hand = sum(x == y for x, y in zip(own[a], own[b])) / len(own[a])
        assert agreement.loc[a, b] == pytest.approx(by_hand, abs=1e-12), (a, b)
    # the demo model agrees with a random one about as often as that one is right
    assert agreement.loc["demo", "tiny-vit.pt"] < 0.2
    rows = found.predictions
    assert list(rows.columns) == ["label", *names, "agree"] and len(rows) == 96
    assert rows["agree"].tolist() == [len({own[n][i] for n in names}) == 1 for i in range(96)]
    assert rows["label"].tolist() == labelled[0].labels


def test_without_labels_only_agreement_and_it_says_so(compared):
    loaded, labelled = compared
    with_labels = compare_models(loaded[:2], labelled[:2], templates="basic")
    found = compare_models(loaded[:2], [images.embedded for images in labelled[:2]], labelled[0].classes,
                           templates="basic")
    assert not found.labelled and found.evaluations is None
    assert list(found.models.columns) == ["model", "family", "probabilities", "images", "mean_confidence"]
    assert "no labels: only their agreement is measured" in found.headline()
    pd.testing.assert_frame_equal(found.agreement, with_labels.agreement)
    assert "label" not in found.predictions
    with pytest.raises(ValueError, match="give the classes"):
        compare_models(loaded[:2], [images.embedded for images in labelled[:2]])


def test_a_sigmoid_model_is_named_as_such_and_still_scored_as_itself(compared):
    loaded, labelled = compared
    sigmoid = dataclasses.replace(loaded[1], name="sigmoid-tiny", logit_bias=-3.0)
    found = compare_models([loaded[0], sigmoid], [labelled[0], labelled[1]], templates="basic")
    row = found.models.set_index("model").loc["sigmoid-tiny"]
    own = evaluate_labelled(labelled[1], sigmoid, "basic").metrics
    assert row["probabilities"] == "sigmoid (per class)"
    assert row["mean_confidence"] == pytest.approx(own["mean_confidence"], abs=1e-12)
    assert found.models.set_index("model").loc["demo", "probabilities"] == "softmax"


def test_embeddings_of_another_model_or_other_images_are_refused(compared):
    loaded, labelled = compared
    with pytest.raises(ValueError, match="made by another model"):
        compare_models(loaded[:2], [labelled[0], labelled[0]])
    fewer = clipnb.LabelledImages(embedded=dataclasses.replace(labelled[1].embedded,
                                                               records=labelled[1].embedded.records.iloc[:10],
                                                               features=labelled[1].embedded.features[:10]),
                                  labels=labelled[1].labels[:10], classes=labelled[1].classes)
    with pytest.raises(ValueError, match="other images"):
        compare_models(loaded[:2], [labelled[0], fewer])
    # the same model twice gets two names, so the tables stay indexed by model
    twice = compare_models([loaded[0], loaded[0]], [labelled[0], labelled[0]])
    assert twice.names == ["demo", "demo (2)"] and twice.agreement.loc["demo", "demo (2)"] == 1.0


def test_the_figure_and_files_of_a_comparison(compared, tmp_path):
    from clipnb.report.plots.evaluation import model_comparison_figure

    loaded, labelled = compared
    found = compare_models(loaded, labelled, templates="basic")
    figure = model_comparison_figure(found)
    assert [ax.get_title() for ax in figure.axes[:2]] == ["acc@1 of each model",
                                                          "agreement: share of images with the same top-1 class"]
    unlabelled = compare_models(loaded, [images.embedded for images in labelled], labelled[0].classes)
    assert model_comparison_figure(unlabelled).axes[0].get_title().startswith("agreement (no labels)")
    written = clipnb.write_model_comparison(found, tmp_path)
    assert {p.name for p in written} == COMPARISON_FILES
    back = pd.read_csv(tmp_path / "agreement.csv").set_index("model")
    np.testing.assert_allclose(back.to_numpy(), found.agreement.to_numpy(), atol=1e-12)


def cli(folder, out, cache_dir, *models):
    return main(["evaluate", str(folder), *[a for m in models for a in ("--model", str(m))], "--out", str(out),
                 "--cache-dir", str(cache_dir), "--quiet"])


def test_the_evaluate_command_compares_models(compared, shapes_folder, tiny_checkpoint, cache_dir, tmp_path, capsys):
    loaded, labelled = compared
    assert cli(shapes_folder, tmp_path / "one", cache_dir, "demo") == 0
    one = capsys.readouterr().out
    assert {p.name for p in (tmp_path / "one").iterdir()} == ONE_MODEL_FILES  # as before models were compared
    assert "agreement" not in one

    assert cli(shapes_folder, tmp_path / "two", cache_dir, "demo", tiny_checkpoint) == 0
    two = capsys.readouterr().out
    assert {p.name for p in (tmp_path / "two").iterdir()} == ONE_MODEL_FILES | COMPARISON_FILES
    # the first model's report is what it was alone, file for file
    for name in sorted(ONE_MODEL_FILES - {"confusion.png", "mistakes.png", "comparison.png"}):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name
    assert two.startswith(one.rsplit("wrote ", 1)[0])
    assert "2 models on 96 labelled images; best acc@1: demo" in two
    assert "agreement (share of images on which two models predict the same class):" in two
    expected = compare_models(loaded[:2], labelled[:2], templates="basic")
    table = pd.read_csv(tmp_path / "two" / "models.csv")
    assert table["model"].tolist() == ["demo", "tiny-vit.pt"]
    np.testing.assert_allclose(table["acc@1"], expected.models["acc@1"], atol=1e-12)
    assert json.loads((tmp_path / "two" / "metrics.json").read_text())["acc@1"] == table["acc@1"][0]
    agreement = pd.read_csv(tmp_path / "two" / "agreement.csv").set_index("model")
    np.testing.assert_allclose(agreement.to_numpy(), expected.agreement.to_numpy(), atol=1e-12)
    assert f"{expected.agreement.loc['demo', 'tiny-vit.pt']:.3f}" in two


def test_without_model_the_default_model_is_evaluated(monkeypatch, shapes_folder, tmp_path, capsys):
    asked = []

    def refuse(spec, **kwargs):
        asked.append(spec)
        raise ModelError(f"no weights for {spec} here")

    monkeypatch.setattr(clipnb.models.loading, "load_model", refuse)
    assert main(["evaluate", str(shapes_folder), "--out", str(tmp_path / "out")]) == 2
    assert asked == [DEFAULT_MODEL]


def test_pretrained_with_several_models_is_refused_in_one_line(no_model_loading, shapes_folder, tmp_path, capsys):
    code = main(["evaluate", str(shapes_folder), "--model", "open_clip:ViT-B-32", "--model", "demo",
                 "--pretrained", "laion2b_s34b_b79k", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("clipnb: error: --pretrained laion2b_s34b_b79k is ambiguous with 2 models; give each its "
                          "weights as SPEC,PRETRAINED")
    assert not (tmp_path / "out").exists()


def test_a_model_that_cannot_be_loaded_fails_before_any_image_is_embedded(monkeypatch, shapes_folder, tmp_path,
                                                                          capsys):
    import clipnb.embed.labelled

    def no_embedding(*args, **kwargs):
        raise AssertionError("images were embedded before every model was loaded")

    monkeypatch.setattr(clipnb.embed.labelled, "embed_labelled", no_embedding)  # the CLI calls it through its module
    code = main(["evaluate", str(shapes_folder), "--model", "demo", "--model", str(tmp_path / "missing.pt"),
                 "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "missing.pt" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.notebook
def test_notebook_04_compares_the_models_of_compare_with(tiny_checkpoint, tmp_path):
    from test_notebooks import run_notebook

    out, text = run_notebook("04_evaluation.ipynb", {"per_class": 1, "templates": ["basic"],
                                                     "compare_with": [str(tiny_checkpoint)]}, tmp_path)
    assert "2 models on 48 labelled images; best acc@1: demo" in text
    models = pd.read_csv(out / "models.csv")
    assert models["model"].tolist() == ["demo", "tiny-vit.pt"] and models["acc@1"][0] > 0.5
    assert models["acc@1"][0] == json.loads((out / "metrics.json").read_text())["acc@1"]
    agreement = pd.read_csv(out / "agreement.csv").set_index("model")
    assert agreement.loc["demo", "demo"] == 1.0 and agreement.loc["demo", "tiny-vit.pt"] < 0.5
    assert (out / "models.png").is_file()

