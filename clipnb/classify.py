"""Zero-shot classification of images: embeddings + a zero-shot head -> a tidy per-image table."""
from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
import pandas as pd
import torch

from .embedding import EmbeddedImages, embed_images, embed_one
from .images import (Colour, FolderError, ImageInput, ImageSource, aspect_info, find_images, folder_note,
                     gather_images)
from .models import DEFAULT_MODEL, ClipModel, load_model
from .prompts import DEFAULT_TEMPLATES, PromptSpec, Templates, prompt_spec
from .schema import ASPECT_COLUMNS, prob_columns, score_columns, set_settings
from .scoring import ZeroShotHead, build_head, text_probabilities

if TYPE_CHECKING:
    from .cache import EmbeddingCache


# photo folders hold few distinct sizes: each is worked out once (aspect_info is pure)
_aspect_info = functools.lru_cache(maxsize=4096)(aspect_info)


def results_table(embedded: EmbeddedImages, head: ZeroShotHead) -> pd.DataFrame:
    """One row per image: path, size, aspect-ratio columns, prediction, confidence, error, scores, probs
    (the columns and settings are defined in clipnb.schema).

    Pure: re-scoring with other classes, templates or ensembling calls this again on the same embeddings.
    """
    records = embedded.records
    ok = embedded.ok
    scores = torch.full((len(records), len(head.classes)), float("nan"))
    probs = scores.clone()
    if ok.any():
        index = torch.from_numpy(np.flatnonzero(ok))
        scores[index] = head.scores(embedded.features[index])
        probs[index] = head.probabilities(scores[index])
    best = probs.nan_to_num(-1.0).argmax(dim=1).numpy()
    table = records[["path", "width", "height"]].copy()
    aspects = [_aspect_info(int(w), int(h)) if good else dict.fromkeys(ASPECT_COLUMNS)
               for w, h, good in zip(records["width"], records["height"], ok)]
    for column in ASPECT_COLUMNS:
        table[column] = [a[column] for a in aspects]
    table["prediction"] = [head.classes[b] if good else None for b, good in zip(best, ok)]
    table["confidence"] = np.where(ok, probs.numpy()[np.arange(len(records)), best], np.nan) if len(records) else []
    table["error"] = records["error"].to_numpy()
    table["note"] = records["note"].to_numpy()
    score_frame = pd.DataFrame(scores.numpy(), columns=score_columns(head.classes), index=table.index)
    prob_frame = pd.DataFrame(probs.numpy(), columns=prob_columns(head.classes), index=table.index)
    table = pd.concat([table, score_frame, prob_frame], axis=1)
    set_settings(table, classes=list(head.classes), templates=list(head.templates), ensemble=head.ensemble)
    return table


def classify(images_or_folder: ImageSource, classes: Sequence[str] | PromptSpec, templates: Templates = DEFAULT_TEMPLATES,
             model: ClipModel | str | None = None, ensemble: str = "embedding", *, recursive: bool = False,
             batch_size: int | None = None, exact: bool = False, cache: EmbeddingCache | None = None, truncate: bool = False,
             background: Colour | None = None, num_workers: int | None = None, progress: bool = True) -> pd.DataFrame:
    """Classify a folder (or a list of images) zero-shot with prompt-template ensembling.

    `classes` may be a PromptSpec (see `prompt_spec`) carrying templates and ensembling. Bad classes and
    templates fail before any model is loaded or image is read; unreadable files
    become rows with an `error` and never stop the run. For a folder, the setting `folder_note` says
    which images were taken (see `folder_note`).
    """
    spec = prompt_spec(classes, templates, ensemble)
    items = gather_images(images_or_folder, recursive=recursive)
    model = model if isinstance(model, ClipModel) else load_model(model or DEFAULT_MODEL)
    head = build_head(model, spec, truncate=truncate, cache=cache)
    embedded = embed_images(model, items, batch_size=batch_size, exact=exact, cache=cache,
                            num_workers=num_workers, background=background, progress=progress)
    table = results_table(embedded, head)
    set_settings(table, model=model.name, stats=embedded.stats)
    if isinstance(images_or_folder, (str, os.PathLike)) and Path(images_or_folder).is_dir():
        set_settings(table, folder_note=folder_note(images_or_folder, recursive))
    return table


def check_image_file(image: ImageInput, classify_hint: str = "clipnb.classify(folder, classes)") -> None:
    """Refuse a folder or a missing path where one image is wanted (similarity), saying what to do.

    `classify_hint` is how to classify a whole folder instead, in the caller's words (Python or the
    command line). Anything else (a PIL image, a readable or unreadable file) passes.
    """
    if not isinstance(image, (str, os.PathLike)):
        return
    path = Path(image)
    if path.is_dir():
        found = find_images(path)
        example = f", such as {found[0]}" if found else ""
        raise FolderError(f"{path} is a folder: similarity compares one image with texts; give an image "
                          f"file{example}, or use {classify_hint} to classify the images of a folder")
    if not path.exists() and not path.is_symlink():
        raise FileNotFoundError(f"image {path} does not exist; check its name and folder")


def similarity(image: ImageInput, texts: Sequence[str], model: ClipModel | str | None = None, *, exact: bool = True,
               truncate: bool = False) -> pd.Series:
    """The CLIP paper's example: the probability of each text for one image (softmax of logit scale x cosine).

    `image` is one image file or PIL image; a folder is refused (classify is for folders).
    """
    check_image_file(image)
    model = model if isinstance(model, ClipModel) else load_model(model or DEFAULT_MODEL)
    features = embed_one(model, image, exact=exact)
    probs = text_probabilities(model, features[None], texts, truncate=truncate)[0]
    return pd.Series(probs.numpy(), index=list(texts), name="probability")
