"""Command line: `python -m clipnb classify|similarity|cache|evaluate|search|duplicates|video|probe ...`.

Exit code 0 when a run completed (unreadable files are rows in the CSV, not failures); 2 with one line
saying why for fatal problems (no model, no images, bad classes or templates: the errors in `FATAL`); 130
when interrupted. Classes that make the answer meaningless (one class; classes the demo model cannot know)
print one "clipnb: warning:" line each.

Layout: the option groups several commands share (model, embedding, prompts, outputs), then one function per
command that declares its own arguments and one that runs it, and `COMMANDS`, the table that joins them.

Imports: each function imports the modules it needs when it runs (torch, pandas and transformers take
seconds to import), and the parser gets only the options of the command being run, so `--help` imports
none of them and each command only what it uses.
"""
from __future__ import annotations

import argparse
import itertools
import math
import sys
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable

from .zeroshot.prompts import (DEFAULT_TEMPLATES, ENSEMBLE_METHODS, TEMPLATE_SETS, PromptError, PromptSpec, prompt_spec,
                      resolve_templates, template_sets)

if TYPE_CHECKING:
    from .data.cache import EmbeddingCache
    from .models.loading import ClipModel

# The problems that end a run with one "clipnb: error: ..." line and exit code 2 (see main), named by module,
# since a module that was not imported raised none of them.
FATAL = ("clipnb.models.loading.ModelError", "clipnb.data.classes.PromptError", "clipnb.data.images.FolderError",
         "clipnb.data.images.ImageReadError", "clipnb.data.files.ExportError", "builtins.FileNotFoundError",
         "clipnb.data.labels.LabelError", "clipnb.tasks.few_shot.ProbeError", "clipnb.data.video.VideoError", "builtins.ConnectionError",
         "clipnb.data.cache.CacheError")


def is_fatal(exc: BaseException) -> bool:
    """Whether an exception is one of FATAL (or a subclass of one)."""
    return any(f"{kind.__module__}.{kind.__qualname__}" in FATAL for kind in type(exc).__mro__)


# ---- argument types ------------------------------------------------------------------------------------

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


def _cosine(text: str) -> float:
    from .tasks.duplicates import check_threshold

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r} (a cosine such as 0.96)") from None
    try:
        return check_threshold(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive_float(text: str) -> float:
    value = float(text)
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a finite number above 0, not {text}")
    return value


def _temperature(text: str) -> float:
    from .zeroshot.calibration import check_temperature

    try:
        return check_temperature(float(text))
    except ValueError as exc:
        message = str(exc) if "temperature" in str(exc) else f"not a number: {text!r}"
        raise argparse.ArgumentTypeError(message) from None


def _seed(text: str) -> int:
    from .tasks.few_shot import check_seed

    try:
        return check_seed(int(text))
    except ValueError:  # ProbeError too
        raise argparse.ArgumentTypeError(f"must be a whole number of 0 or more, not {text!r}") from None


# ---- option groups shared by several commands ----------------------------------------------------------

ENSEMBLE_HELP = ("how the templates of a class are combined: embedding averages their text embeddings (the CLIP "
                 "paper's way), score averages the per-template scores (default embedding)")
TEMPLATES_HELP = (f"a template set ({', '.join(TEMPLATE_SETS)}; {DEFAULT_TEMPLATES}: 'a photo of a {{}}', "
                  f"'a picture of a {{}}', 'an image of a {{}}'; zh: the same in Chinese, '一张{{}}的照片', ...; "
                  f"zh_photo: {len(TEMPLATE_SETS['zh_photo'])} Chinese photo templates), a file with one template "
                  f"per line, or one template with {{}} (default {DEFAULT_TEMPLATES})")
MANY_TEMPLATES_HELP = (f"template sets ({', '.join(TEMPLATE_SETS)}), template files or single templates with {{}}; "
                       f"the first is evaluated, all are compared (default {DEFAULT_TEMPLATES})")
TRUNCATE_HELP = "cut prompts longer than the model's context"


def model_options(parser: argparse.ArgumentParser, *, many: bool = False) -> None:
    """--model, --pretrained, --device, --download-root: which model to load, and where (see load_model_from).
    With `many`, --model may be given several times (to compare models)."""
    from .models.loading import DEFAULT_MODEL

    MODEL_HELP = (f"the model: an openai-clip name (ViT-B/32, RN50, ...), a checkpoint file, demo, open_clip:ARCH, "
                  f"hf:ID_OR_FOLDER or cn_clip:NAME; SPEC,PRETRAINED gives the weights in the same word "
                  f"(`python -m clipnb models` lists them; default {DEFAULT_MODEL})")
    if many:
        parser.add_argument("--model", action="append", default=None,
                            help=MODEL_HELP + "; give --model several times to compare models")
    else:
        parser.add_argument("--model", default=DEFAULT_MODEL, help=MODEL_HELP)
    parser.add_argument("--pretrained", default=None,
                        help="the weights for open_clip:ARCH (a tag such as laion2b_s34b_b79k, or a file) or "
                             "cn_clip:NAME (a checkpoint file; default: the official download)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    parser.add_argument("--download-root", default=None,
                        help="where downloaded weights are kept (default: each family's usual place, "
                             "~/.cache/clip or ~/.cache/huggingface)")


def batch_options(parser: argparse.ArgumentParser) -> None:
    """--batch-size and --quiet: how images go through the model (all that the video command takes)."""
    from .embed.pipeline import CPU_BATCH, CUDA_BATCH

    parser.add_argument("--batch-size", type=_positive, default=None,
                        help=f"images per forward pass (default: {CPU_BATCH} per stream on the CPU, {CUDA_BATCH} on CUDA)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def embedding_options(parser: argparse.ArgumentParser) -> None:
    """The batch options, decoding (--workers, --exact, --background) and the embedding cache (see cache_from)."""
    from .embed.pipeline import DRAFT_FACTOR

    batch_options(parser)
    parser.add_argument("--workers", type=int, default=None,
                        help="decoding worker processes beside the model (default: none on the CPU, where one stream "
                             "per core decodes a batch and then encodes it; every core but one on CUDA)")
    parser.add_argument("--exact", action="store_true",
                        help="decode every image at full size, so pixels equal the model's own preprocessing "
                             "(default: large JPEGs are decoded at a reduced scale that keeps both sides at least "
                             f"{DRAFT_FACTOR}x the model's input size)")
    parser.add_argument("--background", type=_colour, default=None,
                        help="composite transparent images onto this colour (default: drop alpha, as openai-clip)")
    parser.add_argument("--no-cache", action="store_true", help="neither read nor write the embedding cache")
    parser.add_argument("--cache-dir", default=None, help="embedding cache folder (default ~/.cache/clipnb)")
    cluster = parser.add_mutually_exclusive_group()
    cluster.add_argument("--scheduler", default=None, metavar="ADDRESS",
                         help="embed on a running Dask cluster, given its scheduler's address (tcp://host:8786); "
                              "the results are the same as on this machine")
    cluster.add_argument("--dask-workers", type=_positive, default=None, metavar="N",
                         help="start a Dask cluster of N worker processes on this machine for this run")
    parser.add_argument("--store", default=None,
                        help="with --scheduler or --dask-workers: a folder or URL every worker reaches, where "
                             "finished shards are kept as Parquet so that a rerun skips them (default: store/ "
                             "in the cache folder)")


def prompt_options(parser: argparse.ArgumentParser, *, classes_from_labels: bool = False,
                   many_templates: bool = False, templates_help: str = TEMPLATES_HELP, ensemble: bool = True,
                   truncate: bool = True) -> None:
    """--classes, --templates, --ensemble and --truncate: what the zero-shot head is built from (see spec_from).

    Args:
        classes_from_labels: --classes is optional and defaults to the labels of a labelled folder.
        many_templates: --templates takes several sets (the first is evaluated, all are compared).
        templates_help: the help text of --templates.
        ensemble, truncate: whether the command takes --ensemble and --truncate.
    """
    if classes_from_labels:
        parser.add_argument("--classes", nargs="+", default=None, help="class names (default: the labels)")
    else:
        parser.add_argument("--classes", nargs="+", required=True,
                            help="class names, for example cat dog car tree book")
    if many_templates:
        parser.add_argument("--templates", nargs="+", default=[DEFAULT_TEMPLATES], help=templates_help)
    else:
        parser.add_argument("--templates", default=DEFAULT_TEMPLATES, help=templates_help)
    if ensemble:
        parser.add_argument("--ensemble", choices=ENSEMBLE_METHODS, default="embedding", help=ENSEMBLE_HELP)
    if truncate:
        parser.add_argument("--truncate", action="store_true", help=TRUNCATE_HELP)


def labelled_folder_options(parser: argparse.ArgumentParser) -> None:
    """FOLDER and --labels: images with known classes (evaluate, probe; see embed_labelled_folder)."""
    parser.add_argument("folder", help="labelled images: FOLDER/<class>/image.jpg, or any images with --labels")
    parser.add_argument("--labels", default=None, help="a CSV of path,label (paths relative to FOLDER)")


def output_options(parser: argparse.ArgumentParser, *, csv: tuple[str | None, str] | None = None,
                   out: tuple[str | None, str] | None = None, bom: str | None = None,
                   lang: str | None = None) -> None:
    """--csv, --out, --bom and --lang, each given as (default, help) or, for --bom and --lang, its help; None
    leaves it out. With --csv or --out, also --raw-csv. Both are checked before any work (`check_outputs`)."""
    from .words import LANGUAGES

    if csv:
        parser.add_argument("--csv", default=csv[0], help=csv[1])
    if out:
        parser.add_argument("--out", default=out[0], help=out[1])
    if csv or out:
        parser.add_argument("--raw-csv", action="store_true",
                            help="write text cells exactly as they are: by default a cell starting with =, +, -, "
                                 "@, tab or carriage return (a file name such as =cmd|' -C calc'!A0.png) gets a "
                                 "leading ' so that a spreadsheet shows it as text instead of running it")
    if bom:
        parser.add_argument("--bom", action="store_true", help=bom)
    if lang:
        parser.add_argument("--lang", choices=LANGUAGES, default="en", help=lang)


# ---- steps shared by several commands ------------------------------------------------------------------

INPUT_OPTIONS = ("folder", "file", "image", "labels", "templates")  # what a command reads, by option name


def check_outputs(args: argparse.Namespace) -> None:
    """Every output of a command (--csv, a file; --out, a folder), checked before any work, so that no result
    is lost to an output that cannot be written: a CSV must not be a device, FIFO or folder, be named like an
    image or be one of the command's inputs, and its folder must be writable; --out must be a folder that
    exists or can be made there, and no file the command writes in it (report.OUTPUT_FILES) a folder, FIFO,
    device or input."""
    from .data.files import check_output_file, check_output_folder
    from .report.writers import OUTPUT_FILES

    inputs = []
    for name in INPUT_OPTIONS:
        value = getattr(args, name, None)
        inputs.extend(value if isinstance(value, list) else [value])
    inputs = [path for path in inputs if path]
    if getattr(args, "csv", None):
        check_output_file(args.csv, inputs=inputs)
    if getattr(args, "out", None):  # the folder and each file the command writes in it
        check_output_folder(args.out, OUTPUT_FILES.get(args.command, ()), inputs=inputs)


def load_model_from(args: argparse.Namespace, spec: str | None = None) -> ClipModel:
    """The model of --model (or `spec`), --pretrained, --device and --download-root (the one place the
    command line loads one). The weights file's SHA-256 is remembered in the cache folder (--cache-dir;
    not with --no-cache), so an unchanged file is hashed once, not at every run. With the cache the model
    is lazy: a run whose embeddings are all cached never reads its weights (load_model's manifest)."""
    from .models import loading as models  # load_model through its module, so that a test replacing it reaches the CLI

    cache = cache_from(args) if hasattr(args, "no_cache") else True
    return models.load_model(spec or args.model, pretrained=args.pretrained, device=args.device,
                             download_root=args.download_root, cache=cache, lazy=bool(cache))


def cache_from(args: argparse.Namespace) -> EmbeddingCache | None:
    """The embedding cache of --cache-dir, or None with --no-cache."""
    from .data.cache import EmbeddingCache

    return None if args.no_cache else EmbeddingCache(args.cache_dir)


def cluster_options(args: argparse.Namespace) -> dict:
    """scheduler= and store= for the embedding functions: the cluster of --scheduler or --dask-workers (joined
    or started on first use, after every input is checked and the model is loaded), or none."""
    address, workers = getattr(args, "scheduler", None), getattr(args, "dask_workers", None)
    if address is None and workers is None:
        return {}
    if getattr(args, "cluster_client", None) is None:
        from .embed import dask as cluster

        client = cluster.connect(address) if address is not None else cluster.local_cluster(workers)
        count = len(client.scheduler_info().get("workers", {}))
        waiting = (f" (waiting up to {cluster.WORKERS_TIMEOUT} s for a worker to join; Ctrl-C stops)"
                   if count == 0 else "")
        print(f"Dask cluster: {count} workers{waiting}; dashboard {client.dashboard_link}", file=sys.stderr)
        args.cluster_client = client
    return {"scheduler": args.cluster_client, "store": args.store}


@contextmanager
def dask_cluster(args: argparse.Namespace):
    """Leave the cluster that cluster_options joined at the end of the run, stopping it if it was started here.
    --store without a cluster is refused first, before any model is loaded; the store is checked then too."""
    on_cluster = getattr(args, "scheduler", None) is not None or getattr(args, "dask_workers", None) is not None
    if getattr(args, "store", None) is not None and not on_cluster:
        from .data.images import FolderError

        raise FolderError("--store keeps a cluster run's shards: give --scheduler ADDRESS or --dask-workers N "
                          "with it (on one machine the embedding cache, --cache-dir, does that job)")
    if on_cluster:
        from .embed import dask as cluster

        # made absolute here (workers run in other folders), and reachable before any model or cluster work
        args.store = cluster.check_store(cluster.default_store(args.store, cache_from(args)))
    try:
        yield
    finally:
        client = getattr(args, "cluster_client", None)
        if client is not None:
            from .embed import dask as cluster

            cluster.close(client)


def spec_from(args: argparse.Namespace) -> PromptSpec:
    """--classes, --templates and --ensemble, checked once (before any model is loaded)."""
    return prompt_spec(args.classes, args.templates, args.ensemble)


def images_from(args: argparse.Namespace, to_stderr: bool = False) -> list:
    """The images of FOLDER (and its subfolders with --recursive); says which ones a folder gives."""
    from .data.images import folder_note, gather_images

    items = gather_images(args.folder, recursive=args.recursive)
    if Path(args.folder).is_dir():
        print(folder_note(args.folder, args.recursive, option="--recursive"),
              file=sys.stderr if to_stderr else sys.stdout)
    return items


def check_labelled_folder(args: argparse.Namespace) -> None:
    """FOLDER (or --labels) against --classes, checked before any model is loaded; one class is refused, since
    every image is then right whatever the model does."""
    from .data.images import check_folder
    from .data.labels import LabelError, match_classes, read_labels

    classes, _ = match_classes(read_labels(check_folder(args.folder, what="labelled images"), args.labels)["label"],
                               args.classes)
    if len(classes) < 2:
        source = f"the labels of {args.labels}" if args.labels else f"the subfolders of {args.folder}"
        raise LabelError(f"{source} name one class only ({classes[0]!r}): with one class every image is "
                         "predicted right whatever the model does; add images of another class, or name more "
                         "classes with --classes")


def embed_labelled_with(args: argparse.Namespace, model: ClipModel, cache: EmbeddingCache | None):
    """The labelled folder embedded by one model, with the embedding options of the command line."""
    from .embed import labelled as labels  # embed_labelled through its module, so that a test replacing it reaches the CLI

    return labels.embed_labelled(model, args.folder, args.labels, args.classes, cache=cache, batch_size=args.batch_size,
                          exact=args.exact, num_workers=args.workers, progress=not args.quiet,
                          **cluster_options(args))


def embed_labelled_folder(args: argparse.Namespace):
    """Check the labelled folder against the classes, then load the model and embed it (probe).

    Returns:
        (model, cache, labelled images).
    """
    check_labelled_folder(args)
    model = load_model_from(args)
    cache = cache_from(args)
    return model, cache, embed_labelled_with(args, model, cache)


# ---- the commands: their own arguments, and how each runs ----------------------------------------------

def classify_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", help="a folder of images (or one image file)")
    parser.add_argument("--recursive", action="store_true",
                        help="also take the images in subfolders (default: only those in the folder itself)")
    parser.add_argument("--unknown", action="store_true",
                        help="predict 'unknown' for images that fit none of the classes (best score far below the "
                             "folder's typical best score; the column outlier marks them either way)")
    parser.add_argument("--temperature", type=_temperature, default=None,
                        help="divide every logit by this calibrated temperature, so confidences are honest "
                             "(the evaluate command fits one on a labelled folder; predictions do not change)")


def run_classify(args: argparse.Namespace) -> int:
    from .report import export
    from .zeroshot.results import classify
    from .zeroshot.outliers import check_unknown
    from .tasks.summary import summary_text
    from .words import plural, word
    from .zeroshot.schema import localised

    # everything that can be checked without the model is checked first (the outputs: check_outputs)
    spec = spec_from(args)
    check_unknown(spec.classes, args.unknown)
    items = images_from(args)
    model = load_model_from(args)
    results = classify(items, spec, model=model, batch_size=args.batch_size, exact=args.exact, cache=cache_from(args),
                       truncate=args.truncate, background=args.background, num_workers=args.workers,
                       progress=not args.quiet, unknown=args.unknown, temperature=args.temperature,
                       **cluster_options(args))
    lang = args.lang
    print(word("cli.run", lang, model=model.name, classes=plural(len(spec.classes), "class"),
               class_count=len(spec.classes), templates=plural(len(spec.templates), "template"),
               template_count=len(spec.templates), ensemble=args.ensemble)
          + (word("cli.sigmoid", lang, note=word("note.sigmoid", lang)) if model.sigmoid else ""))
    print(summary_text(results, lang))
    path = export.write_csv(localised(results, lang), args.csv, bom=args.bom, raw=args.raw_csv)
    print(word("cli.wrote", lang, path=path))
    return 0


def similarity_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", help="one image file (to classify a folder, use the classify command)")
    parser.add_argument("--texts", nargs="+", required=True)
    parser.add_argument("--truncate", action="store_true")


def run_similarity(args: argparse.Namespace) -> int:
    from .zeroshot.results import check_image_file, similarity

    check_image_file(args.image, classify_hint=f"`python -m clipnb classify {args.image} --classes ...`")
    model = load_model_from(args)
    probs = similarity(args.image, args.texts, model=model, truncate=args.truncate)
    width = max(len(t) for t in args.texts)
    for text, prob in probs.items():
        print(f"{text:<{width}}  {prob:.4f}")
    return 0


def cache_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["info", "clear"], nargs="?", default="info")
    parser.add_argument("--cache-dir", default=None)


def run_cache(args: argparse.Namespace) -> int:
    from .data.cache import EmbeddingCache

    cache = EmbeddingCache(args.cache_dir)
    info = cache.info()
    if not info["exists"]:  # nothing embedded there yet: no file to report or clear
        print(f"no embedding cache in {cache.path.parent} yet: nothing has been embedded with this cache folder")
    elif args.action == "clear":
        cache.clear()
        print(f"cleared {info['path']} ({info['bytes'] / 1e6:.1f} MB, {info['images']} images, "
              f"{info['texts']} texts)")
    else:
        print(f"{info['path']}: {info['bytes'] / 1e6:.1f} MB, {info['images']} image and {info['texts']} text "
              f"embeddings, {info['models']} models")
    return 0


def evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mistakes", type=int, default=12, help="confident mistakes to show (default 12)")
    parser.add_argument("--no-figures", action="store_true", help="write the tables only")


def model_specs(args: argparse.Namespace) -> list[str]:
    """The specs of --model given several times (default: the default model). --pretrained names the
    weights of one model, so with several it is refused: each --model then says its own as SPEC,PRETRAINED."""
    from .models.loading import DEFAULT_MODEL, ModelError

    specs = args.model or [DEFAULT_MODEL]
    if len(specs) > 1 and args.pretrained is not None:
        raise ModelError(f"--pretrained {args.pretrained} is ambiguous with {len(specs)} models; give each its "
                         "weights as SPEC,PRETRAINED, for example --model open_clip:ViT-B-32,laion2b_s34b_b79k")
    return specs


def run_evaluate(args: argparse.Namespace) -> int:
    from .zeroshot.calibration import calibrate
    from .tasks.prompt_settings import score_settings
    from .tasks.evaluation import evaluate_labelled
    from .tasks.model_comparison import compare_models
    from .report.writers import write_evaluation, write_model_comparison

    # templates, folder, labels and classes are checked before any model is loaded, and every model is
    # loaded before any image is embedded, so a bad spec fails at once
    sets = template_sets(args.templates)
    specs = model_specs(args)
    check_labelled_folder(args)
    loaded = [load_model_from(args, spec) for spec in specs]
    cache = cache_from(args)
    labelled = [embed_labelled_with(args, model, cache) for model in loaded]
    model = loaded[0]  # the first model gets the full report, as with one model
    first = next(iter(sets))
    evaluation = evaluate_labelled(labelled[0], model, sets[first], args.ensemble, truncate=args.truncate,
                                   cache=cache)
    comparison = score_settings(model, labelled[0], template_sets=sets, truncate=args.truncate,
                                cache=cache).accuracy_table()
    print(f"model {model.name}, templates {first} ({len(sets[first])}), ensemble {args.ensemble}")
    print(evaluation.headline())
    print(comparison.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    try:
        calibration = calibrate(evaluation.table[evaluation.table["evaluated"]])
    except ValueError as exc:  # too few labelled images per class to fit on some and measure on others
        calibration = None
        print(f"calibration not measured: {exc}")
    else:
        print(f"calibration: {calibration.headline()}; `classify --temperature {calibration.temperature:.2f}` "
              "reports calibrated confidences")
    written = write_evaluation(evaluation, args.out, comparison, figures=not args.no_figures,
                               mistakes=args.mistakes, bom=args.bom, lang=args.lang, calibration=calibration,
                               raw=args.raw_csv)
    if len(loaded) > 1:
        models_compared = compare_models(loaded, labelled, templates=sets[first], ensemble=args.ensemble,
                                         truncate=args.truncate, cache=cache)
        print(f"\n{models_compared.headline()}; templates {first}, ensemble {args.ensemble}")
        print(models_compared.models.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        print("agreement (share of images on which two models predict the same class):")
        print(models_compared.agreement.rename_axis(None).to_string(float_format=lambda v: f"{v:.3f}"))
        written += write_model_comparison(models_compared, args.out, figures=not args.no_figures, bom=args.bom,
                                          raw=args.raw_csv)
    print(f"wrote {len(written)} files to {args.out}")
    return 0


def search_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", help="a folder of images (embeddings are cached, so searching again is fast)")
    query = parser.add_mutually_exclusive_group(required=True)
    query.add_argument("--text", help="what to look for, for example 'a red circle'")
    query.add_argument("--image", help="find the images most similar to this one")
    parser.add_argument("--top", type=_positive, default=10, help="how many hits to print (default 10)")
    parser.add_argument("--recursive", action="store_true",
                        help="also search the images in subfolders (default: only those in the folder itself)")
    parser.add_argument("--truncate", action="store_true", help="cut a text longer than the model's context")


def run_search(args: argparse.Namespace) -> int:
    from .report import export
    from .tasks.search import index_images, search_image, search_text
    from .zeroshot.schema import localised

    if args.image and not Path(args.image).is_file():
        kind = "is a folder; give one image file" if Path(args.image).is_dir() else "does not exist"
        raise FileNotFoundError(f"query image {args.image} {kind}")
    if args.text is not None and not args.text.strip():
        raise PromptError("the search text is blank; give words to search for, such as 'a red circle'")
    items = images_from(args, to_stderr=True)  # stdout holds only the hits
    model = load_model_from(args)
    cache = cache_from(args)
    index = index_images(model, items, cache=cache, batch_size=args.batch_size, exact=args.exact,
                         num_workers=args.workers, progress=not args.quiet, **cluster_options(args))
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
        print(f"wrote {export.write_csv(localised(hits, args.lang), args.csv, raw=args.raw_csv)}", file=sys.stderr)
    return 0


def duplicates_arguments(parser: argparse.ArgumentParser) -> None:
    from .tasks.duplicates import DEFAULT_THRESHOLD as DUPLICATE_THRESHOLD

    parser.add_argument("folder", help="a folder of images (embeddings and file hashes are cached)")
    parser.add_argument("--threshold", type=_cosine, default=DUPLICATE_THRESHOLD,
                        help="the cosine at or above which two images are near copies (default "
                             f"{DUPLICATE_THRESHOLD}, measured on resized, recompressed and cropped copies: "
                             "docs/collection.md); files with the same bytes are always grouped")
    parser.add_argument("--recursive", action="store_true",
                        help="also take the images in subfolders (default: only those in the folder itself)")
    parser.add_argument("--show", type=_positive, default=20, help="how many groups to print (default 20)")


def run_duplicates(args: argparse.Namespace) -> int:
    from .report.writers import write_duplicates
    from .tasks.duplicates import duplicate_summary, find_duplicates
    from .words import plural

    items = images_from(args, to_stderr=True)
    model = load_model_from(args)
    table = find_duplicates(items, model, threshold=args.threshold, cache=cache_from(args), exact=args.exact,
                            batch_size=args.batch_size, num_workers=args.workers, progress=not args.quiet,
                            **cluster_options(args))
    print(duplicate_summary(table))
    grouped = table[table["group"].notna()]
    for number, members in itertools.islice(grouped.groupby("group", sort=True), args.show):
        print(f"group {number}:")
        for path, cosine, exact in zip(members["path"], members["similarity"], members["exact"]):
            print(f"  {'same bytes' if exact else f'{cosine:.4f}':>10}  {path}")
    if grouped["group"].nunique() > args.show:
        print(f"... {grouped['group'].nunique() - args.show} more groups" + (" in the CSV" if args.csv else
                                                                              " (--csv writes them all)"))
    unreadable = table[table["error"] != ""]
    if len(unreadable):
        print(f"clipnb: {plural(len(unreadable), 'file')} could not be read, so only a byte-for-byte copy can "
              f"join it in a group (first: {unreadable['path'].iloc[0]}: {unreadable['error'].iloc[0]})",
              file=sys.stderr)
    if args.csv:
        print(f"wrote {write_duplicates(table, args.csv, bom=args.bom, raw=args.raw_csv)}")
    return 0


def video_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="a video file (anything FFmpeg reads: mp4, mov, mkv, webm, avi, ...)")
    every = parser.add_mutually_exclusive_group()
    every.add_argument("--every-seconds", type=_positive_float, default=None,
                       help="sample one frame every this many seconds (default 1)")
    every.add_argument("--every-frames", type=_positive, default=None, help="sample every n-th frame instead")
    parser.add_argument("--max-frames", type=_positive, default=None, help="stop after this many samples")
    parser.add_argument("--top", type=_positive, default=5, help="classes to print (default 5)")


def run_video(args: argparse.Namespace) -> int:
    from .report.writers import write_video_report
    from .zeroshot.scoring import build_head
    from .data.video import video_info
    from .tasks.video import classify_video, embed_video

    spec = spec_from(args)
    info = video_info(args.file)  # a bad file fails before the model loads
    every_seconds = None if args.every_frames else (args.every_seconds or 1.0)
    model = load_model_from(args)
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
    print(f"the video as a whole: {result.basis()}")
    top = result.summary.head(args.top)
    for name, won, probability in zip(top["class"], top["frames_won"], top["mean_frame_probability"]):
        print(f"  {name:<24} won {won} of {len(frames)} frames, mean frame probability {probability:.4f}")
    print("timeline:")
    for seg in result.segments().itertuples():
        print(f"  {seg.start:7.1f}s - {seg.end:7.1f}s  {seg.prediction} ({seg.frames} frames, "
              f"mean confidence {seg.mean_confidence:.2f})")
    if args.out:
        out = Path(args.out)
        write_video_report(result, out, title=Path(args.file).name, segments=False, lang=args.lang,
                           raw=args.raw_csv)
        print(f"wrote summary.csv, timeline.csv and timeline.png to {out}")
    return 0


def probe_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--shots", nargs="+", type=_positive, default=[1, 2, 4, 8, 16])
    parser.add_argument("--trials", type=_positive, default=5, help="random training sets per shot count (default 5)")
    parser.add_argument("--test-fraction", type=_positive_float, default=0.5,
                        help="share of each class kept for testing (default 0.5)")
    parser.add_argument("--seed", type=_seed, default=0,
                        help="picks the random split: a whole number of 0 or more (default 0)")


def run_probe(args: argparse.Namespace) -> int:
    from .tasks.few_shot import curve_summary, probe_labelled
    from .report.writers import write_probe_report
    from .zeroshot.schema import setting

    templates = resolve_templates(args.templates)
    model, cache, labelled = embed_labelled_folder(args)
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
        out = Path(args.out)
        write_probe_report(curve, out, summary=summary, lang=args.lang, raw=args.raw_csv)
        print(f"wrote curve.csv, summary.csv and shots.png to {out}")
    return 0


def models_arguments(parser: argparse.ArgumentParser) -> None:
    from .models import loading as models

    parser.add_argument("--family", choices=list(models.FAMILIES), default=None,
                        help="list one family only (default: all)")
    parser.add_argument("--on-disk", action="store_true", help="list only models whose weights are here already")
    parser.add_argument("--download-root", default=None, help="where downloaded weights are kept, if not the usual place")


def run_models(args: argparse.Namespace) -> int:
    from .models import loading as models

    rows = models.list_models(args.family, download_root=args.download_root)
    for family in dict.fromkeys(row.family for row in rows):
        module = models.family_module(family)
        prefix = "" if family == models.DEFAULT_FAMILY else f"{family}:"
        shown = [r for r in rows if r.family == family and (r.on_disk or not args.on_disk)]
        print(f"{family}: {module.SUMMARY} (for example --model {prefix}{module.EXAMPLE})")
        for row in shown:
            if row.pretrained:
                tags = ", ".join(t + (" (on disk)" if t in row.on_disk else "") for t in row.pretrained)
                print(f"  {prefix}{row.name}  pretrained: {tags}")
            else:
                print(f"  {prefix}{row.name}" + ("  (on disk)" if row.on_disk else ""))
        if not shown:
            print("  (none on disk)" if args.on_disk else "  (none)")
    return 0


# ---- the table of commands -----------------------------------------------------------------------------

Options = Callable[[argparse.ArgumentParser], None]


@dataclass(frozen=True)
class Command:
    """One subcommand: its name and help line, the options it shares with others, its own, and how it runs."""
    name: str
    help: str
    run: Callable[[argparse.Namespace], int]
    arguments: Options
    groups: tuple[Options, ...] = ()


COMMANDS = {command.name: command for command in (
    Command("classify", "classify a folder of images zero-shot and write a CSV", run_classify, classify_arguments,
            (prompt_options,
             partial(output_options, csv=("clipnb_results.csv", "where to write the per-image table"),
                     bom="always write a UTF-8 byte-order mark (a CSV with any non-ASCII text, such as Chinese "
                         "headers, gets one anyway, for Excel)",
                     lang="language of the summary and of the CSV's headers and ratio types: en (default) or zh "
                          "(the article's: 图像名称, 宽度, ..., <class>_得分)"),
             model_options, embedding_options)),
    Command("similarity", "probabilities of free texts for one image", run_similarity, similarity_arguments,
            (model_options,)),
    Command("cache", "show the embedding cache's size, or clear it", run_cache, cache_arguments),
    Command("models", "list the models of each family, and which are on disk", run_models, models_arguments),
    Command("evaluate", "accuracy of zero-shot predictions against known labels", run_evaluate, evaluate_arguments,
            (labelled_folder_options,
             partial(prompt_options, classes_from_labels=True, many_templates=True,
                     templates_help=MANY_TEMPLATES_HELP),
             partial(output_options, out=("clipnb_evaluation", "folder for metrics.json, CSVs and figures"),
                     bom="always write CSVs with a UTF-8 byte-order mark (one with any non-ASCII text gets one "
                         "anyway, for Excel)",
                     lang="language of the report tables' headers and ratio types and of the figures: en (default) "
                          "or zh (the article's: 图像名称, 比例类型, <class>_得分, ...); metrics.json stays English"),
             partial(model_options, many=True), embedding_options)),
    Command("search", "rank a folder's images by a text (or by a similar image)", run_search, search_arguments,
            (partial(output_options, csv=(None, "also write the hits (rank, path, score) to this CSV"),
                     lang="language of the CSV's headers: en (default) or zh (排名, 图像名称, 得分)"),
             model_options, embedding_options)),
    Command("duplicates", "find exact and near-duplicate images in a folder", run_duplicates,
            duplicates_arguments,
            (partial(output_options, csv=(None, "write every file as path, group, similarity to this CSV (a file in "
                                                "no group has an empty group)"),
                     bom="always write the CSV with a UTF-8 byte-order mark (one with any non-ASCII text gets one "
                         "anyway, for Excel)"),
             model_options, embedding_options)),
    Command("video", "classify a video zero-shot from its sampled frames", run_video, video_arguments,
            (prompt_options,
             partial(output_options, out=(None, "folder for summary.csv, timeline.csv and timeline.png"),
                     lang="language of the CSV headers and the figure: en (default) or zh"),
             batch_options, model_options)),
    Command("probe", "few-shot linear probe vs zero-shot on a labelled folder", run_probe, probe_arguments,
            (labelled_folder_options,
             partial(prompt_options, classes_from_labels=True, ensemble=False, truncate=False,
                     templates_help=f"templates of the zero-shot comparison: {TEMPLATES_HELP}"),
             partial(output_options, out=(None, "folder for curve.csv, summary.csv and shots.png"),
                     lang="language of the CSV headers and the figure: en (default) or zh"),
             model_options, embedding_options)),
)}


def build_parser(commands: Iterable[str] | None = None) -> argparse.ArgumentParser:
    """The argument parser: one sub-parser per entry of COMMANDS; those named in `commands` (default: all) get
    their shared groups, then their own options (whose help texts import the modules they name)."""
    parser = argparse.ArgumentParser(prog="python -m clipnb", description="Zero-shot image analysis with CLIP.")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS.values():
        sub = subparsers.add_parser(command.name, help=command.help)
        if commands is None or command.name in commands:
            for group in command.groups:
                group(sub)
            command.arguments(sub)
    return parser


def command_named(argv: list[str] | None) -> list[str]:
    """The command of a command line as a list ([] when there is none, as with --help alone): the first word
    that is not an option, since the parser itself takes no option but --help."""
    return [word for word in (sys.argv[1:] if argv is None else argv) if not word.startswith("-")][:1]


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns the exit code (0 done, 2 a fatal problem, said in one line; 130 interrupted)."""
    for stream in (sys.stdout, sys.stderr):  # a file name the console cannot encode must not end a run
        if getattr(stream, "errors", None) == "strict" and hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    args = build_parser(command_named(argv)).parse_args(argv)
    try:
        check_outputs(args)
        with _class_warnings_as_lines(), dask_cluster(args):
            return COMMANDS[args.command].run(args)
    except Exception as exc:
        if not is_fatal(exc):
            raise
        print(f"clipnb: error: {_error_line(exc, args)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"clipnb: interrupted; {_kept_when_interrupted(args)}", file=sys.stderr)
        return 130


def _error_line(exc: Exception, args: argparse.Namespace) -> str:
    """A fatal error's line. An export's "the results are still in memory" (export.RETRY_HINT, true in Python)
    is not once the process exits: the command line says instead what a rerun finds."""
    from .data.files import RETRY_HINT, ExportError

    if not isinstance(exc, ExportError):
        return str(exc)
    if getattr(args, "scheduler", None) is not None or getattr(args, "dask_workers", None) is not None:
        kept = _kept_when_interrupted(args)  # the cluster's store
    elif getattr(args, "no_cache", True):  # --no-cache, or a command without a cache (video)
        kept = "nothing was kept" + (" (--no-cache)" if hasattr(args, "no_cache") else "")
        kept += ": fix this and run the command again, which computes everything again"
    else:
        kept = "the embeddings are kept in the cache, so a rerun after fixing this takes seconds"
    return str(exc).replace(RETRY_HINT, kept)


def _kept_when_interrupted(args: argparse.Namespace) -> str:
    """What an interrupted run kept: the cache's embeddings, or a cluster run's finished shards in its store."""
    if getattr(args, "scheduler", None) is None and getattr(args, "dask_workers", None) is None:
        return "embeddings computed so far are cached"
    from .embed import dask as cluster

    return cluster.kept_note(args.store)


@contextmanager
def _class_warnings_as_lines():
    """Print each ClassWarning, CalibrationWarning or CacheWarning once, as one "clipnb: warning: ..." line on stderr (evaluate
    builds a head per template set and ensembling method: the same warning would come many times); other
    warnings as usual."""
    from .data.cache import CacheWarning
    from .zeroshot.calibration import CalibrationWarning
    from .zeroshot.scoring import ClassWarning

    shown = set()
    with warnings.catch_warnings():  # restores the filters and showwarning afterwards
        warnings.simplefilter("always", ClassWarning)
        original = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):
            if not issubclass(category, (ClassWarning, CalibrationWarning, CacheWarning)):
                return original(message, category, filename, lineno, file, line)
            if str(message) not in shown:
                shown.add(str(message))
                print(f"clipnb: warning: {message}", file=sys.stderr)

        warnings.showwarning = show
        yield
