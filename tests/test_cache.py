"""clipnb.data.cache.EmbeddingCache: warm runs equal cold ones and encode nothing, entries are keyed by content (a
renamed file is a hit, an edited one a miss), exact and fast decoding are kept apart, a damaged entry or database
is never trusted, text embeddings are kept per (model, prompt), and a cache made in one thread works in any other
(JupyterLab runs widget callbacks on another thread than the cell that made the cache)."""
import io
import os
import shutil
import sqlite3
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import clipnb
from clipnb import bench
from clipnb.embed.runner import embed_images
from clipnb.zeroshot.scoring import build_head, encode_texts

from conftest import PHOTOS, TEST_IMAGES, _max_diff, distinct_pngs, save_state_dict, tiny_clip

CLASSES = ["cat", "dog"]


def run_in_thread(action):
    """Run `action` in a new thread; return its result or raise its exception here."""
    outcome = {}

    def target():
        try:
            outcome["result"] = action()
        except BaseException as exc:  # handed back to the test's thread
            outcome["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(timeout=60)
    assert not thread.is_alive(), "the cache call did not return"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


def test_a_cache_opened_in_one_thread_works_in_another(tiny_model, cache, tmp_path):
    image = tmp_path / "red.png"
    Image.new("RGB", (40, 30), (220, 20, 20)).save(image)
    first = clipnb.embed_images(tiny_model, [image], cache=cache, progress=False)  # opens the connection here
    assert first.stats["encoded"] == 1

    again = run_in_thread(lambda: clipnb.embed_images(tiny_model, [image], cache=cache, progress=False))
    assert again.stats["cache_hits"] == 1 and again.stats["encoded"] == 0
    assert torch.equal(again.features, first.features)

    # texts too: the panel builds a zero-shot head in the callback's thread
    tiny_model._text_memo.clear()
    head = run_in_thread(lambda: build_head(tiny_model, ["red", "blue"], ["a photo of a {}"], cache=cache))
    assert cache.get_texts(tiny_model.fingerprint, ["a photo of a red"], False)[0] is not None
    assert head.text_features.shape[:2] == (2, 1)


def test_threads_writing_at_once_lose_nothing(cache):
    vectors = {f"content-{t}-{i}": torch.full((4,), float(t * 100 + i)) for t in range(4) for i in range(25)}

    def writer(t):
        for i in range(25):
            key = f"content-{t}-{i}"
            cache.put_images("model", "exact", [(key, 10, 10, "", vectors[key])])
            assert cache.get_images("model", "exact", [key])[0] is not None

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    found = cache.get_images("model", "exact", list(vectors))
    assert all(entry is not None for entry in found)
    assert all(torch.equal(torch.from_numpy(entry["vector"]), vectors[key]) for key, entry in zip(vectors, found))
    assert cache.info()["images"] == 100


def test_warm_run_equals_cold_and_encodes_nothing(tiny_model, cache, monkeypatch):
    cold_table = clipnb.classify(PHOTOS, ["cat", "dog"], model=tiny_model, cache=cache, progress=False)
    cold = embed_images(tiny_model, PHOTOS, cache=cache, progress=False)

    def no_images(pixels):
        raise AssertionError("a warm run encoded an image")

    monkeypatch.setattr(tiny_model, "encode_image_tensors", no_images)
    warm = embed_images(tiny_model, PHOTOS, cache=cache, progress=False)
    assert warm.stats["cache_hits"] == len(PHOTOS) and warm.stats["encoded"] == 0
    assert torch.equal(warm.features, cold.features)
    assert warm.records.equals(cold.records)
    # re-scoring with other classes, templates and ensembling re-encodes no image
    rescored = clipnb.classify(PHOTOS, ["car", "tree", "book"], "imagenet7", model=tiny_model, ensemble="score",
                               cache=cache, progress=False)
    head = build_head(tiny_model, ["car", "tree", "book"], "imagenet7", "score")
    assert rescored.equals(clipnb.results_table(cold, head))
    assert cold_table["prediction"].notna().all()


def test_renamed_file_is_a_hit(tiny_model, cache, tmp_path):
    first = tmp_path / "first.jpg"
    shutil.copy(TEST_IMAGES / "cat.jpg", first)
    before = embed_images(tiny_model, [first], cache=cache, progress=False)
    renamed = tmp_path / "sub" / "renamed.JPG"
    renamed.parent.mkdir()
    os.rename(first, renamed)
    after = embed_images(tiny_model, [renamed], cache=cache, progress=False)
    assert after.stats["cache_hits"] == 1 and after.stats["encoded"] == 0
    assert torch.equal(after.features, before.features)
    assert after.records.at[0, "path"] == str(renamed)


def test_edited_file_is_a_miss_even_with_its_old_size_and_time(tiny_model, cache, tmp_path):
    path = tmp_path / "photo.bmp"
    Image.new("RGB", (48, 40), "red").save(path)
    red = embed_images(tiny_model, [path], cache=cache, progress=False)
    stat = os.stat(path)
    time.sleep(0.05)  # file times tick in steps of a few ms on some kernels: edit on a later tick
    Image.new("RGB", (48, 40), "blue").save(path)  # same format and size: the same number of bytes
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert os.stat(path).st_size == stat.st_size and os.stat(path).st_mtime_ns == stat.st_mtime_ns
    blue = embed_images(tiny_model, [path], cache=cache, progress=False)
    assert blue.stats["cache_hits"] == 0 and blue.stats["encoded"] == 1
    uncached = embed_images(tiny_model, [path], progress=False)
    assert torch.equal(blue.features, uncached.features)
    assert not torch.equal(blue.features, red.features)


def test_exact_and_fast_decoding_are_cached_apart(tiny_model, cache):
    fast = embed_images(tiny_model, PHOTOS, cache=cache, progress=False)
    exact = embed_images(tiny_model, PHOTOS, exact=True, cache=cache, progress=False)
    assert exact.stats["cache_hits"] == 0
    assert _max_diff(exact.features, bench.seed_loop(tiny_model, PHOTOS, progress=False)) <= bench.EXACT_TOLERANCE
    assert embed_images(tiny_model, PHOTOS, cache=cache, progress=False).features.equal(fast.features)


def _damage(cache, sql):
    cache.close()
    with sqlite3.connect(cache.path) as db:
        db.execute(sql)
    db.close()


def test_damaged_vector_is_recomputed_not_trusted(tiny_model, cache):
    first = embed_images(tiny_model, PHOTOS, cache=cache, progress=False)
    # flip the bytes of every stored vector: the checksum no longer matches
    _damage(cache, "UPDATE images SET vector = zeroblob(length(vector))")
    again = embed_images(tiny_model, PHOTOS, cache=cache, progress=False)
    assert again.stats["cache_hits"] == 0 and again.stats["encoded"] == len(PHOTOS)
    assert torch.equal(again.features, first.features)
    assert embed_images(tiny_model, PHOTOS, cache=cache, progress=False).stats["cache_hits"] == len(PHOTOS)


def test_damaged_file_identity_is_hashed_again(tiny_model, cache, tmp_path):
    a, b = tmp_path / "a.jpg", tmp_path / "b.jpg"
    shutil.copy(TEST_IMAGES / "cat.jpg", a)
    shutil.copy(TEST_IMAGES / "car.jpg", b)
    first = embed_images(tiny_model, [a, b], cache=cache, progress=False)
    # point a.jpg at b.jpg's content: without a checksum the cache would now answer with the car
    _damage(cache, f"UPDATE files SET content = (SELECT content FROM files WHERE path = '{os.path.realpath(b)}')"
                   f" WHERE path = '{os.path.realpath(a)}'")
    again = embed_images(tiny_model, [a, b], cache=cache, progress=False)
    assert torch.equal(again.features, first.features)


def test_damaged_database_is_rebuilt(tiny_model, cache):
    first = embed_images(tiny_model, PHOTOS[:2], cache=cache, progress=False)
    cache.close()
    cache.path.write_bytes(b"this is not a database" * 100)
    for suffix in ("-wal", "-shm"):
        cache.path.with_name(cache.path.name + suffix).unlink(missing_ok=True)
    again = embed_images(tiny_model, PHOTOS[:2], cache=cache, progress=False)
    assert again.stats["encoded"] == 2 and torch.equal(again.features, first.features)


def test_text_cache_is_per_model_and_prompt(tiny_checkpoint, cache, tmp_path, monkeypatch):
    prompts = ["a photo of a cat", "a photo of a dog"]
    model = clipnb.load_model(tiny_checkpoint, device="cpu")
    stored = encode_texts(model, prompts, cache=cache)

    calls = []

    def counting(model):
        encode = model.encode_token_tensors

        def wrapped(tokens):
            calls.append(len(tokens))
            return encode(tokens)
        monkeypatch.setattr(model, "encode_token_tensors", wrapped)
        return model

    same = counting(clipnb.load_model(tiny_checkpoint, device="cpu"))  # same weights, nothing in memory
    assert torch.equal(encode_texts(same, prompts, cache=cache), stored) and calls == []
    encode_texts(same, prompts + ["a photo of a car"], cache=cache)
    assert calls == [1]

    other = counting(clipnb.load_model(save_state_dict(tiny_clip(seed=1), tmp_path / "other.pt"), device="cpu"))
    calls.clear()
    assert not torch.allclose(encode_texts(other, prompts, cache=cache), stored)
    assert calls == [2]


def test_a_corrupted_cache_entry_is_detected_and_recomputed(tiny_model, tmp_path):
    folder = distinct_pngs(tmp_path / "photos", 6)
    (folder / "0005.png").write_bytes(_png("red"))  # one picture unlike the others
    cache = clipnb.EmbeddingCache(tmp_path / "cache")
    first = clipnb.classify(folder, CLASSES, model=tiny_model, cache=cache, progress=False, num_workers=0)
    cache.close()
    with sqlite3.connect(cache.path) as db:  # flip the bytes of every stored vector but the first
        rows = db.execute("SELECT rowid, vector FROM images").fetchall()
        for rowid, vector in rows[1:]:
            db.execute("UPDATE images SET vector=? WHERE rowid=?", (bytes(b ^ 0x55 for b in vector), rowid))
        db.execute("UPDATE texts SET vector=zeroblob(length(vector))")
        if db.execute("SELECT name FROM sqlite_master WHERE name='files'").fetchone():
            db.execute("UPDATE files SET content='0000' WHERE rowid=1")  # a remembered file hash, damaged
    db.close()
    again = clipnb.classify(folder, CLASSES, model=tiny_model, cache=cache, progress=False, num_workers=0)
    assert again.attrs["stats"]["cache_hits"] == 1 and again.attrs["stats"]["encoded"] == 5
    scores = ["score_cat", "score_dog"]
    assert np.allclose(again[scores].to_numpy(), first[scores].to_numpy(), atol=1e-6)
    third = clipnb.classify(folder, CLASSES, model=tiny_model, cache=cache, progress=False, num_workers=0)
    assert third.attrs["stats"]["cache_hits"] == 6  # the recomputed entries were stored again
    cache.close()


@pytest.mark.parametrize("damage", ["junk", "truncated", "empty"])
def test_a_damaged_cache_file_is_rebuilt(tiny_model, tmp_path, damage):
    folder = distinct_pngs(tmp_path / "photos", 4)
    cache = clipnb.EmbeddingCache(tmp_path / "cache")
    first = clipnb.classify(folder, CLASSES, model=tiny_model, cache=cache, progress=False, num_workers=0)
    cache.close()
    data = cache.path.read_bytes()
    for suffix in ("-wal", "-shm"):
        Path(str(cache.path) + suffix).unlink(missing_ok=True)
    cache.path.write_bytes({"junk": os.urandom(len(data)), "truncated": data[: len(data) // 2],
                            "empty": b""}[damage])
    again = clipnb.classify(folder, CLASSES, model=tiny_model, cache=cache, progress=False, num_workers=0)
    assert (again["error"] == "").all()
    assert np.allclose(again[["score_cat", "score_dog"]].to_numpy(), first[["score_cat", "score_dog"]].to_numpy(),
                       atol=1e-6)
    third = clipnb.classify(folder, CLASSES, model=tiny_model, cache=cache, progress=False, num_workers=0)
    assert third.attrs["stats"]["cache_hits"] == 4
    assert clipnb.EmbeddingCache(tmp_path / "cache").info()["images"] == 4
    cache.close()


def _png(colour: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 40), colour).save(buffer, "PNG")
    return buffer.getvalue()


def test_text_cache_on_disk_is_used_by_a_new_model_object(tiny_checkpoint, cache):
    first = clipnb.load_model(tiny_checkpoint)
    clipnb.build_head(first, ["cat", "dog"], "basic", cache=cache)
    second = clipnb.load_model(tiny_checkpoint)
    second.encode_token_tensors = lambda tokens: pytest.fail("text was encoded again")
    head = clipnb.build_head(second, ["dog", "cat"], "basic", cache=cache)
    assert head.text_features.shape == (2, 3, 32)
