"""The colour of each class: one mapping, used by every chart, panel, map, timeline and export.

- A class whose name carries a colour word ("red circle", "红色圆形", "a navy jacket") is drawn in that colour
  (`colour_word` finds the word: English as a whole word, Chinese anywhere, the first one in the name).
  Several classes with one colour word get shades of it: lighter, darker, more or less colourful, the hue
  turned at most a few degrees, and always nearer that word's colour than any other colour word's
  (a blue never drifts to cyan, a black never to grey, a white stays near-white and outlined).
- Any other class gets a colour from palettes designed for categories: Okabe & Ito's colour-blind-safe set
  (less its black), then Paul Tol's "muted" set, then colorcet's Glasbey set (256 colours spaced for
  distinctness, without black, white or greys).
- Every class takes the first of its candidates that lies at least MIN_DISTANCE (a word's first class:
  MIN_SHADE_DISTANCE) from every colour taken before it, or the farthest one when none does; a word's further
  classes take the shade farthest from every colour taken, so its shades spread over all of the word's range.
  Distances are ΔE in CAM02-UCS (colorspacious), a perceptually uniform space. Classes with a colour word
  choose first, so the others keep clear of them; the greys stay for what is no class (unknown, unreadable,
  "other").
- A very light colour (white, a pale tint) needs an outline to be seen on white: `edge_colour`.

    class_palette(["red circle", "red square", "cat"])   # {"red circle": red, "red square": another red, ...}
    class_palette(classes + ["blue star"], keep=palette)  # a panel: the classes it had keep their colours
"""
from __future__ import annotations

import functools
import math
import re
from typing import Mapping, Sequence

import numpy as np
from matplotlib.colors import to_rgb

NO_CLASS_COLOUR = "#c8ccd2"  # grey: no class colour (unknown, unreadable, the classes a map leaves out, losers)
OUTLINE = "#555555"  # the edge of a very light colour
MIN_DISTANCE = 20.0  # ΔE (CAM02-UCS) between class colours: two categorical palette colours differ by 20-90
MIN_SHADE_DISTANCE = 12.0  # ΔE between two shades of one colour word: still told apart side by side
LIGHT = 88.0  # CAM02-UCS lightness J' (white: 100) from which a colour gets an outline

# Colour words -> a colour that reads as that word on a chart. The words of the demo model
# (clipnb.models.demo_vocabulary.ALL_COLOURS) and common others; tab: colours for the ten matplotlib charts use most.
COLOUR_WORDS: dict[str, str] = {
    "red": "tab:red", "green": "tab:green", "blue": "tab:blue", "yellow": "#f2cf1d", "orange": "tab:orange",
    "purple": "tab:purple", "pink": "#f07cc0", "brown": "tab:brown", "black": "#111111", "white": "#ffffff",
    "grey": "#6e6e6e", "gray": "#6e6e6e", "navy": "#1b2a78", "cyan": "#17becf", "magenta": "#d0219b",
    "gold": "#d4a20f", "golden": "#d4a20f", "silver": "#a9adb3", "violet": "#8a3ad6", "indigo": "#4b1c9c",
    "maroon": "#7d1a1a", "crimson": "#c4163c", "teal": "#138a86", "turquoise": "#3ccfc0", "olive": "tab:olive",
    "lime": "#7ccd1f", "beige": "#eadcb9", "tan": "#c9a679", "khaki": "#bdb06b", "lavender": "#b69ae0",
    "coral": "#f2755a", "salmon": "#ef8b78", "ivory": "#fffbe6", "cream": "#fbf2d0",
}
# Chinese colour words -> the English word above (longer words win over the single characters in them)
CHINESE_COLOUR_WORDS: dict[str, str] = {
    "红色": "red", "红": "red", "绿色": "green", "绿": "green", "蓝色": "blue", "蓝": "blue", "黄色": "yellow",
    "黄": "yellow", "橙色": "orange", "橘色": "orange", "橙": "orange", "紫色": "purple", "紫": "purple",
    "粉红色": "pink", "粉色": "pink", "粉红": "pink", "粉": "pink", "棕色": "brown", "褐色": "brown",
    "咖啡色": "brown", "棕": "brown", "褐": "brown", "黑色": "black", "黑": "black", "白色": "white", "白": "white",
    "灰色": "grey", "灰": "grey", "藏青色": "navy", "藏青": "navy", "藏蓝": "navy", "海军蓝": "navy",
    "青色": "cyan", "青": "cyan", "品红": "magenta", "洋红": "magenta", "金色": "gold", "金黄色": "gold",
    "金": "gold", "银色": "silver", "银": "silver", "紫罗兰色": "violet", "靛蓝": "indigo", "栗色": "maroon",
    "酒红色": "maroon", "酒红": "maroon", "深红色": "crimson", "深红": "crimson", "米色": "beige", "橄榄色": "olive",
}
_ENGLISH_WORD = re.compile(r"\b(" + "|".join(sorted(COLOUR_WORDS, key=len, reverse=True)) + r")\b", re.IGNORECASE)
_CHINESE_WORD = re.compile("|".join(sorted(CHINESE_COLOUR_WORDS, key=len, reverse=True)))

# Okabe & Ito (2008), "Color Universal Design": colour-blind safe; its black is left out (black means black)
OKABE_ITO = ("#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7")
# Paul Tol (2021), "Colour Schemes", qualitative "muted": distinct for colour-blind readers too
TOL_MUTED = ("#CC6677", "#332288", "#DDCC77", "#117733", "#88CCEE", "#882255", "#44AA99", "#999933", "#AA4499")


def colour_word(name: object) -> str | None:
    """The colour word a class name carries, as an English key of COLOUR_WORDS ("红色圆形" -> "red"), or None.

    The first colour word in the name wins ("navy blue coat" -> "navy"); English words count only whole
    ("greyhound" has none), Chinese ones anywhere in the name."""
    text = str(name)
    found = [(m.start(), m.group(0).lower()) for m in [_ENGLISH_WORD.search(text)] if m]
    found += [(m.start(), CHINESE_COLOUR_WORDS[m.group(0)]) for m in [_CHINESE_WORD.search(text)] if m]
    return min(found)[1] if found else None


def _ucs(colours) -> np.ndarray:
    from colorspacious import cspace_convert

    return np.atleast_2d(cspace_convert(np.clip(np.asarray(colours, dtype=float), 0, 1), "sRGB1", "CAM02-UCS"))


def colour_distance(a, b) -> float:
    """ΔE between two colours (anything matplotlib reads) in CAM02-UCS: about 1 is just noticeable."""
    first, second = _ucs([to_rgb(a), to_rgb(b)])
    return float(np.linalg.norm(first - second))


def edge_colour(face, default=None):
    """The outline a patch, dot or line of colour `face` needs to be seen on white: OUTLINE for a very light
    colour (lightness J' above LIGHT: white, ivory, pale tints), else `default`."""
    return OUTLINE if _ucs([to_rgb(face)])[0, 0] > LIGHT else default


# Shades of a colour with a hue, in CAM02-UCS around the word's colour: lightness J' from SHADE_LIGHTNESS[0]
# below it to SHADE_LIGHTNESS[1] above (a yellow or an orange darkened further reads olive or brown),
# colourfulness M' from SHADE_CHROMA[0] to SHADE_CHROMA[1] times its own, hue turned at most SHADE_HUE degrees:
# lightness and colourfulness vary, the hue stays the word's.
SHADE_LIGHTNESS = (18.0, 26.0)
SHADE_CHROMA = (0.75, 1.3)
SHADE_HUE = 8.0
# Shades of white, grey and black (no hue): lightness within ACHROMATIC_LIGHTNESS of the word's colour
# (whiter than white or blacker than black there is none; white stays far from the no-class grey and near
# white, outlined), and at most a trace of colourfulness (M' up to ACHROMATIC_CHROMA: still read as no hue).
ACHROMATIC_LIGHTNESS = 14.0
ACHROMATIC_CHROMA = 4.0
TINT_CHROMA = 12.0  # CAM02-UCS colourfulness M' below which a colour counts as having no hue


@functools.lru_cache(maxsize=None)
def _shades(word: str) -> tuple[tuple, ...]:
    """Candidates for the classes of one colour word, its own colour first, then the nearest to it first:
    colours of its lightness, colourfulness and hue range (above) that are on screen (in sRGB) and lie nearer
    the word's colour than any other colour word's (so "blue" never drifts to cyan, "red" to brown, "yellow"
    to olive, "black" to grey or "white" to ivory)."""
    from colorspacious import cspace_convert

    base = to_rgb(COLOUR_WORDS[word])
    lightness, a, b = _ucs([base])[0]
    chroma, hue = float(np.hypot(a, b)), float(np.degrees(np.arctan2(b, a)))
    if chroma < TINT_CHROMA:  # white, grey, black: lighter or darker (inwards only at the ends), a trace of a tint
        low, high = lightness - ACHROMATIC_LIGHTNESS, lightness + ACHROMATIC_LIGHTNESS
        if lightness > LIGHT:  # a white: only darker, and still light enough to be outlined
            low, high = max(low, LIGHT + 0.5), lightness
        elif lightness < 100 - LIGHT:  # a black: only lighter
            low = lightness
        js, ms, hs = np.arange(low, high + 0.5, 1.0), (0.0, ACHROMATIC_CHROMA / 2, ACHROMATIC_CHROMA), range(0, 360, 45)
        grid = np.array([(j, a + m * np.cos(np.radians(h)), b + m * np.sin(np.radians(h)))
                         for j in js for m in ms for h in (hs if m else [0.0])])
    else:
        js = np.arange(max(lightness - SHADE_LIGHTNESS[0], 5.0), min(lightness + SHADE_LIGHTNESS[1], 98.0) + 0.5)
        ms, hs = chroma * np.linspace(*SHADE_CHROMA, 10), hue + np.linspace(-SHADE_HUE, SHADE_HUE, 5)
        grid = np.array([(j, m * np.cos(np.radians(h)), m * np.sin(np.radians(h)))
                         for j in js for m in ms for h in hs])
    with np.errstate(invalid="ignore"):
        rgb = cspace_convert(grid, "CAM02-UCS", "sRGB1")
    on_screen = np.isfinite(rgb).all(axis=1) & (rgb >= -1e-3).all(axis=1) & (rgb <= 1 + 1e-3).all(axis=1)
    grid, rgb = grid[on_screen], np.clip(rgb[on_screen], 0, 1)
    others = {colour for colour in COLOUR_WORDS.values() if colour != COLOUR_WORDS[word]}  # less its synonyms
    own = np.linalg.norm(grid - _ucs([base])[0], axis=1)
    nearest_other = np.linalg.norm(grid[:, None, :] - _ucs([to_rgb(c) for c in sorted(others)])[None],
                                   axis=-1).min(axis=1)
    kept = np.flatnonzero(own < nearest_other)
    kept = kept[np.argsort(own[kept], kind="stable")]
    return (tuple(base), *(tuple(float(v) for v in rgb[i]) for i in kept))


@functools.lru_cache(maxsize=1)
def _categorical() -> tuple[tuple, ...]:
    import colorcet

    glasbey = [tuple(c) for c in colorcet.glasbey_bw_minc_20_minl_30]  # no black, white or greys
    colours = [to_rgb(c) for c in OKABE_ITO + TOL_MUTED] + glasbey
    return tuple(c for c in colours if edge_colour(c) is None)  # none so light that it needs an outline


@functools.lru_cache(maxsize=64)
def _points(candidates: tuple[tuple, ...]) -> np.ndarray:
    """The candidates of a word or of the categorical palette in CAM02-UCS, converted once: a palette of 48
    classes chooses from them 48 times."""
    return _ucs(candidates)


def _choose(candidates: tuple[tuple, ...], taken: list[tuple], minimum: float) -> tuple:
    """The first candidate at least `minimum` from every colour in `taken`, else the farthest one."""
    if not taken:
        return tuple(candidates[0])
    distances = np.linalg.norm(_points(candidates)[:, None, :] - _ucs(taken)[None, :, :], axis=-1).min(axis=1)
    far = np.flatnonzero(distances >= minimum)
    return tuple(float(v) for v in candidates[far[0] if len(far) else int(distances.argmax())])


def class_palette(classes: Sequence[str], keep: Mapping[str, tuple] | None = None) -> dict[str, tuple]:
    """One colour (RGB, 0-1) per class: the colour its name says, else a categorical one; see the module.

    The same class list always gives the same colours. A class added at the end changes no other class's
    colour, except that a new colour word may move a class without one out of its way: `keep` (colours that
    classes already have, a panel's as classes come and go) keeps every colour put, and new classes keep clear
    of them."""
    classes = list(dict.fromkeys(classes))
    keep = dict(keep or {})
    palette = {name: tuple(to_rgb(keep[name])) for name in classes if name in keep}
    taken = [to_rgb(NO_CLASS_COLOUR)] + list(palette.values())
    named = [(name, colour_word(name)) for name in classes if name not in palette]
    # colour words first, and every word's first class before any word's second: one word's shades never
    # take another word's own colour (a yellow turned towards orange cannot push "orange circle" off orange)
    seen: dict[str, int] = {}
    ranked = []
    for name, word in named:
        if word is not None:
            ranked.append((seen.get(word, 0), name, word))
            seen[word] = seen.get(word, 0) + 1
    for rank, name, word in sorted(ranked, key=lambda entry: entry[0]):
        # the first: the word's own colour where it is free; the others: as far from all as the word allows
        palette[name] = _choose(_shades(word), taken, MIN_SHADE_DISTANCE if rank == 0 else math.inf)
        taken.append(palette[name])
    plain_taken = taken + [to_rgb("white")]  # a class without a colour word is never drawn white on white
    for name, word in named:
        if word is None:
            palette[name] = _choose(_categorical(), plain_taken, MIN_DISTANCE)
            plain_taken.append(palette[name])
    return {name: palette[name] for name in classes}
