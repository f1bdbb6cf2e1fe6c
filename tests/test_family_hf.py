"""The Hugging Face transformers family ("hf:ID_OR_DIR") against transformers' own zero-shot pipeline, on
tiny random CLIP, SigLIP and Chinese-CLIP models saved with save_pretrained (tests/family_models.py)."""
import hashlib
import math
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

import clipnb
from clipnb.embed.pipeline import DRAFT_TOLERANCE
from clipnb.models.families import huggingface
from conftest import PHOTOS
from family_models import save_hf_chinese_clip_model, save_hf_clip_model, save_hf_siglip_model

# one template (the pipeline's hypothesis_template) and classes each tiny tokenizer knows
SETUPS = {
    "clip": (save_hf_clip_model, "a photo of a {}.", ["cat", "dog", "red car"]),
    "siglip": (save_hf_siglip_model, "a photo of a {}", ["cat", "dog", "bird"]),
    "chinese_clip": (save_hf_chinese_clip_model, "一张{}的照片。", ["猫", "狗", "汽车"]),
}
# the tiny SigLIP starts with logit scale 1 and bias 0, under which a forgotten bias would go unseen
SIGLIP_SCALE, SIGLIP_BIAS = 10.0, -2.5


@pytest.fixture(scope="session")
def hf_folders(tmp_path_factory):
    """kind -> a save_pretrained folder of a tiny model of that kind."""
    root = tmp_path_factory.mktemp("hf")
    folders = {kind: save(root / kind) for kind, (save, _, _) in SETUPS.items()}
    _edit_weights(folders["siglip"], {"logit_scale": math.log(SIGLIP_SCALE), "logit_bias": SIGLIP_BIAS})
    return folders


def _edit_weights(folder: Path, values: dict) -> None:
    """Set some of a saved model's parameters to constants (the file is rewritten in place)."""
    from safetensors.torch import load_file, save_file

    path = folder / "model.safetensors"
    state = load_file(str(path))
    for key, value in values.items():
        state[key] = torch.full_like(state[key], value)
    save_file(state, str(path), metadata={"format": "pt"})


@pytest.fixture(scope="session")
def hf_models(hf_folders):
    """kind -> the clipnb model loaded from that folder."""
    return {kind: clipnb.load_model("hf:" + str(folder), device="cpu") for kind, folder in hf_folders.items()}


@pytest.fixture(scope="session")
def test_images(tmp_path_factory):
    """PIL images of several modes and shapes, and image files (a committed photo, a PNG with alpha)."""
    root = tmp_path_factory.mktemp("hf-images")
    rng = np.random.RandomState(0)
    noise = Image.fromarray(rng.randint(0, 255, (45, 70, 3), dtype=np.uint8))
    gradient = Image.fromarray(np.tile(np.linspace(0, 255, 90, dtype=np.uint8), (60, 1)), mode="L")
    alpha = Image.fromarray(rng.randint(0, 255, (80, 40, 4), dtype=np.uint8), mode="RGBA")
    alpha.save(root / "alpha.png")
    return [noise, gradient, PHOTOS[0], root / "alpha.png"]


@pytest.fixture(scope="session")
def pipelines(hf_folders):
    """kind -> transformers' zero-shot-image-classification pipeline on the same folder."""
    from transformers import pipeline

    return {kind: pipeline("zero-shot-image-classification", model=str(folder), device="cpu")
            for kind, folder in hf_folders.items()}


def _pipeline_probabilities(pipe, images, template, classes) -> np.ndarray:
    rows = []
    for image in images:
        result = pipe(image if isinstance(image, Image.Image) else str(image), candidate_labels=classes,
                      hypothesis_template=template)
        by_label = {r["label"]: r["score"] for r in result}
        rows.append([by_label[c] for c in classes])
    return np.array(rows)


@pytest.mark.parametrize("ensemble", ["embedding", "score"])
@pytest.mark.parametrize("kind", list(SETUPS))
def test_probabilities_match_the_transformers_pipeline(kind, ensemble, hf_models, pipelines, test_images):
    _, template, classes = SETUPS[kind]
    model = hf_models[kind]
    table = clipnb.classify(test_images, classes, templates=[template], model=model, ensemble=ensemble, exact=True,
                            num_workers=0, progress=False)
    assert (table["error"] == "").all()
    ours = clipnb.probabilities(table, classes).to_numpy()
    theirs = _pipeline_probabilities(pipelines[kind], test_images, template, classes)
    np.testing.assert_allclose(ours, theirs, atol=1e-4, rtol=0)


def test_siglip_probabilities_are_sigmoids(hf_models, pipelines, test_images):
    model = hf_models["siglip"]
    assert model.sigmoid and model.logit_bias == pytest.approx(SIGLIP_BIAS)
    assert model.logit_scale == pytest.approx(SIGLIP_SCALE, rel=1e-6)
    _, template, classes = SETUPS["siglip"]
    table = clipnb.classify(test_images, classes, templates=[template], model=model, exact=True, num_workers=0,
                            progress=False)
    probs = clipnb.probabilities(table, classes).to_numpy()
    scores = clipnb.scores(table, classes).to_numpy()
    np.testing.assert_allclose(probs, 1 / (1 + np.exp(-(SIGLIP_SCALE * scores + SIGLIP_BIAS))), atol=1e-6)
    assert np.all(np.abs(probs.sum(axis=1) - 1) > 0.05)  # independent per class, not a softmax
    np.testing.assert_allclose(probs, _pipeline_probabilities(pipelines["siglip"], test_images, template, classes),
                               atol=1e-4, rtol=0)
    # SigLIP's text tower reads the last position: texts are padded to the full context, as it was trained
    tokens = model.tokenize(["cat", "a photo of a dog"])
    assert tokens["input_ids"].shape == (2, model.context_length) == (2, 64)


@pytest.mark.parametrize("kind", list(SETUPS))
def test_model_parts(kind, hf_models, hf_folders, test_images):
    from transformers import AutoProcessor

    model = hf_models[kind]
    processor = AutoProcessor.from_pretrained(str(hf_folders[kind]))
    assert model.name == f"hf:{kind}" and model.family == "hf" and model.dtype == torch.float32
    assert model.input_resolution == 32
    image = test_images[0]
    assert torch.equal(model.preprocess(image), processor.image_processor(images=[image], return_tensors="pt")["pixel_values"][0])
    assert model.encode_image_tensors(model.preprocess(image)[None]).shape == (1, model.embed_dim)
    text = SETUPS[kind][1].format(SETUPS[kind][2][0])
    assert model.tokenizer.count(text) == len(processor.tokenizer(text)["input_ids"])
    assert model.encode_token_tensors(model.tokenize([text])).shape == (1, model.embed_dim)
    assert model.sigmoid == (kind == "siglip")


def test_fingerprint_follows_the_weights_not_the_folder(hf_folders, hf_models, tmp_path):
    copy = shutil.copytree(hf_folders["clip"], tmp_path / "elsewhere" / "my-clip")
    assert clipnb.load_model("hf:" + str(copy), device="cpu").fingerprint == hf_models["clip"].fingerprint
    _edit_weights(copy, {"logit_scale": 3.0})
    changed = clipnb.load_model("hf:" + str(copy), device="cpu")
    assert changed.fingerprint != hf_models["clip"].fingerprint
    assert changed.logit_scale == pytest.approx(math.exp(3.0), rel=1e-6)


def test_a_folder_that_is_not_a_model_fails_fast(tmp_path):
    (tmp_path / "notes.txt").write_text("not a model")
    started = time.perf_counter()
    with pytest.raises(clipnb.ModelError, match="no config.json") as error:
        clipnb.load_model(f"hf:{tmp_path}", device="cpu")
    assert str(tmp_path) in str(error.value) and time.perf_counter() - started < 5


def test_a_model_that_is_not_clip_like_is_refused(tmp_path):
    from transformers import BertConfig

    BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64).save_pretrained(tmp_path)
    with pytest.raises(clipnb.ModelError, match="not a CLIP-like model") as error:
        clipnb.load_model(f"hf:{tmp_path}", device="cpu")
    assert "'bert'" in str(error.value)


def test_a_variable_resolution_siglip2_is_refused(tmp_path):
    from transformers import Siglip2Config

    Siglip2Config().save_pretrained(tmp_path)  # refused from its config, before any weights are read
    with pytest.raises(clipnb.ModelError, match="NaFlex"):
        clipnb.load_model(f"hf:{tmp_path}", device="cpu")


def test_a_missing_id_offline_fails_fast_saying_how_to_get_it(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    started = time.perf_counter()
    with pytest.raises(clipnb.ModelError) as error:
        clipnb.load_model("hf:clipnb-tests/no-such-model", device="cpu", download_root=tmp_path)
    message = str(error.value)
    assert time.perf_counter() - started < 5
    assert "clipnb-tests/no-such-model" in message and str(tmp_path) in message
    assert "hf download clipnb-tests/no-such-model" in message and "\n" not in message


def _fake_hub_cache(cache: Path, repo_id: str, folder: Path) -> Path:
    """The hub cache layout huggingface_hub writes: blobs named by content, a snapshot of links, refs/main."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    commit = hashlib.sha1(repo_id.encode()).hexdigest()
    snapshot = repo / "snapshots" / commit
    (repo / "blobs").mkdir(parents=True)
    snapshot.mkdir(parents=True)
    for path in folder.iterdir():
        blob = repo / "blobs" / hashlib.sha256(path.read_bytes()).hexdigest()
        shutil.copyfile(path, blob)
        (snapshot / path.name).symlink_to(os.path.relpath(blob, snapshot))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    return snapshot


def test_a_hub_id_loads_offline_from_the_cache_and_is_listed(hf_folders, hf_models, tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    snapshot = _fake_hub_cache(tmp_path, "tiny-org/tiny-siglip", hf_folders["siglip"])
    model = clipnb.load_model("hf:tiny-org/tiny-siglip", device="cpu", download_root=tmp_path)
    assert model.name == "hf:tiny-org/tiny-siglip" and Path(model.source) == snapshot
    # blobs named by their SHA-256 (as the hub names weights) stand for their contents: same files, same fingerprint
    assert model.sigmoid and model.fingerprint == hf_models["siglip"].fingerprint
    features = model.encode_token_tensors(model.tokenize(["a photo of a cat"]))
    torch.testing.assert_close(features, hf_models["siglip"].encode_token_tensors(
        hf_models["siglip"].tokenize(["a photo of a cat"])))
    rows = {row.name: row for row in clipnb.list_models("hf", download_root=tmp_path)}
    assert rows["tiny-org/tiny-siglip"].on_disk == ("tiny-org/tiny-siglip",)
    assert "openai/clip-vit-base-patch32" in rows and rows["openai/clip-vit-base-patch32"].on_disk == ()
    assert {name for names in huggingface.KNOWN.values() for name in names} <= set(rows)


def test_prompt_length_is_counted_by_the_model_tokenizer(hf_models):
    model = hf_models["chinese_clip"]  # BERT: one token per Chinese character, plus [CLS] and [SEP]
    assert model.context_length == 52
    fits, too_long = "猫" * (model.context_length - 2), "猫" * (model.context_length - 1)
    assert model.tokenizer.count(fits) == model.context_length
    clipnb.build_head(model, [fits, "狗"], templates=["{}"])
    with pytest.raises(clipnb.PromptError, match="longer than"):
        clipnb.build_head(model, [too_long, "狗"], templates=["{}"])
    head = clipnb.build_head(model, [too_long, "狗"], templates=["{}"], truncate=True)
    torch.testing.assert_close(head.text_features[0], clipnb.build_head(model, [fits, "狗"], templates=["{}"]).text_features[0])
    with pytest.raises(clipnb.PromptError, match="longer than"):
        clipnb.build_head(hf_models["siglip"], ["cat " * 70, "dog"], templates=["{}"])


@pytest.fixture(scope="session")
def large_jpeg(tmp_path_factory):
    """A 2000x1500 JPEG of smooth shapes, which Pillow's draft mode decodes at a reduced scale."""
    image = Image.new("RGB", (2000, 1500), (200, 220, 240))
    draw = ImageDraw.Draw(image)
    draw.ellipse((300, 200, 1100, 1000), fill=(220, 60, 40))
    draw.rectangle((1100, 600, 1800, 1300), fill=(40, 120, 60))
    draw.polygon([(200, 1400), (900, 1100), (600, 1450)], fill=(30, 30, 160))
    path = tmp_path_factory.mktemp("hf-large") / "large.jpg"
    image.save(path, quality=90)
    return path


@pytest.mark.parametrize("kind", list(SETUPS))
def test_draft_decoding_stays_within_tolerance(kind, hf_models, large_jpeg):
    model = hf_models[kind]
    draft = clipnb.embed_images(model, [large_jpeg], exact=False, num_workers=0, progress=False).features[0]
    exact = clipnb.embed_images(model, [large_jpeg], exact=True, num_workers=0, progress=False).features[0]
    assert 1 - float(draft @ exact) <= DRAFT_TOLERANCE
