"""Image discovery, aspect-ratio columns (the seed's cases), the results table, summaries and CSV."""
import inspect

import pandas as pd
import pytest
from PIL import Image

import clipnb
from clipnb.images import aspect_info, nearest_ratio, ratio_type, reduced_ratio

from conftest import TEST_IMAGES

CLASSES = ["cat", "dog", "car", "tree", "book"]


@pytest.mark.parametrize("size, ratio, kind, nearest, orientation", [
    ((1200, 800), "3:2", "photo (3:2)", "3:2", "landscape"),
    ((4080, 1836), "20:9", "other", "20:9", "landscape"),
    ((2048, 1362), "1024:681", "other", "3:2", "landscape"),
    ((1920, 1080), "16:9", "widescreen (16:9)", "16:9", "landscape"),
    ((1600, 1200), "4:3", "standard (4:3)", "4:3", "landscape"),
    ((512, 512), "1:1", "square (1:1)", "1:1", "square"),
    ((3000, 4000), "3:4", "other", "3:4", "portrait"),
    ((902, 770), "41:35", "other", "", "landscape"),
])
def test_seed_aspect_ratio_cases(size, ratio, kind, nearest, orientation):
    info = aspect_info(*size)
    assert info["aspect_ratio"] == ratio
    assert info["ratio_type"] == kind
    assert info["nearest_ratio"] == nearest
    assert info["orientation"] == orientation
    assert info["ratio_value"] == pytest.approx(size[0] / size[1])


def test_nearest_ratio_tolerance():
    assert reduced_ratio(2048, 1362) == (1024, 681)
    assert abs(2048 / 1362 / 1.5 - 1) < 0.003  # the "3:2 within 0.3%"
    assert nearest_ratio(2048, 1362, tolerance=0.002) == ""
    assert ratio_type(3, 2) == "photo (3:2)"


def test_find_images_extensions_case_sorting_and_recursion(tmp_path):
    for name in ["b.JPG", "a.png", "c.Jpeg", "d.webp", "e.TIFF", "f.tif", "g.bmp", "h.gif", "notes.txt", "i.heic"]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "z.jpg").write_bytes(b"x")
    (tmp_path / "folder.jpg").mkdir()
    names = [p.name for p in clipnb.find_images(tmp_path)]
    assert names == ["a.png", "b.JPG", "c.Jpeg", "d.webp", "e.TIFF", "f.tif", "g.bmp", "h.gif"]
    assert [p.name for p in clipnb.find_images(tmp_path, recursive=True)][-1] == "z.jpg"
    with pytest.raises(clipnb.FolderError, match="does not exist"):
        clipnb.find_images(tmp_path / "missing")


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


def test_summaries(tiny_model):
    results = clipnb.classify(TEST_IMAGES, CLASSES, model=tiny_model, progress=False)
    counts = clipnb.prediction_counts(results)
    assert counts["count"].sum() == len(results) and set(counts["class"]) == set(CLASSES)
    assert counts["percent"].sum() == pytest.approx(100)
    ratios = clipnb.ratio_counts(results)
    assert list(ratios["ratio_type"]) == ["square (1:1)", "standard (4:3)", "widescreen (16:9)", "photo (3:2)", "other"]
    assert dict(zip(ratios["ratio_type"], ratios["count"])) == {
        "square (1:1)": 1, "standard (4:3)": 1, "widescreen (16:9)": 1, "photo (3:2)": 1, "other": 4}
    summary = clipnb.class_summary(results)
    for name, mean_score in zip(summary["class"], summary["mean_score"]):
        assert mean_score == pytest.approx(results[f"score_{name}"].mean(), abs=5e-5)  # rounded to 4 decimals
    assert summary["predicted"].sum() == len(results)
    text = clipnb.summary_text(results)
    assert "8 files, 8 classified, 0 unreadable" in text and "other: 4 (50.0%)" in text


def test_csv_export_is_utf8_with_optional_bom(tiny_model, tmp_path):
    results = clipnb.classify(TEST_IMAGES / "cat.jpg", ["猫", "狗"], ["一张{}的照片"], model=tiny_model, progress=False)
    plain = clipnb.write_csv(results, tmp_path / "plain.csv")
    excel = clipnb.write_csv(results, tmp_path / "excel.csv", bom=True)
    assert not plain.read_bytes().startswith(b"\xef\xbb\xbf")
    assert excel.read_bytes().startswith(b"\xef\xbb\xbf")
    back = pd.read_csv(excel, encoding="utf-8-sig")
    assert {"score_猫", "prob_狗"} <= set(back.columns)
    assert back.loc[0, "prediction"] in {"猫", "狗"}
    assert not list(tmp_path.glob("*.part"))


def test_pil_images_and_transparency_option(tiny_model):
    rgba = Image.new("RGBA", (64, 48), (255, 0, 0, 0))
    dropped = clipnb.embed_images(tiny_model, [rgba], progress=False).features
    white = clipnb.embed_images(tiny_model, [rgba], background=(255, 255, 255), progress=False).features
    assert not (dropped - white).abs().max() < 1e-6
    # by default the model sees exactly what openai-clip's own preprocessing makes of the image
    reference = tiny_model.encode_image_tensors(tiny_model.preprocess(rgba).unsqueeze(0))
    assert (dropped - reference).abs().max() < 1e-6


@pytest.fixture()
def nested(tmp_path):
    """one image in the folder itself, two in subfolders (one two levels down), and a folder with none."""
    cat = (TEST_IMAGES / "cat.jpg").read_bytes()
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    (tmp_path / "empty").mkdir()
    for name in ["top.jpg", "sub/a.jpg", "sub/deeper/b.JPG"]:
        (tmp_path / name).write_bytes(cat)
    (tmp_path / "sub" / "notes.txt").write_text("not an image")
    return tmp_path


def test_folder_note_says_which_images_are_used(nested):
    assert clipnb.folder_note(nested) == (f"1 image in {nested} (subfolders not included: 2 more images in "
                                          "subfolders; add recursive=True to include them)")
    assert clipnb.folder_note(nested, option="--recursive").endswith("; add --recursive to include them)")
    assert clipnb.folder_note(nested, option=None) == (f"1 image in {nested} (subfolders not included: 2 more images "
                                                       "in subfolders)")
    assert clipnb.folder_note(nested, recursive=True) == (f"3 images in {nested}, subfolders included (2 of them in "
                                                          "subfolders)")
    assert clipnb.folder_note(nested / "sub") == (f"1 image in {nested / 'sub'} (subfolders not included: 1 more image "
                                                  "in subfolders; add recursive=True to include them)")
    assert clipnb.folder_note(nested / "sub" / "deeper") == f"1 image in {nested / 'sub' / 'deeper'}"
    assert clipnb.folder_note(TEST_IMAGES, option="--recursive") == (
        f"{len(clipnb.find_images(TEST_IMAGES))} images in {TEST_IMAGES} (subfolders not included: "
        f"{len(clipnb.find_images(TEST_IMAGES / 'shapes', recursive=True))} more images in subfolders; add "
        "--recursive to include them)")
    with pytest.raises(clipnb.FolderError, match="does not exist"):
        clipnb.folder_note(nested / "nope")


def test_a_folder_gives_its_own_images_unless_recursive(nested, tiny_model):
    from clipnb.images import gather_images

    assert gather_images(nested) == [nested / "top.jpg"]
    assert gather_images(nested, recursive=True) == [nested / "sub/a.jpg", nested / "sub/deeper/b.JPG",
                                                     nested / "top.jpg"]
    table = clipnb.classify(nested, CLASSES, model=tiny_model, progress=False)
    assert inspect.signature(clipnb.classify).parameters["templates"].default == "basic"
    assert list(table["path"]) == [str(nested / "top.jpg")]
    assert table.attrs["folder_note"] == clipnb.folder_note(nested)
    deep = clipnb.classify(nested, CLASSES, model=tiny_model, recursive=True, progress=False)
    assert len(deep) == 3 and "subfolders included" in deep.attrs["folder_note"]
    # a folder whose images all lie in subfolders says how many and how to include them
    with pytest.raises(clipnb.FolderError) as info:
        gather_images(nested / "empty")
    assert str(info.value).startswith(f"no images in {nested / 'empty'} (looked for")
    with pytest.raises(clipnb.FolderError, match="no images in .*empty or its subfolders"):
        gather_images(nested / "empty", recursive=True)
    (nested / "top.jpg").unlink()
    with pytest.raises(clipnb.FolderError) as info:
        clipnb.classify(nested, CLASSES, model=tiny_model, progress=False)
    assert str(info.value).startswith(f"no images in {nested} itself (looked for .jpg")
    assert str(info.value).endswith("; 2 images are in its subfolders: use recursive=True (--recursive) to "
                                    "include them")
