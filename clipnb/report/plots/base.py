"""Charts of zero-shot results: seaborn on matplotlib.

Axes-level functions take data and an optional `ax`, draw on it and return the `ax`; figure-level
functions (`similarity_figure`, `image_grid`, `class_dashboard`, `report_dashboard`,
`comparison_figure`) compose them. `class_palette` (clipnb.report.colours) gives every class one colour in every chart:
the colour its name says ("red circle" red), else a distinct categorical one; very light ones are outlined.
Class names wrap, many classes make taller charts rather than smaller text, and labels in Chinese,
Japanese or Korean use an installed CJK font (or warn once, saying how to install one).
No text is smaller than 9 pt (`SMALL_TEXT`) at the size a figure is drawn, and count axes have whole-number
ticks. `export_figure` writes a figure as PNG, SVG and PDF through clipnb.report.export.save_figure.
"""
from __future__ import annotations

import logging
import math
import os
import re
import textwrap
import warnings
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import matplotlib
import matplotlib.text
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ...zeroshot import schema
from ..colours import NO_CLASS_COLOUR, class_palette, edge_colour
from ..export import save_figure
from ...data.images import ImageReadError, display_names, open_image
from ...zeroshot.schema import readable
from ...tasks.summary import prediction_counts, ratio_counts
from ...words import plural
from ...words import check_lang, ratio_type_name, word

FORMATS = ("png", "svg", "pdf")
LOSER_COLOUR = NO_CLASS_COLOUR  # bars of the classes that did not win: grey, as every "no class"
MEAN_COLOUR = "#d62728"
BAR_HEIGHT = 0.3  # inches per bar: many classes make a taller chart, never smaller text
LABEL_WIDTH = 22  # characters per line of a wrapped class name
THUMBNAIL = 384  # pixels: the longest side of an image drawn in a chart
SMALL_TEXT = 9  # points: the smallest text in any chart (bar values, cells, ticks)
RIGHT_COLOUR = "#2ca02c"  # the discreet mark of an image whose prediction is its true class

# ---------------------------------------------------------------------------------------------
# CJK text

# Fonts that hold Chinese (and mostly Japanese and Korean) glyphs, most complete first.
CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Sans CJK TC", "Noto Sans CJK KR", "Noto Sans SC",
             "Source Han Sans SC", "Source Han Sans CN", "WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "SimHei",
             "Microsoft YaHei", "PingFang SC", "Hiragino Sans GB", "Heiti SC", "Heiti TC", "STHeiti",
             "Arial Unicode MS", "Droid Sans Fallback", "AR PL UMing CN", "AR PL UKai CN", "Noto Serif CJK SC",
             "Source Han Serif SC", "Noto Sans JP", "IPAGothic", "Noto Sans KR", "NanumGothic", "Malgun Gothic")
CJK_INSTALL_HINT = ("install one (Debian/Ubuntu: `apt-get install fonts-noto-cjk`; conda: "
                    "`conda install -c conda-forge font-ttf-noto-cjk`) and restart the kernel")
# font file names of CJK fonts, for fonts installed after matplotlib built its font cache
_CJK_FILE = re.compile(r"cjk|wqy|wenquanyi|simhei|simsun|msyh|yahei|droidsansfallback|sourcehan|notosans(sc|tc|jp|kr)"
                       r"|uming|ukai|ipag|nanum|pingfang|hiragino|heiti|arialuni", re.IGNORECASE)
_CJK = re.compile("[\u1100-\u11ff\u2e80-\u2fdf\u3000-\u303f\u3040-\u30ff\u3100-\u31ff\u3400-\u4dbf"
                  "\u4e00-\u9fff\ua960-\ua97f\uac00-\ud7af\uf900-\ufaff\uff00-\uffef]")


class CJKFontWarning(UserWarning):
    """Labels hold CJK text and no CJK font is installed: matplotlib would draw empty boxes."""


_cjk_warned = False
_scanned = False
_fallback_fonts: set[str] = set()  # the CJK fonts use_cjk_font appended to font.family


class _MissingCJKWeight(logging.Filter):
    """Drops matplotlib's "findfont: Failed to find font weight bold for WenQuanYi Micro Hei, now using 400."
    for the CJK fonts clipnb adds as a fallback: most have one weight, and their regular face is the right one
    for the CJK characters of a bold label. Every other font message (a missing family, a missing weight of
    any other font) passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        return not (isinstance(record.msg, str) and record.msg.startswith("findfont: Failed to find font weight")
                    and len(args) == 3 and args[1] in _fallback_fonts)


_weight_filter = _MissingCJKWeight()


def _quiet_missing_weight(font: str) -> None:
    _fallback_fonts.add(font)
    logger = logging.getLogger("matplotlib.font_manager")
    if _weight_filter not in logger.filters:
        logger.addFilter(_weight_filter)


def has_cjk(text: object) -> bool:
    """Whether the text holds Chinese, Japanese or Korean characters."""
    return bool(_CJK.search(str(text)))


def _known_cjk_font(names: set[str]) -> str | None:
    for name in CJK_FONTS:
        if name in names:
            return name
    found = sorted(n for n in names if re.search(r"CJK|WenQuanYi|Han Sans|Han Serif|YaHei|Hei\b", n))
    return found[0] if found else None


def find_cjk_font() -> str | None:
    """The family name of an installed font with CJK glyphs, or None.

    matplotlib lists fonts from a cache made when it first ran; a CJK font installed since then is
    found among the system's font files and added, so installing one needs no cache clearing.
    """
    from matplotlib import font_manager

    manager = font_manager.fontManager
    font = _known_cjk_font({entry.name for entry in manager.ttflist})
    global _scanned
    if font or _scanned:
        return font
    _scanned = True  # once per session: listing the system's fonts takes a moment
    cached = {entry.fname for entry in manager.ttflist}
    for path in font_manager.findSystemFonts():
        if path not in cached and _CJK_FILE.search(os.path.basename(path)):
            try:
                manager.addfont(path)
            except (OSError, RuntimeError, ValueError):
                continue  # an unreadable font file is simply not used
    return _known_cjk_font({entry.name for entry in manager.ttflist})


def use_cjk_font(texts: Iterable | None = None) -> bool:
    """Make the CJK text among `texts` drawable; True when it will be (or there is none).

    An installed CJK font is appended to matplotlib's font.family, so Latin text keeps its font and
    CJK characters come from the CJK one. Without one, warn once (CJKFontWarning) saying how to install
    one, instead of matplotlib's silent empty boxes and its warning per missing glyph. The font's missing bold
    face is not reported (bold CJK characters are drawn in its regular face). Texts made before
    this call keep their font: `fit_cjk_text` updates them. With no `texts`, set the font up when there
    is one and never warn (returns whether there is one).
    """
    global _cjk_warned
    sample = None if texts is None else [t for t in texts if t is not None and has_cjk(t)]
    if sample == []:
        return True
    font = find_cjk_font()
    if font:
        _quiet_missing_weight(font)  # a bold label's CJK characters are drawn in the font's regular face
        # matplotlib falls back glyph by glyph along font.family (a generic name there is one font)
        families = list(matplotlib.rcParams["font.family"])
        if font not in families:
            matplotlib.rcParams["font.family"] = families + [font]
        return True
    if sample and not _cjk_warned:
        _cjk_warned = True
        warnings.warn(f"chart labels hold Chinese/Japanese/Korean text (for example {str(sample[0])!r}) but no "
                      f"CJK font is installed, so those characters are drawn as empty boxes; {CJK_INSTALL_HINT}",
                      CJKFontWarning, stacklevel=3)
        # one clear warning instead of one per missing glyph
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .* missing from", category=UserWarning)
    return False


def fit_cjk_text(artist):
    """Give every text in `artist` (an Axes or a Figure) that holds CJK characters the CJK fallback font.

    Texts made before `use_cjk_font` (an axes' title, existing tick labels) keep the font family they were
    made with; this updates them. Returns `artist`.
    """
    texts = [t for t in artist.findobj(matplotlib.text.Text) if has_cjk(t.get_text())]
    if texts and use_cjk_font([t.get_text() for t in texts]):
        family = list(matplotlib.rcParams["font.family"])
        for text in texts:
            text.set_fontfamily(family)
    return artist


# ---------------------------------------------------------------------------------------------
# labels, colours, sizes

def wrap_label(text, width: int = LABEL_WIDTH, max_lines: int = 3) -> str:
    """Wrap a long class name over lines (CJK characters count double) and shorten what is left."""
    text = " ".join(str(text).split())
    if has_cjk(text):
        width = max(4, width // 2)
    lines = textwrap.wrap(text, width=width, break_long_words=True, break_on_hyphens=True) or [""]
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1][:max(1, width - 1)].rstrip() + "…"
    return "\n".join(lines)


def bars_height(count: int, minimum: float = 2.2) -> float:
    """Inches for a horizontal bar chart of `count` bars (labels of up to 3 lines stay apart)."""
    return max(minimum, BAR_HEIGHT * count + 1.0)


def new_axes(ax: Axes | None, size: tuple[float, float] = (6, 4)) -> Axes:
    """`ax` when given, else the axes of a new pyplot figure of `size` inches (constrained layout): how every
    axes-level chart of clipnb starts."""
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=size, layout="constrained")[1]


def _palette(palette: Mapping | None, classes: Sequence[str]) -> Mapping:
    return palette if palette is not None else class_palette(classes)


def text_width(text: str, size: float = SMALL_TEXT) -> float:
    """The width in points of `text` (its longest line) at `size` points in the default font, without drawing.

    CJK text is measured in the CJK fallback font that will draw it (set up here, as charts do).
    """
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextToPath

    if has_cjk(text):
        use_cjk_font([text])
    measure, font = TextToPath(), FontProperties(size=size)
    return max([measure.get_text_width_height_descent(line, font, ismath=False)[0]
                for line in str(text).splitlines()] + [0.0])


BAR_LABEL_GAP = 3  # points between a bar's end and its label


def _label_bars(ax: Axes, values: Sequence[float], texts: Sequence[str]) -> None:
    """Write each bar's text just after its end, and end the x axis where the widest fits after its bar.

    The room is measured against the axes' width less its tick labels' (the width it has once the layout
    has made room for them, or less), so a label never runs off the chart.
    """
    finite = [(y, v, t) for y, (v, t) in enumerate(zip(values, texts)) if np.isfinite(v)]
    for y, value, text in finite:
        ax.annotate(text, (value, y), xytext=(BAR_LABEL_GAP, 0), textcoords="offset points", va="center",
                    ha="left", fontsize=SMALL_TEXT)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    axes_points = ax.bbox.width * 72 / ax.figure.dpi - max([text_width(t) for t in labels] + [0.0])
    axes_points = max(axes_points, 72.0)
    top = 0.0
    for _, value, text in finite:
        room = BAR_LABEL_GAP + text_width(text) + 4  # points after the bar, 4 of them to spare
        top = max(top, value / (1 - min(0.6, room / axes_points)))
    ax.set_xlim(0, top or 1)


def _hbar(ax: Axes, labels: Sequence[str], values: Sequence[float], colours: Sequence, texts: Sequence[str],
          bold: Sequence[bool] | None = None) -> Axes:
    """Horizontal bars, first on top, each with its text (`texts`) after its end."""
    positions = np.arange(len(labels))
    ax.barh(positions, values, color=colours, edgecolor=[edge_colour(c, "white") for c in colours], height=0.75)
    ax.set_yticks(positions, [wrap_label(label) for label in labels], fontsize=SMALL_TEXT)
    if bold is not None:
        for tick, strong in zip(ax.get_yticklabels(), bold):
            tick.set_fontweight("bold" if strong else "normal")
    ax.set_ylim(len(labels) - 0.5, -0.5)  # first label on top
    _label_bars(ax, values, texts)
    sns.despine(ax=ax)
    return ax


def _formatted(values: Sequence[float], fmt: str) -> list[str]:
    return [format(v, fmt) if np.isfinite(v) else "" for v in values]


# ---------------------------------------------------------------------------------------------
# axes-level charts

def probability_bars(probabilities: pd.Series, ax: Axes | None = None, *, palette: Mapping | None = None,
                     top: int | None = None, title: str | None = None, every_colour: bool = False,
                     lang: str = "en") -> Axes:
    """Horizontal bars of probabilities (a Series: label -> probability), largest on top.

    The winner is drawn in its class colour with a bold label; the others in grey, so the winner stands
    out, or, with `every_colour`, each in its class colour too (beside a chart that draws every class, as
    a video's timeline does). `top` keeps only the largest ones (for many classes). `lang`: the words of the
    chart ("en", "zh").
    """
    check_lang(lang)
    series = probabilities.astype(float).sort_values(ascending=False, kind="stable")
    if top is not None:
        series = series.head(top)
    ax = new_axes(ax, (6, bars_height(len(series))))
    colours_of = _palette(palette, list(probabilities.index))
    winner = series.index[0] if len(series) and np.isfinite(series.iloc[0]) else None
    colours = [colours_of.get(name, "#1f77b4") if name == winner or every_colour else LOSER_COLOUR
               for name in series.index]
    _hbar(ax, list(series.index), list(series.values), colours, _formatted(series.values, ".3f"),
          [name == winner for name in series.index])
    ax.set_xlabel(word("axis.probability", lang))
    if title:
        ax.set_title(title, fontsize=10)
    return fit_cjk_text(ax)


def image_axes(image, ax: Axes | None = None, *, title: str | None = None, lang: str = "en") -> Axes:
    """Show an image (a PIL image or a path) without axes; an unreadable file shows why (in `lang`)."""
    check_lang(lang)
    ax = new_axes(ax, (4, 4))
    ax.set_axis_off()
    if hasattr(image, "size"):
        image = image.copy()
    else:
        try:
            image = open_image(image, draft_size=THUMBNAIL).image
        except ImageReadError as exc:
            ax.text(0.5, 0.5, wrap_label(word("note.unreadable", lang, reason=exc.reason), 24, 5), ha="center", va="center",
                    fontsize=SMALL_TEXT, color=MEAN_COLOUR, transform=ax.transAxes)
            image = None
    if image is not None:
        image.thumbnail((THUMBNAIL, THUMBNAIL))  # a chart never needs more; keeps SVG and PDF files small
        ax.imshow(image)
    if title:
        ax.set_title(wrap_label(title, 30, 2), fontsize=SMALL_TEXT)
    return fit_cjk_text(ax)


def prediction_bars(results: pd.DataFrame, ax: Axes | None = None, *, palette: Mapping | None = None,
                    order: Sequence[str] | None = None, show_empty: bool | None = None, lang: str = "en") -> Axes:
    """How many images each class won (分类结果分布 in a Chinese report), one horizontal bar per class.

    `order`: the classes to show, top to bottom (default: most predicted first). Classes that won
    nothing are shown when there are at most 20 classes, or when `show_empty` is True. `lang`: the words of
    the chart ("en", or "zh" for the article's).
    """
    check_lang(lang)
    counts = prediction_counts(results).set_index("class")
    classes = schema.classes(results)
    if order is None:
        show_empty = len(classes) <= 20 if show_empty is None else show_empty
        order = [c for c in counts.index if show_empty or counts.at[c, "count"] > 0]
    values = [float(counts.at[c, "count"]) if c in counts.index else 0.0 for c in order]
    ax = new_axes(ax, (6, bars_height(len(order))))
    colours_of = _palette(palette, classes)
    _hbar(ax, list(order), values, [colours_of.get(c, LOSER_COLOUR) for c in order], _formatted(values, ".0f"))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # counts: no tick at 0.5
    hidden = len(set(classes) - set(order))
    ax.set_xlabel(word("axis.images_predicted_hidden", lang, hidden=plural(hidden, "class"), count=hidden)
                  if hidden else word("axis.images_predicted", lang))
    ax.set_title(word("title.predictions", lang), fontsize=11)
    return fit_cjk_text(ax)


def confidence_bars(results: pd.DataFrame, ax: Axes | None = None, *, palette: Mapping | None = None,
                    order: Sequence[str] | None = None, lang: str = "en") -> Axes:
    """Per class, the mean confidence of the images predicted as that class (各类别平均置信度 with lang="zh")."""
    check_lang(lang)
    good = readable(results)
    means = good.groupby("prediction")["confidence"].mean()
    classes = schema.classes(results)
    if order is None:
        order = list(means.sort_values(ascending=False, kind="stable").index)
    values = [float(means.get(c, np.nan)) for c in order]
    ax = new_axes(ax, (6, bars_height(len(order))))
    colours_of = _palette(palette, classes)
    _hbar(ax, list(order), values, [colours_of.get(c, LOSER_COLOUR) for c in order], _formatted(values, ".3f"))
    note = word("note.sigmoid", lang) if schema.probability_note(results) else ""
    ax.set_xlabel(word("axis.mean_confidence", lang) + (f"\n({note})" if note else ""))
    ax.set_title(word("title.confidence", lang), fontsize=11)
    return fit_cjk_text(ax)


def ratio_type_bars(results: pd.DataFrame, ax: Axes | None = None, *, lang: str = "en") -> Axes:
    """The aspect-ratio types (square, 4:3, 16:9, 3:2, other) and how many images have each: each bar
    ends with its count and share of the readable images, "12 (25%)". A type holds for both orientations
    (a 3:4 photo is "standard (4:3)"): the part of a bar that is portrait images is hatched and counted,
    "12 (25%), 8 portrait". `lang`: the words of the chart ("zh": 图像比例分布, with the article's ratio types
    正方形 (1:1), ..., and 纵向 for portrait)."""
    check_lang(lang)
    counts = ratio_counts(results)
    ax = new_axes(ax, (6, bars_height(len(counts))))
    colours = sns.color_palette("crest", len(counts))
    total = max(int(counts["count"].sum()), 1)
    texts = [(f"{count} ({100 * count / total:.0f}%)" if count else "0")
             + (", " + word("note.portrait_part", lang, count=portrait) if portrait else "")
             for count, portrait in zip(counts["count"], counts["portrait"])]
    _hbar(ax, [ratio_type_name(name, lang) for name in counts["ratio_type"]], list(counts["count"].astype(float)),
          colours, texts)
    portrait = counts["portrait"].to_numpy(dtype=float)
    if portrait.any():  # the portrait part: the end of each bar, hatched over its own colour
        ax.barh(np.arange(len(counts)), portrait, left=counts["count"].to_numpy(dtype=float) - portrait,
                color=colours, hatch="///", edgecolor="white", linewidth=0, height=0.75,
                label=word("orientation.portrait", lang))
        ax.legend(loc="lower right", bbox_to_anchor=(1, 1), borderaxespad=0, fontsize=SMALL_TEXT, frameon=False)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(word("axis.images", lang))
    ax.set_title(word("title.ratio_types", lang), fontsize=11)
    return fit_cjk_text(ax)


def ratio_histogram(results: pd.DataFrame, ax: Axes | None = None, *, bins: int | str = "auto",
                    lang: str = "en") -> Axes:
    """Histogram of width/height with the mean marked (图像宽高比值分布 with lang="zh")."""
    check_lang(lang)
    values = readable(results)["ratio_value"].astype(float).dropna()
    ax = new_axes(ax, (6, 3.5))
    if len(values):
        sns.histplot(x=values, bins=bins if values.nunique() > 1 else 1, ax=ax, color="#74b9ff",
                     edgecolor="#2c3e50")
        mean = float(values.mean())
        ax.axvline(mean, color=MEAN_COLOUR, linestyle="--", linewidth=1.5, label=word("legend.mean", lang, mean=mean))
        ax.set_ylim(0, ax.get_ylim()[1] * 1.15)  # headroom: the legend sits above the bars, not on them
        ax.legend(loc="upper right", fontsize=SMALL_TEXT, frameon=False)
    else:
        ax.text(0.5, 0.5, word("note.no_readable_images", lang), ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel(word("axis.ratio_value", lang))
    ax.set_ylabel(word("axis.images", lang))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(word("title.ratio_histogram", lang), fontsize=11)
    sns.despine(ax=ax)
    return fit_cjk_text(ax)


MATRIX_ROW = 0.42  # inches per row of prediction_matrix: two lines of 9 pt text in a cell
MATRIX_COLUMN = 1.9  # inches per setting


def _matrix_rows(comparison: pd.DataFrame, only_changed: bool, max_rows: int) -> pd.DataFrame:
    rows = comparison[comparison["changed"]] if only_changed else comparison
    return rows.sort_values("changed", ascending=False, kind="stable").head(max_rows)


def prediction_matrix(comparison: pd.DataFrame, ax: Axes | None = None, *, palette: Mapping | None = None,
                      max_rows: int = 40, only_changed: bool = False, lang: str = "en") -> Axes:
    """A table of predictions, one row per image and one column per setting (`SettingsComparison.predictions`).

    Each cell is coloured by its class; rows whose prediction changes between settings have a bold red
    label, and each prediction that differs from the first setting's is outlined in red and bold, so the
    changes stand out. At most `max_rows` rows, changed first; `only_changed` draws only the rows whose
    prediction changes. The title says how many of how many images change, and how many rows are shown
    when not all are. `lang`: its words ("en", "zh").
    """
    check_lang(lang)
    settings = list(schema.setting(comparison, "settings", [c for c in comparison.columns if c != "changed"]))
    classes = list(schema.setting(comparison, "classes", sorted(set(comparison[settings].stack().dropna()))))
    table = _matrix_rows(comparison, only_changed, max_rows)
    colours_of = _palette(palette, classes)
    ax = new_axes(ax, (MATRIX_COLUMN * len(settings) + 2.5, MATRIX_ROW * max(len(table), 1) + 1.5))
    for row, (name, entry) in enumerate(table.iterrows()):
        for column, setting in enumerate(settings):
            label = entry[setting]
            colour = colours_of.get(label, "white") if isinstance(label, str) else "white"
            differs = label != entry[settings[0]]  # a prediction that changed from the first setting's
            ax.add_patch(matplotlib.patches.Rectangle((column, row), 1, 1, facecolor=colour, alpha=0.55,
                                                      edgecolor=edge_colour(colour, "white"), linewidth=0.5))
            if differs:
                ax.add_patch(matplotlib.patches.Rectangle((column + 0.04, row + 0.08), 0.92, 0.84, fill=False,
                                                          edgecolor=MEAN_COLOUR, linewidth=2))
            ax.text(column + 0.5, row + 0.5,
                    wrap_label(label if isinstance(label, str) else word("note.unreadable_cell", lang), 16, 2),
                    ha="center", va="center", fontsize=SMALL_TEXT, fontweight="bold" if differs else "normal")
    ax.set_xlim(0, len(settings))
    ax.set_ylim(max(len(table), 1), 0)
    ax.set_xticks(np.arange(len(settings)) + 0.5, [s.replace(" / ", "\n") for s in settings], fontsize=SMALL_TEXT)
    ax.xaxis.tick_top()
    ax.set_yticks(np.arange(len(table)) + 0.5, [wrap_label(n, 28, 1) for n in table.index], fontsize=SMALL_TEXT)
    for tick, changed in zip(ax.get_yticklabels(), table["changed"]):
        if changed:
            tick.set_color(MEAN_COLOUR)
            tick.set_fontweight("bold")
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    changed = int(comparison["changed"].sum())
    title = word("title.matrix", lang, changed=changed, images=plural(len(comparison), "image"),
                 image_count=len(comparison),
                 verb=word("title.matrix_changes" if changed == 1 else "title.matrix_change", lang))
    candidates = changed if only_changed else len(comparison)
    if len(table) < candidates:
        title += word("title.matrix_shown", lang, shown=len(table))
    elif only_changed and changed < len(comparison):
        title += word("title.matrix_only", lang)
    if table.empty:
        ax.text(len(settings) / 2, 0.5, word("note.no_changes" if only_changed else "note.no_images", lang),
                ha="center", va="center", fontsize=SMALL_TEXT)
    ax.set_title(title, fontsize=10)
    return fit_cjk_text(ax)


# ---------------------------------------------------------------------------------------------
# figure-level dashboards

def chart_order(results: pd.DataFrame, many: int = 20) -> list[str]:
    """The classes a dashboard shows, most predicted first: all of them when there are at most `many`,
    else only those that won an image (the charts say how many are left out)."""
    counts = prediction_counts(results)
    if len(counts) <= many:
        return list(counts["class"])
    return list(counts[counts["count"] > 0]["class"]) or list(counts["class"])


def new_figure(width: float, height: float) -> Figure:
    """A Figure of `width` x `height` inches outside pyplot (constrained layout): redrawing a panel never
    piles up open figures, and a notebook cell that ends with the figure displays it once. Every
    figure-level chart of clipnb starts here."""
    return Figure(figsize=(width, height), layout="constrained")


def thumbnails_figure(images: Sequence, captions: Sequence[str] | None = None, columns: int = 6,
                      title: str = "", lang: str = "en") -> Figure:
    """A grid of images (paths or PIL images) with a caption over each: mistakes, search hits, frames;
    `lang`: the language of what an unreadable image says. Every image sits at the top of its cell, so the
    images of a row start at one height under captions on one baseline, whatever their shapes."""
    check_lang(lang)
    images = list(images)
    captions = list(captions) if captions is not None else [""] * len(images)
    columns = max(1, min(columns, len(images) or 1))
    rows = max(1, math.ceil(len(images) / columns))
    figure = new_figure(2.3 * columns, 2.7 * rows + (0.4 if title else 0))
    axes = np.atleast_1d(figure.subplots(rows, columns, squeeze=False)).ravel()
    for ax in axes:
        ax.set_axis_off()
    for ax, image, caption in zip(axes, images, captions):
        image_axes(image, ax, title=caption, lang=lang)
        ax.set_anchor("N")  # a wide image's box shrinks to its top, not to the middle of its cell
    if title:
        figure.suptitle(title)
    return fit_cjk_text(figure)


def similarity_figure(image, probabilities: pd.Series, *, title: str | None = None, bars_title: str | None = None,
                      palette: Mapping | None = None, every_colour: bool = False, lang: str = "en") -> Figure:
    """The image beside a bar chart of its probabilities over free texts (notebook 01); `bars_title`: the
    chart's title (default "probability of each text"; a video frame's classes in notebook 06 are
    word("title.class_probabilities")); `palette`: the colours of all the classes when only some are shown;
    `every_colour`: every bar in its class colour, not only the winner's (see `probability_bars`)."""
    check_lang(lang)
    height = max(3.5, bars_height(len(probabilities)))
    figure = new_figure(11, height)
    left, right = figure.subplots(1, 2, width_ratios=[1, 1.4])
    image_axes(image, left, title=title, lang=lang)
    probability_bars(probabilities, right, palette=_palette(palette, list(probabilities.index)),
                     every_colour=every_colour,
                     title=bars_title if bars_title is not None else word("title.probabilities", lang), lang=lang)
    return fit_cjk_text(figure)


def _truth_title(name: str, prediction, truth, lang: str = "en") -> tuple[str, dict]:
    """The title of an image in the grid, and its style: a mistake in bold red with the true class, a
    right prediction with a discreet tick, an unknown truth with the name alone."""
    if not isinstance(truth, str) or not isinstance(prediction, str):  # unknown truth (None, NaN), unreadable image
        return wrap_label(name, 30, 2), {}
    if prediction == truth:
        return f"✓ {wrap_label(name, 28, 1)}", {"color": RIGHT_COLOUR}
    return (f"✗ {wrap_label(name, 28, 1)}\n{word('note.true_class', lang, name=wrap_label(truth, 24, 1))}",
            {"color": MEAN_COLOUR, "fontweight": "bold"})


def image_grid(results: pd.DataFrame, *, rows: Sequence[int] | None = None, top: int = 5, columns: int = 4,
               palette: Mapping | None = None, max_images: int = 12,
               truth: Sequence[str | None] | None = None, lang: str = "en") -> Figure:
    """A grid of images, each above a bar chart of its `top` class probabilities (winner highlighted).

    `rows`: which rows of `results` to show (default: the first `max_images`). `truth`: one true class per
    row of `results` (None where unknown); an image predicted as another class is titled in bold red
    "✗ name" with "true: class" under it, one predicted right gets a discreet green "✓". `lang`: the words
    of the grid ("en", "zh").
    """
    check_lang(lang)
    if truth is not None:
        truth = list(truth)
        if len(truth) != len(results):
            raise ValueError(f"truth has {plural(len(truth), 'class')} but results has "
                             f"{plural(len(results), 'row')}: give one true class (or None) per row of results")
    rows = list(rows) if rows is not None else list(range(min(len(results), max_images)))
    classes = schema.classes(results)
    palette = _palette(palette, classes)
    shown = min(top, len(classes))
    count = max(len(rows), 1)
    columns = max(1, min(columns, count))
    lines = -(-count // columns)
    cell_height = 2.2 + bars_height(shown, 1.0)
    figure = new_figure(3.4 * columns, cell_height * lines)
    cells = np.atleast_1d(figure.subfigures(lines, columns, squeeze=False).ravel())
    names = display_names(results["path"])
    probabilities = schema.probabilities(results, classes)
    for cell, row in zip(cells, rows):
        image_ax, bars_ax = cell.subplots(2, 1, height_ratios=[2.2, bars_height(shown, 1.0)])
        entry = results.iloc[row]
        image_axes(entry["path"], image_ax, lang=lang)
        if truth is None:
            image_ax.set_title(wrap_label(names[row], 30, 2), fontsize=SMALL_TEXT)
        else:
            text, style = _truth_title(names[row], entry["prediction"], truth[row], lang)
            image_ax.set_title(text, fontsize=SMALL_TEXT, **style)
        if entry.get("error"):
            bars_ax.set_axis_off()
            continue
        probs = probabilities.iloc[row]
        probability_bars(probs, bars_ax, palette=palette, top=shown, lang=lang)
        bars_ax.set_xlabel("")
        bars_ax.set_xticks([0, 0.5, 1])  # probabilities: three 9 pt ticks fit a narrow chart
        bars_ax.tick_params(axis="x", labelsize=SMALL_TEXT)
    for cell in cells[len(rows):]:
        cell.set_facecolor("none")
    if not rows:
        cells[0].text(0.5, 0.5, word("note.no_images_selected", lang), ha="center", va="center")
    return fit_cjk_text(figure)


def class_dashboard(results: pd.DataFrame, *, palette: Mapping | None = None, title: str | None = None,
                    lang: str = "en") -> Figure:
    """Predicted-class counts beside the mean confidence per predicted class, the same class on each row;
    `lang`: the words of the charts ("en", or "zh" for the article's)."""
    check_lang(lang)
    classes = schema.classes(results)
    palette = _palette(palette, classes)
    order = chart_order(results)
    figure = new_figure(12, bars_height(len(order)) + (0.4 if title else 0))
    left, right = figure.subplots(1, 2, sharey=True)
    prediction_bars(results, left, palette=palette, order=order, lang=lang)
    confidence_bars(results, right, palette=palette, order=order, lang=lang)
    right.tick_params(axis="y", labelleft=False)
    if title:
        figure.suptitle(title, fontsize=13, fontweight="bold")
    return fit_cjk_text(figure)


def report_dashboard(results: pd.DataFrame, *, palette: Mapping | None = None, title: str | None = None,
                     lang: str = "en") -> Figure:
    """The four-chart report: predicted classes and confidence per class (top, same class per row),
    aspect-ratio types and the width/height histogram with its mean (bottom).

    `title`: default "Zero-shot classification report" (with lang="zh" the article's
    "CLIP零样本分类 + 图像比例分析报告"); `lang`: the words of every chart ("en" or "zh").
    """
    check_lang(lang)
    title = word("title.report", lang) if title is None else title
    classes = schema.classes(results)
    palette = _palette(palette, classes)
    order = chart_order(results)
    top_height = bars_height(len(order), 3.0)
    figure = new_figure(13, top_height + 3.8 + 0.6)
    upper, lower = figure.subfigures(2, 1, height_ratios=[top_height, 3.8])
    left, right = upper.subplots(1, 2, sharey=True)
    prediction_bars(results, left, palette=palette, order=order, lang=lang)
    confidence_bars(results, right, palette=palette, order=order, lang=lang)
    right.tick_params(axis="y", labelleft=False)
    ratio_left, ratio_right = lower.subplots(1, 2)
    ratio_type_bars(results, ratio_left, lang=lang)
    ratio_histogram(results, ratio_right, lang=lang)
    good = readable(results)
    counts = word("title.report_counts", lang, images=plural(len(good), "image"), image_count=len(good),
                  classes=plural(len(classes), "class"), class_count=len(classes),
                  confidence=good["confidence"].mean())
    if "outlier" in good and good["outlier"].any():
        counts += word("title.report_outliers", lang, outliers=int(good["outlier"].sum()))
    figure.suptitle(f"{title}\n{counts}", fontsize=13, fontweight="bold")
    return fit_cjk_text(figure)


def comparison_figure(comparison: pd.DataFrame, *, palette: Mapping | None = None, max_rows: int = 40,
                      only_changed: bool = False, lang: str = "en") -> Figure:
    """The predictions of every setting side by side, changed rows highlighted (notebook 02);
    `only_changed` draws only the images whose prediction changes; `lang`: its words ("en", "zh")."""
    check_lang(lang)
    settings = list(schema.setting(comparison, "settings", []))
    rows = len(_matrix_rows(comparison, only_changed, max_rows))
    figure = new_figure(MATRIX_COLUMN * len(settings) + 3, MATRIX_ROW * max(rows, 1) + 1.6)
    prediction_matrix(comparison, figure.subplots(), palette=palette, max_rows=max_rows, only_changed=only_changed,
                      lang=lang)
    return fit_cjk_text(figure)


# ---------------------------------------------------------------------------------------------
# export

def export_figure(figure: Figure, folder: str | os.PathLike, name: str, *, formats: Sequence[str] = FORMATS,
                  dpi: int = 150) -> list[Path]:
    """Write `figure` as folder/name.png (at `dpi`), .svg and .pdf; returns the paths written."""
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ValueError(f"unknown figure format {unknown[0]!r}: use {', '.join(FORMATS)}")
    if dpi < 10:
        raise ValueError(f"dpi {dpi} is too small for a readable figure; use 72 or more (150 is the default)")
    folder = Path(folder)
    return [save_figure(figure, folder / f"{name}.{fmt}", dpi=dpi) for fmt in formats]

