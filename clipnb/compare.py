"""One set of image embeddings under several prompt settings: which predictions change.

Pure: embeddings and a model's text encoder in, DataFrames out. No image is encoded again; each setting
only builds a zero-shot head (text prompts, remembered per model) and re-scores.
"""
from __future__ import annotations

import os
from typing import Mapping, Sequence

import pandas as pd

from .classify import results_table
from .embedding import EmbeddedImages
from .models import ClipModel
from .prompts import ENSEMBLE_METHODS, TEMPLATE_SETS
from .scoring import build_head


def display_names(paths: Sequence) -> list[str]:
    """Short names for image paths: relative to their common folder ("red circle/000.png")."""
    paths = [str(p) for p in paths]
    real = [p for p in paths if not p.startswith("<")]
    if len(real) < 2:
        return [p if p.startswith("<") else os.path.basename(p) for p in paths]
    root = os.path.commonpath([os.path.dirname(p) for p in real])
    return [p if p.startswith("<") else os.path.relpath(p, root) for p in paths]


def folder_labels(paths: Sequence, classes: Sequence[str]) -> list[str | None]:
    """The class each image's folder names ("shapes/red circle/000.png" -> "red circle"), None where the
    folder is not a class: the true labels of a folder sorted into one subfolder per class."""
    known = {c.lower(): c for c in classes}
    return [known.get(os.path.basename(os.path.dirname(str(p))).lower()) for p in paths]


def setting_name(templates: str, ensemble: str) -> str:
    return f"{templates} / {ensemble}"


def compare_settings(model: ClipModel, embedded: EmbeddedImages, classes: Sequence[str],
                     template_sets: Sequence[str] | Mapping[str, Sequence[str]] = tuple(TEMPLATE_SETS),
                     ensembles: Sequence[str] = ENSEMBLE_METHODS, cache=None) -> pd.DataFrame:
    """Predictions of every image under every (template set, ensembling method), one column each.

    `template_sets`: names of clipnb's sets, or a mapping name -> templates. The result is indexed by
    short image names, has a boolean `changed` column (the prediction differs between settings), and
    `attrs` "settings", "classes" and "confidence" (a frame of the winners' probabilities, same shape).
    """
    sets = template_sets if isinstance(template_sets, Mapping) else {name: name for name in template_sets}
    predictions, confidences = {}, {}
    for set_name, templates in sets.items():
        for ensemble in ensembles:
            head = build_head(model, classes, templates, ensemble, cache=cache)
            table = results_table(embedded, head)
            name = setting_name(set_name, ensemble)
            predictions[name] = table["prediction"].to_numpy()
            confidences[name] = table["confidence"].to_numpy()
    index = pd.Index(display_names(embedded.records["path"]), name="image")
    comparison = pd.DataFrame(predictions, index=index)
    settings = list(predictions)
    comparison["changed"] = comparison[settings].nunique(axis=1, dropna=False) > 1
    comparison.attrs.update({"settings": settings, "classes": list(head.classes),
                             "confidence": pd.DataFrame(confidences, index=index),
                             "paths": list(embedded.records["path"])})
    return comparison


def setting_summary(comparison: pd.DataFrame, truth: Sequence[str | None] | None = None) -> pd.DataFrame:
    """Per setting: how many predictions differ from the first setting's, the mean confidence, and the
    accuracy when true labels are given (images without a label are left out of it)."""
    settings = comparison.attrs["settings"]
    reference = comparison[settings[0]]
    confidence = comparison.attrs.get("confidence")
    rows = []
    for name in settings:
        row = {"setting": name, "differs_from_first": int((comparison[name] != reference).sum())}
        if confidence is not None:
            row["mean_confidence"] = float(confidence[name].mean())
        if truth is not None:
            labelled = [(p, t) for p, t in zip(comparison[name], truth) if t is not None]
            row["labelled"] = len(labelled)
            row["accuracy"] = sum(p == t for p, t in labelled) / len(labelled) if labelled else float("nan")
        rows.append(row)
    return pd.DataFrame(rows)


def highlight_changes(comparison: pd.DataFrame):
    """A pandas Styler of the comparison with the rows whose prediction changes highlighted."""
    settings = comparison.attrs["settings"]

    def colour(row):
        style = "background-color: #ffe0e0; font-weight: bold" if row["changed"] else ""
        return [style] * len(row)

    return comparison[settings + ["changed"]].style.apply(colour, axis=1)
