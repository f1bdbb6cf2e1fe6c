"""Class names, as users type them and as labels carry them: the rules that check them (`check_classes`),
tell two apart (`class_key`) and split a typed list (`split_class_names`), and `PromptError`, the error of bad
classes or templates.

They sit at stage 1 because both the labels of a folder (clipnb.data.labels) and the model families
(clipnb.models.families, whose tokenizers refuse prompts) use them; clipnb.zeroshot.prompts builds the
prompts from them and re-exports every name here.
"""
from __future__ import annotations

import json
import re
import shlex
from typing import Iterable, Mapping

from ..words import word

# Commas that join several names into one (ASCII, full-width and the Chinese enumeration comma).
CLASS_SEPARATORS = ",，、"


class PromptError(ValueError):
    """Bad classes or templates; the message names the offending entry. One made by `worded` also keeps its
    words.py key, so that a panel can say it in its own language (`said`); its message is the English."""

    key: str | None = None
    fields: Mapping = {}

    @classmethod
    def worded(cls, key: str, **fields) -> PromptError:
        error = cls(word(key, "en", **fields))
        error.key, error.fields = key, fields
        return error

    def said(self, lang: str = "en") -> str:
        """The message in `lang` (the English message where it has no words.py key)."""
        return word(self.key, lang, **self.fields) if self.key else str(self)


def class_key(name: str) -> str:
    """What tells two class names apart: their words, in lower case (CLIP's tokenizer ignores case)."""
    return " ".join(name.split()).lower()


def check_classes(classes: Iterable[str]) -> list[str]:
    """Strip names and refuse empty lists, blank names, duplicates (the tokenizer ignores case) and names
    that join several classes with commas ("cat,dog,car", "猫，狗")."""
    if isinstance(classes, str):
        raise PromptError.worded("prompts.classes_string", classes=classes)
    classes = list(classes)
    if not classes:
        raise PromptError.worded("prompts.no_classes")
    cleaned = []
    for position, name in enumerate(classes, start=1):
        if not isinstance(name, str):
            raise PromptError.worded("prompts.class_not_text", position=position, name=name)
        if not name.strip():
            raise PromptError.worded("prompts.class_blank", position=position)
        cleaned.append(" ".join(name.split()))
    for name in cleaned:
        if any(comma in name for comma in CLASS_SEPARATORS):
            key, fields = _comma_words(name)
            raise PromptError.worded(key, **fields)
    seen: dict[str, str] = {}
    for name in cleaned:
        key = class_key(name)
        if key in seen:
            twice = "prompts.class_twice" if seen[key] == name else "prompts.class_twice_case"
            raise PromptError.worded(twice, name=name, listed=seen[key])
        seen[key] = name
    return cleaned


def split_class_names(text: str) -> list[str]:
    """The class names in `text` separated by commas (, ， or 、), each tidied ("a b ,, c" -> ["a b", "c"])."""
    return [" ".join(part.split()) for part in re.split(f"[{CLASS_SEPARATORS}]", text) if part.strip()]


def comma_message(name: str, lang: str = "en") -> str:
    """What to say about a class name that joins several names with commas ("cat,dog,car")."""
    key, fields = _comma_words(name)
    return word(key, lang, **fields)


def _comma_words(name: str) -> tuple[str, dict]:
    """comma_message's words.py key and fields."""
    parts = split_class_names(name)
    if len(parts) < 2:
        return "prompts.class_comma", {"name": name, "alone": " ".join(parts)}
    words = " ".join(_shell_word(p) for p in parts)
    return "prompts.class_commas", {"name": name, "words": words, "python": json.dumps(parts, ensure_ascii=False)}


def _shell_word(text: str) -> str:
    """`text` as one shell word: quoted only when it needs it (spaces, quotes, $...), so 猫 stays 猫."""
    return shlex.quote(text) if re.search(r"[\s'\"\\$`!*?;&|<>(){}\[\]#~]", text) else text
