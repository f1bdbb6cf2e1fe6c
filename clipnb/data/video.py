"""Decoding videos with PyAV: `video_info` and `sample_frames`, which yields (frame number, time, picture) for
every n seconds or every n frames, skipping damaged packets instead of stopping, and seeking instead of
decoding everything when the samples are far apart. Frames are scaled down by FFmpeg as they are decoded.
Classifying a video is clipnb.tasks.video.
"""
from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

SEEK_AFTER_SECONDS = 5.0  # samples further apart than this are reached by seeking, not by decoding every frame


class VideoError(ValueError):
    """A video that cannot be used: the message names the file and says what to do."""


def import_av():
    """PyAV, or VideoError saying how to install it."""
    try:
        import av
    except ImportError:  # pragma: no cover - av is a dependency
        raise VideoError("reading videos needs PyAV: pip install av") from None
    return av


@dataclass
class SampledFrame:
    """One decoded frame and where it sits in the video."""
    index: int  # frame number from the start (estimated from the time when seeking)
    time: float  # seconds from the start of the stream
    image: Image.Image


def video_info(path: str | os.PathLike) -> dict:
    """Duration, frame rate, size, codec and frame count of a video's first video stream (from its header).

    Returns:
        A dict (duration and fps are None when the header does not say). Raises VideoError when the file is
        missing or is not a readable video.
    """
    with _open(path) as container:
        stream = _video_stream(container, path)
        return _info(container, stream)


def _open(path):
    av = import_av()
    path = Path(path)
    if not path.exists():
        raise VideoError(f"video {path} does not exist")
    if path.is_dir():
        raise VideoError(f"{path} is a folder; give a video file")
    if not path.is_file():  # FFmpeg would wait forever on a FIFO, or read a device without end
        raise VideoError(f"{path} is not a regular file (a named pipe, device or socket); give a video file, or "
                         "save the stream to a file first")
    try:
        return av.open(str(path), "r")
    except av.error.FFmpegError as exc:
        raise VideoError(f"{path} is not a video PyAV can read ({_reason(exc)}): it may be damaged or cut "
                         "short; if it plays elsewhere, convert it with ffmpeg (for example to MP4, H.264)") from None


def _reason(exc) -> str:
    return getattr(exc, "strerror", None) or str(exc)


def _video_stream(container, path):
    if container.format.name == "image2" or container.format.name.endswith("_pipe"):
        raise VideoError(f"{path} is a still image, not a video; classify images with `python -m clipnb classify`")
    if not container.streams.video:
        raise VideoError(f"{path} has no video stream (only {len(container.streams)} other streams); "
                         "give a file with pictures")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"  # decode with frame and slice threads
    return stream


def _info(container, stream) -> dict:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    duration = None
    if stream.duration is not None and stream.time_base:
        duration = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = container.duration / 1_000_000
    codec = stream.codec_context
    return {"duration": duration, "fps": float(rate) if rate else None, "frames": int(stream.frames or 0),
            "width": int(codec.width), "height": int(codec.height), "codec": codec.name,
            "format": container.format.name}


def _start(stream) -> float:
    if stream.start_time is not None and stream.time_base:
        return float(stream.start_time * stream.time_base)
    return 0.0


def sample_frames(path: str | os.PathLike, every_seconds: float | None = 1.0, every_frames: int | None = None,
                  *, max_frames: int | None = None, max_side: int | None = 448,
                  report: dict | None = None) -> Iterator[SampledFrame]:
    """Yield frames of a video: the first frame at or after every multiple of `every_seconds`, or every
    `every_frames`-th frame (give one of the two). Pictures are RGB, display rotation applied, scaled so the
    shorter side is at most `max_side` (None keeps full size).

    Damaged packets are skipped and counted in `report["damaged_packets"]` (a dict the caller may pass).
    """
    if (every_seconds is None) == (every_frames is None):
        raise ValueError("give exactly one of every_seconds and every_frames")
    if every_seconds is not None and not 0 < every_seconds < math.inf:
        raise ValueError(f"every_seconds must be a finite number above 0, not {every_seconds}")
    if every_frames is not None and every_frames < 1:
        raise ValueError(f"every_frames must be at least 1, not {every_frames}")
    report = {} if report is None else report
    report.setdefault("damaged_packets", 0)
    report.setdefault("decoded", 0)
    with _open(path) as container:
        stream = _video_stream(container, path)
        report.update(_info(container, stream))
        if every_frames is not None:
            frames = _every_n_frames(container, stream, every_frames, report)
        else:
            frames = _every_n_seconds(container, stream, every_seconds, report)
        count = 0
        for index, time, frame in frames:
            if max_frames is not None and count >= max_frames:
                break
            yield SampledFrame(index=index, time=time, image=_picture(frame, max_side))
            count += 1
        report["sampled"] = count
    if count == 0:
        raise VideoError(f"no frame of {path} could be decoded ({report['damaged_packets']} damaged packets); "
                         "the file may be truncated or use a codec this FFmpeg lacks")


def _decoded(container, stream, report) -> Iterator:
    """Every decodable frame in order; a damaged packet is counted and skipped, not fatal."""
    av = import_av()
    for packet in container.demux(stream):
        try:
            frames = packet.decode()
        except av.error.FFmpegError:
            report["damaged_packets"] += 1
            continue
        for frame in frames:
            report["decoded"] += 1
            yield frame


def _time(frame, index: int, start: float, fps: float | None) -> float:
    if frame.time is not None:
        return float(frame.time) - start
    return index / fps if fps else float(index)


def _every_n_frames(container, stream, every_frames, report):
    start, fps = _start(stream), report.get("fps")
    for index, frame in enumerate(_decoded(container, stream, report)):
        if index % every_frames == 0:
            yield index, _time(frame, index, start, fps), frame


def _every_n_seconds(container, stream, every_seconds, report):
    """The first frame at or after each multiple of `every_seconds`.

    When the next sample is more than SEEK_AFTER_SECONDS ahead, seek to the keyframe before it instead of
    decoding every frame in between; if a seek lands before the previous sample (keyframes too far apart
    to gain anything), decode straight on from then on. Frame numbers after a seek are estimated from time.
    """
    av = import_av()
    start, fps = _start(stream), report.get("fps")
    frames = _decoded(container, stream, report)
    index, exact_index = -1, True
    target, previous = 0.0, -math.inf
    seeking = True
    while True:
        just_seeked = False
        if seeking and previous > -math.inf and target - previous > SEEK_AFTER_SECONDS:
            try:
                container.seek(int((start + target) / stream.time_base), stream=stream, backward=True,
                               any_frame=False)
                frames, just_seeked, exact_index = _decoded(container, stream, report), True, False
            except av.error.FFmpegError:
                seeking = False  # not seekable: decode straight on
        found = None
        for frame in frames:
            index += 1
            time = _time(frame, index, start, fps)
            if just_seeked:
                just_seeked = False
                if time <= previous:
                    seeking = False
            if time >= target - 1e-6 and time > previous:
                found = time, frame
                break
        if found is None:
            return
        time, frame = found
        if not exact_index and fps:
            index = int(round(time * fps))
        yield index, time, frame
        previous = time
        target = (math.floor(time / every_seconds + 1e-6) + 1) * every_seconds


def _picture(frame, max_side: int | None) -> Image.Image:
    width, height = frame.width, frame.height
    if max_side and min(width, height) > max_side:
        scale = max_side / min(width, height)
        width, height = max(1, round(width * scale)), max(1, round(height * scale))
        image = frame.to_image(width=width, height=height, interpolation="AREA")
    else:
        image = frame.to_image()
    rotation = int(getattr(frame, "rotation", 0) or 0)
    if rotation % 90 == 0 and rotation % 360:
        image = image.rotate(rotation, expand=True)  # counterclockwise, as the display matrix says
    return image
