"""Text embeddings, zero-shot heads and scores: arrays in, arrays out (numpy until torch is imported, torch
tensors after: `clipnb.arrays`, so a run whose embeddings are all cached never imports torch).

The two ensembling methods over prompt templates:
- "embedding" (CLIP paper): L2-normalise each template's text embedding, average per class, renormalise,
  then take the cosine with the image embedding.
- "score": average the per-template cosine similarities (each template scores the image on its own).

`class_warnings` says when classes make the answer meaningless (one class, classes the demo model cannot
know, or prompts in a language the model was not trained on); `build_head` emits those sentences as
ClassWarning, and `text_probabilities` the language one for its free texts.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from ..arrays import as_float32, loaded_torch, namespace, stacked
from ..models.languages import language_warnings
from ..models.loading import ClipModel
from .prompts import DEFAULT_TEMPLATES, PromptError, PromptSpec, Templates, build_prompts, prompt_spec
from ..words import word

if TYPE_CHECKING:
    from ..data.cache import EmbeddingCache

TEXT_BATCH = 256
REAL_MODEL_EXAMPLE = "ViT-B/32"


class ClassWarning(UserWarning):
    """Classes or texts with which the answer cannot mean anything (see `class_warnings`); the run still
    goes on."""


def class_warnings(model: ClipModel, classes: Sequence[str], templates: Sequence[str] | None = None,
                   lang: str = "en") -> list[str]:
    """Full sentences about checked class names that make the model's answer meaningless, [] when none.

    - one class: softmax over a single class gives it probability 1 for every image;
    - a model that knows only a small world (the demo model: coloured shapes) given classes outside it;
    - prompts (classes put into `templates`; the class names alone when None) in a language the model's text
      side was not trained on (`languages.language_warnings`: Chinese prompts to an English-only model).
    Pure: the panel shows these in its status line (in its language, `lang`), `build_head` emits them as
    ClassWarning.
    """
    found = []
    classes = list(classes)
    if len(classes) == 1:
        found.append(word("warning.one_class", lang, name=classes[0]))
    found += vocabulary_warnings(model, classes, lang=lang)
    prompts = classes if templates is None else [p for row in build_prompts(classes, list(templates)) for p in row]
    return found + language_warnings(model, prompts, lang)


def small_world(model: ClipModel, consequence: str, lang: str = "en") -> str | None:
    """A sentence about a model trained on a small world (the demo model: coloured shapes): that it knows only
    that world, so `consequence` (words of `lang`), what it knows and what to use instead; None for a model
    without a vocabulary. The one wording of every warning about such a model (classes, queries, duplicates)."""
    vocabulary = getattr(model, "vocabulary", None)
    if vocabulary is None:
        return None
    kinds = " and ".join(f"the {kind} {', '.join(words)}" for kind, words in vocabulary.groups.items())
    examples = " or ".join(repr(e) for e in vocabulary.examples)
    examples_zh = " ".join(e for e in vocabulary.examples if not e.isascii()) or examples
    return word("warning.small_world", lang, model=model.name, subject=vocabulary.subject, consequence=consequence,
                kinds=kinds, examples=examples, examples_zh=examples_zh, real=REAL_MODEL_EXAMPLE)


def vocabulary_warnings(model: ClipModel, names: Sequence[str], *, free: bool = False, lang: str = "en") -> list[str]:
    """The sentence about `names` a model trained on a small world does not know, [] when none (or for a
    model without a vocabulary): class names with a word outside its vocabulary, or, with `free`, free texts
    (search queries) that name none of its words; the demo model reads its colours and shapes and passes over
    the rest ("a photo of"), so "a cat" finds whatever is nearest to nothing."""
    vocabulary = getattr(model, "vocabulary", None)
    if vocabulary is None:
        return []
    if free:  # a text names a word when one of its words is known, or a known Chinese word is in it (no spaces)
        unknown = [t for t in names if not any(vocabulary.knows(w) for w in t.split())
                   and not any(w in t for w in vocabulary.words if not w.isascii())]
    else:
        unknown = [c for c in names if not vocabulary.knows(c)]
    if not unknown:
        return []
    named = [repr(c) for c in unknown[:8]] + ([f"{len(unknown) - 8} more"] if len(unknown) > 8 else [])
    if lang != "en":
        named = [str(c) for c in unknown[:8]] + ([f"+{len(unknown) - 8}"] if len(unknown) > 8 else [])
    shown = named[0] if len(named) == 1 else ", ".join(named[:-1]) + (" and " if lang == "en" else ", ") + named[-1]
    return [small_world(model, word("warning.unknown_classes", lang, shown=shown), lang)]


# A template's embedding within this cosine of its class's counts as the same: float32 noise of one text tower
# (the demo model's "a photo of a {}" and "a picture of a {}" differ by 4e-6), while wording that a model reads
# moves it by 0.03 or more (the demo's imagenet7 templates: 0.966 at the least).
SAME_EMBEDDING = 1e-4


def template_note(model: ClipModel, head: ZeroShotHead, lang: str = "en") -> str:
    """The sentence saying that the head's templates give every class the same text embedding, measured (each
    template within SAME_EMBEDDING of cosine 1 to its class's ensembled embedding), so neither the template set
    nor the ensembling method can change a prediction; "" when they differ or there is one template. For a
    small-world model (the demo) it says why: it reads only the words of its world."""
    if len(head.templates) < 2:
        return ""
    closeness = namespace().einsum("ctd,cd->ct", as_float32(head.text_features), head.class_embeddings)
    if float(closeness.min()) < 1 - SAME_EMBEDDING:
        return ""
    small = getattr(model, "vocabulary", None) is not None
    return word("note.same_templates_small" if small else "note.same_templates", lang, model=model.name)


def check_prompt_lengths(model: ClipModel, prompts: Sequence[str], truncate: bool = False) -> None:
    """Refuse prompts longer than the model's context, counted by its own tokenizer, naming the first one
    (unless truncating)."""
    if truncate:
        return
    for prompt in prompts:
        length = model.tokenizer.count(prompt)
        if length > model.context_length:
            raise PromptError.worded("prompts.too_long", prompt=prompt, length=length, context=model.context_length,
                                     model=model.name)


def encode_texts(model: ClipModel, texts: Sequence[str], truncate: bool = False, cache: EmbeddingCache | None = None,
                 progress: Callable[[int, int], object] | None = None):
    """L2-normalised text embeddings, each prompt encoded once per model.

    Embeddings are remembered on the model object and, when `cache` is given, on disk.

    Args:
        model: the model whose text encoder is used.
        texts: the prompts, already filled in.
        truncate: cut prompts longer than the model's context instead of raising PromptError.
        cache: an embedding cache to read and write.
        progress: called after each batch through the text tower with (prompts encoded, prompts to encode);
            not called when every prompt was remembered.

    Returns:
        Float32 embeddings [len(texts), D] (a numpy array until torch is imported: `clipnb.arrays`).
    """
    texts = list(texts)
    memo = model._text_memo
    missing = [t for t in dict.fromkeys(texts) if (t, truncate) not in memo]
    if missing and cache is not None:
        for text, vector in zip(missing, cache.get_texts(model.fingerprint, missing, truncate)):
            if vector is not None:
                memo[(text, truncate)] = vector
        missing = [t for t in missing if (t, truncate) not in memo]
    if not missing:  # every prompt passed the length check when it was encoded (for this model and truncate):
        return _stacked(memo, texts, truncate, model.embed_dim)  # nothing needs the tokenizer, nor the weights
    check_prompt_lengths(model, missing, truncate)
    # each batch is encoded up to its longest prompt (ClipModel.encode_token_tensors), so prompts of about the
    # same length go together: the padding of a short prompt beside a long one would be work for nothing
    missing.sort(key=model.tokenizer.count)
    for start in range(0, len(missing), TEXT_BATCH):
        chunk = missing[start:start + TEXT_BATCH]
        vectors = model.encode_token_tensors(model.tokenize(chunk, truncate=truncate))
        for text, vector in zip(chunk, vectors):
            memo[(text, truncate)] = vector
        if cache is not None:
            cache.put_texts(model.fingerprint, chunk, truncate, vectors)
        if progress is not None:
            progress(start + len(chunk), len(missing))
    return _stacked(memo, texts, truncate, model.embed_dim)


def _stacked(memo: dict, texts: list[str], truncate: bool, dim: int):
    """The embeddings of `texts` from encode_texts' memo, as one array [len(texts), dim]."""
    return stacked([memo[(t, truncate)] for t in texts], dim)


@dataclass
class ZeroShotHead:
    """What a zero-shot classifier needs: per-template text embeddings and how to combine them."""

    classes: list[str]
    templates: list[str]
    ensemble: str
    text_features: Any  # [classes, templates, D], each row L2-normalised (an array: `clipnb.arrays`)
    logit_scale: float
    logit_bias: float | None = None  # set for sigmoid models (SigLIP); None: a softmax over the classes

    @property
    def spec(self) -> PromptSpec:
        """The classes, templates and ensembling this head scores with, as a PromptSpec."""
        return PromptSpec(tuple(self.classes), tuple(self.templates), self.ensemble)

    @property
    def class_embeddings(self):
        """[classes, D]: the CLIP paper's ensembled class embeddings (used by "embedding")."""
        return l2_normalised(as_float32(self.text_features).mean(1))

    def scores(self, image_features):
        """Cosine scores [images, classes] for L2-normalised image embeddings [images, D]."""
        image_features = as_float32(image_features)
        if self.ensemble == "embedding":
            return image_features @ self.class_embeddings.T
        per_template = namespace().einsum("nd,ctd->nct", image_features, as_float32(self.text_features))
        return per_template.mean(-1)

    @property
    def sigmoid(self) -> bool:
        """True when each class gets its own probability (sigmoid models), which need not sum to 1."""
        return self.logit_bias is not None

    def probabilities(self, scores):
        """Softmax over classes of the model's logit scale times the scores; for sigmoid models (SigLIP)
        each class's own sigmoid(logit scale x score + logit bias)."""
        return probabilities_from_scores(scores, self.logit_scale, self.logit_bias)


def build_head(model: ClipModel, classes: Sequence[str] | PromptSpec, templates: Templates = DEFAULT_TEMPLATES,
               ensemble: str = "embedding", truncate: bool = False, cache: EmbeddingCache | None = None, *, warn: bool = True,
               progress: Callable[[int, int], object] | None = None) -> ZeroShotHead:
    """Check classes, templates and prompt lengths, then embed every prompt (once per model).

    Classes that make the answer meaningless (see `class_warnings`) are reported as ClassWarning, unless
    `warn=False` (a caller that shows `class_warnings` itself, such as the panel's status line).

    Args:
        model: the model whose text encoder embeds the prompts.
        classes: class names, or a PromptSpec (already checked; templates and ensembling then come from it
            and must be left at their defaults).
        templates: a template set's name, a file of templates, or a list of templates with {}.
        ensemble: "embedding" (renormalised mean of the templates' embeddings) or "score" (mean of the
            per-template cosines).
        truncate: cut prompts longer than the model's context instead of raising PromptError.
        cache: keeps the text embeddings on disk as well as on the model object.
        progress: told (prompts encoded, prompts to encode) after each batch (see `encode_texts`).

    Returns:
        A ZeroShotHead holding classes, templates, ensembling, the text embeddings [classes, templates, D]
        and the model's logit scale.
    """
    spec = prompt_spec(classes, templates, ensemble)
    classes, templates, ensemble = list(spec.classes), list(spec.templates), spec.ensemble
    for message in class_warnings(model, classes, templates) if warn else []:
        warnings.warn(message, ClassWarning, stacklevel=2)
    prompts = build_prompts(classes, templates)
    flat = [p for row in prompts for p in row]
    features = encode_texts(model, flat, truncate=truncate, cache=cache, progress=progress)
    features = features.reshape(len(classes), len(templates), -1)
    return ZeroShotHead(classes=classes, templates=templates, ensemble=ensemble, text_features=features,
                        logit_scale=model.logit_scale, logit_bias=model.logit_bias)


def text_probabilities(model: ClipModel, image_features, texts: Sequence[str], truncate: bool = False):
    """The CLIP paper's image-text example: softmax(logit_scale * cosine) over free texts, [images, texts];
    for sigmoid models (SigLIP) each text's own sigmoid probability."""
    if isinstance(texts, str):
        raise PromptError(f"texts must be a list of texts, not the single string {texts!r}: "
                          f"write [{texts!r}, ...] with at least two texts to compare")
    texts = list(texts)
    if not texts:
        raise PromptError("no texts given: give at least one text to compare the image with")
    if len(texts) == 1:
        warnings.warn(f"only one text ({texts[0]!r}): its probability is always 1, since the texts compete with "
                      "each other; give at least two texts to compare", ClassWarning, stacklevel=2)
    if any(not isinstance(t, str) or not t.strip() for t in texts):
        raise PromptError("a text is blank; every text needs words")
    warn_languages(model, texts)
    text_features = encode_texts(model, texts, truncate=truncate)
    return probabilities_from_scores(as_float32(image_features) @ text_features.T, model.logit_scale, model.logit_bias)


def warn_languages(model: ClipModel, texts: Sequence[str], *, vocabulary: bool = False) -> None:
    """Emit `languages.language_warnings` for free texts (similarity, search queries, captions) as
    ClassWarning, from the caller's caller; with `vocabulary`, also `vocabulary_warnings` for texts that
    name nothing a small-world model knows (a search query)."""
    found = language_warnings(model, texts) + (vocabulary_warnings(model, texts, free=True) if vocabulary else [])
    for message in found:
        warnings.warn(message, ClassWarning, stacklevel=3)


def probabilities_from_scores(scores, logit_scale: float, logit_bias: float | None = None, dim: int = -1):
    """Cosine scores -> probabilities: softmax along `dim` of logit_scale x score (CLIP), or, with a
    `logit_bias` (SigLIP, trained with a sigmoid loss), each score's own sigmoid(logit_scale x score + bias).
    float32, in torch's kind when torch is imported, else numpy's (`clipnb.arrays`)."""
    logits = logit_scale * as_float32(scores)
    torch = loaded_torch()
    if torch is not None:
        return logits.softmax(dim=dim) if logit_bias is None else torch.sigmoid(logits + logit_bias)
    if logit_bias is not None:
        return 1 / (1 + np.exp(-(logits + logit_bias)))
    shifted = np.exp(logits - logits.max(axis=dim, keepdims=True))  # minus the largest: exp never overflows
    return shifted / shifted.sum(axis=dim, keepdims=True)


def l2_normalised(vectors):
    """Each row divided by its L2 norm (at least 1e-12), as torch.nn.functional.normalize."""
    torch = loaded_torch()
    if torch is not None:
        return torch.nn.functional.normalize(vectors, dim=-1)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12)
