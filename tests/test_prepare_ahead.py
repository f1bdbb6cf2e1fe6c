"""The panel prepares other template sets in the background (issue 24, "Prompt encoding fast enough"): while it
is idle it encodes the prompts of the current classes in every built-in template set, into the same memory and
disk cache the foreground reads; a change always wins; closing the panel ends the thread; a failure is said once."""
import gc
import threading
import time
import weakref

import numpy as np
import pytest

from clipnb import load_model
from conftest import run_python
from clipnb.ui.prepare_ahead import prepare_by_default
from clipnb.zeroshot.prompts import TEMPLATE_SETS, build_prompts
from clipnb.ui.panel import ClassifierPanel

WORKER = "clipnb-prepare-ahead"  # the name of the preparing thread


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    from conftest import colour_pngs

    return colour_pngs(tmp_path_factory.mktemp("prepare-images"))


class Recorded:
    """A model's text tower, watched: which thread called it, whether a foreground change was running then,
    optionally slowed (`delay` seconds a pass) or made to fail on the preparing thread."""

    def __init__(self, model, delay: float = 0.0, fail_behind: bool = False):
        self.model, self.tower, self.delay, self.fail_behind = model, model.encode_text, delay, fail_behind
        self.calls: list[tuple[str, bool]] = []  # (thread name, a foreground change running)
        self.threads: set[threading.Thread] = set()
        self.preparer = None
        model.encode_text = self

    def __call__(self, tokens):
        thread = threading.current_thread()
        behind = thread.name.startswith(WORKER)
        busy = self.preparer is not None and self.preparer._busy > 0
        self.calls.append((thread.name, busy))
        if behind:
            self.threads.add(thread)
            if self.fail_behind:
                raise RuntimeError("the text tower broke")
        time.sleep(self.delay)
        return self.tower(tokens)

    def behind(self) -> int:
        return sum(1 for name, _ in self.calls if name.startswith(WORKER))


@pytest.fixture()
def model(tiny_checkpoint):
    """A model object of its own per test: nothing remembered, nothing shared with another test's panels."""
    return load_model(tiny_checkpoint, device="cpu")


def open_panel(model, folder, tmp_path, recorded=None, **options):
    panel = ClassifierPanel.from_folder(model, folder, ["red", "blue"], "basic", output_dir=tmp_path / "out",
                                        typing_delay=0, **options)
    if recorded is not None:
        recorded.preparer = panel._preparer
    return panel


def wait_prepared(panel, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while panel._preparer.working:
        assert time.monotonic() < deadline, "the background preparing did not end"
        time.sleep(0.02)


def every_set(classes) -> list[str]:
    return [p for templates in TEMPLATE_SETS.values() for row in build_prompts(classes, list(templates)) for p in row]


def in_set(classes, name: str) -> list[str]:
    return [p for row in build_prompts(classes, list(TEMPLATE_SETS[name])) for p in row]


def test_the_background_fills_both_caches_with_the_other_template_sets(model, image_folder, tmp_path, cache):
    seen = []
    panel = open_panel(model, image_folder, tmp_path, cache=cache, prepare_ahead=True)
    panel.preparing.observe(lambda change: seen.append(change["new"]), names="value")
    wait_prepared(panel)
    wanted = every_set(["red", "blue"])  # a bare checkpoint's languages are unknown: the Chinese sets too
    assert model.prompts_to_encode(wanted) == []
    assert all(vector is not None for vector in cache.get_texts(model.fingerprint, wanted, False))
    ahead = len(set(wanted) - set(in_set(["red", "blue"], "basic")))  # what the first answer had not encoded
    assert any("preparing other template sets in the background:" in text and f"of {ahead} prompts" in text
               for text in seen), seen
    assert panel.preparing.value == ""  # nothing left to say once done
    assert panel.message.startswith("2 classes × 3 templates")  # the status line stays about what is shown
    seen.clear()
    panel.template_set.value = "imagenet80"  # already prepared: answered without a working line
    assert "working" not in panel.message and panel.message.startswith("2 classes × 80 templates")
    panel.add_class("green")  # after an add, the new class's prompts in the other sets
    wait_prepared(panel)
    assert model.prompts_to_encode(every_set(["green"])) == []
    ahead = len(set(every_set(["green"])) - set(in_set(["green"], "imagenet80")))  # imagenet80's were shown
    assert any(f"of {ahead} prompts" in text for text in seen), seen
    panel.close()


def test_a_change_while_preparing_is_answered_first_and_right(model, tiny_checkpoint, image_folder, tmp_path):
    recorded = Recorded(model, delay=0.02)
    panel = open_panel(model, image_folder, tmp_path, recorded, prepare_ahead=True)
    deadline = time.monotonic() + 30
    while recorded.behind() < 2:  # the preparing is under way
        assert time.monotonic() < deadline
        time.sleep(0.01)
    changes = 0
    for step in (lambda: panel.add_class("green"), lambda: panel.remove_class("blue"),
                 lambda: setattr(panel.template_set, "value", "imagenet7"),
                 lambda: setattr(panel.templates, "value", "a photo number 7 of a {}")):
        step()
        changes += 1
        assert panel.error == "" and "working" not in panel.message, panel.message
    # while a change runs, no batch starts behind it; one already begun may finish (the foreground waits for it)
    started_during = sum(1 for name, busy in recorded.calls if busy and name.startswith(WORKER))
    assert started_during <= changes, recorded.calls
    wait_prepared(panel)
    alone = load_model(tiny_checkpoint, device="cpu")
    quiet = ClassifierPanel.from_folder(alone, image_folder, ["red", "green"], ["a photo number 7 of a {}"],
                                        output_dir=tmp_path / "out2", typing_delay=0, prepare_ahead=False)
    numbers = panel.results.select_dtypes("number").columns
    # the same prompts, encoded in batches of other lengths: equal within float32 noise of a text tower
    np.testing.assert_allclose(panel.results[numbers].to_numpy(float), quiet.results[numbers].to_numpy(float),
                               atol=1e-5)
    assert list(panel.results["prediction"]) == list(quiet.results["prediction"])
    panel.close()
    quiet.close()


def test_closing_the_panel_ends_its_thread_and_frees_the_panel(model, image_folder, tmp_path):
    recorded = Recorded(model, delay=0.05)
    panel = open_panel(model, image_folder, tmp_path, recorded, prepare_ahead=True)
    deadline = time.monotonic() + 30
    while not recorded.threads:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    panel.close()
    (thread,) = recorded.threads
    thread.join(timeout=5)  # after the batch under way: 0.05 s here
    assert not thread.is_alive()
    left = recorded.behind()
    time.sleep(0.3)
    assert recorded.behind() == left  # nothing encoded after closing
    assert model.prompts_to_encode(every_set(["red", "blue"]))  # it stopped before the end
    gone = weakref.ref(panel)
    del panel
    gc.collect()
    assert gone() is None  # the preparer kept no closed panel alive


def test_closing_the_widget_stops_the_preparing(model, image_folder, tmp_path):
    recorded = Recorded(model, delay=0.05)
    panel = open_panel(model, image_folder, tmp_path, recorded, prepare_ahead=True)
    panel.widget.close()  # what closing the output view does
    assert panel._preparer._stopped
    for thread in list(recorded.threads):
        thread.join(timeout=5)
        assert not thread.is_alive()
    panel.close()


def test_an_error_behind_is_shown_once_and_stops_only_the_preparing(model, image_folder, tmp_path):
    recorded = Recorded(model, fail_behind=True)
    shown = []
    panel = open_panel(model, image_folder, tmp_path, recorded, prepare_ahead=True)
    panel.preparing.observe(lambda change: shown.append(change["new"]), names="value")
    wait_prepared(panel)
    failures = [text for text in shown if "⚠" in text]
    assert len(failures) == 1, shown
    assert "preparing other template sets in the background stopped (RuntimeError: the text tower broke)" in failures[0]
    assert "Traceback" in failures[0]  # the details, folded under the line
    assert recorded.behind() == 1  # stopped at the first failure
    panel.add_class("green")  # the foreground still works
    assert panel.error == "" and panel.message.startswith("3 classes × 3 templates")
    assert recorded.behind() == 1 and len([t for t in shown if "⚠" in t]) == 1
    panel.language.value = "zh"  # the line is worded again, not said again
    assert "后台准备其他模板集已停止" in panel.preparing.value
    panel.close()


def test_prepare_ahead_false_encodes_nothing_ahead(model, image_folder, tmp_path):
    recorded = Recorded(model)
    panel = open_panel(model, image_folder, tmp_path, recorded, prepare_ahead=False)
    time.sleep(0.3)
    assert not recorded.threads and panel._preparer is None and panel.preparing.value == ""
    assert model.prompts_to_encode(every_set(["red", "blue"])) == [  # what the first answer needed, and no more
        p for p in dict.fromkeys(every_set(["red", "blue"])) if p not in in_set(["red", "blue"], "basic")]
    panel.close()


def test_the_default_follows_the_variable(monkeypatch):
    monkeypatch.setenv("CLIPNB_PREPARE_AHEAD", "0")
    assert not prepare_by_default()
    monkeypatch.delenv("CLIPNB_PREPARE_AHEAD")
    assert prepare_by_default()


def test_an_exiting_interpreter_waits_for_one_batch_not_the_whole_plan(tiny_checkpoint, tmp_path):
    log = tmp_path / "passes.txt"
    code = f"""
import time
from clipnb import load_model
from clipnb.ui.prepare_ahead import Preparer

model = load_model({str(tiny_checkpoint)!r}, device="cpu")
tower = model.encode_text
def logged(tokens):
    with open({str(log)!r}, "a") as out:
        out.write("pass\\n")
    time.sleep(0.05)
    return tower(tokens)
model.encode_text = logged
preparer = Preparer(model, batch=2)
preparer.plan([[f"a photo of thing number {{i}}" for i in range(400)]])  # 200 batches: 10 s or more
while not preparer.done:
    time.sleep(0.01)
with open({str(log)!r}, "a") as out:
    out.write("exit\\n")
"""
    done = run_python(code, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = log.read_text().split()
    after = lines[lines.index("exit") + 1:]
    assert len(after) <= 1, lines  # the batch under way at exit, at most
