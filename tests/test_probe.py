"""Few-shot linear probes: the splits, learning on known clusters, the demo model's curve against zero-shot,
and the `probe` command."""
import numpy as np
import pandas as pd
import pytest
import torch

from clipnb import EmbeddingCache
from clipnb.cli import main
from clipnb.demo import shapes_folder
from clipnb.embed.labelled import embed_labelled
from clipnb.tasks.few_shot import ProbeError, curve_summary, few_shot_curve, few_shot_split, probe_labelled
from clipnb.models.demo_vocabulary import CLASSES

from demo_inputs import write_shapes


def test_split_is_nested_disjoint_and_fixed():
    labels = np.repeat(np.arange(4), 10)
    split = few_shot_split(labels, (1, 2, 4, 8, 16), test_fraction=0.3, trials=3, seed=1)
    assert split.shots == [1, 2, 4] and split.skipped_shots == [8, 16]  # 7 training images per class
    assert len(split.test) == 12 and all((labels[split.test] == c).sum() == 3 for c in range(4))
    for sets in split.train:
        for small, large in zip(split.shots, split.shots[1:]):
            assert set(sets[small]) < set(sets[large])
        for k in split.shots:
            assert not set(sets[k]) & set(split.test)
            assert np.bincount(labels[sets[k]]).tolist() == [k] * 4
    assert not np.array_equal(split.train[0][2], split.train[1][2])  # trials differ
    again = few_shot_split(labels, (1, 2, 4), test_fraction=0.3, trials=3, seed=1)
    assert np.array_equal(again.test, split.test) and np.array_equal(again.train[2][4], split.train[2][4])


def test_split_refuses_too_few_images():
    with pytest.raises(ProbeError, match="at least 2 per class"):
        few_shot_split([0, 0, 1], (1,))
    with pytest.raises(ProbeError, match="fewer than 4 shots"):
        few_shot_split(np.repeat([0, 1], 4), (4, 8))


def test_probe_learns_clusters_and_improves_with_shots():
    rng = np.random.default_rng(0)
    classes, per_class, dim = 10, 40, 32
    centres = rng.normal(size=(classes, dim))
    labels = np.repeat(np.arange(classes), per_class)
    features = centres[labels] + rng.normal(scale=2.5, size=(len(labels), dim))
    features /= np.linalg.norm(features, axis=1, keepdims=True)
    split = few_shot_split(labels, (1, 2, 4, 8, 16), test_fraction=0.5, trials=4, seed=0)
    always_zero = np.zeros(len(labels), dtype=int)
    curve = few_shot_curve(torch.from_numpy(features).float(), labels, split, always_zero)
    summary = curve_summary(curve).set_index("shots")
    assert summary.loc[16, "probe_mean"] > 0.6 > 3 * curve.attrs["chance"]
    assert summary.loc[16, "probe_mean"] > summary.loc[4, "probe_mean"] > summary.loc[1, "probe_mean"]
    assert summary["zero_shot_accuracy"].eq(0.1).all()  # "always class 0" on a balanced test split


def test_demo_probe_beats_chance_and_improves_with_shots(demo, tmp_path):
    # labelled by shape alone, in any colour: one red circle does not teach a probe what a blue circle is
    folder = shapes_folder(tmp_path / "set", per_class=24, by="shape", seed=7)
    labelled = embed_labelled(demo, folder, cache=EmbeddingCache(tmp_path / "cache"), progress=False)
    curve = probe_labelled(labelled, demo, shots=(1, 2, 4, 8, 16), trials=5, test_fraction=0.3)
    summary = curve_summary(curve).set_index("shots")["probe_mean"]
    chance = curve.attrs["chance"]
    assert chance == pytest.approx(1 / 6) and curve["test_images"].iloc[0] == 6 * 7
    assert summary[1] > 2 * chance
    assert summary[1] < summary[4] and summary[1] + 0.1 < summary[16]
    # zero-shot ("a photo of a circle") on the very same test images
    zero = curve["zero_shot_accuracy"]
    assert zero.nunique() == 1 and zero.iloc[0] > 3 * chance


def test_probe_command_prints_the_curve_and_writes_it(demo, tmp_path, capsys):
    folder = write_shapes(tmp_path / "set", per_class=4, classes=CLASSES[:5])
    out = tmp_path / "out"
    code = main(["probe", str(folder), "--model", "demo", "--shots", "1", "2", "4", "--trials", "2",
                 "--out", str(out), "--cache-dir", str(tmp_path / "cache"), "--quiet"])
    printed = capsys.readouterr().out
    assert code == 0
    assert "5 classes, 10 test images, 2 trials; chance 0.200" in printed and "skipped shots [4]" in printed
    curve = pd.read_csv(out / "curve.csv")
    assert sorted(curve["shots"].unique()) == [1, 2] and len(curve) == 4
    assert (out / "shots.png").stat().st_size > 0


def test_probe_command_fails_in_one_line(demo, tmp_path, capsys):
    folder = write_shapes(tmp_path / "set", per_class=1, classes=CLASSES[:2])
    assert main(["probe", str(folder), "--model", "demo", "--no-cache", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "at least 2 per class" in err and "\n" not in err
