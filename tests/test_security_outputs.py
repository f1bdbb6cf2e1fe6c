"""Outputs only go where asked (issue 23, items 12, 14 and 15): CSV cells a spreadsheet would run as formulas
are neutralised in every CSV clipnb writes; a write never replaces a FIFO, a device or a folder, goes through a
symlink to its target, never overwrites an image or an input; every output is checked before any work.

Every payload (FIFOs, links, hostile names) is made here in tmp_path; nothing touches /dev."""
import os
import re
import stat
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

import clipnb
from clipnb.cli import main
from clipnb.report.export import ExportError, check_output_file, neutralise_formulas, save_figure, write_csv

from conftest import ROOT

FORMULA_NAME = "=cmd|' -C calc'!A0.png"  # the file name: Excel would run it


def read_raw(path: Path) -> pd.DataFrame:
    """A CSV as written (no number parsing of text cells, empty cells kept empty)."""
    return pd.read_csv(path, keep_default_na=False, encoding="utf-8-sig")


def shapes(folder: Path, names: dict[str, str]) -> Path:
    """One demo-world picture per file name: name -> colour (a red, green or blue disc on white)."""
    from PIL import ImageDraw

    folder.mkdir(parents=True, exist_ok=True)
    for name, colour in names.items():
        image = Image.new("RGB", (64, 64), "white")
        ImageDraw.Draw(image).ellipse((12, 12, 52, 52), fill=colour)
        image.save(folder / name, format="PNG")
    return folder


# ---- item 12: formula injection ---------------------------------------------------------------------------

def test_every_text_cell_that_starts_a_formula_is_neutralised_and_numbers_stay_numbers(tmp_path):
    table = pd.DataFrame({"path": [FORMULA_NAME, "+1.png", "-x.png", "@SUM(A1).png", "\tq.png", "\rr.png", "ok.png"],
                          "score": [-0.5, -1.25, 0.0, 1.0, 2.0, 3.0, -7.0],
                          "group": pd.array([-1, 2, None, 4, 5, 6, 7], dtype="Int64"),
                          "=label": pd.Categorical(["=a", "b", "c", "d", "e", "f", "g"])})
    out = read_raw(write_csv(table, tmp_path / "t.csv"))
    assert list(out["path"]) == ["'" + name for name in table["path"][:6]] + ["ok.png"]
    assert list(out.columns) == ["path", "score", "group", "'=label"]  # a header is a cell too
    assert out["score"].tolist() == [-0.5, -1.25, 0.0, 1.0, 2.0, 3.0, -7.0]  # negative numbers are numbers
    assert out["group"].tolist() == ["-1", "2", "", "4", "5", "6", "7"]
    assert out["'=label"][0] == "'=a"
    raw = read_raw(write_csv(table, tmp_path / "raw.csv", raw=True))
    assert raw["path"][0] == FORMULA_NAME and list(raw.columns)[-1] == "=label"
    assert table["path"][0] == FORMULA_NAME  # the caller's table is left as it was


def test_names_that_are_not_utf8_are_neutralised_and_kept(tmp_path):
    name = os.fsdecode(b"=caf\xe9.png")  # another system's bytes, escaped by Python
    table = pd.DataFrame({"path": pd.Series([name, "plain.png"], dtype=object)})
    assert neutralise_formulas(table)["path"][0] == "'" + name
    assert read_raw(write_csv(table, tmp_path / "t.csv"))["path"][0] == "'=caf\\udce9.png"


def test_there_is_one_csv_writer_in_the_package():
    """Every CSV goes through export.write_csv, so no writer can skip the neutralising."""
    writers = [str(path.relative_to(ROOT)) for path in (ROOT / "clipnb").rglob("*.py")
               if re.search(r"\.to_csv\(", path.read_text(encoding="utf-8"))]
    assert writers == ["clipnb/report/export.py"]


def test_classify_duplicates_and_search_csvs_are_neutralised_unless_raw(demo, tmp_path, monkeypatch, capsys):
    folder = shapes(tmp_path / "photos", {FORMULA_NAME: "red", "@copy.png": "red", "plain.png": "blue"})
    monkeypatch.chdir(folder)  # FOLDER "." makes each path cell start with the file name
    common = ["--model", "demo", "--quiet", "--cache-dir", str(tmp_path / "cache")]
    classes = ["--classes", "red circle", "blue circle"]
    assert main(["classify", ".", *classes, "--csv", str(tmp_path / "c.csv"), *common]) == 0
    assert main(["duplicates", ".", "--csv", str(tmp_path / "d.csv"), *common]) == 0
    assert main(["search", ".", "--text", "a red circle", "--csv", str(tmp_path / "s.csv"), *common]) == 0
    for name in ("c.csv", "d.csv", "s.csv"):
        cells = set(read_raw(tmp_path / name)["path"])
        assert {"'" + FORMULA_NAME, "'@copy.png", "plain.png"} <= cells, name
    classified = read_raw(tmp_path / "c.csv")
    assert pd.api.types.is_float_dtype(classified["score_red circle"])  # scores are written as numbers
    assert main(["classify", ".", *classes, "--csv", str(tmp_path / "raw.csv"), "--raw-csv", *common]) == 0
    assert FORMULA_NAME in set(read_raw(tmp_path / "raw.csv")["path"])
    capsys.readouterr()


def test_evaluate_report_csvs_are_neutralised(demo, tmp_path, monkeypatch):
    root = tmp_path / "labelled"
    shapes(root / "=red circle", {"a.png": "red", "b.png": "red"})
    shapes(root / "blue circle", {"c.png": "blue", "d.png": "blue"})
    monkeypatch.chdir(root)
    assert main(["evaluate", ".", "--model", "demo", "--quiet", "--no-cache", "--no-figures",
                 "--out", str(tmp_path / "report")]) == 0
    per_image = read_raw(tmp_path / "report" / "per_image.csv")
    assert per_image["path"].str.startswith("'=red circle").sum() == 2
    assert set(per_image["label"]) == {"'=red circle", "blue circle"}
    confusion = read_raw(tmp_path / "report" / "confusion.csv")
    assert "'=red circle" in confusion.columns  # class names are headers of the confusion table


# ---- item 14: where a write lands ---------------------------------------------------------------------------

TABLE = pd.DataFrame({"path": ["a.png"], "score": [0.5]})


def test_a_fifo_is_refused_and_stays_a_fifo(tmp_path):
    fifo = tmp_path / "out.csv"
    os.mkfifo(fifo)
    with pytest.raises(ExportError, match=r"named pipe \(FIFO\), not a regular file"):
        write_csv(TABLE, fifo)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    link = tmp_path / "link.csv"
    link.symlink_to(fifo)  # a link to a FIFO is refused too, and stays a link
    with pytest.raises(ExportError, match=r"a link to .*out.csv"):
        write_csv(TABLE, link)
    assert link.is_symlink() and stat.S_ISFIFO(os.stat(fifo).st_mode)
    with pytest.raises(ExportError, match="named pipe"):
        save_figure(None, tmp_path / "out.csv")  # every atomic write, not only CSVs


def test_a_folder_is_refused(tmp_path):
    (tmp_path / "out.csv").mkdir()
    with pytest.raises(ExportError, match="is a folder"):
        write_csv(TABLE, tmp_path / "out.csv")
    assert (tmp_path / "out.csv").is_dir()


def test_a_symlink_is_written_through_to_its_target(tmp_path):
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "results.csv"
    target.write_text("old\n")
    link = tmp_path / "results.csv"
    link.symlink_to(target)
    assert write_csv(TABLE, link) == link
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert read_raw(target)["path"].tolist() == ["a.png"]
    assert not [p for p in (tmp_path / "real").iterdir() if p.name.endswith(".part")]
    dangling = tmp_path / "new.csv"
    dangling.symlink_to(tmp_path / "real" / "new.csv")  # a link to nothing yet: its target is made
    write_csv(TABLE, dangling)
    assert dangling.is_symlink() and (tmp_path / "real" / "new.csv").is_file()


def test_an_image_is_never_overwritten_by_a_csv(tmp_path):
    photo = tmp_path / "photo.JPG"
    Image.new("RGB", (4, 4), "red").save(photo, format="JPEG")
    before = photo.read_bytes()
    with pytest.raises(ExportError, match="the name is an image's"):
        write_csv(TABLE, photo)
    link = tmp_path / "results.csv"
    link.symlink_to(photo)
    with pytest.raises(ExportError, match=r"a link to .*photo.JPG"):
        check_output_file(link)
    assert photo.read_bytes() == before


def test_an_input_of_the_run_is_never_overwritten(tmp_path):
    templates = tmp_path / "templates.txt"
    templates.write_text("a photo of a {}\n")
    with pytest.raises(ExportError, match="an input of this run"):
        check_output_file(tmp_path / "." / "templates.txt", inputs=[templates])


@pytest.mark.parametrize("target", ["fifo", "photo.png", "templates.txt", "folder"])
def test_the_command_line_refuses_a_bad_csv_in_one_line_before_any_work(target, tmp_path, capsys, no_model_loading):
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "folder").mkdir()
    shapes(tmp_path / "images", {"a.png": "red"})
    (tmp_path / "templates.txt").write_text("a photo of a {}\n")
    Image.new("RGB", (4, 4)).save(tmp_path / "photo.png")
    code = main(["classify", str(tmp_path / "images"), "--classes", "a", "b",
                 "--templates", str(tmp_path / "templates.txt"), "--csv", str(tmp_path / target), "--no-cache"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("clipnb: error: cannot write"), err
    assert (tmp_path / "templates.txt").read_text() == "a photo of a {}\n"
    assert stat.S_ISFIFO(os.stat(tmp_path / "fifo").st_mode)


# ---- item 15: outputs checked before any work ---------------------------------------------------------------

OUT_COMMANDS, CSV_COMMANDS = ("evaluate", "probe", "video"), ("classify", "search", "duplicates")


@pytest.mark.parametrize("command, where", [(c, w) for c in OUT_COMMANDS for w in ("a file", "under a file", "a fifo")]
                         + [(c, w) for c in CSV_COMMANDS for w in ("a folder", "under a file", "a fifo")])
def test_every_output_is_checked_before_any_work(command, where, tmp_path, capsys, no_model_loading):
    blocker = tmp_path / "taken"
    if where == "a fifo":
        os.mkfifo(blocker)
    elif where == "a folder":
        blocker.mkdir()
    else:
        blocker.write_text("keep me\n")
    output = str(blocker / "report.csv" if where == "under a file" else blocker)
    labelled = tmp_path / "labelled"
    shapes(labelled / "red circle", {"a.png": "red", "b.png": "red"})
    shapes(labelled / "blue circle", {"c.png": "blue", "d.png": "blue"})
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"never opened: the output is refused first")
    argv = {"evaluate": ["evaluate", str(labelled), "--out", output],
            "probe": ["probe", str(labelled), "--out", output],
            "video": ["video", str(video), "--classes", "a", "b", "--out", output],
            "classify": ["classify", str(labelled), "--recursive", "--classes", "a", "b", "--csv", output],
            "search": ["search", str(labelled), "--recursive", "--text", "a circle", "--csv", output],
            "duplicates": ["duplicates", str(labelled), "--recursive", "--csv", output]}[command]
    assert main([*argv, "--model", "demo", "--quiet"] + ([] if command == "video" else ["--no-cache"])) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and captured.err.startswith("clipnb: error: cannot write"), captured.err
    assert captured.out == ""  # nothing was done: no folder note, no model, no frames
    if where in ("a file", "under a file"):
        assert blocker.read_text() == "keep me\n"


def test_a_new_output_folder_is_made_and_an_existing_one_reused(tmp_path):
    from clipnb.report.export import check_output_folder

    assert check_output_folder(tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"
    assert not (tmp_path / "new").exists()  # checked, not made: the writers make it when they write
    assert check_output_folder(tmp_path) == tmp_path
    (tmp_path / "link").symlink_to(tmp_path)
    assert check_output_folder(tmp_path / "link") == tmp_path / "link"
