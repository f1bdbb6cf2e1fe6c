"""Issue 23, a reviewer's follow-ups: every file inside --out is checked before any work; the command line's
full-disk message says what a rerun finds; an official TorchScript archive is loaded from the same bytes that
were hashed; torch's legacy-pickle warning never reaches the user; `cache info` on an empty folder; a local-dir
tokenizer message that says what is wrong. Every payload is written here, in tmp_path."""
import errno
import json
import os
import warnings
from pathlib import Path

import pytest
import torch

import clipnb
import clipnb.zeroshot.results  # noqa: F401 (no_model_loading replaces its load_model)
from clipnb.report import export
from clipnb.models import files as model_files
from clipnb.cli import main
from clipnb.report.export import RETRY_HINT, ExportError, write_csv
from clipnb.models.loading import ModelError, file_sha256
from clipnb.report.writers import OUTPUT_FILES

from conftest import tiny_clip
from family_models import save_open_clip_model
from test_security_models import scripted_module
from test_security_outputs import TABLE, shapes


def labelled_folder(root: Path) -> Path:
    shapes(root / "red circle", {"a.png": "red", "b.png": "red", "e.png": "red", "f.png": "red"})
    shapes(root / "blue circle", {"c.png": "blue", "d.png": "blue", "g.png": "blue", "h.png": "blue"})
    return root


# ---- item 1: the files inside --out are checked before any work ---------------------------------------------

@pytest.mark.parametrize("command, name, kind", [("evaluate", "per_image.csv", "fifo"),
                                                 ("evaluate", "summary.csv", None),  # not evaluate's: no refusal
                                                 ("evaluate", "confusion.png", "folder"),
                                                 ("evaluate", "models.csv", "fifo"),
                                                 ("video", "timeline.csv", "fifo"),
                                                 ("video", "timeline.png", "folder"),
                                                 ("probe", "summary.csv", "folder"),
                                                 ("probe", "shots.png", "fifo")])
def test_each_file_inside_out_is_checked_before_any_work(command, name, kind, tmp_path, capsys, no_model_loading):
    out = tmp_path / "report"
    out.mkdir()
    blocker = out / name
    if kind == "fifo" or kind is None:
        os.mkfifo(blocker)
    else:
        blocker.mkdir()
    labelled = labelled_folder(tmp_path / "labelled")
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"never opened: the output is refused first")
    argv = {"evaluate": ["evaluate", str(labelled), "--no-cache"], "probe": ["probe", str(labelled), "--no-cache"],
            "video": ["video", str(video), "--classes", "a", "b"]}[command]
    if kind is None:  # a file the command never writes is not in its way: the work starts (and the model loads)
        with pytest.raises(AssertionError, match="a model was loaded"):
            main([*argv, "--model", "demo", "--quiet", "--out", str(out)])
        return
    assert main([*argv, "--model", "demo", "--quiet", "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and captured.err.startswith(f"clipnb: error: cannot write {blocker}"), \
        captured.err
    assert captured.out == ""  # no model, no frames, no table printed
    assert sorted(os.listdir(out)) == [name]  # nothing written: metrics.json is not there either


def test_out_files_lists_every_file_evaluate_and_probe_write(demo, tmp_path):
    labelled = labelled_folder(tmp_path / "labelled")
    assert main(["evaluate", str(labelled), "--model", "demo", "--model", "demo", "--quiet", "--no-cache",
                 "--out", str(tmp_path / "evaluation")]) == 0
    written = set(os.listdir(tmp_path / "evaluation"))
    assert {"metrics.json", "models.csv", "confusion.png"} <= written <= set(OUTPUT_FILES["evaluate"])
    assert main(["probe", str(labelled), "--model", "demo", "--quiet", "--no-cache", "--shots", "1",
                 "--trials", "1", "--out", str(tmp_path / "probe")]) == 0
    assert set(os.listdir(tmp_path / "probe")) == set(OUTPUT_FILES["probe"])


# ---- item 2: a full disk at the command line says what a rerun finds ----------------------------------------

@pytest.fixture()
def full_disk(monkeypatch):
    """Every atomic write fails as on a full disk (at the fsync of its temporary file)."""
    def full(descriptor):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(export.os, "fsync", full)


def test_a_full_disk_in_python_says_the_results_are_in_memory(tmp_path, full_disk):
    with pytest.raises(ExportError, match=RETRY_HINT):
        write_csv(TABLE, tmp_path / "t.csv")


@pytest.mark.parametrize("cached", [True, False])
def test_a_full_disk_on_the_command_line_says_what_is_kept(cached, demo, tmp_path, capsys, full_disk):
    images = shapes(tmp_path / "images", {"a.png": "red", "b.png": "blue"})
    cache = ["--cache-dir", str(tmp_path / "cache")] if cached else ["--no-cache"]
    assert main(["classify", str(images), "--classes", "red circle", "blue circle", "--model", "demo", "--quiet",
                 "--csv", str(tmp_path / "out.csv"), *cache]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "the disk is full" in error and "in memory" not in error, error
    if cached:
        assert "the embeddings are kept in the cache, so a rerun after fixing this takes seconds" in error
    else:
        assert "nothing was kept (--no-cache)" in error and "run the command again" in error


# ---- item 3: an official archive is loaded from the bytes that were hashed ----------------------------------

def test_an_official_archive_swapped_after_its_check_is_not_loaded(tmp_path, monkeypatch):
    from clipnb.models.families import openai

    path = scripted_module(tmp_path / "official.pt")
    official = frozenset({file_sha256(path)})  # the test archive's hash, taken now: the file changes below
    monkeypatch.setattr(model_files, "official_torchscript_sha256", lambda: official)
    swapped = tmp_path / "other.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit is deprecated
        torch.jit.save(torch.jit.script(torch.nn.Linear(3, 3)), str(swapped))  # another archive, another SHA-256
    assert file_sha256(swapped) != file_sha256(path)
    real_check = openai.check_checkpoint

    def check_then_swap(*args, **kwargs):  # the file changes between the check and the load
        kind = real_check(*args, **kwargs)
        path.write_bytes(swapped.read_bytes())
        return kind
    monkeypatch.setattr(openai, "check_checkpoint", check_then_swap)
    loads = []
    monkeypatch.setattr(torch.jit, "load", lambda *a, **k: loads.append(a))
    with pytest.raises(ModelError, match="changed while it was being loaded") as caught:
        clipnb.load_model(str(path), device="cpu", cache=False)
    assert "\n" not in str(caught.value) and str(path) in str(caught.value)
    assert loads == []  # the swapped file was never given to torch.jit.load


# ---- item 4: torch's legacy-pickle warning stays inside -------------------------------------------------------

def test_a_legacy_pickle_checkpoint_gives_only_clipnbs_line(tmp_path, capsys):
    path = tmp_path / "legacy.pt"
    torch.save(tiny_clip().state_dict(), path, _use_new_zipfile_serialization=False, pickle_protocol=4)
    images = shapes(tmp_path / "images", {"a.png": "red"})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = main(["classify", str(images), "--classes", "a", "b", "--model", str(path), "--quiet",
                     "--no-cache"])
    assert not [w for w in caught if "pickle protocol" in str(w.message)], [str(w.message) for w in caught]
    error = capsys.readouterr().err
    assert "pickle protocol" not in error and "Unpickler" not in error
    assert code == 0 or (code == 2 and error.count("\n") == 1 and error.startswith("clipnb: error:")), error


# ---- item 5: `cache info` where there is no cache yet --------------------------------------------------------

@pytest.mark.parametrize("action", ["info", "clear"])
def test_cache_info_on_an_empty_folder_says_there_is_no_cache_yet(action, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    empty.chmod(0o555)  # cannot be written (except by root): nothing may be made there to report on it
    try:
        assert main(["cache", action, "--cache-dir", str(empty)]) == 0
    finally:
        empty.chmod(0o755)
    out = capsys.readouterr().out
    assert out == f"no embedding cache in {empty} yet: nothing has been embedded with this cache folder\n"
    assert os.listdir(empty) == []


# ---- item 6: a local-dir tokenizer that is a local folder ---------------------------------------------------

def test_a_local_dir_whose_tokenizer_is_a_missing_local_folder_says_so(tmp_path, capsys):
    spec, folder = save_open_clip_model(tmp_path / "model")
    config_path = folder / "open_clip_config.json"
    config = json.loads(config_path.read_text())
    config["model_cfg"]["text_cfg"]["hf_tokenizer_name"] = str(tmp_path / "no-tokenizer-here")
    config_path.write_text(json.dumps(config))
    images = shapes(tmp_path / "images", {"a.png": "red"})
    assert main(["classify", str(images), "--classes", "a", "b", "--model", f"open_clip:{spec}", "--quiet",
                 "--no-cache"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "open_clip_config.json" in error and "hf_tokenizer_name" in error, error
    assert "internet" not in error and str(folder.resolve()) in error
