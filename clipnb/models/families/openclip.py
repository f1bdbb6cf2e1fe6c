"""open_clip's models ("open_clip:ARCH"): every architecture open_clip lists (CLIP, SigLIP, MobileCLIP,
EVA, ...) with `pretrained` = one of its tags or a weights file, and its "hf-hub:ORG/REPO" and
"local-dir:PATH" forms, which carry their own weights. open_clip builds the model, its preprocessing and its
tokenizer; clipnb only wraps them.

OpenAI's weights use QuickGELU: as a state dict they belong to open_clip's ARCH-quickgelu architectures
(loaded as plain ARCH they load without error but their scores move by ~1e-3). OpenAI's own .pt files are
TorchScript archives, which only the openai family reads, and only the official ones (clipnb.models.files).

Every file open_clip will read is checked first (clipnb.models.files): a folder's or hub repository's config
must not ask for remote code, and each checkpoint archive must pass its CRC check."""
from __future__ import annotations

import contextlib
import io
import json
import os
import uuid
import warnings
from pathlib import Path

import torch

from . import hub
from ..files import (OFFICIAL_TORCHSCRIPT, check_checkpoint, check_folder, no_remote_code, reason,
                           refuse_remote_code)
from ..loading import (MULTILINGUAL, ClipModel, ModelError, ModelListing, files_fingerprint, model_dtype,
                      unknown_name_message)

FAMILY = "open_clip"
EXAMPLE = "ViT-B-32,laion2b_s34b_b79k"
SUMMARY = "open_clip's architectures (CLIP, SigLIP, MobileCLIP, ...) with a pretrained tag or a weights file"
RANDOM = "random"  # pretrained="random": random weights, for timing and tests only
SCHEMAS = ("hf-hub:", "local-dir:")
# Words in an architecture, tag, hub repository or text tokenizer name that mark a multilingual text tower
# (ClipModel.languages): XLM-RoBERTa and XLM-V, NLLB, mT5 (trained on mC4), SigLIP's i18n models, SigLIP 2
# (Gemma's multilingual tokenizer) and MetaCLIP 2's "worldwide" models.
MULTILINGUAL_MARKS = ("xlm", "nllb", "mt5", "mc4", "i18n", "multilingual", "siglip2", "worldwide")


def import_open_clip():
    """open_clip, quietly (it logs and warns about optional packages on import)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import open_clip
    return open_clip


class OpenClipTokenizer:
    """open_clip's tokenizer for a model, made on first use: a SigLIP's comes from the Hugging Face hub, and
    embedding images needs none."""

    def __init__(self, name: str, context_length: int, cache_dir: Path | None):
        self.name, self.context_length, self.cache_dir = name, context_length, cache_dir
        self._tokenizer = None

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            open_clip = import_open_clip()
            try:
                with _quiet():
                    self._tokenizer = hub.cache_first(
                        lambda: open_clip.get_tokenizer(self.name, cache_dir=_dir(self.cache_dir)))
            except Exception as exc:
                if self.name.startswith("local-dir:"):  # nothing is downloaded for a folder: its config is wrong
                    folder = self.name.removeprefix("local-dir:")
                    raise ModelError(f"the tokenizer of open_clip model folder {folder} could not be made "
                                     f"({reason(exc)}): check the tokenizer its open_clip_config.json names "
                                     "(hf_tokenizer_name, tokenizer_kwargs): a Hugging Face hub name must be in "
                                     "the hub cache, a local folder must hold the tokenizer's files") from None
                raise ModelError(f"the tokenizer of open_clip model {self.name!r} could not be had ({reason(exc)}): "
                                 "it comes from the Hugging Face hub; load the model once on a machine with "
                                 "internet and copy its hub cache (~/.cache/huggingface) here") from None
        return self._tokenizer

    def __call__(self, texts: list[str], truncate: bool = False) -> torch.Tensor:
        # open_clip always cuts texts to the context; clipnb's length check has refused long ones already
        return self.tokenizer(list(texts), context_length=self.context_length)

    def count(self, text: str) -> int:
        tokenizer = self.tokenizer
        inner = getattr(tokenizer, "tokenizer", None)
        if inner is None:  # open_clip's own BPE: a start token, the text, an end token
            return len(tokenizer.encode(text)) + 2
        clean = getattr(tokenizer, "clean_fn", None)
        if clean is None:  # open_clip's SigLIP tokenizer cleans as below before tokenizing
            from open_clip.tokenizer import basic_clean, canonicalize_text

            clean = lambda t: canonicalize_text(basic_clean(t))  # noqa: E731
        return len(inner(clean(text))["input_ids"])


def load(name: str, pretrained: str | None, device: torch.device, download_root: Path | None) -> ClipModel:
    """An open_clip architecture with a tag, a weights file or random weights; or a hub / local folder."""
    open_clip = import_open_clip()
    if name.startswith(SCHEMAS):
        if pretrained:
            raise ModelError(f"open_clip model {name!r} carries its own weights; drop pretrained={pretrained!r}")
        if name.startswith("local-dir:"):
            folder = Path(os.path.expanduser(name.partition(":")[2]))
            if not (folder / "open_clip_config.json").is_file():
                raise ModelError(f"open_clip folder {folder} has no open_clip_config.json: give a folder written "
                                 "by open_clip (config and weights), or open_clip:ARCH with pretrained=FILE")
            name = f"local-dir:{folder}"
        arch, kwargs, label, fingerprint = name, {}, None, None  # the fingerprint comes from the files below
    else:
        arch = name.replace("/", "-")  # openai-clip's "ViT-B/32" is open_clip's "ViT-B-32"
        if arch not in open_clip.list_models():
            raise ModelError(unknown_name_message(
                "open_clip architecture", name, open_clip.list_models(),
                "(`python -m clipnb models --family open_clip` lists them with their tags)"))
        pretrained, kwargs, label, fingerprint = _weights(open_clip, arch, pretrained)
    try:
        with _quiet():
            _check_files(open_clip, arch, pretrained, download_root)
            # require_pretrained: weights that cannot be had are an error, never a model with random weights
            model, _, preprocess = hub.cache_first(lambda: open_clip.create_model_and_transforms(
                arch, pretrained=pretrained, device=device, precision="fp16" if device.type == "cuda" else "fp32",
                cache_dir=_dir(download_root), require_pretrained=label != RANDOM, **kwargs))
    except ModelError:
        raise
    except Exception as exc:
        raise ModelError(_failure(arch, pretrained, download_root, exc)) from None
    model.eval()
    if fingerprint is None:
        config, fingerprint = _folder_config(name, download_root)
    else:
        config = open_clip.get_model_config(arch)
    size = open_clip.get_model_preprocess_cfg(model).get("size", 224)
    bias = getattr(model, "logit_bias", None)
    # the context open_clip's get_tokenizer gives the tokenizer (an HF text tower's own can be longer)
    context = int(config["text_cfg"].get("context_length") or 77)
    return ClipModel(model=model, preprocess=preprocess, tokenizer=OpenClipTokenizer(arch, context, download_root),
                     encode_image=model.encode_image, encode_text=lambda tokens: encode_text_trimmed(model, tokens),
                     name=f"{FAMILY}:{arch}" + (f",{label}" if label else ""), device=device,
                     dtype=model_dtype(device), input_resolution=max(size) if isinstance(size, (tuple, list)) else int(size),
                     embed_dim=int(config["embed_dim"]), fingerprint=fingerprint,
                     logit_scale=float(model.logit_scale.exp().item()),
                     logit_bias=None if bias is None else float(bias.item()), family=FAMILY,
                     source=str(pretrained or name), languages=languages(name, arch, label, config))


def languages(name: str, arch: str, label: str | None, config: dict) -> tuple[str, ...] | None:
    """What the model's text side was trained on: many languages when its names or tokenizer say so
    (MULTILINGUAL_MARKS); else English for a tag open_clip released (LAION-2B-en, DataComp, WebLI-en, ...);
    else unknown (a weights file, random weights, or a hub / local folder whose config says nothing)."""
    text = config.get("text_cfg", {})
    words = " ".join(str(w) for w in (name, label, text.get("hf_tokenizer_name"), text.get("hf_model_name")))
    if any(mark in words.lower() for mark in MULTILINGUAL_MARKS):
        return (MULTILINGUAL,)
    released = (not name.startswith(SCHEMAS) and label not in (None, RANDOM)
                and import_open_clip().get_pretrained_cfg(arch, label))
    return ("en",) if released else None


def _weights(open_clip, arch: str, pretrained: str | None) -> tuple[str | None, dict, str, str]:
    """What open_clip is given for `pretrained` of a built-in architecture: (its pretrained argument, other
    create_model arguments, a label for the model's name, the fingerprint)."""
    tags = open_clip.list_pretrained_tags_by_model(arch)
    if pretrained is None:
        raise ModelError(f"open_clip model {arch!r} needs weights: pass pretrained (--pretrained) as one of its "
                         f"tags ({', '.join(tags) or 'none listed'}) or a weights file, as in "
                         f"open_clip:{arch},{tags[0] if tags else 'FILE'}")
    if pretrained == RANDOM:
        # no text tower from the hub either; a fresh fingerprint each time, so nothing cached is reused
        return None, {"pretrained_text": False}, RANDOM, f"random-{uuid.uuid4()}"
    released = open_clip.get_pretrained_cfg(arch, pretrained)
    if released:  # a released tag's weights never change: its name identifies them
        kwargs = {"force_quick_gelu": bool(released.get("quick_gelu"))}
        return pretrained, kwargs, pretrained, files_fingerprint(FAMILY, arch, pretrained)
    path = Path(os.path.expanduser(pretrained))
    if path.is_file():
        # any other TorchScript archive, and a damaged archive, is refused here; open_clip would read even an
        # official one only by unpickling with code allowed
        if check_checkpoint(path) == OFFICIAL_TORCHSCRIPT:
            raise ModelError(f"weights file {path} is one of OpenAI's official TorchScript archives, which the "
                             f"open_clip family does not read: load it as clipnb.load_model({str(path)!r}) "
                             f"(openai-clip's loader, same numbers), or use "
                             f"open_clip:{arch.removesuffix('-quickgelu')}-quickgelu with pretrained='openai'")
        return str(path), {}, path.name, files_fingerprint(FAMILY, arch, path)
    raise ModelError(unknown_name_message(f"pretrained tag for open_clip {arch}", pretrained, tags,
                                          f"(not a file either; its tags: {', '.join(tags) or 'none'})"))


def _check_files(open_clip, arch: str, pretrained: str | None, download_root: Path | None) -> None:
    """Check what create_model will read before it reads it (clipnb.models.files): a local folder's files; a
    hub repository's config and weights, or a released tag's weights, fetched first as open_clip fetches them
    (a weights file given as pretrained was checked by _weights)."""
    from open_clip.pretrained import download_pretrained_from_hf

    kind, _, where = arch.partition(":")
    if kind == "local-dir":
        check_folder(where)
    elif kind == "hf-hub":
        refuse_remote_code(hub.cache_first(lambda: download_pretrained_from_hf(
            where, filename="open_clip_config.json", cache_dir=_dir(download_root))))
        check_checkpoint(hub.cache_first(lambda: download_pretrained_from_hf(where, cache_dir=_dir(download_root))))
    elif pretrained and (released := open_clip.get_pretrained_cfg(arch, pretrained)):
        check_checkpoint(hub.cache_first(lambda: open_clip.download_pretrained(released, cache_dir=_dir(download_root))))


def _folder_config(name: str, download_root: Path | None) -> tuple[dict, str]:
    """A "local-dir:" or "hf-hub:" model's open_clip config and fingerprint: a folder's files, or the hub
    repository and the commit of its cached snapshot."""
    kind, _, where = name.partition(":")
    if kind == "local-dir":
        folder = Path(where)
        config = folder / "open_clip_config.json"
        fingerprint = files_fingerprint(*sorted(p for p in folder.iterdir() if p.is_file()))
    else:
        from huggingface_hub import try_to_load_from_cache

        config = Path(try_to_load_from_cache(where, "open_clip_config.json", cache_dir=_dir(download_root)))
        fingerprint = files_fingerprint(FAMILY, name, config.parent.name)  # snapshots/<commit>/...
    return json.loads(config.read_text(encoding="utf-8"))["model_cfg"], fingerprint


def listing(download_root: Path | None) -> list[ModelListing]:
    """Every architecture open_clip lists, with its tags and those whose weights are already downloaded."""
    open_clip = import_open_clip()
    rows = []
    for arch in open_clip.list_models():
        tags = tuple(open_clip.list_pretrained_tags_by_model(arch))
        rows.append(ModelListing(FAMILY, arch, tags, tuple(t for t in tags if _on_disk(arch, t, download_root))))
    return rows


def _on_disk(arch: str, tag: str, download_root: Path | None) -> bool:
    """Whether a tag's weights are where open_clip's download puts them: the hub cache (its file, or the
    safetensors file open_clip prefers), else ~/.cache/clip for a URL."""
    cfg = import_open_clip().get_pretrained_cfg(arch, tag)
    if cfg.get("hf_hub"):
        from huggingface_hub import try_to_load_from_cache

        repo, filename = os.path.split(cfg["hf_hub"])  # "org/repo/" names the default file
        filename = filename or "open_clip_pytorch_model.bin"
        names = [filename, filename.rsplit(".", 1)[0] + ".safetensors"]
        if filename == "open_clip_pytorch_model.bin":
            names.append("open_clip_model.safetensors")
        return any(isinstance(try_to_load_from_cache(repo, n, cache_dir=_dir(download_root)), str) for n in names)
    if cfg.get("url"):
        return (Path(download_root or os.path.expanduser("~/.cache/clip")) / os.path.basename(cfg["url"])).is_file()
    return False


def _failure(arch: str, pretrained: str | None, download_root: Path | None, exc: Exception) -> str:
    """One line: which model and weights, where they were looked for, and how to get them."""
    where = str(download_root) if download_root else "the Hugging Face hub cache (~/.cache/huggingface)"
    if pretrained and Path(pretrained).is_file():
        return (f"open_clip model {arch!r} could not load weights file {pretrained} ({reason(exc)}): it must be a "
                "state dict of that architecture (`python -m clipnb models --family open_clip` lists them)")
    if arch.startswith("local-dir:"):  # nothing is downloaded for a folder
        return (f"open_clip folder {arch.partition(':')[2]} could not be loaded ({reason(exc)}): it must hold "
                "open_clip_config.json and the weights file open_clip writes beside it "
                "(open_clip_model.safetensors or open_clip_pytorch_model.bin)")
    command = (f"python -c \"import open_clip; open_clip.create_model('{arch}', pretrained='{pretrained}')\""
               if pretrained else "")
    return (f"open_clip model {arch!r}{f' with weights {pretrained!r}' if pretrained else ''} could not be had: its "
            f"weights are not in {where} and downloading them failed ({reason(exc)}). On a machine with internet, "
            f"run `{command or 'the same command'}` and copy its cache here, or pass a weights file as pretrained. "
            "The model named \"demo\" works offline.")


def _dir(path: Path | None) -> str | None:
    return None if path is None else str(path)


@contextlib.contextmanager
def _quiet():
    """open_clip and timm log, print and warn while building; clipnb's own messages say what matters. And
    transformers never asks to run a model's custom code (open_clip's Hugging Face parts leave it unset)."""
    with hub.quiet_logging(), warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), no_remote_code():
        warnings.simplefilter("ignore")
        yield


def encode_text_trimmed(model, tokens: torch.Tensor) -> torch.Tensor:
    """open_clip's CLIP.encode_text, computed only up to the batch's last end-of-text token, for causal text
    towers read at that token (CLIP's; the end token has the highest id): no position sees those after it,
    so the padding changes nothing, and short prompts cost a fraction of the full context. Other towers
    (SigLIP's attends to every position and reads the last one; Hugging Face text towers) run in full."""
    from open_clip.transformer import text_global_pool

    length = int(tokens.argmax(dim=-1).max()) + 1
    trimmable = (getattr(model, "text_pool_type", None) == "argmax" and getattr(model, "attn_mask", None) is not None
                 and hasattr(model, "token_embedding"))
    if not trimmable or length >= tokens.shape[1]:
        return model.encode_text(tokens)
    tokens = tokens[:, :length]
    cast = model.transformer.get_cast_dtype()
    x = model.token_embedding(tokens).to(cast) + model.positional_embedding[:length].to(cast)
    x = model.ln_final(model.transformer(x, attn_mask=model.attn_mask[:length, :length]))
    x = text_global_pool(x, tokens, "argmax")
    projection = model.text_projection
    if projection is None:
        return x
    return projection(x) if isinstance(projection, torch.nn.Module) else x @ projection

