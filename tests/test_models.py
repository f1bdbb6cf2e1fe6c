"""load_model: every kind of source, devices and precision, fingerprints, the offline error, and what the demo
model knows."""
import io
import os
import pickle
import subprocess
import sys
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest
import torch
from PIL import Image

import clipnb
from clipnb import ModelError, load_model
from clipnb.cli import main as cli_main
from clipnb.models.families.openai import encode_text_trimmed, read_checkpoint
from clipnb.models.files import is_torchscript_archive
from clipnb.models.loading import DEMO_NAME, available_models

from conftest import ROOT, _max_diff, run_python, save_state_dict, tiny_clip

CLASSES = ["cat", "dog"]
SUBPROCESS_TIMEOUT = 120


def test_every_official_name_is_accepted():
    names = available_models()
    for name in ["RN50", "RN101", "RN50x4", "RN50x16", "RN50x64", "ViT-B/32", "ViT-B/16", "ViT-L/14",
                 "ViT-L/14@336px", DEMO_NAME]:
        assert name in names


def test_state_dict_checkpoint_loads_float32_on_cpu(tiny_checkpoint):
    model = load_model(tiny_checkpoint, device="cpu")
    assert model.dtype == torch.float32
    assert next(model.model.parameters()).dtype == torch.float32
    assert model.input_resolution == 32 and model.context_length == 77
    assert model.name == tiny_checkpoint.name
    assert len(model.fingerprint) == 64


def test_fingerprint_follows_weights_not_file_name(tmp_path, tiny_checkpoint):
    copy = tmp_path / "renamed.pt"
    copy.write_bytes(tiny_checkpoint.read_bytes())
    other = save_state_dict(tiny_clip(seed=1), tmp_path / "other.pt")
    assert load_model(copy).fingerprint == load_model(tiny_checkpoint).fingerprint
    assert load_model(other).fingerprint != load_model(tiny_checkpoint).fingerprint


def test_nested_state_dict_and_full_precision(tmp_path):
    model = tiny_clip(seed=2)
    path = tmp_path / "nested.pt"
    torch.save({"state_dict": model.state_dict(), "epoch": 3}, path)
    loaded = load_model(path, device="cpu")
    pixels = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = torch.nn.functional.normalize(model.float().encode_image(pixels), dim=-1)
    assert torch.allclose(loaded.encode_image_tensors(pixels), expected, atol=1e-3)


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
def test_torchscript_archive_loads(tmp_path, monkeypatch):
    """OpenAI's releases are traced TorchScript archives; build one the same way and read it, as one of the
    official files (known by SHA-256: here the test's own file is made one)."""
    from clipnb.models import files as model_files
    from clipnb.models.loading import file_sha256

    model = tiny_clip(seed=3)
    image, text = torch.randn(1, 3, 32, 32), torch.zeros(1, 77, dtype=torch.long)
    text[0, 0], text[0, 1] = 49406, 49407
    traced = torch.jit.trace(model, (image, text), check_trace=False)
    path = tmp_path / "traced.pt"
    traced.save(str(path))
    assert is_torchscript_archive(path)
    monkeypatch.setattr(model_files, "official_torchscript_sha256", lambda: frozenset({file_sha256(path)}))
    loaded = load_model(path, device="cpu")
    with torch.no_grad():
        expected = torch.nn.functional.normalize(model.encode_image(image), dim=-1)
    assert torch.allclose(loaded.encode_image_tensors(image), expected, atol=1e-3)


def test_resnet_checkpoint_loads(tmp_path):
    path = save_state_dict(tiny_clip(seed=4, resolution=64, resnet=True), tmp_path / "rn.pt")
    model = load_model(path, device="cpu")
    assert model.input_resolution == 64
    out = model.encode_image_tensors(torch.randn(2, 3, 64, 64))
    assert out.shape == (2, 512)
    assert torch.allclose(out.norm(dim=-1), torch.ones(2), atol=1e-5)


@pytest.mark.parametrize("resnet", [False, True])
def test_load_model_builds_what_openai_clips_build_model_builds(tmp_path, resnet):
    """clipnb builds the architecture without initialising it; the result must be openai-clip's to the bit,
    including build_model's fp16 rounding of a float32 checkpoint and the text transformer's causal mask."""
    from clip.model import build_model

    original = tiny_clip(seed=5, resolution=64 if resnet else 32, resnet=resnet)
    path = save_state_dict(original, tmp_path / "full.pt", half=False)
    loaded = load_model(path, device="cpu").model
    reference = build_model(dict(original.state_dict())).float().eval()
    ours, theirs = loaded.state_dict(), reference.state_dict()
    assert ours.keys() == theirs.keys()
    for key in ours:
        assert ours[key].dtype == theirs[key].dtype and torch.equal(ours[key], theirs[key]), key
    for module in loaded.modules():  # nothing left on the meta device
        assert not any(isinstance(v, torch.Tensor) and v.is_meta for v in vars(module).values())
    size = 64 if resnet else 32
    image, tokens = torch.randn(2, 3, size, size), clipnb.load_model(path).tokenize(["a red circle", "a dog"])
    with torch.no_grad():
        assert torch.equal(loaded.encode_image(image), reference.encode_image(image))
        assert torch.equal(loaded.encode_text(tokens), reference.encode_text(tokens))


def test_offline_official_model_gives_one_clear_error(tmp_path, monkeypatch):
    import urllib.error
    import urllib.request

    def refuse(*args, **kwargs):
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    with pytest.raises(ModelError) as info:
        load_model("ViT-B/32", download_root=tmp_path)
    message = str(info.value)
    assert "ViT-B/32" in message
    assert str(tmp_path / "ViT-B-32.pt") in message
    assert "https://openaipublic.azureedge.net/clip/models/" in message
    assert "network is unreachable" in message
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_unknown_name_and_folder_and_missing_cuda(tmp_path):
    with pytest.raises(ModelError, match="unknown model 'ViT-Z/99'"):
        load_model("ViT-Z/99")
    with pytest.raises(ModelError, match="is a folder"):
        load_model(tmp_path)
    if not torch.cuda.is_available():
        with pytest.raises(ModelError, match="CUDA is not available"):
            load_model("demo", device="cuda")


def test_a_gpu_is_always_named_with_its_index(monkeypatch):
    # the current GPU is per thread: clipnb's threads must not fall back to cuda:0 when the model is on cuda:1
    from clipnb.models.loading import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    assert resolve_device("cuda") == torch.device("cuda", 1)
    assert resolve_device("auto") == torch.device("cuda", 1)
    assert resolve_device("cuda:0") == torch.device("cuda", 0)


def test_plain_values_beside_the_tensors_are_tolerated(tmp_path):
    """Some checkpoints carry build_model's integer keys as plain numbers; build_model drops them."""
    state = {k: v.half() for k, v in tiny_clip(seed=6).state_dict().items()}
    state.update(input_resolution=32, context_length=77, vocab_size=49408)
    torch.save(state, tmp_path / "with-ints.pt")
    assert load_model(tmp_path / "with-ints.pt", device="cpu").input_resolution == 32


def test_not_a_clip_state_dict(tmp_path):
    path = tmp_path / "linear.pt"
    torch.save(torch.nn.Linear(2, 2).state_dict(), path)
    with pytest.raises(ModelError, match="not a CLIP state dict"):
        read_checkpoint(path)


def test_auto_device_is_cpu_without_cuda(tiny_checkpoint):
    model = load_model(tiny_checkpoint)
    assert model.device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert repr(model).startswith("ClipModel(")
    assert clipnb.ClipModel is type(model)


def test_the_demo_model_knows_its_colours_and_shapes(tiny_model):
    from clipnb.models.demo_vocabulary import ALL_COLOURS, ALL_SHAPES, CHINESE, CLASSES, CLASSES_ZH, HELD_OUT, HELD_OUT_ZH

    vocabulary = load_model(DEMO_NAME, device="cpu").vocabulary
    assert vocabulary.subject == "coloured shapes"
    assert vocabulary.words == set(ALL_COLOURS) | set(ALL_SHAPES) | set(CHINESE.values())
    assert all(vocabulary.knows(name) for name in CLASSES + HELD_OUT + vocabulary.examples)
    assert vocabulary.knows("Purple  CIRCLE") and vocabulary.knows("red") and vocabulary.knows("a red circle")
    for name in ["cat", "red car", "a cat", "circle of friends", "the", "", "123"]:
        assert not vocabulary.knows(name), name
    # Chinese classes are a colour and a shape written together: known when both words are
    assert all(vocabulary.knows(name) for name in CLASSES_ZH + HELD_OUT_ZH)
    assert vocabulary.knows("红色") and vocabulary.knows("圆形") and vocabulary.knows("红色 圆形")
    assert vocabulary.knows("红色的圆形") and not vocabulary.knows("的")
    for name in ["猫", "红色猫", "一只猫", "青色星形", "红色圆形的猫", "猫的"]:
        assert not vocabulary.knows(name), name
    assert tiny_model.vocabulary is None  # a general CLIP model


def test_loading_the_demo_model_imports_no_training_code():
    code = ("import sys, clipnb; m = clipnb.load_model('demo', device='cpu'); assert m.vocabulary is not None; "
            "print(sorted(n for n in sys.modules if n in ('clipnb.train', 'clipnb.models.demo_vocabulary')))")
    out = run_python(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['clipnb.models.demo_vocabulary']"


def test_classifying_imports_neither_the_demo_world_nor_the_benchmark():
    code = ("import sys, clipnb, clipnb.classify, clipnb.cli, clipnb.report.writers; clipnb.load_model('demo', device='cpu'); "
            "print(sorted(n for n in sys.modules if n.startswith(('clipnb.demo', 'clipnb.bench', 'clipnb.train'))))")
    out = run_python(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_trimmed_text_encoder_equals_openai_clips(tiny_model):
    texts = ["a cat", "a photo of a small red circle on a white background", "word " * 100]
    tokens = tiny_model.tokenize(texts, truncate=True)
    with torch.inference_mode():
        full = tiny_model.model.encode_text(tokens)
        assert _max_diff(encode_text_trimmed(tiny_model.model, tokens[:2]), full[:2]) <= 1e-5
        assert _max_diff(encode_text_trimmed(tiny_model.model, tokens), full) <= 1e-5
        assert _max_diff(encode_text_trimmed(tiny_model.model, tokens[:1]), full[:1]) <= 1e-5


class RunsCode:
    """Unpickling this runs a shell command: what a malicious checkpoint does."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch '{self.marker}'",)


def hostile_checkpoints(folder: Path, tiny_checkpoint: Path, marker: Path) -> dict[str, tuple[Path, str]]:
    data = tiny_checkpoint.read_bytes()
    made = {}

    def put(name, content, message):
        path = folder / name
        path.write_bytes(content)
        made[name] = (path, message)

    put("truncated.pt", data[: len(data) // 2], "could not be read")
    put("cut at the end.pt", data[:-100], "could not be read")
    put("empty.pt", b"", "could not be read")
    put("junk.pt", os.urandom(4096), "could not be read")
    put("text.pt", b"<html>not a checkpoint</html>", "could not be read")
    torch.save({"weights": torch.zeros(2)}, folder / "other.pt")
    made["other.pt"] = (folder / "other.pt", "not a CLIP state dict")
    torch.save({"visual.proj": RunsCode(marker)}, folder / "malicious-zip.pt")
    made["malicious-zip.pt"] = (folder / "malicious-zip.pt", "could run code")
    put("malicious-pickle.pt", pickle.dumps({"visual.proj": RunsCode(marker)}, protocol=2), "could run code")
    scripted = io.BytesIO()
    with zipfile.ZipFile(scripted, "w") as archive:  # looks like a TorchScript archive, carries a pickle
        archive.writestr("model/code/__torch__.py", "def forward(self):\n    return 1\n")
        archive.writestr("model/data.pkl", pickle.dumps(RunsCode(marker)))
        archive.writestr("model/version", "3\n")
    put("malicious-torchscript.pt", scripted.getvalue(), "is a TorchScript archive")
    return made


def test_damaged_and_malicious_checkpoints_give_a_clear_model_error_and_run_nothing(tiny_checkpoint, tmp_path,
                                                                                   capsys):
    marker = tmp_path / "code ran"
    made = hostile_checkpoints(tmp_path, tiny_checkpoint, marker)
    for name, (path, message) in made.items():
        with pytest.raises(clipnb.ModelError, match=message) as caught:
            clipnb.load_model(path, device="cpu")
        assert str(path) in str(caught.value), name
        assert not marker.exists(), f"loading {name} ran code"
    Image.new("RGB", (8, 8)).save(tmp_path / "ok.png")
    for name in ("truncated.pt", "malicious-pickle.pt"):
        code = cli_main(["classify", str(tmp_path / "ok.png"), "--classes", *CLASSES, "--model", str(made[name][0]),
                         "--csv", str(tmp_path / "r.csv"), "--no-cache"])
        err = capsys.readouterr().err.strip()
        assert code == 2 and err.startswith("clipnb: error: checkpoint") and "\n" not in err
    assert not marker.exists() and not (tmp_path / "r.csv").exists()


def test_the_truncated_checkpoint_in_a_real_process(tiny_checkpoint, tmp_path):
    cut = tmp_path / "cut.pt"
    cut.write_bytes(tiny_checkpoint.read_bytes()[:5000])
    Image.new("RGB", (8, 8)).save(tmp_path / "ok.png")
    proc = subprocess.run([sys.executable, "-m", "clipnb", "classify", str(tmp_path), "--classes", *CLASSES,
                           "--model", str(cut), "--csv", str(tmp_path / "r.csv")], capture_output=True, text=True,
                          cwd=ROOT, timeout=SUBPROCESS_TIMEOUT)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "truncated" in proc.stderr


def test_an_official_file_with_the_wrong_sha256_is_a_clear_error(tmp_path, monkeypatch, capsys):
    """openai-clip checks the SHA-256 in the URL; a damaged cached file is named as such (no network used)."""
    def no_network(*args, **kwargs):
        raise urllib.error.URLError("no network in this test")
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "ViT-B-32.pt").write_bytes(b"\0" * 10_000)  # an interrupted download, say
    assert clipnb.models.families.openai.official_checkpoint_path("ViT-B/32", weights) == weights / "ViT-B-32.pt"
    with pytest.raises(clipnb.ModelError) as caught:
        clipnb.load_model("ViT-B/32", device="cpu", download_root=weights)
    message = str(caught.value)
    assert "damaged or incomplete" in message and "SHA-256" in message and str(weights / "ViT-B-32.pt") in message
    Image.new("RGB", (8, 8)).save(tmp_path / "ok.png")
    code = cli_main(["classify", str(tmp_path / "ok.png"), "--classes", "cat", "--model", "ViT-B/32",
                     "--download-root", str(weights), "--csv", str(tmp_path / "r.csv")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "damaged or incomplete" in err and "\n" not in err


def test_state_dicts_are_read_with_weights_only(tiny_checkpoint, monkeypatch):
    calls = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)
    monkeypatch.setattr(torch, "load", spy)
    clipnb.load_model(tiny_checkpoint, device="cpu")
    assert calls == [True]


@pytest.mark.parametrize("spec, family, name, pretrained", [
    ("ViT-B/32", "openai", "ViT-B/32", None),
    ("ViT-L/14@336px", "openai", "ViT-L/14@336px", None),
    ("open_clip:ViT-B-32,laion2b_s34b_b79k", "open_clip", "ViT-B-32", "laion2b_s34b_b79k"),
    ("open_clip:local-dir:/models/x", "open_clip", "local-dir:/models/x", None),
    ("hf:openai/clip-vit-base-patch32", "hf", "openai/clip-vit-base-patch32", None),
    ("cn_clip:ViT-B-16, /ckpt/a.pt", "cn_clip", "ViT-B-16", "/ckpt/a.pt"),
])
def test_a_spec_names_its_family_model_and_weights(spec, family, name, pretrained):
    from clipnb.models.loading import parse_spec

    assert parse_spec(spec) == (family, name, pretrained)


def test_weights_given_apart_win_over_none_and_a_mistyped_family_is_named():
    from clipnb.models.loading import ModelError, parse_spec

    assert parse_spec("open_clip:ViT-B-32", "openai") == ("open_clip", "ViT-B-32", "openai")
    with pytest.raises(ModelError, match=r"unknown family 'openclip': did you mean 'open_clip:ViT-B-32'"):
        parse_spec("openclip:ViT-B-32")
