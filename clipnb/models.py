"""Model loading: the one door to every CLIP model clipnb uses.

`load_model` accepts an official openai-clip name ("ViT-B/32", "RN50", ...), a local checkpoint file
(OpenAI's TorchScript archive or a plain state dict) or "demo" (clipnb's own small model trained on
coloured shapes). Where a model comes from is decided here and nowhere else.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import pickle
import re
import urllib.error
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

DEMO_NAME = "demo"
DEMO_PATH = Path(__file__).parent / "assets" / "demo.pt"
DEFAULT_MODEL = "ViT-B/32"


def import_clip():
    """openai-clip, without the pkg_resources deprecation warning it triggers on import."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*pkg_resources.*", category=UserWarning)
        import clip
    return clip


class ModelError(RuntimeError):
    """A model could not be had: the message says which, where it was looked for, and what to do."""


@dataclass(frozen=True)
class Vocabulary:
    """What a model trained on a small world knows, so that classes outside it can be pointed out.

    `subject`: that world in a few words ("coloured shapes"). `groups`: its words by kind, such as
    {"colours": ("red", ...), "shapes": ("circle", ...)}. `examples`: class names it knows. A class is known
    when each of its words is one of the group words (letter case ignored, as CLIP's tokenizer does), apart
    from the articles in `fillers` ("a red circle" is known, "the" alone is not).
    """

    subject: str
    groups: dict
    examples: tuple = ()
    fillers: tuple = ("a", "an", "the")

    @property
    def words(self) -> frozenset:
        """Every word the vocabulary knows, over all its groups."""
        return frozenset(word for group in self.groups.values() for word in group)

    def knows(self, name: str) -> bool:
        """Whether every word of a class name (filler words aside) is known."""
        words = [w for w in re.findall(r"[^\W\d_]+", name.lower()) if w not in self.fillers]
        return bool(words) and all(word in self.words for word in words)


def demo_vocabulary() -> Vocabulary:
    """The demo model's world: every colour and shape its training images and captions show (the 48
    classes, the held-out pairs among them, and the extra colours and shapes it saw besides)."""
    from .shapes import ALL_COLOURS, ALL_SHAPES  # the generator's word lists only: numpy and Pillow, no torch

    return Vocabulary(subject="coloured shapes", groups={"colours": ALL_COLOURS, "shapes": ALL_SHAPES},
                      examples=("red circle", "blue star"))


@dataclass(eq=False)
class ClipModel:
    """A loaded CLIP model with everything needed to use it.

    `fingerprint` identifies the weights (not the file name), so caches stay valid when a file moves
    and become invalid when the weights change. `vocabulary` is set for a model that knows only a small
    world (the demo model: coloured shapes) and None for a general CLIP model.
    """

    model: torch.nn.Module
    preprocess: Callable
    name: str
    device: torch.device
    dtype: torch.dtype
    context_length: int
    input_resolution: int
    fingerprint: str
    source: str = ""
    vocabulary: Vocabulary | None = None
    _text_memo: dict = field(default_factory=dict, repr=False)

    @property
    def logit_scale(self) -> float:
        """The factor CLIP multiplies cosines by before the softmax (exp of the learned log scale)."""
        return float(self.model.logit_scale.exp().item())

    def tokenize(self, texts: list[str], truncate: bool = False) -> torch.Tensor:
        """Token ids [len(texts), context_length]; texts too long raise unless `truncate`."""
        return import_clip().tokenize(list(texts), context_length=self.context_length, truncate=truncate)

    @torch.inference_mode()
    def encode_image_tensors(self, pixels: torch.Tensor) -> torch.Tensor:
        """Preprocessed pixels [N,3,R,R] -> L2-normalised float32 embeddings on the CPU."""
        pixels = pixels.to(self.device, dtype=self.dtype, non_blocking=True)
        features = self.model.encode_image(pixels).float()
        return torch.nn.functional.normalize(features, dim=-1).cpu()

    @torch.inference_mode()
    def encode_token_tensors(self, tokens: torch.Tensor) -> torch.Tensor:
        """Token ids [N,context] -> L2-normalised float32 embeddings on the CPU."""
        features = encode_text_trimmed(self.model, tokens.to(self.device)).float()
        return torch.nn.functional.normalize(features, dim=-1).cpu()

    def __repr__(self) -> str:
        return (f"ClipModel(name={self.name!r}, device={self.device}, dtype={self.dtype}, "
                f"input_resolution={self.input_resolution}, context_length={self.context_length}, "
                f"fingerprint={self.fingerprint[:12]!r})")


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


def available_models() -> list[str]:
    """Every name `load_model` accepts besides a file path."""
    clip = import_clip()

    return clip.available_models() + [DEMO_NAME]


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """A torch device; a GPU always with its index, because the current GPU is per thread and clipnb's
    threads must all use the one the model is on."""
    if str(device) == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ModelError(f"device {str(device)!r} was asked for, but CUDA is not available here; "
                         "use device='cpu' or 'auto'")
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    return device


def default_download_root() -> Path:
    """Where official weights are cached by default: ~/.cache/clip, as openai-clip."""
    return Path(os.path.expanduser("~/.cache/clip"))


def official_checkpoint_path(name: str, download_root: str | os.PathLike | None = None) -> Path:
    """Where openai-clip keeps (or would download) the weights of an official model."""
    clip = import_clip()

    url = clip.clip._MODELS[name]
    return Path(download_root or default_download_root()) / os.path.basename(url)


def load_model(name_or_path: str | os.PathLike = DEFAULT_MODEL, device: str | torch.device = "auto",
               download_root: str | os.PathLike | None = None) -> ClipModel:
    """Load a CLIP model by official name, local checkpoint path, or "demo".

    float32 on the CPU (half-precision LayerNorm is not implemented there), float16 on CUDA.

    Args:
        name_or_path: an official name (see `available_models`), "demo" (the offline demo model), or a
            checkpoint file (a TorchScript archive or a state dict).
        device: "auto" (CUDA when present), "cpu", "cuda", or a torch.device.
        download_root: where official weights are cached (default ~/.cache/clip).

    Returns:
        A ClipModel (encoders, preprocessing, tokenizer, name). Raises ModelError with a message a user can
        act on when the weights cannot be had.
    """
    clip = import_clip()

    device = resolve_device(device)
    spec = str(name_or_path)
    if spec == DEMO_NAME:
        if not DEMO_PATH.is_file():
            raise ModelError(f"the demo model's checkpoint is missing: expected {DEMO_PATH}; "
                             "train it with `python scripts/train_demo.py` or reinstall clipnb")
        state_dict, kind = read_checkpoint(DEMO_PATH)
        fingerprint = file_sha256(DEMO_PATH)
        model = _build(state_dict, DEMO_NAME, device, fingerprint, str(DEMO_PATH))
        model.vocabulary = demo_vocabulary()
        return model
    if spec in clip.available_models():
        path = _fetch_official(spec, download_root)
        # the official file names carry their own SHA-256 (checked by openai-clip's download)
        fingerprint = clip.clip._MODELS[spec].split("/")[-2]
        state_dict, kind = read_checkpoint(path)
        return _build(state_dict, spec, device, fingerprint, str(path))
    path = Path(os.path.expanduser(spec))
    if path.is_file():
        state_dict, kind = read_checkpoint(path)
        return _build(state_dict, path.name, device, file_sha256(path), str(path))
    if path.is_dir():
        raise ModelError(f"model {spec!r} is a folder; give a checkpoint file (.pt) or a model name")
    import difflib

    known = available_models()
    by_case = {name.lower(): name for name in known}
    close = ([by_case[spec.lower()]] if spec.lower() in by_case
             else difflib.get_close_matches(spec, known, n=2, cutoff=0.6))
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise ModelError(f"unknown model {spec!r}: not a file, and not one of {', '.join(known)}{hint}")


def _build_clip(state_dict: dict, device: torch.device, dtype: torch.dtype) -> torch.nn.Module:
    """openai-clip's `build_model`, without its cost: the architecture is built on the meta device (no
    memory, no random initialisation, which costs seconds and a model's worth of memory: see
    docs/performance.md), then the checkpoint's
    tensors are put in place. Weights go through the precision build_model gives them (its fp16
    conversion), then on the CPU to float32 (half-precision LayerNorm is not implemented there), so
    the numbers equal openai-clip's."""
    from clip.model import build_model

    with torch.device("meta"):  # build_model reads only shapes; strict key checking still happens
        model = build_model({k: torch.empty_like(v, device="meta") if isinstance(v, torch.Tensor) else v
                             for k, v in state_dict.items()})
    placed = {}
    for key, meta in model.state_dict().items():
        tensor = state_dict[key].to(meta.dtype)
        if dtype == torch.float32 and tensor.is_floating_point():
            tensor = tensor.float()
        placed[key] = tensor.to(device)
    model.load_state_dict(placed, assign=True)
    # the text transformer's causal mask is a plain attribute, not a buffer: make it for real
    mask = model.build_attention_mask().to(device)
    for block in model.transformer.resblocks:
        block.attn_mask = mask
    return model.eval()


def release_freed_memory() -> None:
    """Hand memory that Python and torch have freed back to the operating system.

    glibc keeps freed blocks mapped for reuse: after loading a model (checkpoint read in fp16, then
    converted) that is memory no later step reuses (docs/performance.md says how much), and threads each
    keep their own pool.
    Elsewhere (macOS, Windows, musl) there is no malloc_trim and nothing to do.
    """
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


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


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """The SHA-256 of a file as hex, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def is_torchscript_archive(path: str | os.PathLike) -> bool:
    """OpenAI's released checkpoints are TorchScript archives: zip files holding compiled code."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any("/code/" in name or name.startswith("code/") for name in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def _torch_reason(exc: Exception) -> str:
    """The informative line of torch's many-line loading errors (not its advice to turn safety off)."""
    if isinstance(exc, EOFError) and not str(exc):
        return "the file ends early"
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    boilerplate = ("Weights only load failed", "Please file an issue", "Check the documentation")
    useful = [line for line in lines if not line.startswith(boilerplate)] or [type(exc).__name__]
    return useful[0].split(" This is an internal miniz error")[0]


def read_checkpoint(path: str | os.PathLike) -> tuple[dict, str]:
    """Read a checkpoint into a CLIP state dict.

    Plain state dicts load with weights_only=True, so a checkpoint cannot run code. OpenAI's TorchScript
    archives are the documented exception: they are code by design, and the official ones are
    SHA-256-checked on download.
    """
    path = Path(path)
    try:
        if is_torchscript_archive(path):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # "torch.jit.load is deprecated"
                archive = torch.jit.load(str(path), map_location="cpu")
            return {k: v for k, v in archive.state_dict().items()}, "torchscript"
        loaded = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for damaged files
        reason = _torch_reason(exc)
        if isinstance(exc, pickle.UnpicklingError) and "GLOBAL" in reason:  # weights_only=True refused code
            raise ModelError(f"checkpoint {path} was not loaded: it holds Python objects besides tensors, and "
                             f"unpickling them could run code ({reason}). clipnb loads plain state dicts only: "
                             "save one with torch.save(model.state_dict(), path).") from None
        raise ModelError(f"checkpoint {path} could not be read ({type(exc).__name__}: {reason}). It may be "
                         "truncated or not a CLIP checkpoint: download or save it again.") from None
    if isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, dict) or "visual.proj" not in loaded and "visual.attnpool.c_proj.weight" not in loaded:
        raise ModelError(f"checkpoint {path} is not a CLIP state dict (no visual encoder weights found); "
                         "give an openai-clip checkpoint or a state dict of clip.model.CLIP")
    return loaded, "state_dict"


def _build(state_dict: dict, name: str, device: torch.device, fingerprint: str, source: str) -> ClipModel:
    clip = import_clip()
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    try:
        model = _build_clip(state_dict, device, dtype)
    except Exception as exc:
        raise ModelError(f"checkpoint {source} does not describe a CLIP model ({type(exc).__name__}: {exc})") from None
    release_freed_memory()
    resolution = model.visual.input_resolution
    return ClipModel(model=model, preprocess=clip.clip._transform(resolution), name=name, device=device,
                     dtype=dtype, context_length=model.context_length, input_resolution=resolution,
                     fingerprint=fingerprint, source=source)
