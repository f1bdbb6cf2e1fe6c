"""Example data made from the shapes world: labelled folders of generated images and videos of them, for
the notebooks, the tests and demos (the demo model knows every class drawn here).
"""
from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from PIL import Image

from ..data.files import atomic_path
from ..data.video import VideoError, import_av
from . import shapes


def shapes_folder(root: str | os.PathLike, per_class: int = 4, classes: Sequence[str] | None = None,
                  seed: int = 2024, by: str = "class") -> Path:
    """A labelled folder of generated coloured shapes (clipnb.demo.shapes), written once: the example data of the
    evaluation and few-shot notebooks when no folder of one's own is given.

    by="class": root/<colour shape>/<i>.png for each of `classes` (default all 48).
    by="shape": root/<shape>/<i>.png, each shape drawn in random colours and labelled by its shape alone
    (one example of a class then shows one colour: a task where few-shot probes need several shots).
    """
    root = Path(root)
    if by == "shape":
        for number, shape in enumerate(shapes.SHAPES):
            folder = root / shape
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                if (folder / f"{i:03d}.png").exists():
                    continue
                rng = np.random.default_rng([seed, number, i])
                colour = shapes.COLOURS[int(rng.integers(len(shapes.COLOURS)))]
                shapes.draw(colour, shape, rng, size=(96, 96))[0].save(folder / f"{i:03d}.png")
        return root
    if by != "class":
        raise ValueError(f"by must be 'class' or 'shape', not {by!r}")
    classes = list(classes or shapes.CLASSES)
    missing = [c for c in classes if len(list((root / c).glob("*.png"))) < per_class]
    if missing:
        shapes.write_folder(root, per_class=per_class, classes=missing, seed=seed)
    return root


def blurred_shapes_folder(root: str | os.PathLike, per_class: int = 4, classes: Sequence[str] | None = None,
                          seed: int = 11, blur: float = 1 / 12) -> Path:
    """A labelled folder, root/<colour shape>/<i>.png, of shapes blurred until barely recognisable (a Gaussian
    blur of radius `blur` x the shorter side): hard images on which the demo model is right less often than it
    is sure, the example of calibration (`clipnb.zeroshot.calibration`). Written once; files already there are kept."""
    from PIL import ImageFilter

    root = Path(root)
    classes = list(classes or shapes.CLASSES)
    for label in classes:
        colour, shape = shapes.split(label)
        folder = root / label
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            target = folder / f"{i:03d}.png"
            if target.exists():
                continue
            image, _ = shapes.draw(colour, shape, np.random.default_rng([seed, shapes.CLASSES.index(label), i]))
            image.filter(ImageFilter.GaussianBlur(min(image.size) * blur)).save(target)
    return root


def write_video(path: str | os.PathLike, images: Sequence[Image.Image], fps: float = 4.0,
                codec: str | None = None) -> Path:
    """Write RGB pictures as a video (H.264 when this FFmpeg has it, else MPEG-4 Part 2), atomically."""
    av = import_av()
    images = list(images)
    if not images:
        raise VideoError("no pictures to write")
    codec = codec or ("libx264" if "libx264" in av.codecs_available else "mpeg4")
    width, height = images[0].size
    width, height = width - width % 2, height - height % 2  # yuv420p needs even sides
    path = Path(path)
    with atomic_path(path) as temporary:
        with av.open(str(temporary), "w", format=_container_format(path)) as container:
            stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1000))
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            if codec == "libx264":
                stream.options = {"crf": "18", "preset": "veryfast"}
            for image in images:
                picture = image.convert("RGB")
                if picture.size != (width, height):
                    picture = picture.resize((width, height))
                for packet in stream.encode(import_av().VideoFrame.from_image(picture)):
                    container.mux(packet)
            for packet in stream.encode(None):
                container.mux(packet)
    return path


def _container_format(path: Path) -> str:
    return {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".avi": "avi",
            ".webm": "webm"}.get(path.suffix.lower(), "mp4")


def shapes_video(path: str | os.PathLike, parts: Sequence[tuple[str, float]] = (("red circle", 2.0),
                                                                               ("blue star", 2.0)),
                 fps: float = 4.0, size: tuple[int, int] = (128, 96), seed: int = 0) -> Path:
    """A video of generated shapes (clipnb.demo.shapes): each (class, seconds) part shows that class, redrawn on
    every frame (new position, shade and background), so the demo model's timeline should follow the parts."""
    images = []
    for number, (label, seconds) in enumerate(parts):
        colour, shape = shapes.split(label)
        for i in range(max(1, round(seconds * fps))):
            rng = np.random.default_rng([seed, number, i])
            images.append(shapes.draw(colour, shape, rng, size=size)[0])
    return write_video(path, images, fps=fps)


# The copies people make of a photo without meaning to keep two: sent at half size, saved again at a low
# JPEG quality, trimmed at the edges. They are what the near-duplicate threshold must catch.
COPY_EDITS = ("resized", "recompressed", "cropped")


def edited_copy(image: Image.Image, edit: str) -> Image.Image:
    """One planted copy of `image` (see COPY_EDITS): "resized" to half its sides, "recompressed" (returned as
    is: `plant_copies` saves it as a JPEG of quality 40), "cropped" by 5% on every side."""
    image = image.convert("RGB")
    if edit == "resized":
        return image.resize((max(1, image.width // 2), max(1, image.height // 2)), Image.Resampling.LANCZOS)
    if edit == "recompressed":
        return image
    if edit == "cropped":
        dx, dy = round(image.width * 0.05), round(image.height * 0.05)
        return image.crop((dx, dy, image.width - dx, image.height - dy))
    raise ValueError(f"unknown edit {edit!r}: use one of {', '.join(COPY_EDITS)}")


def plant_copies(files: Sequence[str | os.PathLike], folder: str | os.PathLike,
                 edits: Sequence[str] = COPY_EDITS) -> list[tuple[Path, Path, str]]:
    """Write an edited copy of each file into `folder` for each of `edits` (as `<stem>-<edit>.jpg`, or
    `<folder>-<stem>-<edit>.jpg` when two files share a stem; JPEG quality 40 for "recompressed", 90
    otherwise). Returns (copy, original, edit) for each copy written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    planted = []
    stems = pd.Series([Path(f).stem for f in files])
    shared = set(stems[stems.duplicated()])
    for file in map(Path, files):
        name = f"{file.parent.name}-{file.stem}" if file.stem in shared else file.stem
        with Image.open(file) as image:
            image.load()
            for edit in edits:
                target = folder / f"{name}-{edit}.jpg"
                edited_copy(image, edit).save(target, quality=40 if edit == "recompressed" else 90)
                planted.append((target, file, edit))
    return planted


def example_collection(root: str | os.PathLike, images: str | os.PathLike | None = None) -> Path:
    """The example folder of the collection notebook (09), written once: what a real folder of photos
    holds, small enough to read every row of.

    - root/shapes/<class>/<class>.png: one drawing of each of the 48 shape classes (the repository's own);
    - root/photos/: the repository's real photos, which the demo model's classes do not describe;
    - root/copies/: planted copies (`plant_copies`) of the car and the dog photos and of the red circle, and
      a byte-for-byte copy of the cat photo.
    `images` is the repository's test_images folder (default: found beside the package).
    """
    import shutil

    root = Path(root)
    if (root / "copies").is_dir():
        return root
    images = Path(images) if images else Path(__file__).resolve().parents[2] / "test_images"
    (root / "photos").mkdir(parents=True, exist_ok=True)
    for photo in sorted(images.glob("*.*")):
        if photo.suffix.lower() in (".jpg", ".jpeg", ".png"):
            shutil.copy(photo, root / "photos" / photo.name)
    for folder in sorted((images / "shapes").iterdir()):
        (root / "shapes" / folder.name).mkdir(parents=True, exist_ok=True)
        shutil.copy(folder / "pil.png", root / "shapes" / folder.name / f"{folder.name}.png")
    copies = root / "copies.part"
    plant_copies([root / "photos" / "car.jpg", root / "photos" / "dog.png",
                  root / "shapes" / "red circle" / "red circle.png"], copies)
    shutil.copy(root / "photos" / "cat.jpg", copies / "cat (copy).jpg")
    copies.rename(root / "copies")  # last: a folder cut short by an interruption is made again
    return root
