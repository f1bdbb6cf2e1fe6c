"""Hugging Face transformers' CLIP-like models ("hf:ID_OR_DIR"): a hub model id such as
"openai/clip-vit-base-patch32", "google/siglip-base-patch16-224", "OFA-Sys/chinese-clip-vit-base-patch16" or
"BAAI/AltCLIP", or a folder written by `save_pretrained` (model and processor). Any model transformers'
AutoModel loads with get_image_features, get_text_features and a logit_scale works (CLIP, SigLIP and
fixed-resolution SigLIP 2, Chinese-CLIP, AltCLIP, ...). `pretrained`, when given, is the hub revision (a
branch, tag or commit). Pixels, tokens and probabilities are those of transformers' own
zero-shot-image-classification pipeline: clipnb only wraps the model and its processor.

No code comes from a model (clipnb.models.files): every from_pretrained gets trust_remote_code=False, and a
model whose config asks for custom code (auto_map) is refused before transformers reads it."""
from __future__ import annotations

import contextlib
import inspect
import json
import os
import warnings
from pathlib import Path

import torch

from . import hub
from ..files import check_folder, no_remote_code, reason, refuse_remote_code
from ..loading import MULTILINGUAL, ClipModel, ModelError, ModelListing, files_fingerprint, model_dtype

FAMILY = "hf"
EXAMPLE = "openai/clip-vit-base-patch32"
SUMMARY = ("Hugging Face transformers' CLIP-like models (CLIP, SigLIP, Chinese-CLIP, AltCLIP) by hub id or "
           "save_pretrained folder")
# well-known ids of each kind, for `python -m clipnb models`
KNOWN = {
    "CLIP": ("openai/clip-vit-base-patch32", "openai/clip-vit-base-patch16", "openai/clip-vit-large-patch14",
             "openai/clip-vit-large-patch14-336"),
    "SigLIP": ("google/siglip-base-patch16-224", "google/siglip-large-patch16-384", "google/siglip-so400m-patch14-384"),
    "SigLIP2": ("google/siglip2-base-patch16-224", "google/siglip2-large-patch16-384",
                "google/siglip2-so400m-patch14-384"),
    "ChineseCLIP": ("OFA-Sys/chinese-clip-vit-base-patch16", "OFA-Sys/chinese-clip-vit-large-patch14"),
    "AltCLIP": ("BAAI/AltCLIP",),
}
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
# the files of a save_pretrained folder that transformers reads (config, weights, tokenizer, processor):
# other files beside them (images, notes, other frameworks' weights) do not change the model
MODEL_FILE_SUFFIXES = (".json", ".safetensors", ".bin", ".model", ".txt", ".tiktoken")
# no tokenizer allows this many tokens: a model_max_length above it means "not set"
UNSET_LENGTH = 1_000_000
# ClipModel.languages by transformers' model type: OpenAI's CLIP and Google's SigLIP learnt English captions;
# Chinese-CLIP Chinese (with English word pieces); AltCLIP's XLM-R, SigLIP 2's Gemma tokenizer and MetaCLIP 2
# ("worldwide") many languages. Other types: unknown.
LANGUAGES = {"clip": ("en",), "siglip": ("en",), "chinese_clip": ("zh", "en"), "altclip": (MULTILINGUAL,),
             "siglip2": (MULTILINGUAL,), "metaclip_2": (MULTILINGUAL,)}
# a text vocabulary this large is a multilingual one (XLM-R's, mT5's and Gemma's have 250,000 or more words;
# English ones such as CLIP's, BERT's and T5's under 50,000): the multilingual SigLIP says so in its config
MULTILINGUAL_VOCABULARY = 200_000


class HFPreprocess:
    """PIL image -> pixels [3,R,R], exactly as the model's image processor gives them (a class, not a
    lambda, so that DataLoader workers can receive it)."""

    def __init__(self, image_processor):
        self.image_processor = image_processor

    def __call__(self, image) -> torch.Tensor:
        # the pipeline's load_image converts to RGB too; SigLIP's processor would not do it itself
        if image.mode != "RGB":
            image = image.convert("RGB")
        return self.image_processor(images=[image], return_tensors="pt")["pixel_values"][0]


class HFTokenizer:
    """The model's own tokenizer, padded as transformers' zero-shot pipeline pads: sigmoid models (SigLIP)
    to the full context, which their text tower was trained with (it pools the last token); the others to
    the longest text. Only the keys the model's get_text_features takes are kept."""

    def __init__(self, tokenizer, context_length: int, keys: frozenset, full_padding: bool):
        self.tokenizer, self.context_length, self.keys, self.full_padding = tokenizer, context_length, keys, full_padding

    def __call__(self, texts: list[str], truncate: bool = False):
        from transformers import BatchEncoding

        tokens = self.tokenizer(list(texts), padding="max_length" if self.full_padding else True,
                                max_length=self.context_length if self.full_padding or truncate else None,
                                truncation=truncate, return_tensors="pt")
        return BatchEncoding({key: value for key, value in tokens.items() if key in self.keys})

    def count(self, text: str) -> int:
        # verbose=False: the length check says itself when a prompt is too long
        return len(self.tokenizer(text, verbose=False)["input_ids"])


def load(name: str, pretrained: str | None, device: torch.device, download_root: Path | None) -> ClipModel:
    """A hub model id (with `pretrained` as its revision) or a save_pretrained folder."""
    folder = Path(os.path.expanduser(name))
    local = folder.is_dir()
    if local:
        if pretrained:
            raise ModelError(f"hf model folder {folder} carries its own weights; drop pretrained={pretrained!r} "
                             "(for a hub id, pretrained is its revision)")
        if not (folder / "config.json").is_file():
            raise ModelError(f"hf model folder {folder} has no config.json, so it is not a transformers model: give a "
                             "folder written by save_pretrained (model and processor), or a hub id such as "
                             f"hf:{EXAMPLE}")
    elif _looks_like_path(name):
        raise ModelError(f"hf model folder {folder} does not exist; give a folder written by save_pretrained, or a "
                         f"hub id such as hf:{EXAMPLE}")
    source = str(folder) if local else name
    # trust_remote_code=False: transformers never runs (or asks to run) Python shipped with a model
    where = {"cache_dir": None if download_root is None else str(download_root), "revision": pretrained,
             "trust_remote_code": False}
    label = f"hf model {'folder ' + str(folder) if local else repr(name)}"

    from transformers import AutoConfig, AutoModel, AutoProcessor

    if local:
        check_folder(folder)  # configs asking for custom code, damaged or TorchScript archives
    else:
        from huggingface_hub import hf_hub_download

        refuse_remote_code(_fetch(lambda: hf_hub_download(name, "config.json", revision=pretrained,
                                                          cache_dir=where["cache_dir"]),
                                  name, pretrained, local, download_root))
    config = _fetch(lambda: AutoConfig.from_pretrained(source, **where), name, pretrained, local, download_root)
    model_class = _model_class(config)
    if model_class is None or not all(hasattr(model_class, m) for m in ("get_image_features", "get_text_features")):
        raise ModelError(f"{label} is a {config.model_type!r} model ({getattr(model_class, '__name__', 'no AutoModel')})"
                         ", not a CLIP-like model: clipnb needs a model with get_image_features, get_text_features "
                         "and logit_scale, such as CLIP, SigLIP, Chinese-CLIP or AltCLIP "
                         "(`python -m clipnb models --family hf` lists some)")
    if "spatial_shapes" in inspect.signature(model_class.get_image_features).parameters:
        raise ModelError(f"{label} is a variable-resolution (NaFlex) {model_class.__name__}, whose images are "
                         "patch sequences, not square pixels: use a fixed-resolution one such as "
                         "hf:google/siglip2-base-patch16-224")
    dtype = model_dtype(device)
    model = _fetch(lambda: AutoModel.from_pretrained(source, dtype=dtype, **where), name, pretrained, local, download_root)
    processor = _fetch(lambda: AutoProcessor.from_pretrained(source, **where), name, pretrained, local, download_root)
    if not isinstance(getattr(model, "logit_scale", None), torch.Tensor):
        raise ModelError(f"{label} is a {type(model).__name__} with no logit_scale, not a CLIP-like model: clipnb "
                         "needs one such as CLIP, SigLIP, Chinese-CLIP or AltCLIP")
    tokenizer, image_processor = getattr(processor, "tokenizer", None), getattr(processor, "image_processor", None)
    if tokenizer is None or image_processor is None:
        raise ModelError(f"{label} has no {'tokenizer' if tokenizer is None else 'image processor'}: save the "
                         "model's processor (tokenizer and image processor) beside it with save_pretrained")
    model = model.to(device).eval()

    preprocess = HFPreprocess(image_processor)
    resolution = max(preprocess(_blank()).shape[-2:])  # the size the processor resizes and crops to
    text_config = getattr(config, "text_config", config)
    context = int(text_config.max_position_embeddings)
    if getattr(tokenizer, "model_max_length", UNSET_LENGTH) < UNSET_LENGTH:
        # AltCLIP's XLM-R has 514 positions but takes 512 tokens, as its tokenizer says
        context = min(context, int(tokenizer.model_max_length))
    bias = getattr(model, "logit_bias", None)
    keys = frozenset(inspect.signature(model.get_text_features).parameters)
    embed_dim = getattr(config, "projection_dim", None) or config.vision_config.hidden_size  # SigLIP: no projection

    def encode_image(pixels: torch.Tensor) -> torch.Tensor:
        return _features(model.get_image_features(pixel_values=pixels))

    def encode_text(tokens) -> torch.Tensor:
        return _features(model.get_text_features(**tokens))

    snapshot = folder if local else _snapshot(name, pretrained, download_root)
    if not local:
        check_folder(snapshot)  # the hub's files, now all fetched: before any of the model is used
    return ClipModel(model=model, preprocess=preprocess,
                     tokenizer=HFTokenizer(tokenizer, context, keys, full_padding=bias is not None),
                     encode_image=encode_image, encode_text=encode_text,
                     name=f"{FAMILY}:{folder.name if local else name}" + (f",{pretrained}" if pretrained else ""),
                     device=device, dtype=dtype, input_resolution=int(resolution), embed_dim=int(embed_dim),
                     fingerprint=_fingerprint(snapshot, recursive=not local),
                     logit_scale=float(model.logit_scale.float().exp().item()),
                     logit_bias=None if bias is None else float(bias.float().item()), family=FAMILY,
                     source=str(snapshot), languages=languages(config, name))


def languages(config, name: str) -> tuple[str, ...] | None:
    """The languages of the model's text side: its model type's (LANGUAGES), except that a model whose name
    says "multilingual" or "i18n", or whose text vocabulary is a multilingual one, knows many."""
    text_config = getattr(config, "text_config", config)
    vocabulary = getattr(text_config, "vocab_size", 0) or 0
    if any(mark in name.lower() for mark in ("multilingual", "i18n")) or vocabulary >= MULTILINGUAL_VOCABULARY:
        return (MULTILINGUAL,)
    return LANGUAGES.get(config.model_type)


def _features(output) -> torch.Tensor:
    """The projected embedding: transformers 5 returns an output object holding it as pooler_output,
    earlier versions the tensor itself."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output


def _model_class(config):
    """The class AutoModel would build for a config, without building it (None when it has none)."""
    from transformers import AutoModel

    try:
        return AutoModel._model_mapping[type(config)]
    except (KeyError, ValueError):
        return None


def _blank():
    from PIL import Image

    return Image.new("RGB", (64, 64))


def _looks_like_path(name: str) -> bool:
    """A hub id is "name" or "org/name"; anything else with slashes, or starting like a path, is a folder."""
    return name.startswith(("/", "~", ".")) or "\\" in name or name.count("/") > 1


def _fetch(load, name: str, pretrained: str | None, local: bool, download_root: Path | None):
    """`load()` from the hub cache first (see hub.cache_first), quietly; a ModelError saying how to get the
    model when it fails."""
    try:
        with _quiet():
            return hub.cache_first(load)
    except Exception as exc:
        raise ModelError(_failure(name, pretrained, local, download_root, exc)) from None


def _failure(name: str, pretrained: str | None, local: bool, download_root: Path | None, exc: Exception) -> str:
    """One line: which model, where it was looked for, and how to get it."""
    if local:
        return (f"hf model folder {os.path.expanduser(name)} could not be read by transformers ({reason(exc)}): give "
                "a folder written by save_pretrained (model and processor) of a CLIP-like model")
    from huggingface_hub import constants

    where = str(download_root or constants.HF_HUB_CACHE)
    revision = f" --revision {pretrained}" if pretrained else ""
    return (f"hf model {name!r}{f' at revision {pretrained!r}' if pretrained else ''} could not be had: it is not in "
            f"the Hugging Face hub cache {where}, and the hub could not give it ({reason(exc)}). On a machine with "
            f"internet, run `hf download {name}{revision}` (or python -c \"from transformers import AutoModel, "
            f"AutoProcessor; AutoModel.from_pretrained('{name}'); AutoProcessor.from_pretrained('{name}')\") and copy "
            "~/.cache/huggingface here, or give a folder written by save_pretrained")


@contextlib.contextmanager
def _quiet():
    """No loading bars, config warnings or deprecation notes: clipnb's own messages say what matters."""
    from transformers.utils import logging as transformers_logging

    bars = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()
    try:
        with hub.quiet_logging(), warnings.catch_warnings(), no_remote_code():
            warnings.simplefilter("ignore")
            yield
    finally:
        if bars:
            transformers_logging.enable_progress_bar()


def _snapshot(name: str, revision: str | None, download_root: Path | None) -> Path:
    """The hub cache's folder of a model's files at a revision (after loading, they are all there)."""
    from huggingface_hub import try_to_load_from_cache

    path = try_to_load_from_cache(name, "config.json", cache_dir=download_root, revision=revision)
    if not isinstance(path, str):
        raise ModelError(f"hf model {name!r} loaded, but its files are not in the hub cache "
                         f"{download_root or '~/.cache/huggingface/hub'}, so its fingerprint cannot be taken: load it "
                         "again, or save it with save_pretrained and give that folder")
    return Path(path).parent


def _fingerprint(folder: Path, recursive: bool) -> str:
    """A SHA-256 over the model's files, each with its name, so it changes when weights, tokenizer or
    processor change and stays when the folder moves.

    A hub snapshot's files link to blobs named by their content's hash (SHA-256 for weights), so those
    names stand for the contents: gigabytes of weights are not read again at every load. A save_pretrained
    folder's own model files are hashed."""
    files = sorted(folder.rglob("*") if recursive else folder.iterdir())
    parts = [FAMILY]
    for path in files:
        relative = path.relative_to(folder).as_posix()
        if not path.is_file() or relative.startswith(".") or "/." in relative:
            continue
        if path.is_symlink() and path.resolve().parent.name == "blobs":
            parts += [relative, path.resolve().name]
        elif recursive or path.suffix in MODEL_FILE_SUFFIXES:
            parts += [relative, path]
    return files_fingerprint(*parts)


def listing(download_root: Path | None) -> list[ModelListing]:
    """Well-known ids of each kind (on disk when the hub cache has their config and weights), then the other
    CLIP-like models found in the hub cache."""
    known = [name for names in KNOWN.values() for name in names]
    rows = [ModelListing(FAMILY, name, on_disk=(name,) if _on_disk(name, download_root) else ()) for name in known]
    return rows + [ModelListing(FAMILY, name, on_disk=(name,)) for name in _cached_clip_models(download_root)
                   if name not in known]


def _on_disk(name: str, download_root: Path | None) -> bool:
    from huggingface_hub import try_to_load_from_cache

    def cached(filename: str) -> bool:
        return isinstance(try_to_load_from_cache(name, filename, cache_dir=download_root), str)

    return cached("config.json") and any(cached(f) for f in WEIGHT_FILES)


def _cached_clip_models(download_root: Path | None) -> list[str]:
    """The model ids in the hub cache whose config is one AutoModel builds as a CLIP-like model."""
    from huggingface_hub import scan_cache_dir

    try:
        repos = scan_cache_dir(download_root).repos
    except Exception:  # no cache yet, or one that cannot be read: nothing is cached
        return []
    found = []
    for repo in sorted(repos, key=lambda r: r.repo_id):
        configs = [f.file_path for rev in repo.revisions for f in rev.files if f.file_name == "config.json"]
        if repo.repo_type == "model" and configs and _clip_like_type(_model_type(configs[0])):
            found.append(repo.repo_id)
    return found


def _model_type(config_file: Path) -> str:
    try:
        return str(json.loads(Path(config_file).read_text(encoding="utf-8")).get("model_type", ""))
    except (OSError, ValueError, AttributeError):
        return ""


def _clip_like_type(model_type: str) -> bool:
    """Whether AutoModel builds a model with both feature methods for this model_type."""
    import transformers
    from transformers.models.auto.modeling_auto import MODEL_MAPPING_NAMES

    class_name = MODEL_MAPPING_NAMES.get(model_type)
    if not isinstance(class_name, str):
        return False
    try:
        model_class = getattr(transformers, class_name)
    except Exception:  # a model whose own dependencies are missing here
        return False
    return all(hasattr(model_class, m) for m in ("get_image_features", "get_text_features"))
