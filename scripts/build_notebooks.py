"""Write the notebooks of notebooks/ from the cells below, so that the three stay consistent.

    python scripts/build_notebooks.py           # (re)write notebooks/*.ipynb, without outputs
    python scripts/build_notebooks.py --check   # exit 1 when a committed notebook differs from this script

Each notebook opens with one cell tagged `parameters` (papermill replaces it) holding the model, the
images, the classes or texts, the templates and the output folder. `None` there means "what suits the
model": $CLIPNB_MODEL when set, else ViT-B/32, and the offline demo model when ViT-B/32 cannot be had
(clipnb.defaults.choose_model says so in one line), with images and classes the model knows
(clipnb.defaults.default_inputs).
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from notebook_cells import write_or_check  # noqa: E402

MODEL_LINE = ('model_name = None  # None: $CLIPNB_MODEL when set, else ViT-B/32 '
              '(the offline demo model when ViT-B/32 cannot be had)')
def setup(*imports: str) -> str:
    """The first code cell's opening: imports (the notebook's own after the common ones), the model, and
    where outputs go."""
    extra = "".join(f"{line}\n" for line in imports)
    return f"""\
%matplotlib inline
from pathlib import Path

import clipnb
from clipnb import plotting
from clipnb.defaults import choose_model, default_inputs
{extra}
model = choose_model(model_name)
default_folder, default_classes, default_recursive = default_inputs(model)
output_dir = Path(output_dir).resolve()
print(f"model: {{model.name}}; outputs go to {{output_dir}}")"""


SIMILARITY = [
    ("markdown", """\
# 1. Image-text similarity

How well does one image match each of a few free texts? CLIP embeds the image and every text in the same
space; the probability of a text is the softmax, over the texts, of the cosine similarity times the model's
logit scale. The texts compete with each other: with "a photo of a cat", "a photo of a dog", "a photo of
a bird" and "a cat sitting on the sofa", a cat on a sofa splits its probability between the two cat texts.

Set the parameters below (or pass them with papermill), then run all cells."""),
    ("parameters", f"""\
{MODEL_LINE}
image = None  # one image file; None: a picture the model knows (test_images/cat.jpg, or a red circle for the demo model)
texts = None  # the texts to compare with the image; None: four texts about a cat, a dog and a bird (shape texts for the demo model)
output_dir = "../reports/similarity"  # where the table and the figure are written"""),
    ("markdown", "## The model and its inputs"),
    ("code", setup() + """

EXAMPLE_TEXTS = ["a photo of a cat", "a photo of a dog", "a photo of a bird", "a cat sitting on the sofa"]
SHAPE_TEXTS = ["a photo of a red circle", "a photo of a blue circle", "a photo of a red square",
               "a red circle on a white background"]
if image is None:
    image = (clipnb.find_images(default_folder / "red circle", recursive=True)[0] if model.name == "demo"
             else default_folder / "cat.jpg")
texts = texts or (SHAPE_TEXTS if model.name == "demo" else EXAMPLE_TEXTS)
print(f"image: {image}")"""),
    ("markdown", "## The probability of each text"),
    ("code", """\
probabilities = clipnb.similarity(image, texts, model=model)
probabilities.to_frame().style.format("{:.4f}").bar(color="#9ecae1", vmin=0, vmax=1)"""),
    ("markdown", "The image beside the same probabilities; the best-matching text is highlighted."),
    ("code", """\
figure = plotting.similarity_figure(image, probabilities, title=Path(image).name)
figure"""),
    ("markdown", "## Export"),
    ("code", """\
table = probabilities.rename_axis("text").reset_index()
written = [clipnb.write_csv(table, output_dir / "similarity.csv")]
written += plotting.export_figure(figure, output_dir, "similarity")
for path in written:
    print(f"wrote {path}")"""),
]

ZERO_SHOT = [
    ("markdown", """\
# 2. Zero-shot classification of a folder

Every image of a folder is scored against class names put into prompt templates ("a photo of a {}"),
with the templates ensembled: averaged as text embeddings (the CLIP paper's way) or as scores.
The images are embedded once; every other step below re-scores those embeddings, so changing the classes,
the templates or the ensembling never encodes an image again.

At the end, a control panel lets you add and remove classes, edit the templates, switch the ensembling
method and pick the images shown; the charts and the table redraw in place, and Export writes them to a
new subfolder of the output folder."""),
    ("parameters", f"""\
{MODEL_LINE}
image_folder = None  # None: the images the model knows (test_images/shapes for the demo model, else test_images)
recursive = None  # look in subfolders too; None: only for the default folder (the shapes sit in one folder per class)
classes = None  # class names; None: the classes of the default images
templates = "basic"  # a template set (basic, imagenet80, imagenet7), a file with one template per line, or a list
ensemble = "embedding"  # "embedding" (average the templates' embeddings) or "score" (average their scores)
compared_template_sets = ["basic", "imagenet7", "imagenet80"]  # the settings compared side by side
max_images = 12  # images in the grid
rows_shown = 10  # rows of the long tables shown here (the CSV files hold every row)
output_dir = "../reports/zero_shot"  # where the CSV files and the figures are written"""),
    ("markdown", "## The model and the images"),
    ("code", setup("from clipnb import compare", "from clipnb.classify import gather_images",
                   "from clipnb.defaults import choose_folder", "from clipnb.images import folder_note",
                   "from clipnb.widgets import ClassifierPanel, image_table") + """

image_folder, recursive = choose_folder(image_folder, recursive, model)
classes = classes or default_classes
cache = clipnb.EmbeddingCache()  # embeddings are kept on disk: a second run encodes nothing
images = gather_images(image_folder, recursive=recursive)  # says so when the folder holds no images
print(folder_note(image_folder, recursive, option="recursive = True (parameters)") + f"; {len(classes)} classes")"""),
    ("markdown", "Embed every image once. Unreadable files become rows with an `error`; they never stop the run."),
    ("code", """\
embedded = clipnb.embed_images(model, images, cache=cache)
print(embedded.describe())"""),
    ("markdown", """\
## Classify with prompt ensembling

Where the images sit in one subfolder per class, the folder names are the true classes: the table marks
each prediction right (✓) or wrong (✗)."""),
    ("code", """\
head = clipnb.build_head(model, classes, templates, ensemble, cache=cache)
results = clipnb.results_table(embedded, head)
truth = compare.folder_labels(embedded.records["path"], classes)
truth = truth if any(truth) else None
table = image_table(results, truth=truth)
print(f"{len(head.classes)} classes x {len(head.templates)} templates, {ensemble} ensembling")
if truth is not None:
    labelled = table["correct"].dropna()
    print(f"{int(labelled.sum())} of {len(labelled)} labelled images right ({labelled.mean():.0%})")
print(f"the first {min(rows_shown, len(table))} of {len(table)} images (all of them go to classification.csv):")
table.head(rows_shown).style.format(precision=3).hide(axis="index")"""),
    ("markdown", "Each image above its five best classes; the winner is drawn in its class colour and in bold."),
    ("code", """\
grid = plotting.image_grid(results, max_images=max_images, truth=truth)
grid"""),
    ("markdown", """\
## Template sets and ensembling methods side by side

The same embeddings under each template set and both ensembling methods, with each setting's accuracy
where the folder names give the true classes. Then only the images whose prediction changes between
settings."""),
    ("code", """\
comparison = compare.compare_settings(model, embedded, classes, compared_template_sets, cache=cache)
compare.setting_summary(comparison, truth).style.format(precision=3).hide(axis="index")"""),
    ("code", """\
changed = comparison[comparison["changed"]]
print(f"{len(changed)} of {len(comparison)} predictions change between the settings"
      + ("" if len(changed) <= rows_shown else f"; the first {rows_shown} shown (all in settings_comparison.csv)"))
compare.highlight_changes(changed.head(rows_shown)) if len(changed) else None"""),
    ("code", """\
comparison_chart = plotting.comparison_figure(comparison, only_changed=True)
comparison_chart"""),
    ("markdown", "## Export"),
    ("code", """\
written = [clipnb.write_csv(results, output_dir / "classification.csv", bom=True),
           clipnb.write_csv(comparison.reset_index(), output_dir / "settings_comparison.csv")]
written += plotting.export_figure(grid, output_dir, "image_grid")
written += plotting.export_figure(comparison_chart, output_dir, "settings_comparison")
for path in written:
    print(f"wrote {path}")"""),
    ("markdown", """\
## Try it yourself

Add classes (type a name and press Enter; commas add several), select classes and Remove them, pick a
template set or edit the templates (one per line, each with `{}`: they apply as you type), switch the
ensembling method or the images shown. The charts and the table below redraw from the embeddings computed
above, and the status line says what is shown: "N classes × M templates, METHOD ensembling". A bad entry
shows ⚠ and a message, and keeps the last good results. **Export** writes the CSV files and the charts
(PNG, SVG, PDF) to a new timestamped subfolder of the output folder, never over the files above."""),
    ("code", """\
panel = ClassifierPanel(model, embedded, classes, templates, ensemble, output_dir=output_dir, cache=cache)
panel"""),
]

REPORT = [
    ("markdown", """\
# 3. Classification report

A report on a folder of images: classify them, then a dashboard of the predicted classes, the mean
confidence per predicted class, the aspect-ratio types and the width/height histogram with its mean; the
per-image table; a statistics summary; and the CSV files and figures written for a report. Titles and class
names may be Chinese: an installed CJK font is used, and when there is none the notebook says how to
install one."""),
    ("parameters", f"""\
{MODEL_LINE}
image_folder = None  # None: the images the model knows (test_images/shapes for the demo model, else test_images)
recursive = None  # look in subfolders too; None: only for the default folder (the shapes sit in one folder per class)
classes = None  # class names; None: the classes of the default images
templates = "basic"  # a template set (basic, imagenet80, imagenet7), a file with one template per line, or a list
ensemble = "embedding"  # "embedding" (average the templates' embeddings) or "score" (average their scores)
title = "Zero-shot classification report"  # the dashboard's title, for example "CLIP零样本分类报告"
dpi = 150  # resolution of the PNG figure
rows_shown = 10  # rows of the per-image table shown here (the CSV file holds every row)
output_dir = "../reports"  # where the CSV files and the figures are written"""),
    ("markdown", "## Classify the folder"),
    ("code", setup("from clipnb.defaults import choose_folder", "from clipnb.images import folder_note") + """

image_folder, recursive = choose_folder(image_folder, recursive, model)
classes = classes or default_classes
print(folder_note(image_folder, recursive, option="recursive = True (parameters)") + f"; {len(classes)} classes")
results = clipnb.classify(image_folder, classes, templates, model=model, ensemble=ensemble, recursive=recursive,
                          cache=clipnb.EmbeddingCache())"""),
    ("markdown", "## Dashboard"),
    ("code", """\
dashboard = plotting.report_dashboard(results, title=title)
dashboard"""),
    ("markdown", "## Per-image table"),
    ("code", """\
columns = ["path", "width", "height", "aspect_ratio", "ratio_type", "prediction", "confidence", "error"]
print(f"the first {min(rows_shown, len(results))} of {len(results)} images (all of them go to classification.csv):")
results[columns].head(rows_shown).style.format({"confidence": "{:.4f}"}).hide(axis="index")"""),
    ("markdown", "## Statistics"),
    ("code", "print(clipnb.summary_text(results))"),
    ("code", "clipnb.class_summary(results).style.format(precision=3).hide(axis=\"index\")"),
    ("markdown", "## Export for the report"),
    ("code", """\
written = [clipnb.write_csv(results, output_dir / "classification.csv", bom=True),
           clipnb.write_csv(clipnb.class_summary(results), output_dir / "class_summary.csv")]
written += plotting.export_figure(dashboard, output_dir, "dashboard", dpi=dpi)
for path in written:
    print(f"wrote {path}")"""),
]

NOTEBOOKS = {
    "01_image_text_similarity.ipynb": SIMILARITY,
    "02_zero_shot_classification.ipynb": ZERO_SHOT,
    "03_classification_report.ipynb": REPORT,
}


def main(argv=None) -> int:
    return write_or_check(NOTEBOOKS, "scripts/build_notebooks.py", argv, description=__doc__.split("\n\n")[0])


if __name__ == "__main__":
    raise SystemExit(main())
