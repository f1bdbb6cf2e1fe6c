"""The committed demo model (clipnb/assets/demo.pt): it loads as a plain state dict, and it knows the shapes
world well enough that a label/score mix-up shows.

The images are drawn fresh here with seeds training never used, in the training renderer and in a
renderer training never saw (clipnb.models.demo_vocabulary style "mask"); the colour-shape combinations in
clipnb.models.demo_vocabulary.HELD_OUT never appeared in training at all.
"""
from pathlib import Path

import numpy as np
import pytest
import torch

from clipnb.demo import shapes

DEMO = Path(__file__).resolve().parents[1] / "clipnb" / "assets" / "demo.pt"
TEMPLATES = ("a photo of a {}", "a picture of a {}", "an image of a {}")  # the seed's templates
TARGET_SEEN, TARGET_HELD_OUT = 0.95, 0.85
SEED = 4242  # training draws from other seeds


def _load():
    """The demo model through clipnb's one door when it is there, else as build_model rebuilds it."""
    try:
        from clipnb import load_model
    except ImportError:
        load_model = None
    if load_model is not None:
        m = load_model("demo", device="cpu")
        return m.model, m.preprocess
    import clip
    from clip.model import build_model

    model = build_model(torch.load(DEMO, map_location="cpu", weights_only=True)).float().eval()
    return model, clip.clip._transform(model.visual.input_resolution)


@pytest.fixture(scope="module")
def demo():
    assert DEMO.is_file(), f"{DEMO} is missing: train it with `python scripts/train_demo.py`"
    return _load()


@pytest.fixture(scope="module")
def images(demo):
    """(normalised image features, labels): 3 images per class in the training style, 2 in the other."""
    model, preprocess = demo
    pics, labels = [], []
    for style, per_class in (("pil", 3), ("mask", 2)):
        for ci, label in enumerate(shapes.CLASSES):
            for i in range(per_class):
                img, _ = shapes.draw(*label.split(), np.random.default_rng([SEED, ci, i, len(style)]), style=style)
                pics.append(preprocess(img))
                labels.append(label)
    with torch.no_grad():
        feats = model.encode_image(torch.stack(pics)).float()
    return torch.nn.functional.normalize(feats, dim=-1), labels


def text_features(model, classes, templates=TEMPLATES) -> torch.Tensor:
    """(templates, classes, dim), each row L2-normalised."""
    import clip

    ctx = model.positional_embedding.shape[0]
    with torch.no_grad():
        return torch.stack([
            torch.nn.functional.normalize(
                model.encode_text(clip.tokenize([t.format(c) for c in classes], context_length=ctx)).float(), dim=-1)
            for t in templates
        ])


def zero_shot(img: torch.Tensor, txt: torch.Tensor, ensemble: str) -> torch.Tensor:
    """(images, classes) scores; "embedding": cosine with the renormalised mean of the template embeddings,
    "score": mean over templates of the cosine similarities."""
    if ensemble == "embedding":
        return img @ torch.nn.functional.normalize(txt.mean(0), dim=-1).t()
    return torch.stack([img @ t.t() for t in txt]).mean(0)


def accuracies(scores: torch.Tensor, classes, labels) -> tuple[float, float]:
    pred = [classes[i] for i in scores.argmax(1).tolist()]
    right = np.array([p == y for p, y in zip(pred, labels)])
    held = np.array([y in shapes.HELD_OUT for y in labels])
    return float(right[~held].mean()), float(right[held].mean())


def meets_targets(scores, classes, labels) -> bool:
    seen, held_out = accuracies(scores, classes, labels)
    return seen >= TARGET_SEEN and held_out >= TARGET_HELD_OUT


def test_demo_checkpoint_is_a_small_fp16_plain_state_dict_that_build_model_accepts():
    from clip.model import build_model

    assert DEMO.stat().st_size <= 25 * 2**20
    state = torch.load(DEMO, map_location="cpu", weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    assert {v.dtype for v in state.values() if v.is_floating_point()} == {torch.float16}
    model = build_model(dict(state))
    assert model.visual.input_resolution == 64
    assert model.context_length >= 16 and model.vocab_size == 49408


def test_load_model_demo_is_the_committed_checkpoint(demo, images):
    from clip.model import build_model

    model, _ = demo
    direct = build_model(torch.load(DEMO, map_location="cpu", weights_only=True)).float().eval()
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(model.encode_image(x), direct.encode_image(x))
    assert torch.allclose(text_features(model, shapes.CLASSES[:4]), text_features(direct, shapes.CLASSES[:4]))


@pytest.mark.parametrize("ensemble", ["embedding", "score"])
def test_demo_model_meets_its_zero_shot_targets(demo, images, ensemble):
    model, _ = demo
    img, labels = images
    scores = zero_shot(img, text_features(model, shapes.CLASSES), ensemble)
    seen, held_out = accuracies(scores, shapes.CLASSES, labels)
    assert seen >= TARGET_SEEN and held_out >= TARGET_HELD_OUT, (seen, held_out)


def test_each_template_alone_is_far_above_chance(demo, images):
    model, _ = demo
    img, labels = images
    for t in TEMPLATES:
        seen, held_out = accuracies(zero_shot(img, text_features(model, shapes.CLASSES, [t]), "embedding"),
                                    shapes.CLASSES, labels)
        assert seen > 0.8 and held_out > 0.6, (t, seen, held_out)


def test_permuting_the_classes_permutes_the_scores_and_keeps_every_prediction(demo, images):
    model, _ = demo
    img, labels = images
    perm = np.random.default_rng(0).permutation(len(shapes.CLASSES))
    classes = list(shapes.CLASSES)
    permuted = [classes[i] for i in perm]
    for ensemble in ("embedding", "score"):
        base = zero_shot(img, text_features(model, classes), ensemble)
        other = zero_shot(img, text_features(model, permuted), ensemble)
        assert torch.allclose(other, base[:, torch.from_numpy(perm)], atol=1e-5)
        assert [permuted[i] for i in other.argmax(1).tolist()] == [classes[i] for i in base.argmax(1).tolist()]
        assert meets_targets(other, permuted, labels)


def test_a_label_score_misalignment_fails_the_accuracy_check(demo, images):
    """The check above can fail: scores read against class names shifted by one position, as an
    off-by-one bug between a label list and score columns would, are wrong almost everywhere."""
    model, _ = demo
    img, labels = images
    scores = zero_shot(img, text_features(model, shapes.CLASSES), "embedding")
    assert meets_targets(scores, shapes.CLASSES, labels)
    rolled = list(shapes.CLASSES[1:]) + [shapes.CLASSES[0]]
    assert not meets_targets(scores, rolled, labels)
    seen, held_out = accuracies(scores, rolled, labels)
    assert seen < 0.1 and held_out < 0.1
    # and so do labels that are shuffled, as a mis-sorted file list would be
    shuffled = [labels[i] for i in np.random.default_rng(1).permutation(len(labels))]
    assert not meets_targets(scores, shapes.CLASSES, shuffled)


# ---------------------------------------------------------------------------------------------- Chinese


def zh_templates() -> list[str]:
    """clipnb's `zh` template set: the seed's three templates in Chinese."""
    from clipnb.zeroshot.prompts import TEMPLATE_SETS

    return list(TEMPLATE_SETS["zh"])


TARGET_ZH = 0.90


def zh_labels(labels):
    return [shapes.CLASSES_ZH[shapes.CLASSES.index(y)] for y in labels]


def chinese_accuracy(scores, classes, labels) -> tuple[float, float, float]:
    """(all, seen, held-out) top-1 accuracy of scores read against Chinese class names."""
    pred = [classes[i] for i in scores.argmax(1).tolist()]
    right = np.array([p == y for p, y in zip(pred, labels)])
    held = np.array([y in shapes.HELD_OUT_ZH for y in labels])
    return float(right.mean()), float(right[~held].mean()), float(right[held].mean())


def test_the_demo_reads_the_longest_chinese_prompt_whole():
    from clipnb import load_model

    model = load_model("demo", device="cpu")
    longest = max((t.format(c) for t in zh_templates() for c in shapes.CLASSES_ZH), key=model.tokenizer.count)
    assert model.tokenizer.count(longest) <= model.context_length, longest
    assert model.vocabulary.knows("红色圆形") and model.vocabulary.knows("蓝色三角形")
    assert not model.vocabulary.knows("红色猫") and not model.vocabulary.knows("猫")
    if hasattr(model, "languages"):
        assert "zh" in model.languages and "en" in model.languages


@pytest.mark.parametrize("ensemble", ["embedding", "score"])
def test_the_demo_classifies_fresh_shapes_by_their_chinese_names(demo, images, ensemble):
    model, _ = demo
    img, labels = images
    scores = zero_shot(img, text_features(model, shapes.CLASSES_ZH, zh_templates()), ensemble)
    overall, seen, held_out = chinese_accuracy(scores, shapes.CLASSES_ZH, zh_labels(labels))
    assert overall >= TARGET_ZH, (overall, seen, held_out)
    assert held_out >= 0.75, (overall, seen, held_out)  # the held-out pairs compose in Chinese too


def test_a_mis_aligned_chinese_label_fails_the_accuracy_check(demo, images):
    """Two Chinese class names swapped (as a mis-aligned label table would do) lose those two classes'
    images, and names shifted by one position lose nearly all: the Chinese check can fail."""
    model, _ = demo
    img, labels = images
    labels = zh_labels(labels)
    scores = zero_shot(img, text_features(model, shapes.CLASSES_ZH, zh_templates()), "embedding")
    right = chinese_accuracy(scores, shapes.CLASSES_ZH, labels)[0]
    assert right >= TARGET_ZH
    for a, b in (("红色圆形", "蓝色三角形"), ("绿色正方形", "黄色星形")):
        swapped = list(shapes.CLASSES_ZH)
        i, j = swapped.index(a), swapped.index(b)
        swapped[i], swapped[j] = swapped[j], swapped[i]
        wrong = chinese_accuracy(scores, swapped, labels)[0]
        assert right - wrong >= 0.8 * 2 / len(shapes.CLASSES_ZH), (a, b, right, wrong)  # two classes of 48
        per_class = [y for y, p in zip(labels, scores.argmax(1).tolist()) if y in (a, b) and swapped[p] == y]
        assert len(per_class) <= 2, (a, b, per_class)  # the two swapped classes' images are now (nearly) all wrong
    rolled = list(shapes.CLASSES_ZH[1:]) + [shapes.CLASSES_ZH[0]]
    assert chinese_accuracy(scores, rolled, labels)[0] < 0.1


def test_english_and_chinese_names_of_a_class_agree(demo, images):
    """The same image gets the same class whether it is read in English or in Chinese (nearly always)."""
    model, _ = demo
    img, _ = images
    en = zero_shot(img, text_features(model, shapes.CLASSES), "embedding").argmax(1)
    zh = zero_shot(img, text_features(model, shapes.CLASSES_ZH, zh_templates()), "embedding").argmax(1)
    assert (en == zh).float().mean().item() >= 0.88
