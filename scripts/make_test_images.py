"""Rebuild test_images/ from the licensed photos in ../shared/test-photos (see test_images/LICENSES.md).

The photos are resized to the sizes and aspect ratios of real photo folders: a 1200x800 camera picture,
a 4080x1836 phone picture (20:9), a 2048x1362 one (3:2 within 0.3%), 4:3, 16:9, square and portrait.
It also writes test_images/shapes/<class>/: generated coloured shapes that the demo model knows, one
image of each of the 48 classes drawn by the training renderer and one by the other renderer (new seeds).
Usage: python scripts/make_test_images.py [SOURCE_DIR]
"""
import sys
from pathlib import Path

from PIL import Image

SOURCE = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "shared" / "test-photos")
TARGET = Path(__file__).resolve().parents[1] / "test_images"

# target name: (source name, width, height); None keeps the original file as it is
PLAN = {
    "cat.jpg": ("cat.png", 1200, 800),
    "cat2.jpg": ("cat.png", 4080, 1836),
    "dog.png": ("dog.png", None, None),  # RGBA, kept: a real case for the RGB conversion
    "dog2.jpg": ("dog.png", 2048, 1362),
    "car.jpg": ("car.jpg", 1600, 1200),
    "tree.jpg": ("tree.jpg", 1920, 1080),
    "book.jpg": ("notebook.jpg", 902, 770),
    "grace_hopper.jpg": ("grace_hopper.jpg", None, None),  # portrait
}


def fit(image: Image.Image, width: int, height: int) -> Image.Image:
    """Centre-crop to the target aspect ratio, then resize."""
    scale = max(width / image.width, height / image.height)
    crop_w, crop_h = round(width / scale), round(height / scale)
    left, top = (image.width - crop_w) // 2, (image.height - crop_h) // 2
    return image.crop((left, top, left + crop_w, top + crop_h)).resize((width, height), Image.LANCZOS)


def write_shapes() -> None:
    sys.path.insert(0, str(TARGET.parent))
    from clipnb.demo import shapes

    for style in shapes.STYLES:
        for path, _ in shapes.write_folder(TARGET / "shapes", per_class=1, seed=20261127, style=style):
            path.rename(path.with_name(f"{style}{path.suffix}"))
    print(f"shapes/: {len(shapes.CLASSES)} classes x {len(shapes.STYLES)} renderers")


def main() -> None:
    TARGET.mkdir(exist_ok=True)
    write_shapes()
    for name, (source, width, height) in PLAN.items():
        image = Image.open(SOURCE / source)
        if width is None:
            (TARGET / name).write_bytes((SOURCE / source).read_bytes())
            continue
        fit(image.convert("RGB"), width, height).save(TARGET / name, quality=88)
        print(f"{name}: {width}x{height} from {source}")


if __name__ == "__main__":
    main()
