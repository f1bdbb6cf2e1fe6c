"""Prompt templates as data, and the checks that turn classes x templates into prompts."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from ..data.classes import (CLASS_SEPARATORS, PromptError, check_classes, class_key,  # noqa: F401 (re-exported)
                            comma_message, split_class_names)

ENSEMBLE_METHODS = ("embedding", "score")
Templates = str | os.PathLike | Sequence[str]  # a template set's name, a file of templates, or the templates

# Three plain templates that name what the picture shows: the default.
BASIC_TEMPLATES = ["a photo of a {}", "a picture of a {}", "an image of a {}"]

# CLIP's 80 ImageNet prompt templates (Radford et al. 2021, the "Prompt_Engineering_for_ImageNet" notebook).
IMAGENET80_TEMPLATES = [
    "a bad photo of a {}.", "a photo of many {}.", "a sculpture of a {}.", "a photo of the hard to see {}.",
    "a low resolution photo of the {}.", "a rendering of a {}.", "graffiti of a {}.", "a bad photo of the {}.",
    "a cropped photo of the {}.", "a tattoo of a {}.", "the embroidered {}.", "a photo of a hard to see {}.",
    "a bright photo of a {}.", "a photo of a clean {}.", "a photo of a dirty {}.", "a dark photo of the {}.",
    "a drawing of a {}.", "a photo of my {}.", "the plastic {}.", "a photo of the cool {}.",
    "a close-up photo of a {}.", "a black and white photo of the {}.", "a painting of the {}.",
    "a painting of a {}.", "a pixelated photo of the {}.", "a sculpture of the {}.", "a bright photo of the {}.",
    "a cropped photo of a {}.", "a plastic {}.", "a photo of the dirty {}.", "a jpeg corrupted photo of a {}.",
    "a blurry photo of the {}.", "a photo of the {}.", "a good photo of the {}.", "a rendering of the {}.",
    "a {} in a video game.", "a photo of one {}.", "a doodle of a {}.", "a close-up photo of the {}.",
    "a photo of a {}.", "the origami {}.", "the {} in a video game.", "a sketch of a {}.", "a doodle of the {}.",
    "a origami {}.", "a low resolution photo of a {}.", "the toy {}.", "a rendition of the {}.",
    "a photo of the clean {}.", "a photo of a large {}.", "a rendition of a {}.", "a photo of a nice {}.",
    "a photo of a weird {}.", "a blurry photo of a {}.", "a cartoon {}.", "art of a {}.", "a sketch of the {}.",
    "a embroidered {}.", "a pixelated photo of a {}.", "itap of the {}.", "a jpeg corrupted photo of the {}.",
    "a good photo of a {}.", "a plushie {}.", "a photo of the nice {}.", "a photo of the small {}.",
    "a photo of the weird {}.", "the cartoon {}.", "art of the {}.", "a drawing of the {}.",
    "a photo of the large {}.", "a black and white photo of a {}.", "the plushie {}.", "a dark photo of a {}.",
    "itap of a {}.", "graffiti of the {}.", "a toy {}.", "itap of my {}.", "a photo of a cool {}.",
    "a photo of a small {}.", "a tattoo of the {}.",
]

# The 7 templates the CLIP authors found to work best together on ImageNet.
IMAGENET7_TEMPLATES = [
    "itap of a {}.", "a bad photo of the {}.", "a origami {}.", "a photo of the large {}.",
    "a {} in a video game.", "art of the {}.", "a photo of the small {}.",
]

# The seed article's three templates ("a photo of a {}", "a picture of a {}", "an image of a {}") in Chinese:
# the article writes them in English only, so these are their plain Chinese forms.
ZH_TEMPLATES = ["一张{}的照片", "一张{}的图片", "一幅{}的图像"]

# A larger Chinese set for photos, written for clipnb in the spirit of CLIP's ImageNet templates (and of
# Chinese-CLIP's own Chinese ImageNet templates): how a photo of the class may look.
ZH_PHOTO_TEMPLATES = [
    "一张{}的照片", "一张{}的特写照片", "一张模糊的{}的照片", "一张清晰的{}的照片", "一张明亮的{}的照片",
    "一张昏暗的{}的照片", "一张{}的黑白照片", "一张低分辨率的{}的照片", "一张裁剪过的{}的照片",
    "一张很难看清的{}的照片", "一张拍得不好的{}的照片", "一张拍得很好的{}的照片", "一张大{}的照片",
    "一张小{}的照片", "一张有许多{}的照片", "一张包含{}的照片", "我的{}的照片", "一张干净的{}的照片",
]

DEFAULT_TEMPLATES = "basic"
# Former names of template sets, still accepted but never listed: old scripts and notebooks keep working.
TEMPLATE_ALIASES = {"seed": "basic"}


class _TemplateSets(dict):
    """A dict of the listed template sets that also answers `[alias]` (TEMPLATE_SETS["seed"]) for old code;
    iterating, `in`, keys() and len() see the listed names only."""

    def __missing__(self, name):
        if name in TEMPLATE_ALIASES:
            return self[TEMPLATE_ALIASES[name]]
        raise KeyError(name)

    def get(self, name, default=None):
        return self[name] if name in self or name in TEMPLATE_ALIASES else default


TEMPLATE_SETS = _TemplateSets(basic=BASIC_TEMPLATES, imagenet80=IMAGENET80_TEMPLATES, imagenet7=IMAGENET7_TEMPLATES,
                              zh=ZH_TEMPLATES, zh_photo=ZH_PHOTO_TEMPLATES)
# The sets in Chinese; the others are English. A comparison of "every set" takes the English ones only, since
# an English-only model makes nothing of Chinese prompts (name zh and zh_photo to compare them).
CHINESE_SETS = ("zh", "zh_photo")
# A name ending like a file name (".txt", ".tmpl"): taken for a template file, not a template set.
_FILE_SUFFIX = re.compile(r"\.[A-Za-z][A-Za-z0-9]{0,7}$")
MAX_TEMPLATE_FILE_BYTES = 1024 ** 2  # imagenet80 as a file is 1.7 KB: a larger file is not a templates file


def resolve_templates(templates: str | os.PathLike | Sequence[str] = DEFAULT_TEMPLATES) -> list[str]:
    """Checked templates from any way of giving them.

    Args:
        templates: a template-set name (basic, imagenet80, imagenet7, or zh and zh_photo in Chinese), a text
            file (one template per line, # comments), one template with '{}', or a list of templates.

    Returns:
        The templates as a list of strings, each with one '{}'. Raises PromptError naming what is wrong.
    """
    if isinstance(templates, (str, os.PathLike)):
        spec = str(templates)
        if not spec.strip():  # not the current folder, which Path("") would name
            raise PromptError(f"the templates are blank; give a template set ({', '.join(TEMPLATE_SETS)}), a file "
                              "with one template per line, or one template with '{}' such as 'a photo of a {}'")
        if isinstance(templates, str) and (spec in TEMPLATE_SETS or spec in TEMPLATE_ALIASES):
            templates = TEMPLATE_SETS[spec]
        elif Path(spec).is_file():
            templates = read_template_file(spec)
        elif isinstance(templates, str) and "{}" in spec:
            templates = [spec]
        elif Path(spec).is_dir():
            raise PromptError(f"template file {spec} is a folder; give a text file with one template per line "
                              f"(each with '{{}}'), or one of the template sets {', '.join(TEMPLATE_SETS)}")
        elif Path(spec).exists():  # a FIFO would block the read, a device (/dev/zero) never end
            raise PromptError(f"template file {spec} is not a regular file (a named pipe, device or socket); give "
                              f"a text file with one template per line, or one of the template sets "
                              f"{', '.join(TEMPLATE_SETS)}")
        elif looks_like_path(templates):
            where = "" if Path(spec).is_absolute() else f" (looked in {Path(spec).absolute()})"
            raise PromptError(f"template file {spec} not found{where}: check its name and folder, or use one of "
                              f"the template sets {', '.join(TEMPLATE_SETS)}")
        elif isinstance(templates, str) and len(spec.split()) > 1:
            # words and spaces: a template that lacks its {}, not the name of a set
            templates = [spec]
        else:
            raise PromptError(f"unknown template set {spec!r}: use one of {', '.join(TEMPLATE_SETS)}, "
                              "a file with one template per line, or a list of templates containing '{}'")
    return check_templates(templates)


def looks_like_path(spec: str | os.PathLike) -> bool:
    """Whether a templates value names a file rather than a set: a path object, a path separator in it,
    or a file suffix at its end ("mine.txt")."""
    if not isinstance(spec, str):
        return True
    separators = [os.sep, "/"] + ([os.altsep] if os.altsep else [])
    return any(sep in spec for sep in separators) or bool(_FILE_SUFFIX.search(spec))


def read_template_file(path: str | os.PathLike) -> list[str]:
    """The templates of a UTF-8 file, one a line (blank lines and # comments skipped), checked; a file larger
    than MAX_TEMPLATE_FILE_BYTES is refused without being read whole."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_TEMPLATE_FILE_BYTES + 1)
        if len(data) > MAX_TEMPLATE_FILE_BYTES:
            raise PromptError(f"template file {path} is larger than {MAX_TEMPLATE_FILE_BYTES // 1024 ** 2} MB, far "
                              "more than templates need: check the file name, and give a text file with one "
                              "template per line")
        text = data.decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise PromptError(f"template file {path} could not be read: {exc}") from None
    numbered = [(number, line.strip()) for number, line in enumerate(text.splitlines(), start=1)]
    numbered = [(number, line) for number, line in numbered if line and not line.startswith("#")]
    if not numbered:
        raise PromptError(f"template file {path} holds no templates (one per line, each with '{{}}')")
    for number, line in numbered:  # a bad line is named with its file and line number
        try:
            check_templates([line])
        except PromptError as exc:
            raise PromptError(f"template file {path}, line {number}: {exc}") from None
    return [line for _, line in numbered]


def check_templates(templates: Iterable[str]) -> list[str]:
    """Stripped templates, each text with exactly one '{}' and none given twice; raises PromptError naming
    the first bad one."""
    templates = [t.strip() if isinstance(t, str) else t for t in templates]
    if not templates:
        raise PromptError.worded("prompts.no_templates")
    for template in templates:
        if not isinstance(template, str):
            raise PromptError.worded("prompts.template_not_text", template=template)
        if "{}" not in template:
            raise PromptError.worded("prompts.template_no_slot", template=template)
        if template.count("{}") > 1:
            raise PromptError.worded("prompts.template_slots", template=template, count=template.count("{}"))
    duplicates = sorted({t for t in templates if templates.count(t) > 1})
    if duplicates:
        raise PromptError.worded("prompts.template_twice", template=duplicates[0])
    return templates


def fill(template: str, name: str) -> str:
    """The prompt for one class: the template with its {} replaced by the name."""
    # replace, not str.format: other braces in a template are text, not fields
    return template.replace("{}", name)


def build_prompts(classes: Sequence[str], templates: Sequence[str]) -> list[list[str]]:
    """prompts[c][t] for class c and template t."""
    return [[fill(t, c) for t in templates] for c in classes]


def check_ensemble(ensemble: str) -> str:
    """The ensembling method if it is one of ENSEMBLE_METHODS; raises PromptError otherwise."""
    if ensemble not in ENSEMBLE_METHODS:
        raise PromptError.worded("prompts.unknown_ensemble", ensemble=ensemble, methods=", ".join(ENSEMBLE_METHODS))
    return ensemble


def template_sets(specs: Sequence | Mapping | None = None) -> dict[str, list[str]]:
    """Names -> templates for a comparison of template sets.

    Args:
        specs: set names ("basic"), template files, single templates or lists (each becomes one entry), or a
            mapping name -> templates; None for every built-in English set (the Chinese ones, zh and
            zh_photo, are compared when named).

    Returns:
        A dict from each set's name (a file's is its file name, a list's its templates joined by " | ") to its
        checked templates.
    """
    if specs is None:
        specs = [name for name in TEMPLATE_SETS if name not in CHINESE_SETS]
    if isinstance(specs, Mapping):
        return {str(name): resolve_templates(t) for name, t in specs.items()}
    sets = {}
    for spec in specs:
        if not isinstance(spec, (str, os.PathLike)):
            name = " | ".join(spec)
        elif str(spec) not in TEMPLATE_SETS and os.path.isfile(spec):
            name = Path(spec).name
        else:
            name = str(spec)
        sets[name] = resolve_templates(spec)
    return sets


@dataclass(frozen=True)
class PromptSpec:
    """Classes, templates and an ensembling method that have been checked: build it once with `prompt_spec`
    and pass it down (`classify`, `build_head` take it in place of `classes`), so nothing checks them again.

        spec = prompt_spec(["cat", "dog"], "basic", "embedding")
        head = build_head(model, spec)
    """

    classes: tuple[str, ...]
    templates: tuple[str, ...]
    ensemble: str


def prompt_spec(classes: Sequence[str] | PromptSpec, templates: str | os.PathLike | Sequence[str] = DEFAULT_TEMPLATES,
                ensemble: str = "embedding") -> PromptSpec:
    """Check classes (`check_classes`), then templates (`resolve_templates`), then the ensembling method, in
    that order, and return them as a PromptSpec; raises PromptError naming the first bad entry.

    Args:
        classes: class names (blank, repeated or comma-joined names are refused), or a PromptSpec, which is
            returned unchanged (templates or ensembling given beside it are refused, as they would be ignored).
        templates: a template set's name, a file with one template per line, or a list of templates with {}.
        ensemble: "embedding" or "score".

    Returns:
        A PromptSpec (classes, templates, ensemble as tuples and a string) that `classify` and `build_head`
        take in place of `classes`.
    """
    if isinstance(classes, PromptSpec):
        if not (isinstance(templates, str) and templates == DEFAULT_TEMPLATES) or ensemble != "embedding":
            raise PromptError("templates and ensembling are part of the PromptSpec; do not give them beside it")
        return classes
    checked = check_classes(classes)
    resolved = resolve_templates(templates)
    return PromptSpec(classes=tuple(checked), templates=tuple(resolved), ensemble=check_ensemble(ensemble))
