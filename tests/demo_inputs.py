"""The demo model and generated shapes, for tests that need a model that knows its classes.

The fixtures `demo` and `shapes_folder` (tests/conftest.py) are built from these.
"""
import os
from pathlib import Path

import pytest

from clipnb.demo import shapes
from clipnb.models.families.openai import DEMO_PATH

SHAPES_IMAGES = Path(__file__).resolve().parents[1] / "test_images" / "shapes"


def require_demo(images: bool = False):
    """Skip (fail in CI) unless the demo model, and with `images` its committed shapes in test_images/shapes,
    are there: scripts/train_demo.py makes them."""
    missing = [str(p) for p in (DEMO_PATH, SHAPES_IMAGES)[:2 if images else 1] if not p.exists()]
    if missing:
        message = f"the demo model or its images are missing ({', '.join(missing)}); run scripts/train_demo.py"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


def write_shapes(root: Path, per_class: int, classes=shapes.CLASSES, seed: int = 99) -> Path:
    """A labelled folder root/<class>/<i>.png of generated shapes (a seed other than training's)."""
    shapes.write_folder(root, per_class=per_class, classes=classes, seed=seed)
    return root
