"""Issue 23, item 11 and the image-reading items of its list: EXIF orientations 1-8 give the right pixels and
sizes in TIFF (which Pillow turns itself) and JPEG, HEIC/HEIF/AVIF are image types and are read, a TIFF's pages
are never counted, and a subfolder that cannot be listed is said, not skipped in silence. Every file is
written here into tmp_path."""
import os
import struct
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image, TiffImagePlugin

import clipnb
from clipnb.data import images
from clipnb.data.images import IMAGE_EXTENSIONS, folder_note, gather_images, is_image_name, open_image

from hostile_images import displayed, encoded, stored_marker_image, with_orientation

# Lossy formats move pixels: each marker's centre stays within this of its colour and the whole picture
# within the mean error below (8-bit levels); TIFF is lossless and compared exactly.
LOSSY_CENTRE = 40
LOSSY_MEAN = 12


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("fmt, suffix", [("TIFF", "tif"), ("JPEG", "jpg"), ("HEIF", "heic"), ("AVIF", "avif")])
def test_every_exif_orientation_gives_the_displayed_pixels_and_size(tmp_path, fmt, suffix, orientation):
    stored = stored_marker_image()
    expected = displayed(stored, orientation)
    path = tmp_path / f"o{orientation}.{suffix}"
    path.write_bytes(with_orientation(Image.fromarray(stored), orientation, fmt))
    opened = open_image(path)
    assert (opened.width, opened.height) == (expected.shape[1], expected.shape[0])  # 5-8: width and height swap
    shown = np.asarray(opened.image, dtype=int)
    assert shown.shape == expected.shape
    if fmt == "TIFF":
        assert np.array_equal(shown, expected)
        return
    for colour in ((255, 0, 0), (0, 255, 0)):
        rows, cols = np.nonzero((expected == colour).all(axis=2))
        centre = shown[int(rows.mean()), int(cols.mean())]
        assert np.abs(centre - colour).max() <= LOSSY_CENTRE, (colour, centre)
    assert np.abs(shown - expected).mean() <= LOSSY_MEAN


def test_heic_heif_and_avif_are_image_types_everywhere(tmp_path):
    for suffix in (".heic", ".HEIF", ".avif"):
        assert is_image_name("photo" + suffix)
    assert {".heic", ".heif", ".avif"} <= set(IMAGE_EXTENSIONS)
    picture = Image.new("RGB", (48, 32), (200, 40, 40))
    (tmp_path / "phone.heic").write_bytes(encoded(picture, "HEIF"))
    (tmp_path / "web.avif").write_bytes(encoded(picture, "AVIF"))
    (tmp_path / "plain.png").write_bytes(encoded(picture, "PNG"))
    table = clipnb.classify(tmp_path, ["red", "blue"], model="demo", progress=False, cache=None)
    rows = table.set_index(table["path"].map(os.path.basename))
    assert sorted(rows.index) == ["phone.heic", "plain.png", "web.avif"]
    assert (rows["error"] == "").all()
    assert (rows["width"] == 48).all() and (rows["height"] == 32).all()
    for name in ("phone.heic", "web.avif"):
        pixel = np.asarray(open_image(tmp_path / name).image)[16, 24].astype(int)
        assert np.abs(pixel - (200, 40, 40)).max() <= LOSSY_CENTRE


def test_a_damaged_heic_is_a_row_with_a_reason(tmp_path):
    (tmp_path / "cut.heic").write_bytes(encoded(Image.new("RGB", (64, 64), "red"), "HEIF")[:200])
    with pytest.raises(clipnb.ImageReadError, match="HEI"):
        open_image(tmp_path / "cut.heic")


def _many_page_tiff(pages: int) -> bytes:
    """A TIFF of `pages` one-pixel greyscale pages, each directory pointing to the next."""
    out = bytearray(b"II*\x00" + struct.pack("<I", 8))
    for page in range(pages):
        start = len(out)
        pixel = start + 2 + 12 * 8 + 4
        entries = [(256, 3, 1), (257, 3, 1), (258, 3, 8), (259, 3, 1), (262, 3, 1), (273, 4, pixel), (278, 3, 1),
                   (279, 4, 1)]
        out += struct.pack("<H", len(entries))
        for tag, kind, value in entries:
            packed = struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value)
            out += struct.pack("<HHI", tag, kind, 1) + packed
        out += struct.pack("<I", 0 if page == pages - 1 else pixel + 2) + b"\x80\x00"
    return bytes(out)


def test_a_multi_page_tiff_reads_its_first_page_without_counting_pages(tmp_path, monkeypatch):
    # Counting is what took 76 s on a 100,000-page file (each page counted walks the directories again):
    # here counting fails the test, and the first page is still read.
    def no_counting(self):
        raise AssertionError("the pages of a TIFF were counted")

    monkeypatch.setattr(TiffImagePlugin.TiffImageFile, "n_frames", property(no_counting))
    (tmp_path / "pages.tif").write_bytes(_many_page_tiff(2000))
    opened = open_image(tmp_path / "pages.tif")
    assert (opened.width, opened.height) == (1, 1) and opened.image.getpixel((0, 0)) == (128, 128, 128)
    assert opened.note == "multi-page: first page used"
    (tmp_path / "one.tif").write_bytes(_many_page_tiff(1))
    assert open_image(tmp_path / "one.tif").note == ""


def test_a_subfolder_that_cannot_be_listed_is_noted(tmp_path, monkeypatch):
    # Tests run as root, who can list a chmod-000 folder: listing it is refused here instead.
    for folder in ("top", "top/open", "top/locked"):
        (tmp_path / folder).mkdir()
    for name in ("top/a.png", "top/open/b.png", "top/locked/c.png"):
        (tmp_path / name).write_bytes(encoded(Image.new("RGB", (8, 8)), "PNG"))
    scandir = os.scandir

    def refuse_locked(path="."):
        if os.path.basename(os.fspath(path)) == "locked":
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", refuse_locked)
    top = tmp_path / "top"
    assert [p.name for p in gather_images(top, recursive=True)] == ["a.png", "b.png"]  # the others still run
    expected = "; 1 subfolder could not be read (locked: Permission denied): their images are not included"
    assert expected in folder_note(top, recursive=True)
    assert expected in folder_note(top, recursive=False)
    assert "could not be read" not in folder_note(top / "open")


def _damaged_exif_jpeg() -> bytes:
    """A JPEG whose EXIF block is cut short: Pillow warns "Tag data larger than file" when reading it."""
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010E] = "a description longer than the block that holds it" * 2
    return encoded(Image.new("RGB", (32, 16), "red"), "JPEG", exif=exif.tobytes()[:-60])


def test_pillow_warnings_become_the_rows_note_not_lines_on_stderr(tmp_path):
    (tmp_path / "exif.jpg").write_bytes(_damaged_exif_jpeg())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        opened = open_image(tmp_path / "exif.jpg")
    assert not caught  # nothing reached the warnings machinery (stderr, outside a test)
    assert "Pillow: Tag data larger than file" in opened.note
    assert (opened.width, opened.height) == (16, 32)  # the orientation was still read


def test_pillow_warnings_are_heard_in_threads_and_leave_the_filters_as_they_were(tmp_path):
    (tmp_path / "exif.jpg").write_bytes(_damaged_exif_jpeg())
    filters = list(warnings.filters)
    with ThreadPoolExecutor(4) as pool:
        notes = list(pool.map(lambda _: open_image(tmp_path / "exif.jpg").note, range(64)))
    assert all("Pillow: Tag data larger than file" in note for note in notes)  # every row, not only the first
    assert warnings.filters == filters


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(tmp_path, monkeypatch):
    monkeypatch.setattr(images, "MAX_FILE_BYTES", 100)
    (tmp_path / "big.png").write_bytes(encoded(Image.new("RGB", (64, 64)), "PNG") + bytes(200))
    with pytest.raises(clipnb.ImageReadError, match="too large: the file is over the 100-byte limit"):
        open_image(tmp_path / "big.png")
