"""The embedding map as a report figure: one dot per image, coloured by prediction, true class or cluster.

Like clipnb.report.plots.base's figures, drawn outside pyplot and returned; `plotting.export_figure` writes it as PNG,
SVG and PDF. A class has the colour `colours.class_palette` gives it in every other chart; images with no
value (no true class, no cluster, unknown: fits no class, unreadable) are grey crosses with a dark edge. With more than
MAP_COLOURED classes, only the most frequent ones keep their colours and the rest are one grey "other" (grey dots
without an edge, the legend says how many classes): a cross is an image of no class, a grey dot one of a class
the map does not colour, and the legend shows both marks. Dots shrink and fade as images grow many,
and are rasterised inside SVG and PDF beyond a few thousand, so a map of 10,000 images stays readable and small.
"""
from __future__ import annotations

import math
from typing import Mapping

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patheffects import withStroke

from ...tasks.collection_map import NO_CLUSTER, check_colouring, map_note
from ...words import UNKNOWN, check_lang, map_word
from ...zeroshot import schema
from ..colours import NO_CLASS_COLOUR, OUTLINE, class_palette, edge_colour
from .base import SMALL_TEXT, fit_cjk_text, new_figure, use_cjk_font

MAX_LEGEND = 60  # legend entries at most (the most frequent); the rest are counted under it
MAP_COLOURED = 20  # classes a map tells apart by colour (the most frequent): beyond that colours would repeat
LEGEND_ROWS = 24  # entries per legend column
RASTER_FROM = 3000  # dots from which they are drawn as an image inside SVG and PDF
# an image of no class (unknown, unreadable, no true class, no cluster): a grey cross with a dark edge, so it
# is never mistaken for a grey dot of the classes a map of many classes leaves uncoloured
NO_VALUE_MARKER = "X"  # matplotlib's filled cross
NO_VALUE_SYMBOL = "x"  # plotly's (the map panel)

def map_colours(table: pd.DataFrame, colour: str, palette: Mapping | None = None, lang: str = "en"
                ) -> tuple[list[str], dict[str, tuple]]:
    """Each image's label for `colour` ("prediction", "truth", "cluster") and the colour of each label, in
    legend order (the table's class order, or cluster numbers), the grey label of no value last. Coloured by class, with
    more than MAP_COLOURED classes on the map, the most frequent MAP_COLOURED keep their colours and the other
    classes' images are labelled "other N classes" in grey; "unknown" stays grey."""
    check_colouring(table, colour)
    missing = map_word(f"none.{colour}", lang)
    if colour == "cluster":
        numbers = sorted(set(int(c) for c in table["cluster"]) - {NO_CLUSTER})
        names = [map_word("cluster_name", lang, number=n) for n in numbers]
        by_number = dict(zip(numbers, names))
        labels = [by_number.get(int(c), missing) for c in table["cluster"]]
        colours = dict(palette) if palette is not None else class_palette(names)
    else:
        values = table[colour].tolist()
        present = {v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))}
        classes = schema.classes(table) if "classes" in table.attrs else []
        extra = sorted(str(v) for v in present if v not in classes)
        everything = classes + extra
        names = [c for c in everything if c in present or str(c) in extra]
        labels = [str(v) if v in present else missing for v in values]
        colours = dict(class_palette(everything)) if palette is None else dict(palette)
        if UNKNOWN in extra:  # images that fit no class are grey, as in the dashboards
            colours[UNKNOWN] = to_rgb(NO_CLASS_COLOUR)
        shown = [n for n in names if n != UNKNOWN]
        if len(shown) > MAP_COLOURED:
            counts = pd.Series(labels).value_counts()
            top = set(sorted(shown, key=lambda n: -counts[str(n)])[:MAP_COLOURED])  # stable: ties in class order
            other = map_word("other", lang, count=len(shown) - MAP_COLOURED)
            labels = [label if label in top or label in (UNKNOWN, missing) else other for label in labels]
            names = [n for n in names if n in top or n == UNKNOWN] + [other]
            colours[other] = to_rgb(NO_CLASS_COLOUR)
    order = {name: tuple(to_rgb(colours.get(name, NO_CLASS_COLOUR))) for name in names}
    if missing in labels:
        order[missing] = to_rgb(NO_CLASS_COLOUR)
    return labels, order


def no_value_labels(colour: str, lang: str = "en") -> set[str]:
    """The labels `map_colours` gives images of no class for `colour`: "unknown" (fits no class) and the
    colouring's missing value ("unreadable", "no true class", "no cluster"); drawn as crosses, not dots."""
    return {UNKNOWN, map_word(f"none.{colour}", lang)}


def dot_style(count: int) -> dict:
    """Dot size (points²) and opacity for a map of `count` images: large and solid for a few, small and faint
    for thousands, so that dense groups still show their colour."""
    return {"s": float(np.clip(600 / math.sqrt(max(count, 1)), 4, 40)), "alpha": 0.9 if count <= 1000 else 0.55}


def map_axes(table: pd.DataFrame, colour: str = "prediction", ax: Axes | None = None, *,
             palette: Mapping | None = None, lang: str = "en") -> Axes:
    """The map's dots on `ax` (a new figure's when None), coloured by `colour`, with a legend outside on the
    right (the MAX_LEGEND most frequent labels) and, coloured by cluster, each cluster's number at its centre."""
    labels, colours = map_colours(table, colour, palette, lang)
    if ax is None:  # room on the right for the legend's columns
        columns = math.ceil(min(len(colours), MAX_LEGEND + 1) / LEGEND_ROWS)
        ax = new_figure(5 + 2.3 * columns, 5.5).subplots()
    use_cjk_font(list(colours))
    labels = np.asarray(labels, dtype=object)
    x, y = table["x"].to_numpy(float), table["y"].to_numpy(float)
    style = dot_style(len(table)) | {"linewidths": 0, "rasterized": len(table) >= RASTER_FROM}
    grey, crosses = to_rgb(NO_CLASS_COLOUR), no_value_labels(colour, lang)
    # the uncoloured classes' grey dots underneath, then the crosses of no class, then the coloured classes
    drawn = sorted(colours, key=lambda name: (name not in crosses and colours[name] != grey, name not in crosses))
    for name in drawn:
        chosen = labels == name
        if not chosen.any():
            continue
        if name in crosses:
            ax.scatter(x[chosen], y[chosen], color=colours[name], marker=NO_VALUE_MARKER,
                       **style | {"s": style["s"] * 1.6, "edgecolors": OUTLINE, "linewidths": 0.6})
        else:
            edge = edge_colour(colours[name])  # a white dot needs a rim on the white page
            ax.scatter(x[chosen], y[chosen], color=colours[name],
                       **style | ({"edgecolors": edge, "linewidths": 0.5} if edge else {}))
    if colour == "cluster":
        missing = map_word(f"none.{colour}", lang)
        for name in colours:
            chosen = labels == name
            if name != missing and chosen.any():
                ax.annotate(name.split()[-1], (np.median(x[chosen]), np.median(y[chosen])), xytext=(0, 5),
                            textcoords="offset points", ha="center", va="bottom", fontsize=SMALL_TEXT,
                            fontweight="bold", color="#222222", path_effects=[withStroke(linewidth=2.5,
                                                                                         foreground="white")])
    counts = pd.Series(labels).value_counts()
    shown = [n for n in colours if n in counts.index]
    if len(shown) > MAX_LEGEND:
        kept = set(counts.index[:MAX_LEGEND])
        shown = [n for n in shown if n in kept]
    handles = [Line2D([], [], marker=NO_VALUE_MARKER, linestyle="", markersize=7, color=colours[n],
                      markeredgecolor=OUTLINE, markeredgewidth=0.6, label=f"{n} ({counts[n]})") if n in crosses
               else Line2D([], [], marker="o", linestyle="", markersize=6, color=colours[n],
                           markeredgecolor=edge_colour(colours[n], colours[n]), markeredgewidth=0.5,
                           label=f"{n} ({counts[n]})") for n in shown]
    if len(counts) > len(shown):
        handles.append(Line2D([], [], linestyle="", label=map_word("more", lang, count=len(counts) - len(shown))))
    ax.legend(handles=handles, title=map_word(colour, lang), loc="upper left", bbox_to_anchor=(1.01, 1),
              borderaxespad=0, fontsize=SMALL_TEXT, title_fontsize=SMALL_TEXT + 1, frameon=False,
              ncols=max(1, math.ceil(len(handles) / LEGEND_ROWS)), handletextpad=0.2, columnspacing=0.8)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel("UMAP 1", fontsize=SMALL_TEXT)
    ax.set_ylabel("UMAP 2", fontsize=SMALL_TEXT)
    ax.set_aspect("equal", adjustable="datalim")
    for spine in ax.spines.values():
        spine.set_color("#bbbbbb")
    return ax


def map_figure(table: pd.DataFrame, colour: str = "prediction", ax: Axes | None = None, *,
               palette: Mapping | None = None, title: str | None = None, lang: str = "en") -> Figure:
    """The embedding map (`embedding_map`) as a figure for a report: the dots coloured by `colour`
    ("prediction", "truth" or "cluster"), a legend, and a title saying how many images (default) with the
    map's note (unreadable images left out, a small collection) under it. Drawn on `ax` when given."""
    check_lang(lang)
    ax = map_axes(table, colour, ax, palette=palette, lang=lang)
    if title is None:
        title = map_word("title", lang, count=len(table), colour=map_word(colour, lang))
        note = map_note(table, lang)
        title += f"\n{note}" if note else ""
    if title:
        ax.set_title(title, fontsize=SMALL_TEXT + 2, loc="left")
    return fit_cjk_text(ax.figure)
