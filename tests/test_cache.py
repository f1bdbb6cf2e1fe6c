"""clipnb.cache.EmbeddingCache from more than one thread: JupyterLab runs widget callbacks on another thread
than the cell that made the cache, so a cache made in one thread must work in any other."""
import threading

import torch
from PIL import Image

import clipnb
from clipnb.scoring import build_head


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
    assert all(torch.equal(entry["vector"], vectors[key]) for key, entry in zip(vectors, found))
    assert cache.info()["images"] == 100
