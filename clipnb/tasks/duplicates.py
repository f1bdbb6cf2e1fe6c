"""Exact and near duplicates in a collection: files -> content hashes and embeddings -> groups -> a table.

- Exact copies are files with the same bytes: the SHA-256 the embedding cache already keeps for every file
  (read again only for files it has not seen).
- Near copies are images whose embeddings have a cosine at or above a threshold: a photo resized,
  recompressed or lightly cropped stays close to its original, while another photo of the same subject
  moves further. `DEFAULT_THRESHOLD` was measured on such planted copies (docs/collection.md, and
  `python -m clipnb.bench.duplicates` measures it again for any model on any photos).

Candidates come from each image's nearest neighbours (`vector_index.neighbour_graph`), so memory is the
index plus n x `NEIGHBOURS` answers, never an n x n matrix. Pairs at or above the threshold are edges of a
graph whose connected components (scipy) are the groups: a chain of close pairs is one group, even when its
two ends are less alike than the threshold, which is what a photo edited in small steps looks like.
"""
from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Sequence

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from ..embed.pipeline import EmbeddedImages
from ..embed.runner import embed_images
from ..data.images import ImageSource, gather_images
from ..data.files import file_sha256
from ..models.loading import DEFAULT_MODEL, ClipModel, load_model
from ..zeroshot.schema import set_settings
from ..zeroshot.scoring import ClassWarning, small_world
from ..words import word

if TYPE_CHECKING:
    from ..data.cache import EmbeddingCache

# Cosine at or above which two images are near copies (measured: docs/collection.md, "Near-duplicates").
DEFAULT_THRESHOLD = 0.96
# Nearest neighbours searched per image; a group larger than this is still found whole, through its members.
NEIGHBOURS = 10
COLUMNS = ["path", "group", "similarity"]
SIMILARITY_DECIMALS = 4  # in the CSV: 0.9996, not 0.9996280670166016


def content_hashes(paths: Sequence, cache: EmbeddingCache | None = None) -> list[str | None]:
    """SHA-256 of each file's bytes (None for a PIL image or a file that cannot be read): from the cache when
    it has seen the file, else read here in threads (hashlib works outside the GIL)."""
    files = [i for i, p in enumerate(paths) if isinstance(p, (str, os.PathLike))]
    hashes: list[str | None] = [None] * len(paths)
    if cache is not None:
        for i, (content, _error) in zip(files, cache.content_keys([paths[i] for i in files])):
            hashes[i] = content
        return hashes

    def digest(path):
        try:
            return file_sha256(path)
        except OSError:
            return None  # the embedding step says why it cannot be read

    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        for i, content in zip(files, pool.map(digest, [paths[i] for i in files])):
            hashes[i] = content
    return hashes


def check_threshold(threshold: float) -> float:
    """The threshold as a float, or a ValueError saying what a usable one is."""
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.floating)) \
            or not -1 <= float(threshold) <= 1:
        raise ValueError(f"the duplicate threshold is a cosine between -1 and 1 (default {DEFAULT_THRESHOLD}), "
                         f"not {threshold!r}; higher finds only closer copies")
    return float(threshold)


def duplicate_groups(features: np.ndarray, contents: Sequence[str | None], threshold: float = DEFAULT_THRESHOLD,
                     neighbours: int = NEIGHBOURS) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The grouping itself, on arrays: pure.

    Args:
        features: float [n, D], L2-normalised; rows of NaN (unreadable images) join groups only as exact copies.
        contents: one content hash (or None) per row.
        threshold: the cosine at or above which two images are near copies.
        neighbours: candidates searched per image.

    Returns:
        (group, similarity, partner, exact): per row, its group number (1 = the largest group; 0 = in no
        group), its highest cosine to another member of its group (to its nearest image when in no group;
        NaN for an unreadable file in no group), the row of that image (-1 when none), and whether another
        member has the same bytes.
    """
    from ..embed.vector_index import neighbour_graph

    threshold = check_threshold(threshold)
    n = len(features)
    features = np.asarray(features, dtype=np.float32)
    readable = np.flatnonzero(np.isfinite(features).all(axis=1)) if n else np.zeros(0, dtype=int)
    similarity = np.full(n, np.nan)
    partner = np.full(n, -1)
    rows, cols, weights = [], [], []  # the graph's edges and their cosines
    if len(readable) > 1:
        scores, ids = neighbour_graph(features[readable], neighbours)
        similarity[readable], partner[readable] = scores[:, 0], readable[ids[:, 0]]
        close = scores >= threshold
        rows.append(np.repeat(readable, close.sum(axis=1)))
        cols.append(readable[ids[close]])
        weights.append(scores[close].astype(float))
    firsts_of_content: dict[str, int] = {}
    same = [(i, firsts_of_content.setdefault(c, i)) for i, c in enumerate(contents) if c is not None]
    same = np.array([pair for pair in same if pair[0] != pair[1]], dtype=int).reshape(-1, 2)
    rows.append(same[:, 0])  # exact copies: same bytes, readable or not
    cols.append(same[:, 1])
    weights.append(np.ones(len(same)))
    exact = np.zeros(n, dtype=bool)
    exact[same.ravel()] = True
    rows, cols, weights = np.concatenate(rows), np.concatenate(cols), np.concatenate(weights)
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    sizes = np.bincount(component, minlength=n)
    grouped = sizes[component] > 1
    # number groups by size (largest first), then by their first row, so a rerun numbers them the same
    first_row = {}
    for i in np.flatnonzero(grouped):
        first_row.setdefault(component[i], i)
    number = {c: k + 1 for k, c in enumerate(sorted(first_row, key=lambda c: (-sizes[c], first_row[c])))}
    group = np.array([number.get(c, 0) for c in component], dtype=int)
    # a member's similarity is its best edge inside its group (its nearest image may lie outside it)
    ends = np.concatenate([rows, cols])
    others = np.concatenate([cols, rows])
    doubled = np.concatenate([weights, weights])
    best = np.full(n, -np.inf)
    np.maximum.at(best, ends, doubled)
    inside = group > 0
    similarity[inside] = best[inside]
    for end, other, weight in zip(ends, others, doubled):  # the partner: the other end of that best edge
        if inside[end] and weight == best[end]:
            partner[end] = other
    return group, similarity, partner, exact


def duplicates_table(paths: Sequence, features, contents: Sequence[str | None], threshold: float = DEFAULT_THRESHOLD,
                     errors: Sequence[str] | None = None, neighbours: int = NEIGHBOURS) -> pd.DataFrame:
    """One row per file: path, group (a number; empty, pd.NA, for a file in no group), similarity (its highest
    cosine to another member of its group; to its nearest image when in no group), nearest (that image's
    path), exact (another member has the same bytes) and error (why it could not be read).

    Rows of groups come first, by group (largest first), then the files in no group in their given order.
    """
    features = np.asarray(features, dtype=np.float32).reshape(len(paths), -1) if len(paths) else np.zeros((0, 1))
    group, similarity, partner, exact = duplicate_groups(features, contents, threshold, neighbours)
    names = pd.Series([str(p) for p in paths], dtype=object)
    table = pd.DataFrame({
        "path": names,
        "group": pd.array([g if g else None for g in group], dtype="Int64"),
        "similarity": similarity,
        "nearest": pd.Series([names[j] if j >= 0 else "" for j in partner], dtype=object),
        "exact": exact,
        "error": list(errors) if errors is not None else [""] * len(paths),
    })
    table["_order"] = np.where(group > 0, group, group.max(initial=0) + 1)
    table = table.sort_values(["_order"], kind="stable").drop(columns="_order").reset_index(drop=True)
    set_settings(table, threshold=threshold, groups=int(group.max(initial=0)),
                 grouped=int((group > 0).sum()))
    return table


def find_duplicates(images_or_folder: ImageSource, model: ClipModel | str | None = None, *,
                    threshold: float = DEFAULT_THRESHOLD, recursive: bool = False, cache: EmbeddingCache | None = None,
                    embedded: EmbeddedImages | None = None, exact: bool = False, batch_size: int | None = None,
                    num_workers: int | None = None, progress: bool = True, scheduler=None,
                    store: str | os.PathLike | None = None) -> pd.DataFrame:
    """Exact and near duplicates among a folder's images (or a list of files).

    Args:
        images_or_folder: a folder (subfolders too with `recursive`), or a list of image paths.
        model: a loaded model, a name or checkpoint for `load_model`, or None for the default model.
        threshold: the cosine at or above which two images are near copies (default `DEFAULT_THRESHOLD`).
        cache: the embedding cache: images and content hashes it holds are not read again.
        embedded: these images already embedded by `model` (`embed_images`), for example the ones a
            classification ran on; nothing is embedded again.
        exact, batch_size, num_workers, progress, scheduler, store: how images are embedded (see
            `embed_images`; with a Dask scheduler, on its workers).

    Returns:
        The table of `duplicates_table`; its settings hold the threshold, the model and the group counts.
        `write_duplicates` writes it as the CSV path, group, similarity.
    """
    threshold = check_threshold(threshold)
    items = gather_images(images_or_folder, recursive=recursive)
    model = model if isinstance(model, ClipModel) else load_model(model or DEFAULT_MODEL)
    if embedded is None:
        embedded = embed_images(model, items, cache=cache, exact=exact, batch_size=batch_size,
                                num_workers=num_workers, progress=progress, scheduler=scheduler, store=store)
    elif embedded.model_fingerprint != model.fingerprint:
        raise ValueError(f"these embeddings were made by another model than {model.name}; embed the images "
                         "with it, or give the model that made them")
    paths = list(embedded.records["path"])
    table = duplicates_table(paths, embedded.features.numpy(), content_hashes(paths, cache), threshold,
                             errors=embedded.records["error"].tolist())
    set_settings(table, model=model.name)
    near = table["group"].notna() & ~table["exact"]
    caution = small_world(model, word("warning.drawings_alike"))
    if near.any() and caution:
        warnings.warn(caution, ClassWarning, stacklevel=2)
    return table


def duplicate_summary(table: pd.DataFrame, lang: str = "en") -> str:
    """One sentence in `lang`: how many groups, how many files in them, how many of those exact copies."""
    from ..words import plural, word

    grouped = table[table["group"].notna()]
    groups = grouped["group"].nunique()
    threshold = table.attrs.get("threshold", DEFAULT_THRESHOLD)
    if not groups:
        return word("duplicates.none", lang, files=plural(len(table), "file"), count=len(table), threshold=threshold)
    return word("duplicates.summary", lang, groups=plural(groups, "group"), group_count=groups,
                files=plural(len(grouped), "file"), file_count=len(grouped), total=len(table),
                exact=int(grouped["exact"].sum()), threshold=threshold)


def __getattr__(name: str):
    """write_duplicates moved to clipnb.report.writers (clipnb._moved.NAMES), for one release, with a warning."""
    from .._moved import moved_name

    return moved_name(__name__, name)
