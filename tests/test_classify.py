"""clipnb.classify: the results table (one row per file, readable ones classified, unreadable ones with an
error that says why), and bad parameters refused before any model is loaded."""
import pandas as pd
import pytest
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
