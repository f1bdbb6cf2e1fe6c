"""clipnb.zeroshot.scoring: batched scores against a direct openai-clip computation for both ensembling methods, prompts
encoded once, prompt lengths checked against the context, and class warnings."""
import inspect
import warnings

import pytest
import torch
from PIL import Image

import clipnb
from clipnb import PromptError, build_head
from clipnb.zeroshot.prompts import BASIC_TEMPLATES

from conftest import TEST_IMAGES

CLASSES = ["cat", "dog", "car", "tree", "book"]


def reference_scores(model, paths, classes, templates, ensemble):
    """The scores computed one image at a time, written directly against openai-clip."""
    import clip

    net = model.model
    with torch.no_grad():
        per_template = []
        for template in templates:
            tokens = clip.tokenize([template.format(c) for c in classes])
            text = net.encode_text(tokens).float()
            per_template.append(text / text.norm(dim=-1, keepdim=True))
        text_features = torch.stack(per_template, dim=1)  # [classes, templates, D]
        rows = []
        for path in paths:
            image = model.preprocess(Image.open(path)).unsqueeze(0)
            features = net.encode_image(image).float()
            features = features / features.norm(dim=-1, keepdim=True)
            if ensemble == "embedding":
                class_embeddings = text_features.mean(dim=1)
                class_embeddings = class_embeddings / class_embeddings.norm(dim=-1, keepdim=True)
                rows.append((features @ class_embeddings.T)[0])
            else:
                rows.append(torch.stack([(features @ text_features[c].T).mean() for c in range(len(classes))]))
    return torch.stack(rows)


@pytest.mark.parametrize("ensemble", ["embedding", "score"])
def test_batched_scores_equal_direct_openai_clip(tiny_model, ensemble):
    paths = clipnb.find_images(TEST_IMAGES)
    results = clipnb.classify(TEST_IMAGES, CLASSES, "basic", model=tiny_model, ensemble=ensemble, exact=True,
                              batch_size=3, progress=False)
    expected = reference_scores(tiny_model, paths, CLASSES, BASIC_TEMPLATES, ensemble)
    got = torch.tensor(results[[f"score_{c}" for c in CLASSES]].to_numpy(), dtype=torch.float32)
    assert list(results["path"]) == [str(p) for p in paths]
    assert torch.allclose(got, expected, atol=1e-4), (got - expected).abs().max()
    probs = (tiny_model.logit_scale * expected).softmax(dim=-1)
    got_probs = torch.tensor(results[[f"prob_{c}" for c in CLASSES]].to_numpy(), dtype=torch.float32)
    assert torch.allclose(got_probs, probs, atol=1e-4)
    assert list(results["prediction"]) == [CLASSES[i] for i in probs.argmax(dim=1)]
    assert torch.allclose(torch.tensor(results["confidence"].to_numpy(), dtype=torch.float32),
                          probs.max(dim=1).values, atol=1e-5)


def test_the_two_ensembling_methods_differ_and_match_single_template(tiny_model):
    image = clipnb.embed_images(tiny_model, [TEST_IMAGES / "cat.jpg"], progress=False).features
    by_embedding = clipnb.build_head(tiny_model, CLASSES, "basic", "embedding").scores(image)
    by_score = clipnb.build_head(tiny_model, CLASSES, "basic", "score").scores(image)
    assert not torch.allclose(by_embedding, by_score)
    one = ["a photo of a {}"]
    assert torch.allclose(clipnb.build_head(tiny_model, CLASSES, one, "embedding").scores(image),
                          clipnb.build_head(tiny_model, CLASSES, one, "score").scores(image), atol=1e-6)


def test_each_prompt_is_encoded_once_per_model(tiny_model, monkeypatch):
    calls = []
    original = tiny_model.encode_token_tensors

    def counting(tokens):
        calls.append(len(tokens))
        return original(tokens)

    monkeypatch.setattr(tiny_model, "encode_token_tensors", counting)
    tiny_model._text_memo.clear()
    clipnb.build_head(tiny_model, ["zebra", "okapi"], "basic")
    clipnb.build_head(tiny_model, ["okapi", "zebra", "giraffe"], "basic", ensemble="score")
    assert calls == [6, 3]


def test_basic_templates_are_the_default(tiny_model):
    assert inspect.signature(clipnb.build_head).parameters["templates"].default == "basic"
    assert clipnb.build_head(tiny_model, ["cat", "dog"]).templates == BASIC_TEMPLATES


def test_one_class_is_warned_about(tiny_model):
    assert clipnb.class_warnings(tiny_model, ["cat", "dog"]) == []
    [one] = clipnb.class_warnings(tiny_model, ["cat"])
    assert one.startswith("only one class ('cat'): every image gets it with probability 1")
    assert "add at least one more class (for example 'something else')" in one
    with pytest.warns(clipnb.ClassWarning) as caught:
        clipnb.build_head(tiny_model, ["cat"])
    assert [str(w.message) for w in caught] == [one]
    with warnings.catch_warnings():
        warnings.simplefilter("error", clipnb.ClassWarning)
        clipnb.build_head(tiny_model, ["cat", "dog"])  # no warning for a sound set of classes
        clipnb.build_head(tiny_model, ["cat"], warn=False)  # for callers that show class_warnings themselves


def test_classes_the_demo_model_cannot_know_are_named(demo, tiny_model):
    from clipnb.models.demo_vocabulary import CLASSES as SHAPES, HELD_OUT

    assert clipnb.class_warnings(demo, list(SHAPES)) == []
    # held-out pairs, the extra training words, letter case and single words all count as known
    assert clipnb.class_warnings(demo, [*HELD_OUT, "Cyan Heart", "grey  arrow", "blue"]) == []
    [text] = clipnb.class_warnings(demo, ["red circle", "cat", "red car", "dog"])
    assert text.startswith("the demo model knows only coloured shapes, so its answers for 'cat', 'red car' and "
                           "'dog' mean nothing")
    assert "red circle'," not in text and "'red circle' or 'blue star'" in text
    assert "the colours red, green, blue" in text and "the shapes circle, square, triangle" in text
    assert "real CLIP model (for example --model ViT-B/32" in text
    # a general CLIP model is never told that it does not know a word
    assert clipnb.class_warnings(tiny_model, ["cat", "red car", "okapi"]) == []
    # both problems at once: two sentences
    assert len(clipnb.class_warnings(demo, ["cat"])) == 2
    with pytest.warns(clipnb.ClassWarning, match="knows only coloured shapes"):
        clipnb.classify(TEST_IMAGES / "cat.jpg", ["cat", "dog"], model=demo, progress=False)


def test_prompt_longer_than_context_is_named(tiny_model):
    long_name = "very " * 80 + "long cat"
    with pytest.raises(PromptError) as info:
        build_head(tiny_model, ["cat", long_name], BASIC_TEMPLATES)
    assert f"'a photo of a {long_name}'" in str(info.value)
    assert "context of 77" in str(info.value) and "truncate" in str(info.value)
    head = build_head(tiny_model, ["cat", long_name], BASIC_TEMPLATES, truncate=True)
    assert head.text_features.shape[:2] == (2, 3)
