"""Charts of an image search: the hits as captioned thumbnails, each with its rank, score and short file name.

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
    captions = _hit_captions(hits, display_names(hits["path"]))
    query = schema.setting(hits, "query")
    return thumbnails_figure(hits["path"], captions, columns=columns, lang=lang,
                             title=title if title is not None else (word("title.search", lang, query=query)
                                                                    if query else ""))


def similar_figure(query_image, similar: pd.DataFrame, columns: int = 6, title: str | None = None,
                   lang: str = "en") -> Figure:
    """The query image, then the images most similar to it (`search_image`'s rank, path, score), each captioned
    with its short file name, the hits with rank and score too; `lang`: the words ("en", "zh")."""
    check_lang(lang)
    names = display_names([query_image] + list(similar["path"]))  # short names, relative to one another
    captions = [f"{word('caption.query', lang)}: {names[0]}"] + _hit_captions(similar, names[1:])
    return thumbnails_figure([query_image] + list(similar["path"]), captions, columns=columns, lang=lang,
                             title=word("title.similar_images", lang) if title is None else title)


def _hit_captions(hits: pd.DataFrame, names) -> list[str]:
    """"rank. score name" for each hit: one caption for every search's thumbnails."""
    return [f"{r}. {s:.3f} {n}" for r, s, n in zip(hits["rank"], hits["score"], names)]
