"""Zero-shot accuracy against known labels: metrics, confusion matrix and confident mistakes.

`evaluate` is pure: a results table (from `classify.results_table`) and the true class of each row in,
an `Evaluation` out. `evaluate_labelled` scores images embedded once (`clipnb.embed.labelled.embed_labelled`); the
comparison of template sets x ensembling methods on the same embeddings is `compare.score_settings`.
Nothing here draws or writes: `report.write_evaluation` writes the files and figures of an evaluation.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

import numpy as np
import pandas as pd

from ..zeroshot import schema
from ..zeroshot.results import results_table
from ..embed.labelled import LabelledImages
from ..models.loading import ClipModel
from ..zeroshot.prompts import DEFAULT_TEMPLATES, Templates
from ..zeroshot.scoring import build_head

if TYPE_CHECKING:
    from ..data.cache import EmbeddingCache

TOP_K = 5


@dataclass
class Evaluation:
    """What a labelled run measured. `table` has one row per image: classify's columns plus `label`,
    `true_probability`, `rank` (1 = the true class scored highest) and `correct`."""

    table: pd.DataFrame
    classes: list[str]
    metrics: dict
    per_class: pd.DataFrame  # class, support, predicted, correct, precision, recall, f1
    confusion: pd.DataFrame  # counts; rows = true class, columns = predicted class
    settings: dict = field(default_factory=dict)

    @property
    def confusion_normalised(self) -> pd.DataFrame:
        """Each row divided by its class's image count (the recall of each cell); NaN for unlabelled classes."""
        support = self.confusion.sum(axis=1)
        return self.confusion.div(support.where(support > 0), axis=0)

    def mistakes(self, n: int | None = 12) -> pd.DataFrame:
        """The wrong predictions the model was surest of, most confident first."""
        wrong = self.table[self.table["evaluated"] & ~self.table["correct"]]
        wrong = wrong.sort_values("confidence", ascending=False, kind="stable")
        columns = ["path", "label", "prediction", "confidence", "true_probability", "rank"]
        return (wrong if n is None else wrong.head(n))[columns].reset_index(drop=True)

    def weakest_first(self, metric: str = "recall") -> pd.DataFrame:
        """`per_class` with the weakest `metric` first and, among equal values, by class name: one order on
        every run (classes without images, whose metric is unknown, last)."""
        ordered = self.per_class.sort_values([metric, "class"], kind="stable", na_position="last")
        return ordered.reset_index(drop=True)

    def headline(self, lang: str = "en") -> str:
        """One line in `lang`: images evaluated (and unreadable), classes, acc@1, acc@k and mean per-class recall."""
        from ..words import word

        m = self.metrics
        return word("evaluation.headline", lang, evaluated=m["evaluated"], unreadable=m["unreadable"],
                    classes=m["classes"], top1=100 * m["acc@1"], k=m["top_k"], topk=100 * m["acc@5"],
                    recall=100 * m["mean_per_class_recall"])


def evaluate(results: pd.DataFrame, labels: Sequence[str], classes: Sequence[str] | None = None) -> Evaluation:
    """Score a results table against the true class of each of its rows.

    Rows with an `error` (unreadable files) are kept in the table but left out of every number.
    Top-k ranks come from the cosine scores (probabilities can saturate to exact ties).
    """
    classes = list(classes if classes is not None else schema.classes(results))
    labels = [str(label) for label in labels]
    if len(labels) != len(results):
        raise ValueError(f"{len(labels)} labels for {len(results)} results; give one label per row")
    unknown = sorted(set(labels) - set(classes))
    if unknown:
        raise ValueError(f"label {unknown[0]!r} is not one of the classes; see labels.match_classes")
    position = {c: i for i, c in enumerate(classes)}
    truth = np.array([position[label] for label in labels], dtype=np.int64)
    table = results.copy()
    table.attrs = dict(results.attrs)
    evaluated = table["error"].fillna("").eq("").to_numpy()
    scores = schema.scores(table, classes).to_numpy(dtype=np.float64)
    true_score = scores[np.arange(len(table)), truth] if len(table) else np.zeros(0)
    rank = 1 + (scores > true_score[:, None]).sum(axis=1)
    probs = schema.probabilities(table, classes).to_numpy(dtype=np.float64)
    table.insert(1, "label", labels)
    table["true_probability"] = np.where(evaluated, probs[np.arange(len(table)), truth] if len(table) else 0, np.nan)
    table["rank"] = np.where(evaluated, rank, 0)
    table["correct"] = evaluated & (table["prediction"].to_numpy() == np.array(labels, dtype=object))
    table["evaluated"] = evaluated

    good = table[evaluated]
    k = min(TOP_K, len(classes))
    confusion = pd.crosstab(pd.Categorical(good["label"], categories=classes),
                            pd.Categorical(good["prediction"], categories=classes), dropna=False)
    confusion = confusion.reindex(index=classes, columns=classes, fill_value=0).astype(np.int64)
    confusion.index.name, confusion.columns.name = "true", "predicted"
    per_class = per_class_table(confusion)
    recalls = per_class.loc[per_class["support"] > 0, "recall"]
    metrics = {
        "images": int(len(table)), "evaluated": int(evaluated.sum()), "unreadable": int((~evaluated).sum()),
        "classes": len(classes), "labelled_classes": int((per_class["support"] > 0).sum()),
        "acc@1": _mean(good["correct"]), "acc@5": _mean(good["rank"] <= k), "top_k": k,
        "mean_per_class_recall": float(recalls.mean()) if len(recalls) else math.nan,
        "mean_confidence": _mean(good["confidence"]),
    }
    settings = schema.run_settings(results)
    return Evaluation(table=table, classes=classes, metrics=metrics, per_class=per_class, confusion=confusion,
                      settings=settings)


def _mean(values) -> float:
    values = pd.Series(values, dtype=float)
    return float(values.mean()) if len(values) else math.nan


def per_class_table(confusion: pd.DataFrame) -> pd.DataFrame:
    """Precision, recall and F1 of each class from a confusion matrix of counts (rows true, columns predicted)."""
    counts = confusion.to_numpy()
    correct = np.diag(counts).astype(float)
    support = counts.sum(axis=1).astype(float)
    predicted = counts.sum(axis=0).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(predicted > 0, correct / predicted, np.nan)
        recall = np.where(support > 0, correct / support, np.nan)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    f1 = np.where(np.isnan(precision) | np.isnan(recall), np.nan, f1)
    return pd.DataFrame({"class": list(confusion.index), "support": support.astype(np.int64),
                         "predicted": predicted.astype(np.int64), "correct": correct.astype(np.int64),
                         "precision": precision, "recall": recall, "f1": f1})


def evaluate_labelled(labelled: LabelledImages, model: ClipModel, templates: Templates = DEFAULT_TEMPLATES, ensemble: str = "embedding",
                      *, truncate: bool = False, cache: EmbeddingCache | None = None) -> Evaluation:
    """Zero-shot evaluation of images embedded once: build the head, score, compare with the labels.

    Args:
        labelled: images with their labels and classes (`embed_labelled`).
        model: the model whose text encoder embeds the prompts.
        templates: a template set's name, a file of templates, or a list of templates with {}.
        ensemble: "embedding" or "score" (see `build_head`).
        truncate: cut prompts longer than the model's context instead of refusing them.
        cache: keeps the text embeddings on disk.

    Returns:
        An Evaluation: per-image table, metrics (acc@1, acc@5 with top_k = min(5, classes), mean per-class
        recall, ...), per-class precision and recall, the confusion matrix, and the settings it was
        measured with.
    """
    head = build_head(model, labelled.classes, templates, ensemble, truncate=truncate, cache=cache)
    results = results_table(labelled.embedded, head)
    schema.set_settings(results, model=model.name)
    return evaluate(results, labelled.labels, labelled.classes)
