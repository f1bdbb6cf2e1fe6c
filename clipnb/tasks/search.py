"""Search a folder by meaning: text -> images (以文搜图), image -> similar images, and image -> captions.

A folder is embedded once (`index_images`, through the embedding cache, so a second search of the same
folder decodes nothing; on a Dask cluster with scheduler=, or read back from the cluster's Parquet store
with `index_from_store`). Below `EXACT_BELOW` images a query is one matrix product (`top_k`, the pure
core); above it a faiss index (`clipnb.embed.vector_index`, built on the first query) finds the candidates and
their cosines are then computed exactly, so scores are those of exact search.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
import pandas as pd
import torch

from ..embed.pipeline import embed_one
from ..embed.runner import embed_images
from ..data.images import ImageInput, ImageSource, gather_images
from ..models.loading import ClipModel
from ..zeroshot.prompts import PromptError
from ..zeroshot.schema import set_settings
from ..zeroshot.scoring import encode_texts, probabilities_from_scores, warn_languages
from ..embed.vector_index import EXACT_BELOW, VectorIndex

if TYPE_CHECKING:
    from ..data.cache import EmbeddingCache


@dataclass
class ImageIndex:
    """The readable images of a folder and their embeddings, ready for queries."""

    paths: list[str]
    features: torch.Tensor  # [images, D], L2-normalised
    model_fingerprint: str
    skipped: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["path", "error"]))
    stats: dict = field(default_factory=dict)
    _vectors: VectorIndex | None = field(default=None, repr=False)  # the approximate index, once built

    def __len__(self) -> int:
        return len(self.paths)

    def nearest(self, query: torch.Tensor, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, rows) of the `k` images closest to `query`, best first: exact below EXACT_BELOW images,
        else candidates from an approximate index (built once, on first use) ranked by their exact cosine."""
        if len(self) < EXACT_BELOW:
            return top_k(query, self.features, k)
        if self._vectors is None:
            self._vectors = VectorIndex.build(self.features.float().numpy())
        # twice the candidates asked for, so that exact re-ranking can reorder the approximate top k
        _, rows = self._vectors.search(query.float().reshape(1, -1).numpy(), min(len(self), 2 * k))
        scores, order = top_k(query, self.features[torch.from_numpy(rows[0])], k)
        return scores, rows[0][order]


def index_images(model: ClipModel, images_or_folder: ImageSource, *, recursive: bool = False, cache: EmbeddingCache | None = None, batch_size: int | None = None,
                 exact: bool = False, num_workers: int | None = None, progress: bool = True, scheduler=None,
                 store: str | os.PathLike | None = None) -> ImageIndex:
    """Embed a folder (or a list of image paths) for searching.

    Args:
        model: the model whose image encoder is used.
        images_or_folder: a folder, one image file, or a list of paths and PIL images.
        recursive: also take the images in a folder's subfolders.
        cache, batch_size, exact, num_workers, progress, scheduler, store: how images are embedded (see
            `embed_images`; with a scheduler, on a Dask cluster).

    Returns:
        An ImageIndex of the readable images (paths, features); unreadable files are listed in `skipped`
        with their error.
    """
    items = gather_images(images_or_folder, recursive=recursive)
    embedded = embed_images(model, items, exact=exact, cache=cache, num_workers=num_workers,
                            progress=progress, batch_size=batch_size, scheduler=scheduler, store=store)
    ok = embedded.ok
    records = embedded.records
    return ImageIndex(paths=list(records.loc[ok, "path"]), features=embedded.features[torch.from_numpy(ok.copy())],
                      model_fingerprint=model.fingerprint,
                      skipped=records.loc[~ok, ["path", "error"]].reset_index(drop=True), stats=embedded.stats)


def index_from_store(model: ClipModel, store: str | os.PathLike, *, exact: bool = False,
                     background=None) -> ImageIndex:
    """The images a cluster run stored (`classify(..., scheduler=..., store=...)`) as an ImageIndex, without
    reading or embedding any image: this model's embeddings, for the decoding mode asked for. A path
    stored by several runs counts once (its last shard); rows with an error are listed in `skipped`."""
    from ..embed.dask import read_store
    from ..embed.pipeline import variant as decoding

    variant = decoding(exact, background)
    stored = read_store(store, model.fingerprint)
    stored = stored[stored["variant"] == variant].drop_duplicates("path", keep="last").reset_index(drop=True)
    if stored.empty:
        raise FileNotFoundError(f"the store {store} holds no embeddings of {model.name} ({variant}); embed a "
                                "folder into it first: classify(folder, classes, scheduler=..., store=...)")
    ok = stored["error"].eq("").to_numpy()
    features = torch.from_numpy(np.stack(stored.loc[ok, "embedding"].to_numpy()).astype(np.float32))
    return ImageIndex(paths=list(stored.loc[ok, "path"]), features=features, model_fingerprint=model.fingerprint,
                      skipped=stored.loc[~ok, ["path", "error"]].reset_index(drop=True))


def top_k(query: torch.Tensor, features: torch.Tensor, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(scores, indices) of the `k` rows of `features` with the highest cosine to `query`, best first.

    Ties keep index order, so results are reproducible.
    """
    if k < 1:
        raise ValueError(f"top must be at least 1, not {k}")
    scores = (features.float() @ query.float().reshape(-1)).numpy()
    order = np.argsort(-scores, kind="stable")[:k]
    return scores[order], order


def _hits(index: ImageIndex, query: torch.Tensor, top: int, exclude: set[int] = frozenset()) -> pd.DataFrame:
    if top < 1:
        raise ValueError(f"top must be at least 1, not {top}")
    k = min(len(index), top + len(exclude))
    scores, order = index.nearest(query, k) if k else (np.zeros(0), np.zeros(0, dtype=int))
    kept = [(s, i) for s, i in zip(scores, order) if i not in exclude][:top]
    # paths kept as given (object dtype, as `embed_images` keeps them): a name that is not valid UTF-8 does not
    # fit pandas' Arrow-backed strings, and the CSV writer escapes it
    paths = pd.Series([index.paths[i] for _, i in kept], dtype=object)
    return pd.DataFrame({"rank": np.arange(1, len(kept) + 1), "path": paths, "score": [float(s) for s, _ in kept]})


def _check_index(index: ImageIndex, model: ClipModel) -> None:
    if index.model_fingerprint != model.fingerprint:
        raise ValueError(f"this index was built with another model than {model.name}; "
                         "build it again with index_images(model, folder)")


def search_text(index: ImageIndex, model: ClipModel, text: str, top: int = 10, *, truncate: bool = False,
                cache: EmbeddingCache | None = None) -> pd.DataFrame:
    """Images ranked by cosine similarity to a text.

    Args:
        index: the searched images (`index_images`).
        model: the model that made the index.
        text: what to look for (a blank text is refused).
        top: how many hits to return.
        truncate: cut a text longer than the model's context instead of refusing it.
        cache: keeps the text embedding on disk.

    Returns:
        A table (rank, path, score), best first; its settings hold the query and the model.
    """
    if not isinstance(text, str) or not text.strip():
        raise PromptError("the search text is blank; give words to search for, such as 'a red circle'")
    _check_index(index, model)
    # a Chinese query to an English-only model, or "a cat" to the demo model, finds nothing it means
    warn_languages(model, [text], vocabulary=True)
    query = encode_texts(model, [text.strip()], truncate=truncate, cache=cache)[0]
    hits = _hits(index, query, top)
    set_settings(hits, query=text.strip(), model=model.name)
    return hits


def search_image(index: ImageIndex, model: ClipModel, image: ImageInput, top: int = 10, *, include_self: bool = False,
                 cache: EmbeddingCache | None = None) -> pd.DataFrame:
    """Images most similar to one image, ranked by cosine similarity.

    Args:
        index: the searched images (`index_images`).
        model: the model that made the index.
        image: the query, a path or a PIL image; when it is one of the indexed files its own embedding is used.
        top: how many hits to return.
        include_self: keep the query itself among the hits when it is indexed.
        cache: an embedding cache for the query image.

    Returns:
        A table (rank, path, score), best first; its settings hold the query and the model.
    """
    _check_index(index, model)
    exclude: set[int] = set()
    if isinstance(image, (str, os.PathLike)):
        if not Path(image).is_file():
            raise FileNotFoundError(f"query image {image} does not exist")
        target = os.path.realpath(image)
        same = [i for i, p in enumerate(index.paths) if os.path.realpath(p) == target]
        if same and not include_self:
            exclude = set(same)
        query = index.features[same[0]] if same else embed_one(model, image, cache=cache, exact=False)
    else:
        query = embed_one(model, image, cache=cache)
    hits = _hits(index, query, top, exclude)
    set_settings(hits, query=str(image) if isinstance(image, (str, os.PathLike)) else "<image>",
                 model=model.name)
    return hits


def rank_captions(model: ClipModel, image: ImageInput, captions: Sequence[str], *, truncate: bool = False,
                  cache: EmbeddingCache | None = None) -> pd.DataFrame:
    """Captions ranked for one image (以图搜文).

    Args:
        model: the model.
        image: one image file or PIL image.
        captions: the captions to rank.
        truncate: cut captions longer than the model's context instead of refusing them.
        cache: an embedding cache for the image and the captions.

    Returns:
        A table (rank, caption, score, probability), best first: the cosine score and the softmax probability
        over the given captions (CLIP's logit scale); for sigmoid models (SigLIP) each caption's own
        sigmoid probability.
    """
    captions = [c.strip() if isinstance(c, str) else c for c in captions]
    if not captions:
        raise PromptError("no captions given: give at least one caption to rank")
    if any(not isinstance(c, str) or not c for c in captions):
        raise PromptError("a caption is blank; every caption needs words")
    if isinstance(image, (str, os.PathLike)) and not Path(image).is_file():
        raise FileNotFoundError(f"image {image} does not exist")
    warn_languages(model, captions)
    text_features = encode_texts(model, captions, truncate=truncate, cache=cache)
    query = embed_one(model, image, cache=cache)
    scores = text_features @ query
    probabilities = probabilities_from_scores(scores, model.logit_scale, model.logit_bias, dim=0)
    table = pd.DataFrame({"caption": captions, "score": scores.numpy().astype(float),
                          "probability": probabilities.numpy().astype(float)})
    table = table.sort_values("score", ascending=False, kind="stable").reset_index(drop=True)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    return table
