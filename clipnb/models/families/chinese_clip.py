"""Chinese-CLIP's models ("cn_clip:NAME"): its five official names (ViT-B-16, ViT-L-14, ViT-L-14-336,
ViT-H-14, RN50) with their official weights, or pretrained = a checkpoint in Chinese-CLIP's own format (as
its training writes and its downloads are). cn_clip builds the model, its preprocessing and its tokenizer
(a Chinese BERT vocabulary, 52 tokens); clipnb only wraps them."""
from __future__ import annotations

import contextlib
import io
import os
import warnings
from pathlib import Path

import torch

from . import hub
from ..files import check_checkpoint, load_state_dict, reason
from ..loading import ClipModel, ModelError, ModelListing, files_fingerprint, model_dtype, unknown_name_message

FAMILY = "cn_clip"
EXAMPLE = "ViT-B-16"
SUMMARY = "Chinese-CLIP's official models (OFA-Sys, Chinese prompts) and checkpoints of its training"
CONTEXT_LENGTH = 52  # what every Chinese-CLIP model was trained with (cn_clip.clip.tokenize's default)
HUB_ORG = "OFA-Sys"  # cn_clip downloads from huggingface.co/OFA-Sys/<repo>
# ClipModel.languages: Chinese-CLIP learnt from Chinese captions, and its Chinese BERT vocabulary holds English
# word pieces too, so English class names work with it: Chinese and English
LANGUAGES = ("zh", "en")


def import_cn_clip():
    """cn_clip.clip (its import reads the BERT vocabulary), without the warnings its dependencies give."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import cn_clip.clip
        import cn_clip.clip.utils  # noqa: F401 (the module, not the names the package re-exports)
    return cn_clip.clip


class ChineseClipTokenizer:
    """cn_clip's tokenizer: [CLS], the text's BERT word pieces, [SEP], zero ([PAD]) padding to 52 tokens."""

    context_length = CONTEXT_LENGTH

    def __call__(self, texts: list[str], truncate: bool = False) -> torch.Tensor:
        # cn_clip.clip.tokenize always cuts to the context; long prompts are refused before this unless truncate
        if not truncate:
            too_long = [t for t in texts if self.count(t) > self.context_length]
            if too_long:
                from ...data.classes import PromptError

                raise PromptError(f"prompt {too_long[0]!r} takes {self.count(too_long[0])} tokens, more than "
                                  f"Chinese-CLIP's {self.context_length}: shorten it or use truncate=True")
        return import_cn_clip().tokenize(list(texts), context_length=self.context_length)

    def count(self, text: str) -> int:
        return len(import_cn_clip()._tokenizer.tokenize(text)) + 2  # [CLS] and [SEP]


def load(name: str, pretrained: str | None, device: torch.device, download_root: Path | None) -> ClipModel:
    """An official name with its official weights (pretrained=None) or with a Chinese-CLIP checkpoint file."""
    utils = import_cn_clip().utils
    if name not in utils._MODELS:
        raise ModelError(unknown_name_message(
            "Chinese-CLIP model", name, utils._MODELS,
            f"(its models are {', '.join(utils._MODELS)}; a checkpoint of your own goes in pretrained, with the "
            "name of its architecture)"))
    if pretrained is None:
        path = _fetch_official(name, download_root)
    else:
        path = Path(os.path.expanduser(pretrained))
        if not path.is_file():
            raise ModelError(f"Chinese-CLIP model {name!r}: pretrained {pretrained!r} is not a file; give a "
                             "Chinese-CLIP checkpoint (.pt), or leave pretrained out for the official weights")
    model = _build(name, read_checkpoint(path, name), path, device)
    resolution = int(utils._MODEL_INFO[name]["input_resolution"])
    return ClipModel(model=model, preprocess=utils.image_transform(resolution), tokenizer=ChineseClipTokenizer(),
                     encode_image=model.encode_image, encode_text=lambda tokens: encode_text_trimmed(model, tokens),
                     name=f"{FAMILY}:{name}" + (f",{path.name}" if pretrained is not None else ""), device=device,
                     dtype=model_dtype(device), input_resolution=resolution,
                     embed_dim=int(model.text_projection.shape[1]),
                     fingerprint=files_fingerprint(FAMILY, name, path),
                     logit_scale=float(model.logit_scale.exp().item()), family=FAMILY, source=str(path),
                     languages=LANGUAGES)


def listing(download_root: Path | None) -> list[ModelListing]:
    """The official names, each on disk when its official file is in the download folder."""
    utils = import_cn_clip().utils
    return [ModelListing(FAMILY, name, on_disk=(name,) if official_checkpoint_path(name, download_root).is_file() else ())
            for name in utils.available_models()]


def default_download_root() -> Path:
    """Where cn_clip keeps official weights by default: ~/.cache/clip, as openai-clip (different file names)."""
    return Path(os.path.expanduser("~/.cache/clip"))


def official_checkpoint_path(name: str, download_root: str | os.PathLike | None = None) -> Path:
    """Where cn_clip keeps (or would download) the weights of an official model."""
    return Path(download_root or default_download_root()) / import_cn_clip().utils._MODELS[name][1]


def _fetch_official(name: str, download_root: Path | None) -> Path:
    """The local path of an official checkpoint, downloaded from the Hugging Face hub when it is not there
    and the hub can be reached (otherwise a ModelError at once, not after minutes of retries)."""
    utils = import_cn_clip().utils
    path = official_checkpoint_path(name, download_root)
    if path.is_file():
        return path
    repo = f"https://huggingface.co/{HUB_ORG}/{utils._MODELS[name][0]}"
    try:
        return Path(hub.cache_first(lambda: utils._download(name, str(path.parent))))
    except Exception as exc:
        why = "the hub cannot be reached from here" if not hub.reachable() else reason(exc)
        raise ModelError(
            f"Chinese-CLIP model {name!r} could not be had: its weights are not at {path} and downloading them "
            f"from {repo} failed ({why}). On a machine with internet, run `python -c \"import "
            f"cn_clip.clip as c; c.load_from_name('{name}', download_root='{path.parent}')\"` and copy the file "
            f"here, or download {path.name} from {repo} and place it at {path}") from None


def read_checkpoint(path: Path, name: str) -> dict:
    """The model's tensors from a Chinese-CLIP checkpoint ({"state_dict": ..., "epoch": ..., ...}), keys
    without the "module." of distributed training and without BERT's unused pooler (as cn_clip drops it).

    Checked first (model_files.check_checkpoint: zip CRC, no TorchScript), then read with weights_only=True:
    a checkpoint cannot run code (Chinese-CLIP's hold tensors, numbers and strings only)."""
    check_checkpoint(path)
    try:
        loaded = load_state_dict(path)
    except Exception as exc:  # torch raises many types for damaged files
        raise ModelError(f"Chinese-CLIP checkpoint {path} could not be read ({reason(exc)}); it may be truncated "
                         "or not a checkpoint: download or save it again") from None
    state = loaded.get("state_dict") if isinstance(loaded, dict) else None
    if not isinstance(state, dict) or not state:
        raise ModelError(f"{path} is not a Chinese-CLIP checkpoint: it has no \"state_dict\" (Chinese-CLIP's "
                         f"training and official downloads save {{'state_dict': ..., 'epoch': ...}}); give a "
                         f"checkpoint of Chinese-CLIP {name}")
    return {key.removeprefix("module."): value for key, value in state.items()
            if "bert.pooler" not in key and isinstance(value, torch.Tensor)}


def _build(name: str, state: dict, path: Path, device: torch.device) -> torch.nn.Module:
    """cn_clip's own model for the name's architecture with the checkpoint's weights, equal to what cn_clip's
    load_from_name makes: each weight in the precision cn_clip gives it (fp16 for most), then float32 on the
    CPU (half-precision LayerNorm is not implemented there).

    The architecture is built on the meta device (no memory, no random initialisation, which for ViT-H
    costs seconds and a second model's worth of memory), then the checkpoint's tensors are put in place."""
    utils = import_cn_clip().utils
    struct = utils._MODEL_INFO[name]["struct"]
    with torch.device("meta"), contextlib.redirect_stdout(io.StringIO()):  # create_model prints its configuration
        model = utils.create_model(struct)
    expected = model.state_dict()
    problem = _mismatch(expected, state)
    if problem:
        raise ModelError(f"checkpoint {path} does not match Chinese-CLIP {name} ({struct}): {problem}; give a "
                         "checkpoint of that architecture, or the name of the one it was trained as")
    model.load_state_dict({key: state[key].to(meta.dtype) for key, meta in expected.items()}, assign=True)
    model = model.float() if device.type == "cpu" else model.to(device)
    return model.eval()


def _mismatch(expected: dict, state: dict) -> str:
    """What differs between a model's state dict and a checkpoint's, in a few words ("" when they fit)."""
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    parts = []
    if missing:
        parts.append(f"{len(missing)} weights missing (such as {missing[0]!r})")
    if unexpected:
        parts.append(f"{len(unexpected)} unknown weights (such as {unexpected[0]!r})")
    if shapes:
        key = shapes[0]
        parts.append(f"{len(shapes)} weights of other shapes (such as {key!r}: {tuple(state[key].shape)} in the "
                     f"file, {tuple(expected[key].shape)} in the model)")
    return ", ".join(parts)


def encode_text_trimmed(model: torch.nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """cn_clip's CLIP.encode_text on the tokens up to the batch's longest prompt.

    The padding after a prompt is masked out of BERT's attention and the embedding is read at [CLS], so
    dropping the padding columns changes nothing but float rounding, and prompts of about 10 of the 52
    tokens encode several times faster."""
    length = int(tokens.ne(0).sum(dim=1).max()) if tokens.numel() else tokens.shape[1]  # [PAD] is id 0
    return model.encode_text(tokens[:, :max(length, 1)])
