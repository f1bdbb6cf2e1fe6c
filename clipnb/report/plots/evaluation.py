"""Charts of an evaluation against labels: the confusion matrix, the most confident mistakes, the accuracy
of each prompt setting, several models compared on the same images, and the few-shot probe's curve.

Axes-level functions take data and an optional `ax`, draw on it and return it; the `*_figure` functions
compose them into one `Figure` (outside pyplot) and return it; save it with `export.save_figure`. Colours,
CJK fonts, image panels and the axes/figure helpers come from clipnb.report.plots.base; as there, no text is
smaller than 9 pt at the size drawn and count axes have whole-number ticks.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ...zeroshot import schema
from .base import SMALL_TEXT, fit_cjk_text, new_axes, new_figure, text_width, thumbnails_figure, wrap_label
from ...words import plural
from ...words import check_lang, word

# ---- evaluation ---------------------------------------------------------------------------------

ANNOTATED = 20  # classes up to which a confusion matrix writes its counts in the cells
ANNOTATED_CELL = 0.4  # inches: a cell that holds a count at 9 pt
LABELLED_CELL = 0.19  # inches: a row or column that holds a 9 pt tick label
MAX_MATRIX = 16.0  # inches: the matrix stops growing here; beyond, every k-th class is labelled


def _shown_confusion(matrix: pd.DataFrame, counts: pd.DataFrame | None, drop_empty: bool) -> pd.DataFrame:
    if drop_empty and counts is not None:
        rows = counts.sum(axis=1) > 0
        columns = rows | (counts.sum(axis=0) > 0)
        return matrix.loc[rows[rows].index, columns[columns].index]
    return matrix


def _confusion_cell(n: int) -> float:
    """Inches per class of a confusion matrix of `n` classes drawn by confusion_figure."""
    return ANNOTATED_CELL if n <= ANNOTATED else min(LABELLED_CELL, MAX_MATRIX / n)


def confusion_heatmap(matrix: pd.DataFrame, counts: pd.DataFrame | None = None, ax: Axes | None = None, *,
                      drop_empty: bool = True, annotate: bool | None = None, cmap: str = "Blues",
                      lang: str = "en") -> Axes:
    """A confusion matrix (rows true, columns predicted) as a heatmap; cells show `counts` when given.

    `drop_empty` leaves out classes that no image carries and no image was predicted as. Cells are
    annotated up to 20 classes (unless `annotate` says otherwise). Tick labels are 9 pt; on axes too small
    for one at every class, every k-th class is labelled (confusion_figure sizes itself so that all are).
    `lang`: the axis labels' language ("en", "zh").
    """
    check_lang(lang)
    import seaborn as sns

    shown = _shown_confusion(matrix, counts, drop_empty)
    n = max(shown.shape) if shown.size else 0
    ax = new_axes(ax, (max(4, 0.35 * n + 2),) * 2)
    annotate = n <= ANNOTATED if annotate is None else annotate
    with_counts = annotate and counts is not None
    values = shown.to_numpy(dtype=float)
    vmax = 1.0 if values.size == 0 or np.nanmax(np.nan_to_num(values)) <= 1.0 else None
    # the room per class on these axes (before the layout takes its margins: an upper bound)
    per_class = min(ax.bbox.width, ax.bbox.height) / ax.figure.dpi / max(n, 1)
    step = max(1, math.ceil(LABELLED_CELL * 0.9 / per_class)) if n else 1
    sns.heatmap(shown.astype(float), annot=counts.loc[shown.index, shown.columns] if with_counts else annotate,
                fmt="d" if with_counts else ".2f", cmap=cmap, vmin=0, vmax=vmax, square=True, cbar=True,
                linewidths=0.5 if n <= ANNOTATED else 0, ax=ax, xticklabels=step, yticklabels=step,
                annot_kws={"fontsize": SMALL_TEXT}, cbar_kws={"shrink": 0.8 if n > ANNOTATED else 1.0,
                                                  "label": word("axis.row_share", lang) if vmax == 1.0 else ""})
    ax.tick_params(labelsize=SMALL_TEXT)
    ax.tick_params(axis="x", labelrotation=90)  # as narrow as a row is high: the figure grows no wider
    ax.tick_params(axis="y", labelrotation=0)
    colourbar = ax.collections[0].colorbar if ax.collections else None
    if colourbar is not None:
        colourbar.ax.tick_params(labelsize=SMALL_TEXT)
        colourbar.ax.yaxis.label.set_fontsize(SMALL_TEXT)
        if vmax is None:  # the colour is a count of images: whole numbers only
            colourbar.locator = MaxNLocator(integer=True)
            colourbar.update_ticks()
    ax.set_xlabel(word("axis.predicted", lang))
    ax.set_ylabel(word("axis.true", lang))
    return fit_cjk_text(ax)


def confusion_figure(normalised: pd.DataFrame, counts: pd.DataFrame | None = None, title: str = "",
                     lang: str = "en") -> Figure:
    """The row-normalised confusion matrix (colour) with counts in the cells, sized for its classes: every
    class label 9 pt (x labels vertical), the matrix at most 16 inches a side; `lang`: its words.

    The cells hold counts only up to ANNOTATED classes (beyond, a 9 pt number does not fit a cell); the default
    title says what the colour is and what the cells hold, or that they hold no counts and why."""
    check_lang(lang)
    shown = _shown_confusion(normalised, counts, True)
    n = max(shown.shape) if shown.size else 0
    matrix = _confusion_cell(n) * n
    labels = max([text_width(str(name)) for name in list(shown.index) + list(shown.columns)] + [0.0]) / 72
    margin = labels + 0.6  # tick labels, the axis label and pads
    colourbar = 1.0
    figure = new_figure(max(4.5, matrix + margin + colourbar), max(4.0, matrix + margin + 0.5))
    ax = figure.subplots()
    confusion_heatmap(normalised, counts, ax=ax, lang=lang)
    if not title:
        written = n <= ANNOTATED  # what confusion_heatmap writes in the cells (its default `annotate`)
        title = (word("title.confusion_no_counts", lang, class_count=n) if not written
                 else word("title.confusion", lang) if counts is not None else word("title.confusion_shares", lang))
    width = int(figure.get_figwidth() * 72 / (10 * 0.55))  # characters of 10 pt text across the figure
    ax.set_title("\n".join(wrap_label(line, width, 3) for line in title.split("\n")), fontsize=10)
    return fit_cjk_text(figure)


def setting_accuracy_bars(comparison: pd.DataFrame, metric: str = "acc@1", ax: Axes | None = None) -> Axes:
    """The accuracy of each setting: template sets x ensembling methods, one bar each (the CLIP paper's
    prompt-engineering comparison; `comparison` is `SettingsComparison.accuracy_table()`)."""
    import seaborn as sns

    ax = new_axes(ax, (max(5, 1.3 * comparison["templates"].nunique() + 2) + 1.5, 4))
    sns.barplot(data=comparison, x="templates", y=metric, hue="ensemble", ax=ax)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel(metric)
    ax.set_xticks(ax.get_xticks(), [wrap_label(t.get_text(), 18, 2) for t in ax.get_xticklabels()])
    for container in ax.containers:
        ax.bar_label(container, fmt="%.2f", fontsize=SMALL_TEXT)
    if ax.get_legend() is not None:  # beside the bars, never on them
        sns.move_legend(ax, "upper left", bbox_to_anchor=(1.01, 1), frameon=False, fontsize=SMALL_TEXT,
                        title_fontsize=SMALL_TEXT + 1)
    sns.despine(ax=ax)
    return fit_cjk_text(ax)


def setting_accuracy_figure(comparison: pd.DataFrame, metric: str = "acc@1") -> Figure:
    """The accuracy bars of every setting, with their legend to the right of the plotting area."""
    figure = new_figure(max(5.5, 1.3 * comparison["templates"].nunique() + 2.5) + 1.5, 4)
    setting_accuracy_bars(comparison, metric, ax=figure.subplots())
    return figure


def mistakes_figure(mistakes: pd.DataFrame, columns: int = 6, lang: str = "en") -> Figure:
    """The most confident mistakes (from Evaluation.mistakes): each image with what it was taken for;
    `lang`: the words of the captions and title ("en", "zh")."""
    captions = [word("caption.mistake", lang, prediction=row.prediction, confidence=row.confidence, label=row.label)
                for row in mistakes.itertuples()]
    return thumbnails_figure(mistakes["path"], captions, columns=columns, title=word("title.mistakes", lang),
                             lang=lang)



# ---- several models ------------------------------------------------------------------------------

MODEL_LABEL = 28  # characters per line of a model's name on an axis (open_clip specs are long)


def model_accuracy_bars(models: pd.DataFrame, metric: str = "acc@1", ax: Axes | None = None) -> Axes:
    """The accuracy of each model on the same images, one horizontal bar each, the first model on top
    (`models` is `ModelComparison.models`, which has accuracy columns when the images came with labels)."""
    import seaborn as sns

    ax = new_axes(ax, (6, max(2.2, 0.45 * len(models) + 1.2)))
    positions = np.arange(len(models))
    bars = ax.barh(positions, models[metric].astype(float), color="tab:blue", height=0.7)
    ax.set_yticks(positions, [wrap_label(name, MODEL_LABEL, 2) for name in models["model"]], fontsize=SMALL_TEXT)
    ax.set_ylim(len(models) - 0.5, -0.5)
    ax.set_xlim(0, 1.15)  # a share: the same scale for every model, with room for the value after the bar
    ax.bar_label(bars, fmt="%.2f", padding=3, fontsize=SMALL_TEXT)
    ax.set_xlabel(metric)
    sns.despine(ax=ax)
    return fit_cjk_text(ax)


def agreement_heatmap(agreement: pd.DataFrame, ax: Axes | None = None, *, cmap: str = "Greens") -> Axes:
    """The share of images on which two models predict the same class (`ModelComparison.agreement`), in
    each cell; 1 on the diagonal."""
    import seaborn as sns

    n = len(agreement)
    ax = new_axes(ax, (max(4, 0.7 * n + 3),) * 2)
    names = [wrap_label(name, MODEL_LABEL, 2) for name in agreement.index]
    sns.heatmap(agreement.astype(float), annot=True, fmt=".2f", cmap=cmap, vmin=0, vmax=1, square=True,
                linewidths=0.5, ax=ax, xticklabels=names, yticklabels=names, annot_kws={"fontsize": SMALL_TEXT})
    ax.tick_params(labelsize=SMALL_TEXT)
    ax.tick_params(axis="x", labelrotation=90)
    ax.tick_params(axis="y", labelrotation=0)
    if ax.collections and ax.collections[0].colorbar is not None:
        ax.collections[0].colorbar.ax.tick_params(labelsize=SMALL_TEXT)
    ax.set_xlabel("")
    ax.set_ylabel("")
    return fit_cjk_text(ax)


def model_comparison_figure(comparison, metric: str = "acc@1") -> Figure:
    """A `ModelComparison` as one figure: each model's accuracy (with labels) beside the agreement of every
    pair of models."""
    n = len(comparison.names)
    labels = max([text_width(wrap_label(name, MODEL_LABEL, 2)) for name in comparison.names] + [0.0]) / 72
    matrix = 0.7 * n + labels + 1.8  # cells, tick labels, colour bar
    if not comparison.labelled:
        figure = new_figure(max(4.5, matrix), max(4.0, 0.7 * n + labels + 1.0))
        ax = figure.subplots()
        agreement_heatmap(comparison.agreement, ax=ax)
        ax.set_title("agreement (no labels): share of images with the same top-1 class", fontsize=10)
        return fit_cjk_text(figure)
    bars = labels + 4.0
    figure = new_figure(bars + max(4.0, matrix), max(3.5, 0.7 * n + labels + 1.0))
    left, right = figure.subplots(1, 2, width_ratios=[bars, max(4.0, matrix)])
    model_accuracy_bars(comparison.models, metric, ax=left)
    left.set_title(f"{metric} of each model", fontsize=10)
    agreement_heatmap(comparison.agreement, ax=right)
    right.set_title("agreement: share of images with the same top-1 class", fontsize=10)
    return fit_cjk_text(figure)

# ---- few-shot probe -----------------------------------------------------------------------------

def shots_curve(curve: pd.DataFrame, ax: Axes | None = None, chance: float | None = None, lang: str = "en") -> Axes:
    """Linear-probe accuracy against labelled examples per class (mean, and the range over trials where
    trials differ), with the zero-shot accuracy on the same test images as a dashed line; `lang`: its words
    ("en", "zh"). The legend lists only what is drawn: one trial (or trials that agree) draws no range."""
    check_lang(lang)
    ax = new_axes(ax, (6, 4))
    grouped = curve.groupby("shots")["probe_accuracy"]
    mean, low, high = grouped.mean(), grouped.min(), grouped.max()
    trials = int(grouped.size().max()) if len(curve) else 0
    ax.plot(mean.index, mean.values, marker="o", label=word("legend.probe" if trials > 1 else "legend.probe_one", lang))
    if (high > low).any():
        ax.fill_between(mean.index, low.values, high.values, alpha=0.2, label=word("legend.trials", lang))
    if "zero_shot_accuracy" in curve:
        zero = float(curve["zero_shot_accuracy"].mean())
        ax.axhline(zero, color="tab:red", linestyle="--", label=word("legend.zero_shot", lang, value=zero))
    if chance is not None:
        ax.axhline(chance, color="grey", linestyle=":", label=word("legend.chance", lang, value=chance))
    ax.set_xscale("log", base=2)
    ax.set_xticks(list(mean.index), [str(s) for s in mean.index])
    ax.minorticks_off()
    ax.set_xlabel(word("axis.shots", lang))
    ax.set_ylabel(word("axis.test_accuracy", lang))
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=SMALL_TEXT)
    return fit_cjk_text(ax)


def shots_figure(curve: pd.DataFrame, title: str = "", lang: str = "en") -> Figure:
    """The few-shot curve with zero-shot and chance lines, as a figure of its own; `lang`: its words."""
    figure = new_figure(6.5, 4.2)
    ax = figure.subplots()
    shots_curve(curve, ax=ax, chance=schema.setting(curve, "chance"), lang=lang)
    classes = schema.setting(curve, "class_count")
    ax.set_title(title or word("title.shots", lang, classes=plural(classes, "class") if classes else "? classes",
                               class_count=classes or "?"), fontsize=10)
    return fit_cjk_text(figure)
