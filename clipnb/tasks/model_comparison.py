"""Several models on the same images: which is right more often (with labels), and how often they agree.

`compare_models` is the one way to do it. Pure: loaded models and each model's own embeddings of the same
images in, DataFrames out. Each model scores only the embeddings its own image encoder made (embeddings of
different models live in different spaces and never mix); no image is read or encoded here, and nothing
is drawn or written (`report.write_model_comparison` writes the files, `evaluation_plots` draws).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np
import pandas as pd

from ..zeroshot.results import results_table
from ..embed.pipeline import EmbeddedImages
from .evaluation import Evaluation, evaluate
from ..data.images import display_names
from ..embed.labelled import LabelledImages
from ..models.loading import ClipModel
from ..zeroshot.prompts import DEFAULT_TEMPLATES, Templates
from ..zeroshot.schema import set_settings
from ..zeroshot.scoring import build_head

if TYPE_CHECKING:
    from ..data.cache import EmbeddingCache

SOFTMAX = "softmax"
SIGMOID = "sigmoid (per class)"


def probability_kind(model: ClipModel) -> str:
    """How a model's probabilities are made: "softmax" (they compete and sum to 1 over the classes) or
    "sigmoid (per class)" (SigLIP: each class on its own), so mean confidences are read with care across kinds."""
    return SIGMOID if model.sigmoid else SOFTMAX


@dataclass
class ModelComparison:
    """Several models scored on the same images with the same prompts.

    Example:
        labelled = [clipnb.embed_labelled(m, "photos/", cache=cache) for m in models]
        found = compare_models(models, labelled)
        found.models        # one row per model: accuracy (with labels), mean confidence, images
        found.agreement     # share of images on which two models predict the same class
        found.predictions[~found.predictions["agree"]]   # the images the models disagree on
    """

    models: pd.DataFrame  # one row per model (see compare_models)
    agreement: pd.DataFrame  # models x models (index and columns: the model names); the diagonal is 1
    predictions: pd.DataFrame  # index "image" (short names): one column per model, "agree", and "label" with labels
    classes: list[str]
    labelled: bool  # whether accuracy could be measured (the images came with their true classes)
    evaluations: dict[str, Evaluation] | None = None  # each model's full evaluation, with labels

    @property
    def names(self) -> list[str]:
        """The models' names as the tables show them, in the order they were given."""
        return list(self.models["model"])

    def headline(self, lang: str = "en") -> str:
        """One line in `lang`: how many models on how many images, and the best one (with labels) or that without
        labels only their agreement is measured."""
        from ..words import word

        images = len(self.predictions)
        if not self.labelled:
            return word("models.unlabelled", lang, models=len(self.names), images=images)
        best = self.models.loc[self.models["acc@1"].idxmax()]
        return word("models.best", lang, models=len(self.names), images=images, best=best["model"],
                    accuracy=best["acc@1"])


def compare_models(models: Sequence[ClipModel], images: Sequence[LabelledImages | EmbeddedImages],
                   classes: Sequence[str] | None = None, templates: Templates = DEFAULT_TEMPLATES,
                   ensemble: str = "embedding", *, truncate: bool = False,
                   cache: EmbeddingCache | None = None) -> ModelComparison:
    """Score the same images with several models, each through its own embeddings, under the same prompts.

    Args:
        models: the loaded models, in the order the tables list them.
        images: one entry per model, embedded by that model: LabelledImages (`embed_labelled`: accuracy and
            agreement) or EmbeddedImages (`embed_images`: agreement only). All must hold the same images in
            the same order.
        classes: the class names (default: the labelled images' classes; required without labels).
        templates: a template set's name, a file of templates, or a list of templates with {}.
        ensemble: "embedding" or "score" (see `build_head`).
        truncate: cut prompts longer than a model's context instead of refusing them.
        cache: keeps the text embeddings on disk.

    Returns:
        A ModelComparison. `models` has one row per model: model (its name), family, probabilities
        ("softmax" or "sigmoid (per class)"), images (read and scored), with labels acc@1, acc@k and
        mean_per_class_recall (exactly `evaluate_labelled`'s numbers for that model), and mean_confidence
        (the mean top probability; a sigmoid model's is not on a softmax model's scale). `agreement[a][b]` is the share of the images both models scored on which
        their top-1 classes are the same (symmetric, 1 on the diagonal).
    """
    models, images = list(models), list(images)
    if len(models) != len(images):
        raise ValueError(f"{len(models)} models but {len(images)} sets of embeddings; give each model its own")
    if not models:
        raise ValueError("no models to compare; give at least one")
    labelled = all(isinstance(found, LabelledImages) for found in images)
    if classes is None:
        if not labelled:
            raise ValueError("give the classes to score (or labelled images, which bring theirs)")
        classes = images[0].classes
    classes = list(classes)
    embedded = [found.embedded if isinstance(found, LabelledImages) else found for found in images]
    _check_same_images(models, embedded)
    names = _unique_names(models)

    rows, predictions, scored, evaluations = [], {}, {}, {}
    for name, model, found, embeddings in zip(names, models, images, embedded):
        if embeddings.model_fingerprint and embeddings.model_fingerprint != model.fingerprint:
            raise ValueError(f"the embeddings given for {name} were made by another model; embed the images "
                             "with each model (embeddings of different models never mix)")
        head = build_head(model, classes, templates, ensemble, truncate=truncate, cache=cache)
        table = results_table(embeddings, head)
        set_settings(table, model=model.name)
        ok = embeddings.ok
        row = {"model": name, "family": model.family, "probabilities": probability_kind(model),
               "images": int(ok.sum())}
        if labelled:
            evaluation = evaluate(table, found.labels, head.classes)
            evaluations[name] = evaluation
            m = evaluation.metrics
            row.update({"acc@1": m["acc@1"], f"acc@{m['top_k']}": m["acc@5"],
                        "mean_per_class_recall": m["mean_per_class_recall"]})
        # in float64, as evaluate's metrics, so a labelled model's number is exactly its evaluation's
        row["mean_confidence"] = float(table.loc[ok, "confidence"].astype(np.float64).mean()) if ok.any() else np.nan
        rows.append(row)
        predictions[name] = table["prediction"].to_numpy()
        scored[name] = ok

    agreement = pd.DataFrame(np.eye(len(names)), index=pd.Index(names, name="model"), columns=names)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            both = scored[a] & scored[b]
            share = float((predictions[a][both] == predictions[b][both]).mean()) if both.any() else float("nan")
            agreement.loc[a, b] = agreement.loc[b, a] = share

    table = pd.DataFrame(predictions, index=pd.Index(display_names(embedded[0].records["path"]), name="image"))
    table["agree"] = table[names].nunique(axis=1, dropna=False) == 1
    if labelled:
        table.insert(0, "label", images[0].labels)
    return ModelComparison(models=pd.DataFrame(rows), agreement=agreement, predictions=table, classes=classes,
                           labelled=labelled, evaluations=evaluations if labelled else None)


def _check_same_images(models: Sequence[ClipModel], embedded: Sequence[EmbeddedImages]) -> None:
    """Agreement counts image by image: every model must have embedded the same images in the same order."""
    first = list(embedded[0].records["path"])
    for model, found in zip(models[1:], embedded[1:]):
        if list(found.records["path"]) != first:
            raise ValueError(f"{model.name} was given other images than {models[0].name} ({len(found)} vs "
                             f"{len(first)}, or in another order); embed the same images with each model")


def _unique_names(models: Sequence[ClipModel]) -> list[str]:
    """The models' names, with " (2)", " (3)" ... after a name that comes again (the tables are indexed by them)."""
    names, seen = [], {}
    for model in models:
        seen[model.name] = seen.get(model.name, 0) + 1
        names.append(model.name if seen[model.name] == 1 else f"{model.name} ({seen[model.name]})")
    return names
