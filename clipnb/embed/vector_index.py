"""Nearest-neighbour search over L2-normalised embeddings, where cosine similarity is the inner product.

`VectorIndex.build(vectors)` picks the index from the number of rows:

- below `EXACT_BELOW` rows, exact search (faiss `IndexFlatIP`): a scan of every row is as quick as an
  approximate index there, needs no training and is always right;
- from `EXACT_BELOW` rows on, an inverted-file index (faiss `IVF{nlist},SQ8`): k-means cells whose vectors are
  stored as 8-bit codes (a quarter of float32's memory), of which `nprobe` are scanned per query, `nprobe`
  being tuned at build time for recall@10 >= `TARGET_RECALL` against exact search, with rows of the data as
  queries; queries unlike the rows (text against images) may want `tune_nprobe(vectors, queries=...)`.

faiss rather than a home-made index: clip-retrieval, whose indexes clipnb's users already have, builds faiss
indexes, and faiss (Meta) is the mature library for this. The figures behind the constants are printed by
`python -m clipnb.bench.index_speed` (see its docstring).

    >>> index = VectorIndex.build(image_embeddings)        # float32 [n, d], rows of norm 1
    >>> scores, ids = index.search(text_embedding, k=10)   # [1, 10] cosines and row numbers, best first
    >>> index.save("photos.faiss"); VectorIndex.load("photos.faiss").kind   # for 1,000,000 rows
    'IVF4000,SQ8'

Threads: faiss runs on OpenMP's default (all cores) for batches of queries; one query runs on one thread.
Nothing here changes that (no measurement gave a reason to).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

try:
    import faiss
except ImportError as error:  # a partial install: say how to get it
    raise ImportError("clipnb.embed.vector_index needs faiss: pip install faiss-cpu (or conda install -c pytorch "
                      "faiss-cpu)") from error

__all__ = ["EXACT_BELOW", "TARGET_RECALL", "VectorIndex", "neighbour_graph"]

# Below this many rows exact search answers one query about as fast as IVF (median within 1.5x, ~1 ms, on
# the benchmark's 2-core machine: "exact search is as fast below" in its output), and it needs no training
# and is never wrong, so it is used there.
EXACT_BELOW = 10_000
TARGET_RECALL = 0.95  # recall@10 against exact search that nprobe is tuned for
NORM_TOLERANCE = 1e-2  # how far from 1 a row's norm may be (float16 embeddings are off by ~1e-3)
KMEANS_ITERATIONS = 10  # enough to place the cells; faiss's default 25 costs 2.5x the training time
TRAIN_PER_CELL = 40  # training rows per k-means cell (faiss warns below 39)
CALIBRATION_QUERIES = 256  # rows used as queries when nprobe is tuned
# Every row's neighbours at once: faiss's exact search answers a whole batch with one matrix product, which
# beats the IVF index (whose nprobe is tuned for recall) up to far more rows than single queries do
# (docs/collection.md, "Speed").
GRAPH_EXACT_BELOW = 100_000
NEIGHBOUR_BATCH = 4096  # queries per faiss call in `neighbour_graph`: bounds the answers held at once
CALIBRATION_MARGIN = 0.02  # tune for TARGET_RECALL + this, since real queries are not rows of the data


def cells_for(n: int) -> int:
    """nlist for n rows: about 4*sqrt(n) (faiss's guideline), with enough rows per cell to train on."""
    return max(1, min(round(4 * math.sqrt(n)), n // TRAIN_PER_CELL))


class VectorIndex:
    """A faiss index of unit vectors searched by inner product (= cosine); ids are row numbers in `build`'s array.

    Build with `VectorIndex.build`, or read a saved one with `VectorIndex.load`.
    """

    def __init__(self, index: "faiss.Index"):
        if index.metric_type != faiss.METRIC_INNER_PRODUCT:
            raise ValueError("the faiss index does not use the inner-product metric; VectorIndex searches by "
                             "cosine, which is the inner product of normalised vectors")
        # faiss's Python wrappers already return the concrete class (IndexIVFScalarQuantizer, ...); a
        # faiss.downcast_index here would make a second wrapper that does not own the index
        self.index = index
        self.kind = _kind(self.index)  # fails on index types this module does not build

    # ---- building -----------------------------------------------------------------------------------

    @classmethod
    def build(cls, vectors: np.ndarray, exact_below: int = EXACT_BELOW, seed: int = 0) -> "VectorIndex":
        """Index `vectors` (float [n, d], each row of norm 1): exact below `exact_below` rows, IVF-SQ8 above.

        The IVF path trains k-means on a random sample of rows drawn with `seed` (so a build is repeatable)
        and sets `nprobe` by measuring recall on rows of the data (see `tune_nprobe`).
        """
        vectors = _rows(vectors, "vectors")
        n, d = vectors.shape
        if n < exact_below:
            index = faiss.IndexFlatIP(d)
            index.add(vectors)
            return cls(index)
        nlist = cells_for(n)
        index = faiss.index_factory(d, f"IVF{nlist},SQ8", faiss.METRIC_INNER_PRODUCT)
        index.cp.niter = KMEANS_ITERATIONS
        index.cp.spherical = True  # centroids of norm 1, like the vectors they stand for
        index.cp.seed = seed
        rng = np.random.default_rng(seed)
        sample = np.sort(rng.choice(n, size=min(n, TRAIN_PER_CELL * nlist), replace=False))
        index.train(vectors[sample])
        index.add(vectors)
        built = cls(index)
        built.tune_nprobe(vectors, seed=seed)
        return built

    def tune_nprobe(self, vectors: np.ndarray, queries: np.ndarray | None = None,
                    recall: float = TARGET_RECALL + CALIBRATION_MARGIN, k: int = 10, seed: int = 0) -> int:
        """Set nprobe to the smallest power of two whose recall@k against exact search over `vectors` (the
        indexed data) reaches `recall`, and return it.

        The queries are `queries` where given (best: ones like the searches to come, such as text
        embeddings, which lie further from the images than images from each other), else a random sample
        of rows of `vectors`; each of those finds itself, which says nothing of the index, so its own row
        is dropped from both answers before they are compared.
        """
        if self.kind == "exact":
            return 0
        vectors = _rows(vectors, "vectors", dim=self.dim)
        if queries is None:
            rng = np.random.default_rng(seed + 1)  # not the training sample's stream
            own = np.sort(rng.choice(len(vectors), size=min(len(vectors), CALIBRATION_QUERIES), replace=False))
            queries = vectors[own]
            k = min(k, len(vectors) - 1)
        else:
            queries = _rows(queries, "queries", dim=self.dim, allow_1d=True)
            own = np.full(len(queries), -1)  # no query is a row of the data
            k = min(k, len(vectors))
        _, truth = faiss.knn(queries, vectors, k + 1, faiss.METRIC_INNER_PRODUCT)
        truth = _without(truth, own, k)
        nprobe = 1
        while True:
            _, found = self.index.search(queries, k + 1, params=faiss.SearchParametersIVF(nprobe=nprobe))
            found = _without(found, own, k)
            hits = sum(len(set(a) & set(b)) for a, b in zip(found, truth))
            if hits >= recall * truth.size or nprobe >= self.index.nlist:
                break
            nprobe = min(2 * nprobe, self.index.nlist)
        self.index.nprobe = nprobe
        return nprobe

    @property
    def nprobe(self) -> int:
        """Cells scanned per query (0 for exact search); set it to trade speed for recall."""
        return self.index.nprobe if self.kind != "exact" else 0

    @nprobe.setter
    def nprobe(self, value: int) -> None:
        if self.kind == "exact":
            raise ValueError("an exact index has no nprobe: it always scans every row")
        if not 1 <= value <= self.index.nlist:
            raise ValueError(f"nprobe must be between 1 and nlist={self.index.nlist}, got {value}")
        self.index.nprobe = int(value)

    # ---- searching ----------------------------------------------------------------------------------

    def __len__(self) -> int:
        return self.index.ntotal

    @property
    def dim(self) -> int:
        return self.index.d

    def search(self, queries: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest rows of each query (float [q, d] or one query [d], norm 1), best first.

        Returns (scores float32 [q, k'], ids int64 [q, k']) with k' = min(k, len(self)): cosines (8-bit
        approximations, within about 1e-2, for an IVF-SQ8 index) and row numbers; never -1 or NaN.
        """
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be a positive whole number of neighbours, got {k!r}")
        queries = _rows(queries, "queries", dim=self.dim, allow_1d=True)
        k = min(int(k), len(self))
        scores, ids = self.index.search(queries, k)
        missing = (ids < 0).any(axis=1)
        if missing.any():
            # the probed cells held fewer than k rows: scanning every cell finds them all
            params = faiss.SearchParametersIVF(nprobe=self.index.nlist)
            scores[missing], ids[missing] = self.index.search(queries[missing], k, params=params)
        return scores, ids

    # ---- files --------------------------------------------------------------------------------------

    def save(self, path) -> None:
        """Write the index to `path` (faiss's format, readable by faiss.read_index and clip-retrieval).

        Written as every clipnb export is (`export.atomic_path`): to a temporary file beside it, then renamed,
        so a crash never leaves half a file; a failure is an ExportError saying why.
        """
        from ..data.files import atomic_path

        with atomic_path(path) as temporary:
            faiss.write_index(self.index, str(temporary))

    @classmethod
    def load(cls, path) -> "VectorIndex":
        """Read an index written by `save`."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no index file at {path}")
        return cls(faiss.read_index(str(path)))

    def __repr__(self) -> str:
        probe = f", nprobe={self.nprobe}" if self.kind != "exact" else ""
        return f"VectorIndex(kind={self.kind!r}, n={len(self)}, dim={self.dim}{probe})"


def neighbour_graph(vectors: np.ndarray, k: int, *, index: VectorIndex | None = None,
                    batch: int = NEIGHBOUR_BATCH) -> tuple[np.ndarray, np.ndarray]:
    """Every row's `k` nearest other rows: the k-nearest-neighbour graph of a collection, which the embedding
    map (UMAP) and the near-duplicate finder both read.

    Searched through `index` (default: exact below GRAPH_EXACT_BELOW rows, else `VectorIndex.build`'s IVF
    index) in batches of `batch` queries, so memory holds the index and [n, k] answers, never an n x n matrix.

    Returns (scores float32 [n, k'], ids int64 [n, k']) with k' = min(k, n - 1), best first, a row's own
    number left out (an identical copy of a row still counts as a neighbour).
    """
    vectors = _rows(vectors, "vectors")
    n = len(vectors)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive whole number of neighbours, got {k!r}")
    k = min(int(k), n - 1)
    if k < 1:
        return np.zeros((n, 0), dtype=np.float32), np.zeros((n, 0), dtype=np.int64)
    index = VectorIndex.build(vectors, exact_below=GRAPH_EXACT_BELOW) if index is None else index
    scores = np.empty((n, k), dtype=np.float32)
    ids = np.empty((n, k), dtype=np.int64)
    for start in range(0, n, batch):
        rows = np.arange(start, min(n, start + batch))
        found_scores, found = index.search(vectors[rows], k + 1)
        for j, own in enumerate(rows):
            keep = found[j] != own
            if keep.all():  # an exact tie put the row's own number past the k + 1 asked for
                keep[-1] = False
            scores[own], ids[own] = found_scores[j][keep], found[j][keep]
    return scores, ids


# ---- helpers --------------------------------------------------------------------------------------------

def _kind(index) -> str:
    """'exact', or the faiss factory string of the IVF index (as `build` makes them)."""
    if isinstance(index, faiss.IndexFlat):
        return "exact"
    if isinstance(index, faiss.IndexIVFScalarQuantizer) and index.sq.qtype == faiss.ScalarQuantizer.QT_8bit:
        return f"IVF{index.nlist},SQ8"
    if isinstance(index, faiss.IndexIVFFlat):
        return f"IVF{index.nlist},Flat"
    raise ValueError(f"VectorIndex reads flat and IVF (Flat or SQ8) indexes; this one is a "
                     f"{type(index).__name__}")


def _rows(x, name: str, dim: int | None = None, allow_1d: bool = False) -> np.ndarray:
    """`x` as a C-contiguous float32 [n, d] array of unit rows, or a ValueError that says what to fix."""
    x = np.asarray(x)
    if allow_1d and x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2:
        shape = "[q, d] or [d]" if allow_1d else "[n, d]"
        raise ValueError(f"{name} must be a 2-D array {shape} (one embedding per row), got shape {x.shape}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {x.shape}): give at least one embedding")
    if dim is not None and x.shape[1] != dim:
        raise ValueError(f"{name} have {x.shape[1]} dimensions but the index has {dim}: embed them with the "
                         f"model the index was built from")
    if not np.issubdtype(x.dtype, np.number) or np.iscomplexobj(x):
        raise ValueError(f"{name} must be real numbers, got dtype {x.dtype}")
    x = np.ascontiguousarray(x, dtype=np.float32)
    norms = np.sqrt(np.einsum("ij,ij->i", x, x))  # no temporary the size of x (2 GB at 1M x 512)
    suspects = np.flatnonzero(~np.isfinite(norms))
    rows = suspects[~np.isfinite(x[suspects]).all(axis=1)]  # not merely too large to square in float32
    if len(rows):
        raise ValueError(f"{name} has {len(rows)} row(s) with NaN or infinite values (first: row {rows[0]}): "
                         f"drop or re-embed them")
    off = np.abs(norms - 1) > NORM_TOLERANCE
    if off.any():
        first = np.flatnonzero(off)[0]
        raise ValueError(f"{name} must be L2-normalised (cosine = inner product), but {off.sum()} row(s) are "
                         f"not (row {first} has norm {norms[first]:.4g}): divide by "
                         f"np.linalg.norm(x, axis=1, keepdims=True) first")
    return x


def _without(ids: np.ndarray, rows: np.ndarray, k: int) -> np.ndarray:
    """Each row of `ids` [q, k+1] without the query's own row number, cut to k columns (-1 where fewer)."""
    out = np.full((len(ids), k), -1, dtype=ids.dtype)
    for i, (found, own) in enumerate(zip(ids, rows)):
        kept = found[found != own][:k]
        out[i, :len(kept)] = kept
    return out
