"""The Chinese-CLIP family ("cn_clip:NAME"): a random-weight RN50 checkpoint in Chinese-CLIP's own format,
loaded through clipnb, must give cn_clip's own embeddings and the probabilities computed from them by hand;
bad names and files, and missing official weights offline, must fail at once with a message to act on."""
import contextlib
import io
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

import clipnb
from clipnb.embed.pipeline import DRAFT_FACTOR, DRAFT_TOLERANCE, load_pixels
from clipnb.embed.runner import embed_images
from clipnb.models.loading import ModelError, list_models, load_model
from clipnb.zeroshot.prompts import PromptError
from clipnb.zeroshot.schema import prob_columns, score_columns
from conftest import run_python
from family_models import save_cn_clip_checkpoint

CLASSES = ["猫", "狗", "汽车", "一棵开花的树"]
TEMPLATES = ["一张{}的照片", "一幅{}的画", "这是{}", "{}的特写照片"]
ARCH = dict(vision_model_name="RN50", text_model_name="RBT3-chinese", input_resolution=224)


@pytest.fixture(scope="session")
def cn_checkpoint(tmp_path_factory):
    """A random-weight Chinese-CLIP RN50 checkpoint ({"state_dict": {"module.*": fp16}}, ~155 MB)."""
    return save_cn_clip_checkpoint(tmp_path_factory.mktemp("cn_clip") / "rn50-random.pt")[1]


@pytest.fixture(scope="module")
def cn_model(cn_checkpoint):
    return load_model("cn_clip:RN50", pretrained=cn_checkpoint, device="cpu")


@pytest.fixture(scope="module")
def reference(cn_checkpoint):
    """cn_clip's own model and preprocessing for the same file, loaded its own way."""
    import cn_clip.clip as cn

    with contextlib.redirect_stdout(io.StringIO()):
        model, preprocess = cn.load_from_name(str(cn_checkpoint), device="cpu", **ARCH)
    return model.eval(), preprocess


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    """Five RGB pictures of different sizes and aspect ratios (Chinese-CLIP squashes them to a square)."""
    folder = tmp_path_factory.mktemp("cn_pictures")
    rng = np.random.default_rng(3)
    paths = []
    for i, (w, h) in enumerate([(320, 240), (240, 320), (224, 224), (500, 180), (97, 131)]):
        image = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        draw = ImageDraw.Draw(image)
        draw.ellipse((w // 5, h // 5, w // 2, h // 2), fill=(200, 30 * i, 40))
        paths.append(folder / f"{i}.png")
        image.save(paths[-1])
    return paths


def _normalise(x: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(x.float(), dim=-1)


@pytest.fixture(scope="module")
def expected(reference, pictures):
    """cn_clip's own features: L2-normalised image embeddings [images, D], per-template text embeddings
    [classes, templates, D], and the logit scale."""
    import cn_clip.clip as cn

    model, preprocess = reference
    with torch.no_grad():
        images = _normalise(model.encode_image(torch.stack([preprocess(Image.open(p)) for p in pictures])))
        prompts = [template.format(name) for name in CLASSES for template in TEMPLATES]
        texts = _normalise(model.encode_text(cn.tokenize(prompts))).reshape(len(CLASSES), len(TEMPLATES), -1)
    return images, texts, model.logit_scale.exp().item()


def test_embeddings_equal_cn_clip(cn_model, expected, pictures):
    images, texts, scale = expected
    ours = embed_images(cn_model, pictures, exact=True, num_workers=0, progress=False).features
    prompts = [template.format(name) for name in CLASSES for template in TEMPLATES]
    text_ours = cn_model.encode_token_tensors(cn_model.tokenize(prompts))
    image_diff, text_diff = float((ours - images).abs().max()), float((text_ours - texts.flatten(0, 1)).abs().max())
    print(f"max |embedding difference|: images {image_diff:.2e}, texts {text_diff:.2e}")
    assert image_diff <= 1e-5 and text_diff <= 1e-5
    assert cn_model.embed_dim == images.shape[1] == 1024 and cn_model.input_resolution == 224
    assert cn_model.logit_scale == pytest.approx(scale, rel=1e-6)
    assert cn_model.logit_bias is None and cn_model.dtype == torch.float32 and cn_model.family == "cn_clip"


@pytest.mark.parametrize("ensemble", ["embedding", "score"])
def test_classify_probabilities_equal_cn_clip_by_hand(cn_model, expected, pictures, ensemble):
    images, texts, scale = expected
    if ensemble == "embedding":  # the normalised mean of the normalised per-template embeddings
        cos = images @ _normalise(texts.mean(dim=1)).T
    else:  # the mean of the per-template cosines
        cos = torch.einsum("nd,ctd->nct", images, texts).mean(dim=-1)
    probs = (scale * cos).softmax(dim=-1)
    table = clipnb.classify(pictures, CLASSES, TEMPLATES, model=cn_model, ensemble=ensemble, exact=True,
                            num_workers=0, progress=False)
    score_diff = np.abs(table[score_columns(CLASSES)].to_numpy() - cos.numpy()).max()
    prob_diff = np.abs(table[prob_columns(CLASSES)].to_numpy() - probs.numpy()).max()
    print(f"{ensemble}: max |score difference| {score_diff:.2e}, max |probability difference| {prob_diff:.2e}")
    assert score_diff <= 1e-4 and prob_diff <= 1e-4
    assert list(table["prediction"]) == [CLASSES[i] for i in probs.argmax(dim=1)]


def test_tokenizer_counts_and_long_prompts(cn_model):
    import cn_clip.clip as cn

    for text in ["一张猫的照片", "a photo of a 猫", "这是一张很长的照片，里面有一只小猫在沙发上睡觉。"]:
        assert cn_model.tokenizer.count(text) == int(cn.tokenize([text]).ne(0).sum())
    long = "猫" * 60
    assert cn_model.tokenizer.count(long) == 62
    with pytest.raises(PromptError, match="62 tokens"):
        clipnb.build_head(cn_model, [long, "狗"], ["{}"])
    with pytest.raises(PromptError, match="62 tokens"):  # the tokenizer refuses it too, not only clipnb's check
        cn_model.tokenize([long])
    assert torch.equal(cn_model.tokenize([long], truncate=True), cn.tokenize([long]))
    head = clipnb.build_head(cn_model, [long, "狗"], ["{}"], truncate=True)
    assert head.text_features.shape == (2, 1, 1024)


def test_knows_chinese_and_english_so_neither_is_warned_about(cn_model):
    assert cn_model.languages == ("zh", "en")
    assert clipnb.class_warnings(cn_model, CLASSES, TEMPLATES) == []
    assert clipnb.class_warnings(cn_model, ["cat", "dog"], ["a photo of a {}"]) == []


def test_spec_string_carries_the_checkpoint(cn_model, cn_checkpoint):
    model = load_model(f"cn_clip:RN50,{cn_checkpoint}", device="cpu")
    assert model.fingerprint == cn_model.fingerprint
    assert model.name == cn_model.name == f"cn_clip:RN50,{cn_checkpoint.name}"


def test_fingerprint_follows_the_weights_not_the_file(cn_model, cn_checkpoint, tmp_path):
    moved = tmp_path / "elsewhere" / "copy.pt"
    moved.parent.mkdir()
    shutil.copyfile(cn_checkpoint, moved)
    assert load_model("cn_clip:RN50", pretrained=moved, device="cpu").fingerprint == cn_model.fingerprint

    checkpoint = torch.load(cn_checkpoint, weights_only=True)
    checkpoint["state_dict"]["module.logit_scale"] += 0.5
    torch.save(checkpoint, tmp_path / "other.pt")
    other = load_model("cn_clip:RN50", pretrained=tmp_path / "other.pt", device="cpu")
    assert other.fingerprint != cn_model.fingerprint
    assert other.logit_scale == pytest.approx(cn_model.logit_scale * np.exp(0.5), rel=1e-3)


def test_official_file_in_download_root_is_used_and_listed(cn_model, cn_checkpoint, tmp_path):
    assert [row.name for row in list_models("cn_clip", tmp_path)] == ["ViT-B-16", "ViT-L-14", "ViT-L-14-336",
                                                                      "ViT-H-14", "RN50"]
    assert not any(row.on_disk for row in list_models("cn_clip", tmp_path))
    shutil.copyfile(cn_checkpoint, tmp_path / "clip_cn_rn50.pt")  # the official file's name
    rows = {row.name: row.on_disk for row in list_models("cn_clip", tmp_path)}
    assert rows == {"ViT-B-16": (), "ViT-L-14": (), "ViT-L-14-336": (), "ViT-H-14": (), "RN50": ("RN50",)}
    model = load_model("cn_clip:RN50", device="cpu", download_root=tmp_path)
    assert model.fingerprint == cn_model.fingerprint and model.name == "cn_clip:RN50"


def test_missing_official_weights_fail_fast_offline(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # never download in a test, network or not
    started = time.perf_counter()
    with pytest.raises(ModelError) as caught:
        load_model("cn_clip:RN50", device="cpu", download_root=tmp_path)
    seconds = time.perf_counter() - started
    message = str(caught.value)
    print(f"failed in {seconds:.2f} s: {message}")
    assert seconds < 5 and "\n" not in message
    for part in ("'RN50'", str(tmp_path / "clip_cn_rn50.pt"), "https://huggingface.co/OFA-Sys/chinese-clip-rn50",
                 "load_from_name('RN50'"):
        assert part in message


def test_bad_names_and_files(cn_checkpoint, tmp_path):
    with pytest.raises(ModelError, match="did you mean 'ViT-B-16'"):
        load_model("cn_clip:vit-b-16", pretrained=cn_checkpoint, device="cpu")
    with pytest.raises(ModelError, match="is not a file"):
        load_model("cn_clip:RN50", pretrained=tmp_path / "absent.pt", device="cpu")

    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(cn_checkpoint.read_bytes()[: 1 << 20])
    with pytest.raises(ModelError, match=f"checkpoint {damaged} could not be read"):
        load_model("cn_clip:RN50", pretrained=damaged, device="cpu")

    plain = tmp_path / "plain.pt"
    torch.save({"visual.proj": torch.zeros(2)}, plain)
    with pytest.raises(ModelError, match=f"{plain} is not a Chinese-CLIP checkpoint"):
        load_model("cn_clip:RN50", pretrained=plain, device="cpu")

    with pytest.raises(ModelError) as caught:  # an RN50 file given as ViT-B-16
        load_model("cn_clip:ViT-B-16", pretrained=cn_checkpoint, device="cpu")
    message = str(caught.value)
    assert str(cn_checkpoint) in message and "ViT-B-16" in message and "weights missing" in message


@pytest.fixture(scope="module")
def sensitive_model(cn_checkpoint, tmp_path_factory):
    """The random RN50 with its batch norms' statistics measured on a few pictures. As saved (statistics 0
    and 1), its embeddings hardly depend on the picture (1 - cos of a picture and its mirror image: 4e-7),
    so no draft-decoding error could show; measured, a mirror image moves them by about 4e-3."""
    model = load_model("cn_clip:RN50", pretrained=cn_checkpoint, device="cpu")
    norms = [m for m in model.model.visual.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a plain average over the batch
        norm.train()
    photo = _photo_like_jpeg(tmp_path_factory.mktemp("calibration") / "calibration.jpg", seed=9)
    pixels = model.preprocess(Image.open(photo))
    noise = torch.randn(3, *pixels.shape, generator=torch.Generator().manual_seed(0)) * 0.5
    with torch.no_grad():
        model.model.visual(torch.cat([torch.stack([pixels, pixels.flip(-1), pixels.flip(-2)]), noise]))
    for norm in norms:
        norm.eval()
    return model


def _photo_like_jpeg(path, size=(2000, 1500), seed=5):
    """A large JPEG like a photo: smooth gradients, a few flat shapes, a little sensor noise."""
    w, h = size
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    rgb = np.stack([120 + 100 * x / w, 60 + 150 * y / h, 200 - 120 * (x + y) / (w + h)], axis=-1)
    rgb += np.random.default_rng(seed).normal(0, 4, rgb.shape)
    image = Image.fromarray(rgb.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    draw.ellipse((300, 200, 1100, 1000), fill=(230, 180, 40))
    draw.rectangle((1200, 700, 1800, 1300), fill=(40, 90, 160))
    draw.polygon([(100, 1400), (600, 900), (900, 1450)], fill=(30, 120, 50))
    image.save(path, quality=90)
    return path


def test_draft_decoding_stays_within_tolerance(sensitive_model, tmp_path):
    model = sensitive_model
    photo = _photo_like_jpeg(tmp_path / "photo.jpg")
    drafted = load_pixels(photo, model.preprocess, draft_size=DRAFT_FACTOR * model.input_resolution)[0]
    full = load_pixels(photo, model.preprocess)[0]
    assert not torch.equal(drafted, full)  # draft decoding is really used (1/4 scale: 500x375)
    draft = embed_images(model, [photo], exact=False, num_workers=0, progress=False).features[0]
    exact = embed_images(model, [photo], exact=True, num_workers=0, progress=False).features[0]
    distance = 1 - float(draft @ exact)
    moved = 1 - float(exact @ model.encode_image_tensors(full.roll(8, dims=-1)[None])[0])  # 8 pixels to the right
    print(f"1 - cos(draft, exact) = {distance:.2e} (tolerance {DRAFT_TOLERANCE:.0e}); "
          f"pixels: max {float((drafted - full).abs().max()):.3f}, RMS {float((drafted - full).pow(2).mean().sqrt()):.4f}; "
          f"the picture moved 8 pixels: {moved:.2e}")
    assert moved > 10 * DRAFT_TOLERANCE  # the model sees small changes, so the check below can fail
    assert distance <= DRAFT_TOLERANCE


OPENAI_AND_CN_CLIP = """
import warnings; warnings.simplefilter('ignore')
import {first}, {second}
import clip, cn_clip.clip
assert callable(clip.load) and clip.tokenize(['a cat']).shape == (1, 77)
assert cn_clip.clip.tokenize(['一只猫']).shape == (1, 52)
print(clip.__file__)
"""


@pytest.mark.parametrize("first, second, where", [("clip", "cn_clip.clip", "repository"),
                                                  ("cn_clip.clip", "clip", "prefix")])
def test_openai_clip_and_cn_clip_import_together(first, second, where):
    """cn_clip's wheel writes data files into a top-level clip/ folder (vocab.txt, model_configs/); they go
    under the environment's prefix (sys.prefix/clip), not site-packages, so openai-clip's clip package stays
    whole, even run from the prefix, where that data-only folder is on the path first."""
    code = OPENAI_AND_CN_CLIP.format(first=first, second=second)
    out = (run_python(code) if where == "repository" else
           subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=sys.prefix, timeout=120))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith(os.path.join("site-packages", "clip", "__init__.py"))
