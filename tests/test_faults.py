"""Faults lose nothing: runs killed mid-way, damaged caches and checkpoints, exports that cannot be
written, and checkpoints that try to run code. Each fault is made here, on disk or in a real process."""
import errno
import importlib.util
import io
import os
import pickle
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

import clipnb
from clipnb.cli import main as cli_main
from clipnb.export import ExportError, atomic_path, write_csv

from conftest import ROOT, save_state_dict, tiny_clip

CLASSES = ["cat", "dog"]
SUBPROCESS_TIMEOUT = 120


def distinct_pngs(folder: Path, count: int, size: int = 48) -> Path:
    """`count` PNGs that decode to one picture but differ in bytes (a tail after IEND), so each is its
    own cache entry; cheap to make."""
    folder.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)).save(buffer, "PNG")
    for i in range(count):
        (folder / f"{i:04d}.png").write_bytes(buffer.getvalue() + i.to_bytes(4, "big"))
    return folder


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


def csv_parts(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.endswith(".part")]


@pytest.fixture(scope="module")
def slow_checkpoint(tmp_path_factory) -> Path:
    """A tiny model at CLIP's 224-pixel resolution: slow enough per batch to be killed in the middle."""
    return save_state_dict(tiny_clip(seed=5, resolution=224), tmp_path_factory.mktemp("slow") / "tiny224.pt")


# ---- runs killed in the middle ------------------------------------------------------------------------

@pytest.mark.parametrize("how", ["SIGKILL", "Ctrl-C"])
def test_a_run_killed_while_encoding_keeps_the_old_csv_and_every_cached_embedding(how, slow_checkpoint, tmp_path):
    total = 60
    folder = distinct_pngs(tmp_path / "photos", total)
    out = tmp_path / "results.csv"
    write_csv(pd.DataFrame({"path": ["earlier run.jpg"], "prediction": ["cat"]}), out)
    before = out.read_bytes()
    cache_dir = tmp_path / "cache"
    proc = subprocess.Popen(
        [sys.executable, "-m", "clipnb", "classify", str(folder), "--classes", *CLASSES, "--model",
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
    results = clipnb.classify(folder, CLASSES, model=model, cache=cache, batch_size=32, num_workers=0,
                              progress=False)
    stats = results.attrs["stats"]
    assert stats["cache_hits"] == kept and stats["encoded"] == total - kept  # every finished batch reused
    assert len(results) == total and (results["error"] == "").all()
    # what the killed run cached is what a fresh run computes
    fresh = clipnb.classify(sorted(folder.iterdir())[:3], CLASSES, model=model, progress=False, num_workers=0)
    assert np.allclose(results[["score_cat", "score_dog"]].to_numpy()[:3],
                       fresh[["score_cat", "score_dog"]].to_numpy(), atol=1e-6)
    cache.close()


def test_an_interrupted_write_leaves_the_previous_file(tmp_path, monkeypatch):
    out = tmp_path / "results.csv"
    write_csv(pd.DataFrame({"a": [1]}), out)
    before = out.read_bytes()
    real_to_csv = pd.DataFrame.to_csv

    def half_then_interrupt(self, path, *args, **kwargs):
        real_to_csv(self.head(len(self) // 2), path, *args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(pd.DataFrame, "to_csv", half_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        write_csv(pd.DataFrame({"a": range(1000)}), out)
    assert out.read_bytes() == before and not csv_parts(tmp_path)


def test_a_writer_killed_mid_file_leaves_the_old_file_and_the_next_write_cleans_up(tmp_path):
    out = tmp_path / "results.csv"
    write_csv(pd.DataFrame({"a": [1]}), out)
    before = out.read_bytes()
    script = (
        "import importlib.util, sys, time\n"
        f"spec = importlib.util.spec_from_file_location('export', {str(ROOT / 'clipnb' / 'export.py')!r})\n"
        "export = sys.modules['export'] = importlib.util.module_from_spec(spec); spec.loader.exec_module(export)\n"
        f"with export.atomic_path({str(out)!r}) as part:\n"
        "    with open(part, 'w') as handle:\n"
        "        handle.write('path,prediction\\nhalf a row,')\n"
        "        handle.flush()\n"
        "        print('writing', flush=True)\n"
        "        time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
        proc.kill()
        proc.wait(timeout=SUBPROCESS_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert out.read_bytes() == before
    leftovers = csv_parts(tmp_path)
    assert len(leftovers) == 1 and leftovers[0].name.startswith(".results.csv.")  # hidden, beside it
    write_csv(pd.DataFrame({"a": [2]}), out)
    assert pd.read_csv(out)["a"].tolist() == [2]
    assert not csv_parts(tmp_path)  # the dead writer's temporary file is gone


def test_a_live_writers_temporary_file_is_not_removed(tmp_path):
    out = tmp_path / "r.csv"
    with atomic_path(out) as part:
        part.write_text("x")
        write_csv(pd.DataFrame({"a": [1]}), out)  # another write of the same target meanwhile
        assert part.exists()
    assert not csv_parts(tmp_path)


# ---- exports that cannot be written -------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_results(tiny_model, tmp_path_factory):
    folder = distinct_pngs(tmp_path_factory.mktemp("small") / "photos", 5)
    return clipnb.classify(folder, CLASSES, model=tiny_model, progress=False, num_workers=0)


def test_an_output_folder_that_is_a_file_gives_export_error_and_keeps_results(small_results, tmp_path):
    blocker = tmp_path / "not a folder"
    blocker.write_text("a regular file where the output folder should be")
    with pytest.raises(ExportError, match="not a folder") as caught:
        write_csv(small_results, blocker / "results.csv")
    assert "\n" not in str(caught.value) and "still in memory" in str(caught.value)
    assert isinstance(caught.value, OSError)
    retry = write_csv(small_results, tmp_path / "results.csv")  # the same results, written on retry
    assert pd.read_csv(retry, keep_default_na=False)["path"].tolist() == small_results["path"].tolist()
    (tmp_path / "a folder.csv").mkdir()
    with pytest.raises(ExportError, match="is a folder"):
        write_csv(small_results, tmp_path / "a folder.csv")


@pytest.mark.parametrize("code, message", [(errno.ENOSPC, "disk is full"), (errno.EROFS, "read-only"),
                                           (errno.EACCES, "read-only")])
def test_full_or_read_only_disk_gives_export_error_and_keeps_the_old_file(small_results, tmp_path, monkeypatch,
                                                                          code, message):
    out = tmp_path / "results.csv"
    write_csv(pd.DataFrame({"a": [1]}), out)
    before = out.read_bytes()

    def refuse(*args, **kwargs):
        raise OSError(code, os.strerror(code))
    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(ExportError, match=message):
        write_csv(small_results, out)
    assert out.read_bytes() == before and not csv_parts(tmp_path)
    monkeypatch.undo()
    assert len(pd.read_csv(write_csv(small_results, out))) == len(small_results)


def test_disk_full_in_the_middle_of_writing(small_results, tmp_path, monkeypatch):
    out = tmp_path / "results.csv"
    real_to_csv = pd.DataFrame.to_csv

    def full_half_way(self, path, *args, **kwargs):
        real_to_csv(self.head(2), path, *args, **kwargs)
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(pd.DataFrame, "to_csv", full_half_way)
    with pytest.raises(ExportError, match="disk is full"):
        write_csv(small_results, out)
    assert not out.exists() and not csv_parts(tmp_path)


def test_figures_are_written_atomically_too(tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    out = clipnb.save_figure(figure, tmp_path / "chart.png")
    before = out.read_bytes()
    assert before.startswith(b"\x89PNG")
    monkeypatch.setattr(os, "replace", lambda *a, **k: (_ for _ in ()).throw(OSError(errno.EROFS, "Read-only")))
    with pytest.raises(ExportError, match="read-only"):
        clipnb.save_figure(figure, out)
    assert out.read_bytes() == before and not csv_parts(tmp_path)
    plt.close(figure)


def test_written_files_get_normal_permissions(small_results, tmp_path):
    mask = os.umask(0o022)
    try:
        fresh = write_csv(small_results, tmp_path / "new.csv")
        assert fresh.stat().st_mode & 0o777 == 0o644  # not the 0600 of a temporary file
        kept = tmp_path / "kept.csv"
        kept.write_text("x")
        kept.chmod(0o640)
        write_csv(small_results, kept)
        assert kept.stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(mask)


def test_cli_export_failure_exits_2_and_the_retry_encodes_nothing(tiny_checkpoint, tmp_path, capsys, monkeypatch):
    folder = distinct_pngs(tmp_path / "photos", 6)
    blocker = tmp_path / "reports"
    blocker.write_text("a file, not a folder")
    common = ["classify", str(folder), "--classes", *CLASSES, "--model", str(tiny_checkpoint),
              "--cache-dir", str(tmp_path / "cache"), "--quiet"]
    # a path that can never be a file is refused before any image is encoded
    assert cli_main(common + ["--csv", str(blocker / "results.csv")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"clipnb: error: cannot write {blocker / 'results.csv'}: {blocker} is a file")
    assert "\n" not in err and cached_images(tmp_path / "cache") == 0
    # a write that fails at the end (a full disk): exit 2, and the work is kept for the retry
    import clipnb.export

    def full_disk(*args, **kwargs):
        raise clipnb.export.ExportError("cannot write results.csv: No space left on device")

    monkeypatch.setattr(clipnb.export, "write_csv", full_disk)
    assert cli_main(common + ["--csv", str(tmp_path / "results.csv")]) == 2
    assert capsys.readouterr().err.strip() == "clipnb: error: cannot write results.csv: No space left on device"
    assert cached_images(tmp_path / "cache") == 6
    monkeypatch.undo()
    assert cli_main(common + ["--csv", str(tmp_path / "results.csv")]) == 0
    assert len(pd.read_csv(tmp_path / "results.csv")) == 6


# ---- damaged caches -----------------------------------------------------------------------------------

def test_a_corrupted_cache_entry_is_detected_and_recomputed(tiny_model, tmp_path):
    folder = distinct_pngs(tmp_path / "photos", 6)
    (folder / "0005.png").write_bytes(_png("red"))  # one picture unlike the others
    cache = clipnb.EmbeddingCache(tmp_path / "cache")
    first = clipnb.classify(folder, CLASSES, model=tiny_model, cache=cache, progress=False, num_workers=0)
    cache.close()
    with sqlite3.connect(cache.path) as db:  # flip the bytes of every stored vector but the first
        rows = db.execute("SELECT rowid, vector FROM images").fetchall()
        for rowid, vector in rows[1:]:
            db.execute("UPDATE images SET vector=? WHERE rowid=?", (bytes(b ^ 0x55 for b in vector), rowid))
        db.execute("UPDATE texts SET vector=zeroblob(length(vector))")
        if db.execute("SELECT name FROM sqlite_master WHERE name='files'").fetchone():
            db.execute("UPDATE files SET content='0000' WHERE rowid=1")  # a remembered file hash, damaged
    db.close()
    again = clipnb.classify(folder, CLASSES, model=tiny_model, cache=cache, progress=False, num_workers=0)
    assert again.attrs["stats"]["cache_hits"] == 1 and again.attrs["stats"]["encoded"] == 5
    scores = ["score_cat", "score_dog"]
    assert np.allclose(again[scores].to_numpy(), first[scores].to_numpy(), atol=1e-6)
    third = clipnb.classify(folder, CLASSES, model=tiny_model, cache=cache, progress=False, num_workers=0)
    assert third.attrs["stats"]["cache_hits"] == 6  # the recomputed entries were stored again
    cache.close()


@pytest.mark.parametrize("damage", ["junk", "truncated", "empty"])
def test_a_damaged_cache_file_is_rebuilt(tiny_model, tmp_path, damage):
    folder = distinct_pngs(tmp_path / "photos", 4)
    cache = clipnb.EmbeddingCache(tmp_path / "cache")
    first = clipnb.classify(folder, CLASSES, model=tiny_model, cache=cache, progress=False, num_workers=0)
    cache.close()
    data = cache.path.read_bytes()
    for suffix in ("-wal", "-shm"):
        Path(str(cache.path) + suffix).unlink(missing_ok=True)
    cache.path.write_bytes({"junk": os.urandom(len(data)), "truncated": data[: len(data) // 2],
                            "empty": b""}[damage])
    again = clipnb.classify(folder, CLASSES, model=tiny_model, cache=cache, progress=False, num_workers=0)
    assert (again["error"] == "").all()
    assert np.allclose(again[["score_cat", "score_dog"]].to_numpy(), first[["score_cat", "score_dog"]].to_numpy(),
                       atol=1e-6)
    third = clipnb.classify(folder, CLASSES, model=tiny_model, cache=cache, progress=False, num_workers=0)
    assert third.attrs["stats"]["cache_hits"] == 4
    assert clipnb.EmbeddingCache(tmp_path / "cache").info()["images"] == 4
    cache.close()


def test_a_decoder_crash_on_one_file_is_a_row_not_a_failed_run(tiny_model, tmp_path, monkeypatch):
    folder = distinct_pngs(tmp_path / "photos", 3)
    import clipnb.embedding as embedding

    real_open = embedding.open_image

    def crash_on_second(path, *args, **kwargs):
        if str(path).endswith("0001.png"):
            raise RuntimeError("decoder bug")
        return real_open(path, *args, **kwargs)
    monkeypatch.setattr(embedding, "open_image", crash_on_second)
    results = clipnb.classify(folder, CLASSES, model=tiny_model, progress=False, num_workers=0)
    assert results["error"].tolist()[0] == results["error"].tolist()[2] == ""
    assert "RuntimeError: decoder bug" in results["error"].tolist()[1]


# ---- damaged and hostile checkpoints ------------------------------------------------------------------

class RunsCode:
    """Unpickling this runs a shell command: what a malicious checkpoint does."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch '{self.marker}'",)


def hostile_checkpoints(folder: Path, tiny_checkpoint: Path, marker: Path) -> dict[str, tuple[Path, str]]:
    data = tiny_checkpoint.read_bytes()
    made = {}

    def put(name, content, message):
        path = folder / name
        path.write_bytes(content)
        made[name] = (path, message)

    put("truncated.pt", data[: len(data) // 2], "could not be read")
    put("cut at the end.pt", data[:-100], "could not be read")
    put("empty.pt", b"", "could not be read")
    put("junk.pt", os.urandom(4096), "could not be read")
    put("text.pt", b"<html>not a checkpoint</html>", "could not be read")
    torch.save({"weights": torch.zeros(2)}, folder / "other.pt")
    made["other.pt"] = (folder / "other.pt", "not a CLIP state dict")
    torch.save({"visual.proj": RunsCode(marker)}, folder / "malicious-zip.pt")
    made["malicious-zip.pt"] = (folder / "malicious-zip.pt", "could run code")
    put("malicious-pickle.pt", pickle.dumps({"visual.proj": RunsCode(marker)}, protocol=2), "could run code")
    scripted = io.BytesIO()
    with zipfile.ZipFile(scripted, "w") as archive:  # looks like a TorchScript archive, carries a pickle
        archive.writestr("model/code/__torch__.py", "def forward(self):\n    return 1\n")
        archive.writestr("model/data.pkl", pickle.dumps(RunsCode(marker)))
        archive.writestr("model/version", "3\n")
    put("malicious-torchscript.pt", scripted.getvalue(), "could not be read")
    return made


def test_damaged_and_malicious_checkpoints_give_a_clear_model_error_and_run_nothing(tiny_checkpoint, tmp_path,
                                                                                   capsys):
    marker = tmp_path / "code ran"
    made = hostile_checkpoints(tmp_path, tiny_checkpoint, marker)
    for name, (path, message) in made.items():
        with pytest.raises(clipnb.ModelError, match=message) as caught:
            clipnb.load_model(path, device="cpu")
        assert str(path) in str(caught.value), name
        assert not marker.exists(), f"loading {name} ran code"
    Image.new("RGB", (8, 8)).save(tmp_path / "ok.png")
    for name in ("truncated.pt", "malicious-pickle.pt"):
        code = cli_main(["classify", str(tmp_path / "ok.png"), "--classes", *CLASSES, "--model", str(made[name][0]),
                         "--csv", str(tmp_path / "r.csv"), "--no-cache"])
        err = capsys.readouterr().err.strip()
        assert code == 2 and err.startswith("clipnb: error: checkpoint") and "\n" not in err
    assert not marker.exists() and not (tmp_path / "r.csv").exists()


def test_the_truncated_checkpoint_in_a_real_process(tiny_checkpoint, tmp_path):
    cut = tmp_path / "cut.pt"
    cut.write_bytes(tiny_checkpoint.read_bytes()[:5000])
    Image.new("RGB", (8, 8)).save(tmp_path / "ok.png")
    proc = subprocess.run([sys.executable, "-m", "clipnb", "classify", str(tmp_path), "--classes", *CLASSES,
                           "--model", str(cut), "--csv", str(tmp_path / "r.csv")], capture_output=True, text=True,
                          cwd=ROOT, timeout=SUBPROCESS_TIMEOUT)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "truncated" in proc.stderr


def test_an_official_file_with_the_wrong_sha256_is_a_clear_error(tmp_path, monkeypatch, capsys):
    """openai-clip checks the SHA-256 in the URL; a damaged cached file is named as such (no network used)."""
    def no_network(*args, **kwargs):
        raise urllib.error.URLError("no network in this test")
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "ViT-B-32.pt").write_bytes(b"\0" * 10_000)  # an interrupted download, say
    assert clipnb.models.official_checkpoint_path("ViT-B/32", weights) == weights / "ViT-B-32.pt"
    with pytest.raises(clipnb.ModelError) as caught:
        clipnb.load_model("ViT-B/32", device="cpu", download_root=weights)
    message = str(caught.value)
    assert "damaged or incomplete" in message and "SHA-256" in message and str(weights / "ViT-B-32.pt") in message
    Image.new("RGB", (8, 8)).save(tmp_path / "ok.png")
    code = cli_main(["classify", str(tmp_path / "ok.png"), "--classes", "cat", "--model", "ViT-B/32",
                     "--download-root", str(weights), "--csv", str(tmp_path / "r.csv")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "damaged or incomplete" in err and "\n" not in err


def test_state_dicts_are_read_with_weights_only(tiny_checkpoint, monkeypatch):
    calls = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)
    monkeypatch.setattr(torch, "load", spy)
    clipnb.load_model(tiny_checkpoint, device="cpu")
    assert calls == [True]


def _png(colour: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 40), colour).save(buffer, "PNG")
    return buffer.getvalue()
