"""Image embedding in batches: files -> pixels -> L2-normalised embeddings.

On CUDA, decoding and preprocessing run in DataLoader worker processes while the GPU computes. On the
CPU, where the model's threads already use every core, each batch is decoded by one thread per core
between forward passes, so that decoding and the model never compete for the same cores. Large JPEGs
are decoded at a reduced scale (Pillow's draft mode) unless `exact=True`, which gives pixels identical
to openai-clip's preprocessing. Memory is bounded by the batch size, never by the folder size.
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

from .images import ImageReadError, OpenedImage, fit_for_model, open_image, to_rgb
from .models import ClipModel

# Draft decoding keeps both sides at least this many times the model's input resolution (a 4000x3000
# JPEG is decoded at 1/4 scale for a 224-pixel model, a 2 MP one at 1/2; libjpeg reduces at most 8x).
# Measured with `python -m clipnb.bench` (draft_differences) on 4000x3000, 3000x4000 and 1632x1224 JPEGs,
# 1 - cosine between the embeddings of draft- and exactly-decoded photos:
#   random-weight ViT-B/32 (224 px): factor 2: max 5.8e-6 (0.5% of the median distance between two
#     photos' embeddings; pixels after preprocessing differ by at most 0.045, RMS 0.0065, in normalised
#     units); factor 1: max 2.4e-5 (pixels up to 0.21); factor 3 and 4: max 4.8e-6 / 2.7e-6.
#   demo-architecture model (64 px, trained 40 steps): max 3.2e-5 (0.8%) at every factor (always 1/8).
DRAFT_FACTOR = 2
# The largest 1 - cosine(draft, exact) of image embeddings allowed; the tests and the benchmark check it.
DRAFT_TOLERANCE = 1e-4
CPU_BATCH = 32  # ViT-B/32 on 2 cores: 19.5 images/s at 32, 18.6 at 16, 16.4 at 8 (model only, idle)
CUDA_BATCH = 64  # the GPU waits for decoding anyway; larger batches only hold more memory in flight


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


def load_pixels(item, preprocess, draft_size: int | None = None, background=None) -> tuple[torch.Tensor, OpenedImage]:
    """One image file (or PIL image) -> (preprocessed pixels, the opened image's facts).

    Without `draft_size` (exact decoding) and `background`, the pixels are those of openai-clip's own
    `preprocess(Image.open(path))` for any image without an EXIF rotation (which is applied here).
    Raises ImageReadError for files that are not usable images.
    """
    if isinstance(item, Image.Image):
        image = item if background is None else to_rgb(item, background)
        opened = OpenedImage(image=image, width=item.width, height=item.height)
    else:
        opened = open_image(item, background=background, draft_size=draft_size, keep_mode=True)
    # fit_for_model: a 60000x2 strip is cut to 16:1 around the centre first, or resizing it takes gigabytes
    return preprocess(fit_for_model(opened.image)), opened


class _ImageDataset(torch.utils.data.Dataset):
    """Item i -> (i, pixels or None, width, height, error, note). Never raises for a bad file."""

    def __init__(self, items: Sequence, preprocess, resolution: int, exact: bool, background):
        self.items, self.preprocess = list(items), preprocess
        self.draft_size = None if exact else DRAFT_FACTOR * resolution
        self.background = background

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int):
        try:
            pixels, opened = load_pixels(self.items[index], self.preprocess, self.draft_size, self.background)
        except ImageReadError as exc:
            return index, None, 0, 0, exc.reason, ""
        except Exception as exc:  # a decoder bug on one file must not end the run
            return index, None, 0, 0, f"could not be prepared ({type(exc).__name__}: {exc})", ""
        return index, pixels, opened.width, opened.height, "", opened.note


def _collate(samples):
    """A batch: the stacked pixels of the good samples, and every sample's facts without its pixels."""
    good = [s[1] for s in samples if s[1] is not None]
    pixels = torch.stack(good) if good else None
    return pixels, [(s[0], s[1] is not None, *s[2:]) for s in samples]


def _worker_init(_worker_id: int) -> None:
    # a decoding worker is one thread; the model's threads in the main process get the other cores
    torch.set_num_threads(1)


def cpu_count() -> int:
    """CPU cores this process may use (the affinity mask, as in containers), not the machine's total."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def default_batch_size(model: ClipModel) -> int:
    return CUDA_BATCH if model.device.type == "cuda" else CPU_BATCH


def default_workers(count: int, batch_size: int, model: ClipModel | None = None) -> int:
    """Decoding worker processes beside the model: 0 means decoding in threads of this process.

    On the CPU the model's threads already use every core, so decoding alongside it only makes the two
    fight over the cores (measured with `python -m clipnb.bench`: slower on an idle 2-core machine,
    much slower on a busy one); instead each batch is decoded by a thread per core while the model
    waits, then computed while the threads wait: every core always has exactly one thing to do. On CUDA
    the GPU computes on its own, so worker processes (every core but one) decode the next batches
    meanwhile; a single batch gets none (starting a worker costs more than it saves).
    """
    if model is None or model.device.type != "cuda" or count <= batch_size:
        return 0
    return max(1, min(16, cpu_count() - 1))


def decoding_threads() -> int:
    return max(1, min(8, cpu_count()))


def _batches(dataset: "_ImageDataset", batch_size: int, workers: int, pin_memory: bool):
    """Batches of (pixels, facts): from worker processes overlapping the model, or decoded by threads
    of this process in the pauses between forward passes (Pillow and torch work outside the GIL)."""
    if workers > 0:
        yield from torch.utils.data.DataLoader(
            dataset, batch_size=batch_size, shuffle=False, num_workers=workers, collate_fn=_collate,
            pin_memory=pin_memory, worker_init_fn=_worker_init, prefetch_factor=2)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(decoding_threads(), thread_name_prefix="clipnb-decode") as pool:
        for start in range(0, len(dataset), batch_size):
            indices = range(start, min(start + batch_size, len(dataset)))
            pixels, facts = _collate(list(pool.map(dataset.__getitem__, indices)))
            yield (pixels.pin_memory() if pin_memory and pixels is not None else pixels), facts


def embed_images(model: ClipModel, items: Sequence, *, batch_size: int | None = None, exact: bool = False,
                 cache=None, num_workers: int | None = None, background=None,
                 progress: bool = True) -> EmbeddedImages:
    """Embed image files (or PIL images) in batches; every item gets one row, failures with an error.

    With a `cache` (EmbeddingCache), files already embedded by this model (same bytes, any name) are
    not decoded again. `exact=True` decodes at full size, so pixels equal openai-clip's preprocessing.
    `num_workers`: decoding processes overlapping the model (default: see `default_workers`); 0 decodes
    in threads of this process between forward passes.
    """
    batch_size = default_batch_size(model) if batch_size is None else batch_size
    if batch_size < 1:
        raise ValueError(f"batch size must be at least 1, not {batch_size}")
    items = list(items)
    count = len(items)
    is_file = [not isinstance(item, Image.Image) for item in items]
    names = [str(item) if file else "<image %d>" % i for i, (item, file) in enumerate(zip(items, is_file))]
    widths, heights = np.zeros(count, dtype=np.int64), np.zeros(count, dtype=np.int64)
    errors, notes = [""] * count, [""] * count
    dim = int(model.model.visual.output_dim)
    features = torch.full((count, dim), float("nan"))
    done = np.zeros(count, dtype=bool)
    variant = _variant(exact, background)
    started = time.perf_counter()

    contents: list[str | None] = [None] * count
    hits = 0
    if cache is not None:
        files = [i for i in range(count) if is_file[i]]
        for i, (content, error) in zip(files, cache.content_keys([items[i] for i in files], progress=progress)):
            contents[i], errors[i] = content, error
            done[i] = bool(error)
        keyed = [i for i in files if contents[i] is not None]
        found = cache.get_images(model.fingerprint, variant, [contents[i] for i in keyed])
        rows = [(i, entry) for i, entry in zip(keyed, found) if entry is not None and entry["vector"].numel() == dim]
        if rows:
            index = [i for i, _ in rows]
            features[index] = torch.stack([entry["vector"] for _, entry in rows])
            widths[index] = [entry["width"] for _, entry in rows]
            heights[index] = [entry["height"] for _, entry in rows]
            for i, entry in rows:
                notes[i] = entry["note"]
            done[index] = True
            hits = len(rows)

    todo = np.flatnonzero(~done).tolist()
    workers = default_workers(len(todo), batch_size, model) if num_workers is None else num_workers
    if todo:
        dataset = _ImageDataset([items[i] for i in todo], model.preprocess, model.input_resolution, exact,
                                background)
        loader = _batches(dataset, batch_size, workers, pin_memory=model.device.type == "cuda")
        with _progress(len(todo), progress, "encoding images") as bar:
            for pixels, samples in loader:
                vectors = model.encode_image_tensors(pixels) if pixels is not None else None
                good = []
                for local, ok, width, height, error, note in samples:
                    i = todo[local]
                    widths[i], heights[i], errors[i], notes[i] = width, height, error, note
                    if ok:
                        good.append(i)
                if good:
                    features[good] = vectors
                    new = [(contents[i], int(widths[i]), int(heights[i]), notes[i], features[i])
                           for i in good if contents[i] is not None]
                    if cache is not None and new:
                        cache.put_images(model.fingerprint, variant, new)
                bar.update(len(samples))
    records = pd.DataFrame({"path": names, "width": widths, "height": heights, "error": errors, "note": notes})
    elapsed = time.perf_counter() - started
    stats = {"images": count, "encoded": len(todo), "cache_hits": hits, "seconds": elapsed,
             "failed": int(sum(1 for e in errors if e)), "batch_size": batch_size, "workers": workers if todo else 0,
             "images_per_s": count / elapsed if elapsed > 0 else float("nan")}
    return EmbeddedImages(records=records, features=features, model_fingerprint=model.fingerprint, stats=stats)


def _progress(total: int, enabled: bool, description: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not enabled or total == 0, desc=description, unit="img",
                dynamic_ncols=True)
