"""The open_clip family (clipnb/models/families/openclip.py): models loaded through clipnb.load_model score as
open_clip's own zero-shot path does, for tiny CLIP and SigLIP folders ("local-dir:") and a full-size
ViT-B-32 from a weights file; its messages for bad input; draft against exact decoding."""
import shutil
import time
import warnings

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

import clipnb
from clipnb.embed.pipeline import DRAFT_TOLERANCE
from clipnb.models.families.openclip import import_open_clip
from clipnb.models.loading import ModelError, file_sha256
from clipnb.zeroshot.schema import prob_columns, score_columns
from family_models import save_open_clip_model, save_open_clip_siglip_model, save_open_clip_state_dict

CLASSES = ["cat", "dog", "red car"]
TEMPLATES = ["a photo of a {}.", "a blurry photo of a {}.", "a drawing of a {}."]
TOLERANCE = 1e-4


def photo(width: int, height: int, seed: int) -> Image.Image:
    """A photo-like image: smooth colour gradients with a few solid shapes and some noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    channels = [np.sin(x / width * rng.uniform(1, 6) + rng.uniform(0, 6)) * np.cos(y / height * rng.uniform(1, 6))
                for _ in range(3)]
    pixels = (np.stack(channels, axis=-1) * 100 + 128 + rng.normal(0, 6, (height, width, 3))).clip(0, 255)
    image = Image.fromarray(pixels.astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(4):
        x0, y0 = int(rng.integers(0, width // 2)), int(rng.integers(0, height // 2))
        box = (x0, y0, x0 + int(rng.integers(width // 8, width // 2)), y0 + int(rng.integers(height // 8, height // 2)))
        fill = tuple(int(v) for v in rng.integers(0, 256, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=fill)
    return image


@pytest.fixture(scope="module")
def image_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    paths = []
    for i, (w, h) in enumerate([(64, 48), (40, 70), (50, 50)]):
        paths.append(folder / f"image{i}.png")
        photo(w, h, seed=i).save(paths[-1])
    return paths


@pytest.fixture(scope="module")
def tiny_folders(tmp_path_factory):
    """{"clip": (spec, folder), "siglip": (spec, folder)}: tiny open_clip models as local-dir folders."""
    root = tmp_path_factory.mktemp("open_clip")
    return {"clip": save_open_clip_model(root / "clip"), "siglip": save_open_clip_siglip_model(root / "siglip")}


@pytest.fixture(scope="session")
def vit_b_32_file(tmp_path_factory):
    """A full-size ViT-B-32 state dict (random weights, fp16, ~300 MB)."""
    return save_open_clip_state_dict(tmp_path_factory.mktemp("vit") / "vit-b-32.pt")


@pytest.fixture(scope="module")
def vit_b_32(vit_b_32_file):
    return clipnb.load_model("open_clip:ViT-B-32", pretrained=str(vit_b_32_file), device="cpu")


def open_clip_reference(spec: str, image_files):
    """open_clip's own zero-shot path: (model, normalised image features, the embedding-ensembled
    classifier [D, classes], the per-template normalised text features [classes, templates, D])."""
    open_clip = import_open_clip()
    from open_clip.zero_shot_classifier import build_zero_shot_classifier

    model, _, preprocess = open_clip.create_model_and_transforms(spec, device="cpu")
    model.eval()
    tokenizer = open_clip.get_tokenizer(spec)
    templates = [t.format for t in TEMPLATES]
    with torch.no_grad():
        pixels = torch.stack([preprocess(Image.open(p)) for p in image_files])
        image = torch.nn.functional.normalize(model.encode_image(pixels), dim=-1)
        classifier = build_zero_shot_classifier(model, tokenizer, CLASSES, templates, device="cpu", use_tqdm=False)
        per_template = torch.nn.functional.normalize(
            model.encode_text(tokenizer([t.format(c) for c in CLASSES for t in TEMPLATES])), dim=-1)
    return model, image, classifier, per_template.reshape(len(CLASSES), len(TEMPLATES), -1)


@pytest.mark.parametrize("kind", ["clip", "siglip"])
def test_local_dir_scores_as_open_clip_zero_shot(kind, tiny_folders, image_files):
    spec, _ = tiny_folders[kind]
    reference, image, classifier, per_template = open_clip_reference(spec, image_files)
    model = clipnb.load_model("open_clip:" + spec, device="cpu")
    assert model.sigmoid == (kind == "siglip")
    scale = reference.logit_scale.exp().item()
    assert model.logit_scale == pytest.approx(scale)
    bias = reference.logit_bias.item() if kind == "siglip" else None
    assert model.logit_bias == (pytest.approx(bias) if bias is not None else None)

    for ensemble, scores in [("embedding", image @ classifier), ("score", torch.einsum("nd,ctd->nc", image, per_template) / len(TEMPLATES))]:
        table = clipnb.classify(image_files, CLASSES, TEMPLATES, model=model, ensemble=ensemble, exact=True,
                                progress=False, num_workers=0)
        logits = scale * scores
        probs = torch.sigmoid(logits + bias) if bias is not None else logits.softmax(dim=-1)
        score_diff = np.abs(table[score_columns(CLASSES)].to_numpy() - scores.numpy()).max()
        prob_diff = np.abs(table[prob_columns(CLASSES)].to_numpy() - probs.numpy()).max()
        # relative too: the tiny SigLIP's probabilities are ~5e-5 (its logit bias is -10)
        assert np.abs(table[prob_columns(CLASSES)].to_numpy() / probs.numpy() - 1).max() <= TOLERANCE
        print(f"{kind} {ensemble}: max |score diff| {score_diff:.1e}, max |prob diff| {prob_diff:.1e}")
        assert score_diff <= TOLERANCE and prob_diff <= TOLERANCE, (kind, ensemble, score_diff, prob_diff)
    if kind == "siglip":  # independent sigmoids: these rows do not sum to 1
        assert not np.allclose(table[prob_columns(CLASSES)].sum(axis=1), 1.0)


def test_local_dir_prompt_length_counts_as_the_tokenizer(tiny_folders):
    for kind, (spec, _) in tiny_folders.items():
        model = clipnb.load_model("open_clip:" + spec, device="cpu")
        tokens = model.tokenize(["a photo of a cat", "two dogs playing in the snow"])
        assert tokens.shape[1] == model.context_length == (77 if kind == "clip" else 64)
        # the count is the tokens up to the end token: CLIP pads with 0 after it, SigLIP with more end tokens (1)
        expected = (tokens != 0).sum(dim=1) if kind == "clip" else (tokens != 1).sum(dim=1) + 1
        assert [model.tokenizer.count(t) for t in ["a photo of a cat", "two dogs playing in the snow"]] \
            == expected.tolist(), kind


def test_local_dir_fingerprint_follows_the_files(tiny_folders, tmp_path):
    spec, folder = tiny_folders["clip"]
    first = clipnb.load_model("open_clip:" + spec, device="cpu").fingerprint
    moved = shutil.copytree(folder, tmp_path / "moved")
    assert clipnb.load_model(f"open_clip:local-dir:{moved}", device="cpu").fingerprint == first
    other_spec, _ = save_open_clip_model(tmp_path / "other", seed=1)
    assert clipnb.load_model("open_clip:" + other_spec, device="cpu").fingerprint != first


def test_hub_repo_from_the_cache(tiny_folders, tmp_path, monkeypatch):
    """"hf-hub:ORG/REPO" from a Hugging Face cache laid out as huggingface_hub writes it (offline): the model,
    and a fingerprint from the repository and its snapshot's commit."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    spec, folder = tiny_folders["clip"]
    fingerprints = []
    for commit in ["a" * 40, "b" * 40]:
        repo = tmp_path / commit[0] / "models--someone--tiny-clip"
        shutil.copytree(folder, repo / "snapshots" / commit)
        (repo / "refs").mkdir()
        (repo / "refs" / "main").write_text(commit)
        model = clipnb.load_model("open_clip:hf-hub:someone/tiny-clip", download_root=tmp_path / commit[0], device="cpu")
        fingerprints.append(model.fingerprint)
    local = clipnb.load_model("open_clip:" + spec, device="cpu")
    pixels = local.preprocess(photo(40, 30, seed=1))[None]
    assert torch.equal(model.encode_image_tensors(pixels), local.encode_image_tensors(pixels))
    assert (model.name, model.context_length, model.embed_dim) == ("open_clip:hf-hub:someone/tiny-clip", 77, 32)
    assert fingerprints[0] != fingerprints[1]


def test_weights_file_equals_open_clip(vit_b_32, vit_b_32_file):
    open_clip = import_open_clip()
    reference, _, preprocess = open_clip.create_model_and_transforms("ViT-B-32", pretrained=str(vit_b_32_file))
    reference.eval()
    tokenizer = open_clip.get_tokenizer("ViT-B-32")
    image, texts = photo(320, 240, seed=5), ["a photo of a cat", "a red car on a road"]
    with torch.no_grad():
        expected_image = torch.nn.functional.normalize(reference.encode_image(preprocess(image)[None]), dim=-1)
        expected_text = torch.nn.functional.normalize(reference.encode_text(tokenizer(texts)), dim=-1)
    got_image = vit_b_32.encode_image_tensors(vit_b_32.preprocess(image)[None])
    got_text = vit_b_32.encode_token_tensors(vit_b_32.tokenize(texts))
    image_diff, text_diff = float((got_image - expected_image).abs().max()), float((got_text - expected_text).abs().max())
    print(f"ViT-B-32 weights file: max |image diff| {image_diff:.1e}, max |text diff| {text_diff:.1e}")
    assert image_diff <= TOLERANCE and text_diff <= TOLERANCE
    assert vit_b_32.logit_scale == pytest.approx(reference.logit_scale.exp().item())
    assert (vit_b_32.embed_dim, vit_b_32.input_resolution, vit_b_32.context_length, vit_b_32.logit_bias) \
        == (512, 224, 77, None)
    assert vit_b_32.name == "open_clip:ViT-B-32,vit-b-32.pt"


def test_weights_file_in_one_string(vit_b_32, vit_b_32_file, tmp_path):
    copy = shutil.copy(vit_b_32_file, tmp_path / "copy.pt")
    same = clipnb.load_model(f"open_clip:ViT-B/32,{copy}", device="cpu")  # openai-clip's spelling too
    assert same.fingerprint == vit_b_32.fingerprint  # the same bytes elsewhere
    probe = torch.zeros(1, 3, 224, 224)
    assert torch.equal(same.encode_image_tensors(probe), vit_b_32.encode_image_tensors(probe))


@pytest.fixture(scope="module")
def vit_s_32_file(tmp_path_factory):
    """A ViT-S-32 state dict (random weights, fp16): a small built-in architecture, quick to load."""
    return save_open_clip_state_dict(tmp_path_factory.mktemp("vit-s") / "weights.pt", arch="ViT-S-32")


def test_weights_file_fingerprint_follows_the_weights(vit_s_32_file, tmp_path):
    copy = shutil.copy(vit_s_32_file, tmp_path / "copy.pt")
    other = save_open_clip_state_dict(tmp_path / "other.pt", arch="ViT-S-32", seed=1)
    fingerprints = [clipnb.load_model("open_clip:ViT-S-32", pretrained=str(p), device="cpu").fingerprint
                    for p in (vit_s_32_file, copy, other)]
    assert fingerprints[0] == fingerprints[1] != fingerprints[2]


def test_torchscript_archive_is_refused_with_the_way_to_load_it(tmp_path, monkeypatch):
    """OpenAI's released .pt files are TorchScript archives: open_clip reads them only with code allowed, so
    for an official one (known by SHA-256) the message points at the openai family and at open_clip's own
    "openai" tag; any other TorchScript file is refused, and never pointed at clipnb.load_model."""
    from clipnb.models import files as model_files

    path = tmp_path / "ViT-B-32.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit is deprecated, but it is how OpenAI's files were made
        torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), path)
    message = error("open_clip:ViT-B-32", pretrained=str(path))
    assert f"checkpoint {path} is a TorchScript archive" in message and "clipnb.load_model" not in message
    monkeypatch.setattr(model_files, "official_torchscript_sha256", lambda: frozenset({file_sha256(path)}))
    message = error("open_clip:ViT-B-32", pretrained=str(path))
    assert f"weights file {path} is one of OpenAI's official TorchScript archives" in message
    assert f"clipnb.load_model({str(path)!r})" in message and "open_clip:ViT-B-32-quickgelu with pretrained='openai'" in message


def test_random_weights_get_a_fresh_fingerprint():
    first = clipnb.load_model("open_clip:ViT-S-32", pretrained="random", device="cpu")
    second = clipnb.load_model("open_clip:ViT-S-32,random", device="cpu")
    assert first.fingerprint != second.fingerprint
    assert first.name == "open_clip:ViT-S-32,random"


def test_draft_decoding_stays_within_tolerance(vit_b_32, tmp_path):
    path = tmp_path / "large.jpg"
    photo(2000, 1500, seed=7).save(path, quality=90)
    draft = clipnb.embed_images(vit_b_32, [path], exact=False, progress=False, num_workers=0).features
    exact = clipnb.embed_images(vit_b_32, [path], exact=True, progress=False, num_workers=0).features
    distance = 1 - float((draft * exact).sum())
    print(f"ViT-B-32 (random weights) 2000x1500 JPEG: 1 - cos(draft, exact) = {distance:.2e}")
    assert 0 < distance <= DRAFT_TOLERANCE  # not 0: the draft was decoded at a reduced scale


def error(spec: str, **kwargs) -> str:
    with pytest.raises(ModelError) as caught:
        clipnb.load_model(spec, device="cpu", **kwargs)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_unknown_architecture_names_the_closest():
    message = error("open_clip:ViT-B-23", pretrained="openai")
    assert "unknown open_clip architecture 'ViT-B-23'" in message and "'ViT-B-32'" in message


def test_unknown_tag_names_the_closest():
    message = error("open_clip:ViT-B-32", pretrained="laion2b_s34b_b97k")
    assert "'laion2b_s34b_b97k'" in message and "did you mean 'laion2b_s34b_b79k'" in message


def test_missing_pretrained_lists_the_tags():
    message = error("open_clip:ViT-B-32")
    assert "needs weights" in message and "laion2b_s34b_b79k" in message and "openai" in message


def test_tag_not_downloaded_fails_fast_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    started = time.perf_counter()
    message = error("open_clip:ViT-B-32", pretrained="laion2b_s34b_b79k", download_root=tmp_path)
    assert time.perf_counter() - started < 5
    assert "open_clip model 'ViT-B-32' with weights 'laion2b_s34b_b79k'" in message and str(tmp_path) in message
    assert "open_clip.create_model('ViT-B-32', pretrained='laion2b_s34b_b79k')" in message


def test_pretrained_with_a_folder_is_refused(tiny_folders):
    spec, _ = tiny_folders["clip"]
    assert "carries its own weights" in error("open_clip:" + spec, pretrained="openai")


def test_folder_without_config_is_refused(tmp_path):
    assert "has no open_clip_config.json" in error(f"open_clip:local-dir:{tmp_path}")


def test_file_of_another_architecture_is_named(tiny_folders):
    _, folder = tiny_folders["clip"]
    weights = folder / "open_clip_model.safetensors"
    message = error("open_clip:ViT-B-32", pretrained=str(weights))
    assert f"could not load weights file {weights}" in message and "state dict of that architecture" in message


@pytest.mark.parametrize("arch, tag, repo, filename", [
    ("ViT-B-32", "laion2b_s34b_b79k", "laion--CLIP-ViT-B-32-laion2B-s34B-b79K", "open_clip_model.safetensors"),
    ("ViTamin-B", "datacomp1b", "jienengchen--ViTamin-B", "pytorch_model.bin"),  # a tag naming its file
])
def test_listing_finds_a_tag_in_the_hub_cache(arch, tag, repo, filename, tmp_path):
    """A tag counts as on disk when its hub file, or the safetensors file open_clip prefers, is cached."""
    repo = tmp_path / f"models--{repo}"
    (repo / "snapshots" / ("c" * 40)).mkdir(parents=True)
    (repo / "snapshots" / ("c" * 40) / filename).write_bytes(b"")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("c" * 40)
    rows = {row.name: row for row in clipnb.list_models("open_clip", download_root=tmp_path)}
    assert rows[arch].on_disk == (tag,) and tag in rows[arch].pretrained
    assert not any(row.on_disk for name, row in rows.items() if name != arch)


@pytest.mark.parametrize("kind", ["clip", "siglip"])
def test_text_encoded_up_to_the_last_end_token_equals_the_full_context(kind, tiny_folders):
    from clipnb.models.families.openclip import encode_text_trimmed

    model = clipnb.load_model("open_clip:" + tiny_folders[kind][0], device="cpu")
    tokens = model.tokenize(["a cat", "a photo of a small red car on the road at night", "dog"])
    with torch.inference_mode():
        full, trimmed = model.model.encode_text(tokens), encode_text_trimmed(model.model, tokens)
    assert float((full - trimmed).abs().max()) <= 1e-5
