"""clipnb.data.images: finding images, aspect-ratio columns (the usual photo sizes), which images a folder gives, and
every kind of hostile file read as a user expects (formats, EXIF, bombs, truncations, special files)."""
import inspect
import os
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageFile

import clipnb
from clipnb.data.images import (ORIENTATION_TRANSPOSE, aspect_info, file_problem, fit_for_model, nearest_ratio, open_image,
                           ratio_type, reduced_ratio)

from conftest import ROOT, TEST_IMAGES, save_state_dict, tiny_clip
from hostile_images import bomb_png, by_name, displayed, encoded, noise, stored_marker_image, with_orientation

CLASSES = ["cat", "dog"]
PHOTO_CLASSES = ["cat", "dog", "car", "tree", "book"]
SUBPROCESS_TIMEOUT = 120


@pytest.mark.parametrize("size, ratio, kind, nearest, orientation", [
    ((1200, 800), "3:2", "photo (3:2)", "3:2", "landscape"),
    ((4080, 1836), "20:9", "other", "20:9", "landscape"),
    ((2048, 1362), "1024:681", "other", "3:2", "landscape"),
    ((1920, 1080), "16:9", "widescreen (16:9)", "16:9", "landscape"),
    ((1600, 1200), "4:3", "standard (4:3)", "4:3", "landscape"),
    ((512, 512), "1:1", "square (1:1)", "1:1", "square"),
    ((3000, 4000), "3:4", "standard (4:3)", "3:4", "portrait"),  # a type holds for both orientations
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
    assert names == ["a.png", "b.JPG", "c.Jpeg", "d.webp", "e.TIFF", "f.tif", "g.bmp", "h.gif", "i.heic"]
    assert [p.name for p in clipnb.find_images(tmp_path, recursive=True)][-1] == "z.jpg"
    with pytest.raises(clipnb.FolderError, match="does not exist"):
        clipnb.find_images(tmp_path / "missing")


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
    from clipnb.data.images import gather_images

    assert gather_images(nested) == [nested / "top.jpg"]
    assert gather_images(nested, recursive=True) == [nested / "sub/a.jpg", nested / "sub/deeper/b.JPG",
                                                     nested / "top.jpg"]
    table = clipnb.classify(nested, PHOTO_CLASSES, model=tiny_model, progress=False)
    assert inspect.signature(clipnb.classify).parameters["templates"].default == "basic"
    assert list(table["path"]) == [str(nested / "top.jpg")]
    assert table.attrs["folder_note"] == clipnb.folder_note(nested)
    deep = clipnb.classify(nested, PHOTO_CLASSES, model=tiny_model, recursive=True, progress=False)
    assert len(deep) == 3 and "subfolders included" in deep.attrs["folder_note"]
    # a folder whose images all lie in subfolders says how many and how to include them
    with pytest.raises(clipnb.FolderError) as info:
        gather_images(nested / "empty")
    assert str(info.value).startswith(f"no images in {nested / 'empty'} (looked for")
    with pytest.raises(clipnb.FolderError, match="no images in .*empty or its subfolders"):
        gather_images(nested / "empty", recursive=True)
    (nested / "top.jpg").unlink()
    with pytest.raises(clipnb.FolderError) as info:
        clipnb.classify(nested, PHOTO_CLASSES, model=tiny_model, progress=False)
    assert str(info.value).startswith(f"no images in {nested} itself (looked for .jpg")
    assert str(info.value).endswith("; 2 images are in its subfolders: use recursive=True (--recursive) to "
                                    "include them")


def test_non_recursive_listing_skips_subfolders_but_not_odd_entries(hostile):
    root, expect = hostile
    names = {p.name for p in clipnb.find_images(root)}
    assert names == {name for name in expect if "/" not in name}
    assert "folder named.jpg" not in names and "pipe.jpg" in names and "dangling link.jpg" in names


def test_a_symlink_loop_does_not_loop_a_recursive_walk(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(tmp_path / "a" / "b" / "x.png")
    os.symlink(tmp_path, tmp_path / "a" / "b" / "to top")
    os.symlink(tmp_path / "a", tmp_path / "a" / "b" / "to a")
    os.symlink(tmp_path / "a" / "b" / "c", tmp_path / "a" / "b" / "c")  # a link to itself, named like a folder
    started = time.perf_counter()
    found = clipnb.find_images(tmp_path, recursive=True)
    assert [p.name for p in found] == ["x.png"]
    assert time.perf_counter() - started < 5


def test_nothing_decodes_a_decompression_bomb(tmp_path):
    """The 30000x30000 header is refused before decoding: little memory and time, in a fresh process."""
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(bomb_png(30000, 30000))
    script = (
        "import importlib.util, resource, sys, time\n"
        f"spec = importlib.util.spec_from_file_location('images', {str(ROOT / 'clipnb' / 'data' / 'images.py')!r})\n"
        "images = sys.modules['images'] = importlib.util.module_from_spec(spec); spec.loader.exec_module(images)\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))  # decoding would need 2.7 GB\n"
        "started = time.perf_counter()\n"
        "try:\n"
        f"    images.open_image({str(bomb)!r})\n"
        "except images.ImageReadError as exc:\n"
        "    print(exc.reason)\n"
        "print(time.perf_counter() - started)\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    reason, seconds, grown_kb = proc.stdout.strip().splitlines()
    assert reason.startswith("too large: 900,000,000 pixels") and "decompression-bomb" in reason
    assert float(seconds) < 2 and int(grown_kb) < 50_000


def test_truncated_images_are_reported_never_padded(tmp_path):
    """Pillow pads truncated files with grey when ImageFile.LOAD_TRUNCATED_IMAGES is set; clipnb never sets it."""
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    photo = noise(200, 150)
    for fmt, suffix in [("JPEG", "jpg"), ("PNG", "png"), ("WEBP", "webp"), ("GIF", "gif"), ("TIFF", "tif")]:
        data = encoded(photo, fmt)
        for cut in (len(data) // 2, len(data) - 40):
            path = tmp_path / f"cut{cut}.{suffix}"
            path.write_bytes(data[:cut])
            with pytest.raises(clipnb.ImageReadError) as caught:
                open_image(path)
            assert caught.value.reason.startswith(("truncated", "damaged")), (fmt, cut, caught.value.reason)
            if fmt in ("JPEG", "PNG"):
                assert caught.value.reason.startswith("truncated"), (fmt, cut, caught.value.reason)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


@pytest.mark.parametrize("orientation", range(1, 9))
def test_all_eight_exif_orientations(tmp_path, orientation):
    stored = stored_marker_image()
    expected = displayed(stored, orientation)
    for fmt, tolerance in [("PNG", 0), ("JPEG", 40)]:
        path = tmp_path / f"o{orientation}.{fmt.lower()}"
        path.write_bytes(with_orientation(Image.fromarray(stored), orientation, fmt))
        for options in ({}, {"keep_mode": True, "draft_size": 16}):  # draft: JPEG decoded at half size
            opened = open_image(path, **options)
            assert (opened.width, opened.height) == (expected.shape[1], expected.shape[0])
            shown = np.asarray(opened.image.convert("RGB").resize(opened.image.size if not options else
                                                                  (opened.width, opened.height),
                                                                  Image.Resampling.NEAREST), dtype=int)
            assert shown.shape == expected.shape
            # the red and the green marker are where the orientation says, by the centre of each block
            for colour in ((255, 0, 0), (0, 255, 0)):
                rows, cols = np.nonzero((expected == colour).all(axis=2))
                centre = shown[int(rows.mean()), int(cols.mean())]
                assert np.abs(centre - colour).max() <= tolerance, (fmt, orientation, colour, centre)
            assert np.abs(shown - expected).mean() <= (0 if tolerance == 0 else 8 if not options else 16)


def test_invalid_or_damaged_exif_keeps_the_picture(tmp_path):
    path = tmp_path / "o9.jpg"
    path.write_bytes(with_orientation(Image.fromarray(stored_marker_image()), 9, "JPEG"))
    opened = open_image(path)
    assert (opened.width, opened.height) == (64, 32) and "orientation 9 is not valid" in opened.note


def test_colour_modes_become_the_rgb_a_user_expects(hostile):
    root, _ = hostile
    cmyk = np.asarray(open_image(root / "cmyk.jpg").image)
    assert np.abs(cmyk[15, 20].astype(int) - (255, 0, 0)).max() < 20  # CMYK red is red, not inverted
    ramp = np.asarray(open_image(root / "sixteen-bit.png").image)[0, :, 0].astype(int)
    assert ramp[0] <= 1 and ramp[-1] >= 254 and 120 <= ramp[50] <= 135  # scaled to 8 bits, not clipped
    assert (np.diff(ramp) >= 0).all() and len(set(ramp)) > 90
    for keep in (False, True):
        image = open_image(root / "sixteen-bit.png", keep_mode=keep).image
        assert image.mode == ("RGB" if not keep else "L")
    dark = Image.fromarray(np.full((4, 4), 200 * 257, dtype=np.uint16))
    assert np.asarray(clipnb.data.images.to_rgb(dark)).max() == 200
    darkest = Image.fromarray(np.full((4, 4), 255, dtype=np.uint16))  # 255 of 65535: nearly black
    assert np.asarray(clipnb.data.images.to_rgb(darkest)).max() <= 1  # a dark 16-bit image stays dark
    palette = open_image(root / "palette transparent.png", background=(255, 255, 255)).image
    assert palette.getpixel((2, 2)) == (255, 255, 255) and palette.getpixel((20, 2)) == (0, 255, 0)
    assert open_image(root / "palette transparent.png").image.getpixel((20, 2)) == (0, 255, 0)
    grey = open_image(root / "grey-alpha.png", background=(0, 0, 0)).image
    assert grey.getpixel((0, 0)) == (0, 0, 0)
    assert open_image(root / "grey-alpha.png").image.getpixel((0, 0)) == (200, 200, 200)
    blue = open_image(root / "rgba.png", background=(255, 255, 255)).image.getpixel((0, 0))
    assert blue[2] == 255 and 120 <= blue[0] <= 135
    first = open_image(root / "animated.gif")
    assert first.image.getpixel((8, 8)) == (255, 0, 0) and first.note == "animated: first of 3 frames used"
    assert open_image(root / "png named as.jpg").image.size == (90, 60)


def test_extreme_panoramas_do_not_take_gigabytes(tmp_path):
    """CLIP's preprocessing of a 60000x2 strip at 224 pixels would first make a 6.7 million x 224 image
    (6.8 GB, half a minute); it is cut around the centre first, and the model sees the same square."""
    checkpoint = save_state_dict(tiny_clip(seed=3, resolution=224), tmp_path / "tiny224.pt")
    model = clipnb.load_model(checkpoint, device="cpu")
    strip = tmp_path / "strip.png"
    Image.new("RGB", (60000, 2), "teal").save(strip)
    started = time.perf_counter()
    embedded = clipnb.embed_images(model, [strip], progress=False, num_workers=0)
    assert time.perf_counter() - started < 10
    assert embedded.records.at[0, "error"] == "" and (embedded.records.at[0, "width"], embedded.records.at[0, "height"]) == (60000, 2)
    gradient = Image.fromarray(np.tile(np.linspace(0, 255, 4000).astype(np.uint8), (50, 1)))
    assert fit_for_model(gradient).size == (800, 50)
    assert (model.preprocess(fit_for_model(gradient)) - model.preprocess(gradient)).abs().max() < 1e-6
    ordinary = Image.new("RGB", (1600, 120))
    assert fit_for_model(ordinary) is ordinary


def test_unreadable_for_lack_of_permission_says_so(tmp_path, monkeypatch):
    Image.new("RGB", (8, 8)).save(tmp_path / "locked.png")

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path / "locked.png"))
    monkeypatch.setattr(Image, "open", denied)
    with pytest.raises(clipnb.ImageReadError, match="^cannot read file: Permission denied$"):
        open_image(tmp_path / "locked.png")


def test_multi_picture_jpegs_are_decoded_fast_like_jpegs(hostile):
    root, _ = hostile
    drafted = open_image(root / "camera mpo.jpg", draft_size=20, keep_mode=True)
    assert drafted.image.size == (45, 30) and (drafted.width, drafted.height) == (90, 60)


def test_file_problem_never_opens_special_files(tmp_path):
    os.mkfifo(tmp_path / "p.jpg")
    assert file_problem(tmp_path / "p.jpg") == "not a regular file: a named pipe, not read"
    assert file_problem(tmp_path) == "not a regular file: a folder"
    assert file_problem("/dev/null").startswith("not a regular file: a device")
    assert file_problem(tmp_path / "missing.jpg").startswith("cannot read file")
    assert set(ORIENTATION_TRANSPOSE) == set(range(2, 9))


def test_every_image_named_file_has_exactly_one_row_with_the_right_error(hostile, hostile_results):
    root, expect = hostile
    table = by_name(hostile_results, root)
    assert sorted(table.index) == sorted(expect)  # no folder, no .txt, nothing twice, nothing missing
    for name, word in expect.items():
        row = table.loc[name]
        if word:
            assert word in row["error"], (name, row["error"])
            assert pd.isna(row["prediction"]) and row["width"] == 0
        else:
            assert row["error"] == "", (name, row["error"])
            assert row["prediction"] in CLASSES and 0 < row["confidence"] <= 1
    summary = clipnb.run_summary(hostile_results)
    unreadable = sum(1 for word in expect.values() if word)
    assert summary == {**summary, "files": len(expect), "classified": len(expect) - unreadable,
                       "unreadable": unreadable}
    assert hostile_results.attrs["stats"]["failed"] == unreadable


def test_sizes_and_notes_are_as_displayed(hostile, hostile_results):
    root, _ = hostile
    table = by_name(hostile_results, root)
    sizes = {name: (table.loc[name, "width"], table.loc[name, "height"]) for name in table.index}
    assert sizes["plain.jpg"] == sizes["UPPER CASE.JPG"] == sizes["png named as.jpg"] == (90, 60)
    assert sizes["photo.webp"] == sizes["scan.tiff"] == sizes["old.bmp"] == (90, 60)
    assert sizes["one pixel.png"] == (1, 1) and table.loc["one pixel.png", "aspect_ratio"] == "1:1"
    assert sizes["panorama.png"] == (20000, 10) and table.loc["panorama.png", "aspect_ratio"] == "2000:1"
    assert sizes["tower.png"] == (10, 20000) and table.loc["tower.png", "orientation"] == "portrait"
    assert sizes["rotated six.jpg"] == (32, 64)  # stored 64x32, displayed turned a quarter
    assert sizes["猫 照片.jpg"] == sizes["日本語 フォルダ/写真 1.jpg"] == (30, 20)
    assert table.loc["animated.gif", "note"] == "animated: first of 3 frames used"
    assert table.loc["camera mpo.jpg", "note"] == "multi-picture JPEG (MPO): first of 2 pictures used"
    assert sizes["camera mpo.jpg"] == (90, 60)
    assert (table.drop(index=["animated.gif", "camera mpo.jpg"])["note"] == "").all()
