"""Tiny random-weight models of each CLIP family, saved in the on-disk format a user has.

A helper module for tests (not a test file): every function writes one small model with
random weights into a folder, in the exact layout its own library reads, so a loader can be
checked against that library without downloading any weights.  Each call is deterministic
given ``seed`` and takes seconds (``save_open_clip_state_dict`` and
``save_cn_clip_checkpoint`` build full-size architectures and are slower, see their docs).

Nothing runs on import; the heavy libraries are imported inside the functions.
"""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import torch

# Tiny sizes shared by the small models.
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

def _tower(**extra) -> dict:
    """A tiny transformer tower's config (text or vision) for transformers: width, depth and heads shared
    by every HF model here, plus what differs (vocabulary, positions, image size, special tokens)."""
    return dict(hidden_size=WIDTH, intermediate_size=2 * WIDTH, num_hidden_layers=2, num_attention_heads=2, **extra)


def _mkdir(folder) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _siglip_tokenizer(folder: Path, model_max_length: int = 64):
    """A transformers SiglipTokenizer over a freshly trained tiny SentencePiece model."""
    from transformers import SiglipTokenizer

    from clipnb.bench.photos import train_sentencepiece

    spm_file = train_sentencepiece(folder / "_tmp_spiece.model")
    tok = SiglipTokenizer(vocab_file=str(spm_file), model_max_length=model_max_length)
    return tok, spm_file


# --------------------------------------------------------------------------- open_clip


def _tiny_open_clip_cfg() -> dict:
    return {
        "embed_dim": EMBED_DIM,
        "vision_cfg": {
            "image_size": IMAGE_SIZE,
            "layers": 1,
            "width": WIDTH,
            "head_width": 16,
            "patch_size": PATCH_SIZE,
        },
        "text_cfg": {
            "context_length": 77,
            "vocab_size": 49408,
            "width": WIDTH,
            "heads": 2,
            "layers": 1,
        },
    }


def _write_open_clip_dir(folder: Path, model, model_cfg: dict, preprocess_cfg: dict) -> None:
    """Write weights + open_clip_config.json as open_clip's push_to_hf_hub.save_for_hf does."""
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(folder / "open_clip_model.safetensors"))
    with (folder / "open_clip_config.json").open("w") as f:
        json.dump({"model_cfg": model_cfg, "preprocess_cfg": preprocess_cfg}, f, indent=2)


def save_open_clip_model(folder, seed: int = 0) -> tuple[str, Path]:
    """Write a tiny open_clip ViT CLIP as a `local-dir:` folder (open_clip_config.json + open_clip_model.safetensors)."""
    import open_clip

    folder = _mkdir(folder)
    model_cfg = _tiny_open_clip_cfg()
    torch.manual_seed(seed)
    model = open_clip.CLIP(**model_cfg)
    preprocess_cfg = {
        "mean": CLIP_MEAN,
        "std": CLIP_STD,
        "interpolation": "bicubic",
        "resize_mode": "shortest",
    }
    _write_open_clip_dir(folder, model, model_cfg, preprocess_cfg)
    return f"local-dir:{folder.resolve()}", folder


def save_open_clip_state_dict(path, arch: str = "ViT-B-32", seed: int = 0) -> Path:
    """Write a full-size open_clip `arch` state dict (fp16, random weights) with torch.save, like a fine-tuned .pt file.

    Load with ``open_clip.create_model_and_transforms(arch, pretrained=str(path))``.  ViT-B-32
    is ~300 MB in fp16 and takes a few seconds to build and save.
    """
    import open_clip

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = open_clip.create_model(arch, pretrained=None)
    state = {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    torch.save(state, path)
    return path


def save_open_clip_siglip_model(folder, seed: int = 0) -> tuple[str, Path]:
    """Write a tiny open_clip SigLIP-style model as a `local-dir:` folder with its HF (SentencePiece) tokenizer files."""
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
        "vision_cfg": {
            "image_size": IMAGE_SIZE,
            "layers": 1,
            "width": WIDTH,
            "head_width": 16,
            "patch_size": PATCH_SIZE,
            "no_ln_pre": True,
            "pool_type": "avg",
            "final_ln_after_pool": True,
        },
        "text_cfg": {
            "context_length": 64,
            "vocab_size": len(tok),
            # open_clip reads the tokenizer from the local dir itself; the name records the origin.
            "hf_tokenizer_name": "timm/ViT-B-16-SigLIP",
            "tokenizer_kwargs": {"clean": "canonicalize"},
            "width": WIDTH,
            "heads": 2,
            "layers": 1,
            "no_causal_mask": True,
            "proj_bias": True,
            "pool_type": "last",
            "norm_kwargs": {"eps": 1e-6},
        },
    }
    torch.manual_seed(seed)
    model = open_clip.CustomTextCLIP(**{k: v for k, v in model_cfg.items() if k != "custom_text"})
    preprocess_cfg = {
        "mean": SIGLIP_MEAN,
        "std": SIGLIP_STD,
        "interpolation": "bicubic",
        "resize_mode": "squash",
    }
    _write_open_clip_dir(folder, model, model_cfg, preprocess_cfg)
    return f"local-dir:{folder.resolve()}", folder


# --------------------------------------------------------------------------- transformers


def _clip_bpe_vocab_and_merges() -> tuple[dict, list[tuple[str, str]]]:
    """openai-clip's SimpleTokenizer encoder (49408 entries) and BPE merges, built from its own BPE file."""
    import importlib.util

    spec = importlib.util.find_spec("clip")
    if spec is not None and spec.origin:
        bpe_path = Path(spec.origin).parent / "bpe_simple_vocab_16e6.txt.gz"
    else:  # open_clip ships the same file
        spec = importlib.util.find_spec("open_clip")
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
    merges = merges[1 : 49152 - 256 - 2 + 1]
    merges = [tuple(m.split()) for m in merges]
    vocab = byte_chars + [v + "</w>" for v in byte_chars]
    vocab += ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    encoder = {tok: i for i, tok in enumerate(vocab)}
    assert len(encoder) == 49408
    return encoder, merges


def save_hf_clip_model(folder, seed: int = 0) -> Path:
    """Write a tiny transformers CLIPModel + CLIPProcessor (openai BPE tokenizer) with save_pretrained."""
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
    torch.manual_seed(seed)
    model = CLIPModel(config).eval()
    model.save_pretrained(str(folder))
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(str(folder))
    return folder


def save_hf_siglip_model(folder, seed: int = 0) -> Path:
    """Write a tiny transformers SiglipModel + SiglipProcessor (tiny SentencePiece tokenizer) with save_pretrained."""
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
    torch.manual_seed(seed)
    model = SiglipModel(config).eval()
    model.save_pretrained(str(folder))
    SiglipProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(str(folder))
    spm_file.unlink()
    return folder


def _cn_clip_vocab_file() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("cn_clip")
    return Path(spec.origin).parent / "clip" / "vocab.txt"


def save_hf_chinese_clip_model(folder, seed: int = 0) -> Path:
    """Write a tiny transformers ChineseCLIPModel + ChineseCLIPProcessor (cn_clip's BERT vocab) with save_pretrained."""
    from transformers import (
        BertTokenizer,
        ChineseCLIPConfig,
        ChineseCLIPImageProcessor,
        ChineseCLIPModel,
        ChineseCLIPProcessor,
    )

    folder = _mkdir(folder)
    from cn_clip.clip.bert_tokenizer import load_vocab

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
    torch.manual_seed(seed)
    model = ChineseCLIPModel(config).eval()
    model.save_pretrained(str(folder))
    ChineseCLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(str(folder))
    return folder


# --------------------------------------------------------------------------- cn_clip


def save_cn_clip_checkpoint(path, seed: int = 0) -> tuple[str, Path]:
    """Write a random-weight cn_clip RN50@RBT3-chinese checkpoint ({"state_dict": {"module.*": fp16}}) as cn_clip training saves it.

    Load with ``cn_clip.clip.load_from_name(str(path), device="cpu", vision_model_name="RN50",
    text_model_name="RBT3-chinese", input_resolution=224)``.
    """
    import contextlib

    from cn_clip.clip.utils import create_model

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    with contextlib.redirect_stdout(io.StringIO()):
        model = create_model("RN50@RBT3-chinese")
    state = {"module." + k: v for k, v in model.state_dict().items()}
    torch.save({"epoch": 0, "step": 0, "name": "random-rn50", "state_dict": state}, path)
    return "RN50", path
