"""Charts of near-duplicates: one row of thumbnails per group, each captioned with its similarity.

Like clipnb.report.plots.base's figures, drawn outside pyplot and returned; save with `export.save_figure`.
"""
from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from ...data.images import display_names
from .base import fit_cjk_text, image_axes, new_figure
from ...words import plural
from ...words import check_lang, word

CELL = (2.3, 2.5)  # inches per thumbnail (with its caption)


def duplicates_figure(table: pd.DataFrame, *, groups: int = 8, per_group: int = 6, lang: str = "en") -> Figure:
    """The first `groups` groups of a duplicates table (`find_duplicates`), largest first, one row each
    showing up to `per_group` members: its name and its similarity to the group ("same bytes" for an exact
    copy). A figure saying there are none when the table has no group."""
    check_lang(lang)
    grouped = table[table["group"].notna()]
    shown = list(grouped.groupby("group", sort=True))[:groups]
    if not shown:
        figure = new_figure(6, 1.2)
        figure.text(0.5, 0.5, word("note.no_duplicates", lang, files=plural(len(table), "file"), count=len(table)),
                    ha="center", va="center")
        return figure
    columns = min(per_group, max(len(members) for _, members in shown))
    figure = new_figure(CELL[0] * columns, (CELL[1] + 0.35) * len(shown))
    rows = figure.subfigures(len(shown), 1, squeeze=False)[:, 0]
    for row, (number, members) in zip(rows, shown):
        axes = row.subplots(1, columns, squeeze=False)[0]
        for ax in axes:
            ax.set_axis_off()
        names = display_names(members["path"])
        for ax, path, name, similarity, exact in zip(axes, members["path"], names, members["similarity"],
                                                     members["exact"]):
            how = word("note.same_bytes", lang) if exact else f"{similarity:.4f}"
            image_axes(path, ax, title=f"{name}\n{how}", lang=lang)
        hidden = len(members) - columns
        title = word("title.duplicate_group", lang, number=int(number), files=plural(len(members), "file"),
                     count=len(members))
        row.suptitle(title + (word("title.more_not_shown", lang, hidden=hidden) if hidden > 0 else ""),
                     fontsize=11, fontweight="bold", x=0.01, ha="left")
    return fit_cjk_text(figure)
