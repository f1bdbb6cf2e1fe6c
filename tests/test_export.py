"""clipnb.report.export: a write is atomic (an interrupted or killed writer leaves the previous file, and the next write
cleans up after it), and a file that cannot be written gives an ExportError that keeps the results."""
import errno
import os
import subprocess
import sys

import pandas as pd
import pytest

import clipnb
from clipnb.report.export import ExportError, atomic_path, write_csv

from conftest import ROOT, TEST_IMAGES, csv_parts, distinct_pngs

CLASSES = ["cat", "dog"]
SUBPROCESS_TIMEOUT = 120


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
        f"spec = importlib.util.spec_from_file_location('files', {str(ROOT / 'clipnb' / 'data' / 'files.py')!r})\n"
        "files = sys.modules['files'] = importlib.util.module_from_spec(spec); spec.loader.exec_module(files)\n"
        f"with files.atomic_path({str(out)!r}) as part:\n"
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


def test_csv_export_is_utf8_with_a_bom_when_it_is_not_ascii(tiny_model, tmp_path):
    results = clipnb.classify(TEST_IMAGES / "cat.jpg", ["猫", "狗"], ["一张{}的照片"], model=tiny_model, progress=False)
    chinese = clipnb.write_csv(results, tmp_path / "chinese.csv")  # Excel garbles UTF-8 without a BOM
    assert chinese.read_bytes().startswith(b"\xef\xbb\xbf")
    back = pd.read_csv(chinese, encoding="utf-8-sig")
    assert {"score_猫", "prob_狗"} <= set(back.columns)
    assert back.loc[0, "prediction"] in {"猫", "狗"}
    english = clipnb.classify(TEST_IMAGES / "cat.jpg", ["cat", "dog"], model=tiny_model, progress=False)
    plain = clipnb.write_csv(english, tmp_path / "plain.csv")
    excel = clipnb.write_csv(english, tmp_path / "excel.csv", bom=True)  # --bom: always
    assert not plain.read_bytes().startswith(b"\xef\xbb\xbf") and plain.read_bytes().isascii()
    assert excel.read_bytes() == b"\xef\xbb\xbf" + plain.read_bytes()
    assert not list(tmp_path.glob("*.part"))
