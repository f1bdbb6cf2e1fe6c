"""Zero-shot classification of a video: sample frames with PyAV, embed them, classify every frame, and call
the video the class that won the most sampled frames (a per-frame timeline of class probabilities shows
where each class is seen; the mean frame embedding's class, 视频分类 as the features averaged, is kept beside).

Decoding is the edge (clipnb.data.video): `sample_frames` yields (frame number, time, picture) for every n
seconds or every n frames; frames are scaled down by FFmpeg as they are decoded and embedded here in chunks,
so a long video never sits in memory. `classify_video` is pure: frame embeddings and a zero-shot head in, tables out.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from PIL import Image

from ..embed.runner import embed_images
from ..progress import progress_bar
from ..data.images import THUMBNAIL_SIDE
from ..data.video import SampledFrame, VideoError, sample_frames, video_info  # noqa: F401 (video_info: also here, as before)
from ..models.loading import ClipModel
from ..zeroshot.schema import prob_columns
from ..zeroshot.scoring import ZeroShotHead
from ..words import word

THUMBNAIL_SIZE = THUMBNAIL_SIDE
CHUNK = 128  # frames embedded per call, bounding memory


class Thumbnails(Sequence):
    """Small copies of sampled frames, kept as JPEG bytes (a few KB each, so an hour of frames fits in
    memory) and decoded to PIL images when read."""

    def __init__(self, size: int = THUMBNAIL_SIZE, quality: int = 85):
        self.size, self.quality, self._data = size, quality, []

    def append(self, image: Image.Image) -> None:
        """Keep a small JPEG of one frame."""
        import io

        small = image.convert("RGB")
        small.thumbnail((self.size, self.size))
        buffer = io.BytesIO()
        small.save(buffer, format="JPEG", quality=self.quality)
        self._data.append(buffer.getvalue())

    def __getitem__(self, index):
        import io

        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        with Image.open(io.BytesIO(self._data[index])) as image:
            return image.convert("RGB")

    def __len__(self) -> int:
        return len(self._data)


@dataclass
class VideoFrames:
    """Sampled frames of one video and their embeddings."""

    path: str
    times: np.ndarray  # seconds, one per sampled frame
    indices: np.ndarray  # frame numbers
    features: torch.Tensor  # [frames, D], L2-normalised
    thumbnails: Sequence = field(default_factory=list)  # small pictures for display (PIL images on access)
    info: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.times)


def embed_video(model: ClipModel, path: str | os.PathLike, every_seconds: float | None = 1.0,
                every_frames: int | None = None, *, max_frames: int | None = None, batch_size: int | None = None,
                thumbnails: bool = True, progress: bool = True) -> VideoFrames:
    """Sample a video's frames and embed them in chunks (memory stays bounded for long videos).

    Args:
        model: the model whose image encoder is used.
        path: the video file (anything FFmpeg reads).
        every_seconds: sample one frame every this many seconds (None with `every_frames`).
        every_frames: sample every n-th frame instead.
        max_frames: stop after this many samples.
        batch_size: frames per forward pass.
        thumbnails: keep small pictures of the frames for display.
        progress: show a progress bar.

    Returns:
        VideoFrames: the sampled frames' times, frame numbers, embeddings [frames, D], thumbnails and facts
        (`info`, for example damaged packets skipped). Raises VideoError when the file cannot be read.
    """
    if every_frames is not None:
        every_seconds = None
    report: dict = {}
    times, indices, features, small = [], [], [], Thumbnails()
    pending: list[SampledFrame] = []
    max_side = max(2 * model.input_resolution, THUMBNAIL_SIZE)

    def flush():
        embedded = embed_images(model, [f.image for f in pending], num_workers=0, progress=False,
                                batch_size=batch_size)
        features.append(embedded.features)
        for f in pending:
            times.append(f.time)
            indices.append(f.index)
            if thumbnails:
                small.append(f.image)
        pending.clear()

    bar = progress_bar(None, progress, "sampling video frames", unit="frame")
    for frame in sample_frames(path, every_seconds, every_frames, max_frames=max_frames, max_side=max_side,
                               report=report):
        pending.append(frame)
        bar.update(1)
        if len(pending) >= CHUNK:
            flush()
    if pending:
        flush()
    bar.close()
    report.update({"every_seconds": every_seconds, "every_frames": every_frames})
    return VideoFrames(path=str(path), times=np.array(times, dtype=float), indices=np.array(indices, dtype=np.int64),
                       features=torch.cat(features), thumbnails=small, info=report)


@dataclass
class VideoResult:
    """The video's classification and its per-frame timeline.

    The video's class (`prediction`) is the class that won the most sampled frames, ties broken by the higher
    mean probability over all frames: what the frames say, printed with its basis by `basis()`. The summary
    also keeps the class of the mean frame embedding (视频分类 as the frames' features averaged, the
    `mean_embedding_*` columns) for reference: it can name a class that wins no frame at all.
    """

    summary: pd.DataFrame  # class, frames_won, mean_frame_probability, mean_embedding_score/_probability; best first
    timeline: pd.DataFrame  # frame, time, prediction, confidence, prob_<class> ... (see clipnb.zeroshot.schema)
    frames: VideoFrames | None = None
    templates: list[str] = field(default_factory=list)  # the prompts and ensembling the classes were scored with
    ensemble: str = "embedding"

    @property
    def prediction(self) -> str:
        """The video's class: the one that won the most sampled frames (ties: the higher mean frame probability)."""
        return str(self.summary["class"].iloc[0])

    @property
    def confidence(self) -> float:
        """The mean probability of `prediction` over the sampled frames."""
        return float(self.summary["mean_frame_probability"].iloc[0])

    @property
    def frames_won(self) -> int:
        """How many sampled frames `prediction` won."""
        return int(self.summary["frames_won"].iloc[0])

    def basis(self, lang: str = "en") -> str:
        """The video's class with what it rests on, in `lang`: "red circle: won 12 of 30 sampled frames (40%)";
        when other classes won as many frames, the tie first and then the mean frame probability that broke it
        ("tie: red circle and blue star won 4 of 12 frames each; red circle leads by mean frame probability,
        0.328 against 0.327"), with the decimals it takes to see the lead; a tie there too says so and that the
        class list's order decided."""
        sampled = len(self.timeline)
        tied = self.summary[self.summary["frames_won"] == self.frames_won]
        if len(tied) == 1:
            return word("video.overall", lang, name=self.prediction, won=self.frames_won, frames=sampled,
                        share=self.frames_won / max(sampled, 1))
        names = [str(name) for name in tied["class"]]
        listed = ("、" if lang == "zh" else ", ").join(names[:-1]) + word("language.and", lang) + names[-1]
        mine, theirs = self.confidence, float(tied["mean_frame_probability"].iloc[1])
        # as many decimals as show the lead (0.333 against 0.333 is no lead to a reader), up to float32's ~7
        decimals = next((d for d in range(3, 8) if f"{mine:.{d}f}" != f"{theirs:.{d}f}"), None)
        if decimals is None:  # equal as far as float32 tells: the stable sort kept the class list's order
            return word("video.tie_exact", lang, names=listed, won=self.frames_won, frames=sampled,
                        name=self.prediction, mine=f"{mine:.3f}")
        return word("video.tie_first", lang, names=listed, won=self.frames_won, frames=sampled,
                    name=self.prediction, mine=f"{mine:.{decimals}f}", theirs=f"{theirs:.{decimals}f}")

    def segments(self) -> pd.DataFrame:
        """Runs of frames with the same prediction, each until the next run starts and the last until the end
        of what was sampled (see `segments` and `sampled_until`)."""
        return segments(self.timeline, end=sampled_until(self.frames) if self.frames is not None else None)


def sampled_until(frames: VideoFrames) -> float | None:
    """Where the last sample's stretch of the video ends, in seconds: one sampling step (every_seconds, or
    every_frames at the frame rate) after the last sample, but not past the video's end (its duration);
    None when neither is known."""
    if len(frames) == 0:
        return None
    info, last = frames.info, float(frames.times[-1])
    step = info.get("every_seconds")
    if step is None and info.get("every_frames") and info.get("fps"):
        step = info["every_frames"] / info["fps"]
    duration = info.get("duration")
    ends = [last + step] if step else []
    ends += [duration] if duration and duration > last else []
    return min(ends) if ends else None


def classify_video(frames: VideoFrames, head: ZeroShotHead) -> VideoResult:
    """Classify a video from its sampled frames.

    Args:
        frames: the embedded frames (`embed_video`).
        head: the classes' text embeddings (`build_head`).

    Returns:
        A VideoResult: `summary` (per class: the frames it won, its mean probability over the frames, and the
        score and probability of the renormalised mean frame embedding; the class that won the most frames
        first, ties by mean frame probability) and `timeline` (each frame's prediction and probabilities).
    """
    if len(frames) == 0:
        raise VideoError(f"no frames were sampled from {frames.path}")
    mean = torch.nn.functional.normalize(frames.features.float().mean(dim=0, keepdim=True), dim=-1)
    video_scores = head.scores(mean)[0]
    video_probs = head.probabilities(video_scores[None])[0]
    frame_scores = head.scores(frames.features)
    frame_probs = head.probabilities(frame_scores).numpy()
    best = frame_probs.argmax(axis=1)
    classes = list(head.classes)
    timeline = pd.DataFrame({"frame": frames.indices, "time": frames.times,
                             "prediction": [classes[b] for b in best],
                             "confidence": frame_probs[np.arange(len(best)), best]})
    timeline = pd.concat([timeline, pd.DataFrame(frame_probs, columns=prob_columns(classes))], axis=1)
    won = pd.Series([classes[b] for b in best]).value_counts()
    summary = pd.DataFrame({"class": classes, "frames_won": [int(won.get(c, 0)) for c in classes],
                            "mean_frame_probability": frame_probs.mean(axis=0),
                            "mean_embedding_score": video_scores.numpy(),
                            "mean_embedding_probability": video_probs.numpy()})
    summary = summary.sort_values(["frames_won", "mean_frame_probability"], ascending=False,
                                  kind="stable").reset_index(drop=True)
    return VideoResult(summary=summary, timeline=timeline, frames=frames, templates=list(head.templates),
                       ensemble=head.ensemble)


def segments(timeline: pd.DataFrame, end: float | None = None) -> pd.DataFrame:
    """Runs of consecutive frames with the same prediction: start, end, class, frames and mean confidence.

    A run lasts until the next one starts (a sample stands for the stretch up to the next sample), so the runs
    leave no gaps; the last one ends at `end` (the end of what was sampled, `sampled_until`), or, not given, one
    typical step (the median gap between samples) after the last sample."""
    if timeline.empty:
        return pd.DataFrame(columns=["start", "end", "prediction", "frames", "mean_confidence"])
    times = timeline["time"].to_numpy(dtype=float)
    if end is None:
        end = times[-1] + (float(np.median(np.diff(times))) if len(times) > 1 else 0.0)
    run = (timeline["prediction"] != timeline["prediction"].shift()).cumsum()
    grouped = timeline.groupby(run, sort=False)
    starts = grouped["time"].first().to_numpy(dtype=float)
    return pd.DataFrame({"start": starts, "end": np.append(starts[1:], max(end, times[-1])),
                         "prediction": grouped["prediction"].first().to_numpy(),
                         "frames": grouped.size().to_numpy(),
                         "mean_confidence": grouped["confidence"].mean().to_numpy()})
