"""The language guard: which language prompts are in, and a warning when the model's text side never learnt it.

A CLIP model trained on English captions turns Chinese prompts into confident nonsense. Each family's loader
says which languages a model knows (`ClipModel.languages`: codes such as ("en",), ("zh", "en"),
("multilingual",), or None when unknown); `language_warnings` compares them with the prompts.

The prompts' language is told simply, not detected: a text with a CJK ideograph (汉字) is Chinese (a Chinese
template with an English class is Chinese too); else a text with a Latin letter is English; a text with
neither (digits, emoji, other scripts) is not judged. Japanese written with kanji is thus taken for Chinese.
"""
from __future__ import annotations

import re
from typing import Iterable

from .loading import MULTILINGUAL, ClipModel

ENGLISH, CHINESE = "en", "zh"
LANGUAGE_NAMES = {ENGLISH: "English", CHINESE: "Chinese"}
# models that know a language, first the one a command line takes (`--model`)
SUGGESTED_MODELS = {
    CHINESE: ("cn_clip:ViT-B-16", "hf:OFA-Sys/chinese-clip-vit-base-patch16"),
    ENGLISH: ("ViT-B/32", "open_clip:ViT-B-32,laion2b_s34b_b79k"),
}
# CJK Unified Ideographs, Extension A, Compatibility Ideographs, and Extensions B to H (supplementary planes)
_CHINESE = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003ffff]")
_LATIN = re.compile("[A-Za-z\u00c0-\u024f]")  # ASCII letters and the accented Latin letters (café)


def text_language(text: str) -> str | None:
    """"zh" for a text with a Chinese character, else "en" for one with a Latin letter, else None."""
    if _CHINESE.search(text):
        return CHINESE
    if _LATIN.search(text):
        return ENGLISH
    return None


def text_languages(texts: Iterable[str]) -> list[str]:
    """The languages of texts (see `text_language`), each once, in the order they first appear."""
    found = (text_language(t) for t in texts if isinstance(t, str))
    return list(dict.fromkeys(language for language in found if language is not None))


def language_name(code: str) -> str:
    """"English" for "en"; a code with no name here is shown as itself."""
    return LANGUAGE_NAMES.get(code, code)


def unknown_languages(model: ClipModel, texts: Iterable[str]) -> list[str]:
    """The languages of `texts` that the model's text side was not trained on; [] when its languages are
    unknown (None) or many (multilingual)."""
    known = getattr(model, "languages", None)
    if not known or MULTILINGUAL in known:
        return []
    return [language for language in text_languages(texts) if language not in known]


def language_warnings(model: ClipModel, texts: Iterable[str], lang: str = "en") -> list[str]:
    """One sentence for each language of `texts` (filled-in prompts, free texts or queries) that the model
    does not know, naming the model and a model that knows it; [] when there is none. `lang`: the language
    the sentence is written in ("en", "zh": the Chinese panel).

    The sentence names no prompt, so that runs with several template sets (evaluate) say it only once.
    """
    from ..words import WORDS, word

    def named(code: str) -> str:
        key = f"language.{code}"
        return word(key, lang) if key in WORDS else language_name(code)

    found = []
    known = word("language.and", lang).join(named(code) for code in getattr(model, "languages", None) or ())
    for language in unknown_languages(model, texts):
        name = named(language)
        suggested = SUGGESTED_MODELS.get(language, ())
        if suggested:
            advice = word("warning.language_model", lang, name=name, models=" or ".join(suggested),
                          first=suggested[0], known=known)
        else:
            advice = word("warning.language_trained", lang, name=name, known=known)
        found.append(word("warning.language", lang, model=model.name, known=known, name=name, advice=advice))
    return found
