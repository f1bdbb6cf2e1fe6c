"""clipnb.demo.shapes: the world the demo model trains on (classes, held-out combinations, drawing, captions,
labelled folders)."""
import numpy as np
import pytest

from clipnb.demo import shapes
from clipnb.demo.train import ShapesBatches


def test_the_extra_colours_and_shapes_are_outside_the_classes():
    assert not set(shapes.EXTRA) & set(shapes.CLASSES)
    assert not set(shapes.EXTRA_COLOURS) & set(shapes.COLOURS) and not set(shapes.EXTRA_SHAPES) & set(shapes.SHAPES)
    # no shade of an extra colour is close to a shade of a class colour
    rng = np.random.default_rng(0)
    for extra in shapes.EXTRA_COLOURS:
        for colour in shapes.COLOURS:
            for _ in range(30):
                a, b = shapes.shade(extra, rng), shapes.shade(colour, rng)
                assert np.abs(a - b).max() > 25, (extra, colour, a, b)


def test_positives_say_which_captions_are_true_of_which_images():
    infos = [{"colour": "red", "shape": "circle"}, {"colour": "red", "shape": "square"},
             {"colour": "blue", "shape": "circle"}]
    texts = ["a photo of a red circle", "a red shape", "a circle that is blue", "a photo of a square."]
    assert ShapesBatches.matches(infos, texts).tolist() == [
        [True, True, False, False], [False, True, False, True], [False, False, True, False]]


def test_held_out_combinations_leave_every_colour_and_shape_seen():
    assert len(shapes.CLASSES) == 48 and len(set(shapes.CLASSES)) == 48
    assert set(shapes.HELD_OUT) <= set(shapes.CLASSES) and len(shapes.SEEN) == 48 - len(shapes.HELD_OUT)
    for colour in shapes.COLOURS:
        assert any(c.startswith(colour + " ") for c in shapes.SEEN)
    for shape in shapes.SHAPES:
        assert any(c.endswith(" " + shape) for c in shapes.SEEN)


def test_draw_is_reproducible_and_varies_what_pictures_vary():
    img1, info1 = shapes.draw("red", "star", np.random.default_rng(5))
    img2, info2 = shapes.draw("red", "star", np.random.default_rng(5))
    assert info1 == info2 and np.array_equal(np.asarray(img1), np.asarray(img2))
    infos = [shapes.draw("blue", "cross", np.random.default_rng(i))[1] for i in range(60)]
    assert len({(i["width"], i["height"]) for i in infos}) > 40
    assert any(i["width"] != i["height"] for i in infos) and any(i["width"] == i["height"] for i in infos)
    assert {i["background"] for i in infos} >= {"plain", "stripes", "noise", "gradient"}
    assert any(i["blur"] for i in infos) and any(i["jpeg"] for i in infos) and {i["supersample"] for i in infos} > {1}
    assert all(48 <= i["width"] <= 320 and 48 <= i["height"] <= 320 for i in infos)


def test_the_shape_contrasts_with_its_background():
    for i in range(40):
        rng = np.random.default_rng(i)
        for colour in ("white", "black", "yellow", "blue"):
            img, info = shapes.draw(colour, "square", rng, size=(96, 96))
            arr = np.asarray(img, dtype=np.float32)
            half = max(1, int(info["radius"] * 96 * 0.3))  # well inside the square
            cx, cy = int(info["x"] * 96), int(info["y"] * 96)
            inside = arr[cy - half:cy + half + 1, cx - half:cx + half + 1].reshape(-1, 3).mean(0)
            # the corners are always background (the shape fits in a circle inside the image)
            corners = [arr[y:y + 4, x:x + 4].reshape(-1, 3).mean(0) for y in (0, 92) for x in (0, 92)]
            assert min(np.abs(c - inside).sum() for c in corners) > 60, (colour, info)


def test_captions_name_the_colour_and_shape_in_many_phrasings():
    rng = np.random.default_rng(0)
    caps = []
    for i in range(300):
        _, info = shapes.draw("green", "hexagon", rng, size=(64, 64))
        caps.append(shapes.caption(info, rng))
    assert all("green" in c or "hexagon" in c for c in caps)
    assert sum("green" in c and "hexagon" in c for c in caps) > 180
    assert "a photo of a green hexagon" in caps
    assert len(set(caps)) > 120
    assert any(w in " ".join(caps) for w in ("top left", "centre", "center", "middle"))
    assert any("background" in c for c in caps) and any("small" in c or "large" in c or "big" in c for c in caps)


def test_write_folder_writes_a_labelled_folder(tmp_path):
    from PIL import Image

    written = shapes.write_folder(tmp_path, per_class=1, seed=1, classes=["red circle", "black star"])
    assert [(p.relative_to(tmp_path).as_posix(), y) for p, y in written] == [
        ("red circle/000.png", "red circle"), ("black star/000.png", "black star")]
    assert Image.open(written[0][0]).mode == "RGB"
    again = shapes.write_folder(tmp_path / "again", per_class=1, seed=1, classes=["red circle"])
    assert again[0][0].read_bytes() == written[0][0].read_bytes()


# ---------------------------------------------------------------------------------------------- Chinese


def test_the_chinese_table_names_every_class_colour_and_shape_once():
    assert set(shapes.CHINESE) == set(shapes.COLOURS) | set(shapes.SHAPES)
    words = list(shapes.CHINESE.values())
    assert len(set(words)) == len(words)
    # no word holds another, so a Chinese class splits one way only and a word is found by searching the text
    assert not any(a != b and a in b for a in words for b in words)
    assert shapes.to_chinese("red circle") == "红色圆形" and shapes.to_chinese("blue triangle") == "蓝色三角形"
    # the Chinese tuples follow the English ones position by position: a mis-aligned label would show here
    for en, zh in zip(shapes.CLASSES, shapes.CLASSES_ZH):
        colour, shape = en.split()
        assert zh == shapes.CHINESE[colour] + shapes.CHINESE[shape]
        assert shapes.split_chinese(zh) == (shapes.CHINESE[colour], shapes.CHINESE[shape])
        assert shapes.to_english(zh) == en
    assert shapes.HELD_OUT_ZH == tuple(shapes.CLASSES_ZH[shapes.CLASSES.index(c)] for c in shapes.HELD_OUT)
    assert set(shapes.SEEN_ZH) == set(shapes.CLASSES_ZH) - set(shapes.HELD_OUT_ZH)


def test_the_extra_colours_and_shapes_have_no_chinese_name():
    for name in ("cyan star", "red heart"):
        with pytest.raises(ValueError):
            shapes.to_chinese(name)
    for bad in ("红色", "红色猫", "圆形红色", "red circle", ""):
        with pytest.raises(ValueError):
            shapes.split_chinese(bad)


def test_chinese_captions_name_the_colour_and_shape_in_chinese():
    rng = np.random.default_rng(1)
    texts = []
    for label in shapes.SEEN:
        img, info = shapes.draw(*label.split(), rng, size=(64, 64))
        for _ in range(10):
            text = shapes.caption(info, rng, lang="zh")
            colour, shape = (shapes.CHINESE[w] for w in label.split())
            assert text.isascii() is False and (colour in text or shape in text), text
            assert not any(w in text for w in shapes.CHINESE.values() if w not in (colour, shape)), text
            texts.append(text)
    assert any(t.startswith("一张") and t.endswith("的照片") and shapes.CLASSES_ZH[0][:2] in t for t in texts)
    assert any(t in shapes.SEEN_ZH for t in texts)  # the bare class name, as a Chinese class is written
    assert any(t in shapes.CHINESE.values() for t in texts)  # a shape (or colour) alone
    assert any("的形状" in t for t in texts)  # a colour alone
    assert len(set(texts)) > 150
    with pytest.raises(ValueError):
        shapes.caption(info, rng, lang="fr")


def test_chinese_captions_of_extra_colours_and_shapes_name_only_their_class_word():
    rng = np.random.default_rng(2)
    for colour, shape, allowed in (("cyan", "star", "星形"), ("red", "heart", "红色")):
        _, info = shapes.draw(colour, shape, rng, size=(64, 64))
        for _ in range(20):
            text = shapes.caption(info, rng, lang="zh")
            assert allowed in text and not any(w in text for w in shapes.CHINESE.values() if w != allowed), text
    _, info = shapes.draw("cyan", "heart", rng, size=(64, 64))
    assert shapes.caption(info, rng, lang="zh").isascii()  # no Chinese word for either: English


def test_positives_read_chinese_captions_too():
    infos = [{"colour": "red", "shape": "circle"}, {"colour": "red", "shape": "square"},
             {"colour": "blue", "shape": "circle"}, {"colour": "cyan", "shape": "circle"}]
    texts = ["一张红色圆形的照片", "红色的形状", "圆形", "a red circle", "一个蓝色圆形，浅色背景"]
    assert ShapesBatches.matches(infos, texts).tolist() == [
        [True, True, True, True, False], [False, True, False, False, False],
        [False, False, True, False, True], [False, False, True, False, False]]
