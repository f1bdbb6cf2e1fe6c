"""clipnb.classify: the results table (one row per file, readable ones classified, unreadable ones with an
error that says why), and bad parameters refused before any model is loaded."""
import pandas as pd
import pytest
import torch
from PIL import Image

import clipnb

from conftest import TEST_IMAGES

CLASSES = ["cat", "dog", "car", "tree", "book"]


def test_results_table_columns_and_error_rows(tiny_model, tmp_path):
    for name in ["cat.jpg", "dog.png", "cat2.jpg"]:
        (tmp_path / name).write_bytes((TEST_IMAGES / name).read_bytes())
    (tmp_path / "broken.jpg").write_bytes(b"not an image at all")
    results = clipnb.classify(tmp_path, CLASSES, model=tiny_model, progress=False)
    required = ["path", "width", "height", "aspect_ratio", "ratio_type", "nearest_ratio", "prediction",
                "confidence", "error"] + [f"score_{c}" for c in CLASSES] + [f"prob_{c}" for c in CLASSES]
    assert set(required) <= set(results.columns)
    assert len(results) == 4
    broken = results[results["path"].str.endswith("broken.jpg")].iloc[0]
    assert "not an image" in broken["error"] and pd.isna(broken["prediction"])
    good = results[results["error"] == ""]
    assert len(good) == 3
    phone = good[good["path"].str.endswith("cat2.jpg")].iloc[0]
    assert (phone["width"], phone["height"], phone["aspect_ratio"]) == (4080, 1836, "20:9")
    assert good[[f"prob_{c}" for c in CLASSES]].sum(axis=1).round(5).eq(1).all()


def test_bad_parameters_through_the_api_before_loading(no_model_loading, tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "ok.png")
    for classes, templates, error in [([], "seed", "no classes given"), (["cat", "CAT"], "seed", "given twice"),
                                      ("cat", "seed", "must be a list"), (["cat"], [], "no templates given"),
                                      (["cat"], ["a {} photo", "no slot"], "has no '{}'"),
                                      (["cat"], "imagenet81", "unknown template set")]:
        with pytest.raises(clipnb.PromptError, match=error):
            clipnb.classify(tmp_path, classes, templates, model="never-loaded")
    with pytest.raises(clipnb.PromptError, match="unknown ensembling method"):
        clipnb.classify(tmp_path, ["cat"], ensemble="median", model="never-loaded")
    with pytest.raises(clipnb.FolderError, match="does not exist"):
        clipnb.classify(tmp_path / "nope", ["cat"], model="never-loaded")


def test_similarity_is_softmax_of_logit_scale_times_cosine(tiny_model):
    import clip

    texts = ["a photo of a cat", "a photo of a dog", "a photo of a bird", "a cat sitting on the sofa"]
    probs = clipnb.similarity(TEST_IMAGES / "cat.jpg", texts, model=tiny_model)
    net = tiny_model.model
    with torch.no_grad():
        image = net.encode_image(tiny_model.preprocess(Image.open(TEST_IMAGES / "cat.jpg")).unsqueeze(0))
        text = net.encode_text(clip.tokenize(texts))
        image, text = image / image.norm(dim=-1, keepdim=True), text / text.norm(dim=-1, keepdim=True)
        expected = (net.logit_scale.exp() * image @ text.T).softmax(dim=-1)[0]
    assert list(probs.index) == texts
    assert torch.allclose(torch.tensor(probs.to_numpy()), expected, atol=1e-5)
    assert abs(probs.sum() - 1) < 1e-5


def test_similarity_refuses_a_folder_before_loading_a_model(tmp_path):
    with pytest.raises(clipnb.FolderError) as info:
        clipnb.similarity(TEST_IMAGES, ["a cat"], model="never-loaded")
    assert str(info.value) == (f"{TEST_IMAGES} is a folder: similarity compares one image with texts; give an image "
                               f"file, such as {TEST_IMAGES / 'book.jpg'}, or use clipnb.classify(folder, classes) "
                               "to classify the images of a folder")
    with pytest.raises(clipnb.FolderError, match="is a folder: similarity compares one image with texts; give an "
                                                 "image file, or use"):
        clipnb.similarity(tmp_path, ["a cat"], model="never-loaded")  # no image in it to propose
    with pytest.raises(FileNotFoundError, match="image .*nope.jpg does not exist"):
        clipnb.similarity(tmp_path / "nope.jpg", ["a cat"], model="never-loaded")


def test_texts_must_be_a_list_and_one_text_is_warned_about(tiny_model):
    import torch

    from clipnb.zeroshot.prompts import PromptError
    from clipnb.zeroshot.scoring import ClassWarning, text_probabilities

    features = torch.nn.functional.normalize(torch.randn(1, 32), dim=-1)
    with pytest.raises(PromptError, match="not the single string 'a cat'"):
        text_probabilities(tiny_model, features, "a cat")
    with pytest.warns(ClassWarning, match="only one text"):
        assert text_probabilities(tiny_model, features, ["a cat"]).item() == pytest.approx(1.0)
