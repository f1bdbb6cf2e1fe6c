"""The words of clipnb's shapes world: the colours, shapes and classes the demo model knows.

The demo model (`clipnb.load_model("demo")`) needs these words and nothing else of the world: loading it
imports this module, never the generator or the training code. Drawing the world (images, captions,
labelled folders, videos) is `clipnb.demo.shapes`; training the model on it is `clipnb.demo.train`.

- ``COLOURS``, ``SHAPES``: the vocabulary. ``CLASSES``: the 48 ``"colour shape"`` names, in a fixed order.
- ``HELD_OUT``: colour-shape combinations that never appear in training images or captions
  (each colour and each shape is still seen in training with other partners). ``SEEN``: the other 40.
- ``EXTRA_COLOURS``, ``EXTRA_SHAPES``, ``EXTRA``: words outside the classes that training also shows.
- ``split(name)``: ``"red circle"`` -> ``("red", "circle")``.
"""

from __future__ import annotations

__all__ = ["COLOURS", "SHAPES", "CLASSES", "HELD_OUT", "SEEN", "EXTRA_COLOURS", "EXTRA_SHAPES", "ALL_COLOURS",
           "ALL_SHAPES", "EXTRA", "STYLES", "split"]

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
