"""The results table: what its columns and settings mean, and the one place that names them.

`classify` and `results_table` return one row per input image, in input order, with these columns:

- `path`: the file (or "<image N>" for a PIL image given directly).
- `width`, `height`: the image's size in pixels as displayed (after its EXIF orientation).
- `aspect_ratio`, `ratio_value`, `ratio_type`, `nearest_ratio`, `orientation` (ASPECT_COLUMNS): the
  exact reduced ratio (4080x1836 -> "20:9"), width / height, the named type it is within tolerance of
  ("standard (4:3)", or "other"), the nearest named ratio and the orientation (see `images.aspect_info`).
- `prediction`: the class with the highest probability; `confidence`: that probability.
- `error`: why the file could not be read ("" when it was); `note`: anything worth knowing about a
  readable file (for example the frame used from an animated GIF).
- `outlier`: True for an image whose best class score is unusually low for the table, an image that fits
  none of the classes well; `outlier_z`: the robust z-score of its best score that the rule reads (see
  `clipnb.zeroshot.outliers`). With `unknown=True` (`--unknown`) such an image's prediction is "unknown".
- `score_<class>` (one per class, in class order): the cosine similarity, in [-1, 1], between the
  L2-normalised image embedding and the class's text embedding. With "embedding" ensembling the class's
  text embedding is the renormalised mean of its templates' embeddings; with "score" ensembling the score
  is the mean of the per-template cosines.
- `prob_<class>` (one per class, in class order): for CLIP models the softmax over the classes of
  logit scale x score, so a row's probabilities sum to 1. For sigmoid models (SigLIP; the setting
  `probability` is "sigmoid") each class's own sigmoid(logit scale x score + logit bias): the classes do
  not compete, a row's probabilities need not sum to 1, and an image may have no likely class at all.

An unreadable file keeps its row: `error` says why, its scores, probabilities and confidence are NaN and
its prediction is None.

Settings of a table travel in `DataFrame.attrs` and are plain values only (str, list of str, number,
small dict), never a DataFrame: pandas drops or mixes attrs in some operations (`pd.concat` of frames
with different attrs, a CSV round trip), so readers go through the helpers here, which fall back to the
columns. The keys each kind of table carries (TABLE_SETTINGS):

- results table: `classes`, `templates`, `ensemble`, `probability` ("softmax" or "sigmoid", see `prob_`),
  `logit_scale` and `logit_bias` (the numbers the `prob_` columns were computed with from the scores: the
  model's, None for the bias of a softmax model; `calibration` needs them); from `classify` also `model`,
  `stats` (the embedding run's counts) and, for a folder, `folder_note` (which images were taken). A table
  made with `unknown=True` has `unknown` (True: images that fit no class are predicted "unknown"); one
  calibrated by `calibration.apply_temperature` also has `temperature` (its logits were divided by it, and
  `logit_scale` and `logit_bias` are already divided).
- settings comparison (`compare.SettingsComparison.predictions`): `settings` (the column names, "set / ensemble") and
  `classes`.
- search hits: `query`, `model`.
- duplicates (`duplicates.find_duplicates`): `threshold`, `groups`, `grouped` (files in a group), `model`.
- few-shot curve (`probe.few_shot_curve`, `probe.probe_labelled`): `chance`, `skipped_shots`,
  `class_count`, and from `probe_labelled` also `class_names`.
- embedding map (`embedding_map.embedding_map`): `neighbours`, `seed`, `min_dist`, `min_cluster_size`,
  `left_out` (unreadable images not on the map), `map_note`, and with a results table `classes`, `model`.

Video timelines (`video.VideoResult.timeline`) carry the same `prob_<class>` columns with no attrs.
"""
from __future__ import annotations

from typing import Sequence

import pandas as pd

from ..words import WORDS, check_lang, orientation_name, prediction_name, ratio_type_name, word

SCORE_PREFIX = "score_"
PROB_PREFIX = "prob_"
ASPECT_COLUMNS = ["aspect_ratio", "ratio_value", "ratio_type", "nearest_ratio", "orientation"]
BASE_COLUMNS = ["path", "width", "height", *ASPECT_COLUMNS, "prediction", "confidence", "error", "note", "outlier",
                "outlier_z"]

TABLE_SETTINGS = {
    "results": ("classes", "templates", "ensemble", "probability", "logit_scale", "logit_bias", "temperature",
                "unknown", "model", "stats", "folder_note"),
    "comparison": ("settings", "classes"),
    "hits": ("query", "model"),
    "curve": ("chance", "skipped_shots", "class_count", "class_names"),
    "duplicates": ("threshold", "groups", "grouped", "model"),
    "map": ("neighbours", "neighbours_asked", "seed", "min_dist", "min_cluster_size", "left_out", "map_note"),
}
_KNOWN_SETTINGS = frozenset(key for keys in TABLE_SETTINGS.values() for key in keys)


def score_column(name: str) -> str:
    """The column of a class's cosine score: score_column("cat") is "score_cat"."""
    return f"{SCORE_PREFIX}{name}"


def prob_column(name: str) -> str:
    """The column of a class's probability: prob_column("cat") is "prob_cat"."""
    return f"{PROB_PREFIX}{name}"


def score_columns(classes: Sequence[str]) -> list[str]:
    """The score columns of `classes`, in their order."""
    return [score_column(c) for c in classes]


def prob_columns(classes: Sequence[str]) -> list[str]:
    """The probability columns of `classes`, in their order."""
    return [prob_column(c) for c in classes]


def classes(table: pd.DataFrame) -> list[str]:
    """The table's classes in order: its `classes` setting, else the names of its `prob_` columns (a table
    read back from CSV, or a video timeline)."""
    if "classes" in table.attrs:
        return list(table.attrs["classes"])
    return [c[len(PROB_PREFIX):] for c in table.columns if isinstance(c, str) and c.startswith(PROB_PREFIX)]


def scores(table: pd.DataFrame, names: Sequence[str] | None = None) -> pd.DataFrame:
    """The cosine scores as a frame of one column per class (named by the class), rows as in `table`
    (unreadable rows are NaN); `names` picks and orders classes (default: all)."""
    names = list(names) if names is not None else classes(table)
    return table[score_columns(names)].set_axis(names, axis=1)


def probabilities(table: pd.DataFrame, names: Sequence[str] | None = None) -> pd.DataFrame:
    """The class probabilities as a frame of one column per class (named by the class), rows as in `table`
    (unreadable rows are NaN); `names` picks and orders classes (default: all)."""
    names = list(names) if names is not None else classes(table)
    return table[prob_columns(names)].set_axis(names, axis=1)


def readable(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of the files that could be read (an empty `error`)."""
    return table[table["error"].fillna("") == ""]


def setting(table: pd.DataFrame, key: str, default=None):
    """One documented setting of a table (see TABLE_SETTINGS), or `default` when the table lacks it."""
    if key not in _KNOWN_SETTINGS:
        raise KeyError(f"{key!r} is not a documented table setting; see clipnb.zeroshot.schema.TABLE_SETTINGS")
    return table.attrs.get(key, default)


def run_settings(table: pd.DataFrame) -> dict:
    """The model, templates and ensembling a results table was scored with (those it carries)."""
    return {key: table.attrs[key] for key in ("model", "templates", "ensemble") if key in table.attrs}


def set_settings(table: pd.DataFrame, **settings) -> pd.DataFrame:
    """Attach documented settings to a table (in place; returns it). Only plain values: a DataFrame or
    Series is refused, as pandas would not carry it reliably."""
    for key, value in settings.items():
        if key not in _KNOWN_SETTINGS:
            raise KeyError(f"{key!r} is not a documented table setting; see clipnb.zeroshot.schema.TABLE_SETTINGS")
        if isinstance(value, (pd.DataFrame, pd.Series)):
            raise TypeError(f"table setting {key!r} must be a plain value, not a {type(value).__name__}")
    table.attrs.update(settings)
    return table


SIGMOID_NOTE = WORDS["note.sigmoid"]["en"]


def probability_note(table: pd.DataFrame) -> str:
    """What a chart of the table's probabilities must say: "" for a softmax over the classes (the usual
    reading), SIGMOID_NOTE for a sigmoid model's independent per-class probabilities."""
    return SIGMOID_NOTE if setting(table, "probability") == "sigmoid" else ""


def column_name(column: str, lang: str = "en", classes: Sequence[str] | None = None) -> str:
    """A column of a results or summary table as a report in `lang` names it: "score_cat" -> "cat_得分".

    `classes`: the table's classes, so that a class whose name starts with "score_" is still read right
    (default: any column starting with score_ or prob_ is a class's). A column the catalogue does not
    know keeps its name.
    """
    check_lang(lang)
    for prefix, key in ((SCORE_PREFIX, "class_column.score"), (PROB_PREFIX, "class_column.prob")):
        if isinstance(column, str) and column.startswith(prefix):
            name = column[len(prefix):]
            if classes is None or name in classes:
                return word(key, lang, name=name)
    key = f"column.{column}"
    return WORDS[key][lang] if key in WORDS else column


# The article's CSV columns, in its order (clipnb's names): a localised results table starts with them, then
# the class scores (`<class>_得分`), then clipnb's other columns in their own order.
ARTICLE_COLUMNS = ["path", "width", "height", "aspect_ratio", "ratio_type", "prediction", "confidence"]


def localised(table: pd.DataFrame, lang: str = "en") -> pd.DataFrame:
    """A copy of a results table (or a summary table) for a report in `lang`: columns named as the report
    names them and ratio types (and orientations) in its words; a results table's columns in the article's
    order (ARTICLE_COLUMNS, then the class scores, then the rest). "en" returns the table unchanged (the same
    object), so English output is exactly what it was. Write the copy with `export.write_csv`."""
    check_lang(lang)
    if lang == "en":
        return table
    names = classes(table) if any(isinstance(c, str) and c.startswith(("score_", "prob_"))
                                        for c in table.columns) else None
    copy = table.copy()
    if all(column in copy for column in ARTICLE_COLUMNS):
        scores = [f"{SCORE_PREFIX}{name}" for name in names or [] if f"{SCORE_PREFIX}{name}" in copy]
        first = ARTICLE_COLUMNS + scores
        copy = copy[first + [c for c in copy.columns if c not in first]]
    if "ratio_type" in copy:
        copy["ratio_type"] = copy["ratio_type"].map(lambda v: ratio_type_name(v, lang))
    if "orientation" in copy:
        copy["orientation"] = copy["orientation"].map(lambda v: orientation_name(v, lang))
    if "prediction" in copy:  # our word for "no class", not a class name
        copy["prediction"] = copy["prediction"].map(lambda v: prediction_name(v, lang, names or []))
    return copy.rename(columns=lambda c: column_name(c, lang, names))
