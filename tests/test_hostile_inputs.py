"""Hostile folders: every file with an image extension gets exactly one row, readable ones classified,
unreadable ones with an error that says why; formats and quirks are handled as a user expects; bad
parameters fail fast with one line. Each case is built on disk here."""
import faulthandler
import io
import os
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageFile

import clipnb
from clipnb.cli import main as cli_main
from clipnb.images import ORIENTATION_TRANSPOSE, file_problem, fit_for_model, open_image

from conftest import ROOT, save_state_dict, tiny_clip

CLASSES = ["cat", "dog"]
SUBPROCESS_TIMEOUT = 120


# ---- building the cases ------------------------------------------------------------------------------

def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def bomb_png(width: int, height: int) -> bytes:
    """A valid-looking PNG whose header claims width x height RGB pixels: a few hundred bytes on disk."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(b"\0" * 4096))
            + png_chunk(b"IEND", b""))


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def noise(width: int, height: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def with_orientation(image: Image.Image, orientation: int, fmt: str) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encoded(image, fmt, exif=exif.tobytes(), **({"quality": 95} if fmt == "JPEG" else {}))


def stored_marker_image() -> np.ndarray:
    """64 wide x 32 high, grey, with a red block at the top-left and a green one at the top-right."""
    pixels = np.full((32, 64, 3), 128, dtype=np.uint8)
    pixels[:12, :12] = (255, 0, 0)
    pixels[:12, -12:] = (0, 255, 0)
    return pixels


def displayed(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """What EXIF orientation `orientation` means (EXIF 2.32, tag 0x0112), written with numpy, not Pillow."""
    return {1: lambda a: a, 2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
            5: lambda a: a.transpose(1, 0, 2), 6: lambda a: np.rot90(a, k=-1), 7: lambda a: np.rot90(a.transpose(1, 0, 2), 2),
            8: lambda a: np.rot90(a, k=1)}[orientation](pixels)


def build_hostile_folder(root: Path) -> dict[str, str]:
    """Write the cases; return {relative path: "" for readable, else a word its error must contain}."""
    root.mkdir(parents=True, exist_ok=True)
    expect: dict[str, str] = {}

    def put(name: str, data: bytes, error: str = "") -> None:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        expect[name] = error

    photo = noise(90, 60)
    jpeg = encoded(photo, "JPEG", quality=90)
    png = encoded(photo, "PNG")
    put("plain.jpg", jpeg)
    put("UPPER CASE.JPG", encoded(photo, "JPEG", quality=80))
    put("Mixed.JpEg", encoded(noise(90, 60, 1), "JPEG"))
    put("png named as.jpg", png)
    put("cmyk.jpg", encoded(Image.new("CMYK", (40, 30), (0, 255, 255, 0)), "JPEG"))
    ramp = np.tile(np.linspace(0, 65535, 100).astype(np.uint16), (20, 1))
    put("sixteen-bit.png", encoded(Image.fromarray(ramp), "PNG"))
    palette = Image.new("P", (24, 16), 0)
    palette.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    palette.paste(1, (12, 0, 24, 16))
    put("palette transparent.png", encoded(palette, "PNG", transparency=0))
    put("grey-alpha.png", encoded(Image.new("LA", (20, 20), (200, 0)), "PNG"))
    put("rgba.png", encoded(Image.new("RGBA", (20, 20), (0, 0, 255, 128)), "PNG"))
    frames = [Image.new("RGB", (16, 16), colour) for colour in ("red", "green", "blue")]
    gif = io.BytesIO()
    frames[0].save(gif, format="GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    put("animated.gif", gif.getvalue())
    put("camera mpo.jpg", encoded(photo, "MPO", save_all=True, append_images=[noise(90, 60, 6)]))
    put("photo.webp", encoded(photo, "WEBP"))
    put("scan.tiff", encoded(photo, "TIFF"))
    put("old.bmp", encoded(photo, "BMP"))
    put("one pixel.png", encoded(Image.new("RGB", (1, 1), "red"), "PNG"))
    put("panorama.png", encoded(Image.new("RGB", (20000, 10), "orange"), "PNG"))
    put("tower.png", encoded(Image.new("RGB", (10, 20000), "purple"), "PNG"))
    put("猫 照片.jpg", encoded(noise(30, 20, 2), "JPEG"))
    put("emoji 🐱 cat.png", encoded(noise(30, 20, 3), "PNG"))
    put("café crème Ñandú.png", encoded(noise(30, 20, 4), "PNG"))
    put("日本語 フォルダ/写真 1.jpg", encoded(noise(30, 20, 5), "JPEG"))
    put("rotated six.jpg", with_orientation(Image.fromarray(stored_marker_image()), 6, "JPEG"))
    # unreadable ones, each with the word its error must contain
    put("truncated.jpg", jpeg[: len(jpeg) // 2], "truncated")
    put("truncated.png", png[: len(png) // 2], "truncated")
    put("header cut.png", png[:20], "truncated")
    put("empty.jpg", b"", "empty")
    put("notes.jpg", "just some text, not a picture\n".encode(), "not an image")
    put("error page.png", b"<!DOCTYPE html><html><body>403 Forbidden</body></html>", "not an image")
    put("random.bmp", np.random.default_rng(9).bytes(3000), "not an image")
    put("._plain.jpg", b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        " + bytes(200), "not an image")
    put("iphone.jpg", b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(100), "unsupported")
    put("bomb.png", bomb_png(30000, 30000), "too large")
    put("drawing eps.jpg", b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n", "unsupported")
    put("vector.png", b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>', "not an image")
    bad_crc = bytearray(png)
    bad_crc[29] ^= 0xFF  # inside the IHDR checksum
    put("bad checksum.png", bytes(bad_crc), "damaged")
    # entries that are not regular files
    (root / "folder named.jpg").mkdir()
    (root / "folder named.jpg" / "inside.png").write_bytes(png)
    expect["folder named.jpg/inside.png"] = ""
    (root / "readme.txt").write_text("not an image name: no row")
    os.symlink("does-not-exist.jpg", root / "dangling link.jpg")
    expect["dangling link.jpg"] = "broken symbolic link"
    os.symlink("self loop.jpg", root / "self loop.jpg")
    expect["self loop.jpg"] = "broken symbolic link"
    os.mkfifo(root / "pipe.jpg")
    expect["pipe.jpg"] = "not a regular file"
    os.symlink("plain.jpg", root / "alias.jpg")
    expect["alias.jpg"] = ""
    # loops for a recursive walk: a link to the folder itself and to its parent
    os.symlink(".", root / "日本語 フォルダ" / "again")
    os.symlink("..", root / "日本語 フォルダ" / "up")
    return expect


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile") / "photos from everywhere"
    return root, build_hostile_folder(root)


@pytest.fixture(scope="module")
def hostile_results(hostile, tiny_model, tmp_path_factory):
    root, _ = hostile
    faulthandler.dump_traceback_later(120, exit=True)  # a file that hangs the run fails the suite, loudly
    try:
        cache = clipnb.EmbeddingCache(tmp_path_factory.mktemp("hostile-cache"))
        results = clipnb.classify(root, CLASSES, model=tiny_model, recursive=True, cache=cache, batch_size=4,
                                  num_workers=1, progress=False)
        cache.close()
    finally:
        faulthandler.cancel_dump_traceback_later()
    return results


def by_name(results: pd.DataFrame, root: Path) -> pd.DataFrame:
    names = [os.path.relpath(p, root) for p in results["path"]]
    assert len(names) == len(set(names)), "a file has more than one row"
    return results.set_index(pd.Index(names, name="name"))


# ---- every file accounted for -----------------------------------------------------------------------

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


def test_the_command_line_writes_the_same_rows_and_counts(hostile, hostile_results, tiny_checkpoint, tmp_path):
    root, expect = hostile
    out = tmp_path / "résultats 结果.csv"
    proc = subprocess.run(
        [sys.executable, "-m", "clipnb", "classify", str(root), "--recursive", "--classes", *CLASSES,
         "--model", str(tiny_checkpoint), "--csv", str(out), "--cache-dir", str(tmp_path / "cache"), "--quiet"],
        capture_output=True, cwd=ROOT, timeout=SUBPROCESS_TIMEOUT,
        env=dict(os.environ, PYTHONIOENCODING="utf-8"))  # strict UTF-8 console: names must not crash it
    stdout = proc.stdout.decode("utf-8")
    assert proc.returncode == 0, proc.stderr.decode("utf-8", "replace")
    unreadable = sum(1 for word in expect.values() if word)
    assert f"{len(expect)} files, {len(expect) - unreadable} classified, {unreadable} unreadable" in stdout
    table = pd.read_csv(out, keep_default_na=False, encoding="utf-8")
    from_cli = by_name(table, root)
    from_api = by_name(hostile_results, root)
    assert sorted(from_cli.index) == sorted(from_api.index)
    assert (from_cli.loc[from_api.index, "error"] == from_api["error"]).all()
    assert (from_cli.loc[from_api.index, "width"] == from_api["width"]).all()


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
        f"spec = importlib.util.spec_from_file_location('images', {str(ROOT / 'clipnb' / 'images.py')!r})\n"
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


# ---- formats and quirks ------------------------------------------------------------------------------

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


def test_the_model_sees_the_rotated_pixels(tiny_model, tmp_path):
    stored = np.asarray(noise(48, 32, seed=7))
    path = tmp_path / "six.png"
    path.write_bytes(with_orientation(Image.fromarray(stored), 6, "PNG"))
    from_file = clipnb.embed_images(tiny_model, [path], exact=True, progress=False, num_workers=0)
    upright = clipnb.embed_images(tiny_model, [Image.fromarray(displayed(stored, 6))], progress=False, num_workers=0)
    as_stored = clipnb.embed_images(tiny_model, [Image.fromarray(stored)], progress=False, num_workers=0)
    assert (from_file.features - upright.features).abs().max() < 1e-5
    assert (from_file.features - as_stored.features).abs().max() > 1e-3
    assert (from_file.records.at[0, "width"], from_file.records.at[0, "height"]) == (32, 48)


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
    assert np.asarray(clipnb.images.to_rgb(dark)).max() == 200
    darkest = Image.fromarray(np.full((4, 4), 255, dtype=np.uint16))  # 255 of 65535: nearly black
    assert np.asarray(clipnb.images.to_rgb(darkest)).max() <= 1  # a dark 16-bit image stays dark
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


def test_names_that_are_not_utf8_survive_the_csv_and_the_console(tiny_model, tiny_checkpoint, tmp_path):
    folder = tmp_path / "latin1"
    folder.mkdir()
    Image.new("RGB", (12, 8), "red").save(os.fsdecode(os.fsencode(folder) + b"/caf\xe9.jpg"), format="JPEG")
    Path(os.fsdecode(os.fsencode(folder) + b"/d\xe9j\xe0 vu.png")).write_bytes(b"not a picture")
    results = clipnb.classify(folder, CLASSES, model=tiny_model, progress=False, num_workers=0,
                              cache=clipnb.EmbeddingCache(tmp_path / "cache"))
    assert list(results["error"] == "") == [True, False]
    out = clipnb.write_csv(results, tmp_path / "out.csv")
    back = pd.read_csv(out, encoding="utf-8", keep_default_na=False)  # valid UTF-8
    assert back["path"].str.endswith("caf\\udce9.jpg").any()
    proc = subprocess.run(
        [sys.executable, "-m", "clipnb", "classify", str(folder), "--classes", *CLASSES, "--model",
         str(tiny_checkpoint), "--csv", str(tmp_path / "cli.csv"), "--no-cache", "--quiet"],
        capture_output=True, cwd=ROOT, timeout=SUBPROCESS_TIMEOUT, env=dict(os.environ, PYTHONIOENCODING="utf-8"))
    assert proc.returncode == 0, proc.stderr.decode("utf-8", "replace")
    assert b"1 unreadable" in proc.stdout and (tmp_path / "cli.csv").read_bytes().decode("utf-8")


# ---- bad parameters: one line, exit code 2, before any model is loaded --------------------------------

@pytest.fixture()
def no_model_loading(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the parameters were checked")
    monkeypatch.setattr(clipnb.models, "load_model", refuse)
    monkeypatch.setattr(sys.modules["clipnb.classify"], "load_model", refuse)


@pytest.mark.parametrize("args, message", [
    (["--classes", "", "dog"], "class #1 is blank"),
    (["--classes", "cat", "  "], "class #2 is blank"),
    (["--classes", "Cat", "dog", "cat"], "'cat' is given twice"),
    (["--classes", "cat", "--templates", "a photo of a"], "has no '{}' where the class name goes"),
    (["--classes", "cat", "--templates", "imagenet81"], "unknown template set 'imagenet81'"),
    (["--classes", "cat", "--templates", "{template file}"], "has no '{}'"),
    (["--classes", "cat", "--templates", "{empty template file}"], "holds no templates"),
    (["--classes", "cat", "--folder", "{missing}"], "does not exist"),
    (["--classes", "cat", "--folder", "{no images}"], "no images in"),
])
def test_bad_parameters_fail_fast_with_one_line(no_model_loading, tmp_path, capsys, args, message):
    template_file = tmp_path / "templates.txt"
    template_file.write_text("a photo of a {}\na photo without a slot\n")
    (tmp_path / "empty.txt").write_text("# only a comment\n")
    (tmp_path / "texts").mkdir()
    (tmp_path / "texts" / "notes.txt").write_text("x")
    (tmp_path / "pictures").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "pictures" / "ok.png")
    fill = {"{template file}": str(template_file), "{empty template file}": str(tmp_path / "empty.txt"),
            "{missing}": str(tmp_path / "missing"), "{no images}": str(tmp_path / "texts")}
    args = [fill.get(a, a) for a in args]
    folder = str(tmp_path / "pictures")
    if "--folder" in args:
        at = args.index("--folder")
        folder = args[at + 1]
        args = args[:at] + args[at + 2:]
    code = cli_main(["classify", folder, *args, "--model", "nothing-loaded", "--csv", str(tmp_path / "r.csv")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("clipnb: error:") and message in err and "\n" not in err, err
    assert not (tmp_path / "r.csv").exists()


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


def test_prompt_over_the_context_length_fails_before_any_image_is_read(tiny_model, tiny_checkpoint, tmp_path,
                                                                        monkeypatch, capsys):
    Image.new("RGB", (8, 8)).save(tmp_path / "ok.png")
    long_name = " ".join(["enormous"] * 80)

    def refuse(*args, **kwargs):
        raise AssertionError("images were embedded before the prompts were checked")
    monkeypatch.setattr(sys.modules["clipnb.classify"], "embed_images", refuse)
    with pytest.raises(clipnb.PromptError, match="longer than the model's context of 77"):
        clipnb.classify(tmp_path, ["cat", long_name], model=tiny_model)
    code = cli_main(["classify", str(tmp_path), "--classes", "cat", long_name, "--model",
                            str(tiny_checkpoint), "--no-cache", "--csv", str(tmp_path / "r.csv")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "longer than the model's context" in err and "--truncate" in err and "\n" not in err


def test_unknown_model_and_bad_numbers_exit_2(tmp_path, capsys):
    Image.new("RGB", (8, 8)).save(tmp_path / "ok.png")
    proc = subprocess.run([sys.executable, "-m", "clipnb", "classify", str(tmp_path), "--classes", "cat",
                           "--csv", str(tmp_path / "r.csv"), "--model", "ViT-Q/7"], capture_output=True, text=True,
                          cwd=ROOT, timeout=SUBPROCESS_TIMEOUT)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()] and "unknown model 'ViT-Q/7'" in proc.stderr
    assert cli_main(["classify", str(tmp_path), "--classes", "cat", "--model", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_code:
        cli_main(["classify", str(tmp_path), "--classes", "cat", "--batch-size", "0"])
    assert exit_code.value.code == 2 and "must be at least 1" in capsys.readouterr().err
    assert not (tmp_path / "r.csv").exists()


def test_a_folder_where_nothing_is_readable_still_completes(tiny_checkpoint, tmp_path, capsys):
    folder = tmp_path / "all broken"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(b"")
    (folder / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (folder / "only a folder.gif").mkdir()
    out = tmp_path / "r.csv"
    assert cli_main(["classify", str(folder), "--classes", *CLASSES, "--model", str(tiny_checkpoint), "--csv",
                     str(out), "--no-cache", "--quiet"]) == 0
    assert "2 files, 0 classified, 2 unreadable" in capsys.readouterr().out
    table = pd.read_csv(out, keep_default_na=False)
    assert table["error"].str.len().gt(0).all() and len(table) == 2
    (folder / "a.jpg").unlink()
    (folder / "b.png").unlink()
    assert cli_main(["classify", str(folder), "--classes", "cat", "--model", str(tiny_checkpoint)]) == 2
    assert "no images in" in capsys.readouterr().err  # a folder named like an image is not an image
