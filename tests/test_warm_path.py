"""A warm command line without torch (issue 24, "A command line that starts fast"): when every embedding a
classify run needs is in the cache and the lazy model's weights are never loaded, the run imports no torch,
scores with numpy (clipnb.arrays) and gives the table the run that encoded gave."""
import json
import shutil

import numpy as np
import pandas as pd
import pytest

from clipnb.cli import main

from conftest import PHOTOS, run_python, save_state_dict, tiny_clip

CLASSES = ["cat", "dog", "car"]
# the cold run scores with torch, the warm one with numpy: float32 matmul and softmax in the two libraries
# may differ in the last bits (about 1e-7 for values below 1), far below this
SAME_SCORES = 1e-6
TORCH_LIBRARIES = ("torch", "torchvision", "clip", "transformers", "open_clip")


@pytest.fixture()
def cold(tmp_path):
    """(weights, photo folder, cache folder, cold table): a tiny float32 checkpoint and a few photos,
    classified once in this process (which encodes everything and fills the cache)."""
    weights = save_state_dict(tiny_clip(seed=0), tmp_path / "weights.pt", half=False)
    folder = tmp_path / "photos"
    folder.mkdir()
    for photo in PHOTOS[:4]:
        shutil.copy(photo, folder / photo.name)
    cache, out = tmp_path / "cache", tmp_path / "cold.csv"
    assert main(["classify", str(folder), "--classes", *CLASSES, "--model", str(weights), "--csv", str(out),
                 "--cache-dir", str(cache), "--quiet"]) == 0
    return weights, folder, cache, pd.read_csv(out).set_index("path").sort_index()


def classify_in_new_process(weights, folder, cache, out, classes):
    """Run classify in a fresh process; returns (torch libraries it imported, paths under `folder` it
    opened: every open() is seen by an audit hook) and checks it succeeded."""
    code = f"""
import json, sys
opened = []
sys.addaudithook(lambda event, args: opened.append(str(args[0])) if event == "open" and
                 str(args[0]).startswith({str(folder)!r}) else None)
from clipnb.cli import main
code = main(["classify", {str(folder)!r}, "--classes", *{list(classes)!r}, "--model", {str(weights)!r},
             "--csv", {str(out)!r}, "--cache-dir", {str(cache)!r}, "--quiet"])
print(json.dumps({{"code": code, "opened": opened,
                  "imported": sorted(m for m in {TORCH_LIBRARIES!r} if m in sys.modules)}}))
"""
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["code"] == 0, result.stderr
    return report["imported"], report["opened"]


def test_a_warm_classify_imports_no_torch_reads_no_photo_and_gives_the_cold_table(cold, tmp_path):
    weights, folder, cache, cold_table = cold
    imported, opened = classify_in_new_process(weights, folder, cache, tmp_path / "warm.csv", CLASSES)
    assert imported == []
    assert opened == []  # the photos are known by their identity (path, size, times, inode): no byte is read
    warm = pd.read_csv(tmp_path / "warm.csv").set_index("path").sort_index()
    assert list(warm.columns) == list(cold_table.columns)
    numbers = [c for c in cold_table.columns if c.startswith(("score_", "prob_")) or c == "confidence"]
    np.testing.assert_allclose(warm[numbers].to_numpy(float), cold_table[numbers].to_numpy(float), rtol=0,
                               atol=SAME_SCORES)
    others = [c for c in cold_table.columns if c not in numbers]
    pd.testing.assert_frame_equal(warm[others], cold_table[others])


def test_a_warm_run_with_a_new_class_imports_torch_and_encodes_it(cold, tmp_path):
    weights, folder, cache, cold_table = cold
    imported, _ = classify_in_new_process(weights, folder, cache, tmp_path / "new.csv", [*CLASSES, "tree"])
    assert "torch" in imported and "clip" in imported  # the weights loaded to encode "tree"'s prompt
    table = pd.read_csv(tmp_path / "new.csv").set_index("path").sort_index()
    assert table["score_tree"].notna().all() and (table["error"].isna() | (table["error"] == "")).all()
    # the cached classes score as before: the images' embeddings came from the cache, the same floats
    scores = [f"score_{c}" for c in CLASSES]
    np.testing.assert_allclose(table[scores].to_numpy(float), cold_table[scores].to_numpy(float), rtol=0,
                               atol=SAME_SCORES)


def test_scoring_takes_numpy_as_it_takes_tensors():
    """One scoring path for both kinds: the numpy results (as on a warm run) equal torch's within float32's
    last bits, for both ensembling methods, softmax and sigmoid."""
    import torch

    from clipnb.zeroshot import scoring
    from clipnb.zeroshot.scoring import ZeroShotHead

    rng = np.random.default_rng(0)
    text = rng.standard_normal((3, 2, 16)).astype(np.float32)
    text /= np.linalg.norm(text, axis=-1, keepdims=True)
    images = rng.standard_normal((5, 16)).astype(np.float32)
    images /= np.linalg.norm(images, axis=-1, keepdims=True)
    for ensemble in ("embedding", "score"):
        for bias in (None, -10.0):
            head = ZeroShotHead(["a", "b", "c"], ["{}", "a {}"], ensemble, torch.from_numpy(text), 100.0, bias)
            expected = head.probabilities(head.scores(torch.from_numpy(images)))
            with pytest.MonkeyPatch.context() as patch:  # as in a process that never imported torch
                patch.setattr(scoring, "loaded_torch", lambda: None)
                patch.setattr("clipnb.arrays.loaded_torch", lambda: None)
                numpy_head = ZeroShotHead(["a", "b", "c"], ["{}", "a {}"], ensemble, text, 100.0, bias)
                got = numpy_head.probabilities(numpy_head.scores(images))
            assert isinstance(got, np.ndarray)
            np.testing.assert_allclose(got, expected.numpy(), rtol=0, atol=SAME_SCORES)
