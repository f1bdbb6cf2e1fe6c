"""Charts of a video's classification: per-frame class probabilities over time, under a strip of frames.

Axes-level functions take data and an optional `ax`, draw on it and return it; `video_figure` composes
them into one `Figure` (outside pyplot). Save it with `export.save_figure`.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patheffects import Normal, Stroke

from ...tasks.video import VideoFrames, sampled_until, segments
from ...words import check_lang, word
from ...zeroshot import schema
from ..colours import class_palette, edge_colour
from .base import SMALL_TEXT, fit_cjk_text, image_axes, new_axes, new_figure, similarity_figure


def video_palette(timeline: pd.DataFrame, palette: Mapping[str, tuple] | None = None) -> Mapping[str, tuple]:
    """The colour of each class of a video's timeline (`colours.class_palette` of all its classes, unless a
    `palette` is given): one mapping for its lines, its frames' bars and every other chart of the video."""
    return palette or class_palette(list(schema.probabilities(timeline).columns))


def probability_timeline(timeline: pd.DataFrame, classes: Sequence[str] | None = None, top: int = 5,
                         ax: Axes | None = None, palette: Mapping[str, tuple] | None = None,
                         lang: str = "en", end: float | None = None) -> Axes:
    """Per-frame class probabilities over time; by default the `top` classes by their highest probability.

    Drawn as steps: a sample holds until the next one and the last until `end` (the end of what was sampled,
    `video.sampled_until`; not given, one typical step after the last sample), as the video's segments do, so
    a line never suggests a gradual change between two samples, and the time axis runs to where the last
    segment ends. A dot marks each sample. Each class's line has its colour in every other chart
    (`colours.class_palette` of all the timeline's classes, unless a `palette` is given); a white line is
    outlined. `lang`: the axes' words.
    """
    check_lang(lang)
    ax = new_axes(ax, (8, 3.5))
    probabilities = schema.probabilities(timeline)
    if classes is None:
        chosen = list(probabilities.max().sort_values(ascending=False, kind="stable").index[:top])
    else:
        chosen = list(classes)
    palette = video_palette(timeline, palette)
    times = timeline["time"].to_numpy(dtype=float)
    if len(times):
        # the last segment's end, by the segments table's own rule (which needs no more than times and predictions)
        spans = segments(timeline.reindex(columns=["time", "prediction", "confidence"]), end)
        end = float(spans["end"].iloc[-1])
        times = np.append(times, end)  # the last sample's value held to the end
    for name in chosen:
        colour = palette.get(name)
        edge = edge_colour(colour) if colour is not None else None
        values = probabilities[name].to_numpy(dtype=float)
        ax.plot(times, np.append(values, values[-1:]), drawstyle="steps-post", marker=".",
                markevery=list(range(len(values))), label=name, color=colour, markeredgecolor=edge or colour,
                path_effects=[Stroke(linewidth=2.6, foreground=edge), Normal()] if edge else None)
    if len(times):
        ax.set_xlim(min(0.0, times[0]), times[-1])
    ax.set_xlabel(word("axis.time", lang))
    ax.set_ylabel(word("axis.probability", lang))
    ax.set_ylim(0, 1.02)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=SMALL_TEXT, frameon=False)
    return fit_cjk_text(ax)


def video_figure(frames: VideoFrames, timeline: pd.DataFrame, thumbnails: int = 8, top: int = 5, title: str = "",
                 lang: str = "en", palette: Mapping[str, tuple] | None = None) -> Figure:
    """A strip of sampled frames (with their time and prediction) above the probability timeline; `lang`: its
    words ("en", "zh"); `palette`: the classes' colours (default `video_palette`)."""
    check_lang(lang)
    count = min(thumbnails, len(timeline))
    shown = np.unique(np.linspace(0, len(timeline) - 1, count).round().astype(int)) if count else []
    columns = max(1, len(shown))
    figure = new_figure(max(8, 1.5 * columns), 5.5)
    grid = figure.add_gridspec(2, columns, height_ratios=[1, 2.2])
    pictures = getattr(frames, "thumbnails", None) or []
    for slot, index in enumerate(shown):
        ax = figure.add_subplot(grid[0, slot])
        ax.set_axis_off()
        if index < len(pictures):
            image_axes(pictures[index], ax, lang=lang,
                       title=word("caption.frame", lang, time=timeline["time"].iloc[index],
                                  prediction=timeline["prediction"].iloc[index]))
    probability_timeline(timeline, top=top, ax=figure.add_subplot(grid[1, :]), palette=palette, lang=lang,
                         end=sampled_until(frames) if isinstance(frames, VideoFrames) else None)
    if title:
        figure.suptitle(title)
    return fit_cjk_text(figure)


def frame_figure(frames: VideoFrames, timeline: pd.DataFrame, index: int, top: int = 5,
                 palette: Mapping[str, tuple] | None = None, lang: str = "en") -> Figure:
    """One sampled frame (row `index` of the timeline) beside the probabilities of its `top` classes, every bar
    in its class's colour on the timeline (`video_palette`), so a bar and its line read as one class. The frames
    need their thumbnails (`embed_video`'s default)."""
    check_lang(lang)
    row = timeline.iloc[index]
    probabilities = schema.probabilities(timeline).iloc[index].astype(float)
    return similarity_figure(frames.thumbnails[index], probabilities.nlargest(top),
                             title=f"{row['time']:.2f} s", palette=video_palette(timeline, palette),
                             every_colour=True, bars_title=word("title.class_probabilities", lang), lang=lang)
