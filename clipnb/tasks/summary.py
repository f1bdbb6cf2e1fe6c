"""Summaries of a results table (as returned by `classify`): plain DataFrames for reports and charts."""
from __future__ import annotations

import pandas as pd

from ..data.images import OTHER_RATIO, RATIO_TYPES
from ..zeroshot.schema import classes, probabilities, readable, scores
from ..words import UNKNOWN, plural, ratio_type_name, word

PERCENT_DECIMALS = 1  # percentages in summary tables: 2.1, not 2.0833333333333335
MEAN_DECIMALS = 4  # scores, probabilities and confidences in summary tables


def class_summary(results: pd.DataFrame) -> pd.DataFrame:
    """Per class: mean score and mean probability over all images, and the predictions it won
    (count, percentage, mean confidence of those predictions); images reported as "unknown" have a row of
    their own (with no mean score or probability). Means are rounded to 4 decimals and
    percentages to 1, so that the table and its CSV read easily."""
    good = readable(results)
    names = classes(results)
    mean_scores, mean_probabilities = scores(good, names).mean(), probabilities(good, names).mean()
    rows = []
    for name in names:
        won = good[good["prediction"] == name]
        rows.append({"class": name,
                     "mean_score": mean_scores[name],
                     "mean_probability": mean_probabilities[name],
                     "predicted": len(won),
                     "predicted_pct": 100 * len(won) / len(good) if len(good) else 0.0,
                     "mean_confidence_when_predicted": won["confidence"].mean()})
    unknown = good[good["prediction"] == UNKNOWN] if UNKNOWN not in names else good.iloc[:0]
    if len(unknown):  # images reported as fitting no class: a row of their own, with no class scores
        rows.append({"class": UNKNOWN, "mean_score": float("nan"), "mean_probability": float("nan"),
                     "predicted": len(unknown), "predicted_pct": 100 * len(unknown) / len(good),
                     "mean_confidence_when_predicted": unknown["confidence"].mean()})
    decimals = {"mean_score": MEAN_DECIMALS, "mean_probability": MEAN_DECIMALS, "predicted_pct": PERCENT_DECIMALS,
                "mean_confidence_when_predicted": MEAN_DECIMALS}
    frame = pd.DataFrame(rows, columns=["class", "mean_score", "mean_probability", "predicted", "predicted_pct",
                                        "mean_confidence_when_predicted"])
    # rounded so that the CSV reads 2.1 and 0.3127, not 2.0833333333333335; in float64, as a float32
    # rounded to 4 decimals is still written 0.029899999499320984
    return frame.astype({c: float for c in decimals}).round(decimals)


def prediction_counts(results: pd.DataFrame) -> pd.DataFrame:
    """How many images each class won, with percentages (to 1 decimal); classes that won nothing show 0, and
    images reported as "unknown" (`classify(..., unknown=True)`) have a row of their own."""
    good = readable(results)
    names = classes(results)
    names = names + [UNKNOWN] if UNKNOWN not in names and (good["prediction"] == UNKNOWN).any() else names
    counts = good["prediction"].value_counts().reindex(names, fill_value=0)
    frame = counts.rename_axis("class").reset_index(name="count")
    frame["percent"] = (100 * frame["count"] / max(len(good), 1)).round(PERCENT_DECIMALS)
    return frame.sort_values("count", ascending=False, kind="stable").reset_index(drop=True)


def ratio_counts(results: pd.DataFrame) -> pd.DataFrame:
    """Ratio-type statistics: count and percentage (to 1 decimal) of each ratio type (all types listed), and
    how many of them are portrait (a ratio type holds for both orientations: see `images.ratio_type`)."""
    good = readable(results)
    order = list(RATIO_TYPES.values()) + [OTHER_RATIO]
    counts = good["ratio_type"].value_counts().reindex(order, fill_value=0)
    frame = counts.rename_axis("ratio_type").reset_index(name="count")
    frame["percent"] = (100 * frame["count"] / max(len(good), 1)).round(PERCENT_DECIMALS)
    upright = good[good["orientation"] == "portrait"] if "orientation" in good else good.iloc[:0]
    frame["portrait"] = upright["ratio_type"].value_counts().reindex(order, fill_value=0).to_numpy()
    return frame


def run_summary(results: pd.DataFrame) -> dict:
    """Counts for the run as a whole: every file accounted for."""
    errors = results["error"].fillna("") != ""
    good = results[~errors]
    return {"files": len(results), "classified": int((~errors).sum()), "unreadable": int(errors.sum()),
            "mean_confidence": float(good["confidence"].mean()) if len(good) else float("nan"),
            "mean_ratio_value": float(good["ratio_value"].mean()) if len(good) else float("nan")}


def summary_text(results: pd.DataFrame, lang: str = "en") -> str:
    """The statistics summary (统计总结), as text, in `lang` ("en" or "zh": the article's wording).

    Class names and the reasons files could not be read are data and stay as they are."""
    header = word("summary.heading", lang)  # checks `lang` before anything is counted
    run = run_summary(results)
    lines = [header] if header else []
    lines.append(word("summary.images", lang, files=plural(run['files'], 'file'), file_count=run['files'],
                      classified=run['classified'], unreadable=run['unreadable']))
    lines.append(word("summary.ratio_types", lang))
    for name, count, percent, portrait in ratio_counts(results).itertuples(index=False, name=None):
        if count:
            lines.append(word("summary.count_line", lang, name=ratio_type_name(name, lang), count=count, percent=percent)
                         + (word("summary.portrait", lang, count=portrait) if portrait else ""))
    lines.append(word("summary.predictions", lang))
    for name, count, percent in prediction_counts(results).itertuples(index=False, name=None):
        if count:
            lines.append(word("summary.count_line", lang, name=name, count=count, percent=percent))
    if "outlier" in results and results["outlier"].any():
        flagged = results[results["outlier"].astype(bool)]
        lines.append(word("summary.outliers", lang, images=plural(len(flagged), "image"), count=len(flagged)))
        lines.extend(f"  - {path}" for path in flagged["path"])
    bad = results[results["error"].fillna("") != ""]
    if len(bad):
        lines.append(word("summary.unreadable_files", lang))
        lines.extend(f"  - {path}: {error}" for path, error in zip(bad["path"], bad["error"]))
    return "\n".join(lines)
