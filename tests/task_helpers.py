"""Fixtures shared by the evaluation, search, video and probe tests: the demo model and generated shapes.

Import the fixtures into a test module (`from task_helpers import demo, shapes_folder`).
"""
import os
from pathlib import Path

import pytest

from clipnb.demo import shapes
from clipnb.models import DEMO_PATH


@pytest.fixture(scope="session")
def demo():
    """The demo CLIP model (trained on coloured shapes): a model that knows its classes, so a mix-up of
    labels, rows or classes shows as a wrong number."""
    from clipnb import load_model

    require_demo()
    return load_model("demo", device="cpu")


def require_demo():
    """The demo model is made by scripts/train_demo.py: in CI it must be there (as tests/test_notebooks.py)."""
    if not DEMO_PATH.is_file():
        message = f"the demo model {DEMO_PATH} is missing; train it with `python scripts/train_demo.py`"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


def write_shapes(root: Path, per_class: int, classes=shapes.CLASSES, seed: int = 99) -> Path:
    """A labelled folder root/<class>/<i>.png of generated shapes (a seed other than training's)."""
    shapes.write_folder(root, per_class=per_class, classes=classes, seed=seed)
    return root


@pytest.fixture(scope="session")
def shapes_folder(tmp_path_factory) -> Path:
    """All 48 classes, 2 images each."""
    return write_shapes(tmp_path_factory.mktemp("labelled") / "shapes", per_class=2)
