"""The embedding map of a collection: every readable image placed in 2-D so that images the model sees as
alike lie close together (UMAP), with its prediction, true class and cluster. Pure: embeddings and tables in,
a table out; `map_plots` draws it and `map_widget` explores it.

UMAP is given the k-nearest-neighbour graph that clipnb's faiss index finds (`vector_index.neighbour_graph`),
so it skips its own neighbour search and memory holds [n, k] neighbours, never an n x n matrix. A seed makes
the map repeatable (UMAP then optimises on one thread).

    >>> table = embedding_map(embedded, results, truth=folder_labels(embedded.records["path"], classes))
    >>> table.columns.tolist()
    ['row', 'path', 'x', 'y', 'prediction', 'confidence', 'truth', 'cluster']
"""
from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
import pandas as pd

from ..zeroshot import schema
from ..embed.pipeline import EmbeddedImages

__all__ = ["COLOURINGS", "MIN_DIST", "NEIGHBOURS", "NO_CLUSTER", "MapError", "colourings", "embedding_map",
           "find_clusters", "layout", "min_cluster_size"]

NEIGHBOURS = 15  # UMAP's default: each image's own neighbourhood, the image itself counted
MIN_DIST = 0.1  # UMAP's default: how tightly alike images may pack on the map
COLOURINGS = ("prediction", "truth", "cluster")  # what a map can be coloured by (those its table holds)
NO_CLUSTER = -1  # the cluster of an image that belongs to none
UMAP_FROM = 4  # UMAP's spectral start needs more points than this less one; fewer are laid out by PCA
SMALLEST_CLUSTER = 5  # see min_cluster_size
CLUSTER_SHARE = 100  # see min_cluster_size


class MapError(ValueError):
    """An embedding map cannot be made or drawn as asked; the message says what to change."""


def min_cluster_size(count: int) -> int:
    """The fewest images a cluster holds on a map of `count` images: 1% of them, and at least 5.

    A share of the collection keeps the number of clusters readable (at most about 100 colours, however
    large the folder), and 5 keeps a few images that UMAP happened to place together from counting as one.
    """
    return max(SMALLEST_CLUSTER, count // CLUSTER_SHARE)


def layout(vectors: np.ndarray, neighbours: int = NEIGHBOURS, seed: int = 0, min_dist: float = MIN_DIST
           ) -> tuple[np.ndarray, int]:
    """2-D positions [n, 2] of unit vectors [n, d] by UMAP (cosine), and the neighbours it used.

    Fewer images than `neighbours` + 1 use every other image as a neighbour; fewer than UMAP_FROM are
    placed by their two principal components instead (UMAP cannot start on so few), one image at (0, 0).
    """
    from ..embed.vector_index import neighbour_graph

    n = len(vectors)
    if n < UMAP_FROM:
        return _pca(vectors), max(0, n - 1)
    used = min(neighbours, n - 1)  # UMAP counts the image itself among its neighbours
    scores, ids = neighbour_graph(vectors, used - 1)
    # UMAP wants each image first among its own neighbours, at distance 0
    knn_ids = np.hstack([np.arange(n)[:, None], ids]).astype(np.int64)
    knn_dists = np.hstack([np.zeros((n, 1), np.float32), np.clip(1 - scores, 0, 2)]).astype(np.float32)
    import umap

    reducer = umap.UMAP(n_neighbors=used, min_dist=min_dist, metric="cosine", random_state=seed,
                        precomputed_knn=(knn_ids, knn_dists, None))
    with warnings.catch_warnings():
        # what a seeded fit from a precomputed graph always says: one thread, and no `transform` later
        warnings.filterwarnings("ignore", message=r"n_jobs value .* overridden")
        warnings.filterwarnings("ignore", message=r"precomputed_knn\[2\]")
        positions = reducer.fit_transform(vectors)
    return np.asarray(positions, dtype=np.float64), used


def _pca(vectors: np.ndarray) -> np.ndarray:
    """The first two principal components of a few vectors (zeros where there are fewer)."""
    centred = vectors.astype(np.float64) - vectors.mean(axis=0)
    out = np.zeros((len(vectors), 2))
    if len(vectors) > 1:
        u, s, _ = np.linalg.svd(centred, full_matrices=False)
        k = min(2, len(s))
        out[:, :k] = u[:, :k] * s[:k]
    return out


def find_clusters(positions: np.ndarray, smallest: int | None = None) -> np.ndarray:
    """A cluster number per point of a 2-D layout (NO_CLUSTER for none): sklearn's HDBSCAN with clusters of at
    least `smallest` points (default `min_cluster_size`).

    Clustered on the map rather than on the embeddings: density is hard to judge in hundreds of dimensions
    (every image is about equally far from most others), UMAP has already gathered alike images, and clusters
    found on the map are the groups a reader sees on it. HDBSCAN needs no number of clusters and leaves
    images that belong to no group out (NO_CLUSTER) instead of forcing them into one.
    """
    from sklearn.cluster import HDBSCAN

    n = len(positions)
    smallest = min_cluster_size(n) if smallest is None else smallest
    if n < max(smallest, 2):
        return np.full(n, NO_CLUSTER, dtype=np.int64)
    return HDBSCAN(min_cluster_size=smallest, copy=True).fit_predict(positions).astype(np.int64)


def embedding_map(embedded: EmbeddedImages, results: pd.DataFrame | None = None,
                  truth: Sequence[str | None] | None = None, *, neighbours: int = NEIGHBOURS, seed: int = 0,
                  min_dist: float = MIN_DIST) -> pd.DataFrame:
    """The embedding map of a collection: one row per readable image, in the order of `embedded`.

    Args:
        embedded: the collection's embeddings (`embed_images`); rows that could not be read, or whose
            embedding is not finite, are left out and counted (the `left_out` setting).
        results: the results table of the same images in the same order (`results_table(embedded, head)`),
            for each image's prediction and confidence.
        truth: one true class (or None) per row of `embedded`, as `folder_labels` gives.
        neighbours: UMAP's n_neighbors (the image itself counted): larger shows the broad layout, smaller
            the local groups.
        seed: the same embeddings and seed give the same map.
        min_dist: UMAP's min_dist: how tightly alike images may pack.

    Returns:
        A DataFrame with `row` (the image's row in `embedded`), `path`, `x`, `y`, `prediction` and
        `confidence` (with `results`), `truth` (with `truth`) and `cluster` (`find_clusters`; NO_CLUSTER for
        none). Its settings (TABLE_SETTINGS["map"]): `neighbours` (as used), `seed`, `min_dist`,
        `min_cluster_size`, `left_out`, `map_note` (what a reader of a small or partial map should know),
        `classes` and `model` (with `results`).
    """
    if isinstance(neighbours, bool) or not isinstance(neighbours, (int, np.integer)) or neighbours < 2:
        raise MapError(f"neighbours must be a whole number of at least 2 (the image itself and one other), "
                       f"got {neighbours!r}")
    if not 0 <= min_dist <= 1:
        raise MapError(f"min_dist must be between 0 and 1 (UMAP's default is {MIN_DIST}), got {min_dist!r}")
    records = embedded.records
    vectors = embedded.features.detach().cpu().numpy().astype(np.float32, copy=False)
    _check_aligned(records, results, truth)
    keep = embedded.ok & np.isfinite(vectors).all(axis=1)
    left_out = int((~keep).sum())
    rows = np.flatnonzero(keep)
    if len(rows) == 0:
        raise MapError(f"no readable image to map: all {len(records)} rows of the embeddings failed to read "
                       f"(see embedded.records['error']); embed a folder with readable images")
    positions, used = layout(vectors[rows], int(neighbours), seed, min_dist)
    table = pd.DataFrame({"row": rows, "path": records["path"].to_numpy()[rows],
                          "x": positions[:, 0], "y": positions[:, 1]})
    if results is not None:
        table["prediction"] = results["prediction"].to_numpy()[rows]
        table["confidence"] = results["confidence"].to_numpy(dtype=float)[rows]
    if truth is not None:
        table["truth"] = pd.Series([truth[r] for r in rows], dtype=object)
    smallest = min_cluster_size(len(rows))
    table["cluster"] = find_clusters(positions, smallest)
    schema.set_settings(table, neighbours=used, neighbours_asked=int(neighbours), seed=seed, min_dist=min_dist,
                        min_cluster_size=smallest, left_out=left_out)
    schema.set_settings(table, map_note=map_note(table))
    if results is not None:
        schema.set_settings(table, classes=schema.classes(results))
        if "model" in results.attrs:
            schema.set_settings(table, model=results.attrs["model"])
    return table


def _check_aligned(records: pd.DataFrame, results, truth) -> None:
    if results is not None:
        if len(results) != len(records) or not np.array_equal(results["path"].astype(str).to_numpy(),
                                                               records["path"].astype(str).to_numpy()):
            raise MapError(f"the results table ({len(results)} rows) is not of the embedded images "
                           f"({len(records)} rows) in the same order: score these embeddings with "
                           f"results_table(embedded, head) and pass that table")
    if truth is not None and len(truth) != len(records):
        raise MapError(f"truth has {len(truth)} entries but there are {len(records)} embedded images: give one "
                       f"true class (or None) per image, as folder_labels(embedded.records['path'], classes) does")


def map_note(table: pd.DataFrame, lang: str = "en") -> str:
    """What a reader of a small or partial map should know, in `lang` (from the map table's settings): the
    unreadable images left out, and a map of too few images for UMAP or for the neighbours asked for; ""
    when nothing."""
    from ..words import plural
    from ..words import word

    if "neighbours" not in table.attrs:  # not made by embedding_map (a table read back): nothing known
        return ""
    count, left_out = len(table), int(table.attrs.get("left_out", 0))
    used = table.attrs.get("neighbours")
    asked = table.attrs.get("neighbours_asked", used)
    parts = []
    if left_out:
        parts.append(word("map.left_out", lang, images=plural(left_out, "unreadable image"), count=left_out))
    if count < UMAP_FROM:
        parts.append(word("map.principal", lang, images=plural(count, "image"), count=count))
    elif used is not None and asked is not None and used < asked:
        parts.append(word("map.few_neighbours", lang, count=count, used=used, asked=asked))
    return "; ".join(parts)


def colourings(table: pd.DataFrame) -> list[str]:
    """What a map table can be coloured by: those of COLOURINGS it has a column for."""
    return [c for c in COLOURINGS if c in table.columns]


def check_colouring(table: pd.DataFrame, colour: str) -> str:
    """`colour` when the map can be coloured by it, else a MapError naming the choices."""
    if colour not in COLOURINGS:
        raise MapError(f"cannot colour the map by {colour!r}: choose one of {', '.join(colourings(table))}")
    if colour not in table.columns:
        given = {"prediction": "pass a results table to embedding_map", "truth": "pass truth to embedding_map"}
        raise MapError(f"this map has no {colour} to colour by ({given.get(colour, '')}); "
                       f"choose one of {', '.join(colourings(table))}")
    return colour
