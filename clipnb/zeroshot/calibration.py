"""Calibration against labels: is a confidence of 0.8 right 8 times in 10?

CLIP's probabilities come from a softmax of logit scale x cosine, and that scale was learned for training,
not to make confidences honest on your images. Guo et al. (2017), "On Calibration of Modern Neural
Networks", measure this with the expected calibration error (ECE) over equal-width confidence bins and fix
it with temperature scaling: one number T divides every logit, fitted on held-out labelled images by
minimising the negative log-likelihood. Dividing by T > 0 never changes which class wins, only how sure the
model says it is.

`calibrate` does the whole measurement on a results table: a stratified split, T fitted on one part, the
ECE and reliability tables before and after on the other. `apply_temperature` is the one place a temperature
is applied (to a head or to a results table). Pure: nothing here draws or writes
(`calibration_plots.reliability_figure` draws the reliability diagram).
"""
from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np
import pandas as pd

from . import schema
from ..arrays import is_tensor, to_numpy
from .scoring import ZeroShotHead, probabilities_from_scores

BINS = 15  # Guo et al.'s number of confidence bins
TEMPERATURE_RANGE = (0.01, 100.0)  # the search range of fit_temperature
# Fewest labelled images of a class a temperature is fitted on: with one or two a class's images are mostly
# right and far apart, and T follows them to a confidence the model does not have (one image per class of the
# demo's shapes fits T = 0.22: 99.9% confidence against 95.8% accuracy).
MIN_FIT_PER_CLASS = 5


class CalibrationWarning(UserWarning):
    """A fitted temperature that sits at the edge of its search range (the data push it further)."""


def _vector(values, name: str) -> np.ndarray:
    values = np.asarray(to_numpy(values), dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(f"{name} must be one value per row, not an array of shape {values.shape}")
    return values


def _rows(confidence, correct) -> tuple[np.ndarray, np.ndarray]:
    """The rows with a confidence (NaN rows, such as unreadable images, left out), checked."""
    confidence, correct = _vector(confidence, "confidence"), _vector(correct, "correct")
    if len(confidence) != len(correct):
        raise ValueError(f"{len(confidence)} confidences for {len(correct)} correct flags; give one of each per row")
    keep = ~np.isnan(confidence)
    confidence, correct = confidence[keep], correct[keep]
    if ((confidence < 0) | (confidence > 1)).any():
        raise ValueError("confidences must lie in [0, 1] (probabilities); scores are not confidences")
    if np.isnan(correct).any() or not np.isin(correct, (0.0, 1.0)).all():
        raise ValueError("correct must be True/False (or 1/0) for every row with a confidence")
    return confidence, correct


def reliability_table(confidence, correct, bins: int = BINS) -> pd.DataFrame:
    """Confidence against accuracy in `bins` equal-width confidence bins (Guo et al. 2017: bin m holds the
    confidences in ((m-1)/bins, m/bins], the first bin also 0).

    Rows whose confidence is NaN (unreadable images) are left out. Returns one row per bin, empty bins
    included: bin, lower, upper, count, confidence (the bin's mean confidence), accuracy (its share
    correct) and gap (confidence - accuracy: above 0 the model is over-confident there); an empty bin has
    count 0 and NaN means.
    """
    if int(bins) != bins or bins < 1:
        raise ValueError(f"bins must be a whole number of at least 1, not {bins!r}")
    bins = int(bins)
    confidence, correct = _rows(confidence, correct)
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    count = np.bincount(index, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_confidence = np.bincount(index, weights=confidence, minlength=bins) / count
        accuracy = np.bincount(index, weights=correct, minlength=bins) / count
    return pd.DataFrame({"bin": np.arange(bins), "lower": edges[:-1], "upper": edges[1:], "count": count,
                         "confidence": mean_confidence, "accuracy": accuracy, "gap": mean_confidence - accuracy})


def expected_calibration_error(confidence, correct, bins: int = BINS) -> float:
    """Guo et al.'s (2017) expected calibration error: the mean over equal-width confidence bins of
    |accuracy - mean confidence|, each bin weighted by its share of the rows; 0 is perfectly calibrated.
    NaN confidences (unreadable images) are left out; NaN when no row is left."""
    table = reliability_table(confidence, correct, bins)
    total = table["count"].sum()
    if total == 0:
        return math.nan
    filled = table[table["count"] > 0]
    return float((filled["count"] / total * filled["gap"].abs()).sum())


def _scores_and_labels(scores, labels) -> tuple[np.ndarray, np.ndarray]:
    if is_tensor(scores):
        scores = to_numpy(scores)
    if isinstance(scores, pd.DataFrame):
        scores = scores.to_numpy()
    scores = np.asarray(scores, dtype=np.float64)
    labels = _vector(labels, "labels")
    if scores.ndim != 2:
        raise ValueError(f"scores must be [rows, classes], not of shape {scores.shape}")
    if len(scores) != len(labels):
        raise ValueError(f"{len(labels)} labels for {len(scores)} rows of scores; give one label per row")
    keep = ~np.isnan(scores).any(axis=1)
    scores, labels = scores[keep], labels[keep]
    if len(scores) == 0:
        raise ValueError("no rows with scores to fit a temperature on; give labelled, readable images")
    if (labels != np.round(labels)).any() or (labels < 0).any() or (labels >= scores.shape[1]).any():
        raise ValueError(f"labels must be class positions 0..{scores.shape[1] - 1} (the column of each row's "
                         "true class)")
    return scores, labels.astype(np.int64)


def _negative_log_likelihood(logits: np.ndarray, labels: np.ndarray, sigmoid: bool):
    """The mean NLL of labels under logits / T, as a function of log T. Softmax: of the true class among all.
    Sigmoid: each class's own yes/no (true class yes, others no), SigLIP's training loss."""
    from scipy.special import logsumexp

    rows = np.arange(len(labels))
    if sigmoid:
        target = np.zeros_like(logits)
        target[rows, labels] = 1.0
        return lambda log_t: float(np.mean(np.sum(np.logaddexp(0.0, logits / math.exp(log_t))
                                                  - target * logits / math.exp(log_t), axis=1)))
    # -log p(true) = log(1 + sum of exp(other - true)): written so, it stays exact when p(true) is near 1
    others = logits - logits[rows, labels][:, None]
    others[rows, labels] = -np.inf
    return lambda log_t: float(np.mean(np.logaddexp(0.0, logsumexp(others / math.exp(log_t), axis=1))))


def fit_temperature(scores, labels, logit_scale: float, logit_bias: float | None = None,
                    classes: Sequence[str] | None = None) -> float:
    """Guo et al.'s temperature scaling: the T > 0 that minimises the negative log-likelihood of the labels
    under probabilities_from_scores(scores, logit_scale / T, logit_bias / T) on these rows.

    T > 1 lowers the confidences (the model was over-confident), T < 1 raises them. For a sigmoid head
    (SigLIP, `logit_bias` given) T divides the whole logit, bias included, so a probability of 0.5 stays 0.5
    and each class's ranking stays; the likelihood is then that of each class's own sigmoid (the true class
    yes, the others no), the loss such models are trained with.

    Args:
        scores: cosine scores [rows, classes] (tensor, array or a frame such as `schema.scores(table)`);
            rows with a NaN (unreadable images) are left out.
        labels: each row's true class as its column position.
        logit_scale, logit_bias: the model's (`head.logit_scale`, `head.logit_bias`).
        classes: the class names of the columns, for the message when a class has too few rows.

    Returns:
        The temperature, within TEMPERATURE_RANGE; a CalibrationWarning when it sits at an edge (for example
        every row right and far apart: the likelihood keeps rising as T falls). A ValueError when a labelled
        class has fewer than MIN_FIT_PER_CLASS rows: a temperature from so few says little about the model.
    """
    from scipy.optimize import minimize_scalar

    scores, labels = _scores_and_labels(scores, labels)
    if not logit_scale > 0:
        raise ValueError(f"logit_scale must be above 0, not {logit_scale!r}")
    _check_enough_per_class(labels, classes)
    logits = logit_scale * scores + (0.0 if logit_bias is None else logit_bias)
    loss = _negative_log_likelihood(logits, labels, sigmoid=logit_bias is not None)
    # The NLL is convex in 1/T, so it has one minimum on a line of log T: a bounded Brent search
    # (scipy) finds it to tolerance without a learning rate or a step count to tune, as a gradient loop needs.
    low, high = (math.log(t) for t in TEMPERATURE_RANGE)
    found = minimize_scalar(loss, bounds=(low, high), method="bounded", options={"xatol": 1e-6})
    temperature = min(max(math.exp(found.x), TEMPERATURE_RANGE[0]), TEMPERATURE_RANGE[1])  # exp may round out
    if min(loss(low), loss(high)) <= found.fun:
        warnings.warn(f"the fitted temperature {temperature:.3g} is at the edge of the search range "
                      f"{TEMPERATURE_RANGE}: the {len(labels)} rows fitted on push it further (for example all "
                      "right and far apart); fit on more, or harder, labelled images", CalibrationWarning,
                      stacklevel=2)
    return temperature


def _check_enough_per_class(labels: np.ndarray, classes: Sequence[str] | None) -> None:
    counts = np.bincount(labels)
    few = [(position, int(count)) for position, count in enumerate(counts) if 0 < count < MIN_FIT_PER_CLASS]
    if few:
        position, count = few[0]
        name = repr(classes[position]) if classes is not None else f"in column {position}"
        more = f" (and {len(few) - 1} more classes)" if len(few) > 1 else ""
        raise ValueError(f"class {name} has {count} labelled image{'s' if count != 1 else ''} to fit a temperature "
                         f"on{more}: a temperature needs at least {MIN_FIT_PER_CLASS} per class, as one fitted on a "
                         "few images follows them, not the model (calibrate fits on half of each class by default, so label "
                         f"{2 * MIN_FIT_PER_CLASS} or more per class); the confidences are left as the model gives them")


def split_for_calibration(labels: Sequence, fraction: float = 0.5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A seeded split of labelled rows, stratified by class: (rows to fit the temperature on, held-out rows
    to measure it on), each an array of sorted row positions.

    Each class puts round(fraction x its rows) rows into the fitting part, but at least one into each part,
    so that every class is both fitted and measured; a class with fewer than 2 rows is refused.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"fraction is the share of rows to fit on, between 0 and 1 (exclusive), not {fraction!r}")
    labels = list(labels)
    if not labels:
        raise ValueError("no labelled rows to split; calibration needs at least 2 labelled images per class")
    rows: dict = {}
    for position, label in enumerate(labels):
        rows.setdefault(label, []).append(position)
    few = {label: len(found) for label, found in rows.items() if len(found) < 2}
    if few:
        label, count = next(iter(few.items()))
        more = f" (and {len(few) - 1} more classes)" if len(few) > 1 else ""
        raise ValueError(f"class {label!r} has {count} labelled image{more}: calibration needs at least 2 "
                         "labelled images per class (one to fit the temperature on, one to measure it on), "
                         "and more for a trustworthy error; add images or leave the class out")
    rng = np.random.default_rng(seed)
    fit, held_out = [], []
    for label in sorted(rows, key=str):
        found = rng.permutation(rows[label])
        size = min(len(found) - 1, max(1, round(fraction * len(found))))
        fit.extend(found[:size])
        held_out.extend(found[size:])
    return np.sort(np.array(fit, dtype=np.int64)), np.sort(np.array(held_out, dtype=np.int64))


@dataclass
class Calibration:
    """Temperature scaling measured on labelled images: T fitted on one part, the numbers on the other."""

    temperature: float
    ece_before: float  # on the held-out rows, with the model's own logit scale
    ece_after: float  # on the held-out rows, with the logits divided by the temperature
    before: pd.DataFrame  # reliability_table of the held-out rows before
    after: pd.DataFrame  # and after
    accuracy: float  # top-1 on the held-out rows (the same before and after)
    mean_confidence_before: float
    mean_confidence_after: float
    fitted: int  # rows the temperature was fitted on
    held_out: int  # rows it was measured on
    unreadable: int  # rows left out (no scores)
    bins: int
    probability: str  # "softmax" or "sigmoid"

    def headline(self, lang: str = "en") -> str:
        """One line in `lang`: the temperature, what it was fitted and measured on, and the ECE before and after."""
        from ..words import word

        gap = self.mean_confidence_before - self.accuracy
        direction = "calibration.over" if gap > 0.005 else "calibration.under" if gap < -0.005 else "calibration.even"
        return word("calibration.headline", lang, temperature=self.temperature, fitted=self.fitted,
                    held_out=self.held_out, direction=word(direction, lang), accuracy=100 * self.accuracy,
                    before=100 * self.mean_confidence_before, ece_before=100 * self.ece_before,
                    ece_after=100 * self.ece_after, after=100 * self.mean_confidence_after)


def _logits_setting(results: pd.DataFrame, logit_scale: float | None,
                    logit_bias: float | None) -> tuple[float, float | None]:
    """The logit scale (and bias, for sigmoid tables) the table's probabilities were computed with."""
    scale = logit_scale if logit_scale is not None else schema.setting(results, "logit_scale")
    bias = logit_bias if logit_bias is not None else schema.setting(results, "logit_bias")
    sigmoid = schema.setting(results, "probability") == "sigmoid" or logit_bias is not None
    if scale is None or (sigmoid and bias is None):
        missing = "logit scale and bias" if sigmoid else "logit scale"
        given = "logit_scale=model.logit_scale" + (", logit_bias=model.logit_bias" if sigmoid else "")
        raise ValueError(f"the results table does not say its model's {missing} (a table read back from a file, or "
                         f"made by an older clipnb): pass {given}, or classify again")
    return float(scale), None if not sigmoid else float(bias)


def calibrate(results: pd.DataFrame, labels: Sequence[str] | None = None, *, fraction: float = 0.5, seed: int = 0,
              bins: int = BINS, logit_scale: float | None = None, logit_bias: float | None = None) -> Calibration:
    """Temperature scaling on a labelled results table: split the readable rows by class (seeded), fit T on
    one part, measure the ECE and reliability before and after on the other.

    Args:
        results: a results table (`classify`, `results_table`) or an Evaluation's table.
        labels: each row's true class (default: the table's `label` column, as an Evaluation's table has);
            unreadable rows are left out whatever their label.
        fraction: the share of each class's rows the temperature is fitted on (see `split_for_calibration`).
        seed: the split's seed.
        bins: equal-width confidence bins of the ECE and reliability tables.
        logit_scale, logit_bias: the model's, for a table that does not carry them in its settings (a bias
            given here means a sigmoid model).

    Returns:
        A Calibration; apply its temperature with `apply_temperature`.
    """
    if labels is None:
        if "label" not in results:
            raise ValueError("no labels: give one true class per row, or a table with a `label` column "
                             "(an Evaluation's table)")
        labels = results["label"]
    labels = [str(label) for label in labels]
    if len(labels) != len(results):
        raise ValueError(f"{len(labels)} labels for {len(results)} results; give one label per row")
    scale, bias = _logits_setting(results, logit_scale, logit_bias)
    classes = schema.classes(results)
    scores = schema.scores(results, classes).to_numpy(dtype=np.float64)
    readable = ~np.isnan(scores).any(axis=1)
    position = {c: i for i, c in enumerate(classes)}
    unknown = sorted({label for label, ok in zip(labels, readable) if ok and label not in position})
    if unknown:
        raise ValueError(f"label {unknown[0]!r} is not one of the classes; see labels.match_classes")
    rows = np.flatnonzero(readable)
    truth = np.array([position[labels[r]] for r in rows], dtype=np.int64)
    fit, held = split_for_calibration([classes[t] for t in truth], fraction, seed)
    temperature = fit_temperature(scores[rows[fit]], truth[fit], scale, bias, classes)
    held_scores = scores[rows[held]]
    correct = (held_scores.argmax(axis=1) == truth[held]).astype(np.float64)

    def confidence(t: float) -> np.ndarray:
        probs = to_numpy(probabilities_from_scores(held_scores, scale / t, None if bias is None else bias / t))
        return probs.max(axis=1).astype(np.float64)

    before, after = confidence(1.0), confidence(temperature)
    return Calibration(temperature=temperature, ece_before=expected_calibration_error(before, correct, bins),
                       ece_after=expected_calibration_error(after, correct, bins),
                       before=reliability_table(before, correct, bins), after=reliability_table(after, correct, bins),
                       accuracy=float(correct.mean()), mean_confidence_before=float(before.mean()),
                       mean_confidence_after=float(after.mean()), fitted=len(fit), held_out=len(held),
                       unreadable=int((~readable).sum()), bins=int(bins),
                       probability="sigmoid" if bias is not None else "softmax")


def check_temperature(temperature) -> float:
    """The temperature as a float, or a ValueError saying what one is.

    Only TEMPERATURE_RANGE is taken, the range calibrate fits in: far outside it the probabilities stop
    meaning anything in floating point (at 1e-40 the logits overflow and every probability is NaN; at 1e30
    every class gets the same probability, 1/classes), and no calibration ever needs it. Predictions never
    depend on it: `classify.results_table` picks the best score."""
    low, high = TEMPERATURE_RANGE
    if (isinstance(temperature, bool) or not isinstance(temperature, numbers.Real)
            or not low <= temperature <= high):
        raise ValueError(f"temperature must be a number above 0, from {low:g} to {high:g} (the range calibrate "
                         "fits in; 1 leaves the confidences as they are, calibration.calibrate fits one on "
                         f"labelled images), not {temperature!r}")
    return float(temperature)


def apply_temperature(head_or_results: ZeroShotHead | pd.DataFrame, temperature: float) -> ZeroShotHead | pd.DataFrame:
    """The one place a temperature is applied: logits divided by `temperature` (bias included for sigmoid
    models), so the probabilities are the calibrated ones and the winning class never changes.

    A ZeroShotHead comes back as a new head whose logit scale (and bias) are divided by T: everything scored
    with it is calibrated. A results table comes back as a copy with its `prob_` columns and `confidence`
    recomputed from its scores (predictions unchanged), its settings `logit_scale` (and `logit_bias`) divided
    by T and `temperature` multiplied by it (a table calibrated twice says the temperature of both).
    """
    temperature = check_temperature(temperature)
    if isinstance(head_or_results, ZeroShotHead):
        head = head_or_results
        return replace(head, logit_scale=head.logit_scale / temperature,
                       logit_bias=None if head.logit_bias is None else head.logit_bias / temperature)
    if not isinstance(head_or_results, pd.DataFrame):
        raise TypeError(f"apply_temperature takes a ZeroShotHead or a results table, not a "
                        f"{type(head_or_results).__name__}")
    results = head_or_results
    scale, bias = _logits_setting(results, None, None)
    classes = schema.classes(results)
    table = results.copy()
    table.attrs = dict(results.attrs)
    scores = schema.scores(results, classes).to_numpy(dtype=np.float64)
    scale, bias = scale / temperature, None if bias is None else bias / temperature
    probs = to_numpy(probabilities_from_scores(scores, scale, bias)).astype(np.float64)
    table[schema.prob_columns(classes)] = probs
    # the top class's probability, as results_table has it: the same class before and after, whatever the
    # prediction column says (a class name, or a word such as "unknown" put in its place)
    readable = ~np.isnan(probs).any(axis=1)
    table["confidence"] = np.where(readable, np.nan_to_num(probs, nan=-1.0).max(axis=1, initial=-1.0), np.nan)
    schema.set_settings(table, logit_scale=scale, logit_bias=bias,
                        temperature=float(schema.setting(results, "temperature", 1.0)) * temperature)
    return table
