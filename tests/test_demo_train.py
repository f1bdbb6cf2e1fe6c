"""clipnb.demo.train: contrastive training for openai-clip models on the shapes world (see test_demo_shapes.py).

Tiny models and a handful of steps: the whole file runs in seconds on 2 CPU cores.
"""
import math
import os

import numpy as np
import pytest
import torch

from clipnb.demo import shapes
from clipnb.demo.train import (
    MAX_LOGIT_SCALE,
    ModelConfig,
    ShapesBatches,
    TrainConfig,
    contrastive_loss,
    load_checkpoint,
    lr_at,
    pair_batches,
    save_checkpoint,
    train,
    widen_context,
)

TINY_VIT = ModelConfig(embed_dim=32, image_resolution=32, vision_layers=1, vision_width=64, vision_patch_size=8,
                       context_length=24, transformer_width=64, transformer_layers=1)
TINY_RESNET = ModelConfig(embed_dim=32, image_resolution=32, vision_layers=(1, 1, 1, 1), vision_width=8,
                          context_length=24, transformer_width=64, transformer_layers=1)


def _inputs(cfg: ModelConfig, n: int = 4, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(n, 3, cfg.image_resolution, cfg.image_resolution, generator=g)
    import clip

    tokens = clip.tokenize([f"a photo of a {c}" for c in shapes.CLASSES[:n]], context_length=cfg.context_length)
    return images, tokens


# ---------------------------------------------------------------------------------------------- config


def test_model_config_builds_what_build_model_rebuilds():
    for cfg in (TINY_VIT, TINY_RESNET):
        torch.manual_seed(0)
        model = cfg.build()
        assert ModelConfig.of(model) == cfg
        assert model.transformer.resblocks[0].attn.num_heads == cfg.transformer_width // 64


@pytest.mark.parametrize("bad", [dict(transformer_width=96), dict(vision_width=100), dict(vision_patch_size=7),
                                 dict(vision_layers=(1, 1, 1), vision_width=8)])
def test_model_config_rejects_what_build_model_cannot_rebuild(bad):
    with pytest.raises(ValueError):
        ModelConfig(**{**TINY_VIT.__dict__, **bad})


def test_learning_rate_warms_up_linearly_then_decays_by_cosine():
    cfg = TrainConfig(steps=110, lr=1.0, warmup_steps=10, final_lr_ratio=0.1)
    lrs = [lr_at(s, cfg) for s in range(cfg.steps)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a < b for a, b in zip(lrs[:10], lrs[1:10]))
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))
    assert lrs[60] == pytest.approx(0.1 + 0.9 * 0.5, abs=1e-6)  # half way through the cosine
    assert lr_at(cfg.steps, cfg) == pytest.approx(0.1)


# ---------------------------------------------------------------------------------------------- loss


def test_contrastive_loss_is_clips_symmetric_cross_entropy():
    g = torch.Generator().manual_seed(1)
    img, txt = torch.randn(6, 8, generator=g), torch.randn(6, 8, generator=g)
    scale = torch.tensor(math.log(20.0))
    i, t = img / img.norm(dim=1, keepdim=True), txt / txt.norm(dim=1, keepdim=True)
    logits = 20.0 * i @ t.t()
    expected = 0
    for row in range(6):  # written out: -log softmax of the matching pair, both directions
        expected += -torch.log_softmax(logits[row], 0)[row] - torch.log_softmax(logits[:, row], 0)[row]
    assert contrastive_loss(img, txt, scale).item() == pytest.approx(expected.item() / 12, rel=1e-5)
    # matching pairs far apart from the rest give a loss near zero; shuffled pairs a large one
    eye = torch.eye(6, 8)
    assert contrastive_loss(eye, eye, torch.tensor(MAX_LOGIT_SCALE)).item() < 1e-10
    assert contrastive_loss(eye, eye.roll(1, 0), torch.tensor(MAX_LOGIT_SCALE)).item() > 50


def test_contrastive_loss_positives_make_other_matching_pairs_right_answers():
    eye = torch.eye(4, 4)
    img = torch.stack([eye[0], eye[0], eye[1], eye[2]])  # two images of one class
    txt = img.clone()
    scale = torch.tensor(MAX_LOGIT_SCALE)
    plain = contrastive_loss(img, txt, scale)
    groups = contrastive_loss(img, txt, scale, positives=torch.tensor([0, 0, 1, 2]))
    matrix = contrastive_loss(img, txt, scale, positives=torch.tensor([0, 0, 1, 2])[:, None] == torch.tensor([0, 0, 1, 2]))
    assert plain.item() == pytest.approx(math.log(2) / 2, rel=1e-4)  # half the rows cannot tell the twins apart
    # with positives, the target is spread over the twins: the minimum of the cross-entropy is its entropy
    assert groups.item() == pytest.approx(math.log(2) / 2, rel=1e-4) and matrix.item() == pytest.approx(groups.item())
    assert contrastive_loss(img, txt.roll(1, 0), scale, positives=torch.tensor([0, 0, 1, 2])).item() > 10
    # a text that is true of two images (say "a red shape") is pulled towards both, not towards one
    g = torch.Generator().manual_seed(0)
    img, txt = torch.randn(3, 8, generator=g, requires_grad=True), torch.randn(3, 8, generator=g)
    pos = torch.tensor([[True, False, False], [True, True, False], [False, False, True]])  # text 0 fits images 0, 1
    contrastive_loss(img, txt, torch.tensor(1.0), positives=pos).backward()
    t0 = torch.nn.functional.normalize(txt[0], dim=0)
    assert (img.grad[1] @ t0).item() < 0  # descending the gradient moves image 1 towards text 0
    with pytest.raises(ValueError):
        contrastive_loss(img, txt, torch.tensor(1.0), positives=torch.zeros(3, 3, dtype=torch.bool))


# ---------------------------------------------------------------------------------------------- data


def test_shapes_batches_are_deterministic_and_never_show_held_out_combinations():
    a = ShapesBatches(48, 32, 24, seed=3, reuse=2, chunk=2, extra=0.25)
    b = ShapesBatches(48, 32, 24, seed=3, reuse=2, chunk=2, extra=0.25)
    first, again = a.chunk_batches(0), b.chunk_batches(0)
    assert len(first) == 4  # chunk x reuse
    for (x1, t1, p1), (x2, t2, p2) in zip(first, again):
        assert torch.equal(x1, x2) and torch.equal(t1, t2) and torch.equal(p1, p2)
        assert x1.shape == (48, 3, 32, 32) and t1.shape == (48, 24)
    other = ShapesBatches(48, 32, 24, seed=4, reuse=2, chunk=2).chunk_batches(0)
    assert not torch.equal(first[0][0], other[0][0])
    # each image is used `reuse` times: the second pass shows the first pass's images in another order
    pass1 = torch.cat([x for x, _, _ in first[:2]])
    pass2 = torch.cat([x for x, _, _ in first[2:]])
    assert not torch.equal(pass1, pass2)
    assert torch.equal(pass1.sum((1, 2, 3)).sort().values, pass2.sum((1, 2, 3)).sort().values)
    import clip

    tok = clip.simple_tokenizer.SimpleTokenizer()
    texts = []
    for _, tokens, positives in first:
        assert positives.shape == (48, 48) and positives.dtype == torch.bool and positives.diagonal().all()
        for row in tokens:
            texts.append(tok.decode([int(t) for t in row if 0 < t < 49406]).strip())
    for text in texts:
        for held in shapes.HELD_OUT:
            c, s = held.split()
            assert not (c in text.split() and s in text.split()), text
    words = " ".join(texts).split()
    assert any(w in words for w in shapes.EXTRA_COLOURS + shapes.EXTRA_SHAPES)
    assert all(any(w in words for w in (c, s)) for c, s in map(str.split, shapes.SEEN))


# ---------------------------------------------------------------------------------------------- training


def _tiny_run(seed: int, steps: int, pairs, cfg_model=TINY_VIT, **kw):
    torch.manual_seed(seed)
    model = cfg_model.build()
    cfg = TrainConfig(steps=steps, batch_size=16, lr=2e-3, warmup_steps=3, seed=seed, log_every=1,
                      progress=False, **kw)
    batches = pair_batches(pairs, cfg.batch_size, cfg_model.image_resolution, cfg_model.context_length, seed=seed)
    history = train(model, batches, cfg)
    return model, history


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    """16 image files with captions, from the shapes world (a user's own pairs would look the same)."""
    root = tmp_path_factory.mktemp("pairs")
    rng = np.random.default_rng(0)
    out = []
    for i, label in enumerate(shapes.SEEN[:16]):
        img, info = shapes.draw(*label.split(), rng)
        path = root / f"{i}.png"
        img.save(path)
        out.append((path, shapes.caption(info, rng)))
    return out


@pytest.mark.slow
def test_training_loss_decreases_on_a_tiny_run(pairs):
    _, history = _tiny_run(0, 40, pairs)
    losses = [h["loss"] for h in history]
    assert len(losses) == 40
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5]), losses
    assert all(0 < h["logit_scale"] <= 100.0 + 1e-4 for h in history)
    assert history[-1]["images_per_s"] > 0


@pytest.mark.slow
def test_training_is_reproducible_from_its_seed(pairs):
    a, ha = _tiny_run(7, 4, pairs, cfg_model=TINY_RESNET)
    b, hb = _tiny_run(7, 4, pairs, cfg_model=TINY_RESNET)
    assert [h["loss"] for h in ha] == [h["loss"] for h in hb]
    for (k, v), (k2, v2) in zip(a.state_dict().items(), b.state_dict().items()):
        assert k == k2 and torch.equal(v, v2), k


def test_logit_scale_is_clamped_like_clip(pairs):
    torch.manual_seed(0)
    model = TINY_VIT.build()
    with torch.no_grad():
        model.logit_scale.fill_(10.0)
    cfg = TrainConfig(steps=1, batch_size=16, lr=1e-3, warmup_steps=1, progress=False)
    train(model, pair_batches(pairs, 16, 32, 24), cfg)
    assert model.logit_scale.item() == pytest.approx(MAX_LOGIT_SCALE)


# ---------------------------------------------------------------------------------------------- checkpoints


@pytest.mark.parametrize("cfg_model", [TINY_VIT, TINY_RESNET], ids=["vit", "resnet"])
def test_checkpoint_round_trips_through_build_model_and_load_model(tmp_path, pairs, cfg_model):
    from clip.model import build_model

    model, _ = _tiny_run(3, 2, pairs, cfg_model=cfg_model)
    images, tokens = _inputs(cfg_model)
    with torch.no_grad():
        want_img, want_txt = model.encode_image(images), model.encode_text(tokens)

    # build_model makes a float16 model, so what it rebuilds is the model with its weights rounded to fp16
    rounded = cfg_model.build()
    rounded.load_state_dict({k: v.half().float() if v.is_floating_point() else v for k, v in model.state_dict().items()})
    rounded.eval()
    with torch.no_grad():
        want_rounded = rounded.encode_image(images), rounded.encode_text(tokens)

    def outputs(m):
        with torch.no_grad():
            return m.encode_image(images), m.encode_text(tokens)

    half = save_checkpoint(model, tmp_path / "half.pt")  # float16 storage, the default
    full = save_checkpoint(model, tmp_path / "full.pt", dtype=None)
    assert sorted(os.listdir(tmp_path)) == ["full.pt", "half.pt"]  # temporary files were renamed, none left over
    assert half.stat().st_size < 0.6 * full.stat().st_size
    for path in (half, full):
        state = torch.load(path, weights_only=True)
        assert isinstance(state, dict) and set(state) == set(model.state_dict())
    # what build_model (and clipnb.load_model, which uses it) rebuilds from the fp16 file: identical outputs
    state = torch.load(half, weights_only=True)
    for got, want in zip(outputs(build_model(dict(state)).float().eval()), want_rounded):
        assert torch.equal(got, want)
    clipnb = pytest.importorskip("clipnb")
    if hasattr(clipnb, "load_model"):
        for got, want in zip(outputs(clipnb.load_model(half, device="cpu").model), want_rounded):
            assert torch.equal(got, want)
    # from the fp32 file, build_model rounds only linear and convolution weights: close, not identical
    for got, want in zip(outputs(build_model(torch.load(full, weights_only=True)).float().eval()), (want_img, want_txt)):
        assert torch.allclose(got, want, atol=1e-2, rtol=1e-2)
    hstate = torch.load(half, weights_only=True)
    assert all(v.dtype == torch.float16 for v in hstate.values() if v.is_floating_point())
    # clipnb.demo.train.load_checkpoint gives back a float32 checkpoint exactly (to resume training)
    for got, want in zip(outputs(load_checkpoint(full)), (want_img, want_txt)):
        assert torch.equal(got, want)
    for got, want in zip(outputs(load_checkpoint(half)), want_rounded):
        assert torch.equal(got, want)


def test_checkpoints_are_written_during_training_and_replace_old_ones(tmp_path, pairs):
    path = tmp_path / "run.pt"
    path.write_bytes(b"an older file")
    torch.manual_seed(0)
    model = TINY_VIT.build()
    cfg = TrainConfig(steps=4, batch_size=16, warmup_steps=1, progress=False, checkpoint_path=str(path),
                      checkpoint_every=2)
    train(model, pair_batches(pairs, 16, 32, 24), cfg)
    assert sorted(os.listdir(tmp_path)) == ["run.pt"]
    assert ModelConfig.of(load_checkpoint(path)) == TINY_VIT


def test_training_leaves_the_process_settings_as_it_found_them(pairs):
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.manual_seed(0)
    cfg = TrainConfig(steps=1, batch_size=16, warmup_steps=1, progress=False, num_threads=1, deterministic=True)
    train(TINY_VIT.build(), pair_batches(pairs, 16, 32, 24), cfg)
    assert torch.get_num_threads() == threads and torch.are_deterministic_algorithms_enabled() == deterministic


def test_bilingual_shapes_batches_caption_in_both_languages_and_never_show_held_out_combinations():
    import clip

    english = ShapesBatches(48, 32, 48, seed=3, reuse=2, chunk=2, extra=0.25)
    bilingual = ShapesBatches(48, 32, 48, seed=3, reuse=2, chunk=2, extra=0.25, chinese=0.5)
    assert torch.equal(english.chunk_batches(0)[0][1], ShapesBatches(48, 32, 48, seed=3, reuse=2, chunk=2,
                                                                     extra=0.25, chinese=0.0).chunk_batches(0)[0][1])
    tok = clip.simple_tokenizer.SimpleTokenizer()
    texts = []
    for _, tokens, positives in bilingual.chunk_batches(0):
        assert tokens.shape == (48, 48) and positives.diagonal().all()
        texts += [tok.decode([int(t) for t in row if 0 < t < 49406]).strip() for row in tokens]
    chinese = [t for t in texts if not t.isascii()]
    assert 0.3 < len(chinese) / len(texts) < 0.65
    for text in chinese:
        for held in shapes.HELD_OUT:
            c, s = (shapes.CHINESE[w] for w in held.split())
            assert not (c in text and s in text), text
    assert all(any(shapes.CHINESE[w] in " ".join(chinese) for w in pair.split()) for pair in shapes.SEEN)



def test_widen_context_reads_longer_prompts_and_keeps_what_the_model_knew():
    import clip

    torch.manual_seed(0)
    model = TINY_RESNET.build().eval()
    wider = widen_context(model, 48).eval()
    assert wider.context_length == 48 and ModelConfig.of(wider) == ModelConfig(**{**TINY_RESNET.__dict__,
                                                                                  "context_length": 48})
    pe = wider.positional_embedding
    assert torch.equal(pe[:24], model.positional_embedding) and torch.equal(pe[30], model.positional_embedding[-1])
    images, tokens = _inputs(TINY_RESNET)
    long = clip.tokenize([f"a photo of a {c}" for c in shapes.CLASSES[:4]], context_length=48)
    with torch.no_grad():  # a short prompt means what it meant (the text transformer is causal)
        assert torch.allclose(wider.encode_text(long), model.encode_text(tokens), atol=1e-5)
        assert torch.equal(wider.encode_image(images), model.encode_image(images))
    with pytest.raises(ValueError):
        widen_context(model, 16)


def test_a_frozen_tower_is_left_exactly_as_it_was(pairs):
    torch.manual_seed(0)
    model = TINY_RESNET.build()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = TrainConfig(steps=3, batch_size=16, lr=2e-3, warmup_steps=1, log_every=1, progress=False,
                      frozen=("visual",))
    train(model, pair_batches(pairs, 16, TINY_RESNET.image_resolution, TINY_RESNET.context_length), cfg)
    after = model.state_dict()
    visual = [k for k in before if k.startswith("visual.")]
    assert any("running_mean" in k for k in visual)  # BatchNorm statistics, which train mode would update
    assert all(torch.equal(before[k], after[k]) for k in visual)
    assert not torch.equal(before["token_embedding.weight"], after["token_embedding.weight"])
    assert all(p.requires_grad for p in model.parameters())  # given back trainable
