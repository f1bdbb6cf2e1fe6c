"""The door to embedding images: `embed_images` embeds here (clipnb.embed.pipeline) or, given a scheduler, on
a Dask cluster's workers (clipnb.embed.dask, whose workers run the same local pipeline on their shards). The
choice is made here and nowhere else, so neither of the two imports the other."""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Sequence

from .pipeline import EmbeddedImages, embed_local, embed_one  # noqa: F401 (embed_one: the door for one image)

if TYPE_CHECKING:
    from ..data.cache import EmbeddingCache
    from ..data.images import Colour
    from ..models.loading import ClipModel


def embed_images(model: ClipModel, items: Sequence, *, batch_size: int | None = None, exact: bool = False,
                 cache: EmbeddingCache | None = None, num_workers: int | None = None, background: Colour | None = None,
                 progress: bool = True, scheduler=None, store: str | os.PathLike | None = None) -> EmbeddedImages:
    """Embed image files (or PIL images) in batches; every item gets one row, failures with an error.

    Args:
        model: the model whose image encoder is used.
        items: image paths and PIL images (see `gather_images` for a folder).
        batch_size: images per forward pass (default: `default_batch_size` for the device).
        exact: decode every image at full size, so pixels equal the model family's own preprocessing (default: large
            JPEGs are decoded at a reduced scale, see `DRAFT_FACTOR`).
        cache: files already embedded by this model (same bytes, any name) are not decoded again.
        num_workers: decoding processes overlapping the model (default: see `default_workers`); 0 embeds in
            streams of this process, one per core (see `stream_plan`).
        background: composite transparent images onto this colour (default: drop alpha, as openai-clip).
        progress: show a progress bar.
        scheduler: a Dask scheduler's address or a `distributed.Client`: embed on its workers instead, shard
            by shard, with the same results (see `clipnb.embed.dask`); the cache is not used there.
        store: with a scheduler, a folder or URL every worker reaches where each shard is kept as Parquet, so a
            rerun reads finished shards instead of embedding them (default: `store` beside the cache, if any).

    Returns:
        EmbeddedImages: `records` (path, width, height, error, note; one row per item, in order), `features`
        [items, D] (L2-normalised; NaN rows where `error` is set), and `stats` (counts and timings of the run).
    """
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch size must be at least 1, not {batch_size}")
    if scheduler is not None:
        from .dask import embed_on_cluster

        return embed_on_cluster(model, items, scheduler, batch_size=batch_size, exact=exact, background=background,
                                cache=cache, store=store, progress=progress)
    return embed_local(model, items, batch_size=batch_size, exact=exact, cache=cache, num_workers=num_workers,
                       background=background, progress=progress)
