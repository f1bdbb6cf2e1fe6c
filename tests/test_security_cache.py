"""Issue 23, items 7 and 13: the cache keeps each embedding under the hash of the bytes that were decoded,
and never deletes a database it cannot use right now (locked, read-only, full disk, a folder that is a file);
a really damaged one is renamed, not deleted. Every payload is written here into tmp_path."""
import hashlib
import sqlite3
import warnings

import numpy as np
import pytest
import torch

import clipnb
import clipnb.data.cache as cache_module
from clipnb.data.cache import CacheError, CacheWarning, EmbeddingCache
from clipnb.cli import main
from clipnb.embed.pipeline import variant as decoding_variant
from clipnb.embed.runner import embed_images

from hostile_images import encoded, noise

# Same model, same pixels, same process: a vector can still move in its last bits when the other images of
# its batch change (another matmul blocking), so embeddings are compared to float32 rounding, not exactly.
SAME_PIXELS_ATOL = 1e-5


def _two_pictures(tmp_path):
    a, b = encoded(noise(40, 30, seed=1), "PNG"), encoded(noise(30, 40, seed=2), "PNG")
    return a, b, hashlib.sha256(a).hexdigest(), hashlib.sha256(b).hexdigest()


def test_a_file_swapped_between_hashing_and_decoding_is_never_cached_under_the_wrong_hash(tiny_model, tmp_path,
                                                                                         monkeypatch):
    a, b, hash_a, hash_b = _two_pictures(tmp_path)
    path = tmp_path / "photo.png"
    reference = {}
    for name, data in (("a", a), ("b", b)):  # the true embeddings, without any cache
        path.write_bytes(data)
        reference[name] = embed_images(tiny_model, [path], progress=False, num_workers=0).features[0]
    path.write_bytes(a)
    cache = EmbeddingCache(tmp_path / "cache")
    hashed = cache.content_keys

    def hash_then_swap(paths, progress=False):
        keys = hashed(paths, progress)
        path.write_bytes(b)  # replaced after its hash was taken, before it is decoded
        return keys

    monkeypatch.setattr(cache, "content_keys", hash_then_swap)
    swapped = embed_images(tiny_model, [path], cache=cache, progress=False, num_workers=0)
    monkeypatch.undo()
    assert torch.allclose(swapped.features[0], reference["b"], atol=SAME_PIXELS_ATOL)  # what was decoded
    assert tuple(swapped.records.loc[0, ["width", "height"]]) == (30, 40)
    variant = decoding_variant(False, None)
    under_a, under_b = cache.get_images(tiny_model.fingerprint, variant, [hash_a, hash_b])
    assert under_a is None  # the old code stored b's embedding and size here
    assert (under_b["width"], under_b["height"]) == (30, 40)
    assert torch.allclose(torch.from_numpy(under_b["vector"]), reference["b"], atol=SAME_PIXELS_ATOL)  # the cache hands out numpy

    path.write_bytes(a)  # restored: the rerun gives a's embedding and size, never b's
    again = embed_images(tiny_model, [path], cache=cache, progress=False, num_workers=0)
    assert tuple(again.records.loc[0, ["width", "height"]]) == (40, 30)
    assert torch.allclose(again.features[0], reference["a"], atol=SAME_PIXELS_ATOL)
    cache.close()


def test_open_image_hashes_the_bytes_it_decodes(tmp_path):
    a, _, hash_a, _ = _two_pictures(tmp_path)
    (tmp_path / "a.png").write_bytes(a)
    assert clipnb.open_image(tmp_path / "a.png").content == hash_a


def _embed_four(tiny_model, folder, cache):
    folder.mkdir(exist_ok=True)
    for i in range(4):
        (folder / f"{i}.png").write_bytes(encoded(noise(32, 32, seed=10 + i), "PNG"))
    return embed_images(tiny_model, sorted(folder.iterdir()), cache=cache, progress=False, num_workers=0)


def test_a_lock_held_by_another_process_is_waited_for_then_the_run_goes_on_without_storing(tiny_model, tmp_path):
    first = EmbeddingCache(tmp_path / "cache")
    _embed_four(tiny_model, tmp_path / "old", first)
    first.close()
    other = sqlite3.connect(first.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock ...
    other.execute("INSERT INTO texts VALUES ('other', 'a cat', 1, x'00000000', 0)")
    cache = EmbeddingCache(tmp_path / "cache", busy_timeout=0.2)
    with pytest.warns(CacheWarning, match="locked by another process for 0.2 s.*stores nothing more") as caught:
        new = _embed_four(tiny_model, tmp_path / "new", cache)
    assert len([w for w in caught if issubclass(w.category, CacheWarning)]) == 1  # one line, not one per batch
    assert (new.records["error"] == "").all() and new.ok.all()  # every result kept
    other.execute("COMMIT")  # ... and what it committed survives: the file was never deleted
    other.close()
    cache.close()
    with sqlite3.connect(first.path) as db:
        assert db.execute("SELECT count(*) FROM texts WHERE model='other'").fetchone()[0] == 1
        assert db.execute("SELECT count(*) FROM images").fetchone()[0] == 4  # the first run's rows
    assert EmbeddingCache(tmp_path / "cache").info()["images"] == 4


def test_a_read_only_database_is_read_and_never_deleted(tiny_model, tmp_path, monkeypatch):
    # Tests run as root, for whom chmod 444 does not make a file read-only; SQLite's own read-only mode (a
    # URI with mode=ro) is what a user without write permission gets, so the cache is opened through it.
    cache = EmbeddingCache(tmp_path / "cache")
    first = _embed_four(tiny_model, tmp_path / "photos", cache)
    cache.close()
    connect = sqlite3.connect

    def read_only(path, **options):
        return connect(f"file:{path}?mode=ro", uri=True, **options)

    monkeypatch.setattr(cache_module.sqlite3, "connect", read_only)
    cache = EmbeddingCache(tmp_path / "cache")
    with pytest.warns(CacheWarning, match="is read-only; this run reads it but stores nothing"):
        again = _embed_four(tiny_model, tmp_path / "photos", cache)
        more = _embed_four(tiny_model, tmp_path / "more", cache)  # new images: computed, not stored
    assert again.stats["cache_hits"] == 4 and torch.equal(again.features, first.features)
    assert more.ok.all()
    cache.close()
    monkeypatch.undo()
    assert EmbeddingCache(tmp_path / "cache").info()["images"] == 4


def test_a_cache_folder_that_is_a_file_runs_without_the_cache(tiny_model, tmp_path, capsys):
    blocker = tmp_path / "cache"
    blocker.write_text("not a folder")
    cache = EmbeddingCache(blocker)
    with pytest.warns(CacheWarning, match="cannot be used.*goes on without it") as caught:
        embedded = _embed_four(tiny_model, tmp_path / "photos", cache)
    assert embedded.ok.all() and len(caught) == 1
    assert blocker.read_text() == "not a folder"
    for action in ("info", "clear"):  # one line each, no traceback
        assert main(["cache", action, "--cache-dir", str(blocker)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("clipnb: error: the cache folder") and "is not a folder" in err
        assert len(err.strip().splitlines()) == 1
    below = blocker / "sub"  # a folder under a file
    assert main(["cache", "info", "--cache-dir", str(below)]) == 2
    assert "cannot be used" in capsys.readouterr().err


def test_cache_info_says_a_database_path_that_is_a_folder_cannot_be_used(tmp_path, capsys):
    (tmp_path / "cache" / cache_module.DB_NAME).mkdir(parents=True)
    assert main(["cache", "info", "--cache-dir", str(tmp_path / "cache")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("clipnb: error: the embedding cache in") and len(err.strip().splitlines()) == 1


def test_a_really_damaged_database_is_renamed_not_deleted(tiny_model, tmp_path):
    cache = EmbeddingCache(tmp_path / "cache")
    cache.directory.mkdir()
    junk = np.random.default_rng(0).integers(0, 256, 8192, dtype=np.uint8).tobytes()
    cache.path.write_bytes(junk)
    with pytest.warns(CacheWarning, match=r"was damaged; it was kept as embeddings\.sqlite3\.corrupt-"):
        embedded = _embed_four(tiny_model, tmp_path / "photos", cache)
    assert embedded.ok.all()
    kept = list(cache.directory.glob(cache_module.DB_NAME + ".corrupt-*"))
    assert [p.read_bytes() for p in kept] == [junk]  # byte for byte, under its new name
    assert cache.info()["images"] == 4  # and a new cache holds this run
    cache.close()


def test_cache_info_on_a_damaged_database_says_so_and_renames_nothing(tmp_path, capsys):
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / cache_module.DB_NAME).write_bytes(b"this is not a database" * 400)
    assert main(["cache", "info", "--cache-dir", str(tmp_path / "cache")]) == 2
    err = capsys.readouterr().err
    assert "is damaged" in err and len(err.strip().splitlines()) == 1
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [cache_module.DB_NAME]


def test_a_full_disk_keeps_every_result_and_stops_caching(tiny_model, tmp_path, monkeypatch):
    cache = EmbeddingCache(tmp_path / "cache")
    _embed_four(tiny_model, tmp_path / "old", cache)
    store = cache.put_images
    calls, stored = [], []

    def disk_full(model, variant, entries):  # the second batch finds the disk full
        calls.append(1)
        if len(calls) == 2:
            def fail(db):
                raise sqlite3.OperationalError("database or disk is full")
            return cache._run(fail, write=True)
        stored.extend(entries if not cache._off else [])
        return store(model, variant, entries)

    monkeypatch.setattr(cache, "put_images", disk_full)
    new_folder = tmp_path / "new"
    new_folder.mkdir()
    for i in range(6):
        (new_folder / f"{i}.png").write_bytes(encoded(noise(32, 32, seed=40 + i), "PNG"))
    items = sorted(new_folder.iterdir())
    with pytest.warns(CacheWarning, match="is full; this run goes on without the cache"):
        embedded = embed_images(tiny_model, items, cache=cache, batch_size=2, progress=False, num_workers=0)
    assert embedded.ok.all() and len(embedded) == 6  # every result of the run, before and after
    monkeypatch.undo()
    cache.close()
    assert len(calls) > 2 and 0 < len(stored) < 6  # batches came after the full disk, and one before it
    assert EmbeddingCache(tmp_path / "cache").info()["images"] == 4 + len(stored)  # nothing stored was lost


def test_a_full_disk_in_a_widget_thread_is_one_warning(tiny_model, tmp_path):
    """A callback thread meets the full disk; the other thread's calls then skip the cache quietly."""
    import threading

    cache = EmbeddingCache(tmp_path / "cache")

    def fail(db):
        raise sqlite3.OperationalError("database or disk is full")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        thread = threading.Thread(target=lambda: cache._run(fail, write=True))
        thread.start()
        thread.join(30)
        embedded = _embed_four(tiny_model, tmp_path / "photos", cache)
    assert embedded.ok.all()
    assert [str(w.message) for w in caught if issubclass(w.category, CacheWarning)] == [cache._off]
    assert embedded.stats["cache_hits"] == 0 and not cache.get_images(tiny_model.fingerprint, "exact", ["x"])[0]


def test_cache_clear_that_cannot_delete_says_so_in_one_line(tmp_path, monkeypatch, capsys):
    cache = EmbeddingCache(tmp_path / "cache")
    cache.put_texts("m", ["a"], True, torch.zeros(1, 4))
    cache.close()

    def refuse(self, missing_ok=False):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(cache_module.Path, "unlink", refuse)  # a read-only folder (root ignores chmod)
    assert main(["cache", "clear", "--cache-dir", str(tmp_path / "cache")]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (f"clipnb: error: cannot clear the embedding cache {cache.path}: Permission denied; "
                           "check the folder's permissions, or give another cache folder (--cache-dir)")
    monkeypatch.undo()
    assert cache.path.exists()
