"""Image embedding in batches: files -> pixels -> L2-normalised embeddings.

On the CPU, embedding runs in one stream per core: each stream decodes a batch, then encodes it with a
single torch thread, so every core always has one thing to do and decoding never waits for the model
nor fights it for a core (see `stream_plan`). On CUDA, decoding and preprocessing run in DataLoader
worker processes while the GPU computes. Large JPEGs are decoded at a reduced scale (Pillow's draft
mode) unless `exact=True`, which gives pixels identical to the model family's own preprocessing. Memory is
bounded by the batches in flight, never by the folder size.
"""
from __future__ import annotations

import math
import os
import signal
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

import numpy as np
import pandas as pd
from PIL import Image

from ..arrays import as_float32, loaded_torch, namespace, stacked
from ..data.images import Colour, ImageInput, ImageReadError, OpenedImage, fit_for_model, open_image, to_rgb
from ..models.memory import release_freed_memory, reuse_freed_memory
from ..models.loading import ClipModel
from ..progress import progress_bar

try:  # page faults per thread (StageTimes): Linux only
    from resource import RUSAGE_THREAD, getrusage
except ImportError:
    RUSAGE_THREAD = None

if TYPE_CHECKING:
    from ..data.cache import EmbeddingCache

# Draft decoding keeps both sides at least DRAFT_FACTOR times the model's input resolution (a 4000x3000
# JPEG is decoded at 1/8 scale, 500x375, for a 224-pixel model; a 2 MP one at 1/4; libjpeg reduces at
# most 8x). Huffman decoding costs the same at every scale, but 1/8 skips the inverse DCT and leaves
# preprocessing a small image, which on 2 cores is what lets decoding fit beside the model; factor 2
# would move embeddings less and cost more. What each factor costs and how far it moves embeddings
# (`python -m clipnb.bench`, draft_differences): docs/performance.md, "Exact or fast decoding".
DRAFT_FACTOR = 1
# The largest 1 - cosine(draft, exact) of image embeddings allowed; the tests and the benchmark check it.
DRAFT_TOLERANCE = 1e-4
# per stream on the CPU: larger batches were no faster there and hold twice the memory per forward pass
# (docs/performance.md, "Measured")
CPU_BATCH = 16
MAX_STREAMS = 8  # beyond this, streams get several torch threads each (memory grows with streams)
CUDA_BATCH = 64  # the GPU waits for decoding anyway; larger batches only hold more memory in flight


@dataclass
class EmbeddedImages:
    """Embeddings aligned with a table of per-image facts; rows that failed have NaN embeddings."""

    records: pd.DataFrame  # path, width, height, error, note
    # [images, D] float32, L2-normalised; NaN rows where `error` is set. A numpy array when torch is not imported
    # (every embedding came from the cache), else a torch tensor: `clipnb.arrays`
    features: Any
    model_fingerprint: str = ""
    stats: dict = field(default_factory=dict)
    # per row, the SHA-256 of the file's bytes that were decoded (or looked up in the cache); None where none
    # was read: the Parquet store of clipnb.embed.dask keeps it, to know a file changed since
    contents: list | None = None

    @property
    def ok(self) -> np.ndarray:
        """A boolean per row: True where the image was read and embedded."""
        return self.records["error"].eq("").to_numpy()

    def __len__(self) -> int:
        return len(self.records)

    @classmethod
    def concat(cls, parts: Sequence["EmbeddedImages"], stats: dict | None = None) -> "EmbeddedImages":
        """Parts embedded by the same model (shards, rounds) as one, rows in the order given."""
        return cls(records=pd.concat([p.records for p in parts], ignore_index=True),
                   features=namespace().concatenate([as_float32(p.features) for p in parts]), model_fingerprint=parts[0].model_fingerprint,
                   stats=stats or {})

    def describe(self, lang: str = "en") -> str:
        """One line in `lang` about the embedding run: how many images came from the cache, were encoded or
        could not be read, and how long it took."""
        from ..words import word

        s = self.stats
        if not s:
            return word("embed.count", lang, images=f"{len(self)} images", count=len(self))
        return word("embed.describe", lang, count=s["images"], hits=s["cache_hits"], encoded=s["encoded"],
                    failed=s["failed"], seconds=s["seconds"])


# The pipeline's stages, in the order a photo goes through them (`StageTimes`, the benchmark's table)
STAGES = ("hash", "cache lookup", "decode", "preprocess", "batch", "encode", "cache write")


def _faults() -> int:
    return getrusage(RUSAGE_THREAD).ru_minflt if RUSAGE_THREAD is not None else 0


class StageTimes:
    """CPU seconds and page faults spent in each stage of an embedding run, summed over the threads that
    did the work, so that a run can say where its time went (`EmbeddedImages.stats["stages"]`).

    A stage timed in one thread counts that thread's own CPU time (`time.thread_time`): a thread waiting
    for the GIL, a lock or a core counts nothing. A stage that the whole process works on (hashing in a
    pool) is timed with `process=True`, the CPU time of every thread of the process.
    """

    def __init__(self):
        self.cpu = dict.fromkeys(STAGES, 0.0)
        self.faults = dict.fromkeys(STAGES, 0)

    @contextmanager
    def timing(self, stage: str, process: bool = False):
        clock = time.process_time if process else time.thread_time
        cpu, faults = clock(), _faults()
        try:
            yield
        finally:
            self.cpu[stage] += clock() - cpu
            if not process:  # the pool's threads are not this thread; their faults are not counted here
                self.faults[stage] += _faults() - faults

    def add(self, other: "StageTimes") -> None:
        for stage in STAGES:
            self.cpu[stage] += other.cpu[stage]
            self.faults[stage] += other.faults[stage]

    def as_dict(self) -> dict:
        return {stage: {"cpu_seconds": self.cpu[stage], "page_faults": self.faults[stage]} for stage in STAGES}


def variant(exact: bool, background) -> str:
    """The name of a decoding mode (draft or exact, and the background colour): part of every cache and store key."""
    mode = "exact" if exact else f"draft{DRAFT_FACTOR}"
    return mode if background is None else f"{mode}-bg{tuple(background)}"


def open_item(item: ImageInput, draft_size: int | None = None, background: Colour | None = None) -> OpenedImage:
    """An image file or a PIL image, opened as `preprocess` expects it (see `load_pixels`)."""
    if isinstance(item, Image.Image):
        image = item if background is None else to_rgb(item, background)
        return OpenedImage(image=image, width=item.width, height=item.height)
    return open_image(item, background=background, draft_size=draft_size, keep_mode=True)


def load_pixels(item: ImageInput, preprocess: Callable[[Image.Image], torch.Tensor], draft_size: int | None = None,
                background: Colour | None = None) -> tuple[torch.Tensor, OpenedImage]:
    """One image file (or PIL image) -> (preprocessed pixels, the opened image's facts).

    Without `draft_size` (exact decoding) and `background`, the pixels are those of the model family's own
    `preprocess(Image.open(path))` for any image without an EXIF rotation (which is applied here).
    Raises ImageReadError for files that are not usable images.
    """
    opened = open_item(item, draft_size, background)
    # fit_for_model: a 60000x2 strip is cut to 16:1 around the centre first, or resizing it takes gigabytes
    return preprocess(fit_for_model(opened.image)), opened


class _ImageDataset:  # a map-style dataset, as DataLoader takes one (torch is imported only to encode)
    """Item i -> (i, pixels or None, width, height, error, note, content, StageTimes). Never raises for a bad
    file. `content` is the SHA-256 of the bytes that were decoded ("" for an image given in memory)."""

    def __init__(self, items: Sequence, preprocess, resolution: int, exact: bool, background):
        self.items, self.preprocess = list(items), preprocess
        self.draft_size = None if exact else DRAFT_FACTOR * resolution
        self.background = background

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int):
        times = StageTimes()
        try:
            with times.timing("decode"):
                opened = open_item(self.items[index], self.draft_size, self.background)
            with times.timing("preprocess"):
                pixels = self.preprocess(fit_for_model(opened.image))
        except ImageReadError as exc:
            return index, None, 0, 0, exc.reason, "", "", times
        except Exception as exc:  # a decoder bug on one file must not end the run
            return index, None, 0, 0, f"could not be prepared ({type(exc).__name__}: {exc})", "", "", times
        return index, pixels, opened.width, opened.height, "", opened.note, opened.content, times


def _collate(samples):
    """A batch: the stacked pixels of the good samples, every sample's facts without its pixels, and the
    stage times of the samples and of stacking them."""
    times = StageTimes()
    for sample in samples:
        times.add(sample[-1])
    import torch

    with times.timing("batch"):
        good = [s[1] for s in samples if s[1] is not None]
        pixels = torch.stack(good) if good else None
    return pixels, [(s[0], s[1] is not None, *s[2:-1]) for s in samples], times


def _worker_init(_worker_id: int) -> None:
    # a decoding worker is one thread; the model's threads in the main process get the other cores
    import torch

    torch.set_num_threads(1)
    # Ctrl-C in a terminal signals the whole process group: the main process answers it and stops the workers;
    # a worker killed by it first made torch's SIGCHLD handler raise a worker error in its place (the run went
    # on, its images failed) or printed the worker's traceback
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def cpu_count() -> int:
    """CPU cores this process may use (the affinity mask, as in containers), not the machine's total."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def default_batch_size(model: ClipModel) -> int:
    """Images per forward pass when none is given: CUDA_BATCH on CUDA, CPU_BATCH per stream on the CPU."""
    return CUDA_BATCH if model.device.type == "cuda" else CPU_BATCH


def default_workers(count: int, batch_size: int, model: ClipModel | None = None) -> int:
    """Decoding worker processes beside the model; 0 means streams of this process (`stream_plan`).

    On the CPU, worker processes decoding beside a model that uses every core make the two fight over
    the cores; streams give each core one thing at a time instead. On CUDA the GPU computes on its own,
    so worker processes (every core but one) decode the next batches meanwhile; a single batch gets
    none (starting a worker costs more than it saves).
    """
    if model is None or model.device.type != "cuda" or count <= batch_size:
        return 0
    return max(1, min(16, cpu_count() - 1))


def stream_plan(cores: int | None = None, batches: int | None = None) -> tuple[int, int]:
    """(streams, torch threads per stream) for embedding on the CPU: one single-threaded stream per core,
    or fewer streams with more threads each when there are fewer batches than cores. The cores are
    torch's thread count, so OMP_NUM_THREADS and torch.set_num_threads limit clipnb too.

    A stream decodes a batch and then encodes it, so decoding fills its core exactly while the other
    streams compute; and a model on one thread wastes no time at the barriers between threads. Measured
    with `python -m clipnb.bench`: two streams beat decoding with two threads between forward passes of a
    two-thread model, and two single-threaded forward passes side by side beat one two-threaded pass on
    the same images (figures: docs/performance.md, "Measured").
    """
    import torch

    cores = max(1, torch.get_num_threads() if cores is None else cores)
    # beyond MAX_STREAMS cores, streams get several threads each, so that few cores are left over
    streams = cores // math.ceil(cores / MAX_STREAMS)
    streams = max(1, min(streams, cores if batches is None else batches))
    return streams, max(1, cores // streams)


_threads_lock = threading.Lock()
_threads_users: list = []  # the count each block running now asked for, oldest first
_threads_before = 0


@contextmanager
def torch_threads(count: int):
    """Run a block with `count` torch threads (threads started inside the block take it up too).

    Blocks may overlap (embed_images called from two threads): the count from before the first one
    comes back when the last one ends, never a count one of them set."""
    import torch

    global _threads_before
    with _threads_lock:
        if not _threads_users:
            _threads_before = torch.get_num_threads()
        _threads_users.append(count)
        torch.set_num_threads(count)
    try:
        yield
    finally:
        with _threads_lock:
            _threads_users.remove(count)
            torch.set_num_threads(_threads_users[-1] if _threads_users else _threads_before)


def _split_batches(count: int, batch_size: int, streams: int) -> list[range]:
    """Consecutive batches of at most `batch_size`, as even as possible, in a multiple of `streams` when
    there are enough items, so that every stream has the same work and none idles at the end."""
    parts = math.ceil(count / batch_size)
    parts = min(count, math.ceil(parts / streams) * streams)
    edges = np.linspace(0, count, parts + 1).round().astype(int)
    return [range(a, b) for a, b in zip(edges[:-1], edges[1:])]


def _encode(model: ClipModel, pixels: torch.Tensor | None) -> torch.Tensor | None:
    return model.encode_image_tensors(pixels) if pixels is not None else None


def _encoded_batches(model: ClipModel, dataset: "_ImageDataset", batch_size: int,
                     workers: int) -> Iterator[tuple[list, torch.Tensor | None, StageTimes]]:
    """(facts of every sample, embeddings of the good ones, stage times) per batch, in order.

    With `workers`, DataLoader processes decode ahead while this thread encodes (the CUDA case).
    Otherwise each stream of `stream_plan` decodes a batch and encodes it (Pillow and torch work outside
    the GIL); a few batches are queued ahead, so memory holds about two batches per stream.
    """
    import torch

    if workers > 0:
        loader = torch.utils.data.DataLoader(
            dataset, batch_size=batch_size, shuffle=False, num_workers=workers, collate_fn=_collate,
            pin_memory=model.device.type == "cuda", worker_init_fn=_worker_init, prefetch_factor=2)
        for pixels, facts, times in loader:
            with times.timing("encode"):
                vectors = _encode(model, pixels)
            yield facts, vectors, times
        return

    def work(indices: range):
        pixels, facts, times = _collate([dataset[i] for i in indices])
        with times.timing("encode"):
            vectors = _encode(model, pixels)
        return facts, vectors, times

    batches = _split_batches(len(dataset), batch_size, stream_plan()[0])
    streams, threads = stream_plan(batches=len(batches))  # one image alone gets every core
    # a GPU computes on its own: only a CPU model is split into single-threaded streams
    with torch_threads(threads if model.device.type == "cpu" else torch.get_num_threads()):
        pool = ThreadPoolExecutor(streams, thread_name_prefix="clipnb-stream")
        interrupted = False
        try:
            pending = deque()
            for indices in batches:
                pending.append(pool.submit(work, indices))
                if len(pending) > streams:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        except KeyboardInterrupt:
            interrupted = True  # answer Ctrl-C now: the batches running finish on their own, unused
            raise
        finally:  # on an error or an interrupt, start no new batch
            pool.shutdown(wait=not interrupted, cancel_futures=True)
            release_freed_memory()  # the streams' activations, held in their threads' malloc pools


def embed_local(model: ClipModel, items: Sequence, *, batch_size: int | None = None, exact: bool = False,
                cache: EmbeddingCache | None = None, num_workers: int | None = None, background: Colour | None = None,
                progress: bool = True) -> EmbeddedImages:
    """Embed image files (or PIL images) in batches in this process; every item gets one row, failures with an
    error. `clipnb.embed.runner.embed_images` is the public door, which checks the arguments and describes
    them: it calls this, or the Dask cluster's workers, which call this on their shards. Returns the
    `EmbeddedImages` it describes.
    """
    items = list(items)
    count = len(items)
    is_file = [not isinstance(item, Image.Image) for item in items]
    names = [str(item) if file else "<image %d>" % i for i, (item, file) in enumerate(zip(items, is_file))]
    widths, heights = np.zeros(count, dtype=np.int64), np.zeros(count, dtype=np.int64)
    errors, notes = [""] * count, [""] * count
    dim = model.embed_dim
    features = as_float32(np.full((count, dim), np.nan, dtype=np.float32))
    done = np.zeros(count, dtype=bool)
    decoding = variant(exact, background)
    times = StageTimes()
    started, cpu_started = time.perf_counter(), time.process_time()

    contents: list[str | None] = [None] * count
    hits = 0
    if cache is not None:
        files = [i for i in range(count) if is_file[i]]
        with times.timing("hash", process=True):  # hashed in a pool of threads
            keys = cache.content_keys([items[i] for i in files], progress=progress)
        for i, (content, error) in zip(files, keys):
            contents[i], errors[i] = content, error
            done[i] = bool(error)
        keyed = [i for i in files if contents[i] is not None]
        with times.timing("cache lookup"):
            found = cache.get_images(model.fingerprint, decoding, [contents[i] for i in keyed])
        rows = [(i, entry) for i, entry in zip(keyed, found) if entry is not None and entry["vector"].size == dim]
        if rows:
            index = [i for i, _ in rows]
            features[index] = stacked([entry["vector"] for _, entry in rows], dim)
            widths[index] = [entry["width"] for _, entry in rows]
            heights[index] = [entry["height"] for _, entry in rows]
            for i, entry in rows:
                notes[i] = entry["note"]
            done[index] = True
            hits = len(rows)

    todo = np.flatnonzero(~done).tolist()
    # the defaults follow the device, which a lazy model resolves with torch: only asked when something is encoded
    if batch_size is None and todo:
        batch_size = default_batch_size(model)
    workers = default_workers(len(todo), batch_size, model) if num_workers is None and todo else num_workers or 0
    if todo:
        reuse_freed_memory()  # each batch's activations reuse the last one's memory (see clipnb.models.memory)
        dataset = _ImageDataset([items[i] for i in todo], model.preprocess, model.input_resolution, exact,
                                background)
        with progress_bar(len(todo), progress, "encoding images") as bar:
            for samples, vectors, batch_times in _encoded_batches(model, dataset, batch_size, workers):
                times.add(batch_times)
                good = []
                for local, ok, width, height, error, note, content in samples:
                    i = todo[local]
                    widths[i], heights[i], errors[i], notes[i] = width, height, error, note
                    if ok:
                        good.append(i)
                        # stored under the hash of the bytes decoded, never the one looked up before: a
                        # file replaced in between must not leave its pixels under the other file's hash
                        contents[i] = content or None
                if good:
                    features[good] = vectors
                    new = [(contents[i], int(widths[i]), int(heights[i]), notes[i], features[i])
                           for i in good if contents[i] is not None]
                    if cache is not None and new:
                        with times.timing("cache write"):
                            cache.put_images(model.fingerprint, decoding, new)
                bar.update(len(samples))
    # object, not pandas' Arrow-backed str: a file name that is not valid UTF-8 (escaped by Python) must survive
    records = pd.DataFrame({"path": pd.Series(names, dtype=object), "width": widths, "height": heights,
                            "error": errors, "note": notes})
    elapsed = time.perf_counter() - started
    # `stages` and `cpu_seconds` (every thread of this process) say where the time went: see StageTimes
    stats = {"stages": times.as_dict(), "cpu_seconds": time.process_time() - cpu_started,
             # torch's threads, or the cores when nothing imported torch (every embedding came from the cache)
             "cores": loaded_torch().get_num_threads() if workers == 0 and loaded_torch() else cpu_count(),
             "images": count, "encoded": len(todo), "cache_hits": hits, "seconds": elapsed,
             "failed": int(sum(1 for e in errors if e)), "batch_size": batch_size, "workers": workers if todo else 0,
             "images_per_s": count / elapsed if elapsed > 0 else float("nan")}
    # torch was imported to encode after `features` was made: as_float32 makes it a tensor, as the rule says
    return EmbeddedImages(records=records, features=as_float32(features), model_fingerprint=model.fingerprint, stats=stats,
                          contents=contents)


def embed_one(model: ClipModel, image: ImageInput, *, exact: bool = True, cache: EmbeddingCache | None = None):
    """One image's L2-normalised embedding [D] (a path or a PIL image).

    Args:
        model: the model whose image encoder is used.
        image: the image.
        exact: decode at full size (see `embed_local`).
        cache: an embedding cache to read and write.

    Returns:
        A float32 array [D] (a numpy array until torch is imported: `clipnb.arrays`). Raises ImageReadError with the reason when the image cannot be read.
    """
    embedded = embed_local(model, [image], cache=cache, exact=exact, num_workers=0, progress=False)
    error = embedded.records.at[0, "error"]
    if error:
        raise ImageReadError(f"image {embedded.records.at[0, 'path']} could not be read: {error}")
    return embedded.features[0]


def __getattr__(name: str):
    """embed_images moved to clipnb.embed.runner (clipnb._moved.NAMES), for one release, with a warning."""
    from .._moved import moved_name

    return moved_name(__name__, name)
