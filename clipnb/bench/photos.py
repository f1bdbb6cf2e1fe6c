"""The benchmark's inputs: real-size photos made from test_images/ with sensor-like noise (files and
decoding cost of phone photos), and models with random weights in the formats users have: a
ViT-B/32-architecture checkpoint of openai-clip, or any open_clip architecture as an open_clip folder."""
from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageChops

from ..embed import pipeline as embedding
from ..data.images import find_images

LARGE = (4000, 3000)  # 12 MP, a phone's main camera
SMALL = (1632, 1224)  # 2 MP, a messaging app's copy
SOURCES = Path(__file__).resolve().parents[2] / "test_images"
# openai-clip's ViT-B/32 (embed_dim ... transformer_layers as in its released checkpoint)
VIT_B32 = dict(embed_dim=512, image_resolution=224, vision_layers=12, vision_width=768, vision_patch_size=32,
               context_length=77, vocab_size=49408, transformer_width=512, transformer_heads=8,
               transformer_layers=12)
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


def vit_b32_checkpoint(path: str | os.PathLike, seed: int = 0, half: bool = True) -> Path:
    """A state dict of openai-clip's ViT-B/32 architecture with random weights (fp16, as released; float32,
    605 MB, with `half=False`)."""
    from ..models.files import import_clip

    path = Path(path)
    if path.is_file():
        return path
    import_clip()
    from clip.model import CLIP

    torch.manual_seed(seed)
    model = CLIP(**VIT_B32)
    state = {k: v.half() if half and v.is_floating_point() else v for k, v in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path.with_suffix(".part"))
    os.replace(path.with_suffix(".part"), path)
    return path


# sentences for a tokenizer vocabulary of a few dozen pieces: enough to tokenize the benchmark's prompts
TOKENIZER_SENTENCES = ["a photo of a cat", "a photo of a dog", "a picture of a red car", "a blurry photo of a bird",
                       "a drawing of a small house", "an image of the sea at night", "two dogs playing in the snow",
                       "a cat sleeping on a green sofa", "this is a photo of a tree", "a close up photo of a flower"]


def train_sentencepiece(path: str | os.PathLike, sentences=TOKENIZER_SENTENCES, vocab_size: int = 48) -> Path:
    """A tiny unigram SentencePiece model laid out like T5's and SigLIP's (pad 0, end 1, unknown 2), trained
    in about a second: SigLIP-style models need one, and their real vocabularies come from the hub."""
    import io

    import sentencepiece

    buffer = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences), model_writer=buffer, vocab_size=vocab_size, hard_vocab_limit=False,
        model_type="unigram", character_coverage=1.0, pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
        pad_piece="<pad>", eos_piece="</s>", unk_piece="<unk>", num_threads=1, minloglevel=2)
    path = Path(path)
    path.write_bytes(buffer.getvalue())
    return path


def random_open_clip_folder(arch: str, folder: str | os.PathLike, seed: int = 0) -> Path:
    """An open_clip architecture with random weights, written as an open_clip folder (config, weights and,
    for models whose tokenizer comes from the hub, a tokenizer with a small vocabulary trained here), with
    the preprocessing of the architecture's first released tag. Load it as "open_clip:local-dir:FOLDER".
    The compute is the real model's; only the tokenizer's vocabulary is smaller."""
    import json

    import open_clip
    from safetensors.torch import save_file

    folder = Path(folder)
    if (folder / "open_clip_config.json").is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    config = open_clip.get_model_config(arch)
    if config is None:
        raise ValueError(f"open_clip has no architecture {arch!r}")
    tags = open_clip.list_pretrained_tags_by_model(arch)
    released = open_clip.get_pretrained_cfg(arch, tags[0]) if tags else {}
    preprocess = {k: released[k] for k in ("mean", "std", "interpolation", "resize_mode") if k in released}
    config = {**config, "quick_gelu": bool(released.get("quick_gelu", config.get("quick_gelu", False)))}
    if config["text_cfg"].get("hf_tokenizer_name"):
        from transformers import T5TokenizerFast

        spiece = train_sentencepiece(folder / "spiece.model")
        T5TokenizerFast(vocab_file=str(spiece), extra_ids=0, legacy=False,
                        model_max_length=config["text_cfg"].get("context_length", 64)).save_pretrained(folder)
    torch.manual_seed(seed)
    from ..models.families.hub import quiet_logging

    with quiet_logging():  # "no pretrained weights loaded": that is the point
        model = open_clip.create_model(arch, pretrained=None, pretrained_text=False,
                                       force_quick_gelu=config["quick_gelu"])
    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()},
              str(folder / "open_clip_model.safetensors"))
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": config, "preprocess_cfg": preprocess}))
    return folder

