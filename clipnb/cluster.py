"""Embedding on a Dask cluster: the same pipeline as one machine, shard by shard on the workers.

`embed_images(..., scheduler=...)`, `classify`, `index_images` and `embed_labelled` take a scheduler: the
address of a running Dask scheduler, or a `distributed.Client` (a `LocalCluster`'s included; on the
command line `--scheduler ADDRESS` or `--dask-workers N`). The images, in the order they were given (a
folder's are sorted), are cut into contiguous shards. Each worker loads the model once (`ModelPlugin`,
also on workers that join or restart later) and embeds a shard with `embed_images` itself: the same
streams, draft decoding and error rows as on one machine. The client puts the shards back in order, so
the table is the single-machine table. Dask re-runs the shards of a worker that dies; a shard's result
comes back once, so no row is lost or doubled.

With a store (a folder, or an fsspec URL such as s3://bucket/clipnb that every worker reaches), each
shard is also written there as one Parquet file (path, content, width, height, error, note, embedding),
atomically, under the model's fingerprint and the decoding mode; a shard already there is read, not
embedded again, so a run whose client was killed resumes where it stopped. pandas, DuckDB and pyarrow
read the store as it is. The SQLite cache (`clipnb.cache`) stays the single-machine cache.
"""
from __future__ import annotations

import hashlib
import io
import logging
import math
import os
import stat
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator, Sequence

import numpy as np
import pandas as pd
import torch
from distributed import WorkerPlugin
from PIL import Image

from .cache import utf8_name
from .models import ClipModel, ModelError

if TYPE_CHECKING:
    from distributed import Client

    from .embedding import EmbeddedImages

# Shards are cut from the number of images alone, never from the number of workers, so a rerun on another
# cluster finds the shards of the last one in the store: about 64 shards for a small folder (enough to
# keep every worker of a small cluster busy to the end), at most SHARD_MAX images each for a large one.
SHARD_MIN, SHARD_MAX = 8, 512
STORE_COLUMNS = ["path", "content", "width", "height", "error", "note", "embedding"]


def shard_size(count: int) -> int:
    """Images per shard for `count` images (see SHARD_MIN and SHARD_MAX)."""
    return max(SHARD_MIN, min(SHARD_MAX, math.ceil(count / 64)))


@dataclass(frozen=True)
class Shard:
    """Images start..start+len(paths) of a run, and the key that names their stored result."""

    start: int
    paths: tuple[str, ...]
    key: str


def cut_shards(paths: Sequence[str], size: int | None = None) -> list[Shard]:
    """Contiguous shards of `size` paths (default `shard_size`). A shard's key hashes each file's path,
    size and modification time, so an edited, added or removed file gives its shard a new key."""
    size = size or shard_size(len(paths))
    shards = []
    for start in range(0, len(paths), size):
        part = tuple(paths[start:start + size])
        digest = hashlib.sha256()
        for path in part:
            try:
                st = os.stat(path)
                identity = f"{os.path.abspath(path)}\0{st.st_size}\0{st.st_mtime_ns}\n"
            except OSError:
                identity = f"{os.path.abspath(path)}\0missing\n"
            digest.update(identity.encode("utf-8", "backslashreplace"))
        shards.append(Shard(start=start, paths=part, key=f"{start:09d}-{digest.hexdigest()[:20]}"))
    return shards


# ---- the client ---------------------------------------------------------------------------------

def connect(scheduler: "str | Client") -> "Client":
    """A Client for a scheduler address ("tcp://host:8786") or the Client itself."""
    from distributed import Client

    if isinstance(scheduler, Client):
        return scheduler
    if isinstance(scheduler, str):
        try:
            return Client(scheduler, timeout="10s")
        except ValueError as exc:  # an address Dask cannot read, often the dashboard's http:// link
            raise ConnectionError(f"{scheduler} is not a Dask scheduler's address ({exc}); give the address "
                                  "`dask scheduler` prints, tcp://HOST:8786 (the dashboard's http:// link is "
                                  "another port)") from None
        except (OSError, TimeoutError) as exc:
            raise ConnectionError(f"cannot reach the Dask scheduler at {scheduler}: {exc}. Start one with "
                                  "`dask scheduler` (and workers with `dask worker ADDRESS`), or use "
                                  "--dask-workers N for a cluster on this machine") from None
    raise TypeError(f"scheduler must be an address or a distributed.Client, not {type(scheduler).__name__}")


def local_cluster(workers: int) -> "Client":
    """A LocalCluster of `workers` worker processes on this machine, one thread each (one stream of
    embed_images per process), and a Client for it; close the client to stop it."""
    from distributed import Client, LocalCluster

    if workers < 1:
        raise ValueError(f"a local cluster needs at least 1 worker, not {workers}")
    # a failed shard's traceback, logged by its worker, would only repeat the error the client raises
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                           silence_logs=logging.CRITICAL)
    client = Client(cluster)
    client._clipnb_owns_cluster = True  # closing this client stops the cluster too (see close)
    return client


def close(client: "Client") -> None:
    """Close a client, and its cluster when local_cluster started it."""
    cluster = client.cluster if getattr(client, "_clipnb_owns_cluster", False) else None
    client.close()
    if cluster is not None:
        cluster.close()


class ModelPlugin(WorkerPlugin):
    """A Dask worker plugin that loads the model when a worker starts (and on every worker that joins or
    restarts later), so each worker loads it once."""

    def __init__(self, load_args: dict, fingerprint: str):
        self.load_args, self.fingerprint = load_args, fingerprint
        self.name = f"clipnb-model-{fingerprint[:16]}"

    def setup(self, worker=None):
        worker_model(self.load_args, self.fingerprint)


def _plugin(model: ClipModel) -> ModelPlugin:
    if model.load_args is None:
        raise ModelError(f"model {model.name} was not made by clipnb.load_model, so Dask workers cannot load "
                         "it themselves: load it with load_model(spec) and pass that")
    return ModelPlugin(model.load_args, model.fingerprint)


def embedded_shards(model: ClipModel, items: Sequence, scheduler: "str | Client", *, batch_size: int | None = None,
                    exact: bool = False, background=None, store: str | os.PathLike | None = None,
                    shard: int | None = None, progress: bool = True) -> Iterator[tuple[Shard, "EmbeddedImages"]]:
    """Embed `items` (image paths) on the cluster; yields (shard, its EmbeddedImages) as shards finish, in
    any order. Only the shards not yet taken are held: the client holds one shard's embeddings at a time
    beyond what the caller keeps. See the module docstring for the store."""
    from distributed import as_completed

    from .embedding import _variant, progress_bar

    if any(isinstance(item, Image.Image) for item in items):
        raise TypeError("a Dask cluster embeds image files: save PIL images to files first, or embed them "
                        "without scheduler=")
    given = [os.fspath(item) for item in items]
    # workers may run in another folder than this process: they get absolute paths, the table the paths given
    paths = [os.path.abspath(path) for path in given]
    client = connect(scheduler)
    try:
        client.register_plugin(_plugin(model))
    except ModelError as exc:
        raise ModelError(f"a Dask worker could not load the model: {exc}") from None
    options = {"load_args": model.load_args, "fingerprint": model.fingerprint, "batch_size": batch_size,
               "exact": exact, "background": background, "variant": _variant(exact, background),
               "store": os.fspath(store) if store is not None else None}
    shards = cut_shards(paths, shard)
    run = uuid.uuid4().hex[:8]  # keys of this run only: another client's run of the same shards is its own
    futures = [client.submit(embed_shard, piece, options, key=f"clipnb-shard-{piece.key}-{run}", pure=False)
               for piece in shards]
    by_key = {future.key: piece for future, piece in zip(futures, shards)}
    with progress_bar(len(paths), progress, "embedding on the cluster") as bar:
        for future in as_completed(futures):
            piece, result = by_key[future.key], future.result()
            future.release()
            bar.update(len(piece.paths))
            result.records["path"] = pd.Series(given[piece.start:piece.start + len(piece.paths)], dtype=object)
            yield piece, result


def map_shards(model: ClipModel, items: Sequence, scheduler: "str | Client", use, *, cache=None,
               store: str | os.PathLike | None = None, **options) -> tuple[list, dict]:
    """use(shard's EmbeddedImages) for every shard, in input order, and the run's statistics. The client
    keeps only what `use` returns: with a results table, it never holds more than one shard's embeddings.
    The store defaults to `store` beside the cache, when there is a cache."""
    if store is None and cache is not None:
        store = cache.directory / "store"
    started = time.perf_counter()
    client = connect(scheduler)
    kept, counts = {}, dict.fromkeys(("images", "encoded", "failed", "from_store"), 0)
    try:
        for piece, embedded in embedded_shards(model, items, client, store=store, **options):
            kept[piece.start] = use(embedded)
            for key in counts:
                counts[key] += embedded.stats.get(key, 0)
        workers = len(client.scheduler_info().get("workers", {}))
    finally:
        if client is not scheduler:  # joined here for this run (an address was given): leave it again
            client.close()
    seconds = time.perf_counter() - started
    stats = {**counts, "cache_hits": counts["from_store"], "shards": len(kept), "seconds": seconds,
             "images_per_s": counts["images"] / seconds if seconds > 0 else float("nan"), "workers": workers,
             "store": os.fspath(store) if store is not None else None}
    return [kept[start] for start in sorted(kept)], stats


def embed_on_cluster(model: ClipModel, items: Sequence, scheduler: "str | Client", **options) -> "EmbeddedImages":
    """Every item's row and embedding, in input order, as `embed_images` returns them (see embedded_shards)."""
    from .embedding import EmbeddedImages

    parts, stats = map_shards(model, items, scheduler, lambda embedded: embedded, **options)
    if not parts:
        return EmbeddedImages(records=pd.DataFrame(columns=["path", "width", "height", "error", "note"]),
                              features=torch.empty(0, model.embed_dim), model_fingerprint=model.fingerprint,
                              stats=stats)
    return EmbeddedImages.concat(parts, stats)


# ---- the workers --------------------------------------------------------------------------------

_WORKER_MODELS: dict[str, ClipModel] = {}


def worker_model(load_args: dict, fingerprint: str) -> ClipModel:
    """The model of this fingerprint in this worker process, loaded on first use."""
    from .models import load_model

    model = _WORKER_MODELS.get(fingerprint)
    if model is None:
        model = load_model(load_args["spec"], pretrained=load_args["pretrained"],
                           download_root=load_args["download_root"])
        if model.fingerprint != fingerprint:
            raise ModelError(f"this worker loaded {load_args['spec']} with other weights than the client's "
                             f"(fingerprint {model.fingerprint[:12]}, not {fingerprint[:12]}): give every worker "
                             "the same weights file")
        _WORKER_MODELS[fingerprint] = model
    return model


def store_path(store: str, fingerprint: str, variant: str, key: str) -> str:
    """Where a shard's Parquet file lives in a store."""
    return f"{store.rstrip('/')}/{fingerprint[:32]}/{variant}/{key}.parquet"


def embed_shard(piece: Shard, options: dict) -> "EmbeddedImages":
    """One shard on a worker: read from the store when it is there, else embed it (and store it)."""
    from .embedding import embed_images

    target = (store_path(options["store"], options["fingerprint"], options["variant"], piece.key)
              if options["store"] else None)
    if target is not None:
        stored = read_shard(target, piece, options["fingerprint"])
        if stored is not None:
            return stored
    model = worker_model(options["load_args"], options["fingerprint"])
    embedded = embed_images(model, list(piece.paths), batch_size=options["batch_size"], exact=options["exact"],
                            background=options["background"], num_workers=0, progress=False)
    embedded.stats["from_store"] = 0
    if target is not None:
        try:
            write_shard(target, embedded, [_content(path) for path in piece.paths])
        except OSError as exc:
            from .export import ExportError

            raise ExportError(f"cannot write a shard to the store {options['store']}: "
                              f"{exc.strerror or exc}; give a store folder (or URL) every worker can "
                              "write to, or run without a store") from None
    return embedded


def _content(path: str) -> str:
    """The SHA-256 of a regular file's bytes (the cache's content key), "" for anything else: a named pipe
    or a device is never read, it could block for ever."""
    from .models import file_sha256

    try:
        return file_sha256(path) if stat.S_ISREG(os.stat(path).st_mode) else ""
    except OSError:
        return ""


def write_shard(target: str, embedded: "EmbeddedImages", contents: Sequence[str]) -> None:
    """A shard's rows as one Parquet file, written whole or not at all."""
    import fsspec
    import pyarrow as pa
    import pyarrow.parquet as pq
    from fsspec.implementations.local import LocalFileSystem

    from .export import atomic_path

    records = embedded.records
    dim = embedded.features.shape[1]
    vectors = pa.FixedSizeListArray.from_arrays(pa.array(embedded.features.numpy().reshape(-1), pa.float32()), dim)
    table = pa.table({"path": [utf8_name(path) for path in records["path"]], "content": list(contents),
                      "width": records["width"].astype("int64"), "height": records["height"].astype("int64"),
                      "error": records["error"].astype(str), "note": records["note"].astype(str),
                      "embedding": vectors})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    fs, path = fsspec.core.url_to_fs(target)
    if isinstance(fs, LocalFileSystem):  # a local or mounted folder: written and renamed as every export is
        with atomic_path(path) as temporary:
            temporary.write_bytes(buffer.getvalue())
    else:
        fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        fs.pipe_file(path, buffer.getvalue())  # an object store's PUT is whole or nothing


def read_shard(target: str, piece: Shard, fingerprint: str) -> "EmbeddedImages | None":
    """A stored shard as EmbeddedImages, or None when it is missing, damaged or not this shard's."""
    import fsspec
    import pyarrow.parquet as pq

    from .embedding import EmbeddedImages

    fs, path = fsspec.core.url_to_fs(target)
    try:
        if not fs.exists(path):
            return None
        with fs.open(path, "rb") as handle:
            table = pq.read_table(handle)
    except Exception:  # a damaged file is embedded again, never trusted
        return None
    if table.column_names != STORE_COLUMNS or table.column("path").to_pylist() != [utf8_name(p) for p in piece.paths]:
        return None
    frame = table.drop_columns(["embedding"]).to_pandas()
    frame["path"] = pd.Series(piece.paths, dtype=object)  # the names as given, escaped ones included
    vectors = table.column("embedding").combine_chunks()
    features = torch.from_numpy(vectors.flatten().to_numpy(zero_copy_only=False).astype(np.float32)
                                .reshape(len(frame), -1).copy())
    records = frame[["path", "width", "height", "error", "note"]].reset_index(drop=True)
    return EmbeddedImages(records=records, features=features, model_fingerprint=fingerprint,
                          stats={"images": len(frame), "encoded": 0, "failed": int(records["error"].ne("").sum()),
                                 "from_store": len(frame)})


def read_store(store: str | os.PathLike, fingerprint: str | None = None) -> pd.DataFrame:
    """Every stored row (all shards, all models and decoding modes, or one model's), with `model` and
    `variant` columns; embeddings as arrays. For large stores, read the Parquet files with DuckDB or Dask."""
    import fsspec
    import pyarrow.parquet as pq

    fs, root = fsspec.core.url_to_fs(os.fspath(store))
    pattern = f"{root.rstrip('/')}/{fingerprint[:32] if fingerprint else '*'}/*/*.parquet"
    frames = []
    for path in sorted(fs.glob(pattern)):
        with fs.open(path, "rb") as handle:
            frame = pq.read_table(handle).to_pandas()
        model, variant = path.rsplit("/", 3)[1:3]
        frames.append(frame.assign(model=model, variant=variant))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=[*STORE_COLUMNS, "model", "variant"])
