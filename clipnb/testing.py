"""Models with random weights, written in the files a user of each family has: the one factory that the
tests, the benchmark and the scripts use (issue 25), so that no one else builds a model from a seed.

Their answers mean nothing: the weights are random, so a label or a score from one of these models says
only that the code ran. They have the real models' architectures, file layouts and (for the benchmark's)
compute, so a loader is checked against the family's own library, and a speed is a real model's speed,
without downloading any weights. Every call is deterministic given ``seed``.

- tiny models for tests, a few seconds each: `tiny_clip` (openai-clip, saved with `save_state_dict`),
  `save_open_clip_model`, `save_open_clip_siglip_model`, `save_hf_clip_model`, `save_hf_siglip_model`,
  `save_hf_chinese_clip_model`;
- full-size architectures: `vit_b32_checkpoint` (the benchmark's model), `random_open_clip_folder` (any
  open_clip architecture, `python -m clipnb.bench --pretrained random`), `save_open_clip_state_dict`,
  `save_cn_clip_checkpoint`.

Nothing runs on import; open_clip, transformers and cn_clip are imported inside the functions. A new model
family's test model goes here (docs/architecture.md).
"""
from __future__ import annotations

import contextlib
import gzip
import importlib.util
import io
import json
import os
from pathlib import Path

import torch

__all__ = ["CLIP_MEAN", "CLIP_STD", "EMBED_DIM", "IMAGE_SIZE", "PATCH_SIZE", "SIGLIP_MEAN", "SIGLIP_STD",
           "TOKENIZER_SENTENCES", "VIT_B32", "WIDTH", "random_open_clip_folder", "save_cn_clip_checkpoint",
           "save_hf_chinese_clip_model", "save_hf_clip_model", "save_hf_siglip_model", "save_open_clip_model",
           "save_open_clip_siglip_model", "save_open_clip_state_dict", "save_state_dict", "tiny_clip",
           "train_sentencepiece", "vit_b32_checkpoint"]

# Tiny sizes shared by the small models of the families.
IMAGE_SIZE = 32
PATCH_SIZE = 8
WIDTH = 32
EMBED_DIM = 32

# CLIP's (and Chinese-CLIP's) normalisation constants.
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
# SigLIP normalises to [-1, 1].
SIGLIP_MEAN = [0.5, 0.5, 0.5]
SIGLIP_STD = [0.5, 0.5, 0.5]

# openai-clip's ViT-B/32 (embed_dim ... transformer_layers as in its released checkpoint)
VIT_B32 = dict(embed_dim=512, image_resolution=224, vision_layers=12, vision_width=768, vision_patch_size=32,
               context_length=77, vocab_size=49408, transformer_width=512, transformer_heads=8,
               transformer_layers=12)

# sentences for a tokenizer vocabulary of a few dozen pieces: enough to tokenize the benchmark's prompts
TOKENIZER_SENTENCES = ["a photo of a cat", "a photo of a dog", "a picture of a red car", "a blurry photo of a bird",
                       "a drawing of a small house", "an image of the sea at night", "two dogs playing in the snow",
                       "a cat sleeping on a green sofa", "this is a photo of a tree", "a close up photo of a flower"]


def _seeded(seed: int, build, *args, **kwargs):
    """`build(*args, **kwargs)` with torch's generator seeded first: the weights depend on `seed` only."""
    torch.manual_seed(seed)
    return build(*args, **kwargs)


def _mkdir(folder) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _half(state: dict) -> dict:
    """Floating tensors in fp16, as released checkpoints are."""
    return {k: v.half() if v.is_floating_point() else v for k, v in state.items()}


# --------------------------------------------------------------------------- openai-clip


def _openai_clip(seed: int, **config):
    from .models.files import import_clip

    import_clip()
    from clip.model import CLIP

    return _seeded(seed, CLIP, **config)


def tiny_clip(seed: int = 0, resolution: int = 32, context_length: int = 77, resnet: bool = False):
    """A small openai-clip `CLIP` module (a ViT, or a ResNet with `resnet`) with random weights: the same code
    paths as the real ones. Write it with `save_state_dict`."""
    vision = dict(vision_layers=(1, 1, 1, 1), vision_width=16) if resnet else dict(vision_layers=2, vision_width=64,
                                                                                 vision_patch_size=8)
    model = _openai_clip(seed, embed_dim=32 if not resnet else 512, image_resolution=resolution,
                         context_length=context_length, vocab_size=49408, transformer_width=64, transformer_heads=1,
                         transformer_layers=2, vision_patch_size=vision.pop("vision_patch_size", None), **vision)
    return model.eval()


def save_state_dict(model, path: str | os.PathLike, half: bool = True) -> Path:
    """`model`'s plain state dict written with torch.save (fp16 unless `half=False`): openai-clip's layout,
    which `clipnb.load_model(path)` reads."""
    state = model.state_dict()
    torch.save(_half(state) if half else dict(state), path)
    return Path(path)


def vit_b32_checkpoint(path: str | os.PathLike, seed: int = 0, half: bool = True) -> Path:
    """A state dict of openai-clip's ViT-B/32 architecture with random weights (fp16, 300 MB, as released;
    float32, 605 MB, with `half=False`): the benchmark's model. A file already at `path` is kept."""
    path = Path(path)
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    save_state_dict(_openai_clip(seed, **VIT_B32), path.with_suffix(".part"), half=half)
    os.replace(path.with_suffix(".part"), path)  # a checkpoint is either complete or absent, so folders are reused
    return path


# --------------------------------------------------------------------------- tokenizers


def train_sentencepiece(path: str | os.PathLike, sentences=TOKENIZER_SENTENCES, vocab_size: int = 48) -> Path:
    """A tiny unigram SentencePiece model laid out like T5's and SigLIP's (pad 0, end 1, unknown 2), trained
    in about a second: SigLIP-style models need one, and their real vocabularies come from the hub."""
    import sentencepiece

    buffer = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences), model_writer=buffer, vocab_size=vocab_size, hard_vocab_limit=False,
        model_type="unigram", character_coverage=1.0, pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
        pad_piece="<pad>", eos_piece="</s>", unk_piece="<unk>", num_threads=1, minloglevel=2)
    path = Path(path)
    path.write_bytes(buffer.getvalue())
    return path


def _siglip_tokenizer(folder: Path, model_max_length: int = 64):
    """A transformers SiglipTokenizer over a freshly trained tiny SentencePiece model, and that model's file."""
    from transformers import SiglipTokenizer

    spm_file = train_sentencepiece(folder / "_tmp_spiece.model")
    return SiglipTokenizer(vocab_file=str(spm_file), model_max_length=model_max_length), spm_file


def _clip_bpe_vocab_and_merges() -> tuple[dict, list[tuple[str, str]]]:
    """openai-clip's SimpleTokenizer encoder (49408 entries) and BPE merges, built from its own BPE file."""
    spec = importlib.util.find_spec("clip") or importlib.util.find_spec("open_clip")  # both ship the same file
    bpe_path = Path(spec.origin).parent / "bpe_simple_vocab_16e6.txt.gz"

    # bytes_to_unicode, as in clip/simple_tokenizer.py
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(2**8):
        if b not in bs:
            bs.append(b)
            cs.append(2**8 + n)
            n += 1
    byte_chars = [chr(c) for c in cs]

    merges = gzip.open(bpe_path).read().decode("utf-8").split("\n")
    merges = [tuple(m.split()) for m in merges[1 : 49152 - 256 - 2 + 1]]
    vocab = byte_chars + [v + "</w>" for v in byte_chars] + ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    encoder = {tok: i for i, tok in enumerate(vocab)}
    assert len(encoder) == 49408, f"{bpe_path} gives {len(encoder)} tokens, not openai-clip's 49408"
    return encoder, merges


# --------------------------------------------------------------------------- open_clip


def _tiny_open_clip_cfg() -> dict:
    return {
        "embed_dim": EMBED_DIM,
        "vision_cfg": {"image_size": IMAGE_SIZE, "layers": 1, "width": WIDTH, "head_width": 16,
                       "patch_size": PATCH_SIZE},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": WIDTH, "heads": 2, "layers": 1},
    }


def _write_open_clip_dir(folder: Path, model, model_cfg: dict, preprocess_cfg: dict) -> None:
    """Weights (open_clip_model.safetensors) and open_clip_config.json, as open_clip's
    push_to_hf_hub.save_for_hf writes them: the folder open_clip reads as "local-dir:FOLDER"."""
    from safetensors.torch import save_file

    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()},
              str(folder / "open_clip_model.safetensors"))
    with (folder / "open_clip_config.json").open("w") as f:
        json.dump({"model_cfg": model_cfg, "preprocess_cfg": preprocess_cfg}, f, indent=2)


def save_open_clip_model(folder, seed: int = 0) -> tuple[str, Path]:
    """A tiny open_clip ViT CLIP as a `local-dir:` folder (open_clip_config.json + open_clip_model.safetensors);
    returns (its open_clip name "local-dir:FOLDER", the folder)."""
    import open_clip

    folder = _mkdir(folder)
    model_cfg = _tiny_open_clip_cfg()
    model = _seeded(seed, open_clip.CLIP, **model_cfg)
    preprocess_cfg = {"mean": CLIP_MEAN, "std": CLIP_STD, "interpolation": "bicubic", "resize_mode": "shortest"}
    _write_open_clip_dir(folder, model, model_cfg, preprocess_cfg)
    return f"local-dir:{folder.resolve()}", folder


def save_open_clip_state_dict(path, arch: str = "ViT-B-32", seed: int = 0) -> Path:
    """A full-size open_clip `arch` state dict (fp16, random weights) written with torch.save, like a fine-tuned
    .pt file. Load with ``open_clip.create_model_and_transforms(arch, pretrained=str(path))`` (or
    `clipnb.load_model("open_clip:ARCH", pretrained=path)`). ViT-B-32 is ~300 MB in fp16 and takes a few
    seconds to build and save."""
    import open_clip

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(_half(_seeded(seed, open_clip.create_model, arch, pretrained=None).state_dict()), path)
    return path


def save_open_clip_siglip_model(folder, seed: int = 0) -> tuple[str, Path]:
    """A tiny open_clip SigLIP-style model as a `local-dir:` folder with its HF (SentencePiece) tokenizer files
    beside the config; returns ("local-dir:FOLDER", the folder)."""
    import open_clip

    folder = _mkdir(folder)
    # open_clip's get_tokenizer("local-dir:...") loads HFTokenizer from the folder root
    # (never a subfolder), so the tokenizer files sit next to open_clip_config.json.
    tok, spm_file = _siglip_tokenizer(folder, model_max_length=64)
    tok.save_pretrained(str(folder))
    spm_file.unlink()
    model_cfg = {
        "embed_dim": EMBED_DIM,
        "init_logit_bias": -10,
        "custom_text": True,
        "vision_cfg": {"image_size": IMAGE_SIZE, "layers": 1, "width": WIDTH, "head_width": 16,
                       "patch_size": PATCH_SIZE, "no_ln_pre": True, "pool_type": "avg", "final_ln_after_pool": True},
        "text_cfg": {
            "context_length": 64,
            "vocab_size": len(tok),
            # open_clip reads the tokenizer from the local dir itself; the name records the origin.
            "hf_tokenizer_name": "timm/ViT-B-16-SigLIP",
            "tokenizer_kwargs": {"clean": "canonicalize"},
            "width": WIDTH, "heads": 2, "layers": 1, "no_causal_mask": True, "proj_bias": True,
            "pool_type": "last", "norm_kwargs": {"eps": 1e-6},
        },
    }
    model = _seeded(seed, open_clip.CustomTextCLIP, **{k: v for k, v in model_cfg.items() if k != "custom_text"})
    preprocess_cfg = {"mean": SIGLIP_MEAN, "std": SIGLIP_STD, "interpolation": "bicubic", "resize_mode": "squash"}
    _write_open_clip_dir(folder, model, model_cfg, preprocess_cfg)
    return f"local-dir:{folder.resolve()}", folder


def random_open_clip_folder(arch: str, folder: str | os.PathLike, seed: int = 0) -> Path:
    """An open_clip architecture with random weights, written as an open_clip folder (config, weights and,
    for models whose tokenizer comes from the hub, a tokenizer with a small vocabulary trained here), with
    the preprocessing of the architecture's first released tag. Load it as "open_clip:local-dir:FOLDER".
    The compute is the real model's; only the tokenizer's vocabulary is smaller. A folder already written
    is kept."""
    import open_clip

    folder = Path(folder)
    if (folder / "open_clip_config.json").is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    config = open_clip.get_model_config(arch)
    if config is None:
        raise ValueError(f"open_clip has no architecture {arch!r}: `python -m clipnb models --family open_clip` "
                         "lists them")
    tags = open_clip.list_pretrained_tags_by_model(arch)
    released = open_clip.get_pretrained_cfg(arch, tags[0]) if tags else {}
    preprocess = {k: released[k] for k in ("mean", "std", "interpolation", "resize_mode") if k in released}
    config = {**config, "quick_gelu": bool(released.get("quick_gelu", config.get("quick_gelu", False)))}
    if config["text_cfg"].get("hf_tokenizer_name"):
        from transformers import T5TokenizerFast

        spiece = train_sentencepiece(folder / "spiece.model")
        T5TokenizerFast(vocab_file=str(spiece), extra_ids=0, legacy=False,
                        model_max_length=config["text_cfg"].get("context_length", 64)).save_pretrained(folder)
    from .models.families.hub import quiet_logging

    with quiet_logging():  # "no pretrained weights loaded": that is the point
        model = _seeded(seed, open_clip.create_model, arch, pretrained=None, pretrained_text=False,
                        force_quick_gelu=config["quick_gelu"])
    _write_open_clip_dir(folder, model, config, preprocess)
    return folder


# --------------------------------------------------------------------------- transformers


def _tower(**extra) -> dict:
    """A tiny transformer tower's config (text or vision) for transformers: width, depth and heads shared
    by every HF model here, plus what differs (vocabulary, positions, image size, special tokens)."""
    return dict(hidden_size=WIDTH, intermediate_size=2 * WIDTH, num_hidden_layers=2, num_attention_heads=2, **extra)


def save_hf_clip_model(folder, seed: int = 0) -> Path:
    """A tiny transformers CLIPModel and CLIPProcessor (openai-clip's BPE tokenizer) written with
    save_pretrained: the folder `clipnb.load_model("hf:FOLDER")` reads."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    folder = _mkdir(folder)
    encoder, merges = _clip_bpe_vocab_and_merges()
    (folder / "vocab.json").write_text(json.dumps(encoder, ensure_ascii=False), encoding="utf-8")
    (folder / "merges.txt").write_text(
        "#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n", encoding="utf-8"
    )
    tokenizer = CLIPTokenizer(vocab=encoder, merges=merges, model_max_length=77)
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": IMAGE_SIZE},
        crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        image_mean=CLIP_MEAN,
        image_std=CLIP_STD,
    )
    config = CLIPConfig(
        text_config=_tower(vocab_size=49408, max_position_embeddings=77, pad_token_id=1, bos_token_id=49406,
                           eos_token_id=49407),
        vision_config=_tower(image_size=IMAGE_SIZE, patch_size=PATCH_SIZE),
        projection_dim=EMBED_DIM,
    )
    _seeded(seed, CLIPModel, config).eval().save_pretrained(str(folder))
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(str(folder))
    return folder


def save_hf_siglip_model(folder, seed: int = 0) -> Path:
    """A tiny transformers SiglipModel and SiglipProcessor (a tiny SentencePiece tokenizer) written with
    save_pretrained: the folder `clipnb.load_model("hf:FOLDER")` reads."""
    from transformers import SiglipConfig, SiglipImageProcessor, SiglipModel, SiglipProcessor

    folder = _mkdir(folder)
    tokenizer, spm_file = _siglip_tokenizer(folder, model_max_length=64)
    image_processor = SiglipImageProcessor(
        size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        image_mean=SIGLIP_MEAN,
        image_std=SIGLIP_STD,
    )
    config = SiglipConfig(
        text_config=_tower(vocab_size=len(tokenizer), max_position_embeddings=64, pad_token_id=tokenizer.pad_token_id,
                           eos_token_id=tokenizer.eos_token_id, bos_token_id=None),
        vision_config=_tower(image_size=IMAGE_SIZE, patch_size=PATCH_SIZE),
    )
    _seeded(seed, SiglipModel, config).eval().save_pretrained(str(folder))
    SiglipProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(str(folder))
    spm_file.unlink()
    return folder


def _cn_clip_vocab_file() -> Path:
    return Path(importlib.util.find_spec("cn_clip").origin).parent / "clip" / "vocab.txt"


def save_hf_chinese_clip_model(folder, seed: int = 0) -> Path:
    """A tiny transformers ChineseCLIPModel and ChineseCLIPProcessor (cn_clip's BERT vocabulary) written with
    save_pretrained: the folder `clipnb.load_model("hf:FOLDER")` reads."""
    from cn_clip.clip.bert_tokenizer import load_vocab
    from transformers import (
        BertTokenizer,
        ChineseCLIPConfig,
        ChineseCLIPImageProcessor,
        ChineseCLIPModel,
        ChineseCLIPProcessor,
    )

    folder = _mkdir(folder)
    # cn_clip's own reader (readline + strip): note str.splitlines() would split the
    # U+2028 entry at id 343 and shift every later id by one.
    vocab = dict(load_vocab(str(_cn_clip_vocab_file())))
    n_vocab = max(vocab.values()) + 1  # 21128
    tokenizer = BertTokenizer(vocab=vocab, do_lower_case=True, model_max_length=52)
    image_processor = ChineseCLIPImageProcessor(
        size={"shortest_edge": IMAGE_SIZE},
        crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        image_mean=CLIP_MEAN,
        image_std=CLIP_STD,
    )
    config = ChineseCLIPConfig(
        text_config=_tower(vocab_size=n_vocab, max_position_embeddings=64),
        vision_config=_tower(image_size=IMAGE_SIZE, patch_size=PATCH_SIZE),
        projection_dim=EMBED_DIM,
    )
    _seeded(seed, ChineseCLIPModel, config).eval().save_pretrained(str(folder))
    ChineseCLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(str(folder))
    return folder


# --------------------------------------------------------------------------- cn_clip


def save_cn_clip_checkpoint(path, seed: int = 0) -> tuple[str, Path]:
    """A random-weight cn_clip RN50@RBT3-chinese checkpoint ({"state_dict": {"module.*": fp16}, "epoch": ...},
    ~155 MB) as cn_clip's training saves it; returns ("RN50", its path). Load with
    ``cn_clip.clip.load_from_name(str(path), device="cpu", vision_model_name="RN50",
    text_model_name="RBT3-chinese", input_resolution=224)``."""
    from cn_clip.clip.utils import create_model

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.redirect_stdout(io.StringIO()):  # cn_clip prints the model's config
        model = _seeded(seed, create_model, "RN50@RBT3-chinese")
    state = {"module." + k: v for k, v in model.state_dict().items()}
    torch.save({"epoch": 0, "step": 0, "name": "random-rn50", "state_dict": state}, path)
    return "RN50", path
