"""Shared fixtures and helpers: tiny CLIP models built here and saved as real checkpoint files (no downloads), the
demo model and generated shapes, the committed test photos, benchmark photos, and small image folders."""
import io
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
TEST_IMAGES = ROOT / "test_images"

# keep the suite quiet and off the user's cache
os.environ.setdefault("CLIPNB_CACHE_DIR", str(ROOT / ".pytest_cache" / "clipnb-cache"))
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

from clipnb.data.images import is_image_name  # noqa: E402 (after the cache folder is set)

from clipnb.testing import save_state_dict, tiny_clip  # noqa: E402,F401 (the one factory; tests import them from here)

PHOTOS = sorted(p for p in TEST_IMAGES.iterdir() if is_image_name(p))  # the committed test photos


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    """The largest absolute difference between two tensors."""
    return float((a - b).abs().max())


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    return save_state_dict(tiny_clip(), tmp_path_factory.mktemp("models") / "tiny-vit.pt")


@pytest.fixture(scope="session")
def tiny_model(tiny_checkpoint):
    from clipnb import load_model

    return load_model(tiny_checkpoint, device="cpu")


@pytest.fixture()
def cache(tmp_path):
    from clipnb import EmbeddingCache

    cache = EmbeddingCache(tmp_path / "cache")
    yield cache
    cache.close()


@pytest.fixture(scope="session")
def demo():
    """The demo CLIP model (trained on coloured shapes): a model that knows its classes, so a mix-up of
    labels, rows or classes shows as a wrong number."""
    from clipnb import load_model
    from demo_inputs import require_demo

    require_demo()
    return load_model("demo", device="cpu")


@pytest.fixture(scope="session")
def shapes_folder(tmp_path_factory) -> Path:
    """A labelled folder of generated shapes: all 48 classes, 2 images each."""
    from demo_inputs import write_shapes

    return write_shapes(tmp_path_factory.mktemp("labelled") / "shapes", per_class=2)


def load_script(name: str):
    """A script of scripts/ loaded as a module (they are not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def photo_folder(tmp_path_factory):
    """4 benchmark photos (4000x3000, 4000x3000, 3000x4000, 1632x1224) and a random ViT-B/32 checkpoint."""
    from clipnb import bench

    folder = tmp_path_factory.mktemp("bench-photos")
    bench.make_photos(folder, 4, processes=2, progress=False)
    bench.vit_b32_checkpoint(folder / "vit-b32-random.pt")
    return folder


def distinct_pngs(folder: Path, count: int, size: int = 48) -> Path:
    """`count` PNGs that decode to one picture but differ in bytes (a tail after IEND), so each is its
    own cache entry; cheap to make."""
    folder.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)).save(buffer, "PNG")
    for i in range(count):
        (folder / f"{i:04d}.png").write_bytes(buffer.getvalue() + i.to_bytes(4, "big"))
    return folder


def colour_pngs(folder: Path) -> Path:
    """Three small plain images, red, blue and green (the panels' tests): `folder` with red.png, blue.png and
    green.png."""
    for name, colour in {"red": (230, 20, 20), "blue": (20, 40, 230), "green": (30, 190, 40)}.items():
        Image.new("RGB", (40, 30), colour).save(folder / f"{name}.png")
    return folder


def csv_parts(folder: Path) -> list[Path]:
    """The temporary files (*.part) an atomic write leaves in a folder."""
    return [p for p in folder.iterdir() if p.name.endswith(".part")]


@pytest.fixture(scope="session")
def hostile(tmp_path_factory):
    """(root, {name: expected error}): a folder of hostile image files (see hostile_images.py)."""
    from hostile_images import build_hostile_folder

    root = tmp_path_factory.mktemp("hostile") / "photos from everywhere"
    return root, build_hostile_folder(root)


@pytest.fixture(scope="session")
def hostile_results(hostile, tiny_model, tmp_path_factory):
    """The hostile folder classified (cat, dog) by the tiny model, recursively, through a cache."""
    import faulthandler

    import clipnb

    root, _ = hostile
    faulthandler.dump_traceback_later(120, exit=True)  # a file that hangs the run fails the suite, loudly
    try:
        cache = clipnb.EmbeddingCache(tmp_path_factory.mktemp("hostile-cache"))
        results = clipnb.classify(root, ["cat", "dog"], model=tiny_model, recursive=True, cache=cache, batch_size=4,
                                  num_workers=1, progress=False)
        cache.close()
    finally:
        faulthandler.cancel_dump_traceback_later()
    return results


@pytest.fixture()
def no_model_loading(monkeypatch):
    """Loading a model (through clipnb.models.loading or clipnb.classify) fails the test: parameters must be checked first."""
    import sys

    import clipnb.models.loading

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the parameters were checked")
    monkeypatch.setattr(clipnb.models.loading, "load_model", refuse)
    monkeypatch.setattr(sys.modules["clipnb.zeroshot.results"], "load_model", refuse)


def run_python(code: str, timeout: int = 120):
    """Run `python -c code` in a fresh process from the repository root: what a new session imports and prints."""
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=timeout)



# Panels prepare other template sets' prompts in the background (clipnb.prepare_ahead): off by default in the test
# suite, kernels it starts included, since tests count the prompts a shared model remembers. Tests of that
# preparing turn it on per panel (tests/test_prepare_ahead.py).
os.environ.setdefault("CLIPNB_PREPARE_AHEAD", "0")
