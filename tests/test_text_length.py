"""Prompts are encoded at their batch's own token length, not the full context, wherever that is exact (issue 24).

For each family, on the random-weight test models (tests/family_models.py), the embeddings clipnb gives for a
batch of short and long prompts equal those of the full context within 1e-5, and the text tower ran at the
batch's length. Why 1e-5: the embeddings are L2-normalised float32 vectors (entries about 0.1-0.3 here), and
the two runs differ only in the order of float sums (matrix kernels block differently for another sequence
length; masked positions add exact zeros to the softmax), a few float32 roundings of 6e-8 each, so 1e-6 at
most is seen; a padding position that leaked into the result would move entries by 1e-2 or more, which the
SigLIP checks below show for towers that read the last position.
"""
import pytest
import torch

import clipnb
from clipnb.zeroshot import scoring
from clipnb.models.families import huggingface
from family_models import (save_cn_clip_checkpoint, save_hf_chinese_clip_model, save_hf_clip_model,
                           save_hf_siglip_model, save_open_clip_model, save_open_clip_siglip_model)

TOLERANCE = 1e-5  # see the module docstring
LEAK = 1e-3  # what a padding position read by the tower changes, at least (see the module docstring)
ENGLISH = ["a cat", "a photo of a dog", "a blurry photo of a bird sleeping on a green sofa", "a red car"]
CHINESE = ["猫", "一张狗的照片", "一张模糊的照片，一只鸟睡在绿色的沙发上", "红色的汽车"]


def _text_embedding(model) -> torch.nn.Embedding:
    """The text tower's token embedding: the model's embedding table with the most rows (the vocabulary)."""
    return max((m for m in model.model.modules() if isinstance(m, torch.nn.Embedding)), key=lambda m: m.num_embeddings)


def encoded_with_length(model, tokens) -> tuple[torch.Tensor, list[int]]:
    """clipnb's embeddings of the tokens, and the sequence length(s) the text tower ran at."""
    seen = []
    hook = _text_embedding(model).register_forward_pre_hook(lambda module, inputs: seen.append(inputs[0].shape[-1]))
    try:
        return model.encode_token_tensors(tokens), seen
    finally:
        hook.remove()


def _normalised(features) -> torch.Tensor:
    return torch.nn.functional.normalize(huggingface._features(features).float(), dim=-1)


def full_context_reference(model, texts: list[str]) -> torch.Tensor:
    """The embeddings at the full context, by the family's own library (tokens padded to the context)."""
    with torch.inference_mode():
        if model.family == "hf":
            from transformers import BatchEncoding

            full = model.tokenizer.tokenizer(texts, padding="max_length", max_length=model.context_length,
                                             return_tensors="pt")
            return _normalised(model.model.get_text_features(
                **BatchEncoding({k: v for k, v in full.items() if k in model.tokenizer.keys})))
        tokens = model.tokenize(texts)
        assert tokens.shape[1] == model.context_length  # these tokenizers pad to the full context
        return _normalised(model.model.encode_text(tokens))


@pytest.fixture(scope="module")
def family_models(tmp_path_factory, tiny_model, demo):
    """kind -> (a clipnb model of that family, prompts its tokenizer knows)."""
    root = tmp_path_factory.mktemp("text-length")
    open_clip_spec, _ = save_open_clip_model(root / "open_clip")
    siglip_spec, _ = save_open_clip_siglip_model(root / "open_clip_siglip")
    _, cn_checkpoint = save_cn_clip_checkpoint(root / "cn_clip.pt")
    load = lambda spec, **kw: clipnb.load_model(spec, device="cpu", cache=None, **kw)  # noqa: E731
    return {
        "openai": (tiny_model, ENGLISH),
        "demo": (demo, ["red circle", "a photo of a red circle", "a drawing of a small blue star", "green square"]),
        "open_clip": (load("open_clip:" + open_clip_spec), ENGLISH),
        "hf_clip": (load(f"hf:{save_hf_clip_model(root / 'hf_clip')}"), ENGLISH),
        "hf_chinese_clip": (load(f"hf:{save_hf_chinese_clip_model(root / 'hf_chinese_clip')}"), CHINESE),
        "cn_clip": (load("cn_clip:RN50", pretrained=cn_checkpoint), CHINESE),
        "open_clip_siglip": (load("open_clip:" + siglip_spec), ENGLISH),
        "hf_siglip": (load(f"hf:{save_hf_siglip_model(root / 'hf_siglip')}"), ENGLISH),
    }


@pytest.mark.parametrize("kind", ["openai", "demo", "open_clip", "hf_clip", "hf_chinese_clip", "cn_clip"])
def test_a_batch_is_encoded_at_its_longest_prompt_and_equals_the_full_context(family_models, kind):
    """Causal CLIP towers read at the end token (openai, demo, open_clip, HF CLIP) and BERT towers that mask
    their padding and read [CLS] (Chinese-CLIP, both ways of loading it): positions after a prompt change
    nothing, so a batch runs only up to its longest prompt."""
    model, texts = family_models[kind]
    longest = max(model.tokenizer.count(t) for t in texts)
    assert longest < model.context_length / 2
    embeddings, lengths = encoded_with_length(model, model.tokenize(texts))
    assert lengths == [longest]
    assert float((embeddings - full_context_reference(model, texts)).abs().max()) <= TOLERANCE
    # the short prompts alone, at their own shorter length: the same vectors
    alone, lengths = encoded_with_length(model, model.tokenize(texts[:1]))
    assert lengths == [model.tokenizer.count(texts[0])] and float((alone - embeddings[:1]).abs().max()) <= TOLERANCE


@pytest.mark.parametrize("kind", ["open_clip_siglip", "hf_siglip"])
def test_siglip_towers_run_at_the_full_context_which_they_need(family_models, kind):
    """SigLIP's text tower attends to every position and pools the last one, so padding is part of its
    input: clipnb runs it at the full context (as it was trained), and at the batch's length it would not
    give the same embeddings."""
    model, texts = family_models[kind]
    embeddings, lengths = encoded_with_length(model, model.tokenize(texts))
    assert lengths == [model.context_length]
    assert float((embeddings - full_context_reference(model, texts)).abs().max()) <= TOLERANCE
    with torch.inference_mode():
        if kind == "hf_siglip":
            from transformers import BatchEncoding

            short = model.tokenizer.tokenizer(texts, padding=True, return_tensors="pt")
            shortened = _normalised(model.model.get_text_features(
                **BatchEncoding({k: v for k, v in short.items() if k in model.tokenizer.keys})))
        else:
            longest = max(model.tokenizer.count(t) for t in texts)
            shortened = _normalised(model.model.encode_text(model.tokenize(texts)[:, :longest]))
    assert float((shortened - embeddings).abs().max()) > LEAK


def test_new_prompts_are_encoded_in_one_batch_then_remembered(tiny_model, monkeypatch):
    calls = []
    encode = tiny_model.encode_text
    monkeypatch.setattr(tiny_model, "encode_text", lambda tokens: calls.append(len(tokens)) or encode(tokens))
    classes = ["text length one", "text length two", "text length three"]
    clipnb.build_head(tiny_model, classes, "imagenet7")
    assert calls == [3 * 7]  # every new class's prompts together
    clipnb.build_head(tiny_model, classes + ["text length four"], "imagenet7")
    assert calls == [21, 7]  # only the new class's
    clipnb.build_head(tiny_model, classes + ["text length four"], "imagenet7", ensemble="score")
    assert calls == [21, 7]  # all remembered


def test_prompts_of_similar_length_share_a_batch(tiny_model, monkeypatch):
    """Each batch runs up to its longest prompt, so short prompts are batched with short ones: the padding
    of a short prompt beside a long one is work for nothing."""
    monkeypatch.setattr(scoring, "TEXT_BATCH", 2)
    texts = ["a photo of a very long and winding mountain road at night in the rain", "a cat",
             "a photo of a very long and winding country road at dawn in the fog", "a dog"]
    tiny_model._text_memo.clear()
    seen = []
    hook = _text_embedding(tiny_model).register_forward_pre_hook(lambda module, inputs: seen.append(inputs[0].shape[-1]))
    try:
        embeddings = scoring.encode_texts(tiny_model, texts)
    finally:
        hook.remove()
    counts = [tiny_model.tokenizer.count(t) for t in texts]
    assert sorted(seen) == sorted([max(counts[1], counts[3]), max(counts[0], counts[2])])
    assert float((embeddings - full_context_reference(tiny_model, texts)).abs().max()) <= TOLERANCE
