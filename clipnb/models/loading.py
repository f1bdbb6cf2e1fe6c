"""Model loading: the one door to every CLIP model clipnb uses.

`load_model(spec, pretrained)` takes a model spec and finds its family in `FAMILIES`, a small registry from
a spec's prefix to a module that loads that family (CLIP_benchmark's habit). Every family returns the same
thing, a `ClipModel`: the family's own image preprocessing, tokenizer and encoders behind one interface, so
nothing after loading knows or asks which family a model is.

Specs (`python -m clipnb models` lists them):
- "ViT-B/32", "RN50", ... (openai-clip's names), a checkpoint file, or "demo" (clipnb's offline model);
- "open_clip:ARCH" with pretrained = an open_clip tag ("laion2b_s34b_b79k", "openai", "webli") or a file;
- "hf:ID_OR_DIR": a Hugging Face model id or a `save_pretrained` directory;
- "cn_clip:NAME" (Chinese-CLIP) with pretrained = a Chinese-CLIP checkpoint, or its official download.
One string can carry both parts as "SPEC,PRETRAINED" (CLIP_benchmark's form), for the notebooks'
parameter cell and $CLIPNB_MODEL: "open_clip:ViT-B-32,laion2b_s34b_b79k".
"""
from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import difflib
import hashlib
import importlib
import json
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Protocol

from .._moved import new_path
from ..data.files import file_sha256  # noqa: F401 (also clipnb.models.file_sha256, as before)
from .memory import release_freed_memory, reuse_freed_memory

if TYPE_CHECKING:
    from ..data.cache import EmbeddingCache

DEMO_NAME = "demo"
DEFAULT_MODEL = "ViT-B/32"

# spec prefix -> the module that loads the family; imported only when used (transformers alone takes seconds)
FAMILIES = {
    "openai": "clipnb.models.families.openai",
    "open_clip": "clipnb.models.families.openclip",
    "hf": "clipnb.models.families.huggingface",
    "cn_clip": "clipnb.models.families.chinese_clip",
}
DEFAULT_FAMILY = "openai"  # a spec without a prefix: openai-clip's names, checkpoint files and "demo"
# the torch device types clipnb runs models on (model_dtype gives each its precision)
DEVICE_TYPES = ("cpu", "cuda")
# ClipModel.languages of a model whose text side was trained on many languages: no prompt language is refused
MULTILINGUAL = "multilingual"


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


class Tokenizer(Protocol):
    """A family's tokenizer as clipnb uses it: texts to what the family's text encoder takes."""

    context_length: int  # the most tokens a prompt may have, start and end tokens included

    def __call__(self, texts: list[str], truncate: bool = False) -> Any:
        """Tokens for the texts (a tensor, or a mapping of tensors), padded as the model needs."""

    def count(self, text: str) -> int:
        """How many tokens the text takes, special tokens included (for the prompt-length check)."""


@dataclass(eq=False)
class ClipModel:
    """A loaded CLIP model of any family, with everything needed to use it.

    The family's loader fills in its own parts: `preprocess` (PIL image -> pixels [3,R,R], as that family
    prepares images), `tokenizer`, `encode_image` (pixels -> features) and `encode_text` (tokens ->
    features), and how scores become probabilities: `logit_scale`, and `logit_bias` for sigmoid models
    (SigLIP), whose per-class probabilities are independent sigmoids; None means a softmax over classes.
    `model` is the family's own module, for users who want it. `fingerprint` identifies the weights (and
    tokenizer), not the file name, so caches stay valid when a file moves and become invalid when the
    weights change. `vocabulary` is set for a model that knows only a small world (the demo model).
    `languages`: the languages its text side was trained on, as codes ("en", "zh"), or ("multilingual",)
    (MULTILINGUAL) for many; None when unknown (a bare checkpoint file). Each family's loader sets it, and
    prompts in another language get a warning (`clipnb.models.languages`).
    """

    model: torch.nn.Module
    preprocess: Callable
    tokenizer: Tokenizer
    encode_image: Callable[[torch.Tensor], torch.Tensor]
    encode_text: Callable[[Any], torch.Tensor]
    name: str
    device: torch.device
    dtype: torch.dtype
    input_resolution: int
    embed_dim: int
    fingerprint: str
    logit_scale: float
    logit_bias: float | None = None
    family: str = DEFAULT_FAMILY
    source: str = ""
    vocabulary: Vocabulary | None = None
    languages: tuple[str, ...] | None = None
    # what load_model was given (spec, pretrained, download_root), so that a Dask worker can load the same
    # model itself (clipnb.embed.dask); None for a ClipModel made some other way
    load_args: dict | None = None
    _text_memo: dict = field(default_factory=dict, repr=False)
    # one pass through the text tower at a time: the panel's background preparing (clipnb.prepare_ahead) and
    # the foreground share the model, and two passes at once would only split the same cores between them
    _text_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __getattr__(self, name: str):
        # only for attributes not set: those that need the weights, on a model made by load_model(lazy=True)
        # from its manifest. The first of them touched loads the model (once, whichever thread asks). The
        # device and dtype need torch only (to resolve "auto"), not the weights, unless they differ from the
        # manifest's (CUDA came or went since): then the weights load, which sets them.
        pending = self.__dict__.get("_pending")
        if pending is None or name not in WEIGHT_FIELDS + DEVICE_FIELDS:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        with pending.lock:
            if name in DEVICE_FIELDS and "_pending" in self.__dict__ and name not in self.__dict__:
                import torch

                device, dtype = resolve_device(pending.device), getattr(torch, self.__dict__["_manifest_dtype"], None)
                if str(device) == self.__dict__["_manifest_device"] and isinstance(dtype, torch.dtype):
                    self.__dict__.update(device=device, dtype=dtype)
            if "_pending" in self.__dict__ and name not in self.__dict__:
                loaded = pending.load()
                if loaded.fingerprint != self.fingerprint:  # the file changed after the manifest was read
                    raise ModelError(f"the weights of model {self.name!r} changed while this run used them "
                                     f"({self.source}); run it again")
                for item in dataclasses.fields(loaded):
                    if item.name not in ("_text_memo", "_text_lock", "load_args"):
                        self.__dict__[item.name] = getattr(loaded, item.name)
                del self.__dict__["_pending"]
        return self.__dict__[name]

    @property
    def weights_loaded(self) -> bool:
        """False while a model from load_model(lazy=True) has not needed its weights yet."""
        return "_pending" not in self.__dict__

    @property
    def context_length(self) -> int:
        """The most tokens a prompt may have."""
        return self.__dict__.get("_context_length") or self.tokenizer.context_length

    @property
    def sigmoid(self) -> bool:
        """True for models trained with a sigmoid loss (SigLIP): each class gets its own probability."""
        return self.logit_bias is not None

    def tokenize(self, texts: list[str], truncate: bool = False):
        """Tokens for texts, as this family's text encoder takes them; texts too long raise unless `truncate`."""
        return self.tokenizer(list(texts), truncate=truncate)

    def encode_image_tensors(self, pixels: torch.Tensor) -> torch.Tensor:
        """Preprocessed pixels [N,3,R,R] -> L2-normalised float32 embeddings on the CPU."""
        import torch  # here, not at the top: a run whose embeddings are all cached never imports it

        with torch.inference_mode():
            pixels = pixels.to(self.device, dtype=self.dtype, non_blocking=True)
            features = self.encode_image(pixels).float()
            return torch.nn.functional.normalize(features, dim=-1).cpu()

    def prompts_to_encode(self, prompts: Iterable[str], truncate: bool = False) -> list[str]:
        """The prompts (each once, in order) that this model does not remember encoding (`encode_texts`
        remembers each on the model; a disk cache may still hold some of them)."""
        return [p for p in dict.fromkeys(prompts) if (p, truncate) not in self._text_memo]

    def encode_token_tensors(self, tokens) -> torch.Tensor:
        """Tokens from `tokenize` -> L2-normalised float32 embeddings on the CPU."""
        import torch

        with torch.inference_mode():
            with self._text_lock:
                features = self.encode_text(tokens.to(self.device)).float()
            return torch.nn.functional.normalize(features, dim=-1).cpu()

    def __repr__(self) -> str:
        return (f"ClipModel(name={self.name!r}, family={self.family!r}, device={self.device}, dtype={self.dtype}, "
                f"input_resolution={self.input_resolution}, context_length={self.context_length}, "
                f"fingerprint={self.fingerprint[:12]!r})")


# the parts of a ClipModel that need its weights: a lazy one loads them when one is first touched
WEIGHT_FIELDS = ("model", "preprocess", "tokenizer", "encode_image", "encode_text")
# those that need torch (to resolve the device asked for) but not the weights
DEVICE_FIELDS = ("device", "dtype")
# the facts of a model that a run needs without its weights (load_model's manifest), besides the vocabulary
MANIFEST_FIELDS = ("family", "name", "fingerprint", "embed_dim", "input_resolution", "context_length",
                   "logit_scale", "logit_bias", "languages", "source", "load_args")


@dataclass(frozen=True)
class ModelListing:
    """One row of `python -m clipnb models`: a spec, the weights it takes, and which are on this machine."""

    family: str
    name: str
    pretrained: tuple = ()  # tags or checkpoint names; () when the name alone says which weights
    on_disk: tuple = ()  # those of `pretrained` (or the name itself) whose weights are here already


def parse_spec(spec: str | os.PathLike, pretrained: str | os.PathLike | None = None) -> tuple[str, str, str | None]:
    """(family, name within the family, pretrained) from a spec such as "open_clip:ViT-B-32,laion2b_s34b_b79k".

    A prefix that is a registered family chooses it; anything else (names, paths, "demo") is openai-clip's.
    A comma separates the weights from the name when `pretrained` is not given apart."""
    text = os.fspath(spec).strip()
    family, _, rest = text.partition(":")
    if family in FAMILIES and rest:
        name = rest
    elif rest and re.fullmatch(r"[A-Za-z][\w-]+", family) and not Path(os.path.expanduser(text)).exists():
        # "hf_clip:..." or "openclip:...": a family prefix mistyped (a drive letter or a file is not one)
        close = difflib.get_close_matches(family.lower(), FAMILIES, n=2, cutoff=0.6)
        hint = f"did you mean {' or '.join(repr(c + ':' + rest) for c in close)}? " if close else ""
        raise ModelError(f"model {text!r} names an unknown family {family!r}: {hint}the families are "
                         f"{', '.join(FAMILIES)} (`python -m clipnb models` lists their models)")
    else:
        family, name = DEFAULT_FAMILY, text
    if pretrained is None and "," in name:
        name, _, pretrained = name.partition(",")
        pretrained = pretrained.strip() or None
    elif pretrained is not None:
        pretrained = os.fspath(pretrained).strip() or None
    return family, name.strip(), pretrained


def family_module(family: str):
    """The module that loads a family (see FAMILIES); a ModelError naming the package to install when its
    library is missing."""
    try:
        return importlib.import_module(FAMILIES[family])
    except ImportError as exc:
        if (exc.name or "").startswith("clipnb"):
            raise
        raise ModelError(f"the {family} family needs the Python package {exc.name!r}, which is not installed "
                         f"here: install clipnb's dependencies again (`make setup`, or "
                         f"`pip install -e .`)") from None


def load_model(spec: str | os.PathLike = DEFAULT_MODEL, pretrained: str | os.PathLike | None = None,
               device: str | torch.device = "auto", download_root: str | os.PathLike | None = None,
               cache: EmbeddingCache | bool | None = True, lazy: bool = False) -> ClipModel:
    """Load a CLIP model of any family (see the module's docstring for the specs).

    float32 on the CPU (half-precision LayerNorm is not implemented there), float16 on CUDA.

    Args:
        spec: "ViT-B/32" or another openai-clip name, a checkpoint file, "demo", "open_clip:ARCH",
            "hf:ID_OR_DIR" or "cn_clip:NAME"; "SPEC,PRETRAINED" carries the weights in the same string.
        pretrained: the weights for families that take them apart from the name: an open_clip tag or a
            weights file, a Chinese-CLIP checkpoint.
        device: "auto" (CUDA when present), "cpu", "cuda", or a torch.device.
        download_root: where downloaded weights are kept (each family's usual place when None).
        cache: where the SHA-256 of weights files is remembered (`weights_sha256`), and each loaded model's
            manifest: an EmbeddingCache, True for the default cache folder, None or False to hash the
            weights at every load.
        lazy: with a cache, return a model made from the manifest stored when the same arguments last
            loaded the same weights files (same path, size, times and inode): its weights load the first
            time something needs them (`model`, `preprocess`, `tokenizer`, the encoders), with every check
            of a normal load. A run whose embeddings are all cached never reads the weights. Without a
            matching manifest the model loads now (and its manifest is stored).

    Returns:
        A ClipModel. Raises ModelError with a message a user can act on when the weights cannot be had.

    Example:
        >>> model = load_model("open_clip:ViT-B-32", pretrained="laion2b_s34b_b79k")  # doctest: +SKIP
    """
    family, name, pretrained = parse_spec(spec, pretrained)
    if not name:
        raise ModelError(f"model spec {os.fspath(spec)!r} names no model; for example {family}:"
                         f"{family_module(family).EXAMPLE}")
    root = Path(os.path.expanduser(download_root)) if download_root else None
    load_args = {"spec": f"{family}:{_absolute_if_file(name)}", "pretrained": _absolute_if_file(pretrained),
                 "download_root": str(root) if root else None}
    with _cache_object(cache) as store:
        # keyed by the device as asked: resolving "auto" needs torch, which a run that loads no weights never imports
        key = json.dumps({**load_args, "device": str(device)}, sort_keys=True)
        if lazy and store is not None:
            model = _from_manifest(store.get_manifest(key), device, cache)
            if model is not None:
                return model
        device = resolve_device(device)
        read = []
        token = _WEIGHTS_READ.set(read)
        try:
            with sha256_store(store):
                model = family_module(family).load(name, pretrained, device, root)
        finally:
            _WEIGHTS_READ.reset(token)
        model.load_args = load_args
        if store is not None:
            _store_manifest(store, key, model, read)
    release_freed_memory()  # what loading freed (the checkpoint as read)
    reuse_freed_memory()  # from now on, each batch's activations reuse the last one's memory
    return model


@contextlib.contextmanager
def _cache_object(cache: EmbeddingCache | bool | None):
    """The EmbeddingCache that `cache` names (True: the default folder's, closed at the end), or None."""
    if cache is not True:
        yield cache or None
        return
    from ..data.cache import EmbeddingCache

    own = EmbeddingCache()
    try:
        yield own
    finally:
        own.close()


def _store_manifest(store: EmbeddingCache, key: str, model: ClipModel, read: list) -> None:
    """Remember what a freshly loaded model is, with the identity of the weights files it was read from.

    Only a model whose weights were read from files known by their SHA-256 (`weights_sha256`) gets one:
    without such a file nothing would tell a later run that the weights changed."""
    from ..data.cache import file_identity

    files = [file_identity(path) for path in dict.fromkeys(read)]
    if not files or None in files:
        return
    manifest = {name: getattr(model, name) for name in MANIFEST_FIELDS}
    manifest["dtype"] = str(model.dtype).removeprefix("torch.")
    manifest["device"] = str(model.device)
    vocabulary = model.vocabulary
    if vocabulary is not None:
        manifest["vocabulary"] = {"class": f"{type(vocabulary).__module__}:{type(vocabulary).__qualname__}",
                                  **{item.name: getattr(vocabulary, item.name) for item in dataclasses.fields(vocabulary)}}
    store.put_manifest(key, files, manifest)


def _from_manifest(row: tuple[list, dict] | None, device: str | torch.device, cache) -> ClipModel | None:
    """A ClipModel whose weights load on first need (see ClipModel.__getattr__), from a stored manifest whose
    weights files are all unchanged; None when there is no such manifest, or it cannot be read as one."""
    from ..data.cache import file_identity

    if row is None:
        return None
    files, manifest = row
    if not files or any(file_identity(identity[0]) != tuple(identity) for identity in files):
        return None  # a weights file edited, replaced or gone: load it again
    try:
        device_and_dtype = {"_manifest_device": manifest["device"], "_manifest_dtype": manifest["dtype"]}
        if not all(isinstance(value, str) for value in device_and_dtype.values()):
            raise ValueError(f"not a device and dtype: {device_and_dtype}")
        model = ClipModel(**{name: None for name in WEIGHT_FIELDS + DEVICE_FIELDS},
                          vocabulary=_vocabulary(manifest.get("vocabulary")),
                          **{name: manifest[name] for name in MANIFEST_FIELDS if name != "context_length"})
        model.languages = tuple(model.languages) if model.languages is not None else None
        context_length = int(manifest["context_length"])
    except (KeyError, TypeError, ValueError, AttributeError, ImportError):
        return None  # a manifest of another shape (another clipnb version): load the model
    for name in WEIGHT_FIELDS + DEVICE_FIELDS:  # so that touching one reaches __getattr__, which loads the
        del model.__dict__[name]  # weights (or resolves the device)
    model.__dict__.update(device_and_dtype)
    model.__dict__["_context_length"] = context_length
    model.__dict__["_pending"] = _PendingLoad(model.load_args, device, cache)
    return model


def _vocabulary(saved: dict | None) -> Vocabulary | None:
    """A Vocabulary from its manifest form; only clipnb's own Vocabulary classes are made."""
    if saved is None:
        return None
    module, _, qualname = saved["class"].partition(":")
    module = new_path(module) or module  # a manifest written before issue 25's moves names the old module
    if module != __name__ and not module.startswith("clipnb.models.families."):
        raise ValueError(f"not a vocabulary class of clipnb: {saved['class']}")
    kind = getattr(importlib.import_module(module), qualname)
    if not (isinstance(kind, type) and issubclass(kind, Vocabulary)):
        raise ValueError(f"not a vocabulary class: {saved['class']}")
    groups = {group: tuple(words) for group, words in saved["groups"].items()}
    return kind(subject=saved["subject"], groups=groups, examples=tuple(saved["examples"]),
                fillers=tuple(saved["fillers"]))


@dataclass
class _PendingLoad:
    """How a lazy ClipModel loads its weights when first needed: load_model again with its arguments."""

    load_args: dict
    device: str | torch.device  # as asked ("auto" too): resolved when the weights load
    cache: Any
    lock: threading.Lock = field(default_factory=threading.Lock)

    def load(self) -> ClipModel:
        return load_model(self.load_args["spec"], self.load_args["pretrained"], self.device,
                          self.load_args["download_root"], cache=self.cache)


def _absolute_if_file(value):
    """A path that exists here as an absolute path (a worker started elsewhere has another working folder)."""
    if value is None:
        return None
    value = os.fspath(value)
    return os.path.abspath(value) if os.path.exists(value) else value


def list_models(family: str | None = None, download_root: str | os.PathLike | None = None) -> list[ModelListing]:
    """What `load_model` accepts, family by family (or one family), with the weights already on disk."""
    if family is not None and family not in FAMILIES:
        raise ModelError(f"unknown model family {family!r}; the families are {', '.join(FAMILIES)}")
    root = Path(os.path.expanduser(download_root)) if download_root else None
    return [row for name in ([family] if family else FAMILIES) for row in family_module(name).listing(root)]


def available_models() -> list[str]:
    """Every openai-clip name `load_model` accepts without a prefix, and "demo"."""
    return [row.name for row in family_module(DEFAULT_FAMILY).listing(None)]


def unknown_name_message(what: str, name: str, known: Iterable[str], how: str = "") -> str:
    """'unknown X 'name'; did you mean ...?' with the closest known names (letter case ignored first)."""
    known = list(known)
    by_case = {k.lower(): k for k in known}
    close = ([by_case[name.lower()]] if name.lower() in by_case
             else difflib.get_close_matches(name, known, n=3, cutoff=0.6))
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return f"unknown {what} {name!r}{hint}{' ' + how if how else ''}"


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """A torch device; a GPU always with its index, because the current GPU is per thread and clipnb's
    threads must all use the one the model is on. A ModelError for anything else: an empty or unknown name,
    and devices torch knows but no model of clipnb runs on ("meta" holds no data, "xla" needs torch_xla)."""
    import torch

    if str(device) == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError, ValueError):  # "", "gpu", "cuda:x": torch's own message is a traceback
        parsed = None
    if parsed is None or parsed.type not in DEVICE_TYPES:
        raise ModelError(f"device {str(device)!r} is not one clipnb runs models on: use 'auto' (CUDA when "
                         "present), 'cpu', 'cuda' or 'cuda:N'")
    device = parsed
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ModelError(f"device {str(device)!r} was asked for, but CUDA is not available here; "
                         "use device='cpu' or 'auto'")
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    return device


def model_dtype(device: torch.device) -> torch.dtype:
    """float16 on CUDA; float32 on the CPU, where half-precision LayerNorm is not implemented."""
    import torch

    return torch.float16 if device.type == "cuda" else torch.float32


# the cache whose file table remembers weights files' SHA-256 while load_model runs (see weights_sha256)
_SHA256_STORE: contextvars.ContextVar = contextvars.ContextVar("clipnb_sha256_store", default=None)
# the weights files a load_model in progress read (through weights_sha256), for its manifest
_WEIGHTS_READ: contextvars.ContextVar = contextvars.ContextVar("clipnb_weights_read", default=None)


@contextlib.contextmanager
def sha256_store(cache: EmbeddingCache | bool | None = True):
    """Within this block (in this thread or task), `weights_sha256` remembers each file's SHA-256 in the
    cache's file table: `cache` an EmbeddingCache, True for the default cache folder (opened and closed
    here), None or False for none."""
    own = cache is True
    if own:
        from ..data.cache import EmbeddingCache

        cache = EmbeddingCache()
    token = _SHA256_STORE.set(cache or None)
    try:
        yield
    finally:
        _SHA256_STORE.reset(token)
        if own:
            cache.close()


def weights_sha256(path: str | os.PathLike) -> str:
    """The SHA-256 of a weights file, read from the store of `sha256_store` when the file has not changed.

    The store is the embedding cache's file table, which images use too: a file's SHA-256 is kept with its
    identity (real path, size, modification and change times in ns, inode) and trusted only while all of
    them are the same. An edit that restores the modification time (`exiftool -P`, `touch -r`) still changes
    the change time, and a file replaced by another one has another inode: it is hashed again. So a 600 MB
    checkpoint is hashed once, not at every load. Without a store, or when the store cannot be used (it
    says why once, as a CacheWarning, and keeps what it holds), the file is hashed."""
    read = _WEIGHTS_READ.get()
    if read is not None:
        read.append(os.fspath(path))
    store = _SHA256_STORE.get()
    if store is not None:
        sha256, _ = store.content_keys([path])[0]
        if sha256 is not None:
            return sha256
    return file_sha256(path)  # no store, or a file the store could not stat or read: the plain error


def files_fingerprint(*parts: str | os.PathLike) -> str:
    """One SHA-256 over several files' contents and plain strings (a config name, a tag), in order, for
    models whose weights, configuration and tokenizer live in several files (each file's SHA-256 through
    `weights_sha256`)."""
    digest = hashlib.sha256()
    for part in parts:
        path = Path(part) if not isinstance(part, str) else None
        digest.update((weights_sha256(path) if path is not None else part).encode())
    return digest.hexdigest()
