"""VectorIndex: the IVF path's recall, the exact path against numpy, files, edge cases and input errors."""
import numpy as np
import pytest

from clipnb.embed.vector_index import TARGET_RECALL, VectorIndex, cells_for


def clustered(n: int, d: int, stream: int, centres: int = 200) -> np.ndarray:
    """Unit vectors around 200 fixed random centres (like embeddings of a photo collection), float32 [n, d];
    each `stream` draws different vectors from the same distribution."""
    c = np.random.default_rng(0).standard_normal((centres, d))
    rng = np.random.default_rng([1, stream])
    x = c[rng.integers(0, centres, n)] / np.sqrt(d) + 0.7 * rng.standard_normal((n, d)) / np.sqrt(d)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def numpy_top_k(data: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    scores = queries @ data.T
    ids = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, ids, axis=1), ids


@pytest.fixture(scope="module")
def data():
    return clustered(20_000, 64, stream=0)


@pytest.fixture(scope="module")
def queries():
    return clustered(200, 64, stream=1)  # same distribution, not rows of the data


@pytest.fixture(scope="module")
def ivf(data):
    return VectorIndex.build(data, exact_below=0)


def test_ivf_recall_at_10(ivf, data, queries):
    assert ivf.kind == f"IVF{cells_for(len(data))},SQ8"
    assert 1 <= ivf.nprobe < ivf.index.nlist  # tuned, and not a scan of everything
    _, truth = numpy_top_k(data, queries, 10)
    scores, ids = ivf.search(queries, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, truth)])
    assert recall >= TARGET_RECALL
    # the scores are cosines of the rows found (8-bit codes: close, not equal)
    exact = np.einsum("qd,qkd->qk", queries, data[ids])
    assert np.abs(scores - exact).max() < 0.02
    assert (np.diff(scores, axis=1) <= 1e-6).all()  # best first


def test_exact_path_equals_numpy(data, queries):
    index = VectorIndex.build(data[:3000])
    assert index.kind == "exact" and index.nprobe == 0 and len(index) == 3000
    scores, ids = index.search(queries, 7)
    want_scores, want_ids = numpy_top_k(data[:3000], queries, 7)
    np.testing.assert_allclose(scores, want_scores, atol=1e-5)
    # ids agree except where two rows tie to float precision
    same = ids == want_ids
    assert same.mean() > 0.99
    assert np.allclose(scores[~same], want_scores[~same], atol=1e-5)


@pytest.mark.parametrize("exact_below", [10**9, 0])
def test_save_load_round_trip(tmp_path, data, queries, ivf, exact_below):
    index = ivf if exact_below == 0 else VectorIndex.build(data[:2000], exact_below=exact_below)
    path = tmp_path / "photos.faiss"
    index.save(path)
    index.save(path)  # overwriting is fine, and leaves no temporary file behind
    assert [p.name for p in tmp_path.iterdir()] == ["photos.faiss"]
    loaded = VectorIndex.load(path)
    assert (loaded.kind, len(loaded), loaded.nprobe) == (index.kind, len(index), index.nprobe)
    for got, want in zip(loaded.search(queries, 10), index.search(queries, 10)):
        np.testing.assert_array_equal(got, want)


def test_k_larger_than_n_gives_every_row_and_no_minus_one(data):
    small = data[:50]
    for index in (VectorIndex.build(small), VectorIndex.build(data[:2000], exact_below=0)):
        scores, ids = index.search(small[0], k=5000)
        assert ids.shape == scores.shape == (1, len(index))
        assert (ids >= 0).all() and np.isfinite(scores).all()
        assert sorted(ids[0]) == list(range(len(index)))


def test_ivf_with_one_cell_probed_still_fills_k(data):
    index = VectorIndex.build(data[:2000], exact_below=0)
    index.nprobe = 1
    scores, ids = index.search(data[:20], k=500)  # more than one cell holds
    assert (ids >= 0).all() and np.isfinite(scores).all()


def test_one_query_as_a_vector(data, ivf):
    scores, ids = ivf.search(data[123], k=3)
    assert scores.shape == ids.shape == (1, 3)
    assert ids[0, 0] == 123 and scores[0, 0] == pytest.approx(1, abs=0.02)  # a row finds itself first


@pytest.mark.parametrize("bad, message", [
    (np.zeros((0, 64), np.float32), "empty"),
    (np.ones((3, 4, 64), np.float32), "2-D"),
    (np.full(64, 0.125, np.float32), "2-D"),
    (np.array([["a"] * 64]), "real numbers"),
])
def test_bad_build_inputs(bad, message):
    with pytest.raises(ValueError, match=message):
        VectorIndex.build(bad)


def test_nan_rows_and_unnormalised_rows_are_named(data):
    with_nan = data[:100].copy()
    with_nan[7, 3] = np.nan
    with pytest.raises(ValueError, match=r"1 row\(s\) with NaN.*row 7.*drop or re-embed"):
        VectorIndex.build(with_nan)
    with pytest.raises(ValueError, match=r"L2-normalised.*row 0 has norm 3.*np.linalg.norm"):
        VectorIndex.build(data[:100] * 3)


def test_bad_queries(data):
    index = VectorIndex.build(data[:100])
    with pytest.raises(ValueError, match="32 dimensions but the index has 64"):
        index.search(data[:5, :32] / np.linalg.norm(data[:5, :32], axis=1, keepdims=True))
    with pytest.raises(ValueError, match="NaN"):
        index.search(np.full(64, np.nan, np.float32))
    with pytest.raises(ValueError, match="positive whole number"):
        index.search(data[0], k=0)
    with pytest.raises(ValueError, match="no nprobe"):
        index.nprobe = 4


def test_load_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no index file"):
        VectorIndex.load(tmp_path / "nothing.faiss")


def test_tune_nprobe_on_given_queries(data, queries):
    index = VectorIndex.build(data, exact_below=0)
    index.nprobe = 1
    nprobe = index.tune_nprobe(data, queries=queries[:100], recall=0.97)
    assert index.nprobe == nprobe and 1 < nprobe < index.index.nlist
    _, truth = numpy_top_k(data, queries[:100], 10)
    _, ids = index.search(queries[:100], 10)
    assert np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, truth)]) >= 0.97


def test_neighbour_graph_is_every_rows_nearest_others_with_copies_kept():
    from clipnb.embed.vector_index import neighbour_graph

    x = np.random.default_rng(3).normal(size=(300, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    x[7] = x[2]  # an identical copy is a neighbour, its own row is not
    scores, ids = neighbour_graph(x, 4, batch=64)
    full = x @ x.T
    np.fill_diagonal(full, -np.inf)
    expected = np.sort(full, axis=1)[:, ::-1][:, :4]
    assert np.allclose(scores, expected, atol=1e-5)
    assert (ids != np.arange(300)[:, None]).all()
    assert ids[2][0] == 7 and ids[7][0] == 2 and scores[2][0] > 0.9999
    assert neighbour_graph(x[:1], 4)[1].shape == (1, 0)  # one row has no other row
