"""Template sets, user templates, class checks and prompt-length checks."""
import pytest

from clipnb import PromptError, build_head, resolve_templates
from clipnb.prompts import (IMAGENET7_TEMPLATES, IMAGENET80_TEMPLATES, SEED_TEMPLATES, build_prompts,
                            check_classes, check_ensemble)


def test_template_sets():
    assert resolve_templates("seed") == ["a photo of a {}", "a picture of a {}", "an image of a {}"]
    assert len(IMAGENET80_TEMPLATES) == 80 and len(set(IMAGENET80_TEMPLATES)) == 80
    assert len(IMAGENET7_TEMPLATES) == 7 and set(IMAGENET7_TEMPLATES) <= set(IMAGENET80_TEMPLATES)
    assert resolve_templates("imagenet7") == IMAGENET7_TEMPLATES
    assert all("{}" in t for t in IMAGENET80_TEMPLATES)


def test_user_list_and_file(tmp_path):
    assert resolve_templates(["a sketch of a {}", " art of the {} "]) == ["a sketch of a {}", "art of the {}"]
    path = tmp_path / "mine.txt"
    path.write_text("# my templates\n\na drawing of a {}\n  itap of a {}  \n", encoding="utf-8")
    assert resolve_templates(path) == ["a drawing of a {}", "itap of a {}"]
    assert resolve_templates(str(path)) == ["a drawing of a {}", "itap of a {}"]
    (tmp_path / "empty.txt").write_text("# nothing\n")
    with pytest.raises(PromptError, match="holds no templates"):
        resolve_templates(tmp_path / "empty.txt")


@pytest.mark.parametrize("templates, message", [
    (["a photo of a cat"], "has no '{}'"),
    ([], "no templates"),
    (["a {}", "a {}"], "given twice"),
    ("imagenet81", "unknown template set 'imagenet81'"),
])
def test_bad_templates(templates, message):
    with pytest.raises(PromptError, match=message.replace("{", "\\{").replace("}", "\\}")):
        resolve_templates(templates)


@pytest.mark.parametrize("classes, message", [
    ([], "no classes"),
    (["cat", ""], "class #2 is blank"),
    (["cat", "   "], "class #2 is blank"),
    (["cat", "dog", "cat"], "'cat' is given twice"),
    (["Cat", "cat"], "ignores letter case"),
    ("cat", "not the single string"),
])
def test_bad_classes(classes, message):
    with pytest.raises(PromptError, match=message):
        check_classes(classes)


def test_class_names_are_tidied_and_braces_in_templates_are_text():
    assert check_classes([" red  car ", "tree"]) == ["red car", "tree"]
    assert build_prompts(["cat", "dog"], ["a {} {{not a field}}", "{}"]) == [
        ["a cat {{not a field}}", "cat"], ["a dog {{not a field}}", "dog"]]
    with pytest.raises(PromptError, match="unknown ensembling method 'mean'"):
        check_ensemble("mean")


def test_prompt_longer_than_context_is_named(tiny_model):
    long_name = "very " * 80 + "long cat"
    with pytest.raises(PromptError) as info:
        build_head(tiny_model, ["cat", long_name], SEED_TEMPLATES)
    assert f"'a photo of a {long_name}'" in str(info.value)
    assert "context of 77" in str(info.value) and "truncate" in str(info.value)
    head = build_head(tiny_model, ["cat", long_name], SEED_TEMPLATES, truncate=True)
    assert head.text_features.shape[:2] == (2, 3)
