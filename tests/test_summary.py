"""clipnb.tasks.summary: the statistics of a run, per class and per ratio type."""
import pytest

import clipnb

from conftest import TEST_IMAGES


CLASSES = ["cat", "dog", "car", "tree", "book"]


def test_summaries(tiny_model):
    results = clipnb.classify(TEST_IMAGES, CLASSES, model=tiny_model, progress=False)
    counts = clipnb.prediction_counts(results)
    assert counts["count"].sum() == len(results) and set(counts["class"]) == set(CLASSES)
    assert counts["percent"].sum() == pytest.approx(100)
    ratios = clipnb.ratio_counts(results)
    assert list(ratios["ratio_type"]) == ["square (1:1)", "standard (4:3)", "widescreen (16:9)", "photo (3:2)", "other"]
    assert dict(zip(ratios["ratio_type"], ratios["count"])) == {
        "square (1:1)": 1, "standard (4:3)": 1, "widescreen (16:9)": 1, "photo (3:2)": 1, "other": 4}
    summary = clipnb.class_summary(results)
    for name, mean_score in zip(summary["class"], summary["mean_score"]):
        assert mean_score == pytest.approx(results[f"score_{name}"].mean(), abs=5e-5)  # rounded to 4 decimals
    assert summary["predicted"].sum() == len(results)
    text = clipnb.summary_text(results)
    assert "8 files, 8 classified, 0 unreadable" in text and "other: 4 (50.0%)" in text
