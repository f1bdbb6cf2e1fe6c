"""The command line says what is wrong in one line (issue 23: item 10 and the list of tracebacks, hangs and
misleading messages): extreme temperatures, negative seeds, infinite sampling steps, a FIFO as a video or as
templates, blank templates, a huge templates file, names that are not UTF-8, evaluating one class.

Run in-process with clipnb.cli.main, on the demo model; every payload is made here in tmp_path."""
import math
import os
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image, ImageDraw

import clipnb
from clipnb.models import demo_vocabulary as shapes
from clipnb.zeroshot.calibration import apply_temperature
from clipnb.zeroshot.results import results_table
from clipnb.cli import main
from clipnb.embed.pipeline import EmbeddedImages
from clipnb.tasks.few_shot import ProbeError, few_shot_split
from clipnb.zeroshot.prompts import MAX_TEMPLATE_FILE_BYTES
from clipnb.zeroshot.scoring import ZeroShotHead
from clipnb.data.video import VideoError, sample_frames

HANG_SECONDS = 60  # far above the instant refusal; only a hang (FFmpeg waiting on a FIFO) takes this long


def argparse_error(capsys, excinfo) -> str:
    """The error line argparse printed (after its usage lines), checking the exit code 2 and no traceback."""
    err = capsys.readouterr().err
    assert excinfo.value.code == 2 and "Traceback" not in err, err
    return err.strip().splitlines()[-1]


def disc(path: Path, colour: str) -> Path:
    """A demo-world picture: a disc of `colour` on white."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.new("RGB", (64, 64), "white")
    ImageDraw.Draw(image).ellipse((12, 12, 52, 52), fill=colour)
    image.save(path, format="PNG")
    return path


def latin1(folder: Path, name: bytes) -> str:
    """A path in `folder` whose name is bytes that are not UTF-8 (another system's encoding)."""
    return os.fsdecode(os.fsencode(folder) + b"/" + name)


# ---- item 10: the temperature ------------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["1e-40", "1e30", "inf", "-inf", "nan", "0", "-1", "0.001", "101"])
def test_a_temperature_outside_the_calibrated_range_is_one_line(value, tmp_path, capsys, no_model_loading):
    with pytest.raises(SystemExit) as excinfo:
        main(["classify", str(tmp_path), "--classes", "a", "b", f"--temperature={value}"])
    line = argparse_error(capsys, excinfo)
    assert "argument --temperature: temperature must be a number above 0, from 0.01 to 100" in line, line
    with pytest.raises(ValueError, match="from 0.01 to 100"):  # the library refuses it too, before any model
        clipnb.classify(tmp_path, ["a", "b"], model="no such model", temperature=float(value))


def test_a_temperature_never_changes_a_prediction_on_a_real_table(demo, shapes_folder):
    plain = clipnb.classify(shapes_folder, shapes.CLASSES, model=demo, recursive=True, progress=False, num_workers=0)
    assert plain["prediction"].notna().all()
    for temperature in (0.01, 100.0):  # the range's edges: the most extreme temperatures taken
        hot = clipnb.classify(shapes_folder, shapes.CLASSES, model=demo, recursive=True, progress=False,
                              num_workers=0, temperature=temperature)
        assert list(hot["prediction"]) == list(plain["prediction"])
        assert np.isfinite(hot["confidence"]).all() and (hot["confidence"] <= 1).all()
        table = apply_temperature(plain, temperature)
        assert list(table["prediction"]) == list(plain["prediction"]) and np.isfinite(table["confidence"]).all()
        # at T = 100 the demo model's 48 probabilities are nearly flat (1/48 = 0.0208), yet still ordered
        assert (table[[c for c in table if c.startswith("prob_")]].to_numpy().argmax(axis=1)
                == plain[[c for c in plain if c.startswith("prob_")]].to_numpy().argmax(axis=1)).all()


def test_a_sigmoid_head_keeps_the_best_score_when_probabilities_round_to_one():
    """SigLIP-like: each class its own sigmoid. Two classes far above the bias both round to probability 1.0 in
    float32 at a low temperature; the prediction must still be the best-scoring class, not the first."""
    scale, bias = 117.0, -12.7  # the size of SigLIP's own logit scale and bias
    head = ZeroShotHead(classes=["a", "b", "c"], templates=["{}"], ensemble="embedding",
                        text_features=torch.eye(3)[:, None, :], logit_scale=scale, logit_bias=bias)
    features = torch.nn.functional.normalize(torch.tensor([[0.55, 0.60, 0.10], [0.30, 0.20, 0.62]]), dim=-1)
    records = pd.DataFrame({"path": ["x.png", "y.png"], "width": 8, "height": 8, "error": "", "note": ""})
    embedded = EmbeddedImages(records=records, features=features)
    for temperature in (1.0, 0.01):
        table = results_table(embedded, apply_temperature(head, temperature))
        assert list(table["prediction"]) == ["b", "c"]
        assert table["confidence"].tolist() == pytest.approx([1.0, 1.0], abs=1e-6)  # saturated, yet right


# ---- probe --seed, video --every-seconds, video on a FIFO -------------------------------------------------

def test_a_negative_seed_is_one_line(tmp_path, capsys, no_model_loading):
    with pytest.raises(SystemExit) as excinfo:
        main(["probe", str(tmp_path), "--seed=-1"])
    assert "argument --seed: must be a whole number of 0 or more, not '-1'" in argparse_error(capsys, excinfo)
    with pytest.raises(ProbeError, match="seed must be a whole number of 0 or more"):
        few_shot_split([0, 0, 1, 1], shots=[1], seed=-1)


@pytest.mark.parametrize("value", ["inf", "nan", "0"])
def test_an_infinite_sampling_step_is_one_line(value, tmp_path, capsys, no_model_loading):
    with pytest.raises(SystemExit) as excinfo:
        main(["video", str(tmp_path / "v.mp4"), "--classes", "a", "b", "--every-seconds", value])
    assert "argument --every-seconds: must be a finite number above 0" in argparse_error(capsys, excinfo)
    with pytest.raises(ValueError, match="finite number above 0"):
        next(sample_frames(tmp_path / "v.mp4", every_seconds=float(value)))


def test_a_video_that_is_a_fifo_is_refused_at_once(tmp_path, capsys, no_model_loading):
    fifo = tmp_path / "stream.mp4"
    os.mkfifo(fifo)
    result = {}
    worker = threading.Thread(target=lambda: result.update(code=main(["video", str(fifo), "--classes", "a", "b"])),
                              daemon=True)
    worker.start()
    worker.join(HANG_SECONDS)
    if worker.is_alive():  # a reader blocked on the FIFO: give it a writer that closes, so it ends
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        worker.join(HANG_SECONDS)
        pytest.fail("the video command waited on a FIFO instead of refusing it")
    err = capsys.readouterr().err
    assert result["code"] == 2 and err.count("\n") == 1 and "is not a regular file" in err, err
    with pytest.raises(VideoError, match="not a regular file"):
        clipnb.video_info(fifo)


# ---- templates -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind, message", [("blank", "the templates are blank"),
                                           ("fifo", "is not a regular file (a named pipe, device or socket)"),
                                           ("huge", "is larger than 1 MB")])
def test_templates_that_are_not_a_templates_file_are_one_line(kind, message, tmp_path, capsys, no_model_loading):
    disc(tmp_path / "images" / "a.png", "red")
    templates = ""
    if kind == "fifo":
        templates = tmp_path / "templates.txt"
        os.mkfifo(templates)
    elif kind == "huge":  # sparse: a huge file costs no disk; only its first MAX + 1 bytes may be read
        templates = tmp_path / "templates.txt"
        with open(templates, "wb") as handle:
            handle.truncate(64 * MAX_TEMPLATE_FILE_BYTES)
    code = main(["classify", str(tmp_path / "images"), "--classes", "a", "b", "--templates", str(templates),
                 "--csv", str(tmp_path / "out.csv")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and message in err, err
    assert "template set" in err or "text file" in err  # and what to give instead


# ---- names that are not UTF-8: search, evaluate, probe --------------------------------------------------

@pytest.fixture()
def latin1_labelled(tmp_path) -> Path:
    """A labelled folder of three demo classes, one image of each named in Latin-1, and one class folder too."""
    root = tmp_path / "labelled"
    for colour in ("red", "green", "blue"):
        disc(root / f"{colour} circle" / "0.png", colour)
        disc(Path(latin1(root / f"{colour} circle", b"caf\xe9.png")), colour)
    os.rename(root / "blue circle", latin1(root, b"blue circle\xe9"))
    return root


def test_search_evaluate_and_probe_take_names_that_are_not_utf8(demo, latin1_labelled, tmp_path, capsys):
    common = ["--model", "demo", "--quiet", "--no-cache"]
    assert main(["search", str(latin1_labelled), "--recursive", "--text", "a red circle",
                 "--csv", str(tmp_path / "hits.csv"), *common]) == 0
    hits = pd.read_csv(tmp_path / "hits.csv", encoding="utf-8")  # valid UTF-8: the bytes written escaped
    assert hits["path"].str.endswith("caf\\udce9.png").sum() == 3 and len(hits) == 6
    assert Path(hits["path"][0]).parent.name == "red circle"
    assert main(["evaluate", str(latin1_labelled), "--out", str(tmp_path / "report"), *common]) == 0
    per_image = pd.read_csv(tmp_path / "report" / "per_image.csv", encoding="utf-8")
    assert len(per_image) == 6 and set(per_image["label"]) == {"red circle", "green circle", "blue circle\\xe9"}
    assert main(["probe", str(latin1_labelled), "--shots", "1", "--trials", "1",
                 "--out", str(tmp_path / "probe"), *common]) == 0
    assert (tmp_path / "probe" / "curve.csv").is_file()
    assert "Traceback" not in capsys.readouterr().err


# ---- evaluate and probe with one class ------------------------------------------------------------------

@pytest.mark.parametrize("command", ["evaluate", "probe"])
def test_one_class_is_refused_in_one_line(command, tmp_path, capsys, no_model_loading):
    for number in range(4):
        disc(tmp_path / "labelled" / "red circle" / f"{number}.png", "red")
    code = main([command, str(tmp_path / "labelled"), "--model", "demo", "--no-cache", "--quiet",
                 "--out", str(tmp_path / "report")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "name one class only ('red circle')" in err, err
    assert "--classes" in err and not (tmp_path / "report").exists()
