"""clipnb.data.labels: labels from class subfolders or a CSV (any column order and header), one rule matching folder
names and labels to classes, and bad labels that say what is wrong."""
import numpy as np
import pytest

from clipnb.tasks.evaluation import evaluate_labelled
from clipnb.data.labels import LabelError, labels_from_csv, labels_from_folders, match_classes
from clipnb.embed.labelled import embed_labelled
from clipnb.models.demo_vocabulary import CLASSES

from demo_inputs import write_shapes


def test_csv_labels_any_order_and_header(demo, shapes_folder, tmp_path):
    rows = [(str(p.relative_to(shapes_folder)), p.parent.name.replace(" ", "_"))
            for p in sorted(shapes_folder.rglob("*.png"))]
    rows = [rows[i] for i in np.random.default_rng(0).permutation(len(rows))]
    csv = tmp_path / "truth.csv"
    csv.write_text("filename;species\n" + "".join(f"{p};{label}\n" for p, label in rows))
    from_csv = evaluate_labelled(embed_labelled(demo, shapes_folder, csv, list(CLASSES), progress=False), demo)
    from_folders = evaluate_labelled(embed_labelled(demo, shapes_folder, None, list(CLASSES), progress=False), demo)
    assert from_csv.metrics["acc@1"] == pytest.approx(from_folders.metrics["acc@1"])
    assert from_csv.confusion.equals(from_folders.confusion)


def test_labels_from_folders_and_csv(tmp_path):
    write_shapes(tmp_path / "set", per_class=1, classes=["red circle", "blue star"])
    table = labels_from_folders(tmp_path / "set")
    assert sorted(table["label"]) == ["blue star", "red circle"]
    (tmp_path / "plain.csv").write_text("red circle/000.png,red circle\nblue star/000.png,blue star\n")
    assert labels_from_csv(tmp_path / "plain.csv", tmp_path / "set")["label"].tolist() == ["red circle", "blue star"]
    assert match_classes(["red_circle", "Blue Star"], ["red circle", "blue star"])[1] == ["red circle", "blue star"]
    assert match_classes(["b", "a_b", "b"])[0] == ["a b", "b"]


@pytest.mark.parametrize("text, message", [
    ("path,label\nred circle/000.png,red circle\nred circle/000.png,blue star\n", "two different labels"),
    ("path,label\nnope.png,red circle\n", "none of the 1 files"),
    ("path,label\nred circle/000.png,\n", "empty label"),
    ("", "is empty"),
])
def test_bad_csv_labels_say_what_is_wrong(tmp_path, text, message):
    write_shapes(tmp_path / "set", per_class=1, classes=["red circle"])
    (tmp_path / "labels.csv").write_text(text)
    with pytest.raises(LabelError, match=message):
        labels_from_csv(tmp_path / "labels.csv", tmp_path / "set")


def test_bad_folders_and_unknown_labels(tmp_path):
    write_shapes(tmp_path / "set", per_class=1, classes=["red circle"])
    (tmp_path / "set" / "loose.png").write_bytes((tmp_path / "set" / "red circle" / "000.png").read_bytes())
    with pytest.raises(LabelError, match="not in a class subfolder"):
        labels_from_folders(tmp_path / "set")
    with pytest.raises(LabelError, match="'green cross' .* is not one of the classes"):
        match_classes(["green cross"], ["red circle"])


def test_folder_names_and_csv_labels_match_classes_by_one_rule():
    from clipnb.data.labels import folder_labels, match_class

    classes = ["red circle", "Blue star"]
    assert match_class("Red_Circle", classes) == "red circle" and match_class("blue star", classes) == "Blue star"
    assert match_class("green", classes) is None
    paths = ["/x/red_circle/1.png", "/x/blue star/2.png", "/x/other/3.png", "/x/RED CIRCLE/4.png"]
    assert folder_labels(paths, classes) == ["red circle", "Blue star", None, "red circle"]
