"""Benchmark of collection analysis: where the near-duplicate threshold lies, and how fast the map and the
near-duplicates of 10,000 cached embeddings are made.

    python -m clipnb.bench.collection [--model demo] [--photos DIR] [--n 10000] [--skip-speed]

1. Threshold. Every photo gets planted copies (`clipnb.demo.data.COPY_EDITS`: resized to half, recompressed
   at JPEG quality 40, cropped by 5% a side); the cosine of each copy to its original is set against the
   cosine between different photos of the same subject. Subjects are the subfolders of `--photos` (a
   labelled folder: DIR/<subject>/<photo>); by default the repository's real photos of the same subject
   (test_images: two cats, two dogs) and, for the demo model, generated shapes (each colour and shape a
   subject, drawn three times). Printed: the spread of each kind of pair and the threshold halfway between
   the lowest copy and the highest different photo, when they do not overlap.
2. Speed. `--n` CLIP-like unit vectors (`bench.vector_index.clip_like`, with planted copies) are written to
   an embedding cache, then, in a fresh process (so UMAP's import and compilation count), read back and
   given the near-duplicate groups and the embedding map with its clusters, each step timed; then the same
   again in that process (warm).
"""
from __future__ import annotations

import argparse
import io
import itertools
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ..demo.data import COPY_EDITS, plant_copies, shapes_folder
from ..embed.runner import embed_images
from ..data.labels import labels_from_folders
from ..models.loading import load_model
from .index_speed import clip_like

ROOT = Path(__file__).resolve().parents[2]
REAL_PAIRS = {"cat": ["cat.jpg", "cat2.jpg"], "dog": ["dog.png", "dog2.jpg"]}  # in test_images/
SHAPE_DRAWINGS = 3
SPEED_GOAL_S = 30.0
COPIES_PER_1000 = 20  # planted copies in the speed test's vectors


def default_subjects(model_name: str, work: Path) -> dict[str, list[Path]]:
    """Subject -> photos of it: the repository's real pairs, and shapes for the demo model."""
    subjects = {}
    images = ROOT / "test_images"
    if images.is_dir():
        subjects = {name: [images / f for f in files] for name, files in REAL_PAIRS.items()
                    if all((images / f).is_file() for f in files)}
    if model_name == "demo":
        folder = shapes_folder(work / "shapes", per_class=SHAPE_DRAWINGS)
        labels = labels_from_folders(folder)
        for label, rows in labels.groupby("label"):
            subjects[f"shape: {label}"] = [Path(p) for p in rows["path"]]
    return subjects


def threshold_pairs(model, subjects: dict[str, list[Path]], work: Path, cache=None) -> pd.DataFrame:
    """One row per pair: kind ("copy: <edit>" or "same subject, other photo"), subject, a, b, similarity."""
    originals = [p for photos in subjects.values() for p in photos]
    planted = plant_copies(originals, work / "copies")
    files = originals + [copy for copy, _, _ in planted]
    embedded = embed_images(model, files, cache=cache, progress=False)
    bad = embedded.records[embedded.records["error"] != ""]
    if len(bad):
        raise ValueError(f"{len(bad)} photo(s) could not be read, first {bad['path'].iloc[0]}: "
                         f"{bad['error'].iloc[0]}")
    vector = dict(zip(map(str, files), embedded.features.numpy()))
    subject_of = {str(p): s for s, photos in subjects.items() for p in photos}
    rows = [(f"copy: {edit}", subject_of[str(original)], str(original), str(copy),
             float(vector[str(original)] @ vector[str(copy)])) for copy, original, edit in planted]
    for subject, photos in subjects.items():
        for a, b in itertools.combinations(map(str, photos), 2):
            rows.append(("same subject, other photo", subject, a, b, float(vector[a] @ vector[b])))
    return pd.DataFrame(rows, columns=["kind", "subject", "a", "b", "similarity"])


def threshold_report(pairs: pd.DataFrame) -> tuple[str, float | None]:
    """The spread of each kind of pair as text, and the threshold halfway between the lowest copy and the
    highest other photo of a subject (None when they overlap)."""
    spread = pairs.groupby("kind")["similarity"].describe(percentiles=[0.05, 0.5])[
        ["count", "min", "5%", "50%", "max"]]
    real = pairs["subject"].str.startswith("shape: ")
    lines = [spread.to_string(float_format=lambda v: f"{v:.4f}")]
    from ..tasks.duplicates import DEFAULT_THRESHOLD

    is_copy = pairs["kind"].str.startswith("copy")
    found = pairs[is_copy].groupby("kind")["similarity"].apply(lambda s: f"{(s >= DEFAULT_THRESHOLD).sum()} of {len(s)}")
    lines.append(f"at the default threshold {DEFAULT_THRESHOLD}: copies found " + ", ".join(
        f"{kind[6:]} {text}" for kind, text in found.items()) + f"; other photos of a subject grouped "
        f"{(pairs[~is_copy]['similarity'] >= DEFAULT_THRESHOLD).sum()} of {(~is_copy).sum()}")
    for name, part in (("real photos", pairs[~real]), ("generated shapes", pairs[real])):
        if len(part):
            copies = part[part["kind"].str.startswith("copy")]["similarity"]
            others = part[~part["kind"].str.startswith("copy")]["similarity"]
            lines.append(f"{name}: lowest copy {copies.min():.4f}, highest other photo "
                         f"{others.max() if len(others) else float('nan'):.4f}")
    copies = pairs[pairs["kind"].str.startswith("copy")]["similarity"]
    others = pairs[~pairs["kind"].str.startswith("copy")]["similarity"]
    if len(others) == 0 or copies.min() > others.max():
        top = others.max() if len(others) else -1.0
        threshold = (copies.min() + max(top, -1.0)) / 2
        lines.append(f"copies and other photos separate: a threshold of {threshold:.4f} (halfway) splits them")
        return "\n".join(lines), float(threshold)
    lines.append(f"copies and other photos overlap ({(copies <= others.max()).sum()} copies at or below the "
                 "highest other photo): no threshold splits them all")
    return "\n".join(lines), None


def speed_vectors(n: int, dim: int = 512, seed: int = 0) -> tuple[np.ndarray, int]:
    """n CLIP-like unit vectors of which some are near copies of others (noise of cosine ~0.99)."""
    vectors = clip_like(n, dim, seed, stream=0)
    rng = np.random.default_rng(seed)
    planted = n * COPIES_PER_1000 // 1000
    targets = rng.choice(n, size=planted * 2, replace=False)
    sources, copies = targets[:planted], targets[planted:]
    noisy = vectors[sources] + 0.08 / np.sqrt(dim) * rng.standard_normal((planted, dim)).astype(np.float32)
    vectors[copies] = noisy / np.linalg.norm(noisy, axis=1, keepdims=True)
    return vectors, planted


def write_cache(vectors: np.ndarray, directory: Path) -> list[str]:
    """The vectors as a model's cached image embeddings (content keys made up); returns the keys."""
    import torch

    from ..data.cache import EmbeddingCache

    cache = EmbeddingCache(directory)
    keys = [f"{i:064x}" for i in range(len(vectors))]
    cache.put_images("bench", "fast", [(k, 224, 224, "", torch.from_numpy(v)) for k, v in zip(keys, vectors)])
    cache.close()
    return keys


def timed_run(directory: Path, n: int) -> dict:
    """Read n cached embeddings, find near-duplicates and make the map, timing each step (seconds)."""
    times = {}
    start = time.perf_counter()
    from ..data.cache import EmbeddingCache
    from ..tasks.duplicates import DEFAULT_THRESHOLD, duplicate_groups
    from ..tasks.collection_map import find_clusters, layout

    times["imports"] = time.perf_counter() - start
    step = time.perf_counter()
    cache = EmbeddingCache(directory)
    keys = [f"{i:064x}" for i in range(n)]
    vectors = np.stack([entry["vector"] for entry in cache.get_images("bench", "fast", keys)])
    cache.close()
    times["read from the cache"] = time.perf_counter() - step
    step = time.perf_counter()
    group, *_ = duplicate_groups(vectors, [None] * n, DEFAULT_THRESHOLD)
    times["near-duplicates"] = time.perf_counter() - step
    step = time.perf_counter()
    positions, _ = layout(vectors, seed=0)
    times["map (kNN graph, UMAP)"] = time.perf_counter() - step
    step = time.perf_counter()
    clusters = find_clusters(positions)
    times["clusters (HDBSCAN)"] = time.perf_counter() - step
    times["total"] = time.perf_counter() - start
    times["duplicate groups found"] = int(group.max(initial=0))
    times["clusters found"] = int(clusters.max(initial=-1) + 1)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m clipnb.bench.collection", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="demo", help="the model whose threshold is measured (default demo)")
    parser.add_argument("--photos", help="a labelled folder, DIR/<subject>/<photo>, of several photos per subject")
    parser.add_argument("--n", type=int, default=10_000, help="cached embeddings in the speed test (default 10,000)")
    parser.add_argument("--skip-speed", action="store_true", help="measure the threshold only")
    parser.add_argument("--skip-threshold", action="store_true", help="measure the speed only")
    parser.add_argument("--timed-run", help=argparse.SUPPRESS)  # the fresh process of the speed test
    args = parser.parse_args(argv)
    if args.timed_run:
        first = timed_run(Path(args.timed_run), args.n)
        second = timed_run(Path(args.timed_run), args.n)
        print(pd.DataFrame({"fresh process": first, "again (warm)": second}).to_json())
        return 0

    with tempfile.TemporaryDirectory(prefix="clipnb-bench-collection-") as temporary:
        work = Path(temporary)
        if not args.skip_threshold:
            model = load_model(args.model)
            if args.photos:
                labels = labels_from_folders(args.photos)
                subjects = {label: [Path(p) for p in rows["path"]] for label, rows in labels.groupby("label")}
            else:
                subjects = default_subjects(args.model, work)
            print(f"near-duplicate threshold, {model.name}: {sum(map(len, subjects.values()))} photos of "
                  f"{len(subjects)} subjects, each copied {len(COPY_EDITS)} ways ({', '.join(COPY_EDITS)})",
                  flush=True)
            report, _ = threshold_report(threshold_pairs(model, subjects, work))
            print(report, "\n", flush=True)
        if not args.skip_speed:
            vectors, planted = speed_vectors(args.n)
            write_cache(vectors, work / "cache")
            print(f"speed: {args.n:,} cached embeddings (512-d, {planted} planted near copies), in a fresh "
                  f"process on {os.cpu_count()} cores", flush=True)
            done = subprocess.run([sys.executable, "-m", "clipnb.bench.collection", "--timed-run",
                                   str(work / "cache"), "--n", str(args.n)], capture_output=True, text=True)
            if done.returncode:
                print(done.stderr, file=sys.stderr)
                return done.returncode
            times = pd.read_json(io.StringIO(done.stdout.strip().splitlines()[-1]))
            counts = times.loc[["duplicate groups found", "clusters found"], "fresh process"].astype(int)
            print(times.drop(counts.index).to_string(float_format=lambda v: f"{v:.2f} s"))
            print(", ".join(f"{name}: {count}" for name, count in counts.items()))
            total = float(times.loc["total", "fresh process"])
            print(f"map and near-duplicates of {args.n:,} cached embeddings: {total:.1f} s in a fresh process "
                  f"(goal {SPEED_GOAL_S:.0f} s: {'met' if total < SPEED_GOAL_S else 'not met'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
