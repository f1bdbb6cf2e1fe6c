"""What a run uses when the user has not said: the model (with the offline fallback), images and classes.

The notebooks and the main job share these, so "CLIPNB_MODEL=demo" and the fallback behave the same
everywhere. The package does not know where a checkout keeps its sample images: the notebooks pass that
folder (their `sample_images` parameter), and so do the scripts.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from .models.loading import DEFAULT_MODEL, DEMO_NAME, ClipModel, ModelError, load_model

PHOTO_CLASSES = ["cat", "dog", "car", "tree", "book"]
MODEL_VARIABLE = "CLIPNB_MODEL"


def requested_model() -> str:
    """The model asked for: $CLIPNB_MODEL when set, else ViT-B/32."""
    return os.environ.get(MODEL_VARIABLE) or DEFAULT_MODEL


def choose_model(name: str | None = None, device: str = "auto", say: Callable[[str], object] = print) -> ClipModel:
    """Load the requested model; when it is the default (ViT-B/32) and cannot be had, say so in one line
    and use the demo model instead. A model asked for by name is never silently replaced."""
    explicit = name is not None or MODEL_VARIABLE in os.environ
    name = name or requested_model()
    try:
        return load_model(name, device=device)
    except ModelError as exc:
        if explicit or name == DEMO_NAME:
            raise
        say(f"{name} could not be had (no cached weights and no download); using the offline demo model. "
            f"To use {name}, put its weights where this says: {str(exc).split(': ', 1)[-1]}")
        return load_model(DEMO_NAME, device=device)


def default_inputs(model: ClipModel, sample_images: str | os.PathLike) -> tuple[Path, list[str], bool]:
    """(image folder, classes, recursive) that suit the model, from a folder of sample images laid out as the
    checkout's test_images/ (photos, and the coloured shapes in shapes/): the shapes for the demo model,
    the photos for real CLIP models."""
    images = Path(sample_images).resolve()
    if model.name == DEMO_NAME:
        from .models.demo_vocabulary import CLASSES

        return images / "shapes", list(CLASSES), True
    return images, list(PHOTO_CLASSES), False


def choose_folder(image_folder: str | os.PathLike | None, recursive: bool | None, model: ClipModel,
                  sample_images: str | os.PathLike) -> tuple[Path, bool]:
    """(folder, recursive) for a notebook's parameters, by the rule that Python and the command line follow:
    a folder is read without its subfolders unless `recursive` is True. `None` means that, except for the
    default folder of the model (in `sample_images`, see default_inputs) when none is given (the demo's
    shapes sit in one subfolder per class)."""
    default_folder, _, default_recursive = default_inputs(model, sample_images)
    if image_folder is None:
        return default_folder, default_recursive if recursive is None else bool(recursive)
    return Path(image_folder), bool(recursive)
