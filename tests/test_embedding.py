"""clipnb.embed.pipeline: the batched pipeline gives the same answers as openai-clip's one-at-a-time loop, fast (draft)
decoding stays within the tolerance measured for it, and streams share the cores, stop together and leave torch's
threads as they were. No timings are asserted here: `python -m clipnb.bench` measures speed.
"""
import threading

import numpy as np
import pytest
import torch
from PIL import Image

import clipnb
from clipnb import bench
from clipnb.embed import pipeline as embedding
from clipnb.embed.pipeline import load_pixels
from clipnb.embed.runner import embed_images
from clipnb.models.families.openai import import_clip

from conftest import PHOTOS, _max_diff, distinct_pngs
from hostile_images import displayed, noise, with_orientation

CLASSES = ["cat", "dog"]


@pytest.mark.parametrize("path", PHOTOS, ids=lambda p: p.name)
def test_exact_pixels_are_openai_clips(path):
    preprocess = import_clip().clip._transform(224)
    pixels, opened = load_pixels(path, preprocess)
    assert torch.equal(pixels, preprocess(Image.open(path)))
    assert (opened.width, opened.height) == Image.open(path).size


@pytest.mark.parametrize("workers", [0, 2])
def test_exact_pipeline_equals_seed_loop(tiny_model, tmp_path, workers):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    items = PHOTOS[:3] + [broken] + PHOTOS[3:]
    embedded = embed_images(tiny_model, items, exact=True, batch_size=3, num_workers=workers, progress=False)
    assert embedded.records["error"].ne("").tolist() == [p == broken for p in items]
    seed = bench.seed_loop(tiny_model, PHOTOS, progress=False)
    assert _max_diff(embedded.features[torch.tensor(embedded.ok)], seed) <= bench.EXACT_TOLERANCE
    assert embedded.features[torch.tensor(~embedded.ok)].isnan().all()


def test_pipeline_holds_one_batch_per_stream(tiny_model, monkeypatch):
    """Memory is bounded by the batches in flight: no image is decoded long before the model takes it."""
    decoded, encoded, backlog = [0], [0], []
    preprocess, encode = tiny_model.preprocess, tiny_model.encode_image_tensors
    lock = threading.Lock()

    def counting_preprocess(image):
        with lock:  # decoding runs in threads
            decoded[0] += 1
        return preprocess(image)

    def counting_encode(pixels):
        backlog.append(decoded[0] - encoded[0])
        encoded[0] += len(pixels)
        return encode(pixels)

    monkeypatch.setattr(tiny_model, "preprocess", counting_preprocess)
    monkeypatch.setattr(tiny_model, "encode_image_tensors", counting_encode)
    embed_images(tiny_model, PHOTOS * 3, batch_size=4, num_workers=0, progress=False)
    assert encoded[0] == len(PHOTOS) * 3
    streams = embedding.stream_plan()[0]
    assert len(backlog) == 6 and max(backlog) <= 4 * streams


def test_draft_decoding_within_measured_tolerance(photo_folder):
    model = clipnb.load_model(photo_folder / "vit-b32-random.pt", device="cpu")
    photos = clipnb.find_images(photo_folder)
    fast = embed_images(model, photos, num_workers=0, progress=False)
    exact = embed_images(model, photos, exact=True, num_workers=0, progress=False)
    assert (1 - (fast.features * exact.features).sum(dim=1)).max() <= embedding.DRAFT_TOLERANCE
    for photo in photos:
        drafted = load_pixels(photo, model.preprocess, draft_size=embedding.DRAFT_FACTOR * 224)[0]
        full = load_pixels(photo, model.preprocess)[0]
        # draft decoding is really used, and moves no pixel far (measured on 16 benchmark photos at factor 1:
        # at most 0.21 in normalised units, RMS 0.011-0.018, i.e. about one grey level)
        assert not torch.equal(drafted, full)
        assert _max_diff(drafted, full) <= 0.3
        assert (drafted - full).pow(2).mean().sqrt() <= 0.03


@pytest.mark.parametrize("count, batch, streams", [(1000, 16, 2), (100, 16, 2), (10, 16, 2), (3, 16, 2), (1, 16, 2),
                                                   (17, 16, 1), (50, 4, 8), (7, 3, 3)])
def test_batches_cover_everything_in_order_and_share_work_evenly(count, batch, streams):
    batches = embedding._split_batches(count, batch, streams)
    assert [i for b in batches for i in b] == list(range(count))
    sizes = [len(b) for b in batches]
    assert max(sizes) <= batch and max(sizes) - min(sizes) <= 1
    if count >= streams:  # every stream gets the same number of batches
        assert len(batches) % streams == 0


def test_stream_plan():
    assert embedding.stream_plan(1) == (1, 1)
    assert embedding.stream_plan(2) == (2, 1)
    assert embedding.stream_plan(16) == (embedding.MAX_STREAMS, 16 // embedding.MAX_STREAMS)
    assert embedding.stream_plan(2, batches=1) == (1, 2)  # a single image is encoded on every core
    assert embedding.stream_plan(16, batches=3) == (3, 5)
    assert embedding.stream_plan(4, batches=0) == (1, 4)
    with embedding.torch_threads(1):  # a user's torch.set_num_threads(1) means one stream, not one per core
        assert embedding.stream_plan() == (1, 1)


def test_streams_run_single_threaded_and_leave_torch_threads_as_they_were(tiny_model, monkeypatch):
    seen, encode = [], tiny_model.encode_image_tensors

    def recording_encode(pixels):
        seen.append((threading.current_thread().name, torch.get_num_threads()))
        return encode(pixels)

    before = torch.get_num_threads()
    monkeypatch.setattr(tiny_model, "encode_image_tensors", recording_encode)
    streamed = embed_images(tiny_model, PHOTOS * 2, batch_size=2, num_workers=0, progress=False)
    assert torch.get_num_threads() == before
    streams, threads = embedding.stream_plan()
    assert all(name.startswith("clipnb-stream") and count == threads for name, count in seen)
    assert len({name for name, _ in seen}) == min(streams, len(seen))
    seen.clear()
    embed_images(tiny_model, PHOTOS[:1], num_workers=0, progress=False)  # one image: one stream, every core
    assert [count for _, count in seen] == [embedding.stream_plan(batches=1)[1]]
    monkeypatch.undo()
    # the same embeddings as one batch after another on all threads, in the same order
    single = torch.cat([tiny_model.encode_image_tensors(load_pixels(p, tiny_model.preprocess,
                                                                    embedding.DRAFT_FACTOR * 32)[0][None])
                        for p in PHOTOS * 2])
    assert _max_diff(streamed.features, single) <= 1e-5


def test_a_failing_batch_stops_the_streams(tiny_model, monkeypatch):
    calls, encode = [], tiny_model.encode_image_tensors

    def failing_encode(pixels):
        calls.append(len(pixels))
        if len(calls) == 2:
            raise RuntimeError("out of memory")
        return encode(pixels)

    monkeypatch.setattr(tiny_model, "encode_image_tensors", failing_encode)
    with pytest.raises(RuntimeError, match="out of memory"):
        embed_images(tiny_model, PHOTOS * 10, batch_size=2, num_workers=0, progress=False)
    # the batches already running or queued finish; none of the other ~35 starts
    assert len(calls) <= 2 * embedding.stream_plan()[0] + 2


def test_overlapping_thread_settings_restore_the_original_count():
    before = torch.get_num_threads()
    first = embedding.torch_threads(1)
    first.__enter__()
    with embedding.torch_threads(2):  # another embed_images, in another thread, starting meanwhile
        first.__exit__(None, None, None)  # the first ends first: the second's count holds
        assert torch.get_num_threads() == 2
    assert torch.get_num_threads() == before


def test_ctrl_c_returns_without_waiting_for_running_batches(tiny_model, monkeypatch):
    if embedding.stream_plan()[0] < 2:
        pytest.skip("needs two streams")
    release, finished, encode = threading.Event(), threading.Event(), tiny_model.encode_image_tensors
    lock, calls = threading.Lock(), []

    def encode_or_interrupt(pixels):
        with lock:
            calls.append(1)
            first = len(calls) == 1
        if first:
            raise KeyboardInterrupt
        release.wait(timeout=30)  # a long batch, still running when Ctrl-C arrives
        finished.set()
        return encode(pixels)

    monkeypatch.setattr(tiny_model, "encode_image_tensors", encode_or_interrupt)
    with pytest.raises(KeyboardInterrupt):
        embed_images(tiny_model, PHOTOS * 4, batch_size=2, num_workers=0, progress=False)
    assert not finished.is_set()  # embed_images did not wait for the running batch
    release.set()
    # the batches left running (and one a free stream may have taken just before the pool was shut) finish
    # here, not in a later test that counts the shared model's encodes
    for thread in threading.enumerate():
        if thread.name.startswith("clipnb-stream"):
            thread.join(timeout=60)


def test_default_workers_and_batch(tiny_model):
    # on the CPU, streams decode and encode in turn; worker processes only feed a GPU
    assert embedding.default_workers(1000, 16, tiny_model) == 0
    assert embedding.default_batch_size(tiny_model) == embedding.CPU_BATCH
    assert np.isfinite(embed_images(tiny_model, PHOTOS[:1], progress=False).features.numpy()).all()


def test_a_decoder_crash_on_one_file_is_a_row_not_a_failed_run(tiny_model, tmp_path, monkeypatch):
    folder = distinct_pngs(tmp_path / "photos", 3)
    import clipnb.embed.pipeline as embedding

    real_open = embedding.open_image

    def crash_on_second(path, *args, **kwargs):
        if str(path).endswith("0001.png"):
            raise RuntimeError("decoder bug")
        return real_open(path, *args, **kwargs)
    monkeypatch.setattr(embedding, "open_image", crash_on_second)
    results = clipnb.classify(folder, CLASSES, model=tiny_model, progress=False, num_workers=0)
    assert results["error"].tolist()[0] == results["error"].tolist()[2] == ""
    assert "RuntimeError: decoder bug" in results["error"].tolist()[1]


def test_pil_images_and_transparency_option(tiny_model):
    rgba = Image.new("RGBA", (64, 48), (255, 0, 0, 0))
    dropped = clipnb.embed_images(tiny_model, [rgba], progress=False).features
    white = clipnb.embed_images(tiny_model, [rgba], background=(255, 255, 255), progress=False).features
    assert not (dropped - white).abs().max() < 1e-6
    # by default the model sees exactly what openai-clip's own preprocessing makes of the image
    reference = tiny_model.encode_image_tensors(tiny_model.preprocess(rgba).unsqueeze(0))
    assert (dropped - reference).abs().max() < 1e-6


def test_the_model_sees_the_rotated_pixels(tiny_model, tmp_path):
    stored = np.asarray(noise(48, 32, seed=7))
    path = tmp_path / "six.png"
    path.write_bytes(with_orientation(Image.fromarray(stored), 6, "PNG"))
    from_file = clipnb.embed_images(tiny_model, [path], exact=True, progress=False, num_workers=0)
    upright = clipnb.embed_images(tiny_model, [Image.fromarray(displayed(stored, 6))], progress=False, num_workers=0)
    as_stored = clipnb.embed_images(tiny_model, [Image.fromarray(stored)], progress=False, num_workers=0)
    assert (from_file.features - upright.features).abs().max() < 1e-5
    assert (from_file.features - as_stored.features).abs().max() > 1e-3
    assert (from_file.records.at[0, "width"], from_file.records.at[0, "height"]) == (32, 48)


@pytest.mark.parametrize("workers", [0, 1])
def test_a_run_says_where_its_time_went(tiny_model, tmp_path, workers):
    """stats["stages"]: each stage's CPU time, from the streams or from the decoding worker processes alike."""
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    cache = clipnb.EmbeddingCache(tmp_path / "cache")
    embedded = embed_images(tiny_model, PHOTOS[:4] + [broken], cache=cache, batch_size=2, num_workers=workers,
                            progress=False)
    stages, stats = embedded.stats["stages"], embedded.stats
    assert list(stages) == list(embedding.STAGES)
    for stage in ("hash", "decode", "preprocess", "encode", "cache write"):
        assert stages[stage]["cpu_seconds"] > 0, stage
    assert stats["cores"] == (torch.get_num_threads() if workers == 0 else embedding.cpu_count())
    if workers == 0:  # every stage ran in this process: together they are part of its CPU time
        assert sum(s["cpu_seconds"] for s in stages.values()) <= stats["cpu_seconds"] * 1.05 + 0.01
    # a warm run reads and encodes nothing
    warm = embed_images(tiny_model, PHOTOS[:4], cache=cache, num_workers=workers, progress=False).stats["stages"]
    assert warm["decode"]["cpu_seconds"] == warm["encode"]["cpu_seconds"] == 0
    assert warm["hash"]["cpu_seconds"] < stages["hash"]["cpu_seconds"] or warm["hash"]["cpu_seconds"] < 0.01
