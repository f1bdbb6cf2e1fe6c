"""Charts of an image search: the hits as captioned thumbnails.

Like clipnb.report.plots.base's figures, drawn outside pyplot and returned; save with `export.save_figure`.
"""
from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from ...zeroshot import schema
from ...data.images import display_names
from .base import thumbnails_figure
from ...words import check_lang, word


def search_figure(hits: pd.DataFrame, columns: int = 6, title: str | None = None, lang: str = "en") -> Figure:
    """Search hits (rank, path, score) as thumbnails captioned with rank and score; `lang`: the title's words."""
    check_lang(lang)
    names = display_names(hits["path"])
    captions = [f"{r}. {s:.3f} {n}" for r, s, n in zip(hits["rank"], hits["score"], names)]
    query = schema.setting(hits, "query")
    return thumbnails_figure(hits["path"], captions, columns=columns, lang=lang,
                             title=title if title is not None else (word("title.search", lang, query=query)
                                                                    if query else ""))
