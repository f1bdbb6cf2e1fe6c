"""clipnb.embed.dask: on a LocalCluster of two worker processes, the table is the single-machine table (rows, order,
errors, notes; scores within 1e-6), on photos and on a folder of hostile files; a worker killed in the middle
of a shard loses and doubles nothing; a rerun reads finished shards from the Parquet store."""
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from distributed import WorkerPlugin

import clipnb
from clipnb.embed import dask as cluster

from conftest import TEST_IMAGES

# starts a LocalCluster of worker processes: left out of `make test-fast`
pytestmark = pytest.mark.cluster

CLASSES = ["red circle", "blue square", "green triangle"]


@pytest.fixture(scope="module")
def client():
    client = cluster.local_cluster(2)
    yield client
    cluster.close(client)


def same_table(single: pd.DataFrame, multi: pd.DataFrame) -> None:
    """Equal rows, order, errors and notes; every float that comes from the model within a tolerance, never
    exactly: a worker's one thread sums in another order than two, and CPUs (AVX-512 or not) differ in the
    last bits. Cosine scores within 1e-6; probabilities within 1e-4, since the logit scale (100) multiplies
    score differences; outlier_z within 1e-4, since it divides them by the folder's MAD (about 0.1 on these
    folders) and moves with the median and the MAD themselves (2.4e-7 apart measured on a Xeon)."""
    scores = [c for c in single.columns if c.startswith("score_")]
    probabilities = [c for c in single.columns if c.startswith("prob_") or c == "confidence"]
    z = [c for c in single.columns if c == "outlier_z"]
    other = [c for c in single.columns if c not in scores + probabilities + z]
    pd.testing.assert_frame_equal(single[other], multi[other])
    np.testing.assert_allclose(multi[scores].to_numpy(float), single[scores].to_numpy(float), atol=1e-6)
    np.testing.assert_allclose(multi[probabilities].to_numpy(float), single[probabilities].to_numpy(float),
                               atol=1e-4)
    np.testing.assert_allclose(multi[z].to_numpy(float), single[z].to_numpy(float), atol=1e-4)


def test_photos_give_the_single_machine_table(client, demo, tmp_path):
    single = clipnb.classify(TEST_IMAGES, CLASSES, model=demo, recursive=True, progress=False)
    multi = clipnb.classify(TEST_IMAGES, CLASSES, model=demo, recursive=True, scheduler=client,
                            store=tmp_path / "store", progress=False)
    same_table(single, multi)
    stats = multi.attrs["stats"]
    assert stats["images"] == len(single) and stats["shards"] > 2 and stats["workers"] == 2


def test_relative_paths_reach_workers_that_run_in_another_folder(client, demo, monkeypatch):
    monkeypatch.chdir(TEST_IMAGES)  # this process here; the workers stay where the cluster started them
    relative = sorted(p.name for p in TEST_IMAGES.glob("*.jpg"))
    single = clipnb.classify(relative, CLASSES, model=demo, progress=False)
    multi = clipnb.classify(relative, CLASSES, model=demo, scheduler=client, progress=False)
    assert not multi["error"].ne("").any() and list(multi["path"]) == relative
    same_table(single, multi)


def test_hostile_files_are_the_same_error_rows(client, demo, hostile):
    root, expect = hostile
    single = clipnb.classify(root, CLASSES, model=demo, recursive=True, progress=False)
    multi = clipnb.classify(root, CLASSES, model=demo, recursive=True, scheduler=client.scheduler.address,
                            progress=False)
    same_table(single, multi)
    assert multi["error"].ne("").sum() == sum(1 for error in expect.values() if error)


def test_a_rerun_reads_finished_shards_from_the_store(client, demo, tmp_path):
    store = tmp_path / "store"
    first = clipnb.embed_images(demo, clipnb.gather_images(TEST_IMAGES, recursive=True), scheduler=client,
                                store=store, progress=False)
    files = sorted(store.rglob("*.parquet"))
    assert len(files) == first.stats["shards"] and first.stats["from_store"] == 0
    stored = cluster.read_store(store)
    assert list(stored["path"]) == list(first.records["path"])  # pandas reads the store as it is
    np.testing.assert_array_equal(np.stack(stored["embedding"]), first.features.numpy())
    files[1].unlink()  # as if the client had been killed before that shard was done
    again = clipnb.embed_images(demo, clipnb.gather_images(TEST_IMAGES, recursive=True), scheduler=client,
                                store=store, progress=False)
    # only the missing shard is embedded again
    assert again.stats["encoded"] == cluster.shard_size(len(first))
    assert again.stats["from_store"] == len(first) - again.stats["encoded"]
    assert again.records.equals(first.records)
    # the stored shards come back bit for bit (checked above); the one embedded again may run on the other
    # worker, whose CPU may differ in the last bits: within 1e-6, as same_table's scores
    np.testing.assert_allclose(again.features.numpy(), first.features.numpy(), atol=1e-6)


class DieOnceWhileEmbedding(WorkerPlugin):
    """Kills its worker process the first time a clipnb shard starts executing there (once per cluster)."""

    def __init__(self, marker: str):
        self.marker = marker

    def transition(self, key, start, finish, **kwargs):
        if finish == "executing" and "clipnb-shard" in str(key) and not os.path.exists(self.marker):
            Path(self.marker).touch()
            os._exit(1)


def test_a_worker_killed_mid_run_loses_and_doubles_nothing(client, demo, tmp_path):
    single = clipnb.classify(TEST_IMAGES, CLASSES, model=demo, recursive=True, progress=False)
    marker = tmp_path / "died"
    client.register_plugin(DieOnceWhileEmbedding(str(marker)), name="die-once")
    try:
        multi = clipnb.classify(TEST_IMAGES, CLASSES, model=demo, recursive=True, scheduler=client, progress=False)
    finally:
        client.unregister_worker_plugin("die-once")
    assert marker.exists()  # a worker did die in the middle of a shard
    same_table(single, multi)
    client.wait_for_workers(2, timeout=60)  # the nanny restarted it, with the model loaded again


def test_a_model_the_workers_cannot_load_is_refused(client, demo):
    import dataclasses

    handmade = dataclasses.replace(demo, load_args=None)
    with pytest.raises(clipnb.ModelError, match="was not made by clipnb.load_model"):
        clipnb.embed_images(handmade, [TEST_IMAGES / "car.jpg"], scheduler=client, progress=False)


def test_shards_are_cut_from_the_count_alone(tmp_path):
    paths = [str(tmp_path / f"{i}.jpg") for i in range(100)]
    shards = cluster.cut_shards(paths)
    assert [p for s in shards for p in s.paths] == paths and len({s.key for s in shards}) == len(shards)
    assert {len(s.paths) for s in shards[:-1]} == {cluster.shard_size(100)}
    (tmp_path / "3.jpg").write_bytes(b"new")  # a file that appears changes its own shard's key only
    again = cluster.cut_shards(paths)
    assert [a.key == b.key for a, b in zip(shards, again)] == [i != 0 for i in range(len(shards))]


def test_search_over_the_store_finds_what_search_over_the_folder_finds(client, demo, tmp_path):
    store = tmp_path / "store"
    clipnb.classify(TEST_IMAGES, CLASSES, model=demo, recursive=True, scheduler=client, store=store, progress=False)
    stored = clipnb.index_from_store(demo, store)  # no image is read again
    folder = clipnb.index_images(demo, TEST_IMAGES, recursive=True, progress=False)
    assert stored.paths == folder.paths and list(stored.skipped["path"]) == list(folder.skipped["path"])
    for query in ("red circle", "a blue square"):
        pd.testing.assert_frame_equal(clipnb.search_text(stored, demo, query), clipnb.search_text(folder, demo, query),
                                      atol=1e-6)
    with pytest.raises(FileNotFoundError, match="holds no embeddings"):
        clipnb.index_from_store(demo, store, exact=True)  # embedded with fast decoding only


def test_cli_refuses_a_store_without_a_cluster_before_loading_a_model(capsys, no_model_loading):
    from clipnb.cli import main

    assert main(["classify", str(TEST_IMAGES), "--classes", "red circle", "--store", "somewhere"]) == 2
    assert "--store keeps a cluster run's shards" in capsys.readouterr().err


def test_cli_says_when_the_store_cannot_be_written(client, capsys, tmp_path):
    from clipnb.cli import main

    blocked = tmp_path / "a file, not a folder"
    blocked.write_text("")
    code = main(["classify", str(TEST_IMAGES), "--model", "demo", "--classes", "red circle", "--quiet",
                 "--scheduler", client.scheduler.address, "--store", str(blocked / "store")])
    err = capsys.readouterr().err
    # said before the cluster is joined (a file where the store's folder should be cannot change meanwhile)
    assert code == 2 and f"{blocked} is a file" in err and "Dask cluster" not in err


def test_names_that_are_not_utf8_go_through_the_store(client, demo, tmp_path):
    from PIL import Image

    folder = tmp_path / "photos"
    folder.mkdir()
    Image.new("RGB", (40, 30), "red").save(os.fsdecode(os.fsencode(folder) + b"/caf\xe9.jpg"), format="JPEG")
    Image.new("RGB", (40, 30), "blue").save(folder / "plain.png")
    single = clipnb.classify(folder, CLASSES, model=demo, progress=False)
    for _ in range(2):  # the second run reads the shard back from the store
        multi = clipnb.classify(folder, CLASSES, model=demo, scheduler=client, store=tmp_path / "store", progress=False)
        same_table(single, multi)
    assert multi.attrs["stats"]["from_store"] == 2
    assert any("\\xe9" in path for path in cluster.read_store(tmp_path / "store")["path"])


def test_a_dashboard_link_given_as_the_scheduler_is_explained(capsys, demo):
    from clipnb.cli import main

    assert main(["classify", str(TEST_IMAGES), "--model", "demo", "--classes", "red circle", "--quiet",
                 "--no-cache", "--scheduler", "http://127.0.0.1:8787/status"]) == 2
    assert "is not a Dask scheduler's address" in capsys.readouterr().err
