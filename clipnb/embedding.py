"""Image embedding in batches: files -> pixels (in worker processes) -> L2-normalised embeddings.

Decoding and preprocessing run in DataLoader workers while the model computes, so on a 2-core machine
the decoding of the next batch hides inside the current forward pass. Large JPEGs are decoded at a
reduced scale (Pillow's draft mode) unless `exact=True`, which gives pixels identical to openai-clip's
preprocessing. Memory is bounded by the batch size, never by the folder size.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from PIL import Image

from .images import ImageReadError, OpenedImage, open_image, to_rgb
from .models import ClipModel, file_sha256

# Draft decoding keeps both sides at least this many times the model's input resolution; the embedding
# error this causes was measured against exact decoding (see README, "Performance").
DRAFT_FACTOR = 2


@dataclass
class EmbeddedImages:
    """Embeddings aligned with a table of per-image facts; rows that failed have NaN embeddings."""

    records: pd.DataFrame  # path, width, height, error, note
    features: torch.Tensor  # [images, D] float32, L2-normalised; NaN rows where `error` is set
    model_fingerprint: str = ""
    stats: dict = field(default_factory=dict)

    @property
    def ok(self) -> np.ndarray:
        return self.records["error"].eq("").to_numpy()

    def __len__(self) -> int:
        return len(self.records)


def _variant(exact: bool, background) -> str:
    mode = "exact" if exact else f"draft{DRAFT_FACTOR}"
    return mode if background is None else f"{mode}-bg{tuple(background)}"


class _ImageDataset(torch.utils.data.Dataset):
    """Item i -> (i, pixels or None, width, height, error, note). Never raises for a bad file."""

    def __init__(self, items: Sequence, preprocess, resolution: int, exact: bool, background):
        self.items, self.preprocess = list(items), preprocess
        self.draft_size = None if exact else DRAFT_FACTOR * resolution
        self.background = background

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int):
        item = self.items[index]
        try:
            if isinstance(item, Image.Image):
                image = item if self.background is None else to_rgb(item, self.background)
                opened = OpenedImage(image=image, width=item.width, height=item.height)
            else:
                opened = open_image(item, background=self.background, draft_size=self.draft_size, keep_mode=True)
            pixels = self.preprocess(opened.image)
        except ImageReadError as exc:
            return index, None, 0, 0, exc.reason, ""
        except Exception as exc:  # a decoder bug on one file must not end the run
            return index, None, 0, 0, f"could not be prepared ({type(exc).__name__}: {exc})", ""
        return index, pixels, opened.width, opened.height, "", opened.note


def _collate(samples):
    good = [s for s in samples if s[1] is not None]
    pixels = torch.stack([s[1] for s in good]) if good else None
    return pixels, samples


def default_workers(count: int, batch_size: int) -> int:
    """One decoding worker beside the model on small machines; none for a single batch (start-up costs)."""
    if count <= batch_size:
        return 0
    return max(1, min(4, (os.cpu_count() or 2) // 2))


def embed_images(model: ClipModel, items: Sequence, *, batch_size: int = 32, exact: bool = False,
                 cache=None, num_workers: int | None = None, background=None,
                 progress: bool = True) -> EmbeddedImages:
    """Embed image files (or PIL images) in batches; every item gets one row, failures with an error.

    With a `cache` (EmbeddingCache), files already embedded by this model are not decoded again.
    """
    if batch_size < 1:
        raise ValueError(f"batch size must be at least 1, not {batch_size}")
    items = list(items)
    count = len(items)
    paths = [item if isinstance(item, Image.Image) else Path(item) for item in items]
    records = pd.DataFrame({
        "path": ["<image %d>" % i if isinstance(p, Image.Image) else str(p) for i, p in enumerate(paths)],
        "width": np.zeros(count, dtype=np.int64), "height": np.zeros(count, dtype=np.int64),
        "error": [""] * count, "note": [""] * count})
    dim = int(model.model.visual.output_dim)
    features = torch.full((count, dim), float("nan"))
    variant = _variant(exact, background)
    started = time.perf_counter()

    todo = list(range(count))
    contents: dict[int, str] = {}
    hits = 0
    if cache is not None:
        for i in todo:
            if not isinstance(paths[i], Image.Image):
                try:
                    contents[i] = file_sha256(paths[i])
                except OSError as exc:
                    records.at[i, "error"] = f"cannot read file: {exc.strerror or exc}"
        keyed = list(contents)
        for i, entry in zip(keyed, cache.get_images(model.fingerprint, variant, [contents[i] for i in keyed])):
            if entry is not None and entry["vector"].numel() == dim:
                features[i] = entry["vector"]
                records.loc[i, ["width", "height", "note"]] = [entry["width"], entry["height"], entry["note"]]
                hits += 1
        todo = [i for i in todo if torch.isnan(features[i, 0]) and not records.at[i, "error"]]

    dataset = _ImageDataset([items[i] for i in todo], model.preprocess, model.input_resolution, exact, background)
    workers = default_workers(len(todo), batch_size) if num_workers is None else num_workers
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=False, num_workers=workers, collate_fn=_collate,
        pin_memory=model.device.type == "cuda", prefetch_factor=2 if workers else None,
        persistent_workers=False)
    bar = _progress(len(todo), progress, "encoding images")
    for pixels, samples in loader:
        vectors = model.encode_image_tensors(pixels) if pixels is not None else None
        new_entries = []
        row = 0
        for local, _, width, height, error, note in samples:
            i = todo[local]
            records.loc[i, ["width", "height", "error", "note"]] = [width, height, error, note]
            if not error:
                features[i] = vectors[row]
                if i in contents:
                    new_entries.append((contents[i], width, height, note, vectors[row]))
                row += 1
        if cache is not None and new_entries:
            cache.put_images(model.fingerprint, variant, new_entries)
        bar.update(len(samples))
    bar.close()
    elapsed = time.perf_counter() - started
    stats = {"images": count, "encoded": len(todo), "cache_hits": hits, "seconds": elapsed,
             "failed": int((records["error"] != "").sum())}
    return EmbeddedImages(records=records, features=features, model_fingerprint=model.fingerprint, stats=stats)


def _progress(total: int, enabled: bool, description: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not enabled or total == 0, desc=description, unit="img",
                dynamic_ncols=True)
