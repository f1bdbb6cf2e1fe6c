"""clipnb's batched scores against a direct openai-clip computation, for both ensembling methods."""
import pytest
import torch
from PIL import Image

import clipnb
from clipnb.prompts import SEED_TEMPLATES

from conftest import TEST_IMAGES

CLASSES = ["cat", "dog", "car", "tree", "book"]


def reference_scores(model, paths, classes, templates, ensemble):
    """The seed's computation, one image at a time, written directly against openai-clip."""
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
    results = clipnb.classify(TEST_IMAGES, CLASSES, "seed", model=tiny_model, ensemble=ensemble, exact=True,
                              batch_size=3, progress=False)
    expected = reference_scores(tiny_model, paths, CLASSES, SEED_TEMPLATES, ensemble)
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
    by_embedding = clipnb.build_head(tiny_model, CLASSES, "seed", "embedding").scores(image)
    by_score = clipnb.build_head(tiny_model, CLASSES, "seed", "score").scores(image)
    assert not torch.allclose(by_embedding, by_score)
    one = ["a photo of a {}"]
    assert torch.allclose(clipnb.build_head(tiny_model, CLASSES, one, "embedding").scores(image),
                          clipnb.build_head(tiny_model, CLASSES, one, "score").scores(image), atol=1e-6)


def test_similarity_is_softmax_of_logit_scale_times_cosine(tiny_model):
    import clip

    texts = ["a photo of a cat", "a photo of a dog", "a photo of a bird", "a cat sitting on the sofa"]
    probs = clipnb.similarity(TEST_IMAGES / "cat.jpg", texts, model=tiny_model)
    net = tiny_model.model
    with torch.no_grad():
        image = net.encode_image(tiny_model.preprocess(Image.open(TEST_IMAGES / "cat.jpg")).unsqueeze(0))
        text = net.encode_text(clip.tokenize(texts))
        image, text = image / image.norm(dim=-1, keepdim=True), text / text.norm(dim=-1, keepdim=True)
        expected = (net.logit_scale.exp() * image @ text.T).softmax(dim=-1)[0]
    assert list(probs.index) == texts
    assert torch.allclose(torch.tensor(probs.to_numpy()), expected, atol=1e-5)
    assert abs(probs.sum() - 1) < 1e-5


def test_each_prompt_is_encoded_once_per_model(tiny_model, monkeypatch):
    calls = []
    original = tiny_model.encode_token_tensors

    def counting(tokens):
        calls.append(len(tokens))
        return original(tokens)

    monkeypatch.setattr(tiny_model, "encode_token_tensors", counting)
    tiny_model._text_memo.clear()
    clipnb.build_head(tiny_model, ["zebra", "okapi"], "seed")
    clipnb.build_head(tiny_model, ["okapi", "zebra", "giraffe"], "seed", ensemble="score")
    assert calls == [6, 3]


def test_text_cache_on_disk_is_used_by_a_new_model_object(tiny_checkpoint, cache):
    first = clipnb.load_model(tiny_checkpoint)
    clipnb.build_head(first, ["cat", "dog"], "seed", cache=cache)
    second = clipnb.load_model(tiny_checkpoint)
    second.encode_token_tensors = lambda tokens: pytest.fail("text was encoded again")
    head = clipnb.build_head(second, ["dog", "cat"], "seed", cache=cache)
    assert head.text_features.shape == (2, 3, 32)
