"""Summaries of a results table (as returned by `classify`): plain DataFrames for reports and charts."""
from __future__ import annotations

import pandas as pd

from .classify import prob_column, score_column
from .images import OTHER_RATIO, SEED_RATIO_TYPES


def classes_of(results: pd.DataFrame) -> list[str]:
    if "classes" in results.attrs:
        return list(results.attrs["classes"])
    return [c[len("score_"):] for c in results.columns if c.startswith("score_")]


def readable(results: pd.DataFrame) -> pd.DataFrame:
    return results[results["error"].fillna("") == ""]


def class_summary(results: pd.DataFrame) -> pd.DataFrame:
    """Per class: mean score and mean probability over all images, and the predictions it won
    (count, percentage, mean confidence of those predictions)."""
    good = readable(results)
    rows = []
    for name in classes_of(results):
        won = good[good["prediction"] == name]
        rows.append({"class": name,
                     "mean_score": good[score_column(name)].mean(),
                     "mean_probability": good[prob_column(name)].mean(),
                     "predicted": len(won),
                     "predicted_pct": 100 * len(won) / len(good) if len(good) else 0.0,
                     "mean_confidence_when_predicted": won["confidence"].mean()})
    return pd.DataFrame(rows)


def prediction_counts(results: pd.DataFrame) -> pd.DataFrame:
    """How many images each class won, with percentages; classes that won nothing show 0."""
    good = readable(results)
    counts = good["prediction"].value_counts().reindex(classes_of(results), fill_value=0)
    frame = counts.rename_axis("class").reset_index(name="count")
    frame["percent"] = 100 * frame["count"] / max(len(good), 1)
    return frame.sort_values("count", ascending=False, kind="stable").reset_index(drop=True)


def ratio_counts(results: pd.DataFrame) -> pd.DataFrame:
    """The seed's ratio-type statistics: count and percentage of each ratio type (all types listed)."""
    good = readable(results)
    order = list(SEED_RATIO_TYPES.values()) + [OTHER_RATIO]
    counts = good["ratio_type"].value_counts().reindex(order, fill_value=0)
    frame = counts.rename_axis("ratio_type").reset_index(name="count")
    frame["percent"] = 100 * frame["count"] / max(len(good), 1)
    return frame


def run_summary(results: pd.DataFrame) -> dict:
    """Counts for the run as a whole: every file accounted for."""
    errors = results["error"].fillna("") != ""
    good = results[~errors]
    return {"files": len(results), "classified": int((~errors).sum()), "unreadable": int(errors.sum()),
            "mean_confidence": float(good["confidence"].mean()) if len(good) else float("nan"),
            "mean_ratio_value": float(good["ratio_value"].mean()) if len(good) else float("nan")}


def summary_text(results: pd.DataFrame) -> str:
    """The seed's printed statistics summary, as text."""
    run = run_summary(results)
    lines = [f"images: {run['files']} files, {run['classified']} classified, {run['unreadable']} unreadable"]
    for table in (ratio_counts(results), prediction_counts(results)):
        lines.append("ratio types:" if "ratio_type" in table else "predictions:")
        for name, count, percent in table.itertuples(index=False, name=None):
            if count:
                lines.append(f"  - {name}: {count} ({percent:.1f}%)")
    bad = results[results["error"].fillna("") != ""]
    if len(bad):
        lines.append("unreadable files:")
        lines.extend(f"  - {path}: {error}" for path, error in zip(bad["path"], bad["error"]))
    return "\n".join(lines)
