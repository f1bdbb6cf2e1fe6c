"""The reliability diagram of a calibration (clipnb.zeroshot.calibration), drawn as in Guo et al. (2017): per
confidence bin, a bar of the accuracy, a hatched bar of its gap to the bin's mean confidence, and the diagonal
a calibrated model would follow; under it, the share of images in each bin (empty bins say little).

Axes-level functions take data and an optional `ax`, draw on it and return it; `reliability_figure` composes
them, before and after temperature scaling side by side, into one `Figure` (save it with
`plotting.export_figure`). Words come from clipnb.words (`lang`: "en" or "zh").
"""
from __future__ import annotations

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

from ...zeroshot.calibration import Calibration
from .base import SMALL_TEXT, fit_cjk_text, new_axes, new_figure
from ...words import check_lang, word

ACCURACY_COLOUR = "#1f77b4"
GAP_COLOUR = "#d62728"
SHARE_COLOUR = "#7f7f7f"


def reliability_diagram(table: pd.DataFrame, ax: Axes | None = None, *, title: str = "", legend: bool = True,
                        lang: str = "en") -> Axes:
    """One reliability table (`calibration.reliability_table`) as Guo et al.'s diagram: the accuracy of each
    confidence bin as a bar, the gap to the bin's mean confidence hatched (above the bar: over-confident,
    below its top: under-confident), and the diagonal of perfect calibration; empty bins draw nothing."""
    check_lang(lang)
    ax = new_axes(ax, (4.5, 4.5))
    filled = table[table["count"] > 0]
    width = (table["upper"] - table["lower"]).to_numpy()
    centre = ((table["lower"] + table["upper"]) / 2).to_numpy()
    shown = (table["count"] > 0).to_numpy()
    ax.bar(centre[shown], filled["accuracy"], width=width[shown], color=ACCURACY_COLOUR, edgecolor="white",
           linewidth=0.8, label=word("legend.bin_accuracy", lang), zorder=2)
    # hatched outlines only: a gap inside an accuracy bar (under-confident) stays visible on it
    ax.bar(centre[shown], filled["gap"], bottom=filled["accuracy"], width=width[shown], facecolor="none",
           edgecolor=GAP_COLOUR, hatch="//", linewidth=0.8, label=word("legend.gap", lang), zorder=3)
    ax.plot([0, 1], [0, 1], linestyle="--", color="0.35", linewidth=1.2, label=word("legend.perfect", lang), zorder=4)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel(word("axis.confidence", lang))
    ax.set_ylabel(word("axis.accuracy", lang))
    ax.tick_params(labelsize=SMALL_TEXT)
    ax.grid(True, color="0.9", linewidth=0.6, zorder=0)
    ax.set_axisbelow(True)
    if title:
        ax.set_title(title, fontsize=10)
    if legend:
        ax.legend(loc="upper left", fontsize=SMALL_TEXT, frameon=False)
    return fit_cjk_text(ax)


def bin_shares(table: pd.DataFrame, ax: Axes | None = None, *, lang: str = "en") -> Axes:
    """The share of images in each confidence bin of a reliability table (Guo et al.'s confidence histogram)."""
    check_lang(lang)
    ax = new_axes(ax, (4.5, 1.6))
    total = max(int(table["count"].sum()), 1)
    centre = (table["lower"] + table["upper"]) / 2
    ax.bar(centre, table["count"] / total, width=table["upper"] - table["lower"], color=SHARE_COLOUR,
           edgecolor="white", linewidth=0.8)
    ax.set_xlim(0, 1)
    ax.yaxis.set_major_locator(MaxNLocator(3))
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_xlabel(word("axis.confidence", lang))
    ax.set_ylabel(word("axis.share_images", lang))
    ax.tick_params(labelsize=SMALL_TEXT)
    ax.grid(True, axis="y", color="0.9", linewidth=0.6)
    ax.set_axisbelow(True)
    return fit_cjk_text(ax)


def reliability_figure(calibration: Calibration, lang: str = "en") -> Figure:
    """A Calibration as one report figure: the held-out images' reliability diagrams before and after
    temperature scaling side by side, ECE in each title, the share of images per bin under each, and the
    temperature and image counts in the figure's title."""
    check_lang(lang)
    figure = new_figure(9.5, 6.2)
    grid = figure.subplots(2, 2, height_ratios=[4, 1.1], sharex=True)
    for column, (table, ece, key) in enumerate([(calibration.before, calibration.ece_before, "title.reliability_before"),
                                                (calibration.after, calibration.ece_after, "title.reliability_after")]):
        top, bottom = grid[0, column], grid[1, column]
        reliability_diagram(table, ax=top, title=word(key, lang, ece=ece), legend=column == 0, lang=lang)
        top.set_xlabel("")
        top.tick_params(labelbottom=False)
        bin_shares(table, ax=bottom, lang=lang)
    figure.suptitle(word("title.calibration", lang, held_out=calibration.held_out, fitted=calibration.fitted,
                         temperature=calibration.temperature), fontsize=11)
    return fit_cjk_text(figure)
