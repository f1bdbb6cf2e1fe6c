"""Finding and reading images, and their aspect-ratio information.

Reading never raises for a bad file: it returns the reason, so one broken picture cannot stop a run.
Every reason starts with what went wrong, in words a user can sort by: "empty file", "truncated file",
"not an image", "too large", "unsupported", "damaged image", "cannot read file", "broken symbolic link",
"not a regular file".
"""
from __future__ import annotations

import errno
import hashlib
import io
import math
import os
import re
import stat
import struct
import threading
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import PIL
import pillow_heif
from PIL import Image, UnidentifiedImageError

ImageInput = str | os.PathLike | Image.Image  # one image: a file's path or a PIL image
ImageSource = ImageInput | Sequence[ImageInput]  # a folder, one image, or a list of images
Colour = tuple[int, int, int]  # RGB, 0-255

# The one list of image file names: a folder's images, labels files' cells (clipnb.data.labels), every listing.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".avif", ".heic", ".heif")
# The formats a file may turn out to hold, whatever its name says (a PNG named .jpg is read as a PNG).
# Pillow knows more, but some are not for untrusted files: EPS is rendered by running Ghostscript, and
# formats without a real signature (TGA) would claim random junk as a picture. (JPEG includes MPO.)
READABLE_FORMATS = ("JPEG", "PNG", "GIF", "BMP", "DIB", "WEBP", "TIFF", "AVIF", "HEIF", "ICO", "PPM", "PSD",
                    "JPEG2000", "QOI")
# HEIC/HEIF (what phones write) through pillow-heif, registered once here, where images are read
pillow_heif.register_heif_opener()
# Formats whose Pillow loader applies the EXIF orientation itself: a TIFF's size is already the displayed
# one and its pixels are turned on load (applying it again turned orientations 2-8 wrong)
SELF_ORIENTING_FORMATS = ("TIFF",)
# A file is read into memory once, so that its content hash (the cache's key) comes from the very bytes
# that are decoded. Larger files are refused: 1 GiB is above any single image under Pillow's pixel limit
# (89 million pixels, 16-bit RGBA: 716 MB) and keeps a padded or hostile file from filling the memory.
MAX_FILE_BYTES = 1 << 30
DRAFT_FORMATS = ("JPEG", "MPO")  # MPO: the multi-picture JPEGs of many cameras and phones

# Four named ratio types (the article's), keyed by the exact reduced ratio in landscape form (long:short); every
# other ratio is OTHER_RATIO. A portrait image has the type of its landscape form: 3024x4032 (3:4) is
# "standard (4:3)", and its `orientation` column says "portrait".
RATIO_TYPES = {(1, 1): "square (1:1)", (4, 3): "standard (4:3)", (16, 9): "widescreen (16:9)",
               (3, 2): "photo (3:2)"}
OTHER_RATIO = "other"
SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
# Ratios people name, for the nearest-standard-ratio column (width:height, landscape form).
STANDARD_RATIOS = [(1, 1), (5, 4), (4, 3), (3, 2), (16, 10), (5, 3), (16, 9), (2, 1), (20, 9), (21, 9), (3, 1)]
NEAREST_RATIO_TOLERANCE = 0.01  # relative difference still called "the same ratio"
# CLIP's preprocessing scales the short side to the model's resolution and keeps the central square, so
# a 60000x2 strip would first be blown up to 6.7 million x 224 pixels (6.8 GB). Longer images are cut
# to this ratio around the centre first: the central square the model sees is unchanged.
MAX_MODEL_ASPECT = 16
# EXIF orientation -> the transposition that shows the image upright (EXIF 2.32, tag 0x0112).
ORIENTATION_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# The first bytes of files Pillow cannot identify, to say what they are instead (offset, bytes, reason).
KNOWN_IMAGE_SIGNATURES = [
    (0, b"\x89PNG\r\n\x1a\n", "PNG"), (0, b"\xff\xd8\xff", "JPEG"), (0, b"GIF87a", "GIF"), (0, b"GIF89a", "GIF"),
    (0, b"II*\x00", "TIFF"), (0, b"MM\x00*", "TIFF"), (8, b"WEBP", "WEBP"), (0, b"BM", "BMP"),
]
OTHER_SIGNATURES = [
    (4, b"ftypheic", "unsupported or damaged HEIC file (pillow-heif could not read it); convert it to JPEG or PNG"),
    (4, b"ftypheix", "unsupported or damaged HEIC file (pillow-heif could not read it); convert it to JPEG or PNG"),
    (4, b"ftypmif1", "unsupported or damaged HEIF file (pillow-heif could not read it); convert it to JPEG or PNG"),
    (4, b"ftypmsf1", "unsupported or damaged HEIF file (pillow-heif could not read it); convert it to JPEG or PNG"),
    (0, b"\xff\x0a", "unsupported format: JPEG XL; convert it to JPEG or PNG"),
    (0, b"\x00\x00\x00\x0cJXL ", "unsupported format: JPEG XL; convert it to JPEG or PNG"),
    (0, b"%PDF", "not an image: a PDF document"),
    (0, b"\x00\x05\x16\x07", "not an image: a macOS resource-fork file (\"._\" files come from copying off a Mac; "
                             "safe to delete)"),
    (0, b"PK\x03\x04", "not an image: a zip archive"),
    (0, b"%!PS", "unsupported format: PostScript/EPS (not opened: rendering it runs Ghostscript); convert it to PNG"),
    (0, b"\xc5\xd0\xd3\xc6", "unsupported format: EPS (not opened: rendering it runs Ghostscript); convert it to PNG"),
]


class ImageReadError(Exception):
    """A file that is not a usable image; `reason` is the short text that goes into the `error` column."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class FolderError(ValueError):
    """A folder that cannot be used: missing, not a folder, or without images."""


def is_image_name(path: str | os.PathLike) -> bool:
    """Whether the name ends with an image extension (any letter case)."""
    return str(path).lower().endswith(IMAGE_EXTENSIONS)


THUMBNAIL_SIDE = 160  # pixels: the longest side of a thumbnail (the panel's cards, a video's frames)


def check_folder(folder: str | os.PathLike, what: str = "images") -> Path:
    """The folder as a Path; FolderError when it does not exist or is not a folder (`what`: what it should
    hold, in the message: "a folder of images", "a folder of labelled images")."""
    folder = Path(folder)
    if not folder.exists():
        raise FolderError(f"image folder {folder} does not exist")
    if not folder.is_dir():
        raise FolderError(f"{folder} is not a folder; give a folder of {what}")
    return folder


def gather_images(images_or_folder: ImageSource, recursive: bool = False) -> list:
    """A folder, one file, or a list of paths / PIL images -> the list to embed.

    A folder gives the images in it, and those in its subfolders only with `recursive=True`: the same
    images as the command line (--recursive) and the notebooks. `folder_note` says which were taken.

    Args:
        images_or_folder: a folder, one image file, one PIL image, or a list of paths and PIL images.
        recursive: also take the images in a folder's subfolders.

    Returns:
        A list of paths and PIL images. Raises FolderError for a missing folder or one without images.
    """
    if isinstance(images_or_folder, (str, os.PathLike)):
        path = Path(images_or_folder)
        if path.is_file():
            return [path]
        found = find_images(path, recursive=recursive)
        if not found:
            below = 0 if recursive else len(find_images(path, recursive=True))
            where = " or its subfolders" if recursive else (" itself" if below else "")
            hint = (f"; {below} {'image is' if below == 1 else 'images are'} in its subfolders: use "
                    "recursive=True (--recursive) to include them") if below else ""
            raise FolderError(f"no images in {path}{where} (looked for {', '.join(IMAGE_EXTENSIONS)}){hint}")
        return found
    if isinstance(images_or_folder, Image.Image):
        return [images_or_folder]
    return list(images_or_folder)


def display_names(paths: Sequence) -> list[str]:
    """Short names for image paths: relative to their common folder ("red circle/000.png"); "<image N>"
    entries (PIL images given directly) stay as they are."""
    paths = [str(p) for p in paths]
    real = [p for p in paths if not p.startswith("<")]
    if len(real) < 2:
        return [p if p.startswith("<") else os.path.basename(p) for p in paths]
    root = os.path.commonpath([os.path.dirname(p) for p in real])
    return [p if p.startswith("<") else os.path.relpath(p, root) for p in paths]


def find_images(folder: str | os.PathLike, recursive: bool = False) -> list[Path]:
    """Every entry with an image extension (any letter case) that is not a folder, sorted by path.

    Folders named like images are skipped. Broken links, named pipes and other entries that are not
    regular files are listed too, so that each gets a row saying why it was not read (they are never
    opened: reading a pipe would wait for ever). A recursive walk follows symlinked folders but never
    enters the same folder twice, so a symlink loop cannot make it loop.
    """
    return _walk(check_folder(folder), recursive)[0]


def _walk(folder: Path, recursive: bool) -> tuple[list[Path], list[OSError]]:
    """find_images' walk: the images found, and the subfolders that could not be listed (their errors)."""
    problems: list[OSError] = []
    found = []
    visited = {os.path.realpath(folder)}
    for root, dirs, files in os.walk(folder, followlinks=recursive, onerror=problems.append):
        found.extend(Path(root) / name for name in files if is_image_name(name))
        if not recursive:
            break
        kept = []
        for name in sorted(dirs):
            real = os.path.realpath(os.path.join(root, name))
            if real not in visited:
                visited.add(real)
                kept.append(name)
        dirs[:] = kept
    if problems and not found and problems[0].filename and os.path.samefile(problems[0].filename, folder):
        raise FolderError(f"image folder {folder} cannot be listed: {problems[0].strerror or problems[0]}")
    return sorted(found, key=lambda p: str(p)), problems


def _unread_note(folder: Path, problems: Sequence[OSError], lang: str = "en") -> str:
    """"; 1 subfolder could not be read (a: Permission denied)": what a listing skipped, so it is not silent.
    The reason is the system's own (strerror), as the system says it."""
    from ..words import plural, word

    if not problems:
        return ""
    names = [f"{os.path.relpath(p.filename, folder) if p.filename else '?'}: {p.strerror or p}" for p in problems]
    more = word("folder.unread_more", lang, count=len(names) - 3) if len(names) > 3 else ""
    return word("folder.unread", lang, subfolders=plural(len(names), "subfolder"), count=len(names),
                shown=", ".join(names[:3]) + more)


def _images(count: int, more: str = "") -> str:
    return f"{count} {more}{'image' if count == 1 else 'images'}"


def folder_note(folder: str | os.PathLike, recursive: bool = False, option: str | None = "recursive=True",
                lang: str = "en") -> str:
    """One sentence saying which images of `folder` a run uses, so every notebook, the command line and
    Python say the same: "8 images in test_images (subfolders not included: 96 more images in subfolders;
    add recursive=True to include them)", or "104 images in test_images, subfolders included (96 of them in
    subfolders)" with `recursive`, or "8 images in test_images" when no subfolder holds images.

    `option` names the switch that includes subfolders: "recursive=True" (Python), "--recursive" (the
    command line), or None for a sentence that names none. Counts are what `find_images` finds. The sentence
    is in `lang` (clipnb.words).
    """
    from ..words import word

    folder = Path(folder)
    every, problems = _walk(check_folder(folder), recursive=True)  # one walk counts both: here and below
    here = sum(path.parent == folder for path in every)
    below = len(every) - here
    unread = _unread_note(folder, problems, lang)
    if recursive:
        return word("folder.recursive", lang, images=_images(here + below), count=here + below, folder=folder,
                    below=below) + unread
    if not below:
        return word("folder.images", lang, images=_images(here), count=here, folder=folder) + unread
    how = word("folder.how", lang, option=option) if option else ""
    return word("folder.not_included", lang, images=_images(here), count=here, folder=folder,
                more=_images(below, "more "), below=below, how=how) + unread


def file_problem(path: str | os.PathLike) -> str:
    """Why `path` cannot be read as an image file without opening it, or "" for a non-empty regular file.

    Only stat() is used, so a named pipe or a device is never opened (reading one could block for ever).
    """
    try:
        info = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            return f"broken symbolic link: it points to {os.readlink(path)}, which does not exist"
        return "cannot read file: it no longer exists (moved or deleted during the run?)"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "broken symbolic link: a loop of links that never reaches a file"
        return f"cannot read file: {exc.strerror or exc}"
    if stat.S_ISDIR(info.st_mode):
        return "not a regular file: a folder"
    if not stat.S_ISREG(info.st_mode):
        kind = ("a named pipe" if stat.S_ISFIFO(info.st_mode) else "a socket" if stat.S_ISSOCK(info.st_mode)
                else "a device" if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode) else "a special file")
        return f"not a regular file: {kind}, not read"
    if info.st_size == 0:
        return "empty file (0 bytes)"
    return ""


@dataclass
class OpenedImage:
    image: Image.Image  # RGB, EXIF orientation applied
    width: int
    height: int
    note: str = ""  # for example "animated: first of 12 frames"
    content: str = ""  # SHA-256 of the very bytes decoded (the cache's key); "" for an image given in memory


def open_image(path: str | os.PathLike, background: tuple[int, int, int] | None = None,
               draft_size: int | None = None, keep_mode: bool = False) -> OpenedImage:
    """Open an image file as RGB with its EXIF orientation applied.

    `background`: composite transparent pixels onto this colour instead of dropping alpha (openai-clip's
    own `convert("RGB")` drops it, which is the default so that scores match the reference).
    `draft_size`: let JPEG decoding shrink by 1/2, 1/4 or 1/8 as long as both sides stay >= this size
    (much faster for large photos; the pixels then differ slightly from a full decode).
    `keep_mode`: leave the Pillow mode as it is (16-bit greyscale still becomes 8-bit) so that openai-clip's
    preprocessing, which resizes first and converts to RGB last, sees exactly what it would see itself.
    Raises ImageReadError with a short reason for anything that is not a readable image: truncated files
    are reported, never padded with grey, and images over Pillow's decompression-bomb limit are refused
    from their header, before any pixel is decoded.

    The file is read once: `content`, its SHA-256, is taken from the same bytes that are decoded, so a file
    replaced while a run reads it can never pair one file's pixels with another's hash.
    """
    path = Path(path)
    problem = file_problem(path)
    if problem:
        raise ImageReadError(problem)
    try:
        data = _read_bytes(path)
        content = hashlib.sha256(data).hexdigest()
        heard: list[str] = []
        with _pillow_warnings(heard):  # the header and the EXIF data, where Pillow warns about damage
            img = Image.open(io.BytesIO(data), formats=READABLE_FORMATS)
            # refuse before decoding: a bomb must never be expanded into memory
            check_pixel_count(img.size)
            orientation, note = exif_orientation(img)
        note = _join(note, *dict.fromkeys(heard))
        with img:
            if img.format in SELF_ORIENTING_FORMATS:
                orientation = 1  # Pillow turns it itself on load, and its size is the displayed one
            width, height = displayed_size(img, orientation)
            note = _join(note, _frames_note(img))
            if draft_size and img.format in DRAFT_FORMATS:
                img.draft("RGB", _draft_request(img.size, draft_size))
            img.load()
            image = upright(img, orientation)
            if not keep_mode or background is not None:
                image = to_rgb(image, background)
            elif image.mode in SIXTEEN_BIT_MODES or image.mode == "F":
                image = to_8bit(image)
    except ImageReadError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageReadError(_bomb_reason(exc)) from None
    except Image.DecompressionBombWarning as exc:
        raise ImageReadError(_bomb_reason(exc)) from None
    except UnidentifiedImageError:
        raise ImageReadError(describe_unidentified(path, data[:512])) from None
    except MemoryError:
        raise ImageReadError("too large: not enough memory to decode it") from None
    except (PermissionError, FileNotFoundError, IsADirectoryError) as exc:
        raise ImageReadError(f"cannot read file: {exc.strerror or exc}") from None
    except OSError as exc:
        raise ImageReadError(_decode_reason(exc)) from None
    except (ValueError, SyntaxError, EOFError, IndexError, TypeError, KeyError, NotImplementedError,
            struct.error) as exc:
        # Pillow's plugins raise these for damaged or unsupported content
        raise ImageReadError(_decode_reason(exc)) from None
    return OpenedImage(image=image, width=width, height=height, note=note, content=content)


# Python's warning filters belong to the whole process, so readers take turns to hear Pillow's warnings;
# only the header and EXIF data are read meanwhile (microseconds), never the pixels
_warnings_lock = threading.Lock()
_PILLOW_FOLDERS = tuple(os.path.dirname(module.__file__) + os.sep for module in (PIL, pillow_heif))


@contextmanager
def _pillow_warnings(heard: list[str]):
    """Pillow's warnings about a file (damaged EXIF data, a malformed MPO) go into `heard`, for the row's
    note, instead of onto stderr in the middle of a progress bar; a decompression-bomb warning is an error.
    Other warnings raised meanwhile are passed on as they came."""
    with _warnings_lock:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
        for warning in caught:
            if warning.filename.startswith(_PILLOW_FOLDERS):
                heard.append(f"Pillow: {warning.message}")
            else:
                warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)


def _read_bytes(path: Path) -> bytes:
    """The whole file (a regular file, checked by file_problem), refused over MAX_FILE_BYTES."""
    with open(path, "rb") as handle:
        # read(n) sets aside n bytes first: ask for the size the file has (and one byte to see it grow)
        size = os.fstat(handle.fileno()).st_size
        data = handle.read(size + 1) if size <= MAX_FILE_BYTES else b""
    if size > MAX_FILE_BYTES or len(data) > MAX_FILE_BYTES:
        raise ImageReadError(f"too large: the file is over the {MAX_FILE_BYTES:,}-byte limit of one image file "
                             "(clipnb.data.images.MAX_FILE_BYTES); not decoded. Shrink or split it")
    return data


def _join(*notes: str) -> str:
    return "; ".join(n for n in notes if n)


def _frames_note(img: Image.Image) -> str:
    """A note for animations and multi-page files: only the first frame is used."""
    if img.format == "TIFF":
        # pages are never counted: Pillow walks every page's directory again for each one it counts, and a
        # 100,000-page file took 76 s. Whether a second page exists is known from the first one's header.
        return "multi-page: first page used" if getattr(img, "is_animated", False) else ""
    try:
        frames = getattr(img, "n_frames", 1)
    except Exception:  # counting frames reads the whole file; a damaged tail must not lose the first frame
        return "first frame used; later frames are damaged"
    if frames <= 1:
        return ""
    if img.format == "MPO":
        return f"multi-picture JPEG (MPO): first of {frames} pictures used"
    if img.format in ("GIF", "PNG", "WEBP", "AVIF"):
        return f"animated: first of {frames} frames used"
    return f"first of {frames} pictures used"


def _bomb_reason(exc: Exception) -> str:
    numbers = [int(n) for n in re.findall(r"\d+", str(exc))]
    size = f"{numbers[0]:,} pixels is over" if len(numbers) >= 2 else "over"
    return (f"too large: {size} the {Image.MAX_IMAGE_PIXELS or 0:,}-pixel limit (Pillow's decompression-bomb "
            "guard); not decoded. Shrink the image, or raise PIL.Image.MAX_IMAGE_PIXELS if you trust it")


TRUNCATION_WORDS = ("truncated", "broken data stream", "premature end", "end of file", "unexpected eof",
                    "not enough data")


def _decode_reason(exc: Exception) -> str:
    """A short reason for an exception raised while decoding a file Pillow did recognise."""
    text = str(exc) or type(exc).__name__
    lower = text.lower()
    if isinstance(exc, EOFError) or any(word in lower for word in TRUNCATION_WORDS):
        return f"truncated file: it ends before the image does (an incomplete download or copy?) ({text})"
    if "not supported" in lower or "not available" in lower or "unsupported" in lower or isinstance(
            exc, NotImplementedError):
        return f"unsupported image: {text}"
    return f"damaged image ({type(exc).__name__}: {text})"


def describe_unidentified(path: str | os.PathLike, head: bytes | None = None) -> str:
    """Why Pillow did not recognise a file, from its first bytes (`head`, else read from `path`): a
    truncated image, a known format Pillow cannot read (JPEG XL), or something that is not an image at all
    (an HTML error page, a PDF)."""
    if head is None:
        try:
            with open(path, "rb") as handle:
                head = handle.read(512)
        except OSError as exc:
            return f"cannot read file: {exc.strerror or exc}"
    for offset, signature, name in KNOWN_IMAGE_SIGNATURES:
        if head[offset:offset + len(signature)] == signature:
            if name == "BMP" and len(head) >= 54:
                continue  # "BM" is too short a signature to trust unless the header is cut off
            return (f"truncated or damaged file: it starts like a {name} image, but its header cannot be read "
                    f"({os.path.getsize(path)} bytes)")
    for offset, signature, reason in OTHER_SIGNATURES:
        if head[offset:offset + len(signature)] == signature:
            return reason
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith((b"<!doctype html", b"<html")) or b"<html" in text[:200]:
        return "not an image: an HTML page (a failed or blocked download?)"
    if text.startswith(b"<") and b"<svg" in text:
        return "not an image: an SVG drawing (vector graphics); convert it to PNG"
    if head and b"\x00" not in head:
        try:
            head.decode("utf-8")
            return "not an image: a text file"
        except UnicodeDecodeError:
            pass
    return "not an image (unrecognised file content)"


def check_pixel_count(size: tuple[int, int]) -> None:
    """Raise ImageReadError ("too large") for sizes over Pillow's decompression-bomb limit."""
    limit = Image.MAX_IMAGE_PIXELS
    if limit and size[0] * size[1] > limit:
        raise ImageReadError(f"too large: {size[0]}x{size[1]} = {size[0] * size[1]:,} pixels is over the "
                             f"{limit:,}-pixel limit (Pillow's decompression-bomb guard); not decoded. Shrink "
                             "the image, or raise PIL.Image.MAX_IMAGE_PIXELS if you trust it")


def _draft_request(size: tuple[int, int], minimum: int) -> tuple[int, int]:
    # draft() keeps the scale at which the image is still at least the requested size
    scale = min(size) / minimum
    return (max(1, math.ceil(size[0] / scale)), max(1, math.ceil(size[1] / scale)))


def exif_orientation(img: Image.Image) -> tuple[int, str]:
    """The EXIF orientation (1-8) and a note when the tag is there but unusable (then 1: as stored)."""
    try:
        value = img.getexif().get(0x0112, 1)
    except Exception:  # damaged EXIF must not cost the picture
        return 1, "EXIF data damaged; orientation ignored"
    if value in ORIENTATION_TRANSPOSE or value == 1:
        return value, ""
    return 1, f"EXIF orientation {value!r} is not valid (1-8); image shown as stored"


def displayed_size(img: Image.Image, orientation: int | None = None) -> tuple[int, int]:
    """Width and height as displayed (after EXIF rotation), from the header, before any decoding."""
    width, height = img.size
    if orientation is None:
        orientation = 1 if img.format in SELF_ORIENTING_FORMATS else exif_orientation(img)[0]
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def upright(img: Image.Image, orientation: int) -> Image.Image:
    """The decoded image as it is meant to be displayed (EXIF orientation applied)."""
    method = ORIENTATION_TRANSPOSE.get(orientation)
    return img.transpose(method) if method is not None else img.copy()


def to_rgb(img: Image.Image, background: tuple[int, int, int] | None = None) -> Image.Image:
    """Any Pillow mode -> RGB. 16-bit greyscale is scaled to 8 bits (Pillow's own convert would clip it)."""
    if img.mode in SIXTEEN_BIT_MODES or img.mode == "F":
        img = to_8bit(img)
    if background is not None and (img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info):
        rgba = img.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, tuple(background) + (255,))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")  # what Pillow itself recommends; RGB then drops the alpha, as before
    return img.convert("RGB")


def to_8bit(img: Image.Image) -> Image.Image:
    """16-bit (or 32-bit integer, or float) greyscale -> 8-bit "L", scaling the range instead of clipping it.

    16-bit modes always scale 0..65535 to 0..255 (so a dark 16-bit image stays dark); a 32-bit "I" image
    is taken as 16-bit when its values need it (Pillow used to open 16-bit PNGs so) and as 8-bit otherwise;
    a float image in 0..1 is scaled to 0..255.
    """
    if img.mode == "F":
        high = img.getextrema()[1]
        return img.point(lambda v: v * 255).convert("L") if high <= 1.0 else img.convert("L")
    sixteen = img.mode.startswith("I;16")
    img = img if img.mode == "I" else img.convert("I")
    high = img.getextrema()[1]
    scale = 257 if sixteen or 255 < high <= 65535 else (high / 255 if high > 65535 else 1)
    return img.point(lambda v: v / scale + 0.5).convert("L")  # + 0.5: rounded, not truncated


def fit_for_model(image: Image.Image, max_aspect: float = MAX_MODEL_ASPECT) -> Image.Image:
    """Cut an extreme panorama (longer than `max_aspect`:1) to that ratio around its centre.

    CLIP's preprocessing only keeps the central square, so what the model sees is the same (up to a
    fraction of a pixel of resampling), but a 60000x2 strip is no longer blown up to gigabytes first.
    Ordinary images are returned as they are.
    """
    width, height = image.size
    short, long_side = min(width, height), max(width, height)
    if short == 0 or long_side <= short * max_aspect:
        return image
    keep = max(1, int(short * max_aspect))
    start = (long_side - keep) // 2
    box = (start, 0, start + keep, height) if width > height else (0, start, width, start + keep)
    return image.crop(box)


# ---- aspect ratios (pure) -------------------------------------------------------------------------

def reduced_ratio(width: int, height: int) -> tuple[int, int]:
    """The exact reduced ratio (both sides divided by their gcd): 4080x1836 -> (20, 9)."""
    divisor = math.gcd(width, height)
    return width // divisor, height // divisor


def ratio_type(width: int, height: int) -> str:
    """The ratio type: one of the four named exact ratios (RATIO_TYPES), else "other", for either orientation:
    a portrait image has its landscape form's type (1080x1920 is "widescreen (16:9)"; `orientation` says
    "portrait"), so that a phone's upright photos are not all "other"."""
    return RATIO_TYPES.get(reduced_ratio(max(width, height), min(width, height)), OTHER_RATIO)


def orientation(width: int, height: int) -> str:
    """"square", "landscape" or "portrait"."""
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
