"""Few-shot linear probes: logistic regression (scikit-learn) on cached CLIP image embeddings, and how its
accuracy grows with the number of labelled examples per class, against zero-shot on the same test images.

A light classifier trained on CLIP's image features ("视觉分类任务"). Splits are pure functions of the
labels and a seed: one test split for every run (so probe and zero-shot are compared on the same images)
and, per trial, nested training sets (the 2-shot set contains the 1-shot set, and so on).
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np
import pandas as pd
import torch

from ..embed.labelled import LabelledImages
from ..models.loading import ClipModel
from ..zeroshot.prompts import DEFAULT_TEMPLATES, Templates
from ..zeroshot.schema import set_settings
from ..zeroshot.scoring import ZeroShotHead, build_head

if TYPE_CHECKING:
    from ..data.cache import EmbeddingCache

DEFAULT_SHOTS = (1, 2, 4, 8, 16)
DEFAULT_C = 10.0  # inverse regularisation strength, for L2-normalised embeddings


class ProbeError(ValueError):
    """Too few labelled images for the asked split: the message says how many are needed."""


@dataclass
class FewShotSplit:
    test: np.ndarray  # indices of the test images (the same for every trial)
    train: list[dict[int, np.ndarray]]  # per trial: shots -> indices of the training images
    shots: list[int]  # the shots every class has enough images for
    skipped_shots: list[int]  # asked for, but some class has too few images


def check_seed(seed) -> int:
    """The seed as an int, or a ProbeError: NumPy's generators take whole numbers of 0 or more."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ProbeError(f"seed must be a whole number of 0 or more (NumPy's random generators take no negative "
                         f"seed), not {seed!r}")
    return int(seed)


def few_shot_split(labels: Sequence[int], shots: Sequence[int] = DEFAULT_SHOTS, *, test_fraction: float = 0.5,
                   trials: int = 5, seed: int = 0, class_names: Sequence[str] | None = None) -> FewShotSplit:
    """Split labelled images into one fixed test set (`test_fraction` of each class, at least one image) and,
    per trial, nested k-shot training sets drawn from the rest. `class_names[label]` names classes in messages."""
    labels = np.asarray(labels)
    shots = sorted({int(s) for s in shots})
    if not shots or shots[0] < 1:
        raise ProbeError(f"shots must be whole numbers of at least 1, not {shots}")
    if not 0 < test_fraction < 1:
        raise ProbeError(f"test_fraction must be between 0 and 1, not {test_fraction}")
    if trials < 1:
        raise ProbeError(f"trials must be at least 1, not {trials}")
    seed = check_seed(seed)
    rng = np.random.default_rng(seed)
    test, pools = [], {}
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        if len(members) < 2:
            name = repr(class_names[label]) if class_names is not None else f"#{label}"
            raise ProbeError(f"class {name} has {len(members)} image; a probe needs at least 2 per class "
                             "(one to train on, one to test)")
        n_test = min(len(members) - 1, max(1, int(round(test_fraction * len(members)))))
        test.extend(members[:n_test])
        pools[label] = members[n_test:]
    smallest = min(len(pool) for pool in pools.values())
    usable = [s for s in shots if s <= smallest]
    if not usable:
        raise ProbeError(f"the smallest class has {smallest} training images, fewer than {shots[0]} shots; "
                         "label more images or lower test_fraction")
    train = []
    for trial in range(trials):
        trial_rng = np.random.default_rng([seed, trial])
        order = {label: trial_rng.permutation(pool) for label, pool in pools.items()}
        train.append({k: np.sort(np.concatenate([o[:k] for o in order.values()])) for k in usable})
    return FewShotSplit(test=np.sort(np.array(test)), train=train, shots=usable,
                        skipped_shots=[s for s in shots if s > smallest])


def fit_probe(features: torch.Tensor | np.ndarray, labels: Sequence, C: float = DEFAULT_C, seed: int = 0):
    """A multinomial logistic regression on image embeddings (the CLIP paper's linear probe)."""
    from sklearn.linear_model import LogisticRegression

    import warnings

    x = _numpy(features)
    probe = LogisticRegression(C=C, max_iter=2000, random_state=seed)
    if len(set(labels)) < 2:
        raise ProbeError("a probe needs images of at least 2 classes")
    with warnings.catch_warnings():
        # one or two shots per class are few samples per class by design, not a regression problem
        warnings.filterwarnings("ignore", message="The number of unique classes is greater than 50%")
        return probe.fit(x, np.asarray(labels))


def _numpy(features) -> np.ndarray:
    if isinstance(features, torch.Tensor):
        features = features.detach().cpu().float().numpy()
    return np.asarray(features, dtype=np.float32)


def few_shot_curve(features: torch.Tensor | np.ndarray, labels: Sequence[int], split: FewShotSplit,
                   zero_shot_predictions: Sequence[int] | np.ndarray | None = None,
                   C: float = DEFAULT_C) -> pd.DataFrame:
    """Accuracy of a probe trained on each k-shot set of each trial, on the split's test images.

    Returns rows (shots, trial, train_images, test_images, probe_accuracy[, zero_shot_accuracy]).
    """
    x, y = _numpy(features), np.asarray(labels)
    test_x, test_y = x[split.test], y[split.test]
    zero = None
    if zero_shot_predictions is not None:
        zero = float(np.mean(np.asarray(zero_shot_predictions)[split.test] == test_y))
    rows = []
    for trial, sets in enumerate(split.train):
        for k in split.shots:
            chosen = sets[k]
            probe = fit_probe(x[chosen], y[chosen], C=C, seed=trial)
            row = {"shots": k, "trial": trial, "train_images": len(chosen), "test_images": len(split.test),
                   "probe_accuracy": float(np.mean(probe.predict(test_x) == test_y))}
            if zero is not None:
                row["zero_shot_accuracy"] = zero
            rows.append(row)
    curve = pd.DataFrame(rows)
    set_settings(curve, skipped_shots=list(split.skipped_shots), class_count=int(len(np.unique(y))),
                 chance=1.0 / len(np.unique(y)))
    return curve


def curve_summary(curve: pd.DataFrame) -> pd.DataFrame:
    """Mean, min and max probe accuracy per number of shots, beside zero-shot."""
    grouped = curve.groupby("shots")
    table = grouped["probe_accuracy"].agg(["mean", "min", "max"]).add_prefix("probe_")
    if "zero_shot_accuracy" in curve:
        table["zero_shot_accuracy"] = grouped["zero_shot_accuracy"].first()
    table["train_images"] = grouped["train_images"].first()
    return table.reset_index()


def probe_labelled(labelled: LabelledImages, model: ClipModel | None = None, head: ZeroShotHead | None = None,
                   templates: Templates = DEFAULT_TEMPLATES, shots: Sequence[int] = DEFAULT_SHOTS, *, trials: int = 5,
                   test_fraction: float = 0.5, seed: int = 0, C: float = DEFAULT_C, cache: EmbeddingCache | None = None) -> pd.DataFrame:
    """The few-shot curve for a labelled folder embedded once, beside zero-shot on the same test split.

    Args:
        labelled: images with their labels and classes (`embed_labelled`); unreadable images are left out.
        model: the model for the zero-shot head (needed unless `head` is given).
        head: a zero-shot head to compare with (default: built from the labelled classes and `templates`).
        templates: the zero-shot head's templates.
        shots: labelled images per class for the probes; counts some class cannot afford are skipped (see
            the setting `skipped_shots`).
        trials: random training sets per shot count.
        test_fraction: share of each class kept for testing.
        seed: the random seed of the split.
        C: inverse regularisation strength of the logistic-regression probe.
        cache: keeps the text embeddings on disk.

    Returns:
        The curve, one row per (shots, trial): train_images, test_images, probe_accuracy, zero_shot_accuracy;
        its settings hold chance, class_count, class_names and skipped_shots. Raises ProbeError for bad
        parameters and for classes too small to split.
    """
    ok = labelled.ok
    features = labelled.embedded.features[torch.from_numpy(ok.copy())]
    names = np.array(labelled.labels, dtype=object)[ok]
    classes = list(labelled.classes)
    y = np.array([classes.index(n) for n in names], dtype=np.int64)
    zero = None
    if head is None and model is not None:
        head = build_head(model, classes, templates, cache=cache)
    if head is not None:
        if list(head.classes) != classes:
            raise ProbeError("the zero-shot head's classes differ from the labelled classes; build it with "
                             f"the classes {', '.join(classes[:5])}{' ...' if len(classes) > 5 else ''}")
        zero = head.scores(features).argmax(dim=1).numpy()
    split = few_shot_split(y, shots, test_fraction=test_fraction, trials=trials, seed=seed, class_names=classes)
    curve = few_shot_curve(features, y, split, zero, C=C)
    set_settings(curve, class_names=list(classes))
    return curve
