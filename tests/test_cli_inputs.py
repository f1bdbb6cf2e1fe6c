"""The command line on hostile inputs: the same rows and counts as Python on a hostile folder, names that are not
UTF-8, and bad parameters that fail fast in one line (exit 2) before any model is loaded or image read."""
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

import clipnb
from clipnb.cli import main as cli_main

from conftest import ROOT
from hostile_images import by_name

CLASSES = ["cat", "dog"]
SUBPROCESS_TIMEOUT = 120


def test_the_command_line_writes_the_same_rows_and_counts(hostile, hostile_results, tiny_checkpoint, tmp_path):
    root, expect = hostile
    out = tmp_path / "résultats 结果.csv"
    proc = subprocess.run(
        [sys.executable, "-m", "clipnb", "classify", str(root), "--recursive", "--classes", *CLASSES,
         "--model", str(tiny_checkpoint), "--csv", str(out), "--cache-dir", str(tmp_path / "cache"), "--quiet"],
        capture_output=True, cwd=ROOT, timeout=SUBPROCESS_TIMEOUT,
        env=dict(os.environ, PYTHONIOENCODING="utf-8"))  # strict UTF-8 console: names must not crash it
    stdout = proc.stdout.decode("utf-8")
    assert proc.returncode == 0, proc.stderr.decode("utf-8", "replace")
    unreadable = sum(1 for word in expect.values() if word)
    assert f"{len(expect)} files, {len(expect) - unreadable} classified, {unreadable} unreadable" in stdout
    table = pd.read_csv(out, keep_default_na=False, encoding="utf-8")
    from_cli = by_name(table, root)
    from_api = by_name(hostile_results, root)
    assert sorted(from_cli.index) == sorted(from_api.index)
    assert (from_cli.loc[from_api.index, "error"] == from_api["error"]).all()
    assert (from_cli.loc[from_api.index, "width"] == from_api["width"]).all()


def test_names_that_are_not_utf8_survive_the_csv_and_the_console(tiny_model, tiny_checkpoint, tmp_path):
    folder = tmp_path / "latin1"
    folder.mkdir()
    Image.new("RGB", (12, 8), "red").save(os.fsdecode(os.fsencode(folder) + b"/caf\xe9.jpg"), format="JPEG")
    Path(os.fsdecode(os.fsencode(folder) + b"/d\xe9j\xe0 vu.png")).write_bytes(b"not a picture")
    results = clipnb.classify(folder, CLASSES, model=tiny_model, progress=False, num_workers=0,
                              cache=clipnb.EmbeddingCache(tmp_path / "cache"))
    assert list(results["error"] == "") == [True, False]
    out = clipnb.write_csv(results, tmp_path / "out.csv")
    back = pd.read_csv(out, encoding="utf-8", keep_default_na=False)  # valid UTF-8
    assert back["path"].str.endswith("caf\\udce9.jpg").any()
    proc = subprocess.run(
        [sys.executable, "-m", "clipnb", "classify", str(folder), "--classes", *CLASSES, "--model",
         str(tiny_checkpoint), "--csv", str(tmp_path / "cli.csv"), "--no-cache", "--quiet"],
        capture_output=True, cwd=ROOT, timeout=SUBPROCESS_TIMEOUT, env=dict(os.environ, PYTHONIOENCODING="utf-8"))
    assert proc.returncode == 0, proc.stderr.decode("utf-8", "replace")
    assert b"1 unreadable" in proc.stdout and (tmp_path / "cli.csv").read_bytes().decode("utf-8")


@pytest.mark.parametrize("args, message", [
    (["--classes", "", "dog"], "class #1 is blank"),
    (["--classes", "cat", "  "], "class #2 is blank"),
    (["--classes", "Cat", "dog", "cat"], "'cat' is given twice"),
    (["--classes", "cat", "--templates", "a photo of a"], "has no '{}' where the class name goes"),
    (["--classes", "cat", "--templates", "imagenet81"], "unknown template set 'imagenet81'"),
    (["--classes", "cat", "--templates", "{template file}"], "has no '{}'"),
    (["--classes", "cat", "--templates", "{empty template file}"], "holds no templates"),
    (["--classes", "cat", "--folder", "{missing}"], "does not exist"),
    (["--classes", "cat", "--folder", "{no images}"], "no images in"),
])
def test_bad_parameters_fail_fast_with_one_line(no_model_loading, tmp_path, capsys, args, message):
    template_file = tmp_path / "templates.txt"
    template_file.write_text("a photo of a {}\na photo without a slot\n")
    (tmp_path / "empty.txt").write_text("# only a comment\n")
    (tmp_path / "texts").mkdir()
    (tmp_path / "texts" / "notes.txt").write_text("x")
    (tmp_path / "pictures").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "pictures" / "ok.png")
    fill = {"{template file}": str(template_file), "{empty template file}": str(tmp_path / "empty.txt"),
            "{missing}": str(tmp_path / "missing"), "{no images}": str(tmp_path / "texts")}
    args = [fill.get(a, a) for a in args]
    folder = str(tmp_path / "pictures")
    if "--folder" in args:
        at = args.index("--folder")
        folder = args[at + 1]
        args = args[:at] + args[at + 2:]
    code = cli_main(["classify", folder, *args, "--model", "nothing-loaded", "--csv", str(tmp_path / "r.csv")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("clipnb: error:") and message in err and "\n" not in err, err
    assert not (tmp_path / "r.csv").exists()


def test_prompt_over_the_context_length_fails_before_any_image_is_read(tiny_model, tiny_checkpoint, tmp_path,
                                                                        monkeypatch, capsys):
    Image.new("RGB", (8, 8)).save(tmp_path / "ok.png")
    long_name = " ".join(["enormous"] * 80)

    def refuse(*args, **kwargs):
        raise AssertionError("images were embedded before the prompts were checked")
    monkeypatch.setattr(sys.modules["clipnb.zeroshot.results"], "embed_images", refuse)
    with pytest.raises(clipnb.PromptError, match="longer than the model's context of 77"):
        clipnb.classify(tmp_path, ["cat", long_name], model=tiny_model)
    code = cli_main(["classify", str(tmp_path), "--classes", "cat", long_name, "--model",
                            str(tiny_checkpoint), "--no-cache", "--csv", str(tmp_path / "r.csv")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "longer than the model's context" in err and "--truncate" in err and "\n" not in err


def test_unknown_model_and_bad_numbers_exit_2(tmp_path, capsys):
    Image.new("RGB", (8, 8)).save(tmp_path / "ok.png")
    proc = subprocess.run([sys.executable, "-m", "clipnb", "classify", str(tmp_path), "--classes", "cat",
                           "--csv", str(tmp_path / "r.csv"), "--model", "ViT-Q/7"], capture_output=True, text=True,
                          cwd=ROOT, timeout=SUBPROCESS_TIMEOUT)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()] and "unknown model 'ViT-Q/7'" in proc.stderr
    assert cli_main(["classify", str(tmp_path), "--classes", "cat", "--model", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_code:
        cli_main(["classify", str(tmp_path), "--classes", "cat", "--batch-size", "0"])
    assert exit_code.value.code == 2 and "must be at least 1" in capsys.readouterr().err
    assert not (tmp_path / "r.csv").exists()


def test_a_folder_where_nothing_is_readable_still_completes(tiny_checkpoint, tmp_path, capsys):
    folder = tmp_path / "all broken"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(b"")
    (folder / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (folder / "only a folder.gif").mkdir()
    out = tmp_path / "r.csv"
    assert cli_main(["classify", str(folder), "--classes", *CLASSES, "--model", str(tiny_checkpoint), "--csv",
                     str(out), "--no-cache", "--quiet"]) == 0
    assert "2 files, 0 classified, 2 unreadable" in capsys.readouterr().out
    table = pd.read_csv(out, keep_default_na=False)
    assert table["error"].str.len().gt(0).all() and len(table) == 2
    (folder / "a.jpg").unlink()
    (folder / "b.png").unlink()
    assert cli_main(["classify", str(folder), "--classes", "cat", "--model", str(tiny_checkpoint)]) == 2
    assert "no images in" in capsys.readouterr().err  # a folder named like an image is not an image
