"""The video as a whole agrees with its frames: the class that won the most sampled frames (ties by mean frame
probability), said with its basis; segments run until the next sample, the last to the end of what was sampled."""
import numpy as np
import pandas as pd
import pytest
import torch

from clipnb.cli import main
from clipnb.demo import shapes_video
from clipnb.zeroshot.scoring import ZeroShotHead
from clipnb.tasks.video import VideoFrames, VideoResult, classify_video, sampled_until, segments

CLASSES = ["red circle", "blue star", "green square", "green star"]


def frames_showing(shown: list[int], every_seconds=0.5, duration=None) -> VideoFrames:
    """Sampled frames whose embedding is exactly the text embedding of the class they show (indexes into CLASSES)."""
    features = torch.eye(4)[shown]
    times = np.arange(len(shown)) * every_seconds
    return VideoFrames(path="shapes.mp4", times=times, indices=np.arange(len(shown)), features=features,
                       info={"every_seconds": every_seconds, "every_frames": None, "fps": 10.0, "duration": duration})


def head(scale: float = 100.0) -> ZeroShotHead:
    # "green star" lies between the three shapes the video shows: the average of its frames is closest to it
    text = torch.eye(4)
    text[3] = torch.nn.functional.normalize(torch.tensor([1.0, 1.0, 1.0, 0.0]), dim=0)
    return ZeroShotHead(classes=CLASSES, templates=["a photo of a {}"], ensemble="embedding",
                        text_features=text.unsqueeze(1), logit_scale=scale)


def test_the_video_is_the_class_that_won_the_most_frames_not_the_mean_embeddings():
    result = classify_video(frames_showing([0] * 5 + [1] * 4 + [2] * 4), head())
    summary = result.summary.set_index("class")
    assert summary["mean_embedding_probability"].idxmax() == "green star"  # what notebook 06 used to print
    assert summary.at["green star", "frames_won"] == 0
    assert result.prediction == "red circle" and result.frames_won == 5
    assert result.basis() == "red circle: won 5 of 13 sampled frames (38%)"
    assert result.basis("zh") == "red circle: 在13个采样帧中赢得5帧 (38%)"
    assert result.confidence == pytest.approx(summary.at["red circle", "mean_frame_probability"])
    assert list(result.summary["class"][:3]) == ["red circle", "blue star", "green square"]


def test_a_tie_in_frames_won_goes_to_the_higher_mean_frame_probability_and_says_so():
    frames = frames_showing([1, 1, 0, 0, 2])
    frames.features[2:4] = torch.nn.functional.normalize(torch.tensor([1.0, 0.3, 0.0, 0.0]), dim=0)  # a less sure red
    result = classify_video(frames, head(scale=10.0))  # a soft scale: the red frames' red is ~0.91, the blue's ~0.99
    assert result.prediction == "blue star" and result.frames_won == 2
    text = result.basis()
    mine, theirs = result.summary["mean_frame_probability"][:2]
    assert mine > theirs  # the tie first, then what broke it (tests/test_figures_truth.py: a three-way tie)
    assert text == ("tie: blue star and red circle won 2 of 5 sampled frames each; blue star leads by mean frame "
                    f"probability, {mine:.3f} against {theirs:.3f}")


def test_segments_run_until_the_next_sample_and_the_last_to_the_end_of_the_sampling():
    result = classify_video(frames_showing([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2], duration=6.0), head())
    found = result.segments()
    # the video's own samples at 0.0, 0.5, ..., 5.5 s: no gap between 1.5 and 2.0, the last runs to 6.0
    assert found[["start", "end", "prediction", "frames"]].values.tolist() == [
        [0.0, 2.0, "red circle", 4], [2.0, 4.0, "blue star", 4], [4.0, 6.0, "green square", 4]]
    assert (found["start"].iloc[1:].to_numpy() == found["end"].iloc[:-1].to_numpy()).all()


def test_the_last_segment_ends_one_step_after_the_last_sample_but_not_past_the_video():
    assert sampled_until(frames_showing([0, 1, 2], every_seconds=1.0, duration=10.0)) == 3.0  # --max-frames stopped it
    assert sampled_until(frames_showing([0, 1, 2], every_seconds=1.0, duration=2.4)) == 2.4
    by_frames = frames_showing([0, 1], every_seconds=0.5)
    by_frames.info.update(every_seconds=None, every_frames=5)  # every 5th frame at 10 fps: 0.5 s a step
    assert sampled_until(by_frames) == pytest.approx(1.0)
    timeline = pd.DataFrame({"time": [0.0, 2.0, 4.0], "prediction": ["a", "a", "b"], "confidence": [0.9, 0.8, 0.7]})
    assert segments(timeline)["end"].tolist() == [4.0, 6.0]  # unknown end: one median step after the last
    assert VideoResult(summary=pd.DataFrame(), timeline=timeline).segments()["end"].tolist() == [4.0, 6.0]


def test_the_video_command_prints_the_class_with_its_basis_and_gapless_segments(demo, tmp_path, capsys):
    video = shapes_video(tmp_path / "change.mp4", [("red circle", 2.0), ("blue star", 2.0)], fps=4, size=(112, 96))
    code = main(["video", str(video), "--classes", *CLASSES, "--model", "demo", "--every-seconds", "0.5",
                 "--out", str(tmp_path / "out"), "--quiet"])
    printed = capsys.readouterr().out
    assert code == 0
    timeline = pd.read_csv(tmp_path / "out" / "timeline.csv")
    won = timeline["prediction"].value_counts()
    line = next(line for line in printed.splitlines() if line.startswith("the video as a whole: "))
    summary = pd.read_csv(tmp_path / "out" / "summary.csv")
    name = summary["class"][0]
    assert won[name] == won.max() and f"won {won[name]} of 8 sampled frames" in line
    tie = (won == won.max()).sum() > 1  # 4 frames each: the line says it is a tie before naming the leader
    assert line.startswith("the video as a whole: " + ("tie: " if tie else f"{name}: "))
    assert list(summary.columns[:3]) == ["class", "frames_won", "mean_frame_probability"]
    spans = [line.split("s  ")[0].split("s - ") for line in printed.split("timeline:\n")[1].splitlines()
             if "s - " in line]
    starts, ends = [float(s) for s, _ in spans], [float(e) for _, e in spans]
    assert starts[1:] == ends[:-1] and ends[-1] == 4.0  # no gaps; the last sample at 3.5 s stands until 4.0
