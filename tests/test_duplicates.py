"""Exact and near duplicates: planted copies are found, different photos of one subject are not grouped."""
import shutil

import numpy as np
import pandas as pd
import pytest

from clipnb.cli import main
from clipnb.demo.data import plant_copies
from clipnb.report.writers import write_duplicates
from clipnb.tasks.duplicates import DEFAULT_THRESHOLD, duplicate_groups, find_duplicates

from conftest import TEST_IMAGES


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """The repository's real photos, with planted copies: car and dog resized and recompressed, cat copied
    byte for byte, and a file that is not an image beside a byte copy of it."""
    folder = tmp_path_factory.mktemp("planted") / "photos"
    folder.mkdir()
    for photo in sorted(TEST_IMAGES.glob("*.*")):
        shutil.copy(photo, folder)
    shutil.copy(TEST_IMAGES / "cat.jpg", folder / "cat (copy).jpg")
    plant_copies([TEST_IMAGES / "car.jpg", TEST_IMAGES / "dog.png"], folder, edits=("resized", "recompressed"))
    (folder / "notes.jpg").write_text("not a photo")
    (folder / "notes again.jpg").write_text("not a photo")
    return folder


@pytest.fixture(scope="module")
def found(planted, demo):
    return find_duplicates(planted, demo, progress=False)


def groups_of(table):
    grouped = table[table["group"].notna()]
    return sorted(sorted(p.rsplit("/", 1)[-1] for p in members) for _, members in grouped.groupby("group")["path"])


def test_planted_copies_are_grouped_and_different_photos_are_not(found):
    assert groups_of(found) == [
        ["car-recompressed.jpg", "car-resized.jpg", "car.jpg"],
        ["cat (copy).jpg", "cat.jpg"],
        ["dog-recompressed.jpg", "dog-resized.jpg", "dog.png"],
        ["notes again.jpg", "notes.jpg"],
    ]
    # two photos of a cat (and of a dog) are alike, but not copies
    alone = found[found["group"].isna()].set_index(found[found["group"].isna()]["path"].str.rsplit("/", n=1).str[-1])
    assert {"cat2.jpg", "dog2.jpg", "book.jpg", "tree.jpg", "grace_hopper.jpg"} <= set(alone.index)
    assert alone.at["cat2.jpg", "similarity"] < DEFAULT_THRESHOLD


def test_exact_copies_say_so_and_unreadable_files_only_group_by_bytes(found):
    by_name = found.set_index(found["path"].str.rsplit("/", n=1).str[-1])
    # an exact copy's similarity is its bytes' 1.0 or its cosine with its twin, which can pass 1 in the last bit
    assert by_name.at["cat (copy).jpg", "exact"]
    assert by_name.at["cat (copy).jpg", "similarity"] == pytest.approx(1.0, abs=1e-6)
    assert not by_name.at["car-resized.jpg", "exact"]
    assert by_name.at["notes.jpg", "error"] and by_name.at["notes.jpg", "exact"]
    assert by_name.at["notes.jpg", "similarity"] == 1.0  # same bytes, unreadable: the byte edge's 1.0 alone
    vectors = np.array([[1, 0], [np.nan, np.nan], [0, 1]], dtype=np.float32)
    group, similarity, partner, _ = duplicate_groups(vectors, ["a", "b", "c"], 0.96)
    assert list(group) == [0, 0, 0] and np.isnan(similarity[1]) and partner[1] == -1
    # groups are numbered largest first; every file has one row
    assert list(found["group"].dropna().drop_duplicates()) == [1, 2, 3, 4]
    assert found.attrs["groups"] == 4 and found.attrs["grouped"] == 10


def test_the_csv_has_path_group_similarity_with_empty_groups(found, tmp_path):
    written = pd.read_csv(write_duplicates(found, tmp_path / "dups.csv"), keep_default_na=False)
    assert list(written.columns) == ["path", "group", "similarity"]
    assert len(written) == len(found)
    assert (written["group"] == "").sum() == found["group"].isna().sum()


def test_a_threshold_of_one_keeps_only_byte_copies(planted, demo):
    table = find_duplicates(planted, demo, threshold=1.0, progress=False)
    assert groups_of(table) == [["cat (copy).jpg", "cat.jpg"], ["notes again.jpg", "notes.jpg"]]


def test_groups_larger_than_the_neighbours_searched_are_found_whole():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(40, 32)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    copies = base[[0] * 12] + 0.01 * rng.normal(size=(12, 32)).astype(np.float32)
    vectors = np.vstack([base, copies / np.linalg.norm(copies, axis=1, keepdims=True)])
    group, similarity, partner, exact = duplicate_groups(vectors, [None] * len(vectors), 0.95, neighbours=3)
    members = np.flatnonzero(group == 1)
    assert list(members) == [0, *range(40, 52)] and group.max() == 1
    assert (similarity[members] >= 0.95).all() and (partner[members] >= 0).all() and not exact.any()


def test_a_chain_of_close_pairs_is_one_group():
    angles = np.radians([0, 15, 30, 90])  # neighbours 15 degrees apart: cos 0.966; the ends cos 0.866
    vectors = np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32)
    group, *_ = duplicate_groups(vectors, [None] * 4, 0.96)
    assert list(group) == [1, 1, 1, 0]


def test_bad_thresholds_are_refused_with_what_to_give(planted, demo):
    with pytest.raises(ValueError, match="between -1 and 1"):
        find_duplicates(planted, demo, threshold=96)


def test_the_command_prints_groups_and_writes_the_csv(planted, tmp_path, capsys):
    out = tmp_path / "dups.csv"
    assert main(["duplicates", str(planted), "--model", "demo", "--csv", str(out), "--quiet",
                 "--cache-dir", str(tmp_path / "cache")]) == 0
    printed = capsys.readouterr()
    assert "4 groups of duplicates: 10 files of 15" in printed.out and "same bytes" in printed.out
    assert "could not be read" in printed.err and f"wrote {out}" in printed.out
    # the second run reads embeddings and hashes from the cache and says the same
    assert main(["duplicates", str(planted), "--model", "demo", "--quiet", "--cache-dir", str(tmp_path / "cache")]) == 0
    assert "4 groups of duplicates" in capsys.readouterr().out


@pytest.mark.parametrize("threshold, said", [("1.5", "between -1 and 1"), ("high", "not a number")])
def test_the_command_refuses_a_bad_threshold(planted, threshold, said, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["duplicates", str(planted), "--threshold", threshold])
    assert exit_.value.code == 2 and said in capsys.readouterr().err


def test_the_command_names_a_missing_folder(tmp_path, capsys):
    assert main(["duplicates", str(tmp_path / "nowhere"), "--model", "demo"]) == 2
    assert "nowhere" in capsys.readouterr().err


def test_the_figure_shows_a_row_per_group_and_says_when_there_is_none(found):
    from clipnb.report.plots.duplicates import duplicates_figure

    figure = duplicates_figure(found, groups=2, per_group=2)
    titles = [sub._suptitle.get_text() for sub in figure.subfigs]
    assert titles == ["group 1: 3 files (1 more not shown)", "group 2: 3 files (1 more not shown)"]
    captions = [ax.get_title() for sub in figure.subfigs for ax in sub.axes if ax.get_title()]
    assert len(captions) == 4 and all(c.split()[-1].startswith("0.9") for c in captions)
    none = duplicates_figure(found[found["group"].isna()])
    assert "no duplicates among" in none.texts[0].get_text()
