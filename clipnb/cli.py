"""Command line: `python -m clipnb classify|similarity|cache ...`.

Exit code 0 when a run completed (unreadable files are rows in the CSV, not failures); 2 with one line
saying why for fatal problems (no model, no images, bad classes or templates). Classes that make the
answer meaningless (one class; classes the demo model cannot know) print one "clipnb: warning:" line each.
"""
from __future__ import annotations

import argparse
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path

from .cache import EmbeddingCache
from .embedding import CPU_BATCH, CUDA_BATCH, DRAFT_FACTOR
from .export import ExportError
from .schema import setting
from .images import FolderError, ImageReadError
from .models import DEFAULT_MODEL, ModelError
from .prompts import DEFAULT_TEMPLATES, ENSEMBLE_METHODS, TEMPLATE_SETS, PromptError
from .scoring import ClassWarning

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
    parser.add_argument("--batch-size", type=_positive, default=None,
                        help=f"images per forward pass (default: {CPU_BATCH} per stream on the CPU, {CUDA_BATCH} on CUDA)")
    parser.add_argument("--workers", type=int, default=None,
                        help="decoding worker processes beside the model (default: none on the CPU, where one stream "
                             "per core decodes a batch and then encodes it; every core but one on CUDA)")
    parser.add_argument("--exact", action="store_true",
                        help="decode every image at full size, so pixels equal openai-clip's own preprocessing "
                             "(default: large JPEGs are decoded at a reduced scale that keeps both sides at least "
                             f"{DRAFT_FACTOR}x the model's input size)")
    parser.add_argument("--background", type=_colour, default=None,
                        help="composite transparent images onto this colour (default: drop alpha, as openai-clip)")
    parser.add_argument("--no-cache", action="store_true", help="neither read nor write the embedding cache")
    parser.add_argument("--cache-dir", default=None, help="embedding cache folder (default ~/.cache/clipnb)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


ENSEMBLE_HELP = ("how the templates of a class are combined: embedding averages their text embeddings (the CLIP "
                 "paper's way), score averages the per-template scores (default embedding)")
TEMPLATES_HELP = (f"a template set ({', '.join(TEMPLATE_SETS)}; {DEFAULT_TEMPLATES}: 'a photo of a {{}}', "
                  f"'a picture of a {{}}', 'an image of a {{}}'), a file with one template per line, or one "
                  f"template with {{}} (default {DEFAULT_TEMPLATES})")


def cache_from(args) -> EmbeddingCache | None:
    return None if args.no_cache else EmbeddingCache(args.cache_dir)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m clipnb", description="Zero-shot image analysis with CLIP.")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("classify", help="classify a folder of images zero-shot and write a CSV")
    run.add_argument("folder", help="a folder of images (or one image file)")
    run.add_argument("--classes", nargs="+", required=True, help="class names, for example cat dog car tree book")
    run.add_argument("--templates", default=DEFAULT_TEMPLATES, help=TEMPLATES_HELP)
    run.add_argument("--ensemble", choices=ENSEMBLE_METHODS, default="embedding", help=ENSEMBLE_HELP)
    run.add_argument("--recursive", action="store_true",
                     help="also take the images in subfolders (default: only those in the folder itself)")
    run.add_argument("--csv", default="clipnb_results.csv", help="where to write the per-image table")
    run.add_argument("--bom", action="store_true", help="write a UTF-8 byte-order mark (for Excel)")
    run.add_argument("--truncate", action="store_true", help="cut prompts longer than the model's context")
    add_model_options(run)
    add_embedding_options(run)

    sim = commands.add_parser("similarity", help="probabilities of free texts for one image")
    sim.add_argument("image", help="one image file (to classify a folder, use the classify command)")
    sim.add_argument("--texts", nargs="+", required=True)
    sim.add_argument("--truncate", action="store_true")
    add_model_options(sim)

    cache = commands.add_parser("cache", help="show the embedding cache's size, or clear it")
    cache.add_argument("action", choices=["info", "clear"], nargs="?", default="info")
    cache.add_argument("--cache-dir", default=None)
    add_task_parsers(commands)
    return parser


def main(argv=None) -> int:
    for stream in (sys.stdout, sys.stderr):  # a file name the console cannot encode must not end a run
        if getattr(stream, "errors", None) == "strict" and hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    args = build_parser().parse_args(argv)
    try:
        with _class_warnings_as_lines():
            return COMMANDS[args.command](args)
    except FATAL as exc:
        print(f"clipnb: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("clipnb: interrupted; embeddings computed so far are cached", file=sys.stderr)
        return 130


@contextmanager
def _class_warnings_as_lines():
    """Print each ClassWarning once, as one "clipnb: warning: ..." line on stderr (evaluate builds a head per
    template set and ensembling method: the same warning would come many times); other warnings as usual."""
    shown = set()
    with warnings.catch_warnings():  # restores the filters and showwarning afterwards
        warnings.simplefilter("always", ClassWarning)
        original = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):
            if not issubclass(category, ClassWarning):
                return original(message, category, filename, lineno, file, line)
            if str(message) not in shown:
                shown.add(str(message))
                print(f"clipnb: warning: {message}", file=sys.stderr)

        warnings.showwarning = show
        yield


def _say_folder(folder, recursive: bool, to_stderr: bool = False) -> None:
    """Which images of a folder the run takes, in the command line's words (see images.folder_note)."""
    from .images import folder_note

    if Path(folder).is_dir():
        print(folder_note(folder, recursive, option="--recursive"), file=sys.stderr if to_stderr else sys.stdout)


def run_classify(args) -> int:
    from .classify import classify
    from .images import gather_images
    from .export import check_output_file, write_csv
    from .models import load_model
    from .prompts import prompt_spec
    from .summary import plural, summary_text

    # everything that can be checked without the model is checked first
    check_output_file(args.csv)
    spec = prompt_spec(args.classes, args.templates, args.ensemble)
    items = gather_images(args.folder, recursive=args.recursive)
    _say_folder(args.folder, args.recursive)
    model = load_model(args.model, device=args.device, download_root=args.download_root)
    results = classify(items, spec, model=model, batch_size=args.batch_size, exact=args.exact, cache=cache_from(args),
                       truncate=args.truncate, background=args.background, num_workers=args.workers,
                       progress=not args.quiet)
    print(f"model {model.name}, {plural(len(spec.classes), 'class')} x {plural(len(spec.templates), 'template')}, "
          f"ensemble {args.ensemble}")
    print(summary_text(results))
    path = write_csv(results, args.csv, bom=args.bom)
    print(f"wrote {path}")
    return 0


def run_similarity(args) -> int:
    from .classify import check_image_file, similarity
    from .models import load_model

    check_image_file(args.image, classify_hint=f"`python -m clipnb classify {args.image} --classes ...`")
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


# ---- evaluation against labels, search, video and few-shot probes ---------------------------------
from .labels import LabelError  # noqa: E402
from .probe import ProbeError  # noqa: E402
from .video import VideoError  # noqa: E402

FATAL = FATAL + (LabelError, ProbeError, VideoError)


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, not {text}")
    return value


def add_task_parsers(commands) -> None:
    templates_help = (f"template sets ({', '.join(TEMPLATE_SETS)}), template files or single templates with {{}}; "
                      f"the first is evaluated, all are compared (default {DEFAULT_TEMPLATES})")
    ev = commands.add_parser("evaluate", help="accuracy of zero-shot predictions against known labels")
    ev.add_argument("folder", help="labelled images: FOLDER/<class>/image.jpg, or any images with --labels")
    ev.add_argument("--labels", default=None, help="a CSV of path,label (paths relative to FOLDER)")
    ev.add_argument("--classes", nargs="+", default=None, help="class names (default: the labels)")
    ev.add_argument("--templates", nargs="+", default=[DEFAULT_TEMPLATES], help=templates_help)
    ev.add_argument("--ensemble", choices=ENSEMBLE_METHODS, default="embedding", help=ENSEMBLE_HELP)
    ev.add_argument("--out", default="clipnb_evaluation", help="folder for metrics.json, CSVs and figures")
    ev.add_argument("--mistakes", type=int, default=12, help="confident mistakes to show (default 12)")
    ev.add_argument("--no-figures", action="store_true", help="write the tables only")
    ev.add_argument("--bom", action="store_true", help="write CSVs with a UTF-8 byte-order mark (for Excel)")
    ev.add_argument("--truncate", action="store_true", help="cut prompts longer than the model's context")
    add_model_options(ev)
    add_embedding_options(ev)

    se = commands.add_parser("search", help="rank a folder's images by a text (or by a similar image)")
    se.add_argument("folder", help="a folder of images (embeddings are cached, so searching again is fast)")
    query = se.add_mutually_exclusive_group(required=True)
    query.add_argument("--text", help="what to look for, for example 'a red circle'")
    query.add_argument("--image", help="find the images most similar to this one")
    se.add_argument("--top", type=_positive, default=10, help="how many hits to print (default 10)")
    se.add_argument("--recursive", action="store_true",
                    help="also search the images in subfolders (default: only those in the folder itself)")
    se.add_argument("--csv", default=None, help="also write the hits (rank, path, score) to this CSV")
    se.add_argument("--truncate", action="store_true", help="cut a text longer than the model's context")
    add_model_options(se)
    add_embedding_options(se)

    vi = commands.add_parser("video", help="classify a video zero-shot from its sampled frames")
    vi.add_argument("file", help="a video file (anything FFmpeg reads: mp4, mov, mkv, webm, avi, ...)")
    vi.add_argument("--classes", nargs="+", required=True, help="class names")
    vi.add_argument("--templates", default=DEFAULT_TEMPLATES, help=TEMPLATES_HELP)
    vi.add_argument("--ensemble", choices=ENSEMBLE_METHODS, default="embedding", help=ENSEMBLE_HELP)
    every = vi.add_mutually_exclusive_group()
    every.add_argument("--every-seconds", type=_positive_float, default=None,
                       help="sample one frame every this many seconds (default 1)")
    every.add_argument("--every-frames", type=_positive, default=None, help="sample every n-th frame instead")
    vi.add_argument("--max-frames", type=_positive, default=None, help="stop after this many samples")
    vi.add_argument("--top", type=_positive, default=5, help="classes to print (default 5)")
    vi.add_argument("--out", default=None, help="folder for summary.csv, timeline.csv and timeline.png")
    vi.add_argument("--truncate", action="store_true")
    vi.add_argument("--batch-size", type=_positive, default=None)
    vi.add_argument("--quiet", action="store_true", help="no progress bars")
    add_model_options(vi)

    pr = commands.add_parser("probe", help="few-shot linear probe vs zero-shot on a labelled folder")
    pr.add_argument("folder", help="labelled images: FOLDER/<class>/image.jpg, or any images with --labels")
    pr.add_argument("--labels", default=None, help="a CSV of path,label (paths relative to FOLDER)")
    pr.add_argument("--classes", nargs="+", default=None, help="class names (default: the labels)")
    pr.add_argument("--templates", default=DEFAULT_TEMPLATES,
                    help=f"templates of the zero-shot comparison: {TEMPLATES_HELP}")
    pr.add_argument("--shots", nargs="+", type=_positive, default=[1, 2, 4, 8, 16])
    pr.add_argument("--trials", type=_positive, default=5, help="random training sets per shot count (default 5)")
    pr.add_argument("--test-fraction", type=_positive_float, default=0.5,
                    help="share of each class kept for testing (default 0.5)")
    pr.add_argument("--seed", type=int, default=0)
    pr.add_argument("--out", default=None, help="folder for curve.csv, summary.csv and shots.png")
    add_model_options(pr)
    add_embedding_options(pr)


def _embed_labelled_folder(args):
    """Check the labelled folder against the classes, then load the model and embed it (evaluate, probe)."""
    from .labels import check_folder, embed_labelled, match_classes, read_labels
    from .models import load_model

    match_classes(read_labels(check_folder(args.folder), args.labels)["label"], args.classes)
    model = load_model(args.model, device=args.device, download_root=args.download_root)
    cache = cache_from(args)
    labelled = embed_labelled(model, args.folder, args.labels, args.classes, cache=cache,
                              batch_size=args.batch_size, exact=args.exact, num_workers=args.workers,
                              progress=not args.quiet)
    return model, cache, labelled


def run_evaluate(args) -> int:
    from .compare import score_settings
    from .evaluate import evaluate_labelled
    from .report import write_evaluation
    from .prompts import template_sets

    # templates, folder, labels and classes are checked before the model is loaded
    sets = template_sets(args.templates)
    model, cache, labelled = _embed_labelled_folder(args)
    first = next(iter(sets))
    evaluation = evaluate_labelled(labelled, model, sets[first], args.ensemble, truncate=args.truncate, cache=cache)
    comparison = score_settings(model, labelled, template_sets=sets, truncate=args.truncate, cache=cache).accuracy_table()
    print(f"model {model.name}, templates {first} ({len(sets[first])}), ensemble {args.ensemble}")
    print(evaluation.headline())
    print(comparison.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    written = write_evaluation(evaluation, args.out, comparison, figures=not args.no_figures,
                               mistakes=args.mistakes, bom=args.bom)
    print(f"wrote {len(written)} files to {args.out}")
    return 0


def run_search(args) -> int:
    from .export import check_output_file, write_csv
    from .models import load_model
    from .search import index_images, search_image, search_text

    if args.csv:
        check_output_file(args.csv)
    if args.image and not Path(args.image).is_file():
        kind = "is a folder; give one image file" if Path(args.image).is_dir() else "does not exist"
        raise FileNotFoundError(f"query image {args.image} {kind}")
    if args.text is not None and not args.text.strip():
        raise PromptError("the search text is blank; give words to search for, such as 'a red circle'")
    from .images import gather_images

    items = gather_images(args.folder, recursive=args.recursive)
    _say_folder(args.folder, args.recursive, to_stderr=True)  # stdout holds only the hits
    model = load_model(args.model, device=args.device, download_root=args.download_root)
    cache = cache_from(args)
    index = index_images(model, items, cache=cache, batch_size=args.batch_size, exact=args.exact,
                         num_workers=args.workers, progress=not args.quiet)
    if len(index.skipped):
        print(f"clipnb: skipped {len(index.skipped)} unreadable files (first: {index.skipped['path'][0]}: "
              f"{index.skipped['error'][0]})", file=sys.stderr)
    if args.text is not None:
        hits = search_text(index, model, args.text, top=args.top, truncate=args.truncate, cache=cache)
    else:
        hits = search_image(index, model, args.image, top=args.top, cache=cache)
    for score, path in zip(hits["score"], hits["path"]):
        print(f"{score:.4f}  {path}")
    if args.csv:
        print(f"wrote {write_csv(hits, args.csv)}", file=sys.stderr)
    return 0


def run_video(args) -> int:
    from .models import load_model
    from .prompts import prompt_spec
    from .scoring import build_head
    from .video import classify_video, embed_video, video_info

    spec = prompt_spec(args.classes, args.templates, args.ensemble)
    info = video_info(args.file)  # a bad file fails before the model loads
    every_seconds = None if args.every_frames else (args.every_seconds or 1.0)
    model = load_model(args.model, device=args.device, download_root=args.download_root)
    head = build_head(model, spec, truncate=args.truncate)
    frames = embed_video(model, args.file, every_seconds, args.every_frames, max_frames=args.max_frames,
                         batch_size=args.batch_size, thumbnails=args.out is not None, progress=not args.quiet)
    result = classify_video(frames, head)
    length = f"{info['duration']:.1f} s" if info["duration"] else "unknown length"
    rate = f"{info['fps']:.3g} fps" if info["fps"] else "unknown frame rate"
    step = f"every {args.every_frames} frames" if args.every_frames else f"every {every_seconds:g} s"
    damaged = frames.info.get("damaged_packets", 0)
    print(f"video {args.file}: {length}, {rate}, {info['width']}x{info['height']}; {len(frames)} frames sampled "
          f"{step}" + (f"; {damaged} damaged packets skipped" if damaged else ""))
    print(f"prediction (mean of frame embeddings): {result.prediction} ({result.confidence:.1%})")
    top = result.summary.head(args.top)
    for name, probability, won in zip(top["class"], top["probability"], top["frames_won"]):
        print(f"  {name:<24} {probability:.4f}  (won {won} of {len(frames)} frames)")
    print("timeline:")
    for seg in result.segments().itertuples():
        print(f"  {seg.start:7.1f}s - {seg.end:7.1f}s  {seg.prediction} ({seg.frames} frames, "
              f"mean confidence {seg.mean_confidence:.2f})")
    if args.out:
        from .report import write_video_report

        out = Path(args.out)
        write_video_report(result, out, title=Path(args.file).name, segments=False)
        print(f"wrote summary.csv, timeline.csv and timeline.png to {out}")
    return 0


def run_probe(args) -> int:
    from .probe import curve_summary, probe_labelled
    from .prompts import resolve_templates

    templates = resolve_templates(args.templates)
    model, cache, labelled = _embed_labelled_folder(args)
    curve = probe_labelled(labelled, model, templates=templates, shots=args.shots, trials=args.trials,
                           test_fraction=args.test_fraction, seed=args.seed, cache=cache)
    summary = curve_summary(curve)
    skipped = setting(curve, "skipped_shots")
    print(f"model {model.name}, {setting(curve, 'class_count')} classes, {curve['test_images'].iloc[0]} test images, "
          f"{args.trials} trials; chance {setting(curve, 'chance'):.3f}")
    if skipped:
        print(f"skipped shots {skipped}: some class has too few training images")
    print(summary.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if args.out:
        from .report import write_probe_report

        out = Path(args.out)
        write_probe_report(curve, out, summary=summary)
        print(f"wrote curve.csv, summary.csv and shots.png to {out}")
    return 0


COMMANDS.update({"evaluate": run_evaluate, "search": run_search, "video": run_video, "probe": run_probe})
