"""Nothing runs from a model file or folder, and nothing damaged is used (issue 23, items 1-6; docs/security.md):
TorchScript only for OpenAI's SHA-256-known archives, no trust_remote_code anywhere, no advice to turn
weights_only off, no random open_clip model for a folder without weights, zip CRC checked before any family
reads a checkpoint; and one-line messages for devices clipnb cannot run on. Every payload is written here."""
import json
import os
import shutil
import struct
import warnings
import zipfile
from pathlib import Path

import pytest
import torch
from PIL import Image

import clipnb
from clipnb.models import files as model_files
from clipnb.cli import main as cli_main
from clipnb.models.loading import ModelError, file_sha256, resolve_device

from conftest import save_state_dict, tiny_clip
from family_models import save_hf_clip_model, save_open_clip_model

# a message that advised loading with code allowed would say one of these
SAFETY_OFF = ("weights_only", "trust_remote_code=True", "safe_globals")


class RunsCode:
    """A pickle payload: unpickling it would create a marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch '{self.marker}'",)


def scripted_module(path: Path) -> Path:
    """A TorchScript archive (a scripted module: compiled code in code/, which runs when it is loaded)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit is deprecated, and it is what a hostile file would use
        torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(path))
    return path


def flip_tensor_bytes(path: Path, count: int = 200) -> Path:
    """Flip `count` bytes in the middle of the largest member's data (a tensor), leaving the zip's structure
    (headers, central directory, the stored CRC) as it was: the damage a bad copy or disk does."""
    with zipfile.ZipFile(path) as archive:
        info = max(archive.infolist(), key=lambda i: i.file_size)
    data = bytearray(path.read_bytes())
    name_length, extra_length = struct.unpack("<HH", data[info.header_offset + 26:info.header_offset + 30])
    start = info.header_offset + 30 + name_length + extra_length + info.file_size // 2 - count // 2
    for i in range(start, start + count):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    return path


@pytest.fixture()
def no_jit(monkeypatch):
    """torch.jit.load (or torch's TorchScript importer under any other door) fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("a TorchScript archive was loaded")
    monkeypatch.setattr(torch.jit, "load", refuse)
    monkeypatch.setattr(torch._C, "import_ir_module", refuse)


def model_error(*args, **kwargs) -> str:
    with pytest.raises(ModelError) as caught:
        clipnb.load_model(*args, device="cpu", **kwargs)
    message = str(caught.value)
    assert "\n" not in message and not any(words in message for words in SAFETY_OFF), message
    return message


# ------------------------------------------------------------------ item 1: TorchScript


def test_a_torchscript_file_is_refused_before_any_jit_load_in_every_family(tmp_path, no_jit):
    path = scripted_module(tmp_path / "model.pt")
    for spec, pretrained in [(str(path), None), ("open_clip:ViT-B-32", str(path)), ("cn_clip:RN50", str(path))]:
        message = model_error(spec, pretrained=pretrained)
        assert f"checkpoint {path} is a TorchScript archive" in message, spec
        # the way out is the user's own Python, never clipnb loading the same file
        assert "torch.save(torch.jit.load(" in message and ".state_dict()" in message, spec
        assert "clipnb.load_model" not in message, spec


def test_a_torchscript_file_in_a_model_folder_is_refused(tmp_path, no_jit):
    _, folder = save_open_clip_model(tmp_path / "open_clip")
    (folder / "open_clip_model.safetensors").unlink()
    scripted_module(folder / "open_clip_pytorch_model.bin")
    assert "is a TorchScript archive" in model_error(f"open_clip:local-dir:{folder}")
    hf = save_hf_clip_model(tmp_path / "hf")
    scripted_module(hf / "pytorch_model.bin")
    assert "is a TorchScript archive" in model_error(f"hf:{hf}")


def test_the_command_line_refuses_a_torchscript_file_in_one_line(tmp_path, no_jit, capsys):
    path = scripted_module(tmp_path / "model.pt")
    Image.new("RGB", (8, 8)).save(tmp_path / "ok.png")
    code = cli_main(["classify", str(tmp_path / "ok.png"), "--classes", "cat", "dog", "--model", str(path),
                     "--csv", str(tmp_path / "r.csv"), "--no-cache"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "is a TorchScript archive" in err and "\n" not in err
    assert not (tmp_path / "r.csv").exists()


def test_a_torchscript_file_with_an_official_sha256_goes_to_jit(tmp_path, monkeypatch):
    """The official set comes from openai-clip's download addresses; made to hold this file's hash, the
    file is read by torch.jit.load (a Linear, so it then does not describe a CLIP model)."""
    assert len(model_files.official_torchscript_sha256()) == 9  # openai-clip's nine released models
    path = scripted_module(tmp_path / "official.pt")
    monkeypatch.setattr(model_files, "official_torchscript_sha256", lambda: frozenset({file_sha256(path)}))
    calls = []
    real = torch.jit.load
    monkeypatch.setattr(torch.jit, "load", lambda *a, **k: calls.append(a) or real(*a, **k))
    assert "does not describe a CLIP model" in model_error(str(path))
    assert len(calls) == 1
    # open_clip points an official archive at the openai family, which reads it (the hash is known)
    message = model_error("open_clip:ViT-B-32", pretrained=str(path))
    assert "one of OpenAI's official TorchScript archives" in message and f"clipnb.load_model({str(path)!r})" in message


# ------------------------------------------------------------------ items 2 and 3: remote code


def open_clip_folder_asking_for_code(folder: Path, where: str) -> Path:
    """A tiny open_clip folder whose config asks for remote code: in its tokenizer_kwargs (the attack), or
    nested anywhere else."""
    _, folder = save_open_clip_model(folder)
    config = json.loads((folder / "open_clip_config.json").read_text())
    text = config["model_cfg"]["text_cfg"]
    if where == "tokenizer_kwargs":
        text["hf_tokenizer_name"] = "evil/tokenizer"
        text["tokenizer_kwargs"] = {"trust_remote_code": True}
    else:
        config["preprocess_cfg"]["extra"] = [{"trust_remote_code": True}]
    (folder / "open_clip_config.json").write_text(json.dumps(config))
    return folder


@pytest.fixture()
def open_clip_reads_nothing(monkeypatch):
    from clipnb.models.families.openclip import import_open_clip

    open_clip = import_open_clip()

    def refuse(*args, **kwargs):
        raise AssertionError("open_clip read the folder")
    for name in ("create_model_and_transforms", "get_tokenizer", "get_model_config"):
        monkeypatch.setattr(open_clip, name, refuse)


@pytest.mark.parametrize("where", ["tokenizer_kwargs", "anywhere"])
def test_an_open_clip_folder_asking_for_remote_code_is_refused_before_open_clip_reads_it(
        where, tmp_path, open_clip_reads_nothing):
    folder = open_clip_folder_asking_for_code(tmp_path / "m", where)
    message = model_error(f"open_clip:local-dir:{folder}")
    assert f"model config {folder / 'open_clip_config.json'} asks for Python code" in message
    assert "trust_remote_code" in message and "never runs code" in message


def test_an_open_clip_folder_with_a_custom_code_tokenizer_is_refused(tmp_path, open_clip_reads_nothing):
    _, folder = save_open_clip_model(tmp_path / "m")
    (folder / "tokenizer_config.json").write_text(json.dumps(
        {"auto_map": {"AutoTokenizer": ["evil.EvilTokenizer", None]}}))
    (folder / "evil.py").write_text("open('pwned', 'w')\n")
    assert "(auto_map)" in model_error(f"open_clip:local-dir:{folder}")


def hub_cache(root: Path, repo: str, files: dict[str, str]) -> None:
    """A Hugging Face hub cache holding one snapshot of `repo` with these files (as huggingface_hub lays it
    out), so that offline loading finds them."""
    commit = "c" * 40
    base = root / f"models--{repo.replace('/', '--')}"
    (base / "snapshots" / commit).mkdir(parents=True)
    for name, text in files.items():
        (base / "snapshots" / commit / name).write_text(text)
    (base / "refs").mkdir()
    (base / "refs" / "main").write_text(commit)


def test_an_open_clip_hub_repository_asking_for_remote_code_is_refused(tmp_path, monkeypatch, open_clip_reads_nothing):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    config = {"model_cfg": {"text_cfg": {"hf_tokenizer_name": "evil/tok",
                                         "tokenizer_kwargs": {"trust_remote_code": True}}}}
    hub_cache(tmp_path, "evil/model", {"open_clip_config.json": json.dumps(config)})
    message = model_error("open_clip:hf-hub:evil/model", download_root=tmp_path)
    assert "asks for Python code" in message and "trust_remote_code" in message


@pytest.fixture(scope="module")
def hf_folder(tmp_path_factory):
    return save_hf_clip_model(tmp_path_factory.mktemp("hf") / "clip")


def test_hf_from_pretrained_is_always_called_with_trust_remote_code_false(hf_folder, monkeypatch):
    import transformers

    calls = []
    for name in ("AutoConfig", "AutoModel", "AutoProcessor"):
        cls = getattr(transformers, name)
        real = cls.from_pretrained.__func__

        def spy(klass, *args, _name=name, _real=real, **kwargs):
            calls.append((_name, kwargs.get("trust_remote_code", "unset")))
            return _real(klass, *args, **kwargs)
        monkeypatch.setattr(cls, "from_pretrained", classmethod(spy))
    clipnb.load_model(f"hf:{hf_folder}", device="cpu")
    assert {name for name, _ in calls} == {"AutoConfig", "AutoModel", "AutoProcessor"}
    assert all(value is False for _, value in calls), calls


@pytest.mark.parametrize("config_file", ["config.json", "tokenizer_config.json"])
def test_an_hf_folder_with_custom_code_is_refused_without_a_question(config_file, hf_folder, tmp_path, monkeypatch):
    import transformers

    folder = shutil.copytree(hf_folder, tmp_path / "custom")
    config = json.loads((folder / config_file).read_text())
    config["auto_map"] = {"AutoModel": "modeling_evil.EvilModel", "AutoConfig": "modeling_evil.EvilConfig"}
    (folder / config_file).write_text(json.dumps(config))
    (folder / "modeling_evil.py").write_text("open('pwned', 'w')\n")

    def refuse(*args, **kwargs):
        raise AssertionError("transformers read the folder, or asked a question")
    monkeypatch.setattr("builtins.input", refuse)
    monkeypatch.setattr(transformers.AutoConfig, "from_pretrained", refuse)
    message = model_error(f"hf:{folder}")
    assert f"model config {folder / config_file} asks for Python code" in message and "(auto_map)" in message


def test_an_hf_hub_model_with_custom_code_is_refused_before_transformers_reads_it(tmp_path, monkeypatch):
    import transformers
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    config = {"model_type": "evil", "auto_map": {"AutoConfig": "configuration_evil.EvilConfig"}}
    hub_cache(tmp_path, "evil/model", {"config.json": json.dumps(config),
                                       "configuration_evil.py": "open('pwned', 'w')\n"})

    def refuse(*args, **kwargs):
        raise AssertionError("transformers read the model, or asked a question")
    monkeypatch.setattr("builtins.input", refuse)
    monkeypatch.setattr(transformers.AutoConfig, "from_pretrained", refuse)
    message = model_error("hf:evil/model", download_root=tmp_path)
    assert "config.json asks for Python code" in message and "(auto_map)" in message


def test_transformers_never_asks_to_run_custom_code_within_the_model_stage(monkeypatch):
    """open_clip's Hugging Face parts call transformers without trust_remote_code: inside no_remote_code,
    transformers' own unattended setting refuses instead of asking "[y/N]"."""
    from transformers.dynamic_module_utils import resolve_trust_remote_code

    def refuse(*args, **kwargs):
        raise AssertionError("transformers asked whether to run custom code")
    monkeypatch.setattr("builtins.input", refuse)
    with model_files.no_remote_code(), pytest.raises(ValueError, match="custom code"):
        resolve_trust_remote_code(None, "evil/model", has_local_code=False, has_remote_code=True)


# ------------------------------------------------------------------ item 4: no advice to turn safety off


def test_torch_advice_to_turn_weights_only_off_is_never_repeated(tmp_path, tiny_checkpoint):
    marker = tmp_path / "code ran"
    payload = tmp_path / "payload.pt"
    torch.save({"visual.proj": RunsCode(marker)}, payload)
    with pytest.raises(Exception) as torch_error:  # torch's own message gives that advice
        torch.load(payload, weights_only=True)
    assert "weights_only" in str(torch_error.value)
    why = model_files.reason(torch_error.value)
    assert why.startswith("UnpicklingError: ") and "GLOBAL" in why and not any(w in why for w in SAFETY_OFF)

    _, folder = save_open_clip_model(tmp_path / "open_clip")
    (folder / "open_clip_model.safetensors").unlink()
    shutil.copy(payload, folder / "open_clip_pytorch_model.bin")
    hf = save_hf_clip_model(tmp_path / "hf")
    (hf / "model.safetensors").unlink()
    shutil.copy(payload, hf / "pytorch_model.bin")
    for spec, pretrained, named in [(str(payload), None, payload), ("cn_clip:RN50", str(payload), payload),
                                    (f"open_clip:local-dir:{folder}", None, folder), (f"hf:{hf}", None, hf)]:
        message = model_error(spec, pretrained=pretrained)  # asserts no advice to turn safety off
        assert str(named) in message, (spec, message)
    assert not marker.exists()


# ------------------------------------------------------------------ item 5: an open_clip folder without weights


def test_an_open_clip_folder_without_weights_is_an_error_not_a_random_model(tmp_path):
    _, folder = save_open_clip_model(tmp_path / "m")
    (folder / "open_clip_model.safetensors").unlink()
    message = model_error(f"open_clip:local-dir:{folder}")
    assert f"open_clip folder {folder} could not be loaded" in message and "weights file" in message
    assert "download" not in message  # nothing is downloaded for a folder


# ------------------------------------------------------------------ item 6: damaged archives


def test_a_checkpoint_with_flipped_bytes_is_refused_by_every_family(tmp_path, tiny_checkpoint):
    damaged = flip_tensor_bytes(shutil.copy(tiny_checkpoint, tmp_path / "damaged.pt"))
    torch.load(damaged, weights_only=True)  # torch itself reads it: the damage would go unseen without the check
    _, folder = save_open_clip_model(tmp_path / "open_clip")
    (folder / "open_clip_model.safetensors").unlink()
    save_state_dict(torch.nn.Linear(64, 64), folder / "open_clip_pytorch_model.bin", half=False)
    flip_tensor_bytes(folder / "open_clip_pytorch_model.bin")
    hf = save_hf_clip_model(tmp_path / "hf")
    torch.save({"w": torch.zeros(4096)}, hf / "pytorch_model.bin")
    flip_tensor_bytes(hf / "pytorch_model.bin")
    for spec, pretrained, path in [
            (str(damaged), None, damaged), ("cn_clip:RN50", str(damaged), damaged),
            ("open_clip:ViT-B-32", str(damaged), damaged),
            (f"open_clip:local-dir:{folder}", None, folder / "open_clip_pytorch_model.bin"),
            (f"hf:{hf}", None, hf / "pytorch_model.bin")]:
        message = model_error(spec, pretrained=pretrained)
        assert f"checkpoint {path} is damaged" in message and "CRC-32" in message, spec


def test_the_command_line_names_a_damaged_checkpoint_in_one_line(tmp_path, tiny_checkpoint, capsys):
    damaged = flip_tensor_bytes(shutil.copy(tiny_checkpoint, tmp_path / "damaged.pt"))
    Image.new("RGB", (8, 8)).save(tmp_path / "ok.png")
    code = cli_main(["classify", str(tmp_path / "ok.png"), "--classes", "cat", "dog", "--model", str(damaged),
                     "--csv", str(tmp_path / "r.csv"), "--no-cache"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and f"checkpoint {damaged} is damaged" in err and "\n" not in err


def test_an_intact_archive_still_loads_and_scores_as_before(tmp_path, tiny_checkpoint, tiny_model):
    copy = shutil.copy(tiny_checkpoint, tmp_path / "copy.pt")
    assert model_files.check_checkpoint(copy) == model_files.ARCHIVE
    pixels = torch.randn(2, 3, 32, 32)
    # the same file read again: the same weights, so the same numbers to the bit
    assert torch.equal(clipnb.load_model(copy, device="cpu").encode_image_tensors(pixels),
                       tiny_model.encode_image_tensors(pixels))


# ------------------------------------------------------------------ devices


@pytest.mark.parametrize("device", ["", "meta", "xla", "gpu"])
def test_a_device_clipnb_cannot_run_on_is_one_clear_line(device, tmp_path, tiny_checkpoint, capsys):
    with pytest.raises(ModelError, match=f"device {device!r} is not one clipnb runs models on"):
        resolve_device(device)
    Image.new("RGB", (8, 8)).save(tmp_path / "ok.png")
    code = cli_main(["classify", str(tmp_path / "ok.png"), "--classes", "cat", "dog", "--model",
                     str(tiny_checkpoint), "--device", device, "--csv", str(tmp_path / "r.csv"), "--no-cache"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "is not one clipnb runs models on" in err and "\n" not in err
