"""The benchmark's inputs: real-size photos made from test_images/ with sensor-like noise (files and
decoding cost of phone photos). Its models with random weights come from `clipnb.testing`
(`vit_b32_checkpoint`, `random_open_clip_folder`)."""
from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageChops

from ..embed import pipeline as embedding
from ..data.images import find_images

LARGE = (4000, 3000)  # 12 MP, a phone's main camera
SMALL = (1632, 1224)  # 2 MP, a messaging app's copy
SOURCES = Path(__file__).resolve().parents[2] / "test_images"
NOISE_LEVEL = 6  # +-6 grey levels of noise: files of 3-4 MB at 12 MP, as from a phone


# ---- inputs -------------------------------------------------------------------------------------

def photo_plan(n: int, large_only: bool = False) -> list[tuple[str, tuple[int, int]]]:
    """(file name, size) of each benchmark photo: 3 of 4 are 12 MP (every third of those portrait),
    1 of 4 is 2 MP; with `large_only` all are 12 MP. Names carry the size."""
    plan = []
    for i in range(n):
        size = LARGE if large_only or i % 4 != 3 else SMALL
        if size == LARGE and i % 3 == 2:
            size = (size[1], size[0])
        plan.append((f"{i:05d}_{size[0]}x{size[1]}.jpg", size))
    return plan


def source_images(folder: Path = SOURCES) -> list[Path]:
    found = [p for p in find_images(folder) if p.suffix.lower() in (".jpg", ".jpeg", ".png")]
    if not found:
        raise FileNotFoundError(f"no source images in {folder}; the benchmark makes its photos from test_images/")
    return found


def make_photo(source: Path, size: tuple[int, int], index: int, target: Path) -> Path:
    """One photo: a crop of `source` that differs per index (so no two files are equal), resized to `size`,
    with a fixed noise pattern added (phone photos are noisy; smooth upscales would decode too fast)."""
    rng = np.random.default_rng(index)
    with Image.open(source) as img:
        img = img.convert("RGB")
        keep = rng.uniform(0.8, 1.0)
        width, height = img.size
        aspect = size[0] / size[1]
        crop_w = min(width, height * aspect) * keep
        crop_h = crop_w / aspect
        left = rng.uniform(0, width - crop_w)
        top = rng.uniform(0, height - crop_h)
        photo = img.resize(size, Image.Resampling.BICUBIC, box=(left, top, left + crop_w, top + crop_h))
    photo = ImageChops.add(photo, _noise(size), offset=-NOISE_LEVEL)
    tmp = target.with_suffix(".part")
    photo.save(tmp, format="JPEG", quality=90)
    os.replace(tmp, target)  # a photo is either complete or absent, so --photos folders can be reused
    return target


_NOISE: dict = {}


def _noise(size: tuple[int, int]) -> Image.Image:
    if size not in _NOISE:
        rng = np.random.default_rng(12345)
        _NOISE[size] = Image.fromarray(rng.integers(0, 2 * NOISE_LEVEL + 1, (size[1], size[0], 3), dtype=np.uint8))
    return _NOISE[size]


def _make_one(job):
    source, size, index, target = job
    return make_photo(Path(source), size, index, Path(target))


def make_photos(folder: str | os.PathLike, n: int, large_only: bool = False, processes: int | None = None,
                progress: bool = True) -> list[Path]:
    """A folder of `n` benchmark photos; photos already there (same name, so same size) are kept."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    sources = source_images()
    plan = photo_plan(n, large_only)
    paths = [folder / name for name, _ in plan]
    jobs = [(str(sources[i % len(sources)]), size, i, str(path))
            for i, ((name, size), path) in enumerate(zip(plan, paths)) if not path.is_file()]
    if jobs:
        from tqdm.auto import tqdm

        workers = processes or embedding.cpu_count()
        with ProcessPoolExecutor(workers) as pool, tqdm(total=len(jobs), desc="making photos", unit="img",
                                                         disable=not progress, dynamic_ncols=True) as bar:
            for _ in pool.map(_make_one, jobs, chunksize=4):
                bar.update(1)
    return paths
