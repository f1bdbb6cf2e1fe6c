"""The benchmark's measurements: the seed notebook's loop, clipnb's classify steps cold and warm, the
model alone, fast-decoding differences, peak memory; `run_benchmark` runs them side by side and returns a
plain dict."""
from __future__ import annotations

import math
import os
import platform
import resource
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import torch
from PIL import Image

from ..embed import pipeline as embedding
from ..embed.runner import embed_images
from ..data.images import find_images, fit_for_model
from ..models.families.openclip import RANDOM  # the --pretrained value that asks for random weights
from ..testing import random_open_clip_folder, vit_b32_checkpoint
from .photos import make_photos, photo_plan

COLD_CLASSES = ["cat", "dog", "car", "tree", "book"]
WARM_CLASSES = ["person", "bicycle", "bird", "boat", "bottle", "chair", "cup", "horse", "sheep", "train"]
TEMPLATES = "basic"  # 3 templates
# max |difference| of normalised embeddings, exact pipeline vs the seed loop: float32 on the CPU; on CUDA
# (float16, whose kernels differ by batch size) the same images agree to float16 precision
EXACT_TOLERANCE = 1e-4
EXACT_TOLERANCE_FP16 = 5e-3

# ---- measurements -------------------------------------------------------------------------------

def seed_loop(model, paths, progress: bool = True) -> torch.Tensor:
    """The seed notebook's loop, as written there: one image at a time, no batching, no workers."""
    from tqdm.auto import tqdm

    rows = []
    with torch.no_grad():
        for path in tqdm(paths, desc="(a) seed loop", unit="img", disable=not progress, dynamic_ncols=True):
            image = model.preprocess(Image.open(path)).unsqueeze(0).to(model.device, dtype=model.dtype)
            features = model.encode_image(image).float()
            features /= features.norm(dim=-1, keepdim=True)
            rows.append(features.cpu())
    return torch.cat(rows)


def model_only(model, pixels: torch.Tensor, batch_size: int, seconds: float = 4.0, streams: bool = False,
               progress: bool = True) -> tuple[int, float]:
    """encode_image on already-decoded pixels, batch after batch for at least `seconds` (and 2 batches per
    stream): returns (images, seconds). With `streams`, the batches run in clipnb's CPU streams (one
    single-threaded forward pass per core, side by side), else one pass at a time on every core.
    One warm-up batch first, not counted."""
    from concurrent.futures import ThreadPoolExecutor

    from tqdm.auto import tqdm

    chunk = pixels.repeat(math.ceil(batch_size / len(pixels)), 1, 1, 1)[:batch_size]
    if model.device.type == "cuda":
        chunk = chunk.pin_memory()
    model.encode_image_tensors(chunk)
    count, threads = embedding.stream_plan() if streams else (1, torch.get_num_threads())
    lock, done = threading.Lock(), [0]

    def run(bar):
        mine = 0
        while time.perf_counter() - started < seconds or mine < 2 * batch_size:
            model.encode_image_tensors(chunk)
            mine += batch_size
            with lock:
                done[0] += batch_size
                bar.update(batch_size)

    label = f"(d) model only, batch {batch_size}" + (f", {count} streams" if streams else "")
    with tqdm(desc=label, unit="img", disable=not progress, dynamic_ncols=True) as bar, \
            embedding.torch_threads(threads), ThreadPoolExecutor(count) as pool:
        started = time.perf_counter()
        list(pool.map(run, [bar] * count))
        elapsed = time.perf_counter() - started
    return done[0], elapsed


def parts_alone(model, paths, cache) -> embedding.StageTimes:
    """Each stage of the cold pipeline timed alone, on one thread with one torch thread: the CPU seconds of
    hashing, decoding and preprocessing each photo, stacking them into one batch of len(paths), encoding
    that batch and writing it to `cache`. Their sum per photo is what a photo costs a core when nothing else
    runs, so cores / that sum is the budget the cold run is measured against."""
    from ..data.files import file_sha256

    times = embedding.StageTimes()
    draft_size = embedding.DRAFT_FACTOR * model.input_resolution
    pixels, entries = [], []
    with embedding.torch_threads(1):
        for path in paths:
            with times.timing("hash"):
                content = file_sha256(path)
            with times.timing("decode"):
                opened = embedding.open_item(path, draft_size)
            with times.timing("preprocess"):
                pixels.append(model.preprocess(fit_for_model(opened.image)))
            entries.append((f"alone-{content}", opened.width, opened.height, opened.note))
        with times.timing("batch"):
            batch = torch.stack(pixels)
        with times.timing("encode"):
            vectors = model.encode_image_tensors(batch)
        with times.timing("cache write"):
            cache.put_images("parts-alone", "alone", [(*entry, v) for entry, v in zip(entries, vectors)])
    return times


def decoded_pixels(model, paths) -> torch.Tensor:
    return torch.stack([model.preprocess(Image.open(p)) for p in paths])


def draft_differences(model, paths, factors=(1, 2, 4), progress: bool = True) -> list[dict]:
    """What fast decoding costs in accuracy, per draft factor and photo size: between each photo's
    embedding from draft decoding (at `factor` x the input size) and from exact decoding, the largest and
    mean 1 - cosine, the largest distance relative to the median distance between two different photos'
    embeddings (a random-weight model maps all photos close together, so 1 - cosine alone says little),
    and the pixels' largest and RMS difference after preprocessing (in normalised units)."""
    from tqdm.auto import tqdm

    exact_pixels = decoded_pixels(model, paths)
    exact = model.encode_image_tensors(exact_pixels)
    pairwise = torch.cdist(exact, exact)
    spread = pairwise[~torch.eye(len(paths), dtype=torch.bool)].median() if len(paths) > 1 else torch.tensor(1.0)
    sizes = [Image.open(p).size for p in paths]
    rows = []
    for factor in tqdm(factors, desc="draft vs exact", unit="factor", disable=not progress, dynamic_ncols=True):
        size = factor * model.input_resolution
        pixels = torch.stack([embedding.load_pixels(p, model.preprocess, draft_size=size)[0] for p in paths])
        drafted = model.encode_image_tensors(pixels)
        distance = 1 - (drafted * exact).sum(dim=1)
        relative = (drafted - exact).norm(dim=1) / spread
        error = (pixels - exact_pixels).flatten(1)
        for shape in sorted(set(sizes)):
            mask = torch.tensor([s == shape for s in sizes])
            rows.append({"factor": factor, "size": f"{shape[0]}x{shape[1]}", "images": int(mask.sum()),
                         "max_1_minus_cos": float(distance[mask].max()),
                         "mean_1_minus_cos": float(distance[mask].mean()),
                         "max_relative_distance": float(relative[mask].max()),
                         "pixel_max_abs": float(error[mask].abs().max()),
                         "pixel_rms": float(error[mask].pow(2).mean().sqrt())})
    return rows


class PeakMemory:
    """Peak memory of this process plus its children (the decoding workers), sampled every 50 ms.

    With psutil on Linux, while there are workers it sums PSS (proportional set size): pages that forked
    workers share with the main process (torch's libraries, the model) are counted once, split between
    them, so the sum is the physical memory the run holds. A process alone is sampled by its RSS, which
    then equals its PSS within a fraction of a percent: reading PSS walks every page of the process
    (about 10 ms of CPU for a torch process, a tenth of a core at this rate, which would slow what is being
    measured), reading RSS costs microseconds. Without psutil it takes the RSS peak from `getrusage`.
    `getrusage` peaks of this process and of its largest child are kept as a cross-check.
    """

    def __init__(self, interval: float = 0.05):
        self.interval, self.peak, self._stop = interval, 0, threading.Event()
        self.kind = "RSS"
        try:
            import psutil

            self._process = psutil.Process()
            self._pss = hasattr(self._process.memory_full_info(), "pss")
        except (ImportError, OSError, AttributeError):
            self._process, self._pss = None, False

    def _sample(self) -> int:
        if self._process is None:
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        children = self._process.children(recursive=True)
        if not children or not self._pss:
            total = self._process.memory_info().rss
            for child in children:
                try:
                    total += child.memory_info().rss
                except Exception:  # a worker that just exited
                    pass
            return total
        self.kind = "PSS"
        total = 0
        for proc in [self._process, *children]:
            try:
                total += proc.memory_full_info().pss
            except Exception:  # a worker that just exited
                pass
        return total

    def _run(self):
        interval = self.interval
        while not self._stop.wait(interval):
            started = time.perf_counter()
            self.peak = max(self.peak, self._sample())
            # sampling takes a core from what is measured: never spend more than 1% of one on it
            interval = max(self.interval, 100 * (time.perf_counter() - started))

    def __enter__(self):
        self.peak = self._sample()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._sample())
        self.maxrss_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        self.maxrss_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024


@contextmanager
def timed(results: dict, name: str):
    """Add the block's seconds to results[name]["seconds"] and keep the highest peak memory seen.

    Memory that earlier blocks freed is handed back first (glibc keeps it otherwise), so that each
    measurement holds what it needs itself, as in a process of its own, not what the others left."""
    from ..models.loading import release_freed_memory

    entry = results[name]
    release_freed_memory()
    with PeakMemory() as memory:
        started = time.perf_counter()
        yield
        entry["seconds"] = entry.get("seconds", 0.0) + time.perf_counter() - started
    entry["peak_memory_mb"] = max(entry.get("peak_memory_mb", 0.0), memory.peak / 1e6)
    entry["memory_kind"] = memory.kind
    entry["maxrss_self_mb"] = memory.maxrss_self / 1e6
    entry["maxrss_children_mb"] = memory.maxrss_children / 1e6


def _split(items: list, parts: int) -> list[list]:
    size = math.ceil(len(items) / parts)
    return [items[i:i + size] for i in range(0, len(items), size)]


def cpu_name() -> str:
    """The processor's name as the system gives it (Linux: /proc/cpuinfo), else the machine type."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def classify_steps(model, folder, classes, cache, batch_size, workers, progress, exact=False):
    """What clipnb.classify does once its inputs are checked (gather, embed, build the head, tabulate),
    returning the embeddings too so that the benchmark can compare them."""
    from ..zeroshot.results import results_table
    from ..data.images import gather_images
    from ..zeroshot.scoring import build_head

    items = gather_images(folder)
    head = build_head(model, classes, TEMPLATES, cache=cache)
    embedded = embed_images(model, items, batch_size=batch_size, exact=exact, cache=cache,
                            num_workers=workers, progress=progress)
    return results_table(embedded, head), embedded


def where_the_time_went(cold_parts, alone: embedding.StageTimes, alone_photos: int, cold_seconds: float) -> dict:
    """The cold run's cores x seconds split by stage, in core-ms per photo, beside each stage timed alone.

    In the run: each stage's CPU time summed over threads (embed_images' `stats["stages"]`); "other" is the
    rest of the process's CPU time during embed_images (bookkeeping, progress bars, the benchmark's memory
    sampler); "idle" is what the cores did not spend on this process (waiting at the start and end of a
    run, for the GIL or a lock, or for other processes); "outside" is the part of (b) outside embed_images
    (the text head, the results table), all of its cores counted. They add up to cores x (b)'s seconds."""
    photos = sum(part.stats["images"] for part in cold_parts)
    cores = cold_parts[0].stats["cores"]
    in_run = {stage: sum(part.stats["stages"][stage]["cpu_seconds"] for part in cold_parts) for stage in embedding.STAGES}
    faults = {stage: sum(part.stats["stages"][stage]["page_faults"] for part in cold_parts) for stage in embedding.STAGES}
    cpu = sum(part.stats["cpu_seconds"] for part in cold_parts)
    embed_seconds = sum(part.stats["seconds"] for part in cold_parts)
    per_photo = 1000 / photos
    alone_ms = {stage: 1000 * seconds / alone_photos for stage, seconds in alone.cpu.items()}
    budget_ms = sum(alone_ms.values())
    return {"photos": photos, "cores": cores, "alone_photos": alone_photos,
            "alone_ms": alone_ms, "cold_ms": {stage: seconds * per_photo for stage, seconds in in_run.items()},
            "page_faults": {stage: count / photos for stage, count in faults.items()},
            "other_ms": (cpu - sum(in_run.values())) * per_photo,
            "idle_ms": (cores * embed_seconds - cpu) * per_photo,
            "outside_ms": cores * (cold_seconds - embed_seconds) * per_photo,
            "total_ms": cores * cold_seconds * per_photo,
            "budget_ms": budget_ms, "budget_images_per_s": 1000 * cores / budget_ms}


def _started_cluster(model, workers: int, photo):
    """A LocalCluster of `workers` processes whose workers have loaded the model and embedded one photo."""
    from ..embed.dask import local_cluster

    client = local_cluster(workers)
    embed_images(model, [photo], scheduler=client, progress=False)
    return client


def benchmark_model(spec: str | None, pretrained: str | None, folder: Path, device: str):
    """The model to time: openai-clip's ViT-B/32 with random weights when no spec is given; an open_clip
    architecture with random weights for pretrained="random" (written as an open_clip folder first, as a
    user's would be); otherwise whatever load_model makes of the spec."""
    from ..models.loading import load_model, parse_spec

    if spec is None:
        return load_model(vit_b32_checkpoint(folder / "vit-b32-random.pt"), device=device)
    family, name, pretrained = parse_spec(spec, pretrained)
    if pretrained == RANDOM and family == "open_clip":
        made = random_open_clip_folder(name, folder / f"open_clip-{name.replace('/', '-')}-random")
        return load_model(f"open_clip:local-dir:{made}", device=device)
    if pretrained == RANDOM:
        raise ValueError(f"random weights are made for open_clip architectures only, not {spec!r}; "
                         "give open_clip:ARCH (python -m clipnb models --family open_clip lists them)")
    return load_model(spec, pretrained=pretrained, device=device)


def run_benchmark(n: int = 200, large_only: bool = False, device: str = "cpu", photos: str | None = None,
                  seed_n: int | None = None, batch_size: int | None = None, workers: int | None = None,
                  model_batches=(8, 16, 32), model_seconds: float = 4.0, draft_n: int = 16,
                  draft_factors=(1, 2, 4), rounds: int = 4, progress: bool = True, model: str | None = None,
                  pretrained: str | None = None, dask_workers: int | None = None) -> dict:
    """Run the four measurements and the agreement checks; returns a plain dict (see format_report).
    `model` and `pretrained`: which model to time (see `benchmark_model`; default a random ViT-B/32).
    `dask_workers`: also run (f), the cold run on a LocalCluster of that many worker processes, in the same
    rounds (the cluster's start and the workers' model loading are not timed, as (b)'s loading is not)."""
    from ..data.cache import EmbeddingCache
    from ..zeroshot.results import results_table
    from ..models.loading import resolve_device
    from ..zeroshot.scoring import build_head

    spec = model
    resolve_device(device)  # a missing GPU is said before any photo is made
    with tempfile.TemporaryDirectory(prefix="clipnb-bench-") as scratch:
        scratch = Path(scratch)
        folder = Path(photos) if photos else scratch / "photos"
        paths = make_photos(folder, n, large_only, progress=progress)
        if len(find_images(folder)) != n:
            raise ValueError(f"{folder} holds other images besides the {n} benchmark photos; use an empty folder")
        model = benchmark_model(spec, pretrained, folder if photos else scratch, device)
        # one warm-up pass, so that no measurement pays for start-up (CUDA's kernels, the allocator)
        model.encode_image_tensors(torch.zeros(2, 3, model.input_resolution, model.input_resolution))
        model.encode_token_tensors(model.tokenize(["a warm-up"]))
        seed_paths = paths[:seed_n or n]
        cache = EmbeddingCache(scratch / "cache")
        batch_size = batch_size or embedding.default_batch_size(model)
        plan = [size for _, size in photo_plan(n, large_only)]
        result = {"n": n, "large_only": large_only, "device": str(model.device), "batch_size": batch_size,
                  "model": "random-weight ViT-B/32" if spec is None else model.name,
                  "workers": workers if workers is not None else embedding.default_workers(n, batch_size, model),
                  "torch_threads": torch.get_num_threads(), "cpus": embedding.cpu_count(),
                  "streams": list(embedding.stream_plan()),
                  "draft_factor": embedding.DRAFT_FACTOR, "load_before": _load_average(),
                  "machine": cpu_name(),
                  "gpu": torch.cuda.get_device_name(model.device) if model.device.type == "cuda" else None,
                  "sizes": {f"{w}x{h}": plan.count((w, h)) for w, h in sorted(set(plan))},
                  "a_seed": {"images": len(seed_paths)}, "b_cold": {"images": n}, "c_warm": {"images": n},
                  "d_model": {}, "e_alone": {}, "rescore": {}, "checks": {}}
        steps = dict(cache=cache, batch_size=batch_size, workers=workers, progress=progress)
        pixels = decoded_pixels(model, seed_paths[:max(model_batches)])
        # the model alone, both ways clipnb could run it: one pass on every core, and (on the CPU, where
        # embed_images uses them) single-threaded streams side by side; the limit is the faster
        ways = [(b, False) for b in model_batches]
        if model.device.type == "cpu" and embedding.stream_plan()[0] > 1:
            ways += [(b, True) for b in model_batches]
        modelled = {way: [0, 0.0] for way in ways}

        # (b) cold, (a) seed loop and (d) model only take turns, in `rounds` slices each, so that a change
        # in the machine's load (other people's work) weighs on all three alike and their ratios hold
        rounds = max(1, min(rounds, n // batch_size, len(seed_paths)))
        result["rounds"] = rounds
        cold_parts, seed_parts, cluster_parts = [], [], []
        alone, alone_photos = embedding.StageTimes(), 0  # (e) the stages timed alone, on the CPU only
        client = _started_cluster(model, dask_workers, paths[0]) if dask_workers else None
        if client is not None:
            result["f_cluster"] = {"images": n, "workers": dask_workers}
        for cold_slice, seed_slice in zip(_split(paths, rounds), _split(seed_paths, rounds)):
            with timed(result, "b_cold"):  # empty cache for these files, fast decoding
                if not cold_parts:
                    cold_head = build_head(model, COLD_CLASSES, TEMPLATES, cache=cache)
                cold_parts.append(embed_images(model, cold_slice, cache=cache, batch_size=batch_size,
                                                         num_workers=workers, progress=progress))
                if len(cold_parts) == rounds:
                    cold = embedding.EmbeddedImages.concat(cold_parts)
                    results_table(cold, cold_head)  # what classify returns; timed as part of (b)
            with timed(result, "a_seed"):
                seed_parts.append(seed_loop(model, seed_slice, progress=progress))
            if client is not None:  # (f) the same photos cold on the cluster (no cache, no store)
                with timed(result, "f_cluster"):
                    cluster_parts.append(embed_images(model, cold_slice, batch_size=batch_size,
                                                                scheduler=client, progress=progress))
            with timed(result, "d_model"):
                for way in ways:
                    images, seconds = model_only(model, pixels, way[0], model_seconds / rounds, streams=way[1],
                                                 progress=progress)
                    modelled[way][0] += images
                    modelled[way][1] += seconds
            if model.device.type == "cpu":
                with timed(result, "e_alone"):
                    alone.add(parts_alone(model, cold_slice[:batch_size], cache))
                alone_photos += len(cold_slice[:batch_size])
        seed_features = torch.cat(seed_parts)
        rates = {way: images / seconds for way, (images, seconds) in modelled.items()}
        measured = dict(result["d_model"])  # one timed block held (d) and (d'): its seconds and peak memory
        for key, streamed in (("d_model", False), ("d_streams", True)):
            mine = {b: r for (b, s), r in rates.items() if s == streamed}
            if mine:
                best = max(mine, key=mine.get)
                result[key] = {**measured, "images_per_s": mine[best], "batch_size": best,
                               "by_batch": {str(b): r for b, r in mine.items()}}

        # (c) warm: the whole folder again, a new list of classes; every image comes from the cache
        with timed(result, "c_warm"):
            warm_table, warm = classify_steps(model, folder, WARM_CLASSES, **steps)
        result["c_warm"]["cache_hits"] = warm.stats["cache_hits"]
        # re-scoring alone, embeddings in memory (a notebook's case): another new list, text encoding included
        started = time.perf_counter()
        results_table(warm, build_head(model, [f"{c}s" for c in WARM_CLASSES], TEMPLATES))
        result["rescore"]["seconds"] = time.perf_counter() - started

        # the seed loop's images through clipnb with exact decoding
        exact = embed_images(model, seed_paths, exact=True, batch_size=batch_size,
                                       num_workers=workers, progress=progress)
        result["draft"] = draft_differences(model, paths[:draft_n], draft_factors, progress=progress)
        cache.close()
        if client is not None:
            from ..embed.dask import close

            close(client)

    chosen = [r["max_1_minus_cos"] for r in result["draft"] if r["factor"] == embedding.DRAFT_FACTOR]
    seeded = len(seed_paths)
    checks = {
        "exact_vs_seed_max_abs": float((exact.features - seed_features).abs().max()),
        "warm_vs_cold_max_abs": float((warm.features - cold.features).abs().max()),
        "warm_table_equals_rescored_cold": bool(results_table(cold, build_head(model, WARM_CLASSES, TEMPLATES))
                                                .drop(columns="path").equals(warm_table.drop(columns="path"))),
        "cold_vs_seed_max_1_minus_cos": float((1 - (cold.features[:seeded] * seed_features).sum(dim=1)).max()),
        "draft_tolerance": embedding.DRAFT_TOLERANCE,
        "draft_measured_max_1_minus_cos": max(chosen, default=float("nan")),
    }
    checks["exact_tolerance"] = EXACT_TOLERANCE if model.dtype == torch.float32 else EXACT_TOLERANCE_FP16
    checks["exact_ok"] = checks["exact_vs_seed_max_abs"] <= checks["exact_tolerance"]
    checks["warm_ok"] = checks["warm_vs_cold_max_abs"] == 0.0 and checks["warm_table_equals_rescored_cold"]
    checks["draft_ok"] = checks["cold_vs_seed_max_1_minus_cos"] <= embedding.DRAFT_TOLERANCE
    result["checks"] = checks
    if cluster_parts:
        clustered = embedding.EmbeddedImages.concat(cluster_parts)
        checks["cluster_vs_cold_max_abs"] = float((clustered.features - cold.features).abs().nan_to_num().max())
        checks["cluster_rows_equal"] = bool(clustered.records.equals(cold.records))
        checks["cluster_ok"] = checks["cluster_rows_equal"] and checks["cluster_vs_cold_max_abs"] <= 1e-6
    for key in ("a_seed", "b_cold", "c_warm", "f_cluster"):
        if key in result:
            result[key]["images_per_s"] = result[key]["images"] / result[key]["seconds"]
    cold = result["b_cold"]["images_per_s"]
    if alone_photos:
        result["where"] = where_the_time_went(cold_parts, alone, alone_photos, result["b_cold"]["seconds"])
    result["ratios"] = {"cold_over_seed": cold / result["a_seed"]["images_per_s"],
                        "cold_over_model": cold / result["d_model"]["images_per_s"]}
    if "d_streams" in result:
        result["ratios"]["cold_over_streams"] = cold / result["d_streams"]["images_per_s"]
    if "f_cluster" in result:
        result["ratios"]["cluster_over_cold"] = result["f_cluster"]["images_per_s"] / cold
    if "where" in result:
        result["ratios"]["cold_over_budget"] = cold / result["where"]["budget_images_per_s"]
        if "d_streams" in result:
            result["ratios"]["budget_over_streams"] = (result["where"]["budget_images_per_s"]
                                                       / result["d_streams"]["images_per_s"])
    result["load_after"] = _load_average()
    return result


