"""A generated world of coloured shapes, used to train and test clipnb's demo CLIP model.

The words (colours, shapes, classes, held-out combinations) are defined in `clipnb.models.demo_vocabulary` and
re-exported here; this module draws the world.

Pure generator: numpy and Pillow only, no torch. Every function that draws takes a seeded
``numpy.random.Generator`` so that images and captions are reproducible.

- ``COLOURS``, ``SHAPES``: the vocabulary. ``CLASSES``: the 48 ``"colour shape"`` names, in a fixed order.
- ``HELD_OUT``: colour-shape combinations that never appear in training images or captions
  (each colour and each shape is still seen in training with other partners). ``SEEN``: the other 40.
- ``draw(colour, shape, rng, style=...)``: one image (PIL) and a dict describing it.
  ``style="pil"`` (the training style) draws polygons with PIL; ``style="mask"`` is a deliberately
  different renderer (numpy signed-distance masks with soft edges, other proportions, gradient
  backgrounds) that training never uses, to check that the model did not learn one renderer.
- ``caption(info, rng)``: a caption that describes the image (shape and colour always, sometimes size,
  position, background, blur...), in many phrasings; ``lang="zh"``: the same kinds of caption in Chinese
  ("一张红色圆形的照片", "红色圆形", "圆形", "红色的形状", ...), with the words of ``clipnb.models.demo_vocabulary.CHINESE``.
- ``sample(rng, classes)``: a random class, its image and a caption.
- ``write_folder(root, ...)``: a labelled folder ``root/<class name>/<i>.png`` of generated images.
"""

from __future__ import annotations

import colorsys
import io
import math
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from ..models.demo_vocabulary import (  # noqa: F401 (the words of the world, re-exported: demo.shapes.CLASSES is shapes.CLASSES)
    ALL_COLOURS, ALL_SHAPES, CHINESE, CLASSES, CLASSES_ZH, COLOURS, EXTRA, EXTRA_COLOURS, EXTRA_SHAPES, HELD_OUT,
    HELD_OUT_ZH, SEEN, SEEN_ZH, SHAPES, STYLES, split, split_chinese, to_chinese, to_english,
)

# Shades of each colour as (hue range in degrees, saturation range, value range) in HSV.
# Ranges are wide (dark red to light red, navy to sky blue) but leave gaps between neighbours.
_SHADES: dict[str, tuple[tuple[float, float], tuple[float, float], tuple[float, float]]] = {
    "red": ((-10.0, 7.0), (0.75, 1.0), (0.55, 1.0)),
    "orange": ((22.0, 38.0), (0.85, 1.0), (0.9, 1.0)),
    "yellow": ((51.0, 62.0), (0.75, 1.0), (0.88, 1.0)),
    "green": ((95.0, 145.0), (0.6, 1.0), (0.42, 1.0)),
    "blue": ((205.0, 242.0), (0.65, 1.0), (0.45, 1.0)),
    "purple": ((268.0, 305.0), (0.5, 1.0), (0.45, 0.95)),
    "white": ((0.0, 360.0), (0.0, 0.06), (0.93, 1.0)),
    "black": ((0.0, 360.0), (0.0, 0.3), (0.0, 0.14)),
    # extra colours, apart from the class colours: cyan between green and blue, pink paler than red and
    # redder than purple, brown darker than orange, grey between black and white.
    "cyan": ((176.0, 192.0), (0.55, 1.0), (0.7, 1.0)),
    "grey": ((0.0, 360.0), (0.0, 0.05), (0.38, 0.68)),
    "pink": ((322.0, 348.0), (0.25, 0.5), (0.92, 1.0)),
    "brown": ((18.0, 34.0), (0.55, 0.9), (0.28, 0.5)),
}

_POSITIONS = {
    (0, 0): "top left", (1, 0): "top", (2, 0): "top right",
    (0, 1): "left", (1, 1): "centre", (2, 1): "right",
    (0, 2): "bottom left", (1, 2): "bottom", (2, 2): "bottom right",
}


# ----------------------------------------------------------------------------------------------
# colours


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb((h % 360.0) / 360.0, s, v), dtype=np.float32) * 255.0


def shade(colour: str, rng: np.random.Generator) -> np.ndarray:
    """A random RGB shade (float 0..255) of a named colour."""
    (h0, h1), (s0, s1), (v0, v1) = _SHADES[colour]
    return _hsv(rng.uniform(h0, h1), rng.uniform(s0, s1), rng.uniform(v0, v1))


def _distance(a: np.ndarray, b: np.ndarray) -> float:
    """'Redmean' perceptual RGB distance (0..~765)."""
    rm = (a[0] + b[0]) / 2.0
    d = a - b
    return float(math.sqrt((2 + rm / 256) * d[0] ** 2 + 4 * d[1] ** 2 + (2 + (255 - rm) / 256) * d[2] ** 2))


def _luma(c: np.ndarray) -> float:
    return float(0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]) / 255.0


def contrasts(fg: np.ndarray, bg: np.ndarray) -> bool:
    """Whether a shape of colour ``fg`` is clearly visible on background ``bg``."""
    return _distance(fg, bg) >= 170.0 and (abs(_luma(fg) - _luma(bg)) >= 0.12 or _distance(fg, bg) >= 260.0)


def _background_colour(fg: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A background colour that contrasts with ``fg``: mostly neutral, light or dark, sometimes vivid."""
    for _ in range(200):
        kind = rng.random()
        if kind < 0.3:  # near white / light grey, maybe tinted
            c = _hsv(rng.uniform(0, 360), rng.uniform(0, 0.12), rng.uniform(0.82, 1.0))
        elif kind < 0.5:  # dark
            c = _hsv(rng.uniform(0, 360), rng.uniform(0, 0.6), rng.uniform(0.0, 0.28))
        elif kind < 0.62:  # grey
            c = _hsv(0, 0, rng.uniform(0.3, 0.75))
        elif kind < 0.82:  # pastel / muted
            c = _hsv(rng.uniform(0, 360), rng.uniform(0.1, 0.45), rng.uniform(0.45, 1.0))
        else:  # anything, vivid included
            c = _hsv(rng.uniform(0, 360), rng.uniform(0, 1), rng.uniform(0, 1))
        if contrasts(fg, c):
            return c
    # Fallback that always contrasts: the opposite end of the lightness scale.
    return np.full(3, 20.0 if _luma(fg) > 0.5 else 240.0, dtype=np.float32)


# ----------------------------------------------------------------------------------------------
# geometry


def _polygon(shape: str, rng: np.random.Generator, style: str) -> np.ndarray:
    """Vertices (k, 2) of a shape of radius ~1 centred at 0, not yet rotated."""
    if shape == "circle":
        t = np.linspace(0, 2 * np.pi, 96 if style == "pil" else 48, endpoint=False)
        ratio = rng.uniform(0.9, 1.1)
        return np.stack([np.cos(t) * ratio, np.sin(t) / ratio], 1)
    if shape in ("square", "triangle", "hexagon", "pentagon"):
        n = {"square": 4, "triangle": 3, "hexagon": 6, "pentagon": 5}[shape]
        t = -np.pi / 2 + np.pi / n * (shape == "square") + 2 * np.pi * np.arange(n) / n
        pts = np.stack([np.cos(t), np.sin(t)], 1)
        if shape == "triangle":
            pts[:, 1] += 0.25  # centre the triangle's bounding box
            pts *= 1.15
        pts[:, 0] *= rng.uniform(0.92, 1.08)
        return pts
    if shape == "star":
        n = 5 if style == "mask" or rng.random() < 0.85 else 6
        inner = rng.uniform(0.36, 0.52) if style == "pil" else rng.uniform(0.45, 0.55)
        k = np.arange(2 * n)
        t = -np.pi / 2 + np.pi * k / n
        r = np.where(k % 2 == 0, 1.0, inner)
        pts = np.stack([np.cos(t) * r, np.sin(t) * r], 1)
        pts[:, 1] += 0.08
        return pts * 1.08
    if shape == "cross":
        w = rng.uniform(0.26, 0.42) if style == "pil" else rng.uniform(0.3, 0.36)
        a = rng.uniform(0.95, 1.05)
        return np.array(
            [(w, a), (-w, a), (-w, w), (-1, w), (-1, -w), (-w, -w), (-w, -a), (w, -a), (w, -w), (1, -w), (1, w), (w, w)],
            dtype=np.float64,
        )
    if shape == "heart":
        t = np.linspace(0, 2 * np.pi, 80, endpoint=False)
        x = 16 * np.sin(t) ** 3
        y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
        return np.stack([x, y + 2.5], 1) / 16.5
    if shape == "crescent":
        d, r2 = rng.uniform(0.35, 0.5), rng.uniform(0.8, 0.9)  # a disc minus a shifted disc
        xi = (1 - r2**2 + d**2) / (2 * d)
        yi = math.sqrt(max(1 - xi**2, 1e-6))
        a_out = math.atan2(yi, xi)
        a_in = math.atan2(yi, xi - d)
        outer = np.linspace(a_out, 2 * np.pi - a_out, 48)
        inner = np.linspace(2 * np.pi - a_in, a_in, 40)
        pts = np.concatenate([np.stack([np.cos(outer), np.sin(outer)], 1),
                              np.stack([d + r2 * np.cos(inner), r2 * np.sin(inner)], 1)])
        pts[:, 0] += 0.2
        return pts
    if shape == "arrow":
        w, hw = rng.uniform(0.15, 0.25), rng.uniform(0.45, 0.6)
        return np.array([(-1, -w), (0.15, -w), (0.15, -hw), (1, 0), (0.15, hw), (0.15, w), (-1, w)], dtype=np.float64)
    raise ValueError(f"unknown shape {shape!r}")


def _rotate(pts: np.ndarray, angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return pts @ np.array([[c, s], [-s, c]])


def _mask_pil(pts: np.ndarray, w: int, h: int, supersample: int) -> Image.Image:
    """Polygon mask ("L" image) drawn with PIL, optionally anti-aliased by supersampling."""
    m = Image.new("L", (w * supersample, h * supersample), 0)
    ImageDraw.Draw(m).polygon([(float(x) * supersample, float(y) * supersample) for x, y in pts], fill=255)
    if supersample > 1:
        m = m.resize((w, h), Image.Resampling.BOX)
    return m


def _mask_sdf(pts: np.ndarray, w: int, h: int, softness: float) -> Image.Image:
    """Polygon mask ("L" image) from a signed distance field, with a soft edge ``softness`` pixels wide."""
    # Only the polygon's bounding box (plus the soft edge) can be non-zero.
    x0 = max(0, int(np.floor(pts[:, 0].min() - softness - 2)))
    y0 = max(0, int(np.floor(pts[:, 1].min() - softness - 2)))
    x1 = min(w, int(np.ceil(pts[:, 0].max() + softness + 2)))
    y1 = min(h, int(np.ceil(pts[:, 1].max() + softness + 2)))
    out = np.zeros((h, w), dtype=np.uint8)
    if x1 <= x0 or y1 <= y0:
        return Image.fromarray(out, "L")
    py = np.arange(y0, y1, dtype=np.float32)[:, None] + 0.5
    px = np.arange(x0, x1, dtype=np.float32)[None, :] + 0.5
    dist2 = np.full((y1 - y0, x1 - x0), np.inf, dtype=np.float32)
    inside = np.zeros((y1 - y0, x1 - x0), dtype=bool)
    a = pts.astype(np.float32)
    b = np.roll(a, -1, axis=0)
    for (ax, ay), (bx, by) in zip(a, b):  # distance to each edge, and the even-odd rule for inside
        ex, ey = bx - ax, by - ay
        vx, vy = px - ax, py - ay
        t = np.clip((vx * ex + vy * ey) / max(ex * ex + ey * ey, 1e-12), 0, 1)
        np.minimum(dist2, (vx - ex * t) ** 2 + (vy - ey * t) ** 2, out=dist2)
        if ay != by:
            crosses = (ay > py) != (by > py)
            xint = ex * (py - ay) / ey + ax
            inside ^= crosses & (px < xint)
    dist = np.sqrt(dist2)
    sd = np.where(inside, -dist, dist)
    out[y0:y1, x0:x1] = (np.clip(0.5 - sd / max(softness, 1e-3), 0, 1) * 255).round().astype(np.uint8)
    return Image.fromarray(out, "L")


# ----------------------------------------------------------------------------------------------
# textures


def _ramp(w: int, h: int, angle: float) -> np.ndarray:
    """(h, w) values rising linearly from 0 to 1 along direction ``angle``."""
    c, s = math.cos(angle), math.sin(angle)
    t = np.arange(w, dtype=np.float32)[None, :] * c + np.arange(h, dtype=np.float32)[:, None] * s
    lo = min(0.0, (w - 1) * c) + min(0.0, (h - 1) * s)
    hi = max(0.0, (w - 1) * c) + max(0.0, (h - 1) * s)
    return (t - lo) / max(hi - lo, 1e-6)


def _image(arr: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")


def _rgb(c: np.ndarray) -> tuple[int, int, int]:
    return tuple(int(round(float(v))) for v in np.clip(c, 0, 255))


def _background(
    fg: np.ndarray, w: int, h: int, rng: np.random.Generator, kinds: Sequence[str]
) -> tuple[Image.Image, str, float]:
    """A background image whose every colour contrasts with ``fg``, its kind and its mean lightness."""
    kind = kinds[int(rng.integers(len(kinds)))]
    c1 = _background_colour(fg, rng)
    if kind == "plain":
        return Image.new("RGB", (w, h), _rgb(c1)), kind, _luma(c1)
    for _ in range(20):  # blends of the two colours must contrast too
        c2 = _background_colour(fg, rng)
        if all(contrasts(fg, c1 + (c2 - c1) * f) for f in (0.25, 0.5, 0.75)):
            break
    else:
        c2 = c1
    xx = np.arange(w, dtype=np.float32)[None, :]
    yy = np.arange(h, dtype=np.float32)[:, None]
    if kind == "gradient":
        t = _ramp(w, h, rng.uniform(0, 2 * np.pi))
    elif kind == "radial":
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        t = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2).astype(np.float32)
        t = t / max(float(t.max()), 1e-6)
    elif kind == "stripes":
        ang = rng.uniform(0, np.pi)
        period = rng.uniform(0.06, 0.3) * min(w, h)
        t = np.sin((xx * math.cos(ang) + yy * math.sin(ang)) * 2 * np.pi / period)
        t = (t > 0).astype(np.float32) if rng.random() < 0.6 else (t + 1) / 2
    elif kind == "blobs":
        lo = rng.random((int(rng.integers(2, 6)), int(rng.integers(2, 6))))
        t = np.asarray(
            Image.fromarray((lo * 255).astype(np.uint8)).resize((w, h), Image.Resampling.BICUBIC), dtype=np.float32
        ) / 255.0
    elif kind == "noise":
        noise = rng.normal(0, rng.uniform(8, 30), (h, w, 1 if rng.random() < 0.5 else 3)).astype(np.float32)
        return _image(c1 + noise), kind, _luma(c1)
    else:
        raise ValueError(kind)
    t = t[..., None]
    return _image(c1 * (1 - t) + c2 * t), kind, _luma(c1 * (1 - float(t.mean())) + c2 * float(t.mean()))


def _fill(fg: np.ndarray, w: int, h: int, rng: np.random.Generator) -> Image.Image:
    """The shape's surface: its colour, sometimes shaded or noisy (hue kept)."""
    r = rng.random()
    if r < 0.55:
        return Image.new("RGB", (w, h), _rgb(fg))
    if r < 0.8:  # shading: light to dark along a direction, which keeps the hue
        t = _ramp(w, h, rng.uniform(0, 2 * np.pi))
        k = rng.uniform(0.06, 0.18)
        out = fg * (1 - k + 2 * k * t[..., None])
    else:
        out = fg + rng.normal(0, rng.uniform(4, 16), (h, w, 1)).astype(np.float32)
    return _image(out)


# ----------------------------------------------------------------------------------------------
# drawing


def draw(
    colour: str,
    shape: str,
    rng: np.random.Generator,
    *,
    style: str = "pil",
    size: tuple[int, int] | None = None,
) -> tuple[Image.Image, dict]:
    """Draw one RGB image of a ``colour`` ``shape``; return it and a dict describing it.

    The image size (width, height) is random in 48..320 px (often not square) unless ``size`` is given.
    The shape lies inside the central square (what a centre crop keeps); position and size words in the
    description are relative to that square.
    """
    if colour not in ALL_COLOURS or shape not in ALL_SHAPES:
        raise ValueError(f"unknown colour/shape {colour!r} {shape!r}")
    if style not in STYLES:
        raise ValueError(f"style must be one of {STYLES}, not {style!r}")
    if size is None:
        if style == "pil":
            s = int(round(math.exp(rng.uniform(math.log(48), math.log(320)))))
            if rng.random() < 0.5:
                w = h = s
            else:
                other = int(np.clip(s * rng.uniform(0.6, 1.6), 48, 320))
                w, h = (s, other) if rng.random() < 0.5 else (other, s)
        else:
            w = int(rng.integers(72, 257))
            h = int(np.clip(w * rng.choice([1.0, 0.75, 4 / 3]), 56, 340))
    else:
        w, h = size
    side = min(w, h)
    ox, oy = (w - side) / 2, (h - side) / 2

    fg = shade(colour, rng)
    if style == "pil":
        radius = rng.uniform(0.15, 0.46) * side
        bg_kinds = ("plain",) * 5 + ("gradient", "gradient", "radial", "noise", "noise", "stripes", "blobs")
    else:
        radius = rng.uniform(0.2, 0.4) * side
        bg_kinds = ("gradient", "radial")
    angle = 0.0 if rng.random() < 0.4 else rng.uniform(0, 2 * np.pi)
    margin = radius * 1.02
    cx = ox + rng.uniform(margin, side - margin)
    cy = oy + rng.uniform(margin, side - margin)
    pts = _rotate(_polygon(shape, rng, style), angle) * radius + np.array([cx, cy])

    bg, bg_kind, bg_luma = _background(fg, w, h, rng, bg_kinds)
    info = {
        "colour": colour, "shape": shape, "label": f"{colour} {shape}", "style": style,
        "width": w, "height": h, "radius": radius / side, "angle": angle,
        "x": (cx - ox) / side, "y": (cy - oy) / side,
        "background": bg_kind, "background_luma": bg_luma,
        "blur": 0.0, "jpeg": None, "supersample": 1, "outline": False,
    }

    if style == "pil":
        ss = int(rng.choice([1, 1, 2, 3, 4]))
        ss = max(1, min(ss, 480 // side))  # anti-aliasing by supersampling, at bounded cost
        info["supersample"] = ss
        mask = _mask_pil(pts, w, h, ss)
        surface = _fill(fg, w, h, rng)
    else:
        mask = _mask_sdf(pts, w, h, softness=rng.uniform(1.0, 3.5) * side / 128)
        surface = Image.new("RGB", (w, h), _rgb(fg))
    out = Image.composite(surface, bg, mask)

    if style == "pil" and rng.random() < 0.1:  # a thin outline in a contrasting tone
        info["outline"] = True
        ink = Image.new("RGB", (w, h), (10, 10, 10) if _luma(fg) > 0.35 else (245, 245, 245))
        out = Image.composite(ink, out, mask.filter(ImageFilter.FIND_EDGES))

    if style == "pil":
        if rng.random() < 0.3:
            info["blur"] = float(rng.uniform(0.3, 1.6) * side / 100)
            out = out.filter(ImageFilter.GaussianBlur(info["blur"]))
        if rng.random() < 0.25:
            arr = np.asarray(out, dtype=np.float32) + rng.normal(0, rng.uniform(2, 14), (h, w, 1))
            out = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
        if rng.random() < 0.3:
            info["jpeg"] = int(rng.integers(25, 90))
            buf = io.BytesIO()
            out.save(buf, format="JPEG", quality=info["jpeg"])
            buf.seek(0)
            out = Image.open(buf).convert("RGB")
    else:
        info["blur"] = float(rng.uniform(0.5, 1.5) * side / 100)
        out = out.filter(ImageFilter.GaussianBlur(info["blur"]))
    return out, info


# ----------------------------------------------------------------------------------------------
# captions

_PREFIXES = (
    ("a photo of", 8), ("a picture of", 4), ("an image of", 4), ("", 4), ("a drawing of", 2),
    ("a rendering of", 1), ("a photograph of", 1), ("an illustration of", 1), ("a graphic of", 1),
    ("this is", 2), ("there is", 1), ("here is", 1), ("a close-up photo of", 1), ("a cropped photo of", 1),
    ("a good photo of", 1), ("a clipart of", 1), ("a sketch of", 1), ("a simple picture of", 1),
)
_COLOUR_ONLY = (
    "a {} shape", "a photo of a {} shape", "a picture of something {}", "something {}", "a {} object",
    "a {} thing", "an image of a {} shape", "a shape coloured {}", "the colour {}", "{}",
)
_SHAPE_ONLY = (
    "a {}", "a photo of a {}", "a picture of a {}", "a {} shape", "an image of a {}", "the shape of a {}",
    "a drawing of a {}", "{}",
)
_PREFIX_TEXT = [p for p, _ in _PREFIXES]
_PREFIX_P = np.array([w for _, w in _PREFIXES], dtype=np.float64) / sum(w for _, w in _PREFIXES)


def _choice(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]


def caption(info: dict, rng: np.random.Generator, partial: float = 0.3, lang: str = "en") -> str:
    """A caption for an image drawn by :func:`draw`, in one of many phrasings: it names the colour and
    the shape, and sometimes size, position, background and blur; or, with probability ``partial``,
    only the shape (three times in four) or only the colour. ``lang``: "en" or "zh" (see
    :func:`caption_zh`)."""
    if lang == "zh":
        return caption_zh(info, rng, partial)
    if lang != "en":
        raise ValueError(f"lang must be 'en' or 'zh', not {lang!r}")
    colour, shape = info["colour"], info["shape"]
    r = rng.random()
    # Captions naming only the shape or only the colour teach the two separately: shape whatever the
    # colour, which held-out combinations need (colour alone is learnt quickly anyway).
    if r < partial / 4:
        return _choice(rng, _COLOUR_ONLY).format(colour)
    if r < partial:
        return _choice(rng, _SHAPE_ONLY).format(shape)
    # The exact zero-shot style ("a photo of a red circle") is common but not dominant.
    if r < partial + 0.18:
        return _choice(rng, ("a photo of a {}", "a picture of a {}", "an image of a {}", "a {}", "{}")).format(
            f"{colour} {shape}"
        )

    size_word = ""
    if info["radius"] < 0.22 and rng.random() < 0.5:
        size_word = _choice(rng, ("small", "little", "tiny"))
    elif info["radius"] > 0.36 and rng.random() < 0.5:
        size_word = _choice(rng, ("large", "big", "huge"))
    if info["blur"] > 1.0 and rng.random() < 0.3:
        size_word = ("blurry " + size_word).strip()

    r = rng.random()
    if r < 0.72:
        noun = f"{colour} {shape}"
    elif r < 0.8:
        noun = f"{colour}-coloured {shape}" if rng.random() < 0.5 else f"{colour} colored {shape}"
    elif r < 0.88:
        noun = f"{shape} that is {colour}"
    elif r < 0.94:
        noun = f"{shape} in {colour}"
    else:
        noun = f"{shape} coloured {colour}" if rng.random() < 0.5 else f"{shape} colored {colour}"
    if size_word:
        noun = f"{size_word} {noun}"

    prefix = _PREFIX_TEXT[int(rng.choice(len(_PREFIX_TEXT), p=_PREFIX_P))]
    r = rng.random()
    if r < 0.82:
        article = "a"
    elif r < 0.9:
        article = "an" if noun[0] in "aeiou" else "a"
    elif r < 0.95:
        article = "the"
    else:
        article = "one"
    text = f"{prefix} {article} {noun}".strip()

    extras = []
    if rng.random() < 0.35:
        col = min(int(info["x"] * 3), 2)
        row = min(int(info["y"] * 3), 2)
        pos = _POSITIONS[(col, row)]
        if pos == "centre":
            extras.append(_choice(rng, ("in the centre", "in the center", "in the middle")))
        elif pos in ("top", "bottom"):
            extras.append(_choice(rng, (f"at the {pos}", f"near the {pos}")))
        elif pos in ("left", "right"):
            extras.append(_choice(rng, (f"on the {pos}", f"at the {pos}")))
        else:
            extras.append(f"in the {pos}")
    if rng.random() < 0.3:
        kind, luma = info["background"], info["background_luma"]
        if kind in ("stripes", "noise", "gradient") and rng.random() < 0.6:
            word = {"stripes": "striped", "noise": "noisy", "gradient": "gradient"}[kind]
        # Background lightness in words that are not class colours, so that every colour word in a
        # caption is the shape's.
        elif luma > 0.9 and kind == "plain":
            word = _choice(rng, ("light", "bright", "plain light", "pale"))
        elif luma < 0.12 and kind == "plain":
            word = _choice(rng, ("very dark", "dark"))
        elif luma > 0.6:
            word = "light"
        elif luma < 0.35:
            word = "dark"
        else:
            word = _choice(rng, ("grey", "gray", "coloured")) if kind == "plain" else "textured"
        extras.append(f"on a {word} background")
    rng.shuffle(extras)
    if extras:
        text = " ".join([text] + extras)
    if rng.random() < 0.15:
        text += "."
    return text


_ZH_COLOUR_ONLY = ("{}的形状", "一个{}的形状", "一张{}形状的照片", "{}的东西", "一个{}的物体", "颜色是{}", "{}")
_ZH_SHAPE_ONLY = ("{}", "一个{}", "一张{}的照片", "一幅{}的图片", "一个{}的图像", "{}的图案", "一个{}图案")
# The phrasings of the zero-shot templates (the `zh` set: "一张{}的照片", ...) and a few others.
_ZH_EXACT = ("一张{}的照片", "一张{}的图片", "一幅{}的图像", "一幅{}的图片", "一个{}的图像", "{}", "一个{}")
_ZH_PREFIXES = (
    ("一张{}的照片", 8), ("一张{}的图片", 3), ("一幅{}的图像", 3), ("一幅{}的图片", 2), ("一个{}的图像", 2),
    ("{}", 4), ("一个{}", 3), ("一幅{}的画", 2),
    ("{}的插图", 1), ("这是一个{}", 2), ("有一个{}", 1), ("一张{}的特写照片", 1), ("{}的简笔画", 1), ("一张{}的图", 1),
)
_ZH_PREFIX_TEXT = [p for p, _ in _ZH_PREFIXES]
_ZH_PREFIX_P = np.array([w for _, w in _ZH_PREFIXES], dtype=np.float64) / sum(w for _, w in _ZH_PREFIXES)
_ZH_POSITIONS = {
    "top left": "在左上角", "top": "在上方", "top right": "在右上角", "left": "在左边", "centre": "在中间",
    "right": "在右边", "bottom left": "在左下角", "bottom": "在下方", "bottom right": "在右下角",
}


def caption_zh(info: dict, rng: np.random.Generator, partial: float = 0.3) -> str:
    """A Chinese caption for an image drawn by :func:`draw`: the kinds of :func:`caption` (colour and shape
    in several phrasings, sometimes size, position, background; or, with probability ``partial``, only the
    shape or only the colour), with the Chinese words of ``clipnb.models.demo_vocabulary.CHINESE``. A class is written
    colour + shape with no space ("红色圆形"). The extra colours and shapes have no Chinese word: an image
    with one is captioned by its class word alone ("星形" for a cyan star, "红色的形状" for a red heart), or
    in English when it has neither (a cyan heart)."""
    colour, shape = CHINESE.get(info["colour"]), CHINESE.get(info["shape"])
    if colour is None and shape is None:
        return caption(info, rng, partial)
    if colour is None:
        return _choice(rng, _ZH_SHAPE_ONLY).format(shape)
    if shape is None:
        return _choice(rng, _ZH_COLOUR_ONLY).format(colour)
    r = rng.random()
    if r < partial / 4:
        return _choice(rng, _ZH_COLOUR_ONLY).format(colour)
    if r < partial:
        return _choice(rng, _ZH_SHAPE_ONLY).format(shape)
    if r < partial + 0.25:
        return _choice(rng, _ZH_EXACT).format(colour + shape)

    r = rng.random()
    if r < 0.75:
        noun = colour + shape
    elif r < 0.9:
        noun = f"{colour}的{shape}"
    else:
        noun = f"颜色是{colour}的{shape}"
    size_word = ""
    if info["radius"] < 0.22 and rng.random() < 0.5:
        size_word = _choice(rng, ("小", "小的", "很小的"))
    elif info["radius"] > 0.36 and rng.random() < 0.5:
        size_word = _choice(rng, ("大", "大的", "很大的"))
    if info["blur"] > 1.0 and rng.random() < 0.3:
        size_word = "模糊的" + size_word
    text = _ZH_PREFIX_TEXT[int(rng.choice(len(_ZH_PREFIX_TEXT), p=_ZH_PREFIX_P))].format(size_word + noun)

    # at most one extra, so that captions stay within the demo's context (about 3 tokens a character)
    r = rng.random()
    if r < 0.2:
        pos = _POSITIONS[(min(int(info["x"] * 3), 2), min(int(info["y"] * 3), 2))]
        text += "，" + _ZH_POSITIONS[pos]
    elif r < 0.4:
        kind, luma = info["background"], info["background_luma"]
        if kind in ("stripes", "noise", "gradient") and rng.random() < 0.6:
            word = {"stripes": "条纹", "noise": "有噪点的", "gradient": "渐变"}[kind]
        elif luma > 0.6:  # lightness in words that are not class colours (浅色, 深色: light, dark)
            word = "浅色"
        elif luma < 0.35:
            word = "深色"
        else:
            word = "有纹理的" if kind != "plain" else "中等亮度的"
        text += f"，{word}背景"
    if rng.random() < 0.15:
        text += "。"
    return text


# ----------------------------------------------------------------------------------------------
# sampling and files


def sample(
    rng: np.random.Generator, classes: Sequence[str] = SEEN, *, style: str = "pil"
) -> tuple[Image.Image, str, str]:
    """A random class from ``classes``, an image of it and a caption: ``(image, caption, label)``."""
    label = classes[int(rng.integers(len(classes)))]
    colour, shape = split(label)
    img, info = draw(colour, shape, rng, style=style)
    return img, caption(info, rng), label


def write_folder(
    root: str | Path,
    per_class: int = 3,
    *,
    seed: int = 0,
    classes: Iterable[str] = CLASSES,
    style: str = "pil",
    fmt: str = "png",
) -> list[tuple[Path, str]]:
    """Write ``per_class`` generated images of each class to ``root/<class name>/<i>.<fmt>``.

    Deterministic given ``seed``. Returns ``[(path, label), ...]`` in class order.
    """
    root = Path(root)
    out = []
    for label in classes:
        colour, shape = split(label)
        folder = root / label
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            rng = np.random.default_rng([seed, CLASSES.index(label), i])
            img, _ = draw(colour, shape, rng, style=style)
            path = folder / f"{i:03d}.{fmt}"
            img.save(path)
            out.append((path, label))
    return out
