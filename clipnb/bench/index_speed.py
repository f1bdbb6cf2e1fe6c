"""Benchmark of clipnb.embed.vector_index: exact search against the IVF index, side by side, on CLIP-like vectors.

    python -m clipnb.bench.index_speed [--n 1000000] [--dim 512] [--queries 1000] [--seed 0]

The vectors look like CLIP image embeddings rather than uniform noise: a mixture of 2,000 cluster centres
(of uneven sizes, lognormal weights) that share a common direction (CLIP's embeddings lie in a narrow cone:
two random ones have a cosine of about 0.3), plus Gaussian noise whose variance decays over the dimensions
(a low effective dimension, as real embeddings have), normalised to norm 1. The queries are drawn the same way
from another random stream, so they are not rows of the data.

Printed, for exact search (IndexFlatIP) and for the index `VectorIndex.build` makes: build time, index size
(its file as `save` writes it), median and 95th-percentile latency of a top-10 search of one query at a time
(as a user's search is), recall@10 against exact search; then the peak RSS of the process, and exact and
IVF latency at a few smaller sizes with the size below which exact search is as fast (EXACT_BELOW in
clipnb/embed/vector_index.py comes from there). At n=1,000,000 x 512 it takes about five minutes on 2 cores and
under 5 GB of memory (measured: 313 s, 4.5 GB).
"""
from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ..embed.vector_index import VectorIndex

CENTRES = 2000
NOISE = 0.8  # norm of a row's noise against its centre's 1: a row's top-10 neighbours have cosines of ~0.75
COMMON = 1.0  # weight of the direction all centres share
EXACT_TIMED = 50  # exact search of one query scans every row (~0.5 s at 1M): time this many, not all
SMALL_SIZES = (3_000, 10_000, 30_000, 100_000, 300_000)
SMALL_TIMED = 200  # queries timed at each small size
AS_FAST = 1.5  # exact counts as "as fast" while its median latency is within this factor of IVF's


def clip_like(n: int, dim: int, seed: int, stream: int, chunk: int = 100_000) -> np.ndarray:
    """n unit vectors [n, dim] float32 from the mixture described above; the mixture depends on `seed` only,
    the draws on (seed, stream), so streams 0 (data) and 1 (queries) share one distribution."""
    rng = np.random.default_rng(seed)
    common = rng.standard_normal(dim)
    centres = rng.standard_normal((CENTRES, dim))
    centres = COMMON * common / np.linalg.norm(common) + centres / np.linalg.norm(centres, axis=1, keepdims=True)
    centres = (centres / np.linalg.norm(centres, axis=1, keepdims=True)).astype(np.float32)
    weights = rng.lognormal(0, 1, CENTRES)
    rotation, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    spread = (np.arange(dim) + 1.0) ** -0.5
    spread *= NOISE / np.sqrt((spread ** 2).sum())
    noise_basis = (spread[:, None] * rotation.T).astype(np.float32)
    draws = np.random.default_rng([seed, stream])
    out = np.empty((n, dim), np.float32)
    for start in range(0, n, chunk):  # in chunks: the temporaries stay small at 1M rows
        m = min(chunk, n - start)
        rows = centres[draws.choice(CENTRES, m, p=weights / weights.sum())]
        rows += draws.standard_normal((m, dim), dtype=np.float32) @ noise_basis
        rows /= np.linalg.norm(rows, axis=1, keepdims=True)
        out[start:start + m] = rows
    return out


def latencies(index: VectorIndex, queries: np.ndarray, k: int = 10) -> np.ndarray:
    """Seconds of each search of one query (after one untimed warm-up search)."""
    index.search(queries[0], k)
    out = np.empty(len(queries))
    for i, query in enumerate(queries):
        start = time.perf_counter()
        index.search(query, k)
        out[i] = time.perf_counter() - start
    return out


def recall_at(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / truth.shape[1] for a, b in zip(found, truth)]))


def file_size(index: VectorIndex) -> int:
    """Bytes of the index as `save` writes it (a file, not faiss.serialize_index: that would hold a second
    copy of a 2 GB exact index in memory)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "index.faiss"
        index.save(path)
        return path.stat().st_size


def measure(vectors: np.ndarray, queries: np.ndarray, exact_below: int, timed: int | None = None) -> dict:
    """Build, size, latency of one query at a time (on `timed` queries, all if None), ids of the top 10."""
    start = time.perf_counter()
    index = VectorIndex.build(vectors, exact_below=exact_below)
    built = time.perf_counter() - start
    seconds = latencies(index, queries[:timed])
    ids = np.concatenate([index.search(queries[i:i + 100], 10)[1] for i in range(0, len(queries), 100)])
    return dict(kind=index.kind, nprobe=index.nprobe, build_s=built, bytes=file_size(index), ids=ids,
                median_ms=1e3 * np.median(seconds), p95_ms=1e3 * np.percentile(seconds, 95), timed=len(seconds))


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # ru_maxrss is in KiB on Linux


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m clipnb.bench.index_speed", description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="rows indexed (default 1,000,000)")
    parser.add_argument("--dim", type=int, default=512, help="dimensions (default 512, as ViT-B/32's)")
    parser.add_argument("--queries", type=int, default=1000, help="queries (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    vectors = clip_like(args.n, args.dim, args.seed, stream=0)
    queries = clip_like(args.queries, args.dim, args.seed, stream=1)
    print(f"{args.n:,} x {args.dim} CLIP-like vectors, {args.queries:,} queries, made in "
          f"{time.perf_counter() - start:.1f} s", flush=True)

    exact = measure(vectors, queries, exact_below=args.n + 1, timed=EXACT_TIMED)
    approx = measure(vectors, queries, exact_below=0)
    approx["recall"], exact["recall"] = recall_at(approx["ids"], exact["ids"]), 1.0
    print(f"\n{'':22}{'exact':>14}{approx['kind'] + ', nprobe ' + str(approx['nprobe']):>28}")
    for label, key, fmt in [("build (s)", "build_s", "{:.1f}"), ("index size (MB)", "bytes", "{:.0f}"),
                            ("median latency (ms)", "median_ms", "{:.2f}"), ("p95 latency (ms)", "p95_ms", "{:.2f}"),
                            ("queries timed", "timed", "{}"), ("recall@10", "recall", "{:.3f}")]:
        scale = 1e-6 if key == "bytes" else 1
        print(f"{label:22}{fmt.format(exact[key] * scale):>14}{fmt.format(approx[key] * scale):>28}")
    print(f"peak RSS of the process: {peak_rss_gb():.2f} GB", flush=True)

    print(f"\none query at a time, top 10, median latency ({SMALL_TIMED} queries):")
    print(f"{'rows':>10}{'exact (ms)':>12}{'IVF (ms)':>12}  IVF kind, nprobe")
    exact_below = None
    for size in (s for s in SMALL_SIZES if s < args.n):
        small = [measure(vectors[:size], queries[:SMALL_TIMED], exact_below=e) for e in (size + 1, 0)]
        print(f"{size:>10,}{small[0]['median_ms']:>12.2f}{small[1]['median_ms']:>12.2f}  "
              f"{small[1]['kind']}, {small[1]['nprobe']}", flush=True)
        if exact_below is None and small[0]["median_ms"] > AS_FAST * small[1]["median_ms"]:
            exact_below = size
    if exact_below is None:
        print("exact search is as fast at every size measured")
    else:
        print(f"exact search is as fast (median within {AS_FAST}x of IVF's) below {exact_below:,} rows")
    print(f"\ntotal {time.perf_counter() - start:.0f} s, peak RSS {peak_rss_gb():.2f} GB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
