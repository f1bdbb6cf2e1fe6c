"""Images that fit none of the classes: a best class score unusually low for the folder.

Softmax forces every image into some class, often with a high confidence: a photo of a car among classes of
animals still gets one of them. The cosine score does not compete: an image unlike every class has a low best
score whatever the others are. The rule, on a results table:

- each readable image's best score is its highest `score_<class>` (the cosine with its class's text);
- its robust z-score is 0.6745 x (best - median) / MAD, the median and the median absolute deviation taken
  over the table's readable images (the "modified z-score" of Iglewicz and Hoaglin, 1993: the median and the
  MAD are not moved by the outliers themselves, as a mean and a standard deviation would be);
- an image is an outlier when its z-score is below -`OUTLIER_CUT` (3.5, their recommended cut).

So "unusually low" is relative to the folder: in a folder of cat photos scored against cat breeds the
typical best score is high, and a photo of a car stands out; a folder with no typical score (fewer than
`MIN_IMAGES` readable images, or all best scores equal) flags nothing. With `unknown=True` an outlier's
prediction becomes "unknown" instead of a forced class; its confidence and probabilities stay, so a report
still shows what the forced answer would have been.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..words import UNKNOWN  # re-exported: clipnb.zeroshot.outliers.UNKNOWN
from .schema import scores as score_table

OUTLIER_CUT = 3.5
MIN_IMAGES = 8  # below this a median and a MAD say too little about what is typical
ROBUST = 0.6745  # the normal distribution's MAD in standard deviations: z-scores on the usual scale


def robust_z(best: np.ndarray) -> np.ndarray:
    """The modified z-score of each best class score against the others (NaN stays NaN; every row NaN when
    the folder has no typical score: see the module docstring)."""
    best = np.asarray(best, dtype=float)
    readable = np.isfinite(best)
    z = np.full(len(best), np.nan)
    if readable.sum() < MIN_IMAGES:
        return z
    median = np.median(best[readable])
    mad = np.median(np.abs(best[readable] - median))
    if mad > 0:
        z[readable] = ROBUST * (best[readable] - median) / mad
    return z


def is_outlier(z: np.ndarray, cut: float = OUTLIER_CUT) -> np.ndarray:
    """True where a z-score is below -cut (never for NaN)."""
    if not cut > 0:
        raise ValueError(f"the outlier cut is a positive number of robust standard deviations (default "
                         f"{OUTLIER_CUT}), not {cut!r}")
    return np.nan_to_num(np.asarray(z, dtype=float), nan=0.0) < -cut


def mark_outliers(results: pd.DataFrame, *, unknown: bool = False, cut: float = OUTLIER_CUT) -> pd.DataFrame:
    """The results table with `outlier` (True for an image whose best score is unusually low for the folder)
    and `outlier_z` (the z-score the rule reads) set; with `unknown`, outliers are predicted as "unknown".

    Pure: returns a copy, settings kept. Call it on the whole folder's table (the rule is relative to it):
    `results_table` does, and `classify` again on a cluster's table, whose shards were each marked alone.
    The two columns go after `note` (see `clipnb.zeroshot.schema`), or stay where they are.
    """
    from .schema import classes, set_settings

    check_unknown(classes(results), unknown)
    table = results.copy()
    table.attrs = dict(results.attrs)
    z = robust_z(score_table(table).max(axis=1, skipna=True).to_numpy(dtype=float))
    if "outlier" not in table:
        at = table.columns.get_loc("note") + 1 if "note" in table else len(table.columns)
        table.insert(at, "outlier", False)
        table.insert(at + 1, "outlier_z", np.nan)
    table["outlier"] = is_outlier(z, cut)
    table["outlier_z"] = z
    if unknown:
        table["prediction"] = table["prediction"].astype(object).where(~table["outlier"], UNKNOWN)
        set_settings(table, unknown=True)
    return table


def check_unknown(classes, unknown: bool) -> None:
    """Refuse `unknown` beside a class named as a report names an image that fits no class, in any of its
    languages ("unknown", 未知) and in any letter case (class names are compared so everywhere: "Unknown" and
    "unknown" could not be told apart in a report, nor a class 未知 in a Chinese one)."""
    from ..data.classes import PromptError, class_key
    from ..words import LANGUAGES, word

    names = {class_key(word("prediction.unknown", lang)) for lang in LANGUAGES}
    clash = [c for c in classes if class_key(str(c)) in names] if unknown else []
    if clash:
        raise PromptError.worded("outliers.unknown_class", name=clash[0], unknown=UNKNOWN,
                                 unknown_zh=word("prediction.unknown", "zh"))


def outlier_note(results: pd.DataFrame, lang: str = "en") -> str:
    """One sentence in `lang` on the outliers of a marked table, "" when there are none."""
    from ..words import plural, word

    if "outlier" not in results or not results["outlier"].any():
        return ""
    count = int(results["outlier"].sum())
    as_unknown = (results.loc[results["outlier"], "prediction"] == UNKNOWN).all()
    return word("outliers.note", lang, images=plural(count, "image"), count=count,
                verb="fits" if count == 1 else "fit",
                reported=word("outliers.reported", lang) if as_unknown else "")
