"""openai-clip's models: its nine official names, checkpoint files (plain state dicts of clip.model.CLIP, or
OpenAI's official TorchScript archives, known by their SHA-256), and "demo", clipnb's own small model trained on
coloured shapes."""
from __future__ import annotations

import io
import os
import pickle
import re
import urllib.error
import warnings
from pathlib import Path

import torch

from ..files import (OFFICIAL_TORCHSCRIPT, check_checkpoint, import_clip, load_state_dict, official_torchscript_bytes,
                     reason)
from ..loading import (DEMO_NAME, ClipModel, ModelError, ModelListing, Vocabulary, model_dtype,
                      unknown_name_message, weights_sha256)

FAMILY = "openai"
EXAMPLE = "ViT-B/32"
SUMMARY = "openai-clip's official models (2021), checkpoint files of clip.model.CLIP, and the offline demo"
DEMO_PATH = Path(__file__).resolve().parents[2] / "assets" / "demo.pt"
# The languages each model's text side was trained on (ClipModel.languages): OpenAI trained its models on
# English captions; the demo on clipnb's English and Chinese captions ("红色圆形"). A bare checkpoint file may
# be anything: None.
OFFICIAL_LANGUAGES = ("en",)
DEMO_LANGUAGES = ("en", "zh")


class OpenAITokenizer:
    """openai-clip's BPE tokenizer: a start token, the text, an end token, zero padding to the context."""

    def __init__(self, context_length: int):
        self.context_length = context_length

    def __call__(self, texts: list[str], truncate: bool = False) -> torch.Tensor:
        return import_clip().tokenize(list(texts), context_length=self.context_length, truncate=truncate)

    def count(self, text: str) -> int:
        # the BPE tokenizer clip.tokenize itself uses: building another one for each model cost 0.15 s
        return len(import_clip().clip._tokenizer.encode(text)) + 2  # start and end tokens


class _ShapesVocabulary(Vocabulary):
    """The demo's vocabulary: as `Vocabulary`, with Chinese class names ("红色圆形", written without a space)
    read as the known Chinese words they are made of."""

    def knows(self, name: str) -> bool:
        chinese = [w for w in self.words if not w.isascii()]
        pattern = "|".join(sorted(map(re.escape, chinese), key=len, reverse=True))
        return super().knows(re.sub(f"({pattern})", r" \1 ", name) if pattern else name)


def demo_vocabulary() -> Vocabulary:
    """The demo model's world: every colour and shape its training images and captions show (the 48
    classes, the held-out pairs among them, and the extra colours and shapes it saw besides), and the
    Chinese words of the class colours and shapes (a Chinese class is known when it is a known colour
    followed by a known shape, "红色圆形"; the extra colours and shapes are English-only)."""
    # the generator's word lists only: numpy and Pillow, no torch
    from ..demo_vocabulary import ALL_COLOURS, ALL_SHAPES, COLOURS_ZH, SHAPES_ZH

    return _ShapesVocabulary(subject="coloured shapes",
                             groups={"colours": ALL_COLOURS, "shapes": ALL_SHAPES,
                                     "colours in Chinese": COLOURS_ZH, "shapes in Chinese": SHAPES_ZH},
                             examples=("red circle", "blue star", "红色圆形"),
                             fillers=Vocabulary.fillers + ("的",))  # 红色的圆形: a red circle too


def load(name: str, pretrained: str | None, device: torch.device, download_root: Path | None) -> ClipModel:
    """An official name, "demo", or a checkpoint file; openai-clip's names say their weights themselves."""
    clip = import_clip()
    if pretrained is not None:
        raise ModelError(f"model {name!r} takes no separate weights (pretrained={pretrained!r}): an openai-clip "
                         "name says its weights itself; give a checkpoint file as the model instead, or use "
                         "open_clip:ARCH with pretrained for other weights")
    if name == DEMO_NAME:
        if not DEMO_PATH.is_file():
            raise ModelError(f"the demo model's checkpoint is missing: expected {DEMO_PATH}; "
                             "train it with `python scripts/train_demo.py` or reinstall clipnb")
        model = _build(read_checkpoint(DEMO_PATH)[0], DEMO_NAME, device, weights_sha256(DEMO_PATH), str(DEMO_PATH),
                       DEMO_LANGUAGES)
        model.vocabulary = demo_vocabulary()
        return model
    if name in clip.available_models():
        path = _fetch_official(name, download_root)
        # the official file names carry their own SHA-256 (checked by openai-clip's download)
        fingerprint = clip.clip._MODELS[name].split("/")[-2]
        return _build(read_checkpoint(path, fingerprint)[0], name, device, fingerprint, str(path), OFFICIAL_LANGUAGES)
    path = Path(os.path.expanduser(name))
    if path.is_file():
        fingerprint = weights_sha256(path)
        return _build(read_checkpoint(path, fingerprint)[0], path.name, device, fingerprint, str(path))
    if path.is_dir():
        raise ModelError(f"model {name!r} is a folder; give a checkpoint file (.pt) or a model name "
                         "(a Hugging Face save_pretrained folder is hf:FOLDER)")
    known = [row.name for row in listing(None)]
    raise ModelError(unknown_name_message("model", name, known,
                                          f"(not a file, and not one of {', '.join(known)}; "
                                          "`python -m clipnb models` lists every family's models)"))


def listing(download_root: Path | None) -> list[ModelListing]:
    """openai-clip's names (on disk when the official file is in the download folder) and "demo"."""
    clip = import_clip()
    rows = [ModelListing(FAMILY, name, on_disk=(name,) if official_checkpoint_path(name, download_root).is_file() else ())
            for name in clip.available_models()]
    return rows + [ModelListing(FAMILY, DEMO_NAME, on_disk=(DEMO_NAME,) if DEMO_PATH.is_file() else ())]


def default_download_root() -> Path:
    """Where official weights are cached by default: ~/.cache/clip, as openai-clip."""
    return Path(os.path.expanduser("~/.cache/clip"))


def official_checkpoint_path(name: str, download_root: str | os.PathLike | None = None) -> Path:
    """Where openai-clip keeps (or would download) the weights of an official model."""
    url = import_clip().clip._MODELS[name]
    return Path(download_root or default_download_root()) / os.path.basename(url)


def encode_text_trimmed(model: torch.nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """openai-clip's CLIP.encode_text, computed only up to the batch's last end-of-text token.

    The text transformer is causal (no position sees those after it) and the embedding is read at the
    end-of-text token, so the padding after it changes nothing: skipping it makes short prompts (most
    are under 16 of the 77 tokens) several times faster, with results equal to float precision.
    """
    length = int(tokens.argmax(dim=-1).max()) + 1  # the end-of-text token has the highest id
    blocks = getattr(getattr(model, "transformer", None), "resblocks", None)
    if length >= tokens.shape[1] or blocks is None:
        return model.encode_text(tokens)
    tokens = tokens[:, :length]
    x = model.token_embedding(tokens).type(model.dtype) + model.positional_embedding[:length].type(model.dtype)
    x = x.permute(1, 0, 2)  # NLD -> LND, as openai-clip's transformer expects
    for block in blocks:
        mask = None if block.attn_mask is None else block.attn_mask[:length, :length].to(x.dtype)
        y = block.ln_1(x)
        x = x + block.attn(y, y, y, need_weights=False, attn_mask=mask)[0]
        x = x + block.mlp(block.ln_2(x))
    x = model.ln_final(x.permute(1, 0, 2)).type(model.dtype)
    return x[torch.arange(x.shape[0]), tokens.argmax(dim=-1)] @ model.text_projection


def _build_clip(state_dict: dict, device: torch.device, dtype: torch.dtype) -> torch.nn.Module:
    """openai-clip's `build_model`, without its cost: the architecture is built on the meta device (no
    memory, no random initialisation, which costs seconds and a model's worth of memory: see
    docs/performance.md), then the checkpoint's
    tensors are put in place. Weights go through the precision build_model gives them (its fp16
    conversion), then on the CPU to float32 (half-precision LayerNorm is not implemented there), so
    the numbers equal openai-clip's. A float32 weight (a checkpoint saved in full precision) is rounded
    to fp16 in place, in the state dict's own memory: two new copies of 600 MB of weights cost a second."""
    from clip.model import build_model

    with torch.device("meta"):  # build_model reads only shapes; strict key checking still happens
        model = build_model({k: torch.empty_like(v, device="meta") if isinstance(v, torch.Tensor) else v
                             for k, v in state_dict.items()})
    placed = {}
    for key, meta in model.state_dict().items():
        tensor = state_dict[key]
        if dtype == tensor.dtype == torch.float32 and meta.dtype == torch.float16:
            tensor.copy_(tensor.half())  # fp16's rounding, kept in float32 (fp16 -> fp32 is exact)
        else:
            tensor = tensor.to(meta.dtype)
            if dtype == torch.float32 and tensor.is_floating_point():
                tensor = tensor.float()
        placed[key] = tensor.to(device)
    model.load_state_dict(placed, assign=True)
    # the text transformer's causal mask is a plain attribute, not a buffer: make it for real
    mask = model.build_attention_mask().to(device)
    for block in model.transformer.resblocks:
        block.attn_mask = mask
    return model.eval()


def _fetch_official(name: str, download_root) -> Path:
    """The local path of an official checkpoint, downloading it (SHA-256 checked) if needed."""
    clip = import_clip()

    path = official_checkpoint_path(name, download_root)
    url = clip.clip._MODELS[name]
    try:
        # openai-clip downloads to download_root, verifies the SHA-256 and returns the path; a file already
        # there with the wrong SHA-256 (damaged, or an interrupted download) is announced by a warning
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            return Path(clip.clip._download(url, str(path.parent)))
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        damaged = any("SHA256 checksum does not match" in str(w.message) for w in caught)
        where = (f"the file at {path} is damaged or incomplete (its SHA-256 does not match the official one)"
                 if damaged else f"its weights are not at {path}")
        raise ModelError(
            f"CLIP model {name!r} could not be had: {where} and downloading "
            f"{url} failed ({reason}). On a machine with internet, run "
            f"`python -c \"import clip; clip.load('{name}')\"` (or download the URL) and copy the file to "
            f"{path}, or give the path of a checkpoint file as the model. The model named \"demo\" works offline (it knows "
            f"only coloured shapes).") from None
    except RuntimeError as exc:  # openai-clip's SHA-256 mismatch
        raise ModelError(f"CLIP model {name!r}: {exc}. Delete {path} and download it again.") from None


def read_checkpoint(path: str | os.PathLike, sha256: str | None = None) -> tuple[dict, str]:
    """Read a checkpoint into a CLIP state dict, after model_files.check_checkpoint (zip CRC; TorchScript
    only for OpenAI's official archives, known by their SHA-256: `sha256` when the caller has it).

    Plain state dicts load with weights_only=True, so a checkpoint cannot run code. OpenAI's official
    TorchScript archives are the documented exception: they are code by design, and known by their SHA-256.
    """
    path = Path(path)
    kind = check_checkpoint(path, sha256)
    try:
        if kind == OFFICIAL_TORCHSCRIPT:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # "torch.jit.load is deprecated"
                # the bytes that were hashed and CRC-checked are the ones loaded (one read)
                archive = torch.jit.load(io.BytesIO(official_torchscript_bytes(path)), map_location="cpu")
            return {k: v for k, v in archive.state_dict().items()}, "torchscript"
        loaded = load_state_dict(path)
    except ModelError:  # the archive changed after check_checkpoint: said already
        raise
    except Exception as exc:  # torch raises many types for damaged files
        why = reason(exc)
        if isinstance(exc, pickle.UnpicklingError) and "GLOBAL" in why:  # weights_only=True refused code
            raise ModelError(f"checkpoint {path} was not loaded: it holds Python objects besides tensors, and "
                             f"unpickling them could run code ({why}). clipnb loads plain state dicts only: "
                             "save one with torch.save(model.state_dict(), path).") from None
        raise ModelError(f"checkpoint {path} could not be read ({why}). It may be "
                         "truncated or not a CLIP checkpoint: download or save it again.") from None
    if isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, dict) or "visual.proj" not in loaded and "visual.attnpool.c_proj.weight" not in loaded:
        raise ModelError(f"checkpoint {path} is not a CLIP state dict (no visual encoder weights found); "
                         "give an openai-clip checkpoint or a state dict of clip.model.CLIP")
    return loaded, "state_dict"


def _build(state_dict: dict, name: str, device: torch.device, fingerprint: str, source: str,
           languages: tuple[str, ...] | None = None) -> ClipModel:
    dtype = model_dtype(device)
    try:
        model = _build_clip(state_dict, device, dtype)
    except Exception as exc:
        raise ModelError(f"checkpoint {source} does not describe a CLIP model ({type(exc).__name__}: {exc})") from None
    resolution = model.visual.input_resolution
    return ClipModel(model=model, preprocess=import_clip().clip._transform(resolution),
                     tokenizer=OpenAITokenizer(model.context_length), encode_image=model.encode_image,
                     encode_text=lambda tokens: encode_text_trimmed(model, tokens), name=name, device=device,
                     dtype=dtype, input_resolution=resolution, embed_dim=int(model.visual.output_dim),
                     fingerprint=fingerprint, logit_scale=float(model.logit_scale.exp().item()), family=FAMILY,
                     source=source, languages=languages)
