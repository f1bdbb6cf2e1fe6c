"""Video: frame sampling with PyAV (by seconds, by frames, by seeking), damaged and wrong files, the demo
model's timeline following a video whose shape changes halfway, and the `video` command."""
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from clipnb.data import video as decoding
from clipnb.tasks import video
from clipnb.cli import main
from clipnb.zeroshot.scoring import build_head
from clipnb.demo import shapes_video, write_video
from clipnb.data.video import VideoError, sample_frames
from clipnb.tasks.video import classify_video, embed_video, segments


CLASSES = ["red circle", "blue star", "green square", "yellow hexagon", "white cross", "black triangle"]


@pytest.fixture(scope="module")
def changing(tmp_path_factory):
    """4 s at 4 fps: a red circle for 2 s, then a blue star for 2 s (redrawn on every frame)."""
    return shapes_video(tmp_path_factory.mktemp("video") / "change.mp4",
                        [("red circle", 2.0), ("blue star", 2.0)], fps=4, size=(112, 96))


@pytest.fixture(scope="module")
def counting(tmp_path_factory):
    """20 s at 6 fps where frame i is grey level 2*i: every frame says which it is (MPEG-4, keyframe every 12)."""
    frames = [Image.fromarray(np.full((48, 64, 3), 2 * i, np.uint8)) for i in range(120)]
    return write_video(tmp_path_factory.mktemp("video") / "count.mp4", frames, fps=6, codec="mpeg4")


def test_sampling_every_n_seconds_and_every_n_frames(changing):
    report = {}
    frames = list(sample_frames(changing, every_seconds=0.5, report=report))
    assert [f.time for f in frames] == pytest.approx([0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5])
    assert [f.index for f in frames] == [0, 2, 4, 6, 8, 10, 12, 14]
    assert report["decoded"] == 16 and report["fps"] == 4 and report["width"] == 112
    by_frames = list(sample_frames(changing, every_seconds=None, every_frames=5))
    assert [f.index for f in by_frames] == [0, 5, 10, 15]
    assert len(list(sample_frames(changing, every_seconds=0.25, max_frames=3))) == 3


def test_seeking_finds_the_same_frames_as_decoding_everything(counting, monkeypatch):
    def grey(frame):
        return int(np.asarray(frame.image)[..., 0].mean())

    straight = list(sample_frames(counting, every_seconds=3.0))
    monkeypatch.setattr(decoding, "SEEK_AFTER_SECONDS", 1.0)
    report = {}
    seeking = list(sample_frames(counting, every_seconds=3.0, report=report))
    assert [f.time for f in straight] == pytest.approx([0, 3, 6, 9, 12, 15, 18])
    assert [f.time for f in seeking] == pytest.approx([f.time for f in straight])
    assert [f.index for f in seeking] == [0, 18, 36, 54, 72, 90, 108]
    assert [grey(f) for f in seeking] == pytest.approx([2 * f.index for f in seeking], abs=6)
    assert report["decoded"] < 72  # seeking skipped most of the 120 frames


def test_frames_are_scaled_down_on_decoding(tmp_path):
    path = write_video(tmp_path / "big.mp4", [Image.new("RGB", (640, 480), "red")] * 2, fps=2)
    frame = next(sample_frames(path, every_seconds=1, max_side=120))
    assert frame.image.size == (160, 120)


def test_wrong_files_say_what_is_wrong(tmp_path):
    (tmp_path / "text.mp4").write_text("not a video at all")
    with pytest.raises(VideoError, match="not a video PyAV can read"):
        list(sample_frames(tmp_path / "text.mp4"))
    with pytest.raises(VideoError, match="does not exist"):
        list(sample_frames(tmp_path / "missing.mp4"))
    Image.new("RGB", (8, 8)).save(tmp_path / "still.png")
    with pytest.raises(VideoError, match="still image, not a video"):
        list(sample_frames(tmp_path / "still.png"))
    with pytest.raises(ValueError, match="exactly one"):
        list(sample_frames(tmp_path / "still.png", every_seconds=1, every_frames=2))


def test_damaged_packets_are_skipped_and_a_cut_video_keeps_its_first_frames(tmp_path):
    frames = [Image.fromarray(np.full((48, 64, 3), 2 * i, np.uint8)) for i in range(120)]
    data = bytearray(write_video(tmp_path / "count.mp4", frames, fps=6, codec="mpeg4").read_bytes())
    for position in np.random.default_rng(0).integers(2000, len(data) - 2000, 60):
        data[position] ^= 0xFF
    (tmp_path / "damaged.mp4").write_bytes(data)
    report = {}
    assert len(list(sample_frames(tmp_path / "damaged.mp4", every_seconds=1.0, report=report))) == 20
    assert report["damaged_packets"] > 0
    whole = write_video(tmp_path / "count.mkv", frames, fps=6, codec="mpeg4").read_bytes()
    (tmp_path / "cut.mkv").write_bytes(whole[: len(whole) // 2])
    kept = list(sample_frames(tmp_path / "cut.mkv", every_seconds=1.0))
    assert 5 <= len(kept) < 20 and [f.time for f in kept] == pytest.approx(list(range(len(kept))))
    (tmp_path / "cut.mp4").write_bytes(bytes(data[: len(data) // 2]))  # an MP4 cut before its index
    with pytest.raises(VideoError, match="cut.mp4 is not a video PyAV can read .* cut short"):
        list(sample_frames(tmp_path / "cut.mp4"))


def test_the_timeline_follows_the_shape_that_changes_halfway(demo, changing):
    frames = embed_video(demo, changing, every_seconds=0.5, progress=False)
    result = classify_video(frames, build_head(demo, CLASSES))
    timeline = result.timeline
    assert len(timeline) == 8 and np.allclose(timeline[[f"prob_{c}" for c in CLASSES]].sum(axis=1), 1, atol=1e-4)
    # of the two shapes, every frame prefers the one it shows: the argmax flips at 2 s
    pair = timeline[["prob_red circle", "prob_blue star"]].to_numpy()
    assert (np.argmax(pair, axis=1) == (timeline["time"].to_numpy() >= 2)).all()
    # among all six classes, each half is mostly its own shape
    first, second = timeline[timeline["time"] < 2], timeline[timeline["time"] >= 2]
    assert (first["prediction"] == "red circle").mean() >= 0.75
    assert (second["prediction"] == "blue star").mean() >= 0.75
    # the video as a whole: frames won are counted, and the mean embedding gives one distribution
    won = result.summary.set_index("class")["frames_won"]
    assert won.sum() == 8 and won["red circle"] >= 3 and won["blue star"] >= 3
    assert result.summary["mean_embedding_probability"].sum() == pytest.approx(1, abs=1e-4)


def test_segments_of_a_timeline():
    timeline = pd.DataFrame({"time": [0, 1, 2, 3, 4], "prediction": list("aabba"),
                             "confidence": [0.9, 0.7, 0.6, 0.8, 0.5]})
    found = segments(timeline)
    # a run lasts until the next starts; the last one a typical step (1 s) after its sample
    assert found[["start", "end", "prediction", "frames"]].values.tolist() == [[0, 2, "a", 2], [2, 4, "b", 2],
                                                                                [4, 5, "a", 1]]
    assert found["mean_confidence"].tolist() == pytest.approx([0.8, 0.7, 0.5])


def test_video_command_prints_the_prediction_and_writes_the_timeline(demo, changing, tmp_path, capsys):
    code = main(["video", str(changing), "--classes", *CLASSES, "--model", "demo", "--every-seconds", "1",
                 "--out", str(tmp_path / "out"), "--quiet"])
    printed = capsys.readouterr().out
    assert code == 0
    assert "4.0 s, 4 fps, 112x96; 4 frames sampled every 1 s" in printed
    assert "the video as a whole: " in printed and "timeline:" in printed
    timeline = pd.read_csv(tmp_path / "out" / "timeline.csv")
    assert timeline["time"].tolist() == [0, 1, 2, 3]
    assert (timeline["prob_red circle"] > timeline["prob_blue star"]).tolist() == [True, True, False, False]
    assert (tmp_path / "out" / "timeline.png").stat().st_size > 0


def test_video_command_fails_in_one_line(tmp_path, capsys):
    (tmp_path / "x.mp4").write_bytes(b"\x00" * 100)
    assert main(["video", str(tmp_path / "x.mp4"), "--classes", "a", "b", "--model", "demo"]) == 2
    err = capsys.readouterr().err.strip()
    assert "x.mp4" in err and "\n" not in err


def test_display_rotation_is_applied_as_ffmpeg_does():
    class Frame:  # a decoded frame whose display matrix says -90 degrees (a phone held upright)
        width, height, rotation = 4, 2, -90

        def to_image(self, **_):
            image = Image.new("RGB", (4, 2), "white")
            image.putpixel((0, 0), (255, 0, 0))  # top left
            return image

    upright = decoding._picture(Frame(), max_side=None)
    assert upright.size == (2, 4)
    assert upright.getpixel((1, 0)) == (255, 0, 0)  # turned clockwise: top left goes to top right
