"""Finding and reading images, and their aspect-ratio information.

Reading never raises for a bad file: it returns the reason, so one broken picture cannot stop a run.
"""
from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")

# The seed's ratio types, keyed by the exact reduced ratio.
SEED_RATIO_TYPES = {(1, 1): "square (1:1)", (4, 3): "standard (4:3)", (16, 9): "widescreen (16:9)",
                    (3, 2): "photo (3:2)"}
OTHER_RATIO = "other"
SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
# Ratios people name, for the nearest-standard-ratio column (width:height, landscape form).
STANDARD_RATIOS = [(1, 1), (5, 4), (4, 3), (3, 2), (16, 10), (5, 3), (16, 9), (2, 1), (20, 9), (21, 9), (3, 1)]
NEAREST_RATIO_TOLERANCE = 0.01  # relative difference still called "the same ratio"


class ImageReadError(Exception):
    """A file that is not a usable image; `reason` is the short text that goes into the `error` column."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class FolderError(ValueError):
    """A folder that cannot be used: missing, not a folder, or without images."""


def is_image_name(path: str | os.PathLike) -> bool:
    return str(path).lower().endswith(IMAGE_EXTENSIONS)


def find_images(folder: str | os.PathLike, recursive: bool = False) -> list[Path]:
    """Image files in a folder (any letter case of the known extensions), sorted by path.

    Folders named like images are skipped, and a recursive walk never follows a symlinked folder
    twice, so a symlink loop cannot make it loop.
    """
    folder = Path(folder)
    if not folder.exists():
        raise FolderError(f"image folder {folder} does not exist")
    if not folder.is_dir():
        raise FolderError(f"{folder} is not a folder; give a folder of images")
    found = []
    visited = set()
    for root, dirs, files in os.walk(folder, followlinks=recursive):
        real = os.path.realpath(root)
        if real in visited:
            dirs[:] = []
            continue
        visited.add(real)
        dirs.sort()
        found.extend(Path(root) / name for name in files
                     if is_image_name(name) and (Path(root) / name).is_file())
        if not recursive:
            break
    return sorted(found, key=lambda p: str(p))


@dataclass
class OpenedImage:
    image: Image.Image  # RGB, EXIF orientation applied
    width: int
    height: int
    note: str = ""  # for example "animated: first of 12 frames"


def open_image(path: str | os.PathLike, background: tuple[int, int, int] | None = None,
               draft_size: int | None = None, keep_mode: bool = False) -> OpenedImage:
    """Open an image file as RGB with its EXIF orientation applied.

    `background`: composite transparent pixels onto this colour instead of dropping alpha (openai-clip's
    own `convert("RGB")` drops it, which is the default so that scores match the reference).
    `draft_size`: let JPEG decoding shrink by 1/2, 1/4 or 1/8 as long as both sides stay >= this size
    (much faster for large photos; the pixels then differ slightly from a full decode).
    `keep_mode`: leave the Pillow mode as it is (16-bit greyscale still becomes 8-bit) so that openai-clip's
    preprocessing, which resizes first and converts to RGB last, sees exactly what it would see itself.
    Raises ImageReadError with a short reason for anything that is not a readable image.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ImageReadError(f"cannot read file: {exc.strerror or exc}") from None
    if size == 0:
        raise ImageReadError("empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                # refuse before decoding: a bomb must never be expanded into memory
                check_pixel_count(img.size)
                width, height = displayed_size(img)
                note = ""
                frames = getattr(img, "n_frames", 1)
                if frames > 1 and getattr(img, "is_animated", False):
                    note = f"animated: first of {frames} frames used"
                if draft_size and img.format == "JPEG":
                    img.draft("RGB", _draft_request(img.size, draft_size))
                img.load()
                image = ImageOps.exif_transpose(img)
                if not keep_mode or background is not None:
                    image = to_rgb(image, background)
                elif image.mode in SIXTEEN_BIT_MODES:
                    image = to_8bit(image)
    except ImageReadError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageReadError(f"too large: {exc}") from None
    except UnidentifiedImageError:
        raise ImageReadError("not an image (unrecognised file content)") from None
    except OSError as exc:
        text = str(exc)
        if "truncated" in text or "broken data stream" in text or "premature end" in text.lower():
            raise ImageReadError(f"truncated file ({text})") from None
        raise ImageReadError(f"unreadable image ({text})") from None
    except (ValueError, SyntaxError, EOFError, IndexError, TypeError, KeyError,
            MemoryError, NotImplementedError, Image.DecompressionBombError) as exc:
        # Pillow's plugins raise these for damaged or unsupported content
        raise ImageReadError(f"unsupported or damaged image ({type(exc).__name__}: {exc})") from None
    return OpenedImage(image=image, width=width, height=height, note=note)


def check_pixel_count(size: tuple[int, int]) -> None:
    limit = Image.MAX_IMAGE_PIXELS
    if limit and size[0] * size[1] > limit:
        raise ImageReadError(f"too large: {size[0]}x{size[1]} pixels is over the {limit:,}-pixel limit "
                             "(Pillow's decompression-bomb guard); shrink the image or raise "
                             "PIL.Image.MAX_IMAGE_PIXELS if you trust it")


def _draft_request(size: tuple[int, int], minimum: int) -> tuple[int, int]:
    # draft() keeps the scale at which the image is still at least the requested size
    scale = min(size) / minimum
    return (max(1, math.ceil(size[0] / scale)), max(1, math.ceil(size[1] / scale)))


def displayed_size(img: Image.Image) -> tuple[int, int]:
    """Width and height as displayed (after EXIF rotation), from the header, before any decoding."""
    width, height = img.size
    rotation = img.getexif().get(0x0112, 1)
    return (height, width) if rotation in (5, 6, 7, 8) else (width, height)


def to_rgb(img: Image.Image, background: tuple[int, int, int] | None = None) -> Image.Image:
    """Any Pillow mode -> RGB. 16-bit greyscale is scaled to 8 bits (Pillow's own convert would clip it)."""
    if img.mode in SIXTEEN_BIT_MODES:
        img = to_8bit(img)
    if background is not None and (img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info):
        rgba = img.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, tuple(background) + (255,))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    return img.convert("RGB")


def to_8bit(img: Image.Image) -> Image.Image:
    """16-bit (or 32-bit integer) greyscale -> 8-bit "L", scaling the range instead of clipping it."""
    img = img if img.mode == "I" else img.convert("I")
    # Pillow opens 16-bit PNGs as mode "I"; values that already fit 8 bits stay as they are
    scale = 257 if img.getextrema()[1] > 255 else 1
    return img.point(lambda v: v / scale).convert("L")


# ---- aspect ratios (pure) -------------------------------------------------------------------------

def reduced_ratio(width: int, height: int) -> tuple[int, int]:
    """The exact reduced ratio, as the seed computes it (gcd): 4080x1836 -> (20, 9)."""
    divisor = math.gcd(width, height)
    return width // divisor, height // divisor


def ratio_type(width: int, height: int) -> str:
    """The seed's ratio type: one of the four named exact ratios, else "other"."""
    return SEED_RATIO_TYPES.get(reduced_ratio(width, height), OTHER_RATIO)


def orientation(width: int, height: int) -> str:
    return "square" if width == height else ("landscape" if width > height else "portrait")


def nearest_ratio(width: int, height: int, tolerance: float = NEAREST_RATIO_TOLERANCE) -> str:
    """The nearest standard ratio within a relative tolerance ("3:2" for 2048x1362), else "".

    Portrait images get the portrait form ("2:3").
    """
    long_side, short_side = max(width, height), min(width, height)
    value = long_side / short_side
    best = min(STANDARD_RATIOS, key=lambda r: abs(value / (r[0] / r[1]) - 1))
    if abs(value / (best[0] / best[1]) - 1) > tolerance:
        return ""
    return f"{best[0]}:{best[1]}" if width >= height else f"{best[1]}:{best[0]}"


def aspect_info(width: int, height: int) -> dict:
    """All aspect-ratio columns for one image size."""
    w, h = reduced_ratio(width, height)
    return {"width": width, "height": height, "aspect_ratio": f"{w}:{h}", "ratio_value": width / height,
            "ratio_type": ratio_type(width, height), "nearest_ratio": nearest_ratio(width, height),
            "orientation": orientation(width, height)}
