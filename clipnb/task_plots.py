"""Charts for evaluation, search, video and few-shot probes.

Axes-level functions take data and an optional `ax`, draw on it and return it; the `*_figure` functions
compose them into one `Figure` (outside pyplot, like clipnb.plotting's) and return it; save it with
`export.save_figure`. Colours, CJK fonts and image panels come from clipnb.plotting; as there, no text is
smaller than 9 pt at the size drawn and count axes have whole-number ticks.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .plotting import SMALL_TEXT, class_palette, fit_cjk_text, image_axes, text_width, wrap_label
from . import schema
from .summary import plural


def _axes(ax, figsize=(6, 4)) -> Axes:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=figsize, layout="constrained")[1]


def _figure(width: float, height: float) -> Figure:
    # outside pyplot, as clipnb.plotting's figures: nothing piles up, and a cell ending with it shows it once
    return Figure(figsize=(width, height), layout="constrained")


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


def confusion_heatmap(matrix: pd.DataFrame, counts: pd.DataFrame | None = None, ax=None, *,
                      drop_empty: bool = True, annotate: bool | None = None, cmap: str = "Blues") -> Axes:
    """A confusion matrix (rows true, columns predicted) as a heatmap; cells show `counts` when given.

    `drop_empty` leaves out classes that no image carries and no image was predicted as. Cells are
    annotated up to 20 classes (unless `annotate` says otherwise). Tick labels are 9 pt; on axes too small
    for one at every class, every k-th class is labelled (confusion_figure sizes itself so that all are).
    """
    import seaborn as sns

    shown = _shown_confusion(matrix, counts, drop_empty)
    n = max(shown.shape) if shown.size else 0
    ax = _axes(ax, figsize=(max(4, 0.35 * n + 2),) * 2)
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
                annot_kws={"fontsize": SMALL_TEXT}, cbar_kws={"shrink": 0.8 if n > ANNOTATED else 1.0})
    ax.tick_params(labelsize=SMALL_TEXT)
    ax.tick_params(axis="x", labelrotation=90)  # as narrow as a row is high: the figure grows no wider
    ax.tick_params(axis="y", labelrotation=0)
    colourbar = ax.collections[0].colorbar if ax.collections else None
    if colourbar is not None:
        colourbar.ax.tick_params(labelsize=SMALL_TEXT)
        if vmax is None:  # the colour is a count of images: whole numbers only
            colourbar.locator = MaxNLocator(integer=True)
            colourbar.update_ticks()
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    return fit_cjk_text(ax)


def confusion_figure(normalised: pd.DataFrame, counts: pd.DataFrame | None = None, title: str = "") -> Figure:
    """The row-normalised confusion matrix (colour) with counts in the cells, sized for its classes: every
    class label 9 pt (x labels vertical), the matrix at most 16 inches a side."""
    shown = _shown_confusion(normalised, counts, True)
    n = max(shown.shape) if shown.size else 0
    matrix = _confusion_cell(n) * n
    labels = max([text_width(str(name)) for name in list(shown.index) + list(shown.columns)] + [0.0]) / 72
    margin = labels + 0.6  # tick labels, the axis label and pads
    colourbar = 1.0
    figure = _figure(max(4.5, matrix + margin + colourbar), max(4.0, matrix + margin + 0.5))
    ax = figure.subplots()
    confusion_heatmap(normalised, counts, ax=ax)
    ax.set_title(title or "confusion matrix (colour: share of the true class; cells: images)", fontsize=10)
    return fit_cjk_text(figure)


def comparison_bars(comparison: pd.DataFrame, metric: str = "acc@1", ax=None) -> Axes:
    """Template sets x ensembling methods, one bar each (the CLIP paper's prompt-engineering comparison)."""
    import seaborn as sns

    ax = _axes(ax, figsize=(max(5, 1.3 * comparison["templates"].nunique() + 2) + 1.5, 4))
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


def comparison_figure(comparison: pd.DataFrame, metric: str = "acc@1") -> Figure:
    """The comparison bars with their legend to the right of the plotting area."""
    figure = _figure(max(5.5, 1.3 * comparison["templates"].nunique() + 2.5) + 1.5, 4)
    comparison_bars(comparison, metric, ax=figure.subplots())
    return figure


# ---- thumbnails (mistakes, search hits) ---------------------------------------------------------

def thumbnails_figure(images: Sequence, captions: Sequence[str] | None = None, columns: int = 6,
                      title: str = "") -> Figure:
    """A grid of images (paths or PIL images) with a caption over each: mistakes, search hits, frames."""
    images = list(images)
    captions = list(captions) if captions is not None else [""] * len(images)
    columns = max(1, min(columns, len(images) or 1))
    rows = max(1, math.ceil(len(images) / columns))
    figure = _figure(2.3 * columns, 2.7 * rows + (0.4 if title else 0))
    axes = np.atleast_1d(figure.subplots(rows, columns, squeeze=False)).ravel()
    for ax in axes:
        ax.set_axis_off()
    for ax, image, caption in zip(axes, images, captions):
        image_axes(image, ax, title=caption)
    if title:
        figure.suptitle(title)
    return fit_cjk_text(figure)


def mistakes_figure(mistakes: pd.DataFrame, columns: int = 6) -> Figure:
    """The most confident mistakes (from Evaluation.mistakes): each image with what it was taken for."""
    captions = [f"{row.prediction} ({row.confidence:.0%}), truly {row.label}" for row in mistakes.itertuples()]
    return thumbnails_figure(mistakes["path"], captions, columns=columns, title="most confident mistakes")


def search_figure(hits: pd.DataFrame, columns: int = 6, title: str | None = None) -> Figure:
    """Search hits (rank, path, score) as thumbnails captioned with rank and score."""
    from .images import display_names

    names = display_names(hits["path"])
    captions = [f"{r}. {s:.3f} {n}" for r, s, n in zip(hits["rank"], hits["score"], names)]
    query = schema.setting(hits, "query")
    return thumbnails_figure(hits["path"], captions, columns=columns,
                             title=title if title is not None else (f"search: {query}" if query else ""))


def caption_bars(ranked: pd.DataFrame, ax=None, value: str = "probability") -> Axes:
    """Captions ranked for one image (from search.rank_captions), best at the top."""
    from .plotting import probability_bars

    series = pd.Series(ranked[value].to_numpy(), index=ranked["caption"])
    return probability_bars(series, ax)


# ---- video --------------------------------------------------------------------------------------

def probability_timeline(timeline: pd.DataFrame, classes: Sequence[str] | None = None, top: int = 5,
                         ax=None, palette=None) -> Axes:
    """Per-frame class probabilities over time; by default the `top` classes by their highest probability.

    Without a `palette`, the lines take tab10's colours in the order they are drawn, so lines side by side
    differ clearly (a palette of all the classes gives close hues to a few of many).
    """
    ax = _axes(ax, figsize=(8, 3.5))
    probabilities = schema.probabilities(timeline)
    if classes is None:
        chosen = list(probabilities.max().sort_values(ascending=False, kind="stable").index[:top])
    else:
        chosen = list(classes)
    palette = palette or class_palette(chosen)
    for name in chosen:
        ax.plot(timeline["time"], probabilities[name], marker=".", label=name, color=palette.get(name))
    ax.set_xlabel("time (s)")
    ax.set_ylabel("probability")
    ax.set_ylim(0, 1.02)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=SMALL_TEXT, frameon=False)
    return fit_cjk_text(ax)


def video_figure(frames, timeline: pd.DataFrame, thumbnails: int = 8, top: int = 5, title: str = "") -> Figure:
    """A strip of sampled frames (with their time and prediction) above the probability timeline."""
    count = min(thumbnails, len(timeline))
    shown = np.unique(np.linspace(0, len(timeline) - 1, count).round().astype(int)) if count else []
    columns = max(1, len(shown))
    figure = _figure(max(8, 1.5 * columns), 5.5)
    grid = figure.add_gridspec(2, columns, height_ratios=[1, 2.2])
    pictures = getattr(frames, "thumbnails", None) or []
    for slot, index in enumerate(shown):
        ax = figure.add_subplot(grid[0, slot])
        ax.set_axis_off()
        if index < len(pictures):
            image_axes(pictures[index], ax,
                       title=f"{timeline['time'].iloc[index]:.1f}s {timeline['prediction'].iloc[index]}")
    probability_timeline(timeline, top=top, ax=figure.add_subplot(grid[1, :]))
    if title:
        figure.suptitle(title)
    return fit_cjk_text(figure)


# ---- few-shot probe -----------------------------------------------------------------------------

def shots_curve(curve: pd.DataFrame, ax=None, chance: float | None = None) -> Axes:
    """Linear-probe accuracy against labelled examples per class (mean, and the range over trials), with
    the zero-shot accuracy on the same test images as a dashed line."""
    ax = _axes(ax, figsize=(6, 4))
    grouped = curve.groupby("shots")["probe_accuracy"]
    mean, low, high = grouped.mean(), grouped.min(), grouped.max()
    ax.plot(mean.index, mean.values, marker="o", label="linear probe (mean of trials)")
    ax.fill_between(mean.index, low.values, high.values, alpha=0.2, label="range over trials")
    if "zero_shot_accuracy" in curve:
        zero = float(curve["zero_shot_accuracy"].mean())
        ax.axhline(zero, color="tab:red", linestyle="--", label=f"zero-shot ({zero:.2f})")
    if chance is not None:
        ax.axhline(chance, color="grey", linestyle=":", label=f"chance ({chance:.2f})")
    ax.set_xscale("log", base=2)
    ax.set_xticks(list(mean.index), [str(s) for s in mean.index])
    ax.minorticks_off()
    ax.set_xlabel("labelled examples per class")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=SMALL_TEXT)
    return ax


def shots_figure(curve: pd.DataFrame, title: str = "") -> Figure:
    """The few-shot curve with zero-shot and chance lines, as a figure of its own."""
    figure = _figure(6.5, 4.2)
    ax = figure.subplots()
    shots_curve(curve, ax=ax, chance=schema.setting(curve, "chance"))
    classes = schema.setting(curve, "class_count")
    ax.set_title(title or f"linear probe vs zero-shot ({plural(classes, 'class') if classes else '? classes'})",
                 fontsize=10)
    return figure
