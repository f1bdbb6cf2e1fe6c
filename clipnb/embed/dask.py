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
read the store as it is. The SQLite cache (`clipnb.data.cache`) stays the single-machine cache.

Nothing reused is trusted. Each shard carries Parquet's own CRC of every page and, in its metadata, the
clipnb version, the digest of the clipnb code that wrote it, the model's fingerprint, the decoding mode
and the embedding size; a shard is reused only when its pages verify and all of these are this run's, and
of its rows only those whose file still has the stored SHA-256 (a file edited in place with its size and
time kept is embedded again). What is not used is embedded again and said once (StoreWarning). Every
worker checks that it runs the client's clipnb code and package versions (`runtime`), when it loads the
model and again for every shard. The store is checked on the client before the cluster is reached (made
absolute, its protocol's library installed, its bucket there: clipnb never creates one); whatever is at a
scheduler's address, or a scheduler lost mid-run, is one ClusterError within Dask's timeouts.
"""
from __future__ import annotations

import functools
import hashlib
import io
import json
import logging
import math
import os
import socket
import stat
import time
import uuid
import warnings
from concurrent.futures import CancelledError
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence

import dask
import numpy as np
import pandas as pd
import torch
from distributed import WorkerPlugin
from PIL import Image

from ..data.cache import CacheWarning
from ..data.files import utf8_name
from ..models.files import reason as one_line  # a library error as one line
from ..models.loading import ClipModel, ModelError

if TYPE_CHECKING:
    from distributed import Client

    from .pipeline import EmbeddedImages

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

class ClusterError(ConnectionError):
    """The Dask cluster cannot give this client's results: not reachable, not a Dask scheduler, lost in the
    middle of a run, or workers that run other code (the message says which, and what to do)."""


class ClusterWarning(CacheWarning):  # a CacheWarning so that the command line says it as one line
    """Something the run waits for on the Dask cluster (a worker lost): it goes on, the message says how to stop
    and what is kept."""


class StoreWarning(CacheWarning):
    """Shards of the Parquet store that were not used as stored (damaged, stale, or written by other code or
    for another model): their images were embedded again (the message says which and why)."""


# seconds for a scheduler to accept the connection (Dask's own retries within it) and to answer Dask's
# handshake; a busy scheduler answers in milliseconds
CONNECT_TIMEOUT = 10

# seconds a run waits for a scheduler that has no workers before it starts (Dask's wait_for_workers), and, on
# a cluster clipnb starts itself, for a worker to come back once all are lost (the scheduler's own
# distributed.scheduler.no-workers-timeout); an external scheduler's setting is its owner's
WORKERS_TIMEOUT = 60

# the packages whose versions change what a worker computes: a worker that runs other versions than the
# client is refused (clipnb's own code is compared file by file, see code_digest)
RESULT_PACKAGES = ("clipnb", "torch", "torchvision", "numpy", "pillow", "pillow-heif", "openai-clip",
                   "open_clip_torch", "transformers", "cn_clip")


def connect(scheduler: "str | Client") -> "Client":
    """A Client for a scheduler address ("tcp://host:8786") or the Client itself. Whatever is at the address,
    this returns or raises ClusterError within about 2 x CONNECT_TIMEOUT."""
    from distributed import Client

    if isinstance(scheduler, Client):
        return scheduler
    if not isinstance(scheduler, str):
        raise TypeError(f"scheduler must be an address or a distributed.Client, not {type(scheduler).__name__}")
    _handshake(scheduler)
    try:
        return Client(scheduler, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError) as exc:
        raise ClusterError(_unreachable(scheduler, exc)) from None


def _unreachable(address: str, exc: BaseException) -> str:
    return (f"cannot reach the Dask scheduler at {address}: {exc}. Start one with `dask scheduler` (and workers "
            "with `dask worker ADDRESS`), or use --dask-workers N for a cluster on this machine")


def _handshake(address: str) -> None:
    """Dask's own connection and handshake with `address`, within 2 x CONNECT_TIMEOUT, so that whatever
    answers there gives one ClusterError. Dask bounds the connection (its timeout) but then waits for the
    peer's handshake for ever: a peer that accepts and never answers would hang the run, and one that
    answers in another protocol (a web server) gives an 8-byte frame length of exabytes."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from distributed.comm import connect as open_comm
    from distributed.security import Security

    scheme = address.split("://", 1)[0] if "://" in address else "tcp"
    if scheme == "inproc":  # Dask's inproc comm reaches a scheduler of this process only: there is none here
        raise ClusterError(f"{address} is an in-process address: it works only inside the Python process that "
                           "started the scheduler (pass that process's Client as scheduler=); give the scheduler's "
                           "tcp:// address") from None

    async def shake():
        comm = await asyncio.wait_for(open_comm(address, timeout=CONNECT_TIMEOUT,
                                                **Security().get_connection_args("client")),
                                      2 * CONNECT_TIMEOUT)
        await comm.close()

    try:
        with ThreadPoolExecutor(1) as pool:  # an event loop of its own, also under a notebook's running one
            pool.submit(asyncio.run, shake()).result()
    except ValueError as exc:  # an address Dask cannot read, often the dashboard's http:// link
        raise ClusterError(f"{address} is not a Dask scheduler's address ({exc}); give the address `dask "
                           "scheduler` prints, tcp://HOST:8786 (the dashboard's http:// link is another "
                           "port)") from None
    except TypeError as exc:  # Dask has no usable connector for this scheme here
        if scheme == "tls":
            reason = ("a tls:// scheduler needs Dask's TLS settings for a client: distributed.comm.tls.ca-file, "
                      ".client.cert and .client.key in Dask's configuration (~/.config/dask/*.yaml or "
                      "DASK_DISTRIBUTED__COMM__TLS__... variables)")
        else:
            reason = (f"Dask cannot open {scheme}:// connections on this machine ({exc}); ucx:// needs the "
                      "distributed-ucxx package here and on the cluster")
        raise ClusterError(f"cannot connect to {address}: {reason}; or give the scheduler's tcp:// address") from None
    except TimeoutError:  # asyncio's: the connection was made, the handshake never came
        raise ClusterError(_silent(address)) from None
    except OSError as exc:  # refused, unreachable, closed: Dask's own connection timeout has run out
        # Dask's ws:// connect timeout also covers the websocket upgrade: a peer that accepted and stays silent
        # ends there too, so one plain connection says which it was
        if scheme in ("ws", "wss") and _accepts(address):
            raise ClusterError(_silent(address)) from None
        raise ClusterError(_unreachable(address, exc)) from None
    except Exception as exc:  # a garbled frame (MemoryError for exabytes, msgpack errors): another protocol
        raise ClusterError(f"the service at {address} is not a Dask scheduler: it answered in another protocol "
                           f"({type(exc).__name__}); give the address `dask scheduler` prints, "
                           "tcp://HOST:8786") from None


def _silent(address: str) -> str:
    return (f"{address} accepted the connection but gave no Dask handshake in {2 * CONNECT_TIMEOUT} s: it is not "
            "a Dask scheduler (or one that cannot answer); give the address `dask scheduler` prints, "
            "tcp://HOST:8786")


def _accepts(address: str) -> bool:
    """Whether something accepts a TCP connection at a ws:// or wss:// address now."""
    from urllib.parse import urlsplit

    try:
        url = urlsplit(address)
        with socket.create_connection((url.hostname, url.port), timeout=CONNECT_TIMEOUT):
            return True
    except (OSError, ValueError):
        return False


def wait_for_workers(client: "Client") -> None:
    """Wait (Dask's wait_for_workers) up to WORKERS_TIMEOUT for the scheduler to have a worker, else one
    ClusterError."""
    try:
        client.wait_for_workers(1, timeout=WORKERS_TIMEOUT)
    except TimeoutError:
        address = client.scheduler.address
        raise ClusterError(f"the Dask scheduler at {address} has no workers after {WORKERS_TIMEOUT} s: start "
                           f"workers (`dask worker {address}`) or use --dask-workers N") from None


@contextmanager
def lost_workers_said(client: "Client", store: str | None):
    """On a scheduler clipnb did not start, each worker lost without notice is said as one ClusterWarning
    (Dask's "all" event topic): its tasks wait for new workers as long as that scheduler's owner set
    (distributed.scheduler.no-workers-timeout, by default for ever). A handler the client had for that
    topic is given back afterwards."""
    if getattr(client, "_clipnb_owns_cluster", False):
        yield
        return
    # Dask's unsubscribe_topic leaves the handler in the client: the previous one is put back by hand
    previous = getattr(client, "_event_handlers", {}).get("all")

    def lost(event):
        message = event[1]
        if message.get("action") == "remove-worker" and not message.get("expected"):
            warnings.warn(ClusterWarning(
                f"a Dask worker ({message.get('worker')}) of {client.scheduler.address} was lost; with no worker "
                "left the run waits for new ones as long as that scheduler allows: start workers, or press "
                f"Ctrl-C to stop ({kept_note(store)})"))
    client.subscribe_topic("all", lost)
    try:
        yield
    finally:
        if previous is not None:
            client.subscribe_topic("all", previous)
        else:
            client.unsubscribe_topic("all")


@functools.cache
def code_digest() -> str:
    """The SHA-256 of this process's clipnb source (every .py file, by relative path): two processes that
    give the same digest run the same clipnb code, whatever version number it carries."""
    package = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def runtime() -> dict:
    """What decides this process's embeddings besides the model: its clipnb code (code_digest) and the
    versions of RESULT_PACKAGES, read as Dask's get_versions reads them."""
    from distributed.versions import get_versions

    packages = get_versions(RESULT_PACKAGES)["packages"]
    return {"code": code_digest(), "packages": {name: packages.get(name) for name in RESULT_PACKAGES}}


def check_runtime(expected: dict) -> None:
    """Refuse to work in a process (a Dask worker) whose runtime() is not the client's `expected` one: a
    mixed deployment would give mixed results."""
    from .. import __version__

    here = runtime()
    where = f"a Dask worker on {socket.gethostname()}"
    if here["code"] != expected["code"]:
        raise ClusterError(f"{where} runs other clipnb code than the client (clipnb {__version__} at "
                           f"{Path(__file__).resolve().parents[1]}, code {here['code'][:12]}, not "
                           f"{expected['code'][:12]}): a mixed deployment gives mixed results; install the same "
                           "clipnb on every worker and on the client, then run again")
    differ = [f"{name} {version} there, {expected['packages'].get(name)} here"
              for name, version in here["packages"].items() if version != expected["packages"].get(name)]
    if differ:
        raise ClusterError(f"{where} runs other package versions than this client ({'; '.join(differ)}), so "
                           "its results would differ: install the same versions on every worker and here")


def local_cluster(workers: int) -> "Client":
    """A LocalCluster of `workers` worker processes on this machine, one thread each (one stream of
    embed_images per process), and a Client for it; close the client to stop it."""
    from distributed import Client, LocalCluster

    if workers < 1:
        raise ValueError(f"a local cluster needs at least 1 worker, not {workers}")
    # a failed shard's traceback, logged by its worker, would only repeat the error the client raises
    # the scheduler fails tasks that no worker could run for WORKERS_TIMEOUT (every worker lost and none back)
    with dask.config.set({"distributed.scheduler.no-workers-timeout": f"{WORKERS_TIMEOUT}s"}):
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                               silence_logs=logging.CRITICAL)
    client = Client(cluster)
    client._clipnb_owns_cluster = True  # closing this client stops the cluster too (see close)
    return client


def close(client: "Client") -> None:
    """Close a client, and its cluster when local_cluster started it."""
    cluster = client.cluster if getattr(client, "_clipnb_owns_cluster", False) else None
    logger = logging.getLogger("distributed.client")
    level = logger.level
    # a client whose scheduler is gone is reconnecting: Dask logs the attempt that closing cancels as an error
    # with its traceback, after the run has said in one line that the scheduler was lost
    logger.setLevel(logging.CRITICAL)
    try:
        client.close()
        if cluster is not None:
            cluster.close()
    finally:
        logger.setLevel(level)


class ModelPlugin(WorkerPlugin):
    """A Dask worker plugin that checks the worker runs the client's clipnb code and package versions
    (`runtime`) and loads the model, when a worker starts (and on every worker that joins or restarts
    later), so each worker loads it once."""

    def __init__(self, load_args: dict, fingerprint: str, runtime: dict):
        self.load_args, self.fingerprint, self.runtime = load_args, fingerprint, runtime
        self.name = f"clipnb-model-{fingerprint[:16]}"

    def setup(self, worker=None):
        check_runtime(self.runtime)
        worker_model(self.load_args, self.fingerprint)


def shard_options(model: ClipModel, *, store: str | None = None, batch_size: int | None = None, exact: bool = False,
                  background=None) -> dict:
    """What a worker needs to embed a shard of a run, or to trust its stored copy: how to load the model, how
    to decode, the store (checked: see check_store) and the client's runtime()."""
    from .pipeline import variant

    if model.load_args is None:
        raise ModelError(f"model {model.name} was not made by clipnb.load_model, so Dask workers cannot load "
                         "it themselves: load it with load_model(spec) and pass that")
    return {"load_args": model.load_args, "fingerprint": model.fingerprint, "batch_size": batch_size,
            "exact": exact, "background": background, "variant": variant(exact, background), "store": store,
            "runtime": runtime(), "dim": model.embed_dim}


def default_store(store: str | os.PathLike | None, cache=None) -> str | os.PathLike | None:
    """The store a cluster run uses: `store`, else `store` in the cache's folder when there is a cache."""
    if store is None and cache is not None:
        return cache.directory / "store"
    return store


def kept_note(store: str | None) -> str:
    """What a cluster run that stopped early keeps, for the line that says it stopped."""
    if store is None:
        return ("nothing was kept: a cluster run keeps finished shards only in a store (--store, or the cache "
                "folder's store without --no-cache)")
    return f"the shards finished so far are kept in the store {store}: run the same command again to resume"


def embedded_shards(model: ClipModel, items: Sequence, scheduler: "str | Client", *, batch_size: int | None = None,
                    exact: bool = False, background=None, store: str | os.PathLike | None = None,
                    shard: int | None = None, progress: bool = True) -> Iterator[tuple[Shard, "EmbeddedImages"]]:
    """Embed `items` (image paths) on the cluster; yields (shard, its EmbeddedImages) as shards finish, in
    any order. Only the shards not yet taken are held: the client holds one shard's embeddings at a time
    beyond what the caller keeps. See the module docstring for the store."""
    from distributed import as_completed
    from distributed.comm import CommClosedError
    from distributed.scheduler import KilledWorker, NoWorkerError

    from ..progress import progress_bar

    if any(isinstance(item, Image.Image) for item in items):
        raise TypeError("a Dask cluster embeds image files: save PIL images to files first, or embed them "
                        "without scheduler=")
    given = [os.fspath(item) for item in items]
    # workers may run in another folder than this process: they get absolute paths, the table the paths given
    paths = [os.path.abspath(path) for path in given]
    options = shard_options(model, store=check_store(store), batch_size=batch_size, exact=exact,
                            background=background)  # the store is checked before any cluster work
    store = options["store"]
    client = connect(scheduler)
    wait_for_workers(client)
    try:  # every worker there checks its runtime against this client's (a late one: embed_shard does)
        client.register_plugin(ModelPlugin(model.load_args, model.fingerprint, options["runtime"]))
    except ModelError as exc:
        raise ModelError(f"a Dask worker could not load the model: {exc}") from None
    except CommClosedError:
        pass  # a worker died loading the model: its nanny restarts it, and the scheduler runs the plugin there again
    shards = cut_shards(paths, shard)
    run = uuid.uuid4().hex[:8]  # keys of this run only: another client's run of the same shards is its own
    futures = [client.submit(embed_shard, piece, options, key=f"clipnb-shard-{piece.key}-{run}", pure=False)
               for piece in shards]
    by_key = {future.key: piece for future, piece in zip(futures, shards)}
    done = 0
    with progress_bar(len(paths), progress, "embedding on the cluster") as bar, lost_workers_said(client, store):
        try:
            for future in as_completed(futures):
                piece, result = by_key[future.key], future.result()
                future.release()
                done += 1
                bar.update(len(piece.paths))
                result.records["path"] = pd.Series(given[piece.start:piece.start + len(piece.paths)], dtype=object)
                yield piece, result
        except CancelledError:  # Dask cancels every future when the client loses its scheduler
            raise ClusterError(f"lost the Dask scheduler {client.scheduler.address} in the middle of the run "
                               f"({done} of {len(shards)} shards done); {kept_note(store)}") from None
        except NoWorkerError as exc:  # Dask's own limit: distributed.scheduler.no-workers-timeout
            raise ClusterError(f"the Dask scheduler {client.scheduler.address} lost all its workers and none came "
                               f"back in {exc.timeout} s ({done} of {len(shards)} shards done); {kept_note(store)}"
                               ) from None
        except KilledWorker as exc:  # Dask's own limit: distributed.scheduler.allowed-failures
            raise ClusterError(f"{exc.allowed_failures + 1} Dask workers died running the shard {exc.task}, "
                               "so Dask gave it up (too little memory for the model and a batch? try a smaller "
                               f"--batch-size); {kept_note(store)}") from None


def map_shards(model: ClipModel, items: Sequence, scheduler: "str | Client", use, *, cache=None,
               store: str | os.PathLike | None = None, **options) -> tuple[list, dict]:
    """use(shard's EmbeddedImages) for every shard, in input order, and the run's statistics. The client
    keeps only what `use` returns: with a results table, it never holds more than one shard's embeddings.
    The store defaults to `store` beside the cache, when there is a cache (see default_store). Shards of the
    store that could not be used as stored are said once, as a StoreWarning."""
    store = check_store(default_store(store, cache))  # before the cluster is reached
    started = time.perf_counter()
    client = connect(scheduler)
    kept, counts = {}, dict.fromkeys(("images", "encoded", "failed", "from_store"), 0)
    notes = []
    try:
        for piece, embedded in embedded_shards(model, items, client, store=store, **options):
            kept[piece.start] = use(embedded)
            notes += embedded.stats.get("store_notes", [])
            for key in counts:
                counts[key] += embedded.stats.get(key, 0)
        workers = len(client.scheduler_info().get("workers", {}))
    finally:
        if client is not scheduler:  # joined here for this run (an address was given): leave it again
            close(client)
    if notes:
        more = f" (and {len(notes) - 1} more shards)" if len(notes) > 1 else ""
        warnings.warn(StoreWarning(f"stored shards were not used as stored, their images were embedded again: "
                                   f"{notes[0]}{more}"), stacklevel=2)
    seconds = time.perf_counter() - started
    stats = {**counts, "cache_hits": counts["from_store"], "shards": len(kept), "seconds": seconds,
             "images_per_s": counts["images"] / seconds if seconds > 0 else float("nan"), "workers": workers,
             "store": store, "store_notes": notes}
    return [kept[start] for start in sorted(kept)], stats


def embed_on_cluster(model: ClipModel, items: Sequence, scheduler: "str | Client", **options) -> "EmbeddedImages":
    """Every item's row and embedding, in input order, as `embed_images` returns them (see embedded_shards)."""
    from .pipeline import EmbeddedImages

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
    from ..models.loading import load_model

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


def embed_shard(piece: Shard, options: dict) -> "EmbeddedImages":
    """One shard on a worker: read from the store when it is there and still true, else embed it (and store
    it). A stored shard is used only when its Parquet page checksums, schema, embedding size, model,
    decoding mode and clipnb code are this run's; of its rows, only those whose file still has the stored
    content hash: the others (a file edited in place, size and time kept) are embedded again."""
    from .pipeline import embed_local

    check_runtime(options["runtime"])  # also on a worker that joined later (Dask only logs its plugin's error)
    target = (store_path(options["store"], options["fingerprint"], options["variant"], piece.key)
              if options["store"] else None)
    stored, note = read_shard(target, piece, options) if target is not None else (None, "")
    todo = list(range(len(piece.paths)))
    if stored is not None:
        todo = [i for i, (path, content) in enumerate(zip(piece.paths, stored.contents)) if _content(path) != content]
        if not todo:
            return stored
        note = f"{len(todo)} of its {len(piece.paths)} files changed since it was stored (size and time kept)"
    model = worker_model(options["load_args"], options["fingerprint"])
    embedded = embed_local(model, [piece.paths[i] for i in todo], batch_size=options["batch_size"],
                            exact=options["exact"], background=options["background"], num_workers=0, progress=False)
    embedded.stats.update(from_store=len(piece.paths) - len(todo), encoded=len(todo),
                          store_notes=[f"{target}: {note}"] if note else [])
    if target is not None:
        # the hash of the bytes decoded; a file that could not be decoded is hashed as it is now
        contents = [content or _content(piece.paths[i]) for i, content in zip(todo, embedded.contents)]
        if stored is not None:
            embedded, contents = _replace_rows(stored, todo, embedded, contents)
        try:
            write_shard(target, embedded, contents, _shard_meta(options))
        except Exception as exc:  # each store's library has its own errors (botocore's are not OSError)
            from ..data.files import ExportError

            reason = exc if isinstance(exc, ExportError) else getattr(exc, "strerror", None) or exc
            raise ExportError(f"cannot write a shard to the store {options['store']}: {reason}; give a store "
                              "folder (or URL) every worker can write to, or run without a store") from None
    return embedded


def _replace_rows(stored: "EmbeddedImages", rows: list[int], fresh: "EmbeddedImages",
                  contents: list[str]) -> tuple["EmbeddedImages", list[str]]:
    """The stored shard with `rows` replaced by `fresh`'s rows (in that order), and its rows' contents."""
    from .pipeline import EmbeddedImages

    records, features, merged = stored.records.copy(), stored.features.clone(), list(stored.contents)
    for column in records.columns:  # each column keeps its dtype: the table must be the single-machine one
        values = np.array(records[column], dtype=object)  # a copy: pandas' own arrays are read-only
        values[rows] = fresh.records[column].to_numpy(dtype=object)
        records[column] = pd.Series(values, dtype=records[column].dtype)
    features[rows] = fresh.features
    for row, content in zip(rows, contents):
        merged[row] = content
    stats = {**fresh.stats, "images": len(records), "failed": int(records["error"].ne("").sum())}
    return EmbeddedImages(records=records, features=features, model_fingerprint=stored.model_fingerprint,
                          stats=stats, contents=merged), merged


def _content(path: str) -> str:
    """The SHA-256 of a regular file's bytes (the cache's content key), "" for anything else: a named pipe
    or a device is never read, it could block for ever."""
    from ..data.files import file_sha256

    try:
        return file_sha256(path) if stat.S_ISREG(os.stat(path).st_mode) else ""
    except OSError:
        return ""


# ---- the store ----------------------------------------------------------------------------------

STORE_FORMAT = 1  # the `format` in each shard's metadata: what this code writes and reads
META_KEY = b"clipnb"  # the Parquet key-value metadata that says who wrote a shard, for what


def check_store(store: str | os.PathLike | None) -> str | None:
    """The store as every worker must reach it, checked on this machine before any cluster work (None stays
    None). A folder becomes an absolute path (workers run in other folders); an fsspec URL must name a
    protocol whose library is installed and a bucket or folder that exists and answers now: clipnb never
    creates a bucket. Raises ExportError, saying why and what to do."""
    import fsspec
    from fsspec.implementations.local import LocalFileSystem

    from ..data.files import ExportError

    if store is None:
        return None
    text = os.fspath(store)
    try:
        fs, root = fsspec.core.url_to_fs(text)
    except ImportError as exc:  # a protocol fsspec knows, whose library is missing here ("Install s3fs ...")
        raise ExportError(f"the store {text} needs a library that is not installed: {exc}") from None
    except ValueError as exc:  # "Protocol not known: ..."
        raise ExportError(f"the store {text} cannot be used: {exc}; give a folder, or a URL such as "
                          "s3://bucket/prefix (any protocol fsspec knows)") from None
    except Exception as exc:  # the library is there but cannot start (hdfs:// without a Java runtime: OSError)
        raise ExportError(f"cannot open the store {text} ({one_line(exc)}): install what its protocol's library "
                          "needs on this machine and every worker, or give a folder or another store") from None
    if isinstance(fs, LocalFileSystem):  # fsspec made it absolute, from this process's folder
        path = Path(root)
        blocked = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), None)
        if blocked is not None:
            raise ExportError(f"the store {text} cannot be a folder: {blocked} is a file; give another --store")
        return root
    parent = root.rstrip("/").rsplit("/", 1)[0] if "/" in root.strip("/") else ""
    try:
        found = fs.exists(root) or bool(parent) and fs.exists(parent)
    except Exception as exc:  # each protocol's library has its own errors (botocore's are not OSError)
        raise ExportError(f"cannot reach the store {text} ({type(exc).__name__}: {exc}): check its address, "
                          "that it is up and your credentials, or run without a store") from None
    if not found:
        raise ExportError(f"the store {text} is in a bucket or folder that does not exist "
                          f"({parent or root}): create it first (clipnb never creates one), or give another store")
    return text


def store_path(store: str, fingerprint: str, variant: str, key: str) -> str:
    """Where a shard's Parquet file lives in a store."""
    return f"{store.rstrip('/')}/{fingerprint[:32]}/{variant}/{key}.parquet"


def store_schema(dim: int):
    """The columns of a stored shard, with the embedding size of its model."""
    import pyarrow as pa

    return pa.schema([("path", pa.string()), ("content", pa.string()), ("width", pa.int64()),
                      ("height", pa.int64()), ("error", pa.string()), ("note", pa.string()),
                      ("embedding", pa.list_(pa.float32(), dim))])


def _shard_meta(options: dict) -> dict:
    """What a shard written with these options says about itself: who wrote it (the clipnb version and the
    digest of its code) and for what (the model's fingerprint, the decoding mode, the embedding size)."""
    from .. import __version__

    return {"format": STORE_FORMAT, "clipnb": __version__, "code": options["runtime"]["code"],
            "model": options["fingerprint"], "variant": options["variant"], "dim": options["dim"]}


def write_shard(target: str, embedded: "EmbeddedImages", contents: Sequence[str], meta: dict) -> None:
    """A shard's rows as one Parquet file, written whole or not at all, with `meta` in its metadata and a
    CRC of every page (Parquet's own page checksums: `read_shard` verifies them)."""
    import fsspec
    import pyarrow as pa
    import pyarrow.parquet as pq
    from fsspec.implementations.local import LocalFileSystem

    from ..data.files import atomic_path

    records = embedded.records
    dim = embedded.features.shape[1]
    vectors = pa.FixedSizeListArray.from_arrays(pa.array(embedded.features.numpy().reshape(-1), pa.float32()), dim)
    table = pa.table({"path": [utf8_name(path) for path in records["path"]], "content": list(contents),
                      "width": records["width"].astype("int64"), "height": records["height"].astype("int64"),
                      "error": records["error"].astype(str), "note": records["note"].astype(str),
                      "embedding": vectors}, schema=store_schema(dim).with_metadata({META_KEY: json.dumps(meta)}))
    buffer = io.BytesIO()
    pq.write_table(table, buffer, write_page_checksum=True)
    fs, path = fsspec.core.url_to_fs(target)
    if isinstance(fs, LocalFileSystem):  # a local or mounted folder: written and renamed as every export is
        with atomic_path(path) as temporary:
            temporary.write_bytes(buffer.getvalue())
    else:  # an object store's PUT is whole or nothing, and needs no folders (makedirs would create a bucket)
        fs.pipe_file(path, buffer.getvalue())


def open_shard(fs, path: str, expect: dict):
    """A stored shard's table, or the reason it cannot be trusted: a page whose checksum fails (any flipped
    byte in the data), a schema or embedding size that is not the store's, or metadata that is not `expect`'s
    (the keys given: model, variant, dim, code...). Returns (table or None, reason)."""
    import pyarrow.parquet as pq

    try:
        with fs.open(path, "rb") as handle:
            table = pq.read_table(handle, page_checksum_verification=True)
        meta = json.loads((table.schema.metadata or {}).get(META_KEY, b"null"))
    except Exception as exc:  # a damaged file (a bad page checksum, a torn footer) or a store that fails now
        return None, f"could not be read ({one_line(exc)})"
    if not isinstance(meta, dict) or meta.get("format") != STORE_FORMAT:
        return None, "was not written by this clipnb (no clipnb metadata of this format)"
    differ = [key for key, value in expect.items() if meta.get(key) != value]
    if differ:
        return None, f"was written for another {', '.join(differ)} ({'; '.join(f'{k}: {meta.get(k)}' for k in differ)})"
    dim = meta.get("dim")
    if not isinstance(dim, int) or not table.schema.remove_metadata().equals(store_schema(dim)):
        return None, f"does not hold the store's columns with embeddings of {dim} numbers"
    return table, ""


def read_shard(target: str, piece: Shard, options: dict) -> tuple["EmbeddedImages | None", str]:
    """A stored shard as EmbeddedImages (its `contents` the stored hashes), or None and why it is not used
    ("" when there is none)."""
    import fsspec

    from .pipeline import EmbeddedImages

    try:
        fs, path = fsspec.core.url_to_fs(target)
        if not fs.exists(path):
            return None, ""
    except Exception as exc:  # a store that does not answer: the shard is embedded, and writing it says why
        return None, f"could not be read ({one_line(exc)})"
    expect = {"model": options["fingerprint"], "variant": options["variant"], "dim": options["dim"],
              "code": options["runtime"]["code"]}
    table, reason = open_shard(fs, path, expect)
    if table is None:
        return None, reason
    if table.column("path").to_pylist() != [utf8_name(p) for p in piece.paths]:
        return None, "holds other files than its name says"
    frame = table.drop_columns(["embedding"]).to_pandas()
    frame["path"] = pd.Series(piece.paths, dtype=object)  # the names as given, escaped ones included
    features = torch.from_numpy(_vectors(table, len(frame)))
    records = frame[["path", "width", "height", "error", "note"]].reset_index(drop=True)
    return EmbeddedImages(records=records, features=features, model_fingerprint=options["fingerprint"],
                          stats={"images": len(frame), "encoded": 0, "failed": int(records["error"].ne("").sum()),
                                 "from_store": len(frame), "store_notes": []},
                          contents=list(frame["content"])), ""


def _vectors(table, rows: int) -> np.ndarray:
    """The embedding column of a shard as a float32 array [rows, dim]."""
    vectors = table.column("embedding").combine_chunks()
    return vectors.flatten().to_numpy(zero_copy_only=False).astype(np.float32).reshape(rows, -1).copy()


def read_store(store: str | os.PathLike, fingerprint: str | None = None) -> pd.DataFrame:
    """Every stored row (all shards, all models and decoding modes, or one model's), with `model` and
    `variant` columns; embeddings as arrays. Only shards that pass `open_shard`'s checks are read (the model
    and decoding mode their metadata names must be their folders'); the others are left out and said once,
    as a StoreWarning. For large stores, read the Parquet files with DuckDB or Dask."""
    import fsspec

    fs, root = fsspec.core.url_to_fs(os.fspath(store))
    pattern = f"{root.rstrip('/')}/{fingerprint[:32] if fingerprint else '*'}/*/*.parquet"
    frames, left_out = [], []
    for path in sorted(fs.glob(pattern)):
        model, variant = path.rsplit("/", 3)[1:3]
        table, reason = open_shard(fs, path, {"variant": variant})
        if table is not None and not json.loads(table.schema.metadata[META_KEY])["model"].startswith(model):
            table, reason = None, "was written for another model than its folder's"
        if table is None:
            left_out.append(f"{path} {reason}")
            continue
        frame = table.drop_columns(["embedding"]).to_pandas()
        frame["embedding"] = list(_vectors(table, len(frame)))
        frames.append(frame[STORE_COLUMNS].assign(model=model, variant=variant))
    if left_out:
        more = f" (and {len(left_out) - 1} more)" if len(left_out) > 1 else ""
        warnings.warn(StoreWarning(f"{len(left_out)} shards of the store {os.fspath(store)} were left out: "
                                   f"{left_out[0]}{more}; a cluster run with this store embeds them again"),
                      stacklevel=2)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=[*STORE_COLUMNS, "model", "variant"])
