"""What a model file or folder may do when clipnb loads it: nothing but give tensors (docs/security.md).

Each rule lives here once, and every family calls it before its library reads a file:
- `check_checkpoint`: a checkpoint archive (the zip format torch.save writes) must pass its zip CRC check,
  and TorchScript (code that runs when it is loaded) is read only for OpenAI's official archives, known by
  their SHA-256;
- `check_folder` and `refuse_remote_code`: a model folder's configs must not ask for code shipped with the
  model (`trust_remote_code`, `auto_map`), and its archives pass `check_checkpoint`;
- `no_remote_code`: transformers never asks "Do you wish to run the custom code? [y/N]";
- `reason`: a library's error in one line, without torch's advice to turn `weights_only` off or
  transformers' advice to turn `trust_remote_code` on.
Plain state dicts are read with `load_state_dict` (`torch.load(..., weights_only=True)`); an official
TorchScript archive through `official_torchscript_bytes` (one read, hashed and checked).
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import os
import re
import warnings
import zipfile
from pathlib import Path

from .loading import ModelError, weights_sha256

# check_checkpoint's answers: what the file is, once it passed
OFFICIAL_TORCHSCRIPT = "official torchscript"  # one of OpenAI's released archives: torch.jit.load may read it
ARCHIVE = "archive"  # a zip archive as torch.save writes, its CRC checked
OTHER = "other"  # not a zip (an old-format pickle, safetensors, ...): its reader checks it
# the files of a model folder that torch reads as archives (safetensors and configs are not archives)
ARCHIVE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")
# sentences of library errors that advise turning a safety off: never repeated to a user
_ADVICE = re.compile(r"weights_only|trust_remote_code|safe_globals|trusted source|if you trust", re.IGNORECASE)
_BOILERPLATE = ("Weights only load failed", "Please file an issue", "Check the documentation")


def import_clip():
    """openai-clip, without the pkg_resources deprecation warning it triggers on import."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*pkg_resources.*", category=UserWarning)
        import clip
    return clip


@functools.cache
def official_torchscript_sha256() -> frozenset[str]:
    """The SHA-256 of each of OpenAI's released CLIP archives: openai-clip's download addresses carry them
    (.../clip/models/<sha256>/ViT-B-32.pt), the one place they are known."""
    return frozenset(url.split("/")[-2] for url in import_clip().clip._MODELS.values())


def is_torchscript_archive(path: str | os.PathLike) -> bool:
    """Whether a file is a TorchScript archive: a zip holding compiled code (code/) besides tensors."""
    try:
        with zipfile.ZipFile(path) as archive:
            return _holds_code(archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def _holds_code(names: list[str]) -> bool:
    return any("/code/" in name or name.startswith("code/") or name.endswith("constants.pkl") for name in names)


def check_checkpoint(path: str | os.PathLike, sha256: str | None = None) -> str:
    """Check a checkpoint file before anything reads it; ARCHIVE, OFFICIAL_TORCHSCRIPT or OTHER (see above).

    A zip archive's members must match their CRC-32 (zipfile's testzip), so that a damaged copy is refused
    instead of giving other scores. A TorchScript archive must be one of OpenAI's official files (its
    SHA-256; `sha256` when the caller has it already): any other would run its code when loaded.
    Raises ModelError naming the file and what to do."""
    path = Path(path)
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        return OTHER
    except OSError as exc:
        raise ModelError(f"checkpoint {path} could not be opened ({exc.strerror or exc}): check that the file is "
                         "there and readable") from None
    with archive:
        _check_crc(archive, path)
        if not _holds_code(archive.namelist()):
            return ARCHIVE
    # an unchanged file's SHA-256 from load_model's store (open_clip's "openai" tag is such an archive)
    if (sha256 or weights_sha256(path)) in official_torchscript_sha256():
        return OFFICIAL_TORCHSCRIPT
    raise ModelError(
        f"checkpoint {path} is a TorchScript archive, which holds code that runs when it is loaded; clipnb loads "
        "TorchScript only for OpenAI's official CLIP files (known by their SHA-256), and this is not one of them. "
        "If you trust the file, convert it once into a plain state dict in your own Python: "
        f"`import torch; torch.save(torch.jit.load({str(path)!r}).state_dict(), 'state_dict.pt')`, and give "
        "state_dict.pt instead.")


def _check_crc(archive: zipfile.ZipFile, path: Path) -> None:
    try:
        damaged = archive.testzip()
    except Exception as exc:  # zipfile raises several types for a damaged member header or data
        damaged = f"? ({reason(exc)})"
    if damaged is not None:
        raise ModelError(f"checkpoint {path} is damaged: its part {damaged!r} does not match the CRC-32 checksum "
                         "saved with it, so the file changed after it was written (a bad copy, disk or "
                         "download). Download or save it again.")


def official_torchscript_bytes(path: str | os.PathLike) -> bytes:
    """An official TorchScript archive's bytes, read once, hashed and CRC-checked: torch.jit.load reads these
    same bytes (io.BytesIO), so a file swapped in after check_checkpoint can never be loaded unchecked.
    Official archives are ~350 MB, which memory holds easily (and torch.jit.load makes its tensors anyway)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"checkpoint {path} could not be read ({exc.strerror or exc}): check that the file is "
                         "there and readable") from None
    if hashlib.sha256(data).hexdigest() not in official_torchscript_sha256():
        raise ModelError(f"checkpoint {path} changed while it was being loaded and is no longer one of OpenAI's "
                         "official archives (its SHA-256); it was not loaded. Check what writes to it, and load "
                         "it again.")
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        _check_crc(archive, path)
    return data


def load_state_dict(path: str | os.PathLike):
    """torch.load with weights_only=True (a checkpoint cannot run code), the families' one call of it. torch's
    warning about an old-format pickle ("Detected pickle protocol 4 ... weights_only Unpickler") is kept from
    the user, who gets clipnb's own line when the file cannot be read."""
    import torch

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Detected pickle protocol", category=UserWarning)
        return torch.load(str(path), map_location="cpu", weights_only=True)


def check_folder(folder: str | os.PathLike) -> None:
    """Check a model folder before a library reads it: no config asks for code shipped with the model
    (refuse_remote_code), and each archive passes check_checkpoint."""
    for path in sorted(Path(folder).iterdir()):
        if path.name.startswith(".") or not path.is_file():
            continue
        if path.name.endswith("config.json"):  # config.json, tokenizer_config.json, open_clip_config.json, ...
            refuse_remote_code(path)  # (not vocab.json or tokenizer.json, whose keys are tokens)
        elif path.suffix in ARCHIVE_SUFFIXES:
            check_checkpoint(path)


def refuse_remote_code(config: str | os.PathLike) -> None:
    """A ModelError when a model's JSON config asks for code shipped with the model: `trust_remote_code`
    set anywhere in it, or an `auto_map` (transformers' custom classes, Python files beside the model)."""
    config = Path(config)
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return  # not a config at all: the library that reads the folder says what is wrong with it
    found = sorted(set(_remote_code_keys(data)))
    if found:
        raise ModelError(f"model config {config} asks for Python code shipped with the model to be run "
                         f"({', '.join(found)}); clipnb never runs code from a model folder or repository: use a "
                         "model whose architecture and tokenizer its library builds from its own code")


def _remote_code_keys(data):
    """The keys of a JSON document (at any depth) that ask for remote code."""
    if isinstance(data, dict):
        for key, value in data.items():
            if key == "trust_remote_code" and value:
                yield key
            elif key == "auto_map" and value:
                yield key
            else:
                yield from _remote_code_keys(value)
    elif isinstance(data, list):
        for value in data:
            yield from _remote_code_keys(value)


@contextlib.contextmanager
def no_remote_code():
    """transformers never prompts for custom code within this block: a library call that leaves
    trust_remote_code unset (open_clip's Hugging Face text towers and tokenizers) meets transformers' own
    setting for unattended runs (TIME_OUT_REMOTE_CODE = 0, as its CI sets it) and is refused instead."""
    from transformers import dynamic_module_utils

    before = dynamic_module_utils.TIME_OUT_REMOTE_CODE
    dynamic_module_utils.TIME_OUT_REMOTE_CODE = 0
    try:
        yield
    finally:
        dynamic_module_utils.TIME_OUT_REMOTE_CODE = before


def reason(exc: BaseException) -> str:
    """A library's error as "Type: what went wrong", on one line, in at most 300 characters.

    torch's many-line loading errors are reduced to their informative line, and no sentence advising to turn
    a safety off (weights_only=False, trust_remote_code=True, safe globals) is kept."""
    if isinstance(exc, EOFError) and not str(exc):
        return "EOFError: the file ends early"
    lines = []
    for line in str(exc).splitlines():
        sentences = [s for s in re.split(r"(?<=[.!?])\s+", line.strip())
                     if s and not s.startswith(_BOILERPLATE) and not _ADVICE.search(s)]
        if sentences:
            lines.append(" ".join(sentences))
    # "Error(s) in loading state_dict for CLIP:" says what is wrong on its next line
    text = " ".join(lines[:2]) if lines and lines[0].endswith(":") else (lines[0] if lines else "")
    text = text.split(" This is an internal miniz error")[0]
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__
