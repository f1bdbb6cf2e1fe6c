"""A warm command line that never loads the model: load_model(lazy=True) makes a ClipModel from the manifest
stored in the cache, and its weights load only when something needs them (issue 24, fast command line)."""
import shutil
import sqlite3
import zlib
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import pytest

import clipnb.models.families.openai as openai_family
from clipnb.cli import main
from clipnb.models.loading import load_model

from conftest import PHOTOS, distinct_pngs, save_state_dict, tiny_clip

CLASSES = ["cat", "dog", "car"]
# the cached floats themselves come back on a warm run; the CSV's text form rounds nothing below this
SAME_FLOATS = 1e-6


@pytest.fixture()
def setup(tmp_path):
    """(weights file, image folder, cache folder): a tiny openai-format checkpoint of our own, so that tests may
    replace it, and a few photos."""
    weights = save_state_dict(tiny_clip(seed=0), tmp_path / "weights.pt", half=False)
    folder = tmp_path / "photos"
    folder.mkdir()
    for photo in PHOTOS[:3]:
        shutil.copy(photo, folder / photo.name)
    return weights, folder, tmp_path / "cache"


def classify(weights, folder, cache, out):
    """The classify command's table (by file name), run through clipnb.cli.main."""
    code = main(["classify", str(folder), "--classes", *CLASSES, "--model", str(weights), "--csv", str(out),
                 "--cache-dir", str(cache), "--quiet"])
    assert code == 0
    return pd.read_csv(out).set_index("path").sort_index()


@pytest.fixture()
def loads(monkeypatch):
    """How often the openai family's loader ran (each call reads the weights file); `loads.refuse = True`
    makes a load fail the test."""
    real = openai_family.load

    class Counter:
        count = 0
        refuse = False

    def counting(*args, **kwargs):
        if Counter.refuse:
            raise AssertionError("the model's weights were loaded")
        Counter.count += 1
        return real(*args, **kwargs)
    monkeypatch.setattr(openai_family, "load", counting)
    return Counter


def prob_columns(table):
    return [c for c in table.columns if c.startswith(("prob_", "score_"))]


def test_a_warm_classify_gives_the_cold_table_without_reading_the_weights(setup, tmp_path, loads):
    weights, folder, cache = setup
    cold = classify(weights, folder, cache, tmp_path / "cold.csv")
    assert loads.count == 1
    loads.refuse = True
    warm = classify(weights, folder, cache, tmp_path / "warm.csv")
    assert list(warm.index) == list(cold.index) and list(warm["prediction"]) == list(cold["prediction"])
    columns = prob_columns(cold)
    assert len(columns) == 2 * len(CLASSES)
    assert (warm[columns] - cold[columns]).abs().max().max() < SAME_FLOATS


def test_a_run_with_one_new_image_loads_the_model_once(setup, tmp_path, loads):
    weights, folder, cache = setup
    classify(weights, folder, cache, tmp_path / "cold.csv")
    distinct_pngs(folder / "new", 1)
    shutil.move(folder / "new" / "0000.png", folder / "new.png")
    shutil.rmtree(folder / "new")
    loads.count = 0
    table = classify(weights, folder, cache, tmp_path / "warm.csv")
    assert loads.count == 1 and str(folder / "new.png") in table.index and len(table) == 4


def test_a_replaced_weights_file_is_loaded_and_gives_new_scores(setup, tmp_path, loads):
    weights, folder, cache = setup
    before = classify(weights, folder, cache, tmp_path / "before.csv")
    save_state_dict(tiny_clip(seed=1), weights, half=False)  # the same path and size, other weights
    loads.count = 0
    after = classify(weights, folder, cache, tmp_path / "after.csv")
    assert loads.count == 1
    columns = prob_columns(before)
    # other random weights move every probability by far more than float noise
    assert (after[columns] - before[columns]).abs().max().max() > 1e-3
    loads.refuse = True  # and the new file's manifest serves the next run
    again = classify(weights, folder, cache, tmp_path / "again.csv")
    assert (again[columns] - after[columns]).abs().max().max() < SAME_FLOATS


@pytest.mark.parametrize("damage", ["checksum", "shape"])
def test_a_damaged_manifest_row_is_ignored(setup, tmp_path, loads, damage):
    weights, folder, cache = setup
    cold = classify(weights, folder, cache, tmp_path / "cold.csv")
    with sqlite3.connect(cache / "embeddings.sqlite3") as db:
        args, files = db.execute("SELECT args, files FROM manifests").fetchone()
        if damage == "checksum":  # bytes changed on disk: the row's checksum fails
            db.execute("UPDATE manifests SET manifest = ?", ('{"family": "openai"}',))
        else:  # a well-formed row that is not a manifest (another version's): fields missing
            db.execute("UPDATE manifests SET manifest = ?, crc = ?",
                       ("{}", zlib.crc32("|".join((args, files, "{}")).encode())))
    db.close()
    loads.count = 0
    warm = classify(weights, folder, cache, tmp_path / "warm.csv")
    assert loads.count == 1
    columns = prob_columns(cold)
    assert (warm[columns] - cold[columns]).abs().max().max() < SAME_FLOATS


def test_a_lazy_model_loads_once_whichever_threads_touch_it(setup, cache, loads):
    weights, _, _ = setup
    loaded = load_model(weights, device="cpu", cache=cache)
    lazy = load_model(weights, device="cpu", cache=cache, lazy=True)
    assert loads.count == 1 and not lazy.weights_loaded
    assert (lazy.fingerprint, lazy.embed_dim, lazy.context_length, lazy.input_resolution, lazy.logit_scale) == (
        loaded.fingerprint, loaded.embed_dim, loaded.context_length, loaded.input_resolution, loaded.logit_scale)
    with ThreadPoolExecutor(4) as pool:
        tokenizers = list(pool.map(lambda _: lazy.tokenizer, range(8)))
    assert loads.count == 2 and lazy.weights_loaded and all(t is tokenizers[0] for t in tokenizers)
    assert callable(lazy.encode_text) and loads.count == 2


def test_the_demo_models_vocabulary_comes_back_from_its_manifest(cache, monkeypatch):
    from demo_inputs import require_demo

    require_demo()
    loaded = load_model("demo", device="cpu", cache=cache)
    lazy = load_model("demo", device="cpu", cache=cache, lazy=True)
    assert not lazy.weights_loaded
    assert lazy.vocabulary == loaded.vocabulary and type(lazy.vocabulary) is type(loaded.vocabulary)
    assert lazy.vocabulary.knows("红色圆形") and lazy.languages == loaded.languages == ("en", "zh")


def test_without_a_cache_a_lazy_load_is_an_ordinary_one(setup, loads):
    weights, _, _ = setup
    model = load_model(weights, device="cpu", cache=None, lazy=True)
    assert loads.count == 1 and model.weights_loaded
