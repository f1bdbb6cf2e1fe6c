"""Print the demo model's zero-shot quality on freshly generated shapes.

    python scripts/demo_quality.py [--checkpoint clipnb/assets/demo.pt] [--per-class 12] [--seed 20250101]

Images are drawn with a seed other than training's, in two styles: ``pil`` (the training renderer, new
seed) and ``mask`` (a renderer training never used: signed-distance masks with soft edges, other
proportions, gradient backgrounds, other sizes). Top-1 accuracy over all 48 classes is reported
separately for seen and held-out colour-shape combinations, for the three templates ensembled two ways
(``embedding``: average of the normalised text embeddings, renormalised; ``score``: average of the
per-template cosine similarities) and for each template alone. The demo is bilingual: the same images
are classified with the English class names ("red circle") and the seed's templates, and with the Chinese
class names ("红色圆形", clipnb.models.demo_vocabulary.CLASSES_ZH) and the `zh` templates ("一张{}的照片", ...).

Targets with the ensembled templates: English >= 95% on seen and >= 85% on held-out combinations; Chinese
>= 90% over all 48 classes (held-out ones included; seen and held-out are reported separately too).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import clip  # noqa: E402
from clip.model import build_model  # noqa: E402

from clipnb.demo import shapes  # noqa: E402

TEMPLATES = ("a photo of a {}", "a picture of a {}", "an image of a {}")
ZH_FALLBACK = ("一张{}的照片", "一张{}的图片", "一幅{}的图像")
DEFAULT_CHECKPOINT = ROOT / "clipnb" / "assets" / "demo.pt"
TARGET_SEEN, TARGET_HELD_OUT = 0.95, 0.85
TARGET_ZH = 0.90


def zh_templates() -> tuple[str, ...]:
    """clipnb's `zh` template set (the seed's three templates in Chinese), or the same three if it is absent."""
    try:
        from clipnb.zeroshot.prompts import TEMPLATE_SETS
    except ImportError:
        return ZH_FALLBACK
    return tuple(TEMPLATE_SETS.get("zh") or ZH_FALLBACK)


# language -> (class names, held-out class names, templates); class names follow shapes.CLASSES position by position
LANGUAGES = {
    "en": (shapes.CLASSES, shapes.HELD_OUT, TEMPLATES),
    "zh": (shapes.CLASSES_ZH, shapes.HELD_OUT_ZH, None),  # templates: zh_templates(), read when used
}


def language(lang: str) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    classes, held_out, templates = LANGUAGES[lang]
    return classes, held_out, templates or zh_templates()


def load(path: str | Path = DEFAULT_CHECKPOINT) -> torch.nn.Module:
    """The demo model from a plain state dict, as clip.model.build_model rebuilds it, in float32."""
    return build_model(torch.load(path, map_location="cpu", weights_only=True)).float().eval()


def generate(per_class: int, seed: int, style: str) -> tuple[list, list[str]]:
    """``per_class`` fresh images of each of the 48 classes: ``(images, labels)``."""
    images, labels = [], []
    for ci, label in enumerate(shapes.CLASSES):
        colour, shape = shapes.split(label)
        for i in range(per_class):
            rng = np.random.default_rng([seed, shapes.STYLES.index(style), ci, i])
            img, _ = shapes.draw(colour, shape, rng, style=style)
            images.append(img)
            labels.append(label)
    return images, labels


@torch.no_grad()
def image_features(model, images, batch_size: int = 256) -> torch.Tensor:
    from clip.clip import _transform

    pre = _transform(model.visual.input_resolution)
    out = []
    for i in range(0, len(images), batch_size):
        x = torch.stack([pre(im) for im in images[i:i + batch_size]])
        out.append(model.encode_image(x).float())
    return torch.nn.functional.normalize(torch.cat(out), dim=-1)


@torch.no_grad()
def text_features(model, classes, templates=TEMPLATES) -> torch.Tensor:
    """Normalised text embeddings, shape (templates, classes, dim)."""
    ctx = model.positional_embedding.shape[0]
    feats = []
    for t in templates:
        tokens = clip.tokenize([t.format(c) for c in classes], context_length=ctx)
        feats.append(torch.nn.functional.normalize(model.encode_text(tokens).float(), dim=-1))
    return torch.stack(feats)


def scores(img: torch.Tensor, txt: torch.Tensor, method: str) -> torch.Tensor:
    """(images, classes) cosine scores. ``method``: "embedding", "score" or a template index."""
    if method == "embedding":
        return img @ torch.nn.functional.normalize(txt.mean(0), dim=-1).t()
    if method == "score":
        return torch.einsum("nd,tcd->tnc", img, txt).mean(0)
    return img @ txt[int(method)].t()


def accuracy(score: torch.Tensor, labels: list[str], classes=shapes.CLASSES, held_out=shapes.HELD_OUT
             ) -> dict[str, float]:
    """Top-1 accuracy over all classes, separately on seen and held-out combinations."""
    pred = score.argmax(1).tolist()
    right = np.array([classes[p] == y for p, y in zip(pred, labels)])
    held = np.array([y in held_out for y in labels])
    return {"seen": float(right[~held].mean()), "held_out": float(right[held].mean()), "all": float(right.mean())}


def evaluate(model, per_class: int = 12, seed: int = 20250101, styles=shapes.STYLES, lang: str = "en") -> dict:
    """``{style: {method: {"seen": acc, "held_out": acc, "all": acc}}}`` for the ensembles and each template,
    with the class names and templates of ``lang`` ("en" or "zh")."""
    classes, held_out, templates = language(lang)
    txt = text_features(model, classes, templates)
    out = {}
    for style in styles:
        images, labels = generate(per_class, seed, style)
        labels = [classes[shapes.CLASSES.index(y)] for y in labels]
        img = image_features(model, images)
        methods = ["embedding", "score"] + [str(i) for i in range(len(templates))]
        out[style] = {m: accuracy(scores(img, txt, m), labels, classes, held_out) for m in methods}
    return out


def table(results: dict, templates=TEMPLATES) -> str:
    styles = list(results)
    names = {"embedding": "3 templates, embedding mean", "score": "3 templates, score mean"}
    names.update({str(i): f'"{t}"' for i, t in enumerate(templates)})
    head = f"{'method':32s}" + "".join(f"{s + ' seen':>12s}{s + ' held-out':>16s}" for s in styles)
    lines = [head, "-" * len(head)]
    for m in results[styles[0]]:
        row = f"{names[m]:32s}"
        for s in styles:
            r = results[s][m]
            row += f"{100 * r['seen']:11.1f}%{100 * r['held_out']:15.1f}%"
        lines.append(row)
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT))
    ap.add_argument("--per-class", type=int, default=12)
    ap.add_argument("--seed", type=int, default=20250101, help="image seed (training uses others)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--lang", nargs="+", default=["en", "zh"], choices=sorted(LANGUAGES),
                    help="class names and templates in these languages (default: both)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    model = load(args.checkpoint)
    n_seen, n_held = len(shapes.SEEN) * args.per_class, len(shapes.HELD_OUT) * args.per_class
    print(f"demo model {args.checkpoint}: zero-shot top-1 over {len(shapes.CLASSES)} classes, "
          f"{n_seen} seen + {n_held} held-out images per style, seed {args.seed}")
    ok = True
    for lang in args.lang:
        classes, held_out, templates = language(lang)
        results = evaluate(model, args.per_class, args.seed, lang=lang)
        print(f"\n[{lang}] classes such as {classes[0]!r}; held-out combinations: {', '.join(held_out)}")
        print(table(results, templates))
        ensembles = [results[s][m] for s in results for m in ("embedding", "score")]
        if lang == "en":
            met = all(r["seen"] >= TARGET_SEEN and r["held_out"] >= TARGET_HELD_OUT for r in ensembles)
            goal = f"seen >= {TARGET_SEEN:.0%}, held-out >= {TARGET_HELD_OUT:.0%}"
        else:
            met = all(r["all"] >= TARGET_ZH for r in ensembles)
            goal = f"all 48 classes >= {TARGET_ZH:.0%}"
            for s in results:
                print(f"{s}: all classes {100 * results[s]['embedding']['all']:.1f}% (embedding), "
                      f"{100 * results[s]['score']['all']:.1f}% (score)")
        print(f"[{lang}] targets (ensembles: {goal}): {'met' if met else 'NOT met'}")
        ok = ok and met
    print(f"[{time.perf_counter() - t0:.0f}s]")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
