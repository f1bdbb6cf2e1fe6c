"""The words of clipnb's shapes world: the colours, shapes and classes the demo model knows.

The demo model (`clipnb.load_model("demo")`) needs these words and nothing else of the world: loading it
imports this module, never the generator or the training code. Drawing the world (images, captions,
labelled folders, videos) is `clipnb.demo.shapes`; training the model on it is `clipnb.demo.train`.

- ``COLOURS``, ``SHAPES``: the vocabulary. ``CLASSES``: the 48 ``"colour shape"`` names, in a fixed order.
- ``HELD_OUT``: colour-shape combinations that never appear in training images or captions
  (each colour and each shape is still seen in training with other partners). ``SEEN``: the other 40.
- ``EXTRA_COLOURS``, ``EXTRA_SHAPES``, ``EXTRA``: words outside the classes that training also shows.
- ``split(name)``: ``"red circle"`` -> ``("red", "circle")``.
- ``CHINESE``: the one table from each class colour and shape to its Chinese word (``"red"`` -> ``"红色"``,
  ``"circle"`` -> ``"圆形"``). A Chinese class is colour + shape with no space: ``to_chinese("red circle")``
  -> ``"红色圆形"``; ``CLASSES_ZH``, ``HELD_OUT_ZH``, ``SEEN_ZH`` follow the English tuples position by
  position, and the held-out combinations are held out in both languages. ``split_chinese("红色圆形")`` ->
  ``("红色", "圆形")``.
- The extra colours and shapes have no Chinese word: they are English-only. A Chinese caption of an image
  in an extra colour or shape names only its class word ("a cyan star" -> "星形", "a red heart" ->
  "红色的形状"); an image with neither a class colour nor a class shape (a cyan heart) is captioned in English.
"""

from __future__ import annotations

__all__ = ["COLOURS", "SHAPES", "CLASSES", "HELD_OUT", "SEEN", "EXTRA_COLOURS", "EXTRA_SHAPES", "ALL_COLOURS",
           "ALL_SHAPES", "EXTRA", "STYLES", "split", "CHINESE", "CLASSES_ZH", "HELD_OUT_ZH", "SEEN_ZH",
           "COLOURS_ZH", "SHAPES_ZH", "to_chinese", "split_chinese", "to_english"]

COLOURS: tuple[str, ...] = ("red", "green", "blue", "yellow", "purple", "orange", "white", "black")
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "hexagon", "cross")
CLASSES: tuple[str, ...] = tuple(f"{c} {s}" for c in COLOURS for s in SHAPES)

# One combination per colour; every shape is held out at least once and still seen with 5 or 6 colours.
HELD_OUT: tuple[str, ...] = (
    "red star",
    "green hexagon",
    "blue cross",
    "yellow triangle",
    "purple circle",
    "orange square",
    "white triangle",
    "black star",
)
SEEN: tuple[str, ...] = tuple(c for c in CLASSES if c not in HELD_OUT)

# Colours and shapes outside the 48 classes. Training also shows them (a cyan star, a red heart, ...):
# every class word then comes with many partners, which teaches the model to recognise a shape whatever
# its colour and to read "colour shape" as two words, so that held-out combinations compose.
EXTRA_COLOURS: tuple[str, ...] = ("cyan", "grey", "pink", "brown")
EXTRA_SHAPES: tuple[str, ...] = ("heart", "crescent", "arrow", "pentagon")
ALL_COLOURS: tuple[str, ...] = COLOURS + EXTRA_COLOURS
ALL_SHAPES: tuple[str, ...] = SHAPES + EXTRA_SHAPES
EXTRA: tuple[str, ...] = tuple(
    f"{c} {s}" for c in ALL_COLOURS for s in ALL_SHAPES if c in EXTRA_COLOURS or s in EXTRA_SHAPES
)

STYLES: tuple[str, ...] = ("pil", "mask")


def split(name: str) -> tuple[str, str]:
    """``"red circle"`` -> ``("red", "circle")``."""
    colour, shape = name.split(" ")
    if colour not in ALL_COLOURS or shape not in ALL_SHAPES:
        raise ValueError(f"not a colour and shape of the shapes world: {name!r}")
    return colour, shape


# Chinese words of the class colours and shapes (the extra ones are English-only: see the module's docstring).
CHINESE: dict[str, str] = {
    "red": "红色", "green": "绿色", "blue": "蓝色", "yellow": "黄色",
    "purple": "紫色", "orange": "橙色", "white": "白色", "black": "黑色",
    "circle": "圆形", "square": "正方形", "triangle": "三角形", "star": "星形", "hexagon": "六边形", "cross": "十字形",
}
_ENGLISH: dict[str, str] = {zh: en for en, zh in CHINESE.items()}
COLOURS_ZH: tuple[str, ...] = tuple(CHINESE[c] for c in COLOURS)
SHAPES_ZH: tuple[str, ...] = tuple(CHINESE[s] for s in SHAPES)


def to_chinese(name: str) -> str:
    """``"red circle"`` -> ``"红色圆形"`` (class colours and shapes only)."""
    colour, shape = split(name)
    if colour not in CHINESE or shape not in CHINESE:
        raise ValueError(f"{name!r} has no Chinese name: only the class colours and shapes have one")
    return CHINESE[colour] + CHINESE[shape]


def split_chinese(name: str) -> tuple[str, str]:
    """``"红色圆形"`` -> ``("红色", "圆形")``: a class colour's Chinese word, then a class shape's."""
    for colour in COLOURS_ZH:
        if name.startswith(colour) and name[len(colour):] in SHAPES_ZH:
            return colour, name[len(colour):]
    raise ValueError(f"not a Chinese colour and shape of the shapes world: {name!r}")


def to_english(name: str) -> str:
    """``"红色圆形"`` -> ``"red circle"``."""
    colour, shape = split_chinese(name)
    return f"{_ENGLISH[colour]} {_ENGLISH[shape]}"


CLASSES_ZH: tuple[str, ...] = tuple(to_chinese(c) for c in CLASSES)
HELD_OUT_ZH: tuple[str, ...] = tuple(to_chinese(c) for c in HELD_OUT)
SEEN_ZH: tuple[str, ...] = tuple(to_chinese(c) for c in SEEN)
