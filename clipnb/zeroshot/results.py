"""Zero-shot classification of images: embeddings + a zero-shot head -> a tidy per-image table."""
from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
import pandas as pd

from ..arrays import as_float32, to_numpy
from ..embed.pipeline import EmbeddedImages, embed_one
from ..embed.runner import embed_images
from ..data.images import (Colour, FolderError, ImageInput, ImageSource, aspect_info, find_images, folder_note,
                     gather_images)
from ..models.loading import DEFAULT_MODEL, ClipModel, load_model
from .calibration import apply_temperature, check_temperature
from .outliers import check_unknown, mark_outliers
from .prompts import DEFAULT_TEMPLATES, PromptSpec, Templates, prompt_spec
from .schema import ASPECT_COLUMNS, prob_columns, score_columns, set_settings
from .scoring import ZeroShotHead, build_head, text_probabilities

if TYPE_CHECKING:
    from ..data.cache import EmbeddingCache


# photo folders hold few distinct sizes: each is worked out once (aspect_info is pure)
_aspect_info = functools.lru_cache(maxsize=4096)(aspect_info)


def results_table(embedded: EmbeddedImages, head: ZeroShotHead, *, unknown: bool = False) -> pd.DataFrame:
    """The results table of embedded images under a zero-shot head; pure, so re-scoring with other classes,
    templates or ensembling calls this again on the same embeddings.

    Args:
        embedded: images embedded once (`embed_images`).
        head: the classes' text embeddings (`build_head`).
        unknown: predict "unknown" for images whose best score is unusually low for the table (`outlier`;
            the rule: `clipnb.zeroshot.outliers`) instead of forcing a class.

    Returns:
        One row per image: path, size, aspect-ratio columns, prediction, confidence, error, note, then
        `score_<class>` and `prob_<class>` for each class (defined in `clipnb.zeroshot.schema`); unreadable rows have
        an error and NaN scores.
    """
    records = embedded.records
    ok = embedded.ok
    # numpy whatever the embeddings' kind (`clipnb.arrays`): the table is numpy's anyway
    scores = np.full((len(records), len(head.classes)), np.nan, dtype=np.float32)
    probs = scores.copy()
    if ok.any():
        index = np.flatnonzero(ok)
        good = head.scores(as_float32(embedded.features)[index])
        scores[index], probs[index] = to_numpy(good), to_numpy(head.probabilities(good))
    # the best score wins: the class the probabilities rank first, without their ties where they round to 0
    # or 1 (a low temperature, a sigmoid head), so a temperature never changes a prediction
    best = np.nan_to_num(scores, nan=-2.0).argmax(axis=1)
    table = records[["path", "width", "height"]].copy()
    aspects = [_aspect_info(int(w), int(h)) if good else dict.fromkeys(ASPECT_COLUMNS)
               for w, h, good in zip(records["width"], records["height"], ok)]
    for column in ASPECT_COLUMNS:
        table[column] = [a[column] for a in aspects]
    table["prediction"] = [head.classes[b] if good else None for b, good in zip(best, ok)]
    table["confidence"] = np.where(ok, probs[np.arange(len(records)), best], np.nan) if len(records) else []
    table["error"] = records["error"].to_numpy()
    table["note"] = records["note"].to_numpy()
    score_frame = pd.DataFrame(scores, columns=score_columns(head.classes), index=table.index)
    prob_frame = pd.DataFrame(probs, columns=prob_columns(head.classes), index=table.index)
    table = pd.concat([table, score_frame, prob_frame], axis=1)
    set_settings(table, classes=list(head.classes), templates=list(head.templates), ensemble=head.ensemble,
                 probability="sigmoid" if head.sigmoid else "softmax", logit_scale=head.logit_scale,
                 logit_bias=head.logit_bias)
    return mark_outliers(table, unknown=unknown)


def classify(images_or_folder: ImageSource, classes: Sequence[str] | PromptSpec, templates: Templates = DEFAULT_TEMPLATES,
             model: ClipModel | str | None = None, ensemble: str = "embedding", *, recursive: bool = False,
             batch_size: int | None = None, exact: bool = False, cache: EmbeddingCache | None = None, truncate: bool = False,
             background: Colour | None = None, num_workers: int | None = None, progress: bool = True,
             scheduler=None, store: str | os.PathLike | None = None, unknown: bool = False,
             temperature: float | None = None) -> pd.DataFrame:
    """Classify a folder (or a list of images) zero-shot with prompt-template ensembling.

    Bad classes and templates fail before any model is loaded or image is read; unreadable files become rows
    with an `error` and never stop the run.

    Args:
        images_or_folder: a folder (its images; subfolders too with `recursive`), one image file, or a list of
            paths and PIL images.
        classes: class names, or a PromptSpec (see `prompt_spec`) that also carries templates and ensembling.
        templates: a template set's name, a file of templates, or a list of templates with {}.
        model: a loaded model, a name or checkpoint for `load_model`, or None for the default model.
        ensemble: "embedding" (average the templates' text embeddings) or "score" (average their scores).
        cache: keeps image and text embeddings on disk, so a second run encodes nothing.
        truncate: cut prompts longer than the model's context instead of refusing them.
        background: composite transparent images onto this colour (default: drop alpha, as openai-clip).
        batch_size, exact, num_workers, progress: how images are embedded (see `embed_images`).
        scheduler: a Dask scheduler's address or a `distributed.Client`: embed on its workers, shard by shard,
            each shard scored as it comes back, so this process never holds every embedding (`clipnb.embed.dask`).
        store: with a scheduler, where finished shards are kept for a rerun (see `embed_images`).
        unknown: predict "unknown" for images that fit none of the classes (`outlier`, see `clipnb.zeroshot.outliers`)
            instead of forcing a class.
        temperature: divide every logit by this calibrated temperature (`calibration.calibrate` fits it on
            labelled images), so that confidences are honest; the predictions do not change.

    Returns:
        The results table, one row per input in input order (columns: see `clipnb.zeroshot.schema`); its settings hold
        the classes, templates, ensembling, model, run statistics and, for a folder, `folder_note`.
    """
    spec = prompt_spec(classes, templates, ensemble)
    check_unknown(spec.classes, unknown)
    if temperature is not None:
        check_temperature(temperature)  # before the model is loaded
    items = gather_images(images_or_folder, recursive=recursive)
    model = model if isinstance(model, ClipModel) else load_model(model or DEFAULT_MODEL)
    head = build_head(model, spec, truncate=truncate, cache=cache)
    if temperature is not None:
        head = apply_temperature(head, temperature)
    if scheduler is None:
        embedded = embed_images(model, items, batch_size=batch_size, exact=exact, cache=cache,
                                num_workers=num_workers, background=background, progress=progress)
        table, stats = results_table(embedded, head, unknown=unknown), embedded.stats
    else:
        from ..embed.dask import map_shards

        parts, stats = map_shards(model, items, scheduler, lambda embedded: results_table(embedded, head),
                                  batch_size=batch_size, exact=exact, background=background, cache=cache,
                                  store=store, progress=progress)
        parts = parts or [results_table(embed_images(model, [], progress=False), head)]
        table = pd.concat(parts, ignore_index=True)
        table.attrs = dict(parts[0].attrs)  # each part's settings (the head's), which concat may not keep
        table = mark_outliers(table, unknown=unknown)  # each shard's were relative to that shard alone
    set_settings(table, model=model.name, stats=stats)
    if temperature is not None:
        set_settings(table, temperature=float(temperature))
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

    Args:
        image: one image file or PIL image; a folder is refused (`classify` is for folders).
        texts: two or more texts (a single text always gets probability 1).
        model: a loaded model, a name or checkpoint for `load_model`, or None for the default model.
        exact: decode the image at full size (see `embed_images`).
        truncate: cut texts longer than the model's context instead of refusing them.

    Returns:
        A Series named "probability", indexed by the texts, summing to 1.
    """
    check_image_file(image)
    model = model if isinstance(model, ClipModel) else load_model(model or DEFAULT_MODEL)
    features = embed_one(model, image, exact=exact)
    probs = text_probabilities(model, features[None], texts, truncate=truncate)[0]
    return pd.Series(to_numpy(probs), index=list(texts), name="probability")
