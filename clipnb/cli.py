"""Command line: `python -m clipnb classify|similarity|cache ...`.

Exit code 0 when a run completed (unreadable files are rows in the CSV, not failures); 2 with one line
saying why for fatal problems (no model, no images, bad classes or templates).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .cache import EmbeddingCache
from .embedding import DRAFT_FACTOR
from .export import ExportError
from .images import FolderError, ImageReadError
from .models import DEFAULT_MODEL, ModelError
from .prompts import ENSEMBLE_METHODS, TEMPLATE_SETS, PromptError

FATAL = (ModelError, PromptError, FolderError, ImageReadError, ExportError, FileNotFoundError)


def _colour(text: str) -> tuple[int, int, int]:
    from PIL import ImageColor

    try:
        return ImageColor.getrgb(text)[:3]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a colour: {text!r} (use a name such as white or #ffffff)") from None


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=DEFAULT_MODEL,
                        help=f"official name (ViT-B/32, RN50, ...), a checkpoint file, or demo (default {DEFAULT_MODEL})")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    parser.add_argument("--download-root", default=None, help="where official weights are cached (~/.cache/clip)")


def add_embedding_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--batch-size", type=_positive, default=32)
    parser.add_argument("--workers", type=int, default=None, help="decoding worker processes (default: automatic)")
    parser.add_argument("--exact", action="store_true",
                        help="decode every image at full size, so pixels equal openai-clip's own preprocessing "
                             f"(default: large JPEGs are decoded at reduced scale, at least {DRAFT_FACTOR}x "
                             "the model's input size)")
    parser.add_argument("--background", type=_colour, default=None,
                        help="composite transparent images onto this colour (default: drop alpha, as openai-clip)")
    parser.add_argument("--no-cache", action="store_true", help="neither read nor write the embedding cache")
    parser.add_argument("--cache-dir", default=None, help="embedding cache folder (default ~/.cache/clipnb)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def cache_from(args) -> EmbeddingCache | None:
    return None if args.no_cache else EmbeddingCache(args.cache_dir)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m clipnb", description="Zero-shot image analysis with CLIP.")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("classify", help="classify a folder of images zero-shot and write a CSV")
    run.add_argument("folder", help="a folder of images (or one image file)")
    run.add_argument("--classes", nargs="+", required=True, help="class names, for example cat dog car tree book")
    run.add_argument("--templates", default="seed",
                     help=f"{'|'.join(TEMPLATE_SETS)} or a file with one template per line (default seed)")
    run.add_argument("--ensemble", choices=ENSEMBLE_METHODS, default="embedding")
    run.add_argument("--recursive", action="store_true", help="also look in subfolders")
    run.add_argument("--csv", default="clipnb_results.csv", help="where to write the per-image table")
    run.add_argument("--bom", action="store_true", help="write a UTF-8 byte-order mark (for Excel)")
    run.add_argument("--truncate", action="store_true", help="cut prompts longer than the model's context")
    add_model_options(run)
    add_embedding_options(run)

    sim = commands.add_parser("similarity", help="probabilities of free texts for one image")
    sim.add_argument("image")
    sim.add_argument("--texts", nargs="+", required=True)
    sim.add_argument("--truncate", action="store_true")
    add_model_options(sim)

    cache = commands.add_parser("cache", help="show the embedding cache's size, or clear it")
    cache.add_argument("action", choices=["info", "clear"], nargs="?", default="info")
    cache.add_argument("--cache-dir", default=None)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except FATAL as exc:
        print(f"clipnb: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("clipnb: interrupted; embeddings computed so far are cached", file=sys.stderr)
        return 130


def run_classify(args) -> int:
    from .classify import classify, gather_images
    from .export import write_csv
    from .models import load_model
    from .prompts import check_classes, check_ensemble, resolve_templates
    from .summary import summary_text

    # everything that can be checked without the model is checked first
    classes = check_classes(args.classes)
    templates = resolve_templates(args.templates)
    check_ensemble(args.ensemble)
    items = gather_images(args.folder, recursive=args.recursive)
    model = load_model(args.model, device=args.device, download_root=args.download_root)
    results = classify(items, classes, templates, model=model, ensemble=args.ensemble,
                       batch_size=args.batch_size, exact=args.exact, cache=cache_from(args),
                       truncate=args.truncate, background=args.background, num_workers=args.workers,
                       progress=not args.quiet)
    print(f"model {model.name}, {len(classes)} classes x {len(templates)} templates, "
          f"ensemble {args.ensemble}")
    print(summary_text(results))
    path = write_csv(results, args.csv, bom=args.bom)
    print(f"wrote {path}")
    return 0


def run_similarity(args) -> int:
    from .classify import similarity
    from .models import load_model

    if not Path(args.image).is_file():
        raise FileNotFoundError(f"image {args.image} does not exist")
    model = load_model(args.model, device=args.device, download_root=args.download_root)
    probs = similarity(args.image, args.texts, model=model, truncate=args.truncate)
    width = max(len(t) for t in args.texts)
    for text, prob in probs.items():
        print(f"{text:<{width}}  {prob:.4f}")
    return 0


def run_cache(args) -> int:
    cache = EmbeddingCache(args.cache_dir)
    if args.action == "clear":
        before = cache.info()
        cache.clear()
        print(f"cleared {before['path']} ({before['bytes'] / 1e6:.1f} MB, {before['images']} images, "
              f"{before['texts']} texts)")
    else:
        info = cache.info()
        print(f"{info['path']}: {info['bytes'] / 1e6:.1f} MB, {info['images']} image and {info['texts']} text "
              f"embeddings, {info['models']} models")
    return 0


COMMANDS = {"classify": run_classify, "similarity": run_similarity, "cache": run_cache}
