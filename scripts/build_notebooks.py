"""Write the nine notebooks of notebooks/ from the cells below, so that they stay consistent.

    python scripts/build_notebooks.py           # (re)write notebooks/*.ipynb, without outputs
    python scripts/build_notebooks.py --check   # exit 1 when a committed notebook differs from this script

Each notebook opens with one cell tagged `parameters` (papermill replaces it) holding the model, the
images, the classes or texts, the templates and the output folder. `None` there means "what suits the
model": $CLIPNB_MODEL when set, else ViT-B/32, and the offline demo model when ViT-B/32 cannot be had
(clipnb.notebook.choose_model says so in one line), with images and classes the model knows
(clipnb.notebook.default_inputs). Without a folder of one's own, notebooks 04-07 use generated coloured
shapes (clipnb.demo), labelled by their subfolder names, which every CLIP model can be asked about and
the demo model knows.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from notebook_cells import write_or_check  # noqa: E402

MODEL_LINE = ('model_name = None  # None: $CLIPNB_MODEL when set, else ViT-B/32 '
              '(the offline demo model when ViT-B/32 cannot be had)\n'
              '# any spec that `python -m clipnb models` lists; weights after a comma, as in '
              '"open_clip:ViT-B-32,laion2b_s34b_b79k"\n'
              'sample_images = "../test_images"  # the sample images of the checkout: photos, and shapes/ for the demo model')

# The parameters notebooks 02 and 03 share: which folder and classes, and how they are prompted.
FOLDER_PARAMETERS = """\
image_folder = None  # None: the images the model knows (test_images/shapes for the demo model, else test_images)
recursive = None  # look in subfolders too; None: only for the default folder (the shapes sit in one folder per class)
classes = None  # class names; None: the classes of the default images
templates = "basic"  # a template set (basic, imagenet80, imagenet7), a file with one template per line, or a list
ensemble = "embedding"  # "embedding" (average the templates' embeddings) or "score" (average their scores)"""


def setup(*imports: str) -> str:
    """The first code cell's opening: imports (the notebook's own after the common ones), the model, and
    where outputs go."""
    extra = "".join(f"{line}\n" for line in imports)
    return f"""\
%matplotlib inline
from pathlib import Path

import clipnb
from clipnb.report.plots import base as plotting
from clipnb.notebook import choose_model, default_inputs
from clipnb.words import plural, word
{extra}
model = choose_model(model_name)
default_folder, default_classes, default_recursive = default_inputs(model, sample_images)
output_dir = Path(output_dir).resolve()
print(word("notebook.model", LANG, model=model.name, folder=output_dir))"""


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
LANG = "en"  # the language of the chart and the CSV headers: "en" or "zh"
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
print(word("notebook.image", LANG, path=image))"""),
    ("markdown", "## The probability of each text"),
    ("code", """\
probabilities = clipnb.similarity(image, texts, model=model)
probabilities.to_frame().style.format("{:.4f}").bar(color="#9ecae1", vmin=0, vmax=1)"""),
    ("markdown", "The image beside the same probabilities; the best-matching text is highlighted."),
    ("code", """\
figure = plotting.similarity_figure(image, probabilities, title=Path(image).name, lang=LANG)
figure"""),
    ("markdown", "## Export"),
    ("code", """\
table = probabilities.rename_axis("text").reset_index()
written = [clipnb.write_csv(clipnb.localised(table, LANG), output_dir / "similarity.csv")]
written += plotting.export_figure(figure, output_dir, "similarity")
for path in written:
    print(word("cli.wrote", LANG, path=path))"""),
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
{FOLDER_PARAMETERS}
compared_template_sets = ["basic", "imagenet7", "imagenet80"]  # the settings compared side by side
max_images = 12  # images in the grid
rows_shown = 10  # rows of the long tables shown here (the CSV files hold every row)
LANG = "en"  # the language of the charts, the summary and the CSV headers: "en" or "zh" (the article's Chinese)
output_dir = "../reports/zero_shot"  # where the CSV files and the figures are written"""),
    ("markdown", "## The model and the images"),
    ("code", setup("import textwrap", "from clipnb.notebook import choose_folder", "from clipnb.zeroshot.scoring import template_note",
                   "from clipnb.ui.base import table_html",
                   "from clipnb.ui.panel import ClassifierPanel, image_table, settings_line",
                   "from IPython.display import HTML") + """

image_folder, recursive = choose_folder(image_folder, recursive, model, sample_images)
classes = classes or default_classes
cache = clipnb.EmbeddingCache()  # embeddings are kept on disk: a second run encodes nothing
images = clipnb.gather_images(image_folder, recursive=recursive)  # says so when the folder holds no images
print(clipnb.folder_note(image_folder, recursive, option=word("notebook.recursive_option", LANG), lang=LANG)
      + word("notebook.classes", LANG, classes=plural(len(classes), "class"), class_count=len(classes)))"""),
    ("markdown", "Embed every image once. Unreadable files become rows with an `error`; they never stop the run."),
    ("code", """\
embedded = clipnb.embed_images(model, images, cache=cache)
print(embedded.describe(LANG))"""),
    ("markdown", """\
## Classify with prompt ensembling

Where the images sit in one subfolder per class, the folder names are the true classes: the table marks
each prediction right (✓) or wrong (✗)."""),
    ("code", """\
head = clipnb.build_head(model, classes, templates, ensemble, cache=cache)
results = clipnb.results_table(embedded, head)
truth = clipnb.folder_labels(embedded.records["path"], classes)
truth = truth if any(truth) else None
table = image_table(results, truth=truth)
print(settings_line(head.classes, head.templates, head.ensemble, head.sigmoid, LANG))
if truth is not None:
    labelled = table["correct"].dropna()
    print(word("notebook.right", LANG, right=int(labelled.sum()), labelled=len(labelled), share=labelled.mean()))
print(word("notebook.first_rows", LANG, shown=min(rows_shown, len(table)), images=plural(len(table), "image"),
           image_count=len(table), file="classification.csv"))
HTML(table_html(table.head(rows_shown), LANG, classes))  # ✓/✗ and the headers in LANG"""),
    ("markdown", "Each image above its five best classes; the winner is drawn in its class colour and in bold."),
    ("code", """\
grid = plotting.image_grid(results, max_images=max_images, truth=truth, lang=LANG)
grid"""),
    ("markdown", """\
## Template sets and ensembling methods side by side

The same embeddings under each template set and both ensembling methods, with each setting's accuracy
where the folder names give the true classes. Then only the images whose prediction changes between
settings."""),
    ("code", """\
scored = clipnb.score_settings(model, embedded, classes, compared_template_sets, labels=truth, cache=cache)
comparison = scored.predictions
shown = ["setting", "differs_from_first", "mean_confidence"] + (["labelled", "acc@1"] if truth is not None else [])
scored.summary[shown].style.format(precision=3).hide(axis="index")"""),
    ("code", """\
changed = comparison[comparison["changed"]]
print(word("notebook.changed", LANG, changed=len(changed), predictions=plural(len(comparison), "prediction"),
           prediction_count=len(comparison))
      + ("" if len(changed) <= rows_shown else word("notebook.changed_shown", LANG, shown=rows_shown,
                                                    file="settings_comparison.csv")))
# wrapped at words: the page breaks a long output line anywhere, even inside a word
print(textwrap.fill(template_note(model, head, LANG) or word("notebook.templates_differ", LANG), width=100))
clipnb.highlight_changes(changed.head(rows_shown)) if len(changed) else None"""),
    ("code", """\
# a chart of the changed predictions only when there are some; otherwise say why there is none
comparison_chart = plotting.comparison_figure(comparison, only_changed=True, lang=LANG) if len(changed) else None
comparison_chart if comparison_chart is not None else print(word("note.no_comparison_chart", LANG))"""),
    ("markdown", "## Export"),
    ("code", """\
written = [clipnb.write_csv(clipnb.localised(results, LANG), output_dir / "classification.csv"),
           clipnb.write_csv(comparison.reset_index(), output_dir / "settings_comparison.csv")]
written += plotting.export_figure(grid, output_dir, "image_grid")
if comparison_chart is not None:  # no empty chart: settings_comparison.csv holds every setting's predictions
    written += plotting.export_figure(comparison_chart, output_dir, "settings_comparison")
for path in written:
    print(word("cli.wrote", LANG, path=path))"""),
    ("markdown", """\
## Try it yourself

Add classes (type a name and press Enter; commas add several), select classes and Remove them, pick a
template set or edit the templates (one per line, each with `{}`: they apply as you type), switch the
ensembling method or the images shown. The charts and the table below redraw from the embeddings computed
above, and the status line says what is shown: "N classes × M templates, METHOD ensembling". A bad entry
shows ⚠ and a message, and keeps the last good results. **Language** (English or 中文) re-words the status
line, the charts and the table, and the exported files' headers and figures, without changing a setting.
**Export** writes the CSV files and the charts
(PNG, SVG, PDF) to a new timestamped subfolder of the output folder, never over the files above."""),
    ("code", """\
panel = ClassifierPanel(model, embedded, classes, templates, ensemble, output_dir=output_dir, cache=cache, lang=LANG)
panel"""),
]

REPORT = [
    ("markdown", """\
# 3. Classification report

A report on a folder of images: classify them, then a dashboard of the predicted classes, the mean
confidence per predicted class, the aspect-ratio types and the width/height histogram with its mean; the
per-image table; a statistics summary; and the CSV files and figures written for a report. With
`LANG = "zh"` the report is in Chinese as the article writes it: chart titles (分类结果分布, 图像比例分布, ...),
the 统计总结 and the CSV headers (图像名称, 宽度, ..., `<class>_得分`). Titles and class names may be Chinese:
an installed CJK font is used, and when there is none the notebook says how to install one.

The ratio types are the article's five (square 1:1, standard 4:3, widescreen 16:9, photo 3:2, other), and each
holds for both orientations: an upright 3024x4032 phone photo (3:4) is "standard (4:3)" with orientation
"portrait" (纵向). The chart hatches and counts the portrait part of each bar, and the summary says how many
of each type are portrait."""),
    ("parameters", f"""\
{MODEL_LINE}
{FOLDER_PARAMETERS}
title = None  # the dashboard's title; None: "Zero-shot classification report" in LANG
LANG = "en"  # the language of the charts, the summary and the CSV headers: "en" or "zh" (the article's Chinese)
dpi = 150  # resolution of the PNG figure
rows_shown = 10  # rows of the per-image table shown here (the CSV file holds every row)
output_dir = "../reports"  # where the CSV files and the figures are written"""),
    ("markdown", "## Classify the folder"),
    ("code", setup("from clipnb.notebook import choose_folder", "from clipnb.ui.base import table_html",
                   "from IPython.display import HTML") + """

image_folder, recursive = choose_folder(image_folder, recursive, model, sample_images)
classes = classes or default_classes
print(clipnb.folder_note(image_folder, recursive, option=word("notebook.recursive_option", LANG), lang=LANG)
      + word("notebook.classes", LANG, classes=plural(len(classes), "class"), class_count=len(classes)))
results = clipnb.classify(image_folder, classes, templates, model=model, ensemble=ensemble, recursive=recursive,
                          cache=clipnb.EmbeddingCache())"""),
    ("markdown", "## Dashboard"),
    ("code", """\
dashboard = plotting.report_dashboard(results, title=title, lang=LANG)
dashboard"""),
    ("markdown", "## Per-image table"),
    ("code", """\
# a ratio type holds for both orientations (a 3:4 photo is "standard (4:3)"): the orientation beside it;
# images by the short names notebook 02 shows (the CSV keeps the full paths)
columns = ["image", "width", "height", "aspect_ratio", "ratio_type", "orientation", "prediction", "confidence", "error"]
print(word("notebook.first_rows", LANG, shown=min(rows_shown, len(results)), images=plural(len(results), "image"),
           image_count=len(results), file="classification.csv"))
shown = results.assign(image=clipnb.data.images.display_names(results["path"]))[columns].head(rows_shown)
HTML(table_html(clipnb.zeroshot.schema.localised(shown, LANG), LANG, classes))"""),
    ("markdown", "## Statistics"),
    ("code", "print(clipnb.summary_text(results, LANG))"),
    ("code", """\
summary = clipnb.localised(clipnb.class_summary(results), LANG)
# percentages as the CSV writes them (2.1, not 2.100); scores and probabilities to 3 decimals
summary.style.format(precision=3).format(precision=1, subset=[clipnb.zeroshot.schema.column_name("predicted_pct", LANG)]).hide(
    axis="index")"""),
    ("markdown", "## Export for the report"),
    ("code", """\
written = [clipnb.write_csv(clipnb.localised(results, LANG), output_dir / "classification.csv"),
           clipnb.write_csv(clipnb.localised(clipnb.class_summary(results), LANG), output_dir / "class_summary.csv")]
written += plotting.export_figure(dashboard, output_dir, "dashboard", dpi=dpi)
for path in written:
    print(word("cli.wrote", LANG, path=path))"""),
]

# Notebooks 04-07 (evaluation, search, video, few-shot probes) open with this cell instead of setup().
ANALYSIS_SETUP = """\
%matplotlib inline
from pathlib import Path

import clipnb
from clipnb.report.plots import evaluation as evaluation_plots
from clipnb.report.plots import base as plotting
from clipnb.report.plots import search as search_plots
from clipnb.report.plots import video as video_plots
from clipnb.notebook import choose_model, default_inputs
from clipnb.ui.panel import warnings_said
from clipnb.words import plural, word

model = choose_model(model_name)
default_folder, default_classes, default_recursive = default_inputs(model, sample_images)
output_dir = Path(output_dir).resolve()  # absolute, so every path printed below is too
cache = clipnb.EmbeddingCache()  # embeddings are kept on disk: a second run encodes nothing
print(word("notebook.model", LANG, model=model.name, folder=output_dir))"""

EVALUATION = [
    ("markdown", """\
# 4. Evaluation against labels

How often is zero-shot classification right on images whose class is known? The labels come from the
folder layout (`folder/<class>/image.jpg`) or from a CSV of `path,label`. The images are embedded once; the
evaluation and the comparison of template sets and ensembling methods (the CLIP paper's prompt-engineering
table) only re-score those embeddings.

- **acc@1**: the top prediction is the true class; **acc@5**: the true class is among the five best.
- **mean per-class recall**: the accuracy of each class, averaged, so that a large class cannot hide a
  weak one.
- **confusion matrix**: rows are true classes, columns predictions; colour is the share of the row."""),
    ("parameters", f"""\
{MODEL_LINE}
image_folder = None  # labelled images, one subfolder per class (or any images with labels_csv); None: generated shapes
labels_csv = None  # a CSV of path,label (paths relative to image_folder); None: the subfolder names are the labels
classes = None  # class names; None: the labels (underscores read as spaces)
templates = ["basic", "imagenet7"]  # the first is evaluated; all are compared, each with both ensembling methods
ensemble = "embedding"  # "embedding" (average the templates' embeddings) or "score" (average the templates' scores)
per_class = 4  # images per class when the shapes are generated
mistakes = 12  # how many confident mistakes to show
compare_with = []  # other models to compare on the same images, e.g. ["open_clip:ViT-B-32,laion2b_s34b_b79k"]
LANG = "en"  # the language of the confusion matrix, the mistakes and the CSV headers: "en" or "zh" (the article's Chinese)
output_dir = "../reports/evaluation"  # where metrics.json, the CSV tables and the figures are written"""),
    ("markdown", "## The model and the labelled images"),
    ("code", ANALYSIS_SETUP + """
from clipnb.demo import shapes_folder

image_folder = Path(image_folder) if image_folder else shapes_folder(output_dir / "shapes", per_class)
labelled = clipnb.embed_labelled(model, image_folder, labels_csv, classes, cache=cache)
kinds = len(set(labelled.labels))
print(word("notebook.labelled", LANG, images=plural(len(labelled), "labelled image"), image_count=len(labelled),
           classes=plural(kinds, "class"), class_count=kinds, folder=image_folder)
      + word("notebook.unreadable", LANG, count=int((~labelled.ok).sum())))"""),
    ("markdown", "## Headline numbers"),
    ("code", """\
sets = clipnb.template_sets(templates)
first = next(iter(sets))
evaluation = clipnb.evaluate_labelled(labelled, model, sets[first], ensemble, cache=cache)
print(word("notebook.evaluated_with", LANG, templates=clipnb.words.template_set_name(first, LANG),
           ensemble=word(f"ensemble.{ensemble}", LANG)))
print(evaluation.headline(LANG))"""),
    ("markdown", "Precision (of the images predicted as a class, how many are it) and recall (of a class's images, "
                 "how many were found), weakest recall first, classes of equal recall by name."),
    ("code", """\
clipnb.localised(evaluation.weakest_first("recall"), LANG).style.format(precision=3).hide(axis="index")"""),
    ("code", """\
confusion = evaluation_plots.confusion_figure(evaluation.confusion_normalised, evaluation.confusion, lang=LANG)
confusion"""),
    ("markdown", "## The most confident mistakes\n\nWrong predictions the model was surest of: often a label "
                 "error, an ambiguous picture, or a class name the model reads differently."),
    ("code", """\
wrong = evaluation.mistakes(mistakes)
mistakes_chart = evaluation_plots.mistakes_figure(wrong, lang=LANG) if len(wrong) else None
mistakes_chart if mistakes_chart is not None else print(word("notebook.no_mistakes", LANG))"""),
    ("markdown", """\
## Template sets x ensembling methods

The same embeddings under every template set and both ensembling methods: how much do prompts matter here?"""),
    ("code", """\
comparison = clipnb.score_settings(model, labelled, template_sets=sets, cache=cache).accuracy_table()
comparison.style.format(precision=3).hide(axis="index").highlight_max(subset=["acc@1"], color="#c7e9c0")"""),
    ("code", """\
comparison_chart = evaluation_plots.setting_accuracy_figure(comparison)
comparison_chart"""),
    ("markdown", "## Try another setting\n\nPick a template set and an ensembling method: the numbers and the "
                 "confusion matrix are recomputed from the same embeddings (no image is encoded again)."),
    ("code", """\
import ipywidgets as widgets
from IPython.display import display

set_choice = widgets.Dropdown(options=[(clipnb.words.template_set_name(name, LANG), name) for name in sets],
                              value=first, description=word("control.template_set", LANG))
method_choice = widgets.ToggleButtons(options=[(word(f"ensemble.{m}", LANG), m) for m in clipnb.ENSEMBLE_METHODS],
                                      value=ensemble, description=word("control.ensemble", LANG))
shown = widgets.Output()


def redraw(_=None):
    found = clipnb.evaluate_labelled(labelled, model, sets[set_choice.value], method_choice.value, cache=cache)
    with shown:
        shown.clear_output(wait=True)
        # the setting shown, named: a switch that changes no number is still seen to be applied
        print(f"{set_choice.description} {set_choice.label}, {method_choice.description} {method_choice.label}: "
              + found.headline(LANG))
        display(evaluation_plots.confusion_figure(found.confusion_normalised, found.confusion, lang=LANG))


set_choice.observe(redraw, "value")
method_choice.observe(redraw, "value")
redraw()
# the buttons as wide as their words and never squeezed, so they stay on one line beside their label
method_choice.style.button_width = "auto"
method_choice.layout.flex = "0 0 auto"
widgets.VBox([widgets.HBox([set_choice, method_choice], layout=widgets.Layout(flex_flow="row wrap",
                                                                              align_items="center")), shown])"""),
    ("markdown", """\
## Other models on the same images

Which model fits these photos? Each model in `compare_with` embeds the same images itself (embeddings of
different models never mix) and is scored with the same templates: its accuracy, and how often two models
pick the same class. A sigmoid model's (SigLIP) confidences are per class, not shares of 1: compare accuracy."""),
    ("code", """\
models_compared = None
if compare_with:
    others = [clipnb.load_model(spec) for spec in compare_with]  # all loaded before any image is embedded
    labelled_by = [labelled] + [clipnb.embed_labelled(other, image_folder, labels_csv, classes, cache=cache)
                                for other in others]
    models_compared = clipnb.compare_models([model, *others], labelled_by, templates=sets[first],
                                            ensemble=ensemble, cache=cache)
    print(models_compared.headline(LANG))
    display(models_compared.models.style.format(precision=3).hide(axis="index"))
    display(evaluation_plots.model_comparison_figure(models_compared))
else:
    print(word("notebook.compare_hint", LANG))"""),
    ("markdown", "## Export"),
    ("code", """\
written = clipnb.write_evaluation(evaluation, output_dir, comparison, mistakes=mistakes, lang=LANG)
if models_compared is not None:
    written += clipnb.write_model_comparison(models_compared, output_dir)
for path in written:
    print(word("cli.wrote", LANG, path=path))"""),
]

SEARCH = [
    ("markdown", """\
# 5. Search: text to image, image to image, image to text

以文搜图: a folder is embedded once (through the embedding cache), then every query is one comparison of a
text (or an image) embedding with all of them. The same embeddings answer the reverse question too: which of
several captions fits an image best (以图搜文)."""),
    ("parameters", f"""\
{MODEL_LINE}
image_folder = None  # the images to search; None: the images the model knows (generated shapes for the demo model)
recursive = None  # look in subfolders; None: as suits the default folder
query = None  # what to look for; None: "a red circle" for the demo model, "a photo of a cat" otherwise
top = 8  # hits to show
query_image = None  # find images like this one; None: the best hit of the text query
captions = None  # captions to rank for query_image; None: one per class of the default images
LANG = "en"  # the language of the charts and the CSV headers: "en" or "zh"
output_dir = "../reports/search"  # where the hit tables and figures are written"""),
    ("markdown", "## The model and the folder"),
    ("code", ANALYSIS_SETUP + """
from clipnb.demo import shapes_folder

if image_folder is None:
    image_folder = default_folder if default_folder.is_dir() else shapes_folder(output_dir / "shapes", 3)
    recursive = default_recursive if recursive is None else recursive
index = clipnb.index_images(model, image_folder, recursive=bool(recursive), cache=cache)
query = query or ("a red circle" if model.name == "demo" else "a photo of a cat")
print(word("notebook.indexed", LANG, images=plural(len(index), "image"), image_count=len(index), folder=image_folder)
      + word("notebook.unreadable", LANG, count=len(index.skipped)))"""),
    ("markdown", """\
## Text to image

A search always returns the closest images, even for a query the model cannot read: the demo model knows
only coloured shapes, so "a cat" finds the shapes nearest to nothing it knows (blue crosses, at a score that
looks like a match). A query that names none of its colours and shapes gets a warning saying so."""),
    ("code", """\
hits = clipnb.search_text(index, model, query, top=top, cache=cache)
hits.style.format({"score": "{:.4f}"}).hide(axis="index")"""),
    ("code", """\
hits_chart = search_plots.search_figure(hits, lang=LANG)
hits_chart"""),
    ("markdown", "Type another query; the hits redraw from the same embeddings."),
    ("code", """\
import ipywidgets as widgets
from IPython.display import display

query_box = widgets.Text(value=query, description=word("notebook.search", LANG), continuous_update=False)
top_slider = widgets.IntSlider(value=top, min=1, max=max(1, min(24, len(index))), description=word("notebook.top", LANG))
found = widgets.Output()


def redraw(_=None):
    if not query_box.value.strip():
        return
    with found:
        found.clear_output(wait=True)
        with warnings_said(LANG):  # every query's warning, one ⚠ line above its hits
            hits_now = clipnb.search_text(index, model, query_box.value, top=top_slider.value)
        display(search_plots.search_figure(hits_now, lang=LANG))


query_box.observe(redraw, "value")
top_slider.observe(redraw, "value")
redraw()
widgets.VBox([widgets.HBox([query_box, top_slider]), found])"""),
    ("markdown", "## Image to image\n\nThe images closest to one image (the image itself is left out)."),
    ("code", """\
query_image = query_image or hits["path"][0]
similar = clipnb.search_image(index, model, query_image, top=top, cache=cache)
similar_chart = search_plots.similar_figure(query_image, similar, lang=LANG)
similar_chart"""),
    ("markdown", "## Image to text\n\nCaptions ranked for the query image: cosine score and the softmax over "
                 "the captions."),
    ("code", """\
captions = captions or [f"a photo of {'an' if name[0] in 'aeiou' else 'a'} {name}" for name in default_classes]
ranked = clipnb.rank_captions(model, query_image, captions, cache=cache)
ranked.style.format({"score": "{:.4f}", "probability": "{:.4f}"}).hide(axis="index")"""),
    ("code", """\
captions_chart = plotting.similarity_figure(query_image, ranked.head(10).set_index("caption")["probability"],
                                            title=Path(query_image).name, lang=LANG)
captions_chart"""),
    ("markdown", "## Export"),
    ("code", """\
written = [clipnb.write_csv(clipnb.localised(hits, LANG), output_dir / "text_hits.csv"),
           clipnb.write_csv(clipnb.localised(similar, LANG), output_dir / "similar_images.csv"),
           clipnb.write_csv(clipnb.localised(ranked, LANG), output_dir / "captions.csv")]
for figure, name in [(hits_chart, "text_hits"), (similar_chart, "similar_images"), (captions_chart, "captions")]:
    written.append(clipnb.save_figure(figure, output_dir / f"{name}.png"))
for path in written:
    print(word("cli.wrote", LANG, path=path))"""),
]

VIDEO = [
    ("markdown", """\
# 6. Zero-shot video classification

视频分类: frames are sampled (every n seconds or every n frames) and decoded with PyAV, and each frame is embedded
and classified: a timeline of class probabilities shows where in the video each class is seen. The video as a
whole is the class that won the most sampled frames, printed with that count, so that it agrees with what the
frames say; when classes won as many frames, it says first that they tie, then which leads by its mean probability
over the frames, and by how much (a lead of 0.001 is a tie in all but name). The summary keeps, beside it, the
class of the averaged frame embeddings (`mean_embedding_*`): an average of a red circle, a blue star and a green
square can lie closest to a class that no frame shows."""),
    ("parameters", f"""\
{MODEL_LINE}
video = None  # a video file (mp4, mov, mkv, webm, ...); None: a generated video of shapes that change every 2 s
classes = None  # class names; None: the shape classes for the generated video, else the default classes
templates = "basic"  # a template set (basic, imagenet80, imagenet7), a file with one template per line, or a list
ensemble = "embedding"  # "embedding" (average the templates' embeddings) or "score" (average the templates' scores)
every_seconds = 0.5  # sample one frame every this many seconds ...
every_frames = None  # ... or every n-th frame instead (when set)
LANG = "en"  # the language of the timeline figure and the CSV headers: "en" or "zh"
output_dir = "../reports/video"  # where the tables and the timeline figure are written"""),
    ("markdown", "## The model and the video"),
    ("code", ANALYSIS_SETUP + """
from clipnb.demo import shapes, shapes_video

if video is None:
    video = shapes_video(output_dir / "shapes.mp4", [("red circle", 2.0), ("blue star", 2.0), ("green square", 2.0)])
    classes = classes or list(shapes.CLASSES)
classes = classes or default_classes
info = clipnb.video_info(video)
info"""),
    ("markdown", "## Sample, embed, classify"),
    ("code", """\
frames = clipnb.embed_video(model, video, None if every_frames else every_seconds, every_frames)
head = clipnb.build_head(model, classes, templates, ensemble, cache=cache)
result = clipnb.classify_video(frames, head)
print(word("notebook.video", LANG, frames=plural(len(frames), "frame"), frame_count=len(frames), basis=result.basis(LANG)))
result.summary.head(5).style.format(precision=4).hide(axis="index")"""),
    ("markdown", "Runs of frames with the same prediction: each lasts until the next one starts (a sampled frame stands "
                 "for the video up to the next sample), the last one until the end of what was sampled."),
    ("code", """\
result.segments().style.format(precision=2).hide(axis="index")"""),
    ("code", """\
timeline_chart = video_plots.video_figure(frames, result.timeline, title=Path(video).name, lang=LANG)
timeline_chart"""),
    ("markdown", "## Frame by frame\n\nMove the slider to see a sampled frame and the probability of its five best "
                 "classes, in the colours of the timeline."),
    ("code", """\
import ipywidgets as widgets
from IPython.display import display

frame_slider = widgets.IntSlider(value=0, min=0, max=len(frames) - 1, description=word("column.frame", LANG))
frame_view = widgets.Output()


def redraw(_=None):
    figure = video_plots.frame_figure(frames, result.timeline, frame_slider.value, top=5, lang=LANG)
    with frame_view:
        frame_view.clear_output(wait=True)
        display(figure)


frame_slider.observe(redraw, "value")
redraw()
widgets.VBox([frame_slider, frame_view])"""),
    ("markdown", "## Export"),
    ("code", """\
written = clipnb.write_video_report(result, output_dir, figure=timeline_chart, lang=LANG)
for path in written:
    print(word("cli.wrote", LANG, path=path))"""),
]

FEW_SHOT = [
    ("markdown", """\
# 7. Few-shot linear probes

Zero-shot needs no labelled image at all; a linear probe (logistic regression on the CLIP image embeddings)
needs a few per class. How many does it take to catch up with zero-shot here? Every class keeps a fixed set
of test images; probes are trained on 1, 2, 4, 8, 16 labelled images per class (several random draws each)
and tested there, beside zero-shot on the very same test images. The embeddings come from the cache, so the
probes cost seconds.

Without a folder of one's own, the example is shapes labelled by shape alone, drawn in random colours: the
text "a photo of a circle" covers every colour at once, while one labelled red circle tells a probe nothing
about blue ones."""),
    ("parameters", f"""\
{MODEL_LINE}
image_folder = None  # labelled images, one subfolder per class (or any images with labels_csv); None: generated shapes
labels_csv = None  # a CSV of path,label (paths relative to image_folder)
classes = None  # class names; None: the labels
templates = "basic"  # templates of the zero-shot classifier compared with the probes
per_class = 24  # images per class when the shapes are generated (6 shapes, any colour)
shots = [1, 2, 4, 8, 16]  # labelled images per class for the probes (each class needs more images than this)
trials = 3  # random training sets per number of shots
test_fraction = 0.3  # share of each class kept for testing
LANG = "en"  # the language of the figure and the CSV headers: "en" or "zh"
output_dir = "../reports/few_shot"  # where the curve and the figure are written"""),
    ("markdown", "## The model and the labelled images"),
    ("code", ANALYSIS_SETUP + """
from clipnb.demo import shapes_folder

image_folder = Path(image_folder) if image_folder else shapes_folder(output_dir / "shapes_by_shape", per_class,
                                                                     by="shape")
labelled = clipnb.embed_labelled(model, image_folder, labels_csv, classes, cache=cache)
kinds = len(set(labelled.labels))
print(word("notebook.labelled", LANG, images=plural(len(labelled), "labelled image"), image_count=len(labelled),
           classes=plural(kinds, "class"), class_count=kinds, folder=image_folder))"""),
    ("markdown", "## Accuracy against labelled examples per class"),
    ("code", """\
curve = clipnb.probe_labelled(labelled, model, templates=templates, shots=shots, trials=trials,
                       test_fraction=test_fraction, cache=cache)
if clipnb.setting(curve, "skipped_shots"):
    print(word("notebook.skipped_shots", LANG, shots=clipnb.setting(curve, "skipped_shots")))
summary = clipnb.curve_summary(curve)
summary.style.format(precision=3).hide(axis="index")"""),
    ("code", """\
shots_chart = evaluation_plots.shots_figure(curve, lang=LANG)
shots_chart"""),
    ("markdown", """\
Where the probe's line crosses the dashed zero-shot line is how many labelled images per class the text
prompts are worth. Chance (dotted) is one over the number of classes."""),
    ("markdown", "## Export"),
    ("code", """\
written = clipnb.write_probe_report(curve, output_dir, summary=summary, figure=shots_chart, lang=LANG)
for path in written:
    print(word("cli.wrote", LANG, path=path))"""),
]

SCALE_OUT = [
    ("markdown", """\
# 8. Scale out: embedding on a Dask cluster

Embedding is the slow part of every notebook here. With a `scheduler`, `classify` (and `embed_images`,
`index_images`, `embed_labelled`) cuts the images into shards and embeds them on the workers of a Dask
cluster; each worker loads the model once, and the shards come back in order, so the table is the one this
machine makes alone. With a `store`, every finished shard is also kept as one Parquet file: a rerun (or a
run whose client was stopped half-way) reads the finished shards instead of embedding them again, and a
search index can be built from the store without reading an image.

This notebook starts a small cluster on this machine (a `LocalCluster`); the last section says what changes
on a real one."""),
    ("parameters", f"""\
{MODEL_LINE}
image_folder = None  # the images; None: the images the model knows (test_images/shapes for the demo model, else test_images)
recursive = None  # look in subfolders too; None: only for the default folder (the shapes sit in one folder per class)
classes = None  # class names; None: the classes of the default images
workers = 2  # worker processes of the cluster started here, one stream of embedding each
scheduler = None  # None: start a LocalCluster of `workers` here; or a running scheduler's address, "tcp://host:8786"
store = None  # where finished shards are kept: a folder or a URL every worker reaches (s3://...); None: output_dir/store
query = None  # what to search for; None: "a red circle" for the demo model, "a photo of a cat" otherwise
top = 5  # hits to show
LANG = "en"  # the language of the printed lines and the search figures: "en" or "zh"
output_dir = "../reports/scale_out"  # holds the store (reports/ is ignored by git)"""),
    ("markdown", "## The model and the images"),
    ("code", """\
%matplotlib inline
from pathlib import Path

import clipnb
from clipnb.embed import dask as cluster
from clipnb.report.plots import base as plotting
from clipnb.report.plots import search as search_plots
from clipnb.notebook import choose_folder, choose_model, default_inputs
from clipnb.words import plural, word

model = choose_model(model_name)
default_folder, default_classes, default_recursive = default_inputs(model, sample_images)
output_dir = Path(output_dir)
image_folder, recursive = choose_folder(image_folder, recursive, model, sample_images)
classes = classes or default_classes
store = store or output_dir.resolve() / "store"  # an absolute path: the workers may not share this kernel's folder
print(word("notebook.store", LANG, model=model.name, store=store))
print(clipnb.folder_note(image_folder, recursive, option=word("notebook.recursive_option", LANG), lang=LANG)
      + word("notebook.classes", LANG, classes=plural(len(classes), "class"), class_count=len(classes)))"""),
    ("markdown", """\
## A cluster

`cluster.local_cluster(n)` starts a Dask `LocalCluster` of n worker processes on this machine and returns its
`Client`. The dashboard (the link printed below) shows the workers, the shards as they run and the memory
each worker holds; in JupyterLab the dask-labextension, when installed, docks the same panels beside the
notebook."""),
    ("code", """\
client = cluster.local_cluster(workers) if scheduler is None else cluster.connect(scheduler)
running = len(client.scheduler_info()["workers"])
print(word("notebook.workers", LANG, workers=plural(running, "worker"), count=running, link=client.dashboard_link))"""),
    ("markdown", """\
## This machine, then the cluster

The same call twice: first in this process, then with `scheduler=client` and a `store`. The images are cut
into shards by their number alone (not by the number of workers), so another cluster finds the same shards
in the store."""),
    ("code", """\
local = clipnb.classify(image_folder, classes, model=model, recursive=recursive)
on_cluster = clipnb.classify(image_folder, classes, model=model, recursive=recursive, scheduler=client, store=store)
stats = clipnb.setting(on_cluster, "stats")
print(word("notebook.cluster_run", LANG, images=plural(stats["images"], "image"), shards=plural(stats["shards"], "shard"),
           workers=plural(stats["workers"], "worker"), image_count=stats["images"], shard_count=stats["shards"],
           worker_count=stats["workers"], encoded=stats["encoded"], from_store=stats["from_store"],
           seconds=stats["seconds"]))"""),
    ("markdown", """\
Everything but the scores must be equal: rows, their order, predictions, errors and notes. The scores may
differ in the last bits of a float (the batches are not the same). When this notebook runs a second time,
the cluster run above already finds every shard in the store."""),
    ("code", """\
numbers = [c for c in local.columns if c.startswith(("score_", "prob_")) or c == "confidence"]
# outlier_z divides score differences by the folder's small spread of best scores: a number, not a fact
same = local.drop(columns=numbers + ["outlier_z"]).equals(on_cluster.drop(columns=numbers + ["outlier_z"]))
largest = (local[numbers] - on_cluster[numbers]).abs().to_numpy().max()
print(word("notebook.same_rows", LANG, same=same, largest=largest))
on_cluster[["path", "prediction", "confidence", "error"]].head(top).style.format(precision=4).hide(axis="index")"""),
    ("markdown", "## Run again: the store\n\nThe same call once more: every shard is read from the store, "
                 "none is embedded."),
    ("code", """\
again = clipnb.classify(image_folder, classes, model=model, recursive=recursive, scheduler=client, store=store)
stats = clipnb.setting(again, "stats")
print(word("notebook.store_again", LANG, from_store=stats["from_store"], images=plural(stats["images"], "image"),
           image_count=stats["images"], encoded=stats["encoded"], seconds=stats["seconds"]))"""),
    ("markdown", """\
## What the store holds

One Parquet file per shard, under the model's fingerprint and the decoding mode:
`store/<model>/<variant>/<shard>.parquet`, with the columns path, content (the SHA-256 of the file), width,
height, error, note and embedding. `cluster.read_store` reads them all with pandas, adding `model` and
`variant` columns; pyarrow, Dask or DuckDB read them as they are (in DuckDB:
`SELECT path, error FROM 'store/**/*.parquet'`)."""),
    ("code", """\
stored = cluster.read_store(store)
print(word("notebook.stored", LANG, rows=len(stored), columns=", ".join(stored.columns), size=len(stored["embedding"][0])))"""),
    ("markdown", """\
## Search the store

`index_from_store` builds a search index from the stored embeddings of this model, without opening an image.
Searching is exact below 10,000 images; above, faiss picks candidates and their exact scores rank them."""),
    ("code", """\
index = clipnb.index_from_store(model, store)
query = query or ("a red circle" if model.name == "demo" else "a photo of a cat")
hits = clipnb.search_text(index, model, query, top=top)
print(word("notebook.index", LANG, images=plural(len(index), "image"), image_count=len(index))
      + word("notebook.unreadable", LANG, count=len(index.skipped)))
search_plots.search_figure(hits, lang=LANG)"""),
    ("markdown", "The images closest to the best hit (the image itself is left out)."),
    ("code", """\
query_image = hits["path"][0]
similar = clipnb.search_image(index, model, query_image, top=top)
search_plots.similar_figure(query_image, similar, lang=LANG)"""),
    ("markdown", """\
## On a real cluster

The cells above run unchanged on many machines; only `scheduler` and `store` in the parameters change.

- **Machines you can log in to**: start a scheduler on one of them (`dask scheduler`: port 8786, and its
  dashboard on 8787) and a worker on each of the others (`dask worker tcp://HOST:8786 --nthreads 1`), in an
  environment where clipnb is installed; then set `scheduler = "tcp://HOST:8786"`.
- **A batch system, Kubernetes or the cloud**: dask-jobqueue (`SLURMCluster`, `PBSCluster`, ...),
  dask-kubernetes (`KubeCluster`) or Coiled start the workers for you; pass their `Client` as
  `scheduler=` (or its `client.scheduler.address`).
- **The store** must be a place every worker reaches under the same name: a shared folder, or an object
  store URL such as `s3://bucket/clipnb` (with s3fs installed on the workers and here). The images too: each
  worker opens the paths this notebook lists.
- **The model**: each worker loads it itself from the same spec, so give every worker the same weights file;
  a worker that loads other weights is refused."""),
    ("markdown", "## Close the cluster\n\nThis stops the LocalCluster started above (a cluster given by its "
                 "address is only left)."),
    ("code", "cluster.close(client)"),
]

COLLECTION = [
    ("markdown", """\
# 9. A whole collection: map, duplicates, images that fit no class, trustworthy confidence

Once a folder is embedded (the cache keeps it), four questions about the folder as a whole are answered from
the embeddings alone, without encoding any image again:

1. **What is in it?** A map of the images (UMAP): alike images lie together; hover, colour, select.
2. **Which files are copies?** Exact copies (same bytes) and near copies (resized, recompressed, cropped).
3. **Which images fit none of the classes?** Softmax always picks a class; these are flagged, or `unknown`.
4. **Can the confidences be trusted?** Measured against labels, and fixed with one temperature.

How each works and what was measured: `docs/collection.md`."""),
    ("parameters", f"""\
{MODEL_LINE}
image_folder = None  # the collection; None: an example folder (one drawing of each shape class, the repository's photos, planted copies)
classes = None  # class names; None: the classes of the default images
threshold = None  # the near-duplicate cosine; None: clipnb.tasks.duplicates.DEFAULT_THRESHOLD (measured: docs/collection.md)
unknown = True  # report images that fit no class as "unknown" instead of forcing a class
labelled_folder = None  # labelled images for calibration (one subfolder per class); None: hard (blurred) shapes
seed = 0  # the map's seed: the same embeddings and seed give the same map (embeddings from another machine may differ slightly, and so the map)
LANG = "en"  # the language of the figures and the CSV headers: "en" or "zh"
output_dir = "../reports/collection"  # where the figures and CSV files are written"""),
    ("markdown", "## The model and the collection"),
    ("code", ANALYSIS_SETUP + """
from clipnb.report.plots import calibration as calibration_plots
from clipnb.report.plots import duplicates as duplicate_plots
from clipnb.report.plots import map as map_plots
from clipnb.demo import blurred_shapes_folder, example_collection
from clipnb.tasks.duplicates import DEFAULT_THRESHOLD
from clipnb.ui.map_panel import MapPanel

image_folder = Path(image_folder) if image_folder else example_collection(output_dir / "collection")
classes = classes or default_classes
threshold = DEFAULT_THRESHOLD if threshold is None else threshold
embedded = clipnb.embed_images(model, clipnb.gather_images(image_folder, recursive=True), cache=cache)
results = clipnb.results_table(embedded, clipnb.build_head(model, classes, cache=cache), unknown=unknown)
truth = clipnb.folder_labels(embedded.records["path"], classes)  # a subfolder named for a class is its truth
print(embedded.describe(LANG) + word("notebook.classes", LANG, classes=plural(len(classes), "class"),
                                  class_count=len(classes)))"""),
    ("markdown", """\
## 1. The map

Each dot is an image; images the model sees as alike lie close together. Hover over a dot to see the image,
its path and prediction; choose what the colours show; drag a box (or lasso, in the toolbar) to list the
images inside in the table below the map. **Export** writes the map (PNG, SVG, PDF), its table and the
selection to a new subfolder of the output folder."""),
    ("code", """\
table = clipnb.embedding_map(embedded, results, truth, seed=seed)
map_note = clipnb.tasks.collection_map.map_note(table, LANG)  # a small or partial map says so
print(map_note or word("map.images", LANG, images=plural(len(table), "image"), count=len(table)))
panel = MapPanel(table, output_dir=output_dir, lang=LANG)
panel"""),
    ("markdown", "The images selected on the map, as a table (run this cell after selecting):"),
    ("code", 'panel.selected.style.format({"confidence": "{:.3f}"}).hide(axis="index")'),
    ("markdown", "The same map for a report, coloured by prediction and by cluster:"),
    ("code", """\
by_prediction = map_plots.map_figure(table, "prediction", lang=LANG)
by_cluster = map_plots.map_figure(table, "cluster", lang=LANG)
written = plotting.export_figure(by_prediction, output_dir, "map_by_prediction")
written += plotting.export_figure(by_cluster, output_dir, "map_by_cluster")
by_prediction"""),
    ("code", "by_cluster"),
    ("markdown", """\
## 2. Duplicates

Files with the same bytes are exact copies; images whose embeddings have a cosine of at least `threshold`
are near copies. Each image's nearest neighbours are the candidates, so a large folder never needs an
n x n matrix. `similarity` is an image's highest cosine to another member of its group (for a file in no
group, to its nearest image: how far it was from being grouped)."""),
    ("code", """\
with warnings_said(LANG):  # what the model cannot tell apart: one ⚠ line
    duplicates = clipnb.find_duplicates(embedded.records["path"].tolist(), model, embedded=embedded, cache=cache,
                                        threshold=threshold)
print(clipnb.duplicate_summary(duplicates, LANG))
written += [clipnb.write_duplicates(duplicates, output_dir / "duplicates.csv")]
duplicates[duplicates["group"].notna()][["path", "group", "similarity", "exact"]].style.format(
    {"similarity": "{:.4f}"}).hide(axis="index")"""),
    ("code", """\
groups = duplicate_plots.duplicates_figure(duplicates, lang=LANG)
written += plotting.export_figure(groups, output_dir, "duplicates")
groups"""),
    ("markdown", """\
The closest images that were *not* grouped: a copy the threshold missed shows here with a similarity just
under it (with the demo model, a cropped copy can fall below: crops move its embeddings most)."""),
    ("code", """\
alone = duplicates[duplicates["group"].isna() & (duplicates["error"] == "")]
alone.nlargest(5, "similarity")[["path", "similarity", "nearest"]].style.format(
    {"similarity": "{:.4f}"}).hide(axis="index")"""),
    ("markdown", """\
## 3. Images that fit none of the classes

Softmax spreads each image's probability over the classes given, so an image of none of them still gets
one, often with a high confidence. Its best cosine score does not compete: an image whose best score is far
below the folder's typical best score (a robust z-score under -3.5) is flagged in the `outlier` column, and
with `unknown = True` reported as "unknown". "Typical" is the folder's own: when photos of other things make up
a large share of it, the least unusual of them (here, for the demo model, the car and the portrait) stay within
its spread. The confidence of an "unknown" image is still that of the class softmax would have forced."""),
    ("code", """\
flagged = results[results["outlier"]]
print(clipnb.zeroshot.outliers.outlier_note(results, LANG) or word("notebook.no_outliers", LANG))
forced = clipnb.results_table(embedded, clipnb.build_head(model, classes, cache=cache))  # what softmax alone says
flagged.assign(forced=forced.loc[flagged.index, "prediction"])[
    ["path", "prediction", "forced", "confidence", "outlier_z"]].style.format(precision=3).hide(axis="index")"""),
    ("code", """\
dashboard = plotting.report_dashboard(results, lang=LANG)
written += plotting.export_figure(dashboard, output_dir, "dashboard")
written += [clipnb.write_csv(clipnb.localised(results, LANG), output_dir / "classification.csv")]
dashboard"""),
    ("markdown", """\
## 4. Can the confidences be trusted?

With labelled images, calibration compares each confidence with how often it is right: the temperature is
fitted on half of each class and measured on the other half (the expected calibration error, ECE: the gap
between confidence and accuracy, averaged over bins of confidence). A temperature needs at least 5 images of each
class to be fitted on, so 10 labelled images per class: fitted on fewer, it follows those few images rather than
the model, and `calibrate` refuses, saying so. The demo model is a little
*under*-confident on its clean shapes, so without a labelled folder of yours this uses shapes blurred until
barely recognisable, on which it is over-confident, as real models are on hard photos."""),
    ("code", """\
labelled_folder = Path(labelled_folder) if labelled_folder else blurred_shapes_folder(output_dir / "blurred", per_class=10)
labelled = clipnb.embed_labelled(model, labelled_folder, cache=cache)
evaluation = clipnb.evaluate_labelled(labelled, model)
calibration = clipnb.calibrate(evaluation.table, seed=seed)
print(calibration.headline(LANG))
reliability = calibration_plots.reliability_figure(calibration, lang=LANG)
written += plotting.export_figure(reliability, output_dir, "reliability")
reliability"""),
    ("markdown", """\
The fitted temperature divides every logit: the predictions stay, the confidences change. Apply it to a
report's table with `apply_temperature`, or classify with it (`classify(..., temperature=T)`,
`--temperature T`)."""),
    ("code", """\
# on every labelled image, where the line above measured the held-out half only: each line says which
calibrated = clipnb.apply_temperature(evaluation.table, calibration.temperature)
everyone = len(evaluation.table)
print(word("notebook.confidence_all", LANG, images=plural(everyone, "labelled image"), image_count=everyone,
           accuracy=evaluation.table["correct"].mean(), before=evaluation.table["confidence"].mean(),
           after=calibrated["confidence"].mean(), temperature=calibration.temperature))"""),
    ("markdown", """\
## The same from the command line

`duplicates` prints the groups and writes the CSV; `classify --unknown` reports images that fit no class
as unknown; `evaluate` measures the calibration on a labelled folder and prints the temperature that
`classify --temperature` applies:

```bash
python -m clipnb duplicates FOLDER --recursive --model demo --csv duplicates.csv
python -m clipnb classify FOLDER --recursive --model demo --classes "red circle" "blue square" --unknown
python -m clipnb evaluate LABELLED_FOLDER --model demo --out evaluation
python -m clipnb classify FOLDER --recursive --model demo --classes "red circle" "blue square" --temperature 2.6
```"""),
    ("code", """\
import subprocess
import sys

loaded = model.load_args or {"spec": model.name}
spec = loaded["spec"] + (f",{loaded['pretrained']}" if loaded.get("pretrained") else "")
command = [sys.executable, "-m", "clipnb", "duplicates", str(image_folder), "--recursive", "--model", spec,
           "--threshold", str(threshold), "--quiet"]
print(subprocess.run(command, capture_output=True, text=True).stdout)
print(word("notebook.written", LANG), *sorted({str(path.relative_to(output_dir)) for path in written}), sep="\\n  ")"""),
]

NOTEBOOKS = {
    "01_image_text_similarity.ipynb": SIMILARITY,
    "02_zero_shot_classification.ipynb": ZERO_SHOT,
    "03_classification_report.ipynb": REPORT,
    "04_evaluation.ipynb": EVALUATION,
    "05_search.ipynb": SEARCH,
    "06_video.ipynb": VIDEO,
    "07_few_shot.ipynb": FEW_SHOT,
    "08_scale_out.ipynb": SCALE_OUT,
    "09_collection.ipynb": COLLECTION,
}


def main(argv=None) -> int:
    return write_or_check(NOTEBOOKS, "scripts/build_notebooks.py", argv, description=__doc__.split("\n\n")[0])


if __name__ == "__main__":
    raise SystemExit(main())
