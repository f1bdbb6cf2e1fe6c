"""Hostile image files made on disk (bombs, truncations, EXIF orientations, odd modes, special files), and
build_hostile_folder, a folder of all of them with the error each should get (the fixtures hostile and
hostile_results in conftest.py are built from it)."""
import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image


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


def by_name(results: pd.DataFrame, root: Path) -> pd.DataFrame:
    names = [os.path.relpath(p, root) for p in results["path"]]
    assert len(names) == len(set(names)), "a file has more than one row"
    return results.set_index(pd.Index(names, name="name"))
