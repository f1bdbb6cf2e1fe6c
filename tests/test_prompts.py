"""clipnb.zeroshot.prompts: template sets, user templates, class checks, and the prompt specification checked once."""
import inspect
import json

import pytest

from clipnb import TEMPLATE_SETS, PromptError, build_head, resolve_templates
from clipnb.zeroshot.prompts import (BASIC_TEMPLATES, IMAGENET7_TEMPLATES, IMAGENET80_TEMPLATES, build_prompts,
                            check_classes, check_ensemble)


def test_template_sets():
    assert resolve_templates("basic") == ["a photo of a {}", "a picture of a {}", "an image of a {}"]
    assert len(IMAGENET80_TEMPLATES) == 80 and len(set(IMAGENET80_TEMPLATES)) == 80
    assert len(IMAGENET7_TEMPLATES) == 7 and set(IMAGENET7_TEMPLATES) <= set(IMAGENET80_TEMPLATES)
    assert resolve_templates("imagenet7") == IMAGENET7_TEMPLATES
    assert all("{}" in t for t in IMAGENET80_TEMPLATES)


def test_basic_is_the_default_and_seed_a_hidden_alias():
    assert list(TEMPLATE_SETS) == ["basic", "imagenet80", "imagenet7", "zh", "zh_photo"]
    assert "seed" not in TEMPLATE_SETS and "seed" not in TEMPLATE_SETS.keys() and len(TEMPLATE_SETS) == 5
    # old scripts and notebooks keep working
    assert resolve_templates("seed") == BASIC_TEMPLATES == resolve_templates()
    assert TEMPLATE_SETS["seed"] == BASIC_TEMPLATES and TEMPLATE_SETS.get("seed") == BASIC_TEMPLATES
    assert TEMPLATE_SETS.get("imagenet81") is None
    with pytest.raises(KeyError):
        TEMPLATE_SETS["imagenet81"]
    assert inspect.signature(resolve_templates).parameters["templates"].default == "basic"
    with pytest.raises(PromptError) as info:
        resolve_templates("imagenet81")
    assert "basic, imagenet80, imagenet7" in str(info.value) and "seed" not in str(info.value)


@pytest.mark.parametrize("spec", ["mine.txt", "my templates.tmpl", "templates/mine", "no/such/file.txt"])
def test_a_missing_template_file_is_named_as_a_file(tmp_path, monkeypatch, spec):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(PromptError) as info:
        resolve_templates(spec)
    message = str(info.value)
    assert message.startswith(f"template file {spec} not found (looked in {tmp_path / spec})")
    assert "unknown template set" not in message and "basic, imagenet80, imagenet7" in message
    with pytest.raises(PromptError, match="template file .*nope.txt not found"):
        resolve_templates(tmp_path / "nope.txt")  # a path object is always a file
    (tmp_path / "folder.txt").mkdir()
    with pytest.raises(PromptError, match="template file folder.txt is a folder; give a text file"):
        resolve_templates("folder.txt")


@pytest.mark.parametrize("spec", ["imagenet81", "photos"])
def test_an_unknown_name_still_lists_the_sets(spec):
    with pytest.raises(PromptError, match=f"unknown template set '{spec}': use one of basic, imagenet80, imagenet7"):
        resolve_templates(spec)


@pytest.mark.parametrize("spec", ["no braces here", "a photo of a"])
def test_words_without_braces_are_a_template_that_lacks_them(spec):
    with pytest.raises(PromptError, match=f"template '{spec}' has no '{{}}' where the class name goes"):
        resolve_templates(spec)


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
    (["a {} next to a {}"], "has 2 '{}'; put exactly one"),
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


@pytest.mark.parametrize("name, message", [
    ("cat,dog,car", """class 'cat,dog,car' holds commas: give each class as its own name: cat dog car """
                    """(command line: --classes cat dog car; Python: ["cat", "dog", "car"])"""),
    ("red car, blue car", """class 'red car, blue car' holds commas: give each class as its own name: """
                          """'red car' 'blue car' (command line: --classes 'red car' 'blue car'; """
                          """Python: ["red car", "blue car"])"""),
    ("猫，狗", """class '猫，狗' holds commas: give each class as its own name: 猫 狗 (command line: --classes 猫 狗; """
             """Python: ["猫", "狗"])"""),
    ("猫、狗、鸟", """Python: ["猫", "狗", "鸟"]"""),
    ("cat,", "class 'cat,' holds a comma; a class name is words without commas: give 'cat' alone"),
])
def test_comma_joined_classes_are_refused_with_the_right_form(name, message):
    with pytest.raises(PromptError) as info:
        check_classes(["tree", name])
    assert message in str(info.value)
    if "Python:" in message:  # what the message proposes is accepted
        proposed = json.loads(str(info.value).rsplit("Python: ", 1)[1][:-1])
        assert check_classes(proposed) == proposed


def test_class_names_are_tidied_and_braces_in_templates_are_text():
    assert check_classes([" red  car ", "tree"]) == ["red car", "tree"]
    assert build_prompts(["cat", "dog"], ["a {} {{not a field}}", "{}"]) == [
        ["a cat {{not a field}}", "cat"], ["a dog {{not a field}}", "dog"]]
    with pytest.raises(PromptError, match="unknown ensembling method 'mean'"):
        check_ensemble("mean")


def test_a_bad_line_of_a_template_file_is_named_with_its_line(tmp_path):
    path = tmp_path / "mine.txt"
    path.write_text("a photo of a {}\n# a comment\n\nno braces here\n", encoding="utf-8")
    with pytest.raises(PromptError, match=r"mine.txt, line 4: template 'no braces here' has no"):
        resolve_templates(path)


def test_a_prompt_spec_is_checked_once_and_passed_down(tiny_checkpoint, tiny_model, tmp_path, monkeypatch):
    from clipnb import cli
    from clipnb.zeroshot import prompts
    from clipnb.zeroshot.prompts import PromptSpec, prompt_spec

    spec = prompt_spec([" red  circle", "blue"], "basic", "score")
    assert spec == PromptSpec(("red circle", "blue"), tuple(BASIC_TEMPLATES), "score")
    assert prompt_spec(spec) is spec
    assert build_head(tiny_model, spec).spec == spec
    with pytest.raises(PromptError, match="part of the PromptSpec"):
        prompt_spec(spec, "imagenet7")

    from PIL import Image
    Image.new("RGB", (32, 24), "red").save(tmp_path / "a.png")
    calls = []
    original = prompts.check_classes
    monkeypatch.setattr(prompts, "check_classes", lambda classes: calls.append(1) or original(classes))
    assert cli.main(["classify", str(tmp_path), "--classes", "cat", "dog", "--model", str(tiny_checkpoint),
                     "--csv", str(tmp_path / "out.csv"), "--no-cache", "--quiet"]) == 0
    assert len(calls) == 1
