"""Search: the top-k core, text -> images and image -> images on the demo model, captions for an image, and
the `search` command."""
from pathlib import Path

import numpy as np
import pytest
import torch

from clipnb import EmbeddingCache
from clipnb.cli import main
from clipnb.zeroshot.prompts import PromptError
from clipnb.tasks.search import index_images, rank_captions, search_image, search_text, top_k

from demo_inputs import write_shapes

CLASSES = ["red circle", "blue star", "green square", "yellow triangle", "black cross", "white hexagon"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return write_shapes(tmp_path_factory.mktemp("search") / "set", per_class=3, classes=CLASSES)


@pytest.fixture(scope="module")
def index(demo, folder, tmp_path_factory):
    return index_images(demo, folder, recursive=True, cache=EmbeddingCache(tmp_path_factory.mktemp("cache")),
                        progress=False)


def test_top_k_orders_by_cosine_and_keeps_ties_in_order():
    features = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8], [1.0, 0.0]])
    scores, order = top_k(torch.tensor([1.0, 0.0]), features, 3)
    assert order.tolist() == [0, 3, 2] and np.allclose(scores, [1.0, 1.0, 0.6])
    with pytest.raises(ValueError):
        top_k(torch.tensor([1.0, 0.0]), features, 0)


@pytest.mark.parametrize("label", ["red circle", "blue star", "yellow triangle"])
def test_a_text_finds_its_shapes_first(demo, index, label):
    hits = search_text(index, demo, f"a {label}", top=3)
    assert [Path(p).parent.name for p in hits["path"]] == [label] * 3
    assert hits["score"].is_monotonic_decreasing and hits["rank"].tolist() == [1, 2, 3]


def test_similar_images_share_the_query_class_and_leave_out_the_query(demo, index, folder):
    query = folder / "blue star" / "000.png"
    hits = search_image(index, demo, query, top=2)
    assert str(query) not in set(hits["path"])
    assert [Path(p).parent.name for p in hits["path"]] == ["blue star", "blue star"]
    with_self = search_image(index, demo, query, top=1, include_self=True)
    assert with_self["path"][0] == str(query) and with_self["score"][0] == pytest.approx(1.0, abs=1e-5)


def test_captions_ranked_for_an_image(demo, folder):
    captions = [f"a photo of a {c}" for c in CLASSES]
    ranked = rank_captions(demo, folder / "green square" / "001.png", captions)
    assert ranked["caption"][0] == "a photo of a green square"
    assert ranked["probability"].sum() == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(PromptError):
        rank_captions(demo, folder / "green square" / "001.png", ["fine", "  "])


def test_index_skips_unreadable_files(demo, tmp_path):
    folder = write_shapes(tmp_path / "set", per_class=1, classes=["red circle"])
    (folder / "red circle" / "bad.jpg").write_bytes(b"nope")
    index = index_images(demo, folder, recursive=True, progress=False)
    assert len(index) == 1 and len(index.skipped) == 1 and "bad.jpg" in index.skipped["path"][0]


def test_search_command_prints_ranked_paths_and_reuses_the_cache(demo, folder, tmp_path, capsys):
    args = ["search", str(folder), "--recursive", "--text", "a black cross", "--top", "4", "--model", "demo",
            "--cache-dir", str(tmp_path / "cache"), "--quiet"]
    assert main(args) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 4
    scores = [float(line.split("  ", 1)[0]) for line in lines]
    assert scores == sorted(scores, reverse=True)
    assert all(Path(line.split("  ", 1)[1]).parent.name == "black cross" for line in lines[:3])
    assert EmbeddingCache(tmp_path / "cache").info()["images"] == 3 * len(CLASSES)
    assert main(args[:3] + ["--image", str(folder / "red circle" / "000.png")] + args[5:]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert Path(first.split("  ", 1)[1]).parent.name == "red circle"


@pytest.mark.parametrize("query, message", [(["--text", " "], "search text is blank"),
                                            (["--image", "missing.png"], "does not exist")])
def test_search_command_fails_in_one_line(folder, capsys, query, message):
    assert main(["search", str(folder), "--recursive", *query, "--model", "demo"]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_a_large_index_answers_through_faiss_with_exact_scores():
    """Above EXACT_BELOW images the candidates come from the approximate index; their scores are the exact
    cosines, and nearly every query finds the same top 10 as exact search."""
    from clipnb.tasks.search import ImageIndex, top_k
    from clipnb.embed.vector_index import EXACT_BELOW

    generator = torch.Generator().manual_seed(0)
    centres = torch.randn(200, 32, generator=generator)
    rows = centres[torch.randint(0, 200, (EXACT_BELOW + 5000,), generator=generator)]
    features = torch.nn.functional.normalize(rows + 0.3 * torch.randn(rows.shape, generator=generator), dim=1)
    index = ImageIndex(paths=[f"{i}.jpg" for i in range(len(features))], features=features, model_fingerprint="x")
    queries = torch.nn.functional.normalize(centres[:50] + 0.3 * torch.randn(50, 32, generator=generator), dim=1)
    found = 0
    for query in queries:
        scores, order = index.nearest(query, 10)
        exact_scores, exact_order = top_k(query, features, 10)
        np.testing.assert_allclose(scores, (features[torch.from_numpy(order)] @ query).numpy(), atol=1e-6)
        assert list(scores) == sorted(scores, reverse=True)
        found += len(set(order) & set(exact_order))
    assert index._vectors is not None and index._vectors.kind != "exact"
    assert found / (10 * len(queries)) >= 0.95
