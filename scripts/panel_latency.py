"""How long the control panel takes, in a real browser, from a change to its new status and chart on the page.

    .venv/bin/python scripts/panel_latency.py            # 100 and 1,000 images, demo model
    .venv/bin/python scripts/panel_latency.py --sizes 100
    .venv/bin/python scripts/panel_latency.py --sizes 1000 --model /tmp/vit-b32-random.pt   # a real-size model

`--model PATH`: a checkpoint (made once when PATH does not exist: openai-clip's ViT-B/32 with random weights,
`clipnb.bench.vit_b32_checkpoint`, 300 MB in fp16: keep it outside the repository). Its prompts cost what a
real ViT-B/32's do; its answers mean nothing, so the status line may carry a warning, which is timed too.

For each size, a folder of that many images (copies of test_images/shapes, embedded once with the demo model
into a throw-away cache) is opened in notebook cells in JupyterLab, in headless Chromium; then each control is
used in turn, and the time from the action to the status line's change is measured in the page (the status
changes after the charts and the table). Goals (issue 11): under 0.5 s for 100 images, under 1 s for 1,000.
The first use of new prompts also encodes their texts (once per model): every round adds a class and types a
template never seen before, and "imagenet80, 16 classes" switches 16 classes to CLIP's 80 templates once (1,280
new prompts). Times run to the answer on the page (✔ or ⚠), past the "⏳ working…" line.

The panel prepares other template sets in the background while it is idle (`ClassifierPanel(prepare_ahead=...)`,
clipnb.prepare_ahead), so the script runs each size twice, with preparing off and on, in separate kernels over
separate copies of the cache (no prompt encoded by one run is read by the other), and prints them side by side.
As a person would, it reads for `--reading` seconds (15) after the panel opens and again after adding the 6
classes, before switching them to imagenet80.
Needs Debian's chromium and the playwright package, as tests/test_browser.py does.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
from browser_session import browser_problems, chromium_page, jupyterlab, open_and_run_all, timed_change  # noqa: E402

CLASSES = ["red circle", "blue square", "green triangle", "yellow star", "white hexagon", "black cross",
           "purple circle", "orange square", "red star", "blue hexagon"]
MORE_CLASSES = ["green star", "purple hexagon", "orange cross", "white circle", "black square", "yellow triangle"]
REPEATS = 3
READING = 15.0  # seconds a person reads the panel before the first change


def image_folder(work: Path, count: int) -> Path:
    from clipnb import find_images
    SHAPES_IMAGES = ROOT / "test_images" / "shapes"

    sources = find_images(SHAPES_IMAGES, recursive=True)
    folder = work / f"images-{count}"
    folder.mkdir()
    for i in range(count):
        source = sources[i % len(sources)]
        shutil.copy(source, folder / f"{i:05d}{source.suffix}")
    return folder


def notebook(folder: Path, cache: Path, output: Path, model: str = "demo",
             prepare: bool = True) -> nbformat.NotebookNode:
    cell = f"""\
import clipnb
from clipnb.ui.panel import ClassifierPanel
model = clipnb.load_model({model!r})
embedded = clipnb.embed_images(model, clipnb.find_images({str(folder)!r}), cache=clipnb.EmbeddingCache({str(cache)!r}),
                               progress=False)
panel = ClassifierPanel(model, embedded, {CLASSES!r}, "basic", output_dir={str(output)!r},
                        cache=clipnb.EmbeddingCache({str(cache)!r}), prepare_ahead={prepare!r})
panel"""
    kernel = {"kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}}
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell)], metadata=kernel)


def measure(page, rounds: int = REPEATS, reading: float = 0.0) -> dict[str, list[float]]:
    panel = page.locator(".clipnb-panel")
    new_class = panel.locator("input[placeholder^='e.g. red circle']")
    class_list = panel.locator(".widget-select-multiple select").first
    templates = panel.locator("textarea")
    template_set = panel.locator(".widget-dropdown select")
    times: dict[str, list[float]] = {}

    def timed(name, action, containing=""):
        times.setdefault(name, []).append(timed_change(page, action, containing=containing)[1])

    for round_ in range(rounds):
        name = f"green star {round_}"
        new_class.fill(name)
        timed("add a class (Enter)", lambda: new_class.press("Enter"), "11 classes")
        class_list.select_option([name])
        timed("remove a class", lambda: panel.get_by_role("button", name="Remove").click(), "10 classes")
        timed("template set", lambda: template_set.select_option("imagenet7"), "7 templates")
        timed("ensembling", lambda: panel.get_by_role("button", name="score").click(), "score")
        timed("ensembling", lambda: panel.get_by_role("button", name="embedding").click(), "embedding ens")
        templates.fill(f"a photo number {round_} of a {{}}")  # a template never seen: its prompts are new
        timed("template typed + Enter", lambda: templates.press("Enter"), "1 template,")
        timed("template set", lambda: template_set.select_option("basic"), "3 templates")
    new_class.fill(", ".join(MORE_CLASSES))
    timed("add 6 classes at once", lambda: new_class.press("Enter"), "16 classes")
    page.wait_for_timeout(reading * 1000)  # a person looks at the 16 classes before switching the set
    timed("imagenet80, 16 classes", lambda: template_set.select_option("imagenet80"), "80 templates")
    return times


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--model", type=Path, default=None,
                        help="a checkpoint file (made as a random-weight ViT-B/32 when it does not exist); "
                             "default: the demo model")
    parser.add_argument("--rounds", type=int, default=REPEATS, help="rounds of the repeated changes")
    parser.add_argument("--reading", type=float, default=READING,
                        help="seconds of reading after the panel opens, and before the imagenet80 switch")
    parser.add_argument("--prepare", choices=["both", "on", "off"], default="both",
                        help="the panel's background preparing: off and on side by side (default), or one")
    args = parser.parse_args(argv)
    problems = browser_problems()
    if problems:
        print("cannot measure in a browser: " + "; ".join(problems), file=sys.stderr)
        return 2
    import clipnb

    if args.model is not None:
        from clipnb.bench import vit_b32_checkpoint

        vit_b32_checkpoint(args.model)
    spec = str(args.model.resolve()) if args.model is not None else "demo"
    model = clipnb.load_model(spec)
    modes = {"both": ["off", "on"], "on": ["on"], "off": ["off"]}[args.prepare]
    results = {}  # (images, preparing) -> change -> seconds
    with tempfile.TemporaryDirectory(prefix="clipnb-latency-") as tmp:
        work = Path(tmp)
        for count in args.sizes:
            folder = image_folder(work, count)
            images = work / f"cache-{count}"
            clipnb.embed_images(model, clipnb.find_images(folder), cache=clipnb.EmbeddingCache(images), progress=False)
            for mode in modes:
                cache = work / f"cache-{count}-{mode}"  # the images' embeddings, and no prompt of another run
                shutil.copytree(images, cache)
                root = work / f"root-{count}-{mode}"
                root.mkdir()
                nbformat.write(notebook(folder, cache, work / "exports", spec, prepare=mode == "on"),
                               root / "panel.ipynb")
                env = dict(os.environ,
                           PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
                lab_work = work / f"lab-{count}-{mode}"
                lab_work.mkdir()
                with jupyterlab(root, lab_work, env) as (url, token), chromium_page(lab_work / "profile") as page:
                    open_and_run_all(page, url, token, "panel.ipynb")
                    page.locator(".clipnb-charts .clipnb-class-chart").wait_for(timeout=300_000)
                    page.wait_for_timeout(args.reading * 1000)  # a person reads the first answer
                    results[count, mode] = measure(page, args.rounds, args.reading)
    columns = [(n, mode) for n in args.sizes for mode in modes]
    print(f"seconds from a change to its new status and chart in the page (Chromium, JupyterLab, model {model.name}, "
          f"{len(CLASSES)} classes; median and max of {args.rounds} rounds or more; {args.reading:g} s of reading "
          f"after the panel opens and before the imagenet80 switch; preparing ahead off and on, one run each)")
    print(f"{'change':28s}" + "".join(f"{f'{n} images, prep. {mode}':>24s}" for n, mode in columns))
    for change in results[columns[0]]:
        cells = [f"{statistics.median(results[c][change]):8.3f} (max {max(results[c][change]):6.3f})"
                 for c in columns]
        print(f"{change:28s}" + "".join(f"{c:>24s}" for c in cells))
    for n, mode in columns:
        every = [t for series in results[n, mode].values() for t in series]
        goal = 0.5 if n <= 100 else 1.0
        print(f"{n} images, preparing {mode}: slowest change {max(every):.3f} s (goal under {goal} s): "
              f"{'met' if max(every) < goal else 'NOT met'}")
    return 0

if __name__ == "__main__":
    raise SystemExit(main())
