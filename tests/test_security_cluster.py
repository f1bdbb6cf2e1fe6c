"""Issue 23, items 8 and 9, and the cluster's tracebacks and hangs: the Dask cluster and the Parquet store trust
nothing they reuse. A damaged, stale, foreign or wrong-sized shard is embedded again (with a StoreWarning),
never used; every shard says which clipnb code and model wrote it; a worker that runs other clipnb code or
other package versions is refused; whatever answers at a scheduler's address gives one line within Dask's
timeouts; the store is checked (and made absolute) before the cluster is reached. Every payload is written
here into tmp_path; the peers that are not Dask schedulers are loopback sockets of this test."""
import json
import logging.handlers
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import fsspec
import numpy as np
import pytest
from fsspec.spec import AbstractFileSystem
from PIL import Image

import clipnb
from clipnb.embed import dask as cluster
from clipnb.cli import main
from clipnb.embed.dask import ClusterError, StoreWarning
from clipnb.report.export import ExportError

from conftest import TEST_IMAGES
from hostile_images import encoded
from test_cluster import CLASSES, same_table

# most tests here run on a LocalCluster (the module's client): left out of `make test-fast`
pytestmark = pytest.mark.cluster

COLOURS = ["red", "blue", "green", "yellow", "black", "white", "purple", "orange", "grey", "cyan"]


@pytest.fixture(scope="module")
def client():
    client = cluster.local_cluster(2)
    yield client
    cluster.close(client)


def colour_folder(folder: Path, count: int = 10) -> list[Path]:
    """`count` small PNGs of plain colours (two shards of 8 and 2): each its own content."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"{i:02d}.png"
        Image.new("RGB", (40 + i, 30), COLOURS[i % len(COLOURS)]).save(path)
        paths.append(path)
    return paths


def shard_files(store: Path) -> list[Path]:
    return sorted(store.rglob("*.parquet"))


def embed(demo, paths, client, store):
    return clipnb.embed_images(demo, paths, scheduler=client, store=store, progress=False)


# ---- item 8: the store verifies what it reuses --------------------------------------------------------

def test_flipped_bytes_in_a_shard_are_found_and_embedded_again(client, demo, tmp_path):
    paths = colour_folder(tmp_path / "photos")
    store = tmp_path / "store"
    first = embed(demo, paths, client, store)
    damaged = shard_files(store)[0]
    data = bytearray(damaged.read_bytes())
    rng = np.random.default_rng(0)
    for at in rng.choice(np.arange(len(data) // 4, 3 * len(data) // 4), 40, replace=False):
        data[at] ^= 0xFF  # 40 bytes in the pages, as a bad disk or a torn copy would leave them
    damaged.write_bytes(bytes(data))
    with pytest.warns(StoreWarning, match="could not be read"):
        again = embed(demo, paths, client, store)
    assert again.stats["encoded"] == cluster.shard_size(len(paths)) and again.stats["from_store"] == 2
    # the damaged shard was embedded again (on a worker: within 1e-6, see same_table); the other read back
    np.testing.assert_allclose(again.features.numpy(), first.features.numpy(), atol=1e-6)
    assert again.records.equals(first.records)
    with fsspec.open(damaged, "rb") as handle:  # and written again whole, so the next run reads it
        import pyarrow.parquet as pq
        assert pq.read_table(handle, page_checksum_verification=True).num_rows == cluster.shard_size(len(paths))


def test_a_file_edited_in_place_with_size_and_time_kept_is_embedded_again(client, demo, tmp_path):
    folder = tmp_path / "photos"
    paths = colour_folder(folder)
    before = encoded(Image.new("RGB", (60, 20), "red"), "PNG")
    after = encoded(Image.new("RGB", (20, 60), "blue"), "PNG")
    size = max(len(before), len(after))
    edited = paths[3]
    edited.write_bytes(before + b"\0" * (size - len(before)))  # bytes after IEND: same size both times
    store = tmp_path / "store"
    first = clipnb.classify(folder, CLASSES, model=demo, scheduler=client, store=store, progress=False)
    assert tuple(first.loc[3, ["width", "height"]]) == (60, 20)
    stat = edited.stat()
    edited.write_bytes(after + b"\0" * (size - len(after)))  # as exiftool -P does: size and times kept
    os.utime(edited, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    with pytest.warns(StoreWarning, match="1 of its 8 files changed since it was stored"):
        again = clipnb.classify(folder, CLASSES, model=demo, scheduler=client, store=store, progress=False)
    assert again.attrs["stats"]["encoded"] == 1 and again.attrs["stats"]["from_store"] == len(paths) - 1
    assert tuple(again.loc[3, ["width", "height"]]) == (20, 60)
    same_table(clipnb.classify(folder, CLASSES, model=demo, progress=False), again)
    # the shard now holds the new file: a third run reads everything from the store, silently
    third = clipnb.classify(folder, CLASSES, model=demo, scheduler=client, store=store, progress=False)
    assert third.attrs["stats"]["from_store"] == len(paths) and not third.attrs["stats"]["store_notes"]


def _write_wrong_size_shard(demo, store: Path, paths) -> Path:
    """The first shard of `paths` written again with 16-number embeddings, under metadata that says the
    model's size (as a shard of another model copied in, or a hand-made one, would be)."""
    import torch

    from clipnb.embed.pipeline import EmbeddedImages

    target = shard_files(store)[0]
    stored = cluster.read_store(store).iloc[:cluster.shard_size(len(paths))]
    records = stored[["path", "width", "height", "error", "note"]].reset_index(drop=True)
    wrong = EmbeddedImages(records=records, features=torch.full((len(records), 16), 0.25))
    meta = {"format": cluster.STORE_FORMAT, "clipnb": clipnb.__version__, "code": cluster.code_digest(),
            "model": demo.fingerprint, "variant": target.parent.name, "dim": demo.embed_dim}
    cluster.write_shard(str(target), wrong, list(stored["content"]), meta)
    return target


def test_a_shard_with_another_embedding_size_is_never_used(client, demo, tmp_path):
    paths = colour_folder(tmp_path / "photos")
    store = tmp_path / "store"
    first = embed(demo, paths, client, store)
    _write_wrong_size_shard(demo, store, paths)
    with pytest.warns(StoreWarning, match=f"embeddings of {demo.embed_dim} numbers"):
        stored = clipnb.index_from_store(demo, store)  # the search path: no matmul of 16 against 32 numbers
    assert len(stored) == 2  # only the good shard
    with pytest.warns(StoreWarning, match=f"embeddings of {demo.embed_dim} numbers"):
        again = embed(demo, paths, client, store)  # a run embeds the shard again
    assert again.features.shape == first.features.shape
    np.testing.assert_allclose(again.features.numpy(), first.features.numpy(), atol=1e-6)


def test_every_shard_says_which_clipnb_and_model_wrote_it_and_others_are_not_reused(client, demo, tmp_path):
    import pyarrow.parquet as pq

    paths = colour_folder(tmp_path / "photos")
    store = tmp_path / "store"
    embed(demo, paths, client, store)
    files = shard_files(store)
    meta = json.loads(pq.read_schema(files[0]).metadata[cluster.META_KEY])
    assert meta == {"format": cluster.STORE_FORMAT, "clipnb": clipnb.__version__, "code": cluster.code_digest(),
                    "model": demo.fingerprint, "variant": files[0].parent.name, "dim": demo.embed_dim}
    # a shard written by other clipnb code (a mixed deployment's) is embedded again, not mixed in
    table = pq.read_table(files[1])
    foreign = {**meta, "code": "0" * 64}
    pq.write_table(table.replace_schema_metadata({cluster.META_KEY: json.dumps(foreign)}), files[1],
                   write_page_checksum=True)
    with pytest.warns(StoreWarning, match="was written for another code"):
        again = embed(demo, paths, client, store)
    assert again.stats["encoded"] == 2 and again.stats["from_store"] == 8


# ---- item 9: every worker runs the client's code and packages -----------------------------------------

def _python(*args, cwd, env=None):
    return subprocess.Popen([sys.executable, *args], cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def test_a_worker_that_runs_other_clipnb_code_is_refused(client, demo, tmp_path):
    other = tmp_path / "other-release"
    shutil.copytree(Path(clipnb.__file__).parent, other / "clipnb",
                    ignore=shutil.ignore_patterns("__pycache__", "assets"))
    with open(other / "clipnb" / "tasks" / "summary.py", "a") as handle:
        handle.write("\n# one line more: another release of clipnb, same version number\n")
    env = {**os.environ, "PYTHONPATH": str(other)}  # before site-packages: this worker imports the copy
    worker = _python("-m", "distributed.cli.dask_worker", client.scheduler.address, "--nthreads", "1",
                     "--no-nanny", "--no-dashboard", cwd=tmp_path, env=env)
    try:
        client.wait_for_workers(3, timeout=60)
        with pytest.raises(ClusterError, match="runs other clipnb code than the client") as refused:
            clipnb.classify(TEST_IMAGES / "car.jpg", CLASSES, model=demo, scheduler=client, progress=False)
        assert str(other / "clipnb") in str(refused.value)  # the worker that runs the copy said so
    finally:
        worker.kill()
        worker.wait()
    deadline = time.monotonic() + 60
    while len(client.scheduler_info()["workers"]) != 2 and time.monotonic() < deadline:
        time.sleep(0.2)  # the scheduler notices the closed connection at once


def _fake_torch_version():
    import distributed.versions as versions

    versions._clipnb_original = versions._version_cached
    versions._version_cached = lambda name: "0.0.1" if name == "torch" else versions._clipnb_original(name)


def _real_versions():
    import distributed.versions as versions

    versions._version_cached = versions._clipnb_original


def test_a_worker_with_other_package_versions_is_refused(client, demo):
    one = sorted(client.scheduler_info()["workers"])[0]
    client.run(_fake_torch_version, workers=[one])  # as if that worker had torch 0.0.1 installed
    try:
        with pytest.raises(ClusterError, match=r"runs other package versions than this client \(torch 0.0.1 there"):
            clipnb.embed_images(demo, [TEST_IMAGES / "car.jpg"], scheduler=client, progress=False)
    finally:
        client.run(_real_versions, workers=[one])


def _die_once_loading_the_model(marker: str):
    """On a worker: the next model load kills one worker process (the first to get here), once."""
    from clipnb.embed import dask as worker_cluster

    original = worker_cluster.worker_model

    def dying(*args, **kwargs):
        try:
            os.close(os.open(marker, os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            return original(*args, **kwargs)
        os._exit(1)

    dying.original = original
    worker_cluster.worker_model = dying


def _load_models_again():
    from clipnb.embed import dask as worker_cluster

    worker_cluster.worker_model = getattr(worker_cluster.worker_model, "original", worker_cluster.worker_model)


def test_a_worker_killed_while_loading_the_model_loses_nothing(client, demo, tmp_path):
    single = clipnb.classify(TEST_IMAGES, CLASSES, model=demo, recursive=True, progress=False)
    marker = tmp_path / "died"
    client.run(_die_once_loading_the_model, str(marker))
    try:
        multi = clipnb.classify(TEST_IMAGES, CLASSES, model=demo, recursive=True, scheduler=client, progress=False)
    finally:
        client.run(_load_models_again)
    assert marker.exists()  # a worker died in the plug-in's registration
    same_table(single, multi)
    client.wait_for_workers(2, timeout=60)


def test_a_scheduler_killed_mid_run_is_one_line_that_says_what_was_kept(demo, tmp_path, monkeypatch, capfd):
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT", 2)  # the client's reconnection attempts: keep them short
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    scheduler = _python("-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", str(port),
                        "--no-dashboard", cwd=tmp_path)
    worker = _python("-m", "distributed.cli.dask_worker", address, "--nthreads", "1", "--no-nanny",
                     "--no-dashboard", cwd=tmp_path)  # it waits for the scheduler by itself
    colour_folder(tmp_path / "photos", 40)  # 5 shards, one at a time on the one worker
    running = cluster.embedded_shards

    def kill_the_scheduler_after_the_first_shard(*args, **kwargs):
        for done, shard in enumerate(running(*args, **kwargs)):
            if done == 0:
                scheduler.kill()
                scheduler.wait()
            yield shard

    monkeypatch.setattr(cluster, "embedded_shards", kill_the_scheduler_after_the_first_shard)
    dask_errors = logging.handlers.BufferingHandler(1000)  # what Dask logs as errors (it prints them to stderr)
    dask_errors.setLevel(logging.ERROR)
    logging.getLogger("distributed").addHandler(dask_errors)
    try:
        started = time.monotonic()
        code = main(["classify", str(tmp_path / "photos"), "--classes", "red", "blue", "--model", "demo", "--quiet",
                     "--csv", str(tmp_path / "out.csv"), "--scheduler", address, "--store", str(tmp_path / "store")])
        took = time.monotonic() - started
    finally:
        logging.getLogger("distributed").removeHandler(dask_errors)
        for process in (scheduler, worker):
            process.kill()
            process.wait()
    err = capfd.readouterr().err
    assert code == 2 and "Traceback" not in err and took < 60
    assert [record.getMessage() for record in dask_errors.buffer] == []  # no traceback of Dask's either
    lost = [line for line in err.splitlines() if line.startswith("clipnb: error:")]
    assert len(lost) == 1 and "lost the Dask scheduler" in lost[0]
    assert f"kept in the store {tmp_path / 'store'}" in lost[0]


# ---- whatever is at the scheduler's address: one line, within the timeouts ---------------------------

class LoopbackPeer:
    """A TCP server on 127.0.0.1 that accepts connections and either never answers or answers as a web
    server would (garbage to Dask)."""

    def __init__(self, answer: bytes | None):
        self.answer, self.connections = answer, []
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen()
        self.address = f"tcp://127.0.0.1:{self.server.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            self.connections.append(connection)
            if self.answer is not None:
                connection.recv(65536)
                connection.sendall(self.answer)

    def close(self):
        self.server.close()
        for connection in self.connections:
            connection.close()


@pytest.mark.parametrize("answer, message", [
    (None, "accepted the connection but gave no Dask handshake"),
    (b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
     "is not a Dask scheduler: it answered in another protocol"),
])
def test_a_peer_that_is_not_a_dask_scheduler_is_one_line(demo, capsys, monkeypatch, answer, message):
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT", 1)
    peer = LoopbackPeer(answer)
    try:
        started = time.monotonic()
        code = main(["classify", str(TEST_IMAGES / "car.jpg"), "--classes", "car", "dog", "--model", "demo",
                     "--no-cache", "--quiet", "--scheduler", peer.address])
        took = time.monotonic() - started
    finally:
        peer.close()
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and err.count("\n") == 0
    assert took < 10  # 2 x CONNECT_TIMEOUT, not the 310 s+ of a handshake that is waited for for ever


@pytest.mark.parametrize("scheme, message", [("tls", "needs Dask's TLS settings for a client"),
                                             ("ucx", "ucx:// needs the distributed-ucxx package")])
def test_tls_and_ucx_addresses_are_one_line(capsys, scheme, message):
    code = main(["classify", str(TEST_IMAGES / "car.jpg"), "--classes", "car", "dog", "--model", "demo",
                 "--no-cache", "--quiet", "--scheduler", f"{scheme}://127.0.0.1:8786"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and err.count("\n") == 0


# ---- the store, checked before the cluster is reached -------------------------------------------------

class EndpointDown(Exception):
    """What an object store's library raises when its endpoint does not answer (botocore's are no OSError)."""


class DownFileSystem(AbstractFileSystem):
    """An fsspec store whose endpoint is down: every call fails."""

    protocol = "clipnb-down"

    def exists(self, path, **kwargs):
        raise EndpointDown("Could not connect to the endpoint URL")

    def pipe_file(self, path, value, **kwargs):
        raise EndpointDown("Could not connect to the endpoint URL")


@pytest.fixture()
def down_store():
    fsspec.register_implementation(DownFileSystem.protocol, DownFileSystem, clobber=True)
    yield "clipnb-down://bucket/clipnb"


def _store_refused(capsys, store: str) -> str:
    """The CLI's one line for --store `store`: said before any model is loaded or cluster reached (the
    scheduler's address is a port where nothing listens)."""
    code = main(["classify", str(TEST_IMAGES), "--classes", "car", "dog", "--scheduler", "tcp://127.0.0.1:9",
                 "--store", store])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and "scheduler" not in err
    return err


def test_a_store_whose_library_is_missing_is_said_before_the_cluster(capsys, monkeypatch, no_model_loading):
    import importlib

    monkeypatch.setitem(sys.modules, "s3fs", None)  # s3fs not installed (an import of it fails)
    imported = importlib.import_module("fsspec.registry")._registry  # the protocols whose class fsspec holds
    for protocol in ("s3", "s3a"):
        monkeypatch.delitem(imported, protocol, raising=False)
    assert "needs a library that is not installed" in _store_refused(capsys, "s3://bucket/clipnb")


def test_an_unknown_store_protocol_is_said_before_the_cluster(capsys, no_model_loading):
    assert "Protocol not known: nosuchfs" in _store_refused(capsys, "nosuchfs://bucket/clipnb")


def test_a_missing_bucket_is_refused_never_created(capsys, no_model_loading):
    memory = fsspec.filesystem("memory")
    assert "does not exist (/no-such-bucket)" in _store_refused(capsys, "memory://no-such-bucket/clipnb")
    assert not memory.exists("/no-such-bucket")
    memory.mkdir("/bucket")
    try:
        assert cluster.check_store("memory://bucket/clipnb") == "memory://bucket/clipnb"  # its bucket is there
    finally:
        memory.rm("/bucket", recursive=True)


def test_a_store_that_does_not_answer_is_said_before_the_cluster_and_mid_run(capsys, demo, down_store,
                                                                          no_model_loading):
    assert "cannot reach the store" in _store_refused(capsys, down_store)
    # the endpoint going down mid-run: the worker's write is one ExportError, not botocore's traceback
    piece = cluster.cut_shards([str(TEST_IMAGES / "car.jpg")])[0]
    options = cluster.shard_options(demo, store=down_store)
    cluster._WORKER_MODELS[demo.fingerprint] = demo  # this process plays the worker
    try:
        with pytest.raises(ExportError, match=f"cannot write a shard to the store {down_store}: Could not connect"):
            cluster.embed_shard(piece, options)
    finally:
        cluster._WORKER_MODELS.pop(demo.fingerprint)


def test_a_relative_store_is_the_clients_folder_not_the_workers(client, demo, tmp_path, monkeypatch):
    workers_folder = Path(next(iter(client.run(os.getcwd).values())))
    name = f"relative-store-{os.getpid()}"
    monkeypatch.chdir(tmp_path)  # this process here; the workers stay where the cluster started them
    try:
        embed(demo, colour_folder(tmp_path / "photos", 3), client, name)
        assert shard_files(tmp_path / name) and not (workers_folder / name).exists()
    finally:
        shutil.rmtree(workers_folder / name, ignore_errors=True)


@pytest.mark.parametrize("options, kept", [(["--store", "shards"], "kept in the store {tmp_path}/shards"),
                                           (["--no-cache"], "nothing was kept")])
def test_ctrl_c_on_a_cluster_run_says_what_was_kept(client, capsys, tmp_path, monkeypatch, options, kept):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
        yield

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cluster, "embedded_shards", interrupted)
    code = main(["classify", str(TEST_IMAGES), "--classes", "car", "dog", "--model", "demo", "--quiet",
                 "--scheduler", client.scheduler.address, *options])
    err = capsys.readouterr().err
    assert code == 130 and kept.format(tmp_path=tmp_path) in err and "cached" not in err


# ---- a scheduler without workers, hdfs:// and inproc:// addresses, ws:// peers, one-line reasons (review) ----

def _classify_on(address: str, *options) -> list:
    return ["classify", str(TEST_IMAGES / "car.jpg"), "--classes", "car", "dog", "--model", "demo", "--no-cache",
            "--quiet", "--scheduler", address, *options]


def test_a_scheduler_without_workers_is_one_line_not_a_hang(demo, capsys, monkeypatch):
    from distributed import LocalCluster

    monkeypatch.setattr(cluster, "WORKERS_TIMEOUT", 1)
    with LocalCluster(n_workers=0, dashboard_address=":0") as empty:
        started = time.monotonic()
        code = main(_classify_on(empty.scheduler_address))
        took = time.monotonic() - started
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and f"has no workers after 1 s: start workers (`dask worker {empty.scheduler_address}`)" in err[-1]
    assert any("0 workers (waiting up to 1 s for a worker to join; Ctrl-C stops)" in line for line in err)
    assert took < 60  # WORKERS_TIMEOUT and the model's loading, not the 626 s+ the reviewer waited


def test_all_workers_lost_mid_run_on_a_cluster_clipnb_started_is_one_line(demo, tmp_path, monkeypatch):
    monkeypatch.setattr(cluster, "WORKERS_TIMEOUT", 1)  # read by local_cluster into the scheduler's config
    client = cluster.local_cluster(1)
    waited = cluster.wait_for_workers

    def then_lose_every_worker(client):  # the workers go after the run found one, before its shards ran
        waited(client)
        client.cluster.scale(0)
        deadline = time.monotonic() + 30
        while client.scheduler_info()["workers"] and time.monotonic() < deadline:
            time.sleep(0.1)

    monkeypatch.setattr(cluster, "wait_for_workers", then_lose_every_worker)
    try:
        with pytest.raises(ClusterError, match="lost all its workers and none came back in 1"):
            embed(demo, colour_folder(tmp_path / "photos", 3), client, str(tmp_path / "store"))
    finally:
        cluster.close(client)


def test_a_store_whose_library_cannot_start_is_one_line(capsys, no_model_loading):
    # pyarrow's HDFS needs a Java runtime (libjvm.so), which this machine lacks
    err = _store_refused(capsys, "hdfs://nn/p")
    assert "cannot open the store hdfs://nn/p (OSError: Unable to load libjvm)" in err


def test_an_inproc_address_is_one_line(demo, capsys):
    code = main(_classify_on("inproc://x"))
    err = capsys.readouterr().err.strip()
    assert code == 2 and "works only inside the Python process that started the scheduler" in err
    assert err.count("\n") == 0


def test_a_silent_websocket_peer_is_said_to_have_accepted(demo, capsys, monkeypatch):
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT", 1)
    peer = LoopbackPeer(None)
    try:
        code = main(_classify_on(peer.address.replace("tcp://", "ws://")))
    finally:
        peer.close()
    err = capsys.readouterr().err.strip()
    assert code == 2 and "accepted the connection but gave no Dask handshake" in err and err.count("\n") == 0


def test_the_docs_give_the_timeout_the_code_takes():
    text = " ".join((Path(__file__).parents[1] / "docs" / "security.md").read_text().split())
    assert "within 2 x `clipnb.embed.dask.CONNECT_TIMEOUT`" in text


class ThriftFailure:
    """A store whose shard fails as pyarrow's damaged page headers do: a message of several lines."""

    def open(self, path, mode):
        raise OSError("Couldn't deserialize thrift: TProtocolException: Invalid data\n"
                      "Deserializing page header failed.\n")


def test_a_damaged_shards_reason_is_one_line():
    table, why = cluster.open_shard(ThriftFailure(), "shard.parquet", {})
    assert table is None and why == ("could not be read (OSError: Couldn't deserialize thrift: TProtocolException: "
                                     "Invalid data)")


def test_a_worker_lost_on_an_external_scheduler_is_said_with_how_to_stop(tmp_path):
    from distributed import Client, LocalCluster

    # a scheduler clipnb did not start: its no-workers-timeout is its owner's, so the run is told, not stopped
    with LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=":0") as external, \
            Client(external) as client, pytest.warns(cluster.ClusterWarning) as said:
        seen = []
        handler = seen.append  # the user's own handler, given back after the run
        client.subscribe_topic("all", handler)
        # the subscription travels to the scheduler on its own (batched), and may arrive after a log_event call:
        # an event of ours coming back proves it is there; a worker killed before would be lost unseen
        deadline = time.monotonic() + 30
        while not any(event[1].get("action") == "test-subscribed" for event in seen) and time.monotonic() < deadline:
            client.log_event("all", {"action": "test-subscribed"})
            time.sleep(0.2)
        with cluster.lost_workers_said(client, str(tmp_path / "store")):
            worker_pid = next(iter(client.run(os.getpid).values()))
            os.kill(worker_pid, 9)  # the worker process dies without a word (its nanny starts another)
            deadline = time.monotonic() + 30
            while not any(w.category is cluster.ClusterWarning for w in said) and time.monotonic() < deadline:
                time.sleep(0.1)
        assert client._event_handlers["all"] is handler
    message = next(str(w.message) for w in said if w.category is cluster.ClusterWarning)
    assert "was lost; with no worker left the run waits for new ones" in message and "Ctrl-C" in message
    assert f"kept in the store {tmp_path / 'store'}" in message
