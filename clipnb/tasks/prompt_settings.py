"""One set of image embeddings under several prompt settings (template sets x ensembling methods): which
predictions change and, with labels, how accurate each setting is (the CLIP paper's prompt-engineering
table). `score_settings` is the one way to do it.

Pure: embeddings and a model's text encoder in, DataFrames out. No image is encoded again; each setting
only builds a zero-shot head (text prompts, remembered per model) and re-scores.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np
import pandas as pd

from ..zeroshot import schema
from ..zeroshot.results import results_table
from ..embed.pipeline import EmbeddedImages
from ..data.images import display_names
from .evaluation import evaluate
from ..embed.labelled import LabelledImages
from ..models.loading import ClipModel
from ..zeroshot.prompts import ENSEMBLE_METHODS
from ..zeroshot.prompts import template_sets as resolve_template_sets
from ..zeroshot.schema import set_settings
from ..zeroshot.scoring import build_head

if TYPE_CHECKING:
    from ..data.cache import EmbeddingCache


def setting_name(templates: str, ensemble: str) -> str:
    """The name of one setting: setting_name("basic", "score") is "basic / score"."""
    return f"{templates} / {ensemble}"


@dataclass
class SettingsComparison:
    """One set of image embeddings scored under every (template set, ensembling method).

        comparison = score_settings(model, embedded, ["cat", "dog"], ["basic", "imagenet7"])
        comparison.predictions[comparison.predictions["changed"]]   # the images whose prediction changes
        comparison.summary                                          # one row per setting
    """

    predictions: pd.DataFrame  # index "image" (short names); one column per setting, and "changed"
    confidence: pd.DataFrame  # same index, one column per setting: the probability of each prediction
    summary: pd.DataFrame  # one row per setting (see score_settings)
    classes: list[str]
    paths: list[str]  # the images' paths, in row order

    @property
    def settings(self) -> list[str]:
        """The setting names ("basic / embedding", ...), in the order they were scored."""
        return [c for c in self.predictions.columns if c != "changed"]

    def accuracy_table(self) -> pd.DataFrame:
        """The CLIP paper's prompt-engineering table (needs labels): per template set and ensembling
        method, acc@1, acc@k, mean per-class recall and mean confidence."""
        if "acc@1" not in self.summary:
            raise ValueError("the accuracy table needs the true classes: give labels (or labelled images) to "
                             "score_settings")
        top_k = [c for c in self.summary.columns if c.startswith("acc@") and c != "acc@1"]  # none for 1 class
        return self.summary[["templates", "n_templates", "ensemble", "acc@1", *top_k, "mean_per_class_recall",
                             "mean_confidence"]].copy()


def score_settings(model: ClipModel, images: EmbeddedImages | LabelledImages, classes: Sequence[str] | None = None,
                   template_sets: Sequence | Mapping[str, Sequence[str]] | None = None,
                   ensembles: Sequence[str] = ENSEMBLE_METHODS, *, labels: Sequence[str | None] | None = None,
                   truncate: bool = False, cache: EmbeddingCache | None = None) -> SettingsComparison:
    """Score the same embeddings under every template set x ensembling method; no image is encoded again.

    Args:
        model: the model whose text encoder embeds the prompts.
        images: embedded images, or labelled images (`embed_labelled`), which bring their classes and labels.
        classes: the class names (default: the labelled images' classes).
        template_sets: set names, template files, lists or a mapping name -> templates (see `template_sets`;
            default: every built-in set).
        ensembles: the ensembling methods to try.
        labels: the true class of each image, None where unknown (default: the labelled images' labels).
        truncate: cut prompts longer than the model's context instead of refusing them.
        cache: keeps the text embeddings on disk.

    Returns:
        A SettingsComparison: `predictions` and `confidence` (one row per image, one column per setting
        "set / ensemble", plus "changed"), and `summary`, one row per setting: setting, templates (the set's
        name), n_templates, ensemble, differs_from_first (predictions that differ from the first setting's),
        mean_confidence (over the readable images); with labels also labelled (readable labelled images),
        acc@1, acc@k and mean_per_class_recall (see `evaluate.evaluate`, on the labelled images).
    """
    if isinstance(images, LabelledImages):
        classes = images.classes if classes is None else classes
        labels = images.labels if labels is None else labels
        embedded = images.embedded
    else:
        embedded = images
    if classes is None:
        raise ValueError("give the classes to score (or labelled images, which bring theirs)")
    sets = resolve_template_sets(template_sets)
    known = None if labels is None else np.array([label is not None for label in labels])
    predictions, confidences, rows = {}, {}, []
    for set_name, templates in sets.items():
        for ensemble in ensembles:
            head = build_head(model, classes, templates, ensemble, truncate=truncate, cache=cache)
            table = results_table(embedded, head)
            name = setting_name(set_name, ensemble)
            predictions[name] = table["prediction"].to_numpy()
            confidences[name] = table["confidence"].to_numpy()
            row = {"setting": name, "templates": set_name, "n_templates": len(templates), "ensemble": ensemble}
            if known is not None:
                found = evaluate(table[known], [label for label in labels if label is not None], head.classes)
                m = found.metrics
                row.update({"labelled": m["evaluated"], "acc@1": m["acc@1"], f"acc@{m['top_k']}": m["acc@5"],
                            "mean_per_class_recall": m["mean_per_class_recall"]})
            rows.append(row)
    index = pd.Index(display_names(embedded.records["path"]), name="image", dtype=object)  # names as given
    comparison = pd.DataFrame(predictions, index=index)
    settings = list(predictions)
    comparison["changed"] = comparison[settings].nunique(axis=1, dropna=False) > 1
    set_settings(comparison, settings=settings, classes=list(head.classes))
    confidence = pd.DataFrame(confidences, index=index)
    summary = pd.DataFrame(rows)
    reference = comparison[settings[0]]
    summary.insert(4, "differs_from_first", [int((comparison[s] != reference).sum()) for s in settings])
    summary.insert(5, "mean_confidence", [float(confidence[s].mean()) for s in settings])
    return SettingsComparison(predictions=comparison, confidence=confidence, summary=summary,
                              classes=list(head.classes), paths=list(embedded.records["path"]))


def setting_summary(comparison: pd.DataFrame, truth: Sequence[str | None] | None = None) -> pd.DataFrame:
    """A view of a predictions frame alone (`SettingsComparison.predictions`, or one read back from CSV):
    per setting, how many predictions differ from the first setting's and, when true labels are given,
    the accuracy (images without a label are left out; an unreadable image counts as wrong). With the
    embeddings at hand, `score_settings(..., labels=...).summary` says more."""
    settings = schema.setting(comparison, "settings", [c for c in comparison.columns if c != "changed"])
    reference = comparison[settings[0]]
    rows = []
    for name in settings:
        row = {"setting": name, "differs_from_first": int((comparison[name] != reference).sum())}
        if truth is not None:
            labelled = [(p, t) for p, t in zip(comparison[name], truth) if t is not None]
            row["labelled"] = len(labelled)
            row["accuracy"] = sum(p == t for p, t in labelled) / len(labelled) if labelled else float("nan")
        rows.append(row)
    return pd.DataFrame(rows)


def highlight_changes(comparison: pd.DataFrame):
    """A pandas Styler of the comparison with the rows whose prediction changes highlighted."""
    settings = schema.setting(comparison, "settings", [c for c in comparison.columns if c != "changed"])

    def colour(row):
        style = "background-color: #ffe0e0; font-weight: bold" if row["changed"] else ""
        return [style] * len(row)

    return comparison[settings + ["changed"]].style.apply(colour, axis=1)
