"""The command line: classify and similarity, exit codes, one-line errors."""
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import clipnb
from clipnb.cli import main, main as cli_main
from clipnb.report.export import write_csv

from conftest import ROOT, TEST_IMAGES, csv_parts, distinct_pngs, save_state_dict, tiny_clip

CLASSES = ["cat", "dog", "car", "tree", "book"]


def test_classify_writes_csv_and_prints_summary(tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "out" / "results.csv"
    code = main(["classify", str(TEST_IMAGES), "--classes", *CLASSES, "--model", str(tiny_checkpoint),
                 "--csv", str(out), "--cache-dir", str(tmp_path / "cache"), "--quiet", "--ensemble", "score"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "8 files, 8 classified, 0 unreadable" in printed and f"wrote {out}" in printed
    table = pd.read_csv(out)
    assert len(table) == 8 and {f"prob_{c}" for c in CLASSES} <= set(table.columns)


def test_classify_in_chinese_writes_the_articles_csv_and_summary(tiny_checkpoint, tmp_path, capsys):
    english, chinese = tmp_path / "en.csv", tmp_path / "zh.csv"
    common = [str(TEST_IMAGES), "--classes", *CLASSES, "--model", str(tiny_checkpoint),
              "--cache-dir", str(tmp_path / "cache"), "--quiet"]
    assert main(["classify", *common, "--csv", str(english)]) == 0
    capsys.readouterr()
    assert main(["classify", *common, "--csv", str(chinese), "--lang", "zh", "--bom"]) == 0
    printed = capsys.readouterr().out
    assert "=== 统计总结 ===" in printed and "处理图像总数:8" in printed and "图像比例统计:" in printed
    assert "分类结果统计:" in printed and "  - 其他: 4张 (50.0%)" in printed
    assert "个类别 x 3个模板, 集成方式 embedding" in printed and f"结果已导出到:{chinese}" in printed
    table = pd.read_csv(chinese, encoding="utf-8-sig")
    assert list(table.columns[:7]) == ["图像名称", "宽度", "高度", "宽高比", "比例类型", "预测类别", "最高置信度"]
    assert {"宽高比", "比例类型", "预测类别", "最高置信度", *(f"{c}_得分" for c in CLASSES)} <= set(table.columns)
    assert set(table["比例类型"]) == {"正方形 (1:1)", "标准屏 (4:3)", "宽屏 (16:9)", "照片 (3:2)", "其他"}
    # the same numbers as the English CSV, under the article's names
    plain = pd.read_csv(english)
    assert list(table["cat_得分"]) == list(plain["score_cat"]) and list(table["预测类别"]) == list(plain["prediction"])


def test_an_unknown_report_language_is_refused(tiny_checkpoint, tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["classify", str(TEST_IMAGES), "--classes", "cat", "--lang", "fr", "--csv", str(tmp_path / "r.csv")])
    assert stop.value.code == 2
    assert "--lang: invalid choice: 'fr' (choose from" in capsys.readouterr().err
    assert not (tmp_path / "r.csv").exists()


def test_templates_file_and_imagenet_sets(tiny_checkpoint, tmp_path):
    templates = tmp_path / "t.txt"
    templates.write_text("a blurry photo of a {}\n")
    for spec in [str(templates), "imagenet7"]:
        assert main(["classify", str(TEST_IMAGES / "cat.jpg"), "--classes", "cat", "dog", "--templates", spec,
                     "--model", str(tiny_checkpoint), "--csv", str(tmp_path / "r.csv"), "--no-cache",
                     "--quiet"]) == 0


@pytest.mark.parametrize("args, message", [
    (["--classes", "cat", "cat"], "'cat' is given twice"),
    (["--classes", "cat", " "], "class #2 is blank"),
    (["--classes", "cat", "--templates", "no braces here"], "template 'no braces here' has no '{}'"),
    (["--classes", "cat", "--templates", "imagenet81"], "unknown template set 'imagenet81'"),
    (["--classes", "cat", "--model", "ViT-Q/7"], "unknown model 'ViT-Q/7'"),
    (["--classes", "cat", "--model", "vit-b/32"], "did you mean 'ViT-B/32'?"),
])
def test_fatal_problems_exit_2_with_one_line(tiny_checkpoint, tmp_path, capsys, args, message):
    if "--model" not in args:
        args = args + ["--model", str(tiny_checkpoint)]
    code = main(["classify", str(TEST_IMAGES), "--csv", str(tmp_path / "r.csv"), *args])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("clipnb: error:") and message in err and "\n" not in err
    assert not (tmp_path / "r.csv").exists()


def test_missing_and_empty_folders(tiny_checkpoint, tmp_path, capsys):
    assert main(["classify", str(tmp_path / "nope"), "--classes", "cat", "--model", str(tiny_checkpoint)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["classify", str(tmp_path), "--classes", "cat", "--model", str(tiny_checkpoint)]) == 2
    assert "no images in" in capsys.readouterr().err


def test_unreadable_files_do_not_fail_the_run(tiny_checkpoint, tmp_path, capsys):
    (tmp_path / "good.jpg").write_bytes((TEST_IMAGES / "cat.jpg").read_bytes())
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    out = tmp_path / "r.csv"
    assert main(["classify", str(tmp_path), "--classes", "cat", "dog", "--model", str(tiny_checkpoint),
                 "--csv", str(out), "--no-cache", "--quiet"]) == 0
    table = pd.read_csv(out, keep_default_na=False)
    assert table.set_index(table["path"].str.rsplit("/", n=1).str[-1]).loc["bad.png", "error"] != ""
    assert "1 unreadable" in capsys.readouterr().out


def test_similarity_prints_one_probability_per_text(tiny_checkpoint, capsys):
    texts = ["a photo of a cat", "a photo of a dog", "a photo of a bird"]
    assert main(["similarity", str(TEST_IMAGES / "cat.jpg"), "--texts", *texts, "--model", str(tiny_checkpoint)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3
    probs = [float(line.rsplit(maxsplit=1)[1]) for line in lines]
    assert [line.rsplit(maxsplit=1)[0].strip() for line in lines] == texts
    assert sum(probs) == pytest.approx(1, abs=2e-4)


def test_offline_default_model_in_a_subprocess(tmp_path):
    """`--model ViT-B/32` without weights: exit 2, one line saying which file and where to get it."""
    env = dict(os.environ, HOME=str(tmp_path))
    proc = subprocess.run([sys.executable, "-m", "clipnb", "classify", str(TEST_IMAGES), "--classes", "cat", "dog",
                           "--model", "ViT-B/32", "--download-root", str(tmp_path / "weights")],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert "ViT-B/32" in lines[0] and str(tmp_path / "weights" / "ViT-B-32.pt") in lines[0]
    assert "https://openaipublic.azureedge.net/clip/models/" in lines[0]


def test_cache_command(tmp_path, tiny_checkpoint, capsys):
    cache_dir = str(tmp_path / "c")
    main(["classify", str(TEST_IMAGES / "cat.jpg"), "--classes", "cat", "--model", str(tiny_checkpoint),
          "--csv", str(tmp_path / "r.csv"), "--cache-dir", cache_dir, "--quiet"])
    capsys.readouterr()
    assert main(["cache", "info", "--cache-dir", cache_dir]) == 0
    assert "1 image and 3 text embeddings" in capsys.readouterr().out
    assert main(["cache", "clear", "--cache-dir", cache_dir]) == 0
    main(["cache", "--cache-dir", cache_dir])
    assert f"no embedding cache in {cache_dir} yet" in capsys.readouterr().out  # clear removed the file


def test_comma_joined_classes_exit_2_with_the_right_form(tmp_path, capsys):
    code = main(["classify", str(TEST_IMAGES), "--classes", "cat,dog,car", "--model", "never-loaded",
                 "--csv", str(tmp_path / "r.csv")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert err == ("clipnb: error: class 'cat,dog,car' holds commas: give each class as its own name: cat dog car "
                   """(command line: --classes cat dog car; Python: ["cat", "dog", "car"])\n""")
    assert main(["video", "clip.mp4", "--classes", "猫，狗", "--model", "never-loaded"]) == 2
    assert "--classes 猫 狗;" in capsys.readouterr().err


def test_a_missing_template_file_is_not_an_unknown_set(tmp_path, capsys):
    missing = tmp_path / "mine.txt"
    code = main(["classify", str(TEST_IMAGES), "--classes", "cat", "dog", "--templates", str(missing),
                 "--model", "never-loaded", "--csv", str(tmp_path / "r.csv")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err
    assert err.startswith(f"clipnb: error: template file {missing} not found: check its name and folder")
    assert "unknown template set" not in err


def test_similarity_given_a_folder_says_what_to_do(tmp_path, capsys):
    code = main(["similarity", str(TEST_IMAGES), "--texts", "a cat", "a dog", "--model", "never-loaded"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "does not exist" not in err
    assert err == (f"clipnb: error: {TEST_IMAGES} is a folder: similarity compares one image with texts; give an "
                   f"image file, such as {TEST_IMAGES / 'book.jpg'}, or use `python -m clipnb classify {TEST_IMAGES} "
                   "--classes ...` to classify the images of a folder")
    assert main(["similarity", str(tmp_path / "nope.jpg"), "--texts", "a cat", "--model", "never-loaded"]) == 2
    assert "nope.jpg does not exist" in capsys.readouterr().err


def test_basic_is_the_default_template_set_and_seed_still_works(tiny_checkpoint, tmp_path, capsys):
    from clipnb.cli import build_parser

    parser = build_parser()
    for command in (["classify", "f"], ["video", "f"], ["probe", "f"]):
        assert parser.parse_args(command + ["--classes", "a", "b"]).templates == "basic"
    assert parser.parse_args(["evaluate", "f"]).templates == ["basic"]
    helps = "\n".join(action.help or "" for sub in parser._subparsers._group_actions[0].choices.values()
                      for action in sub._actions)
    assert "seed" not in helps
    assert "basic, imagenet80, imagenet7" in helps and "averages the per-template scores" in helps
    assert main(["classify", str(TEST_IMAGES / "cat.jpg"), "--classes", "cat", "dog", "--templates", "seed",
                 "--model", str(tiny_checkpoint), "--csv", str(tmp_path / "r.csv"), "--no-cache", "--quiet"]) == 0
    assert "2 classes x 3 templates" in capsys.readouterr().out


def test_class_warnings_are_one_line_each_and_said_once(tmp_path, capsys):
    """evaluate builds a head per template set and ensembling method: each warning still comes once."""
    for label in ["cat", "dog"]:
        (tmp_path / "data" / label).mkdir(parents=True)
        (tmp_path / "data" / label / "1.jpg").write_bytes((TEST_IMAGES / f"{label}2.jpg").read_bytes())
    code = main(["evaluate", str(tmp_path / "data"), "--model", "demo", "--templates", "basic", "imagenet7",
                 "--out", str(tmp_path / "out"), "--no-figures", "--no-cache", "--quiet"])
    err = capsys.readouterr().err
    assert code == 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("clipnb: warning: the demo model knows only coloured shapes, "
                                                   "so its answers for 'cat' and 'dog' mean nothing")
    assert "--model ViT-B/32" in lines[0]
    main(["classify", str(TEST_IMAGES / "cat.jpg"), "--classes", "red circle", "--model", "demo",
          "--csv", str(tmp_path / "r.csv"), "--no-cache", "--quiet"])
    assert capsys.readouterr().err.splitlines() == [
        "clipnb: warning: only one class ('red circle'): every image gets it with probability 1, so the answer "
        "says nothing; add at least one more class (for example 'something else')"]


def test_the_output_says_whether_subfolders_are_included(tiny_checkpoint, tmp_path, capsys):
    cat = (TEST_IMAGES / "cat.jpg").read_bytes()
    (tmp_path / "photos" / "more").mkdir(parents=True)
    for name in ["a.jpg", "more/b.jpg", "more/c.jpg"]:
        (tmp_path / "photos" / name).write_bytes(cat)
    common = ["--model", str(tiny_checkpoint), "--no-cache", "--quiet"]
    folder = tmp_path / "photos"
    assert main(["classify", str(folder), "--classes", "cat", "dog", *common, "--csv", str(tmp_path / "r.csv")]) == 0
    out = capsys.readouterr().out
    assert (f"1 image in {folder} (subfolders not included: 2 more images in subfolders; add --recursive to "
            "include them)") in out.splitlines()
    assert len(pd.read_csv(tmp_path / "r.csv")) == 1
    assert main(["classify", str(folder), "--classes", "cat", "dog", *common, "--recursive",
                 "--csv", str(tmp_path / "r.csv")]) == 0
    out = capsys.readouterr().out
    assert f"3 images in {folder}, subfolders included (2 of them in subfolders)" in out.splitlines()
    assert len(pd.read_csv(tmp_path / "r.csv")) == 3
    assert main(["search", str(folder), "--text", "a cat", *common]) == 0
    captured = capsys.readouterr()
    assert "subfolders not included: 2 more images" in captured.err and len(captured.out.splitlines()) == 1


def test_an_output_csv_that_cannot_be_written_is_refused_before_any_work(tiny_checkpoint, tmp_path, capsys):
    code = main(["classify", str(TEST_IMAGES), "--classes", "cat", "dog", "--model", str(tiny_checkpoint),
                 "--csv", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err == f"clipnb: error: cannot write {tmp_path}: it is a folder; give a file name such as " \
                                f"{tmp_path / 'results.csv'}"


def test_one_class_or_template_is_not_written_as_plural(tiny_checkpoint, tmp_path, capsys):
    main(["classify", str(TEST_IMAGES), "--classes", "cat", "--templates", "a photo of a {}",
          "--model", str(tiny_checkpoint), "--csv", str(tmp_path / "r.csv")])
    assert "1 class x 1 template," in capsys.readouterr().out


TWO_CLASSES = ["cat", "dog"]
SUBPROCESS_TIMEOUT = 120


def cached_images(cache_dir: Path) -> int:
    """Image embeddings committed to the cache, read as another process would (read-only)."""
    path = cache_dir / "embeddings.sqlite3"
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
            return db.execute("SELECT count(*) FROM images").fetchone()[0]
    except sqlite3.Error:
        return 0  # not created yet


@pytest.fixture(scope="module")
def slow_checkpoint(tmp_path_factory) -> Path:
    """A tiny model at CLIP's 224-pixel resolution: slow enough per batch to be killed in the middle."""
    return save_state_dict(tiny_clip(seed=5, resolution=224), tmp_path_factory.mktemp("slow") / "tiny224.pt")


@pytest.mark.parametrize("how", ["SIGKILL", "Ctrl-C"])
def test_a_run_killed_while_encoding_keeps_the_old_csv_and_every_cached_embedding(how, slow_checkpoint, tmp_path):
    total = 60
    folder = distinct_pngs(tmp_path / "photos", total)
    out = tmp_path / "results.csv"
    write_csv(pd.DataFrame({"path": ["earlier run.jpg"], "prediction": ["cat"]}), out)
    before = out.read_bytes()
    cache_dir = tmp_path / "cache"
    proc = subprocess.Popen(
        [sys.executable, "-m", "clipnb", "classify", str(folder), "--classes", *TWO_CLASSES, "--model",
         str(slow_checkpoint), "--csv", str(out), "--cache-dir", str(cache_dir), "--batch-size", "4",
         "--workers", "1", "--quiet"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + SUBPROCESS_TIMEOUT
        while cached_images(cache_dir) < 8 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        seen = cached_images(cache_dir)
        # Ctrl-C in a terminal signals the whole process group (the decoding worker too); so does this
        os.killpg(proc.pid, signal.SIGKILL if how == "SIGKILL" else signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=SUBPROCESS_TIMEOUT)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert 8 <= seen < total, f"the run was not caught in the middle ({seen} of {total} cached)"
    if how == "SIGKILL":
        assert proc.returncode == -signal.SIGKILL
    else:
        assert proc.returncode == 130, stderr
        assert "Traceback" not in stderr and "interrupted" in stderr and len(stderr.strip().splitlines()) == 1
    assert out.read_bytes() == before  # the previous good CSV, untouched
    assert not csv_parts(tmp_path)
    kept = cached_images(cache_dir)
    assert seen <= kept < total

    cache = clipnb.EmbeddingCache(cache_dir)
    model = clipnb.load_model(slow_checkpoint, device="cpu")
    results = clipnb.classify(folder, TWO_CLASSES, model=model, cache=cache, batch_size=32, num_workers=0,
                              progress=False)
    stats = results.attrs["stats"]
    assert stats["cache_hits"] == kept and stats["encoded"] == total - kept  # every finished batch reused
    assert len(results) == total and (results["error"] == "").all()
    # what the killed run cached is what a fresh run computes
    fresh = clipnb.classify(sorted(folder.iterdir())[:3], TWO_CLASSES, model=model, progress=False, num_workers=0)
    assert np.allclose(results[["score_cat", "score_dog"]].to_numpy()[:3],
                       fresh[["score_cat", "score_dog"]].to_numpy(), atol=1e-6)
    cache.close()


def test_cli_export_failure_exits_2_and_the_retry_encodes_nothing(tiny_checkpoint, tmp_path, capsys, monkeypatch):
    folder = distinct_pngs(tmp_path / "photos", 6)
    blocker = tmp_path / "reports"
    blocker.write_text("a file, not a folder")
    common = ["classify", str(folder), "--classes", *TWO_CLASSES, "--model", str(tiny_checkpoint),
              "--cache-dir", str(tmp_path / "cache"), "--quiet"]
    # a path that can never be a file is refused before any image is encoded
    assert cli_main(common + ["--csv", str(blocker / "results.csv")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"clipnb: error: cannot write {blocker / 'results.csv'}: {blocker} is a file")
    assert "\n" not in err and cached_images(tmp_path / "cache") == 0
    # a write that fails at the end (a full disk): exit 2, and the work is kept for the retry
    import clipnb.report.export

    def full_disk(*args, **kwargs):
        raise clipnb.report.export.ExportError("cannot write results.csv: No space left on device")

    monkeypatch.setattr(clipnb.report.export, "write_csv", full_disk)
    assert cli_main(common + ["--csv", str(tmp_path / "results.csv")]) == 2
    assert capsys.readouterr().err.strip() == "clipnb: error: cannot write results.csv: No space left on device"
    assert cached_images(tmp_path / "cache") == 6
    monkeypatch.undo()
    assert cli_main(common + ["--csv", str(tmp_path / "results.csv")]) == 0
    assert len(pd.read_csv(tmp_path / "results.csv")) == 6


def test_models_lists_each_family_and_what_is_on_disk(tmp_path, capsys):
    # an official file in the download folder is listed as on disk; nothing else there is
    (tmp_path / "RN50.pt").write_bytes(b"stand-in")
    assert cli_main(["models", "--family", "openai", "--download-root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "openai:" in out and "  ViT-B/32\n" in out and "  RN50  (on disk)" in out and "  demo  (on disk)" in out
    assert cli_main(["models", "--family", "openai", "--on-disk", "--download-root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "  RN50" in out and "  ViT-B/32" not in out


def test_pretrained_for_a_model_that_takes_none_is_one_line(tiny_checkpoint, tmp_path, capsys):
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    code = cli_main(["classify", str(tmp_path), "--classes", "cat", "dog", "--model", "ViT-B/32",
                     "--pretrained", "laion2b_s34b_b79k", "--no-cache", "--csv", str(tmp_path / "r.csv")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "takes no separate weights" in err and "open_clip:" in err and "\n" not in err


def test_every_command_that_writes_a_report_takes_lang():
    from clipnb.cli import build_parser

    parser = build_parser()
    for argv in (["classify", "f", "--classes", "a"], ["evaluate", "f"], ["search", "f", "--text", "a"],
                 ["video", "v.mp4", "--classes", "a"], ["probe", "f"]):
        assert parser.parse_args(argv).lang == "en", argv
        assert parser.parse_args([*argv, "--lang", "zh"]).lang == "zh", argv
