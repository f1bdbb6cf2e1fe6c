"""python -m clipnb.bench: its agreement checks on a small folder, and its refusals."""
import pytest
import torch

from clipnb import bench
from clipnb.embed import pipeline as embedding


@pytest.mark.slow
def test_benchmark_checks_agree_on_a_small_folder(photo_folder):
    result = bench.run_benchmark(4, photos=str(photo_folder), model_batches=(2,), model_seconds=0.1, draft_n=4,
                                 draft_factors=(embedding.DRAFT_FACTOR,), progress=False)
    checks = result["checks"]
    assert checks["exact_ok"] and checks["warm_ok"] and checks["draft_ok"], checks
    assert result["c_warm"]["cache_hits"] == 4
    report = bench.format_report(result)
    for label in ("(a) seed loop", "(b) clipnb cold", "(c) clipnb warm", "(d) model only", "cold / seed loop"):
        assert label in report
    if embedding.stream_plan()[0] > 1:  # the stricter limit, measured the way clipnb runs the model
        assert "(d') model only in streams" in report and result["ratios"]["cold_over_streams"] > 0
    # where the cold run's time went, beside each stage timed alone: the budget the cold run is held to
    where = result["where"]
    assert where["photos"] == 4 and where["alone_photos"] == 4
    for stage in ("hash", "decode", "preprocess", "encode"):
        assert where["alone_ms"][stage] > 0 and where["cold_ms"][stage] > 0, stage
    assert where["other_ms"] > -1.0  # the stages' CPU time is part of the process's, not counted twice
    assert where["budget_images_per_s"] == pytest.approx(1000 * where["cores"] / sum(where["alone_ms"].values()))
    assert result["ratios"]["cold_over_budget"] > 0
    for label in ("cold / budget", "where the time went in (b)", "cores idle or waiting"):
        assert label in report


def test_benchmark_refuses_a_bad_count(capsys):
    assert bench.main(["--n", "0"]) == 2
    assert "--n must be at least 1" in capsys.readouterr().err
    assert bench.main(["--dask-workers", "0"]) == 2
    assert "--dask-workers must be at least 1" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_benchmark_says_when_cuda_is_missing_before_making_photos(capsys, tmp_path):
    assert bench.main(["--n", "1", "--device", "cuda", "--photos", str(tmp_path / "photos")]) == 2
    assert "CUDA is not available" in capsys.readouterr().err
    assert not (tmp_path / "photos").exists()


@pytest.mark.slow
def test_benchmark_times_open_clip_architectures_with_random_weights(photo_folder):
    # the same side-by-side figures and agreement checks for another family and its own preprocessing
    # (SigLIP squashes images to a square with mean 0.5, where openai-clip crops the centre)
    arch = "ViT-B-16-SigLIP"
    result = bench.run_benchmark(4, photos=str(photo_folder), model_batches=(2,), model_seconds=0.1, draft_n=4,
                                 draft_factors=(embedding.DRAFT_FACTOR,), progress=False,
                                 model=f"open_clip:{arch}", pretrained="random")
    checks = result["checks"]
    assert checks["exact_ok"] and checks["warm_ok"] and checks["draft_ok"], checks
    assert result["model"].startswith("open_clip:local-dir:") and arch in result["model"]
    assert f"open_clip-{arch}-random" in bench.format_report(result).splitlines()[0]


def test_benchmark_makes_random_weights_for_open_clip_only(capsys, photo_folder):
    assert bench.main(["--n", "4", "--photos", str(photo_folder), "--model", "RN50", "--pretrained", "random"]) == 2
    assert "random weights are made for open_clip architectures only" in capsys.readouterr().err


@pytest.mark.cluster
@pytest.mark.slow
def test_benchmark_times_a_local_dask_cluster_beside_the_cold_run(photo_folder):
    result = bench.run_benchmark(4, photos=str(photo_folder), model_batches=(2,), model_seconds=0.1, draft_n=4,
                                 draft_factors=(embedding.DRAFT_FACTOR,), progress=False, dask_workers=2)
    checks = result["checks"]
    assert checks["cluster_ok"] and checks["cluster_rows_equal"], checks  # the same rows, embeddings within 1e-6
    assert result["f_cluster"]["images"] == 4 and result["ratios"]["cluster_over_cold"] > 0
    assert "(f) cold on a local Dask cluster" in bench.format_report(result)


@pytest.mark.slow
def test_the_collection_benchmark_measures_the_threshold_and_times_map_and_duplicates(demo, capsys):
    from clipnb.bench import collection

    assert collection.main(["--model", "demo", "--n", "300"]) == 0
    printed = capsys.readouterr().out
    assert "copy: resized" in printed and "same subject, other photo" in printed
    assert "real photos: lowest copy" in printed and "at the default threshold" in printed
    # 300 vectors with 6 planted copies: the groups are found, and each step is timed in a fresh process
    assert "duplicate groups found: 6" in printed and "map (kNN graph, UMAP)" in printed
    assert "map and near-duplicates of 300 cached embeddings:" in printed
