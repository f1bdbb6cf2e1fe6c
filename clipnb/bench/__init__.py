"""Benchmark: the seed notebook's one-image-at-a-time loop against clipnb's pipeline, on real-size photos.

    python -m clipnb.bench [--n N] [--large-only] [--out DIR] [--device cpu|cuda] [--photos DIR]
                           [--model SPEC [--pretrained TAG_OR_FILE|random]]

Builds a folder of N photos at real sizes (12 MP 4000x3000 and 2 MP 1632x1224 JPEGs, made from
test_images/ with sensor-like noise so that files and decoding cost are those of phone photos) and a
ViT-B/32-architecture checkpoint with random weights (the same compute as the real model), or the model of
--model (any spec load_model takes; `--model open_clip:ARCH --pretrained random` makes that architecture
with random weights, SigLIP included), then measures in one run, side by side:

  (a) seed loop   one image at a time: Image.open, preprocess, encode_image (the seed notebook's code)
  (b) cold        clipnb.classify's steps with an empty embedding cache (fast JPEG decoding)
  (c) warm        the same again on the same folder with a new list of classes (cache filled)
  (d) model only  encode_image on tensors already decoded, at the best batch size
  (f) cluster     with --dask-workers N, (b) again on a LocalCluster of N worker processes
  (e) alone       each stage of (b) timed alone on one thread: hashing, decoding, preprocessing, batching,
                  encoding, cache writes; their sum per photo is the budget (b) is held to, and beside it
                  the table of where (b)'s time went, stage by stage, in core-ms per photo

and checks that the results agree: (b) with exact decoding equals (a) within 1e-4, (c) equals (b), and
fast decoding stays within the tolerance measured for DRAFT_FACTOR. Computing and reporting are separate:
`run_benchmark` returns a plain dict, `format_report` turns it into text, `--out` writes both.

The parts: `bench.photos` makes the photos (the models with random weights come from `clipnb.testing`),
`bench.measure` measures, `bench.tables` formats; nothing in clipnb's runtime imports this package.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..testing import vit_b32_checkpoint  # the benchmark's model, kept in bench's API
from .measure import EXACT_TOLERANCE, EXACT_TOLERANCE_FP16, run_benchmark, seed_loop
from .photos import make_photos
from .tables import format_report

__all__ = ["EXACT_TOLERANCE", "EXACT_TOLERANCE_FP16", "build_parser", "format_report", "main", "make_photos",
           "run_benchmark", "seed_loop", "vit_b32_checkpoint"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m clipnb.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200, help="number of photos (default 200)")
    parser.add_argument("--large-only", action="store_true", help="only 12 MP photos (default: 1 in 4 is 2 MP)")
    parser.add_argument("--out", default=None, help="folder to write bench.json and bench.txt into")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
    parser.add_argument("--photos", default=None,
                        help="keep the photos and checkpoint in this folder and reuse them (default: a temp dir)")
    parser.add_argument("--seed-n", type=int, default=None,
                        help="run the seed loop and the exact comparison on the first K photos (default: all)")
    parser.add_argument("--batch-size", type=int, default=None, help="clipnb's batch size (default: automatic)")
    parser.add_argument("--workers", type=int, default=None, help="decoding workers (default: automatic)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--model", default=None,
                        help="the model to time: any spec of `python -m clipnb models` (default: openai-clip's "
                             "ViT-B/32 with random weights)")
    parser.add_argument("--dask-workers", type=int, default=None, metavar="N",
                        help="also time (f): the cold run on a LocalCluster of N worker processes, side by side")
    parser.add_argument("--pretrained", default=None,
                        help="its weights; `random` with --model open_clip:ARCH times that architecture with "
                             "random weights (for example open_clip:ViT-B-16-SigLIP)")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.n < 1:
        print(f"clipnb.bench: error: --n must be at least 1, not {args.n}", file=sys.stderr)
        return 2
    if args.dask_workers is not None and args.dask_workers < 1:  # 0 would silently time no cluster
        print(f"clipnb.bench: error: --dask-workers must be at least 1, not {args.dask_workers}", file=sys.stderr)
        return 2
    from ..data.images import FolderError
    from ..models.loading import ModelError

    try:
        result = run_benchmark(args.n, args.large_only, args.device, args.photos, args.seed_n, args.batch_size,
                               args.workers, progress=not args.quiet, model=args.model,
                               pretrained=args.pretrained, dask_workers=args.dask_workers)
    except (ModelError, FolderError, FileNotFoundError, ValueError, OSError) as exc:
        print(f"clipnb.bench: error: {exc}", file=sys.stderr)
        return 2
    report = format_report(result)
    print(report)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "bench.json").write_text(json.dumps(result, indent=2))
        (out / "bench.txt").write_text(report + "\n")
        print(f"wrote {out / 'bench.json'} and {out / 'bench.txt'}")
    checks = result["checks"]
    agree = checks["exact_ok"] and checks["warm_ok"] and checks["draft_ok"] and checks.get("cluster_ok", True)
    return 0 if agree else 1
